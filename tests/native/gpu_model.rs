//! The GPU backend against the candle CPU backend, whole model: logits, loss, every gradient and ten
//! AdamW steps, for attention-only, LayerNorm and MLP configs (every activation), 1 and 2 layers, 1
//! and 2 heads, frozen and trainable biases, shortformer and positions off; determinism; a config too
//! large for the adapter; and a short training run that converges. On lavapipe in CI
//! (mesa-vulkan-drivers).
use crate::gpu_common;

use gpu_common::{assert_close, gpu_available, max_diff};
use toyformer::backend::{Backend, BackendKind};
use toyformer::gpu::GpuBackend;
use toyformer::model::{ActFn, ModelConfig, Norm, Positions, Weights};
use toyformer::reference::ReferenceBackend as CpuBackend; // reference backend
use toyformer::tasks::rng::CounterRng;
use toyformer::tasks::TaskSpec;
use toyformer::train::{TrainConfig, Trainer};

/// sort 4 numbers below 7: T = 10, d_vocab 9, d_vocab_out 7, scored positions 5..=8.
fn task() -> TaskSpec {
    TaskSpec::Sort { n: 4, max_num: 7 }
}

fn cfg(
    n_layers: usize,
    n_heads: usize,
    ln: bool,
    mlp: Option<ActFn>,
    train_biases: bool,
) -> ModelConfig {
    let t = task();
    ModelConfig {
        n_layers,
        n_heads,
        d_model: 16,
        d_head: 8,
        d_mlp: mlp.map(|_| 24),
        act_fn: mlp,
        normalization_type: ln.then_some(Norm::LN),
        n_ctx: t.seq_len() + 2,
        d_vocab: t.d_vocab(),
        d_vocab_out: t.d_vocab_out(),
        seed: 11,
        train_biases,
        positional_embedding_type: Default::default(),
    }
}

/// The init, with every tensor perturbed when biases train (so bias and LN gradients matter).
fn weights(c: &ModelConfig) -> Weights {
    let mut w = Weights::init(c).unwrap();
    if c.train_biases {
        let mut r = CounterRng::new(7, 3, 1);
        for p in w.table.params.clone() {
            // positions off: W_pos is frozen at zero and stays so
            if p.name == "pos_embed.W_pos" && !p.trainable {
                continue;
            }
            for x in &mut w.data[p.offset..p.offset + p.len] {
                *x += 0.2 * r.normal() as f32;
            }
        }
    }
    w
}

/// Every tensor of the table, compared one by one so a failure names it.
fn compare_tensors(what: &str, w: &Weights, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    for p in &w.table.params {
        let r = p.offset..p.offset + p.len;
        assert_close(
            &format!("{what} {}", p.name),
            &got[r.clone()],
            &want[r],
            atol,
            rtol,
        );
    }
}

fn parity(c: ModelConfig) {
    parity_on(task(), c)
}

fn parity_on(task: TaskSpec, c: ModelConfig) {
    if !gpu_available() {
        return;
    }
    let w = weights(&c);
    let tc = TrainConfig {
        lr: 3e-3,
        grad_clip: 1.0,
        ..Default::default()
    };
    let pred = task.pred_positions();
    let mut cpu = CpuBackend::new(&w, &tc, pred.clone()).unwrap();
    let mut gpu = GpuBackend::new(&w, &tc, pred).unwrap();
    let b = 6;
    let tokens = task.batch(5, 0, b);
    let label = format!(
        "{}L {}H ln={} mlp={:?} train_biases={} {:?}",
        c.n_layers,
        c.n_heads,
        c.normalization_type.is_some(),
        c.act_fn,
        c.train_biases,
        c.positional_embedding_type
    );

    // logits at every position, and at a shorter sequence (inference shapes)
    let lc = cpu.logits(&tokens, b).unwrap();
    let lg = gpu.logits(&tokens, b).unwrap();
    // f32 sums in another order (tiled matmuls, tree reductions): a few ulps of the logit scale
    assert_close(&format!("{label}: logits"), &lg, &lc, 1e-5, 1e-4);
    eprintln!("{label}: logits max diff {}", max_diff(&lg, &lc));
    let short: Vec<u32> = tokens[..7].to_vec();
    assert_close(
        &format!("{label}: logits T=7"),
        &gpu.logits(&short, 1).unwrap(),
        &cpu.logits(&short, 1).unwrap(),
        1e-5,
        1e-4,
    );

    // loss and every gradient
    let (loss_c, grads_c) = cpu.loss_and_grads(&tokens, b).unwrap();
    let (loss_g, grads_g) = pollster::block_on(gpu.runner.loss_and_grads(&tokens, b)).unwrap();
    assert_close(
        &format!("{label}: loss"),
        &[loss_g],
        &[loss_c as f32],
        1e-6,
        1e-5,
    );
    let mut want = vec![0.0f32; w.data.len()];
    for (name, g) in &grads_c {
        let p = w.table.get(name).unwrap();
        for (i, x) in g.iter().enumerate() {
            want[p.offset + i] = *x as f32;
        }
    }
    // gradients are sums over B·T rows in another order; relative to the largest gradient entry
    let scale = want.iter().fold(0.0f32, |a, x| a.max(x.abs()));
    compare_tensors(
        &format!("{label}: grad"),
        &w,
        &grads_g,
        &want,
        2e-6 * scale,
        1e-4,
    );
    eprintln!(
        "{label}: loss {loss_g} (diff {}), grads max diff {} (scale {scale})",
        (loss_g - loss_c as f32).abs(),
        max_diff(&grads_g, &want)
    );

    // ten AdamW steps (clipping at 1.0 included): losses and grad norms step by step, then weights
    for s in 0..10u64 {
        let toks = task.batch(5, s, b);
        let oc = cpu.train_step(&toks, b, tc.lr, s).unwrap();
        let og = gpu.train_step(&toks, b, tc.lr, s).unwrap();
        assert_close(
            &format!("{label}: loss at step {s}"),
            &[og.loss],
            &[oc.loss],
            1e-5,
            1e-4,
        );
        assert_close(
            &format!("{label}: grad norm at step {s}"),
            &[og.grad_norm],
            &[oc.grad_norm],
            1e-5,
            1e-3,
        );
    }
    let wc = cpu.weights().unwrap();
    let wg = gpu.weights().unwrap();
    for p in &w.table.params {
        let r = p.offset..p.offset + p.len;
        let what = format!("{label}: {} after 10 AdamW steps", p.name);
        if p.name.ends_with("attn.b_K") && p.trainable {
            // b_K adds the same q·b_K to every score of a query row, which softmax ignores: its
            // true gradient is 0 and both backends see rounding noise (~1e-9) there, which Adam's
            // g / sqrt(v) turns into steps of up to lr in either direction. Only that bound holds.
            assert_close(
                &what,
                &wg.data[r.clone()],
                &wc.data[r],
                10.0 * tc.lr as f32 * 1.01,
                0.0,
            );
        } else {
            assert_close(&what, &wg.data[r.clone()], &wc.data[r], 1e-5, 1e-4);
        }
    }
    eprintln!(
        "{label}: weights after 10 steps max diff {}",
        max_diff(&wg.data, &wc.data)
    );
    if c.positional_embedding_type == Positions::Off {
        let wp = wg.get("pos_embed.W_pos").unwrap();
        assert!(wp.iter().all(|&x| x == 0.0), "{label}: W_pos left zero");
    }
}

fn with_positions(mut c: ModelConfig, pos: Positions) -> ModelConfig {
    c.positional_embedding_type = pos;
    c
}

#[test]
fn shortformer_attn_only_1l_2h_trainable_biases() {
    parity(with_positions(
        cfg(1, 2, false, None, true),
        Positions::Shortformer,
    ));
}

#[test]
fn shortformer_2l_1h_ln_mlp() {
    parity(with_positions(
        cfg(2, 1, true, Some(ActFn::Gelu), true),
        Positions::Shortformer,
    ));
}

#[test]
fn positions_off_2l_2h() {
    parity(with_positions(cfg(2, 2, false, None, true), Positions::Off));
    parity(with_positions(
        cfg(1, 1, true, Some(ActFn::Relu), false),
        Positions::Off,
    ));
}

#[test]
fn attn_only_1l_1h_frozen_biases() {
    parity(cfg(1, 1, false, None, false));
}

#[test]
fn attn_only_1l_2h_trainable_biases() {
    parity(cfg(1, 2, false, None, true));
}

#[test]
fn attn_only_2l_2h_ln() {
    parity(cfg(2, 2, true, None, false));
}

#[test]
fn ln_1l_1h_trainable_biases() {
    parity(cfg(1, 1, true, None, true));
}

#[test]
fn mlp_relu_2l_1h() {
    parity(cfg(2, 1, false, Some(ActFn::Relu), true));
}

#[test]
fn mlp_gelu_1l_2h_ln() {
    parity(cfg(1, 2, true, Some(ActFn::Gelu), true));
}

#[test]
fn mlp_gelu_new_1l_1h() {
    parity(cfg(1, 1, false, Some(ActFn::GeluNew), false));
}

#[test]
fn permutations_ln_long_context() {
    // every next token is scored (P = T − 1) and T > 64, so attention rows span several strides
    let task = TaskSpec::permutations(4);
    let mut c = task.default_model();
    (c.d_model, c.d_head, c.n_heads, c.train_biases) = (16, 8, 2, true);
    assert!(task.seq_len() > 64);
    parity_on(task, c);
}

#[test]
fn mlp_solu_2l_2h_ln() {
    parity(cfg(2, 2, true, Some(ActFn::Solu), true));
}

fn small_sort_run(steps: u64) -> (TaskSpec, ModelConfig, TrainConfig) {
    let task = TaskSpec::Sort { n: 5, max_num: 10 };
    let mut m = task.default_model();
    m.d_model = 32;
    m.d_head = 32;
    let tc = TrainConfig {
        steps,
        batch_size: 32,
        lr: 3e-3,
        ..Default::default()
    };
    (task, m, tc)
}

#[test]
fn deterministic_and_chunked_equals_stepwise() {
    if !gpu_available() {
        return;
    }
    let (task, m, tc) = small_sort_run(40);
    let mut a = Trainer::from_scratch(task.clone(), &m, tc.clone(), BackendKind::Gpu).unwrap();
    // b records 40 steps in submissions of at most 16 steps (the windows reused)
    let mut gb = GpuBackend::new(&Weights::init(&m).unwrap(), &tc, task.pred_positions()).unwrap();
    gb.runner.sizer.max = 16;
    let mut b = Trainer::new(task.clone(), tc.clone(), Box::new(gb)).unwrap();
    let mut c = Trainer::from_scratch(task.clone(), &m, tc, BackendKind::Gpu).unwrap();
    let ra = [a.step_many(15).unwrap(), a.step_many(25).unwrap()].concat();
    let rb = b.step_many(40).unwrap();
    let rc: Vec<_> = (0..40).map(|_| c.step().unwrap()).collect();
    assert_eq!(ra.len(), 40);
    assert!(
        a.done() && a.step_many(5).unwrap().is_empty(),
        "nothing past the configured steps"
    );
    assert!(
        a.backend
            .train_chunk(&task, 0, 40, 32, &[])
            .unwrap()
            .steps
            .is_empty(),
        "an empty chunk"
    );
    let bits = |r: &[toyformer::train::Metrics]| {
        r.iter()
            .map(|m| (m.loss.to_bits(), m.grad_norm.to_bits()))
            .collect::<Vec<_>>()
    };
    // same seed, same adapter: bit-identical, however the steps are chunked
    assert_eq!(bits(&ra), bits(&rb));
    assert_eq!(bits(&ra), bits(&rc));
    // the device's accuracy counts equal the host's from the argmax (Trainer::step)
    for (x, y) in rb.iter().zip(&rc) {
        assert_eq!(
            (x.token_acc, x.seq_acc, x.algo_acc, &x.per_pos_acc),
            (y.token_acc, y.seq_acc, y.algo_acc, &y.per_pos_acc),
            "step {}",
            x.step
        );
    }
    assert_eq!(
        a.backend.weights().unwrap().data,
        b.backend.weights().unwrap().data
    );
}

#[test]
fn too_large_config_is_refused_with_the_limit_named() {
    if !gpu_available() {
        return;
    }
    let task = TaskSpec::permutations(5);
    let m = task.default_model();
    // 5000 × 722 tokens: the rows fit the dispatch grid, but qkv alone needs 2.8 GB
    let tc = TrainConfig {
        batch_size: 5000,
        ..Default::default()
    };
    let err = Trainer::from_scratch(task.clone(), &m, tc, BackendKind::Gpu)
        .err()
        .expect("a 5000 × 722-token batch cannot fit");
    let msg = err.to_string();
    assert!(
        msg.contains("batch_size") && msg.contains("batch 5000") && msg.contains("limit of"),
        "{msg}"
    );
    // 65536 × 722 rows: more than the matmul grid holds
    let tc = TrainConfig {
        batch_size: 65_536,
        ..Default::default()
    };
    let msg = Trainer::from_scratch(task, &m, tc, BackendKind::Gpu)
        .err()
        .expect("too many rows")
        .to_string();
    assert!(
        msg.contains("batch_size") && msg.contains("47316992 rows"),
        "{msg}"
    );
}

#[test]
fn gpu_training_converges_on_small_sort() {
    if !gpu_available() {
        return;
    }
    let (task, m, tc) = small_sort_run(300);
    let mut tr = Trainer::from_scratch(task.clone(), &m, tc.clone(), BackendKind::Gpu).unwrap();
    while !tr.done() {
        tr.step_many(100).unwrap();
    }
    let h = &tr.history;
    assert_eq!(h.len(), 300);
    let mean =
        |r: &[toyformer::train::Metrics]| r.iter().map(|m| m.loss).sum::<f32>() / r.len() as f32;
    let (first, last) = (mean(&h[..20]), mean(&h[280..]));
    // ln 10 = 2.30 is chance for 10 classes
    assert!(first > 1.5, "initial loss {first}");
    assert!(last < 0.5 * first, "loss fell from {first} to only {last}");
    let rep =
        toyformer::train::eval::evaluate(tr.backend.as_mut(), &task, tc.seed, 512, 256).unwrap();
    assert!(
        rep.token_acc > 0.5,
        "held-out token accuracy {} after 300 steps",
        rep.token_acc
    );
    eprintln!(
        "small sort on the GPU: loss {first:.3} → {last:.3}, held-out token acc {:.3}",
        rep.token_acc
    );
}

#[test]
fn device_loss_ends_the_run_with_the_last_synced_weights_kept() {
    if !gpu_available() {
        return;
    }
    let (task, m, tc) = small_sort_run(40);
    let gpu = GpuBackend::new(&Weights::init(&m).unwrap(), &tc, task.pred_positions()).unwrap();
    let device = gpu.runner.ctx.device.clone();
    let mut tr = Trainer::new(task.clone(), tc.clone(), Box::new(gpu)).unwrap();
    tr.step_many(10).unwrap();
    let synced = tr.backend.weights().unwrap();
    assert_ne!(
        synced.data,
        Weights::init(&m).unwrap().data,
        "ten steps changed the weights"
    );
    // what a driver reset or a lost device looks like to wgpu
    device.destroy();
    let err = tr.step_many(10).expect_err("a lost device fails the chunk");
    let msg = err.to_string();
    assert!(
        msg.contains("GPU") && msg.contains("weights") && msg.contains("CPU"),
        "{msg}"
    );
    eprintln!("after a device loss: {msg}");
    assert_eq!(tr.step, 10, "no step is counted after the loss");
    let again = tr
        .step_many(1)
        .expect_err("the runner stays failed")
        .to_string();
    assert!(again.contains("failed earlier"), "{again}");
    // the weights of step 10 are intact, and training continues on the CPU from them
    let w = tr.backend.weights().unwrap();
    assert_eq!(w.data, synced.data);
    let mut cpu = Trainer::new(
        task.clone(),
        tc.clone(),
        Box::new(CpuBackend::new(&w, &tc, task.pred_positions()).unwrap()),
    )
    .unwrap();
    cpu.step = 10;
    let m1 = cpu.step().unwrap();
    assert!(
        m1.loss.is_finite() && m1.loss < 2.3,
        "continues from trained weights: loss {}",
        m1.loss
    );
}

#[test]
fn non_finite_loss_stops_the_chunk_and_keeps_weights() {
    if !gpu_available() {
        return;
    }
    let (task, m, tc) = small_sort_run(40);
    let mut w = Weights::init(&m).unwrap();
    // W_E so large that the logits overflow to ±inf: the loss is NaN (as the CPU backend's test)
    for x in w.get_mut("embed.W_E").unwrap() {
        *x *= 1e36;
    }
    let mut b = GpuBackend::new(&w, &tc, task.pred_positions()).unwrap();
    let err = b.train_step(&task.batch(0, 0, 4), 4, 1e-3, 7).unwrap_err();
    assert!(
        matches!(err, toyformer::Error::Diverged { step: 7, .. }),
        "{err}"
    );
    let out = b.train_chunk(&task, 0, 3, 4, &[1e-3; 5]).unwrap();
    assert!(out.steps.is_empty());
    assert!(
        matches!(
            out.error,
            Some(toyformer::Error::Diverged {
                step: 3,
                last_good_step: 3,
                ..
            })
        ),
        "{:?}",
        out.error
    );
    let after = b.weights().unwrap();
    assert!(
        after
            .data
            .iter()
            .zip(&w.data)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "weights changed"
    );
}

#[test]
fn every_task_trains_on_the_gpu_as_on_the_cpu() {
    if !gpu_available() {
        return;
    }
    // the CPU's own check (tests/train_convergence.rs), run on both backends from the same data stream
    for name in ["sort", "permutations", "apply-perm"] {
        let task = TaskSpec::default_for(name).unwrap();
        let mut m = task.default_model();
        (m.d_model, m.d_head) = (32, 16);
        let tc = TrainConfig {
            steps: 100,
            batch_size: 32,
            lr: 1e-2,
            ..Default::default()
        };
        let mut gpu =
            Trainer::from_scratch(task.clone(), &m, tc.clone(), BackendKind::Gpu).unwrap();
        let mut cpu = Trainer::from_scratch(task.clone(), &m, tc, BackendKind::Cpu).unwrap();
        gpu.step_many(100).unwrap();
        cpu.step_many(100).unwrap();
        let (g, c) = (&gpu.history, &cpu.history);
        let first = g[0].loss;
        let last = g[95..].iter().map(|m| m.loss).sum::<f32>() / 5.0;
        let worst = g
            .iter()
            .zip(c)
            .map(|(a, b)| (a.loss - b.loss).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{name}: GPU loss {first:.4} → {last:.4}; largest |GPU − CPU| loss over 100 steps {worst:.2e}");
        assert!(last < 0.8 * first, "{name}: loss {first} → {last}");
        // only summation order differs: seen ≤ 7.2e-7 on lavapipe over these 100 steps; 1e-5 leaves
        // room for other adapters while any real difference in model or optimiser shows at 1e-3 and up
        assert!(worst < 1e-5, "{name}: GPU and CPU losses differ by {worst}");
    }
}

/// A kernel that keeps the GPU busy (a long dependent chain per invocation; lavapipe takes about
/// 0.3 s for 30 workgroups of 10⁵ iterations): what a hung GPU looks like to a readback.
static SPIN: toyformer::gpu::context::KernelDef = toyformer::gpu::context::KernelDef {
    name: "test spin",
    src: "struct P { n: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<storage, read_write> X: array<f32>;
@group(0) @binding(1) var<uniform> Q: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    var x = X[gid.x];
    for (var i = 0u; i < Q.n; i++) { x = fract(x * 1.7 + X[(i + gid.x) % 64u]); }
    X[gid.x % 64u] = x;
}",
    entry: "main",
    binds: &[
        (0, toyformer::gpu::context::Bind::Write),
        (1, toyformer::gpu::context::Bind::Uniform),
    ],
};

#[test]
fn a_stalled_readback_times_out_with_the_last_synced_weights_kept() {
    if !gpu_available() {
        return;
    }
    let (task, m, tc) = small_sort_run(40);
    let mut gpu = GpuBackend::new(&Weights::init(&m).unwrap(), &tc, task.pred_positions()).unwrap();
    let lrs = [tc.lr; 5];
    gpu.train_chunk(&task, 0, 0, 32, &lrs).unwrap();
    let synced = gpu.weights().unwrap();
    // inject the stall: every step of the plan also runs a dispatch far longer than the
    // (shortened) readback limit
    let runner = &mut gpu.runner;
    let x = runner.ctx.storage_init("spin", &[0.3f32; 64]).unwrap();
    let plan = runner
        .train_plan
        .as_mut()
        .expect("built by the first chunk");
    plan.ops
        .dispatch(&runner.ctx, &SPIN, &[&x], &[100_000, 0, 0, 0], (30, 1, 1));
    runner
        .ctx
        .readback_timeout
        .set(std::time::Duration::from_millis(10));
    let err = gpu
        .train_chunk(&task, 0, 5, 32, &lrs[..1])
        .expect_err("a readback that waits past its limit fails the chunk")
        .to_string();
    eprintln!("after a stall: {err}");
    assert!(
        err.contains("did not finish") && err.contains("weights") && err.contains("CPU"),
        "{err}"
    );
    assert_eq!(
        gpu.weights().unwrap().data,
        synced.data,
        "the last synced weights are kept"
    );
    let again = gpu
        .train_chunk(&task, 0, 5, 32, &lrs)
        .expect_err("the runner stays failed");
    assert!(again.to_string().contains("failed earlier"), "{again}");
}

#[test]
fn submissions_are_sized_from_the_measured_step_time() {
    use toyformer::gpu::runner::Sizer;
    let mut s = Sizer::default();
    assert_eq!((s.target_ms, s.max), (50.0, 64));
    assert_eq!(s.steps(), s.first, "nothing measured yet");
    s.observe(100.0, 10); // 10 ms a step: 5 fit 50 ms
    assert_eq!(s.steps(), 5);
    s.observe(1.0, 10); // a running mean: (10 + 0.1) / 2 = 5.05 ms → 9 steps
    assert_eq!(s.steps(), 9);
    s.observe(f64::NAN, 3);
    s.observe(5.0, 0);
    assert_eq!(s.steps(), 9, "nonsense measurements are ignored");
    let mut slow = Sizer::default();
    slow.observe(5_000.0, 1); // a permutations step on a weak GPU: one step a submission
    assert_eq!(slow.steps(), 1);
    let mut fast = Sizer::default();
    fast.observe(0.5, 100); // 5 µs a step: capped at max
    assert_eq!(fast.steps(), 64);
    fast.max = 16;
    assert_eq!(fast.steps(), 16);
}

#[test]
fn a_sort_ref_step_is_16_gpu_commands() {
    if !gpu_available() {
        return;
    }
    // seed 003's sorter as examples/bench's sort-ref: 1L 1H attention-only, d_model 128, T 22
    let task = TaskSpec::Sort { n: 10, max_num: 50 };
    let m = ModelConfig::sort_ref();
    let tc = TrainConfig {
        batch_size: 256,
        ..Default::default()
    };
    let mut gpu = GpuBackend::new(&Weights::init(&m).unwrap(), &tc, task.pred_positions()).unwrap();
    let (commands, dispatches) = gpu.runner.commands_per_step(256, task.seq_len()).unwrap();
    // forward: embed (also zeroes dresid), qkv, attention, W_O, unembed = 5; loss: crossentropy = 1;
    // backward: dW_U, d(resid) at the scored rows, dW_O, dz, attention (dq, dk, dv), dW_QKV,
    // d(resid) from dqkv, embed = 8; optimizer: grad_norm (finishing the 3 split-K sums), adamw
    // (with the metrics and the norm) = 2
    assert_eq!((commands, dispatches), (5 + 1 + 8 + 2, 16));
    // a step with LayerNorm (permutations' default model) adds its forward and backward kernels only
    let task = TaskSpec::permutations(4);
    let m = task.default_model();
    let mut gpu = GpuBackend::new(&Weights::init(&m).unwrap(), &tc, task.pred_positions()).unwrap();
    let (commands, _) = gpu.runner.commands_per_step(256, task.seq_len()).unwrap();
    // + ln1 and ln_final forward, + their backward and gain/bias gradients (2 each)
    assert_eq!(commands, 16 + 2 + 4);
}
