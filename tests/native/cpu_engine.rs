//! The CPU engine (hand-written forward/backward) against the candle reference backend:
//! loss, every gradient, logits at every position and 10 AdamW steps, over the model
//! family (attention-only, LayerNorm, MLP with each activation, 1–2 layers, 1–2 heads,
//! frozen and trainable biases), on both layer-0 paths (factored tables and plain
//! products), with standard positions, shortformer and positions off. Also: bit-identical
//! results for 1 and 2 threads, and input errors.

use toyformer::backend::Backend;
use toyformer::compare::assert_close;
use toyformer::cpu::{CpuEngine, EngineOptions, Factor};
use toyformer::model::{ActFn, ModelConfig, Norm, Positions, Weights};
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::rng::CounterRng;
use toyformer::train::TrainConfig;

fn cfg(
    n_layers: usize,
    n_heads: usize,
    ln: bool,
    mlp: Option<ActFn>,
    train_biases: bool,
) -> ModelConfig {
    ModelConfig {
        n_layers,
        n_heads,
        d_model: 16,
        d_head: 8,
        d_mlp: mlp.map(|_| 24),
        act_fn: mlp,
        normalization_type: ln.then_some(Norm::LN),
        n_ctx: 12,
        d_vocab: 11,
        d_vocab_out: 9,
        seed: 5,
        train_biases,
        positional_embedding_type: Default::default(),
    }
}

/// TL init plus noise everywhere (biases and LN parameters too, so their paths matter).
fn weights(c: &ModelConfig, noisy_biases: bool) -> Weights {
    let mut w = Weights::init(c).unwrap();
    let mut r = CounterRng::new(17, 3, 1);
    for p in w.table.params.clone() {
        let is_bias = p.name.contains(".b_") || p.name.ends_with("b_U");
        // positions off: W_pos is frozen at zero and stays so
        if (is_bias && !noisy_biases) || (p.name == "pos_embed.W_pos" && !p.trainable) {
            continue;
        }
        for x in &mut w.data[p.offset..p.offset + p.len] {
            *x += 0.2 * r.normal() as f32;
        }
    }
    w
}

fn tokens(c: &ModelConfig, batch: usize, t: usize, seed: u64) -> Vec<u32> {
    let mut r = CounterRng::new(seed, 0, 0);
    (0..batch * t)
        .map(|_| r.below(c.d_vocab_out as u64) as u32)
        .collect()
}

/// Compares loss, gradients, logits, then 10 AdamW steps of engine and reference.
fn parity(c: ModelConfig, noisy_biases: bool, factor: Factor, pred: Vec<usize>) {
    let label = format!(
        "{}L {}H ln={} mlp={:?} train_biases={} noisy_biases={noisy_biases} {factor:?}",
        c.n_layers,
        c.n_heads,
        c.normalization_type.is_some(),
        c.act_fn,
        c.train_biases
    );
    let w = weights(&c, noisy_biases);
    let (batch, t) = (6, 10);
    let toks = tokens(&c, batch, t, 1);
    let tc = TrainConfig {
        lr: 1e-2,
        grad_clip: 0.0,
        ..Default::default()
    };
    let opts = EngineOptions {
        factor,
        flush_denormals: true,
    };
    let mut eng = CpuEngine::with_options(&w, &tc, pred.clone(), opts).unwrap();
    let mut refb = ReferenceBackend::new(&w, &tc, pred.clone()).unwrap();

    let (loss, grads) = eng.loss_and_grads(&toks, batch).unwrap();
    let (want_loss, want_grads) = refb.loss_and_grads(&toks, batch).unwrap();
    assert_close(
        &format!("{label}: loss"),
        &[loss],
        &[want_loss as f32],
        1e-5,
        1e-5,
    );
    assert_eq!(grads.len(), want_grads.len(), "{label}: trainable tensors");
    for ((name, g), (wname, wg)) in grads.iter().zip(&want_grads) {
        assert_eq!(name, wname);
        let wg: Vec<f32> = wg.iter().map(|&x| x as f32).collect();
        // f32 sums in a different order: gradients of O(1e-2) agree to ~1e-7.
        assert_close(&format!("{label}: d{name}"), g, &wg, 2e-6, 1e-4);
    }

    let got = eng.logits(&toks, batch).unwrap();
    let want = refb.logits(&toks, batch).unwrap();
    assert_close(&format!("{label}: logits"), &got, &want, 1e-5, 1e-5);

    for step in 0..10 {
        let toks = tokens(&c, batch, t, 100 + step);
        let a = eng.train_step(&toks, batch, 1e-2, step).unwrap();
        let b = refb.train_step(&toks, batch, 1e-2, step).unwrap();
        assert_close(
            &format!("{label}: loss at step {step}"),
            &[a.loss],
            &[b.loss],
            2e-5,
            2e-5,
        );
        assert_close(
            &format!("{label}: grad norm at step {step}"),
            &[a.grad_norm],
            &[b.grad_norm],
            1e-5,
            1e-4,
        );
        assert_eq!(a.argmax.len(), b.argmax.len());
    }
    // Adam divides by sqrt(v): a gradient element near zero turns rounding noise into a
    // step of up to ±lr, so after 10 steps at lr 1e-2 allow a few 1e-4 of drift.
    let (we, wr) = (eng.weights().unwrap(), refb.weights().unwrap());
    for p in &we.table.params {
        // b_K's true gradient is exactly zero (it adds q·b_K to a whole score row, which
        // softmax ignores): both backends feed Adam pure rounding noise there.
        if p.name.ends_with("b_K") && p.trainable {
            continue;
        }
        let r = p.offset..p.offset + p.len;
        assert_close(
            &format!("{label}: {} after 10 AdamW steps", p.name),
            &we.data[r.clone()],
            &wr.data[r],
            3e-4,
            1e-3,
        );
    }
    if c.positional_embedding_type == Positions::Off {
        for (who, w) in [("engine", &we), ("reference", &wr)] {
            let wp = w.get("pos_embed.W_pos").unwrap();
            assert!(
                wp.iter().all(|&x| x == 0.0),
                "{label}: {who}'s W_pos left zero"
            );
        }
    }
}

fn with_positions(mut c: ModelConfig, pos: Positions) -> ModelConfig {
    c.positional_embedding_type = pos;
    c
}

#[test]
fn shortformer_every_path() {
    let short = |c| with_positions(c, Positions::Shortformer);
    for f in [Factor::Always, Factor::Never] {
        parity(
            short(cfg(1, 2, false, None, true)),
            true,
            f,
            (4..9).collect(),
        );
        parity(
            short(cfg(2, 1, false, None, false)),
            false,
            f,
            vec![1, 3, 4, 7, 8],
        );
    }
    let all: Vec<usize> = (0..9).collect();
    parity(short(cfg(2, 2, true, None, true)), true, Factor::Auto, all);
    parity(
        short(cfg(2, 2, true, Some(ActFn::Gelu), false)),
        false,
        Factor::Auto,
        vec![5, 6, 8],
    );
}

#[test]
fn positions_off_every_path() {
    let off = |c| with_positions(c, Positions::Off);
    for f in [Factor::Always, Factor::Never] {
        parity(off(cfg(2, 2, false, None, true)), true, f, (4..9).collect());
    }
    parity(
        off(cfg(2, 1, true, Some(ActFn::Relu), true)),
        true,
        Factor::Auto,
        vec![1, 3, 8],
    );
}

#[test]
fn attn_only_one_layer_both_layer0_paths() {
    let pred: Vec<usize> = (4..9).collect();
    for f in [Factor::Always, Factor::Never] {
        parity(cfg(1, 1, false, None, false), false, f, pred.clone());
        parity(cfg(1, 2, false, None, true), true, f, pred.clone());
    }
}

#[test]
fn attn_only_two_layers_and_frozen_nonzero_biases() {
    let pred: Vec<usize> = vec![1, 3, 4, 7, 8];
    for f in [Factor::Always, Factor::Never] {
        parity(cfg(2, 2, false, None, false), true, f, pred.clone());
        parity(cfg(2, 1, false, None, true), false, f, pred.clone());
    }
}

#[test]
fn layernorm_one_and_two_layers() {
    let pred: Vec<usize> = (0..9).collect();
    parity(
        cfg(1, 2, true, None, true),
        true,
        Factor::Auto,
        pred.clone(),
    );
    parity(
        cfg(2, 2, true, None, false),
        false,
        Factor::Auto,
        vec![5, 6, 8],
    );
}

#[test]
fn mlp_every_activation() {
    let pred: Vec<usize> = (3..9).collect();
    parity(
        cfg(1, 1, false, Some(ActFn::Relu), true),
        true,
        Factor::Always,
        pred.clone(),
    );
    parity(
        cfg(1, 2, true, Some(ActFn::Gelu), true),
        true,
        Factor::Auto,
        pred.clone(),
    );
    parity(
        cfg(2, 1, false, Some(ActFn::GeluNew), false),
        false,
        Factor::Never,
        pred.clone(),
    );
    parity(
        cfg(2, 2, true, Some(ActFn::Solu), true),
        true,
        Factor::Auto,
        pred,
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    // Large enough that gemm and the attention loops really split work over threads.
    let mut c = cfg(2, 2, true, Some(ActFn::Gelu), true);
    c.d_model = 96;
    c.d_head = 48;
    c.d_mlp = Some(192);
    let w = weights(&c, true);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let tc = TrainConfig::default();
            let mut e = CpuEngine::new(&w, &tc, (2..9).collect()).unwrap();
            let mut losses = Vec::new();
            for step in 0..4 {
                losses.push(
                    e.train_step(&tokens(&c, 64, 10, step), 64, 1e-3, step)
                        .unwrap()
                        .loss
                        .to_bits(),
                );
            }
            (losses, e.weights().unwrap().data)
        })
    };
    let (l1, w1) = run(1);
    let (l2, w2) = run(2);
    assert_eq!(l1, l2, "losses differ between 1 and 2 threads");
    let same = w1
        .iter()
        .zip(&w2)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count();
    assert_eq!(
        same,
        w1.len(),
        "{} of {} weights differ between 1 and 2 threads",
        w1.len() - same,
        w1.len()
    );
}

#[test]
fn bad_inputs_are_errors() {
    let c = cfg(1, 1, false, None, false);
    let w = weights(&c, false);
    let tc = TrainConfig::default();
    let field = |e: toyformer::Error| match e {
        toyformer::Error::Config { field, .. } => field,
        other => panic!("expected a config error, got {other}"),
    };
    // a scored position outside the context (n_ctx 12; 11 is scored by tasks whose target
    // is not the next token)
    assert_eq!(
        field(CpuEngine::new(&w, &tc, vec![12]).err().unwrap()),
        "n_ctx"
    );
    assert_eq!(
        field(CpuEngine::new(&w, &tc, vec![3, 2]).err().unwrap()),
        "pred_positions"
    );
    let mut e = CpuEngine::new(&w, &tc, vec![2, 3]).unwrap();
    assert_eq!(
        field(e.train_step(&[1, 2, 3], 2, 1e-3, 0).unwrap_err()),
        "tokens"
    ); // ragged
    assert_eq!(
        field(e.train_step(&[1, 2, 99, 3, 4], 1, 1e-3, 0).unwrap_err()),
        "tokens"
    ); // id ≥ d_vocab
    assert_eq!(
        field(e.train_step(&[1, 2, 3], 1, 1e-3, 0).unwrap_err()),
        "tokens"
    ); // target of 3 missing
    assert_eq!(field(e.logits(&[0; 13], 1).unwrap_err()), "tokens"); // longer than n_ctx
    assert!(e.logits(&[0; 5], 1).is_ok());
    // a diverged step keeps the weights
    let mut big = w.clone();
    big.get_mut("embed.W_E")
        .unwrap()
        .iter_mut()
        .for_each(|x| *x *= 1e36);
    let mut e = CpuEngine::new(&big, &tc, vec![2, 3]).unwrap();
    let err = e.train_step(&[1, 2, 3, 4, 5], 1, 1e-3, 9).unwrap_err();
    assert!(
        matches!(err, toyformer::Error::Diverged { step: 9, .. }),
        "{err}"
    );
    assert_eq!(e.weights().unwrap().data, big.data);
}
