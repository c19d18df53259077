//! Time training for a reference configuration.
//!
//! cargo run --release --example bench -- --backend cpu --config sort-ref \
//!     [--windows 5 --window-steps 20 --warmup 10] \
//!     [--converge --max-steps N --eval-every 100 --target 0.99] [--load FILE.safetensors]
//!     [--flush-denormals | --no-flush-denormals] [--json] [--commands]
//!
//! `--workers K` (with `--backend cpu`) trains data-parallel over K engine replicas on the batch's
//! fixed shards, the page's worker-pool code path (run with RAYON_NUM_THREADS=K for K threads).
//! `--backend cpu` is the CPU engine, which flushes subnormal floats to zero during each step by
//! default (`--no-flush-denormals` turns that off); `--backend reference` is the candle backend,
//! which flushes only with `--flush-denormals` (then on every rayon thread for the whole run).
//! `--load` starts from saved weights (trained weights are where subnormals appear).
//!
//! sort-ref is seed 003's config, the one `../shared/bench/pytorch_sort.py` trains: sort n=10 numbers
//! below 50, 1L 1H attention-only, d_model = d_head = 128, n_ctx 22, batch 256, AdamW lr 1e-3,
//! wd 0.01, betas (0.9, 0.98). Gradient clipping is OFF here (grad_clip 0), because the PyTorch
//! script does not clip; toyformer's training default clips at 1.0. perm-4 is Permutations{n:4}
//! with its default model (adds LN), for throughput only; perm-5 the same at n = 5 (T = 722).
//! `--backend gpu` runs the wgpu engine (any adapter); windows are `Trainer::step_many` chunks, so
//! the GPU is read back once per window, not once per step.
//!
//! A step is `Trainer::step`: data generation + forward + backward + AdamW + batch accuracy, as in
//! the PyTorch script's `train_step` (which also generates its batch). Every timed window also
//! records the share of the machine's CPU that *other* processes used (0 = quiet, 1 = every core
//! busy elsewhere), computed from /proc exactly as the PyTorch script does. Timings here are
//! never asserted by any test.
mod common;

use common::*;
use std::time::Instant;
use toyformer::backend::{Backend, BackendKind};
use toyformer::backends::make_backend;
use toyformer::model::ModelConfig;
use toyformer::tasks::TaskSpec;
use toyformer::train::{eval, TrainConfig, Trainer};
use toyformer::{Error, Result};

fn main() {
    main_with(run)
}

/// Forward FLOPs per step (one multiply-add = 2 FLOPs), following the formula of
/// `pytorch_sort.py`'s `flops_per_step`: backward = 2x forward, AdamW ~15 FLOPs per trainable
/// parameter. LayerNorm (perm-4) is not counted, so its figure is slightly low.
struct Flops {
    forward: f64,
    forward_matmul: f64,
    train_step: f64,
    n_params: f64,
}

fn flops_per_step(b: usize, m: &ModelConfig, n_loss_pos: usize) -> Flops {
    let (b, t, d, dh, v) = (
        b as f64,
        m.n_ctx as f64,
        m.d_model as f64,
        m.d_head as f64,
        m.d_vocab_out as f64,
    );
    let nh = m.n_heads as f64;
    let embed = b * t * d; // + W_pos
    let qkv = 3.0 * 2.0 * b * t * d * dh * nh;
    let scores = 2.0 * b * t * t * dh * nh; // full T x T
    let softmax = b * t * t * 7.0 * nh; // scale, mask, ~5 per element
    let attn_v = 2.0 * b * t * t * dh * nh;
    let out_o = 2.0 * b * t * dh * d * nh;
    let resid = b * t * d;
    let unembed = 2.0 * b * t * d * v; // logits for all T positions
    let xent = b * n_loss_pos as f64 * v * 5.0;
    let per_layer = qkv + scores + softmax + attn_v + out_o + resid;
    let layers = m.n_layers as f64;
    let forward = embed + layers * per_layer + unembed + xent;
    let forward_matmul = layers * (qkv + scores + attn_v + out_o) + unembed;
    let n_params = m.d_vocab as f64 * d + t * d + layers * nh * (3.0 * d * dh + dh * d) + d * v;
    Flops {
        forward,
        forward_matmul,
        train_step: 3.0 * forward + 15.0 * n_params,
        n_params,
    }
}

/// (busy jiffies of the machine, total jiffies, this process's utime + stime) from /proc.
fn cpu_jiffies() -> (u64, u64, u64) {
    let read = || -> Option<(u64, u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let v: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 8 {
            return None;
        }
        let idle = v[3] + v[4];
        let total: u64 = v[..8].iter().sum();
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        let s: Vec<&str> = me.rsplit_once(')')?.1.split_whitespace().collect();
        let own = s.get(11)?.parse::<u64>().ok()? + s.get(12)?.parse::<u64>().ok()?;
        Some((total - idle, total, own))
    };
    read().unwrap_or((0, 0, 0))
}

fn others_frac(a: (u64, u64, u64), b: (u64, u64, u64)) -> f64 {
    let busy = b.0.saturating_sub(a.0) as f64 - b.2.saturating_sub(a.2) as f64;
    (busy / (b.1.saturating_sub(a.1)).max(1) as f64).max(0.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

fn config(name: &str) -> Result<(TaskSpec, ModelConfig)> {
    match name {
        "sort-ref" => Ok((
            TaskSpec::Sort { n: 10, max_num: 50 },
            ModelConfig::sort_ref(),
        )),
        "perm-4" | "perm-5" => {
            let t = TaskSpec::permutations(if name == "perm-4" { 4 } else { 5 });
            let m = t.default_model();
            Ok((t, m))
        }
        _ => Err(Error::config(
            "config",
            format!("unknown config {name:?} (use sort-ref, perm-4 or perm-5)"),
        )),
    }
}

/// The bench's settings from the command line.
struct Bench {
    cfg_name: String,
    task: TaskSpec,
    model: ModelConfig,
    kind: BackendKind,
    tc: TrainConfig,
    windows: usize,
    window_steps: u64,
    warmup: u64,
    converge: bool,
    max_steps: u64,
    eval_every: u64,
    target: f64,
    eval_samples: usize,
    /// Flush subnormals: the CPU engine's option, the reference's `--flush-denormals`.
    engine_ftz: bool,
    ftz: bool,
    load: Option<String>,
    /// `--workers K` (cpu): data-parallel over K replicas on fixed shards (`cpu::shard`, the page's
    /// code path; threads from RAYON_NUM_THREADS); absent: the plain engine.
    workers: Option<usize>,
}

fn parse_args(a: &Args) -> Result<Bench> {
    a.check_known(&[
        "backend",
        "config",
        "windows",
        "window-steps",
        "warmup",
        "max-steps",
        "eval-every",
        "target",
        "seed",
        "batch",
        "eval-samples",
        "load",
        "workers",
    ])?;
    let cfg_name = a.str("config").unwrap_or("sort-ref").to_string();
    let (task, model) = config(&cfg_name)?;
    let kind = BackendKind::parse(a.str("backend").unwrap_or("cpu"))?;
    let windows: usize = a.get_or("windows", 5)?;
    let window_steps: u64 = a.get_or("window-steps", 20)?;
    let warmup: u64 = a.get_or("warmup", 10)?;
    let converge = a.flag("converge");
    let max_steps: u64 = a.get_or("max-steps", 10_000)?;
    let eval_every: u64 = a.get_or("eval-every", 100)?;
    if windows == 0 || window_steps == 0 || eval_every == 0 {
        return Err(Error::config(
            "windows",
            "--windows, --window-steps and --eval-every must be at least 1",
        ));
    }
    let engine_ftz = !a.flag("no-flush-denormals");
    let ftz = match kind {
        BackendKind::Reference => a.flag("flush-denormals"),
        _ => engine_ftz,
    };
    let mut tc = TrainConfig {
        steps: if converge {
            max_steps
        } else {
            warmup + windows as u64 * window_steps
        },
        seed: a.get_or("seed", 0)?,
        grad_clip: 0.0, // the PyTorch anchor does not clip
        ..Default::default()
    };
    tc.batch_size = a.get_or("batch", tc.batch_size)?;
    Ok(Bench {
        cfg_name,
        task,
        model,
        kind,
        tc,
        windows,
        window_steps,
        warmup,
        converge,
        max_steps,
        eval_every,
        target: a.get_or("target", 0.99)?,
        eval_samples: a.get_or("eval-samples", 2048)?,
        engine_ftz,
        ftz,
        load: a.str("load").map(str::to_string),
        workers: a
            .str("workers")
            .map(|_| a.get_or("workers", 1))
            .transpose()?,
    })
}

fn run() -> Result<()> {
    let a = Args::parse(&[
        "json",
        "converge",
        "flush-denormals",
        "no-flush-denormals",
        "phases",
        "commands",
    ])?;
    let bn = parse_args(&a)?;
    // For the reference backend: FTZ/DAZ on this thread and every rayon thread, for the run.
    let _ftz_guard = (bn.kind == BackendKind::Reference && a.flag("flush-denormals"))
        .then(toyformer::cpu::ftz::FlushGuard::new);
    let (task, tc) = (&bn.task, &bn.tc);
    if a.flag("phases") {
        return phases(task, &bn.model, tc, bn.warmup, bn.window_steps);
    }
    if a.flag("commands") {
        return gpu_commands(task, &bn.model, tc);
    }
    let fl = flops_per_step(tc.batch_size, &bn.model, task.pred_positions().len());
    let mut trainer = Trainer::new(task.clone(), tc.clone(), make(&bn)?)?;
    let threads = rayon::current_num_threads();
    let rayon_env = std::env::var("RAYON_NUM_THREADS").ok();
    let (m, weights) = (&bn.model, bn.load.as_deref().unwrap_or("fresh"));
    eprintln!(
        "bench {} | task {} | {}L {}H d_model {} d_head {} n_ctx {} ({} params) | batch {} | grad_clip off | backend {} | threads {} (RAYON_NUM_THREADS={}) | flush-denormals {} | weights {weights}",
        bn.cfg_name, task.name(), m.n_layers, m.n_heads, m.d_model, m.d_head, m.n_ctx, m.n_params(),
        tc.batch_size, trainer.backend.name(), threads, rayon_env.as_deref().unwrap_or("unset"), if bn.ftz { "on" } else { "off" },
    );
    eprintln!(
        "FLOPs/step (pytorch_sort.py formula): forward {:.3} G (matmul {:.3} G), train step {:.3} G; {} trainable params counted",
        fl.forward / 1e9, fl.forward_matmul / 1e9, fl.train_step / 1e9, fl.n_params
    );
    let mut out = serde_json::json!({
        "config": bn.cfg_name, "task": task.name(), "backend": trainer.backend.name(), "batch": tc.batch_size,
        "grad_clip": 0.0, "threads": threads, "rayon_num_threads": rayon_env, "flush_denormals": bn.ftz, "weights": weights,
        "flops_train_step": fl.train_step, "flops_forward": fl.forward,
    });
    if !bn.converge {
        out["throughput"] = throughput(&bn, &mut trainer, &fl, threads)?;
    } else {
        out["converge"] = converge(&bn, &mut trainer)?;
    }
    if a.flag("json") {
        println!("{out}");
    }
    Ok(())
}

/// The backend to time, on fresh or `--load`ed weights.
fn make(bn: &Bench) -> Result<Box<dyn Backend>> {
    let w = match &bn.load {
        Some(path) => {
            let w = toyformer::io::load_weights(&std::fs::read(path)?, None)?;
            toyformer::train::check_compatible(&bn.task, &w.cfg)?;
            w
        }
        None => toyformer::model::Weights::init(&bn.model)?,
    };
    Ok(match bn.kind {
        BackendKind::Cpu if bn.workers.is_some() => {
            let k = bn.workers.unwrap_or(1);
            eprintln!("data-parallel: {k} workers on fixed shards (cpu::shard::ShardedCpu)");
            Box::new(toyformer::cpu::shard::ShardedCpu::new(
                &w,
                &bn.tc,
                bn.task.pred_positions(),
                k,
            )?)
        }
        BackendKind::Cpu => {
            let opts = toyformer::cpu::EngineOptions {
                flush_denormals: bn.engine_ftz,
                ..Default::default()
            };
            Box::new(toyformer::cpu::CpuEngine::with_options(
                &w,
                &bn.tc,
                bn.task.pred_positions(),
                opts,
            )?)
        }
        _ => make_backend(bn.kind, &w, &bn.tc, &bn.task)?,
    })
}

/// Timed windows after a warm-up. Each window is one `Trainer::step_many`: on the GPU one chunk
/// with a single readback at its end; on the CPU the same loop over train_step that
/// `Trainer::step` runs.
fn throughput(
    bn: &Bench,
    trainer: &mut Trainer,
    fl: &Flops,
    threads: usize,
) -> Result<serde_json::Value> {
    let (warmup, window_steps) = (bn.warmup, bn.window_steps);
    let t0 = Instant::now();
    trainer.step_many(warmup)?;
    let warm = t0.elapsed().as_secs_f64();
    eprintln!(
        "  warm-up: {warmup} steps in {:.1} ms ({:.3} ms/step, includes building the pipelines)",
        1e3 * warm,
        1e3 * warm / warmup.max(1) as f64
    );
    let mut ms = Vec::new();
    let mut others = Vec::new();
    for w in 0..bn.windows {
        let j0 = cpu_jiffies();
        let t0 = Instant::now();
        trainer.step_many(window_steps)?;
        let dt = t0.elapsed().as_secs_f64();
        let j1 = cpu_jiffies();
        let m = 1e3 * dt / window_steps as f64;
        let o = others_frac(j0, j1);
        eprintln!(
            "  window {w}: {m:.2} ms/step ({:.1} steps/s), others' CPU {o:.2}",
            1e3 / m
        );
        ms.push(m);
        others.push(o);
    }
    let (mn, md, mx) = (
        ms.iter().cloned().fold(f64::INFINITY, f64::min),
        median(&ms),
        ms.iter().cloned().fold(0.0, f64::max),
    );
    let last = trainer.history.last().map(|m| m.loss).unwrap_or(f32::NAN);
    // Every digit of the last loss and its bits: refactors must leave this bit-identical.
    eprintln!(
        "  loss after {} steps: {last:?} (f32 bits {:#010x})",
        trainer.step,
        last.to_bits()
    );
    println!(
        "{} {}: ms/step min {mn:.2} median {md:.2} max {mx:.2} | steps/s median {:.1} | {:.2} GFLOP/s (median) | threads {threads} | others' CPU median {:.2} max {:.2} | loss after {} steps {last:.4}",
        bn.cfg_name, trainer.backend.name(), 1e3 / md, fl.train_step / (md * 1e-3) / 1e9, median(&others),
        others.iter().cloned().fold(0.0, f64::max), trainer.step
    );
    Ok(serde_json::json!({
        "warmup": warmup, "windows": bn.windows, "window_steps": window_steps,
        "ms_per_step": {"min": mn, "median": md, "max": mx, "windows": ms},
        "steps_per_s_median": 1e3 / md, "gflops_median": fl.train_step / (md * 1e-3) / 1e9,
        "others_cpu_frac": others,
    }))
}

/// `--converge`: trains until the held-out token accuracy reaches `--target` (evaluated every
/// `--eval-every` steps on the same samples of this seed's eval stream) or `--max-steps`.
fn converge(bn: &Bench, trainer: &mut Trainer) -> Result<serde_json::Value> {
    let (eval_every, eval_samples, target) = (bn.eval_every, bn.eval_samples, bn.target);
    let mut t_train = 0.0f64;
    let j0 = cpu_jiffies();
    let t_start = Instant::now();
    let mut reached = serde_json::Value::Null;
    let mut hist = Vec::new();
    while !trainer.done() {
        let t0 = Instant::now();
        let m = trainer
            .step_many(eval_every - trainer.step % eval_every)?
            .pop()
            .expect("at least one step");
        t_train += t0.elapsed().as_secs_f64();
        if trainer.step.is_multiple_of(eval_every) {
            let rep = eval::evaluate(
                trainer.backend.as_mut(),
                &bn.task,
                bn.tc.seed,
                eval_samples,
                eval_samples,
            )?;
            let wall = t_start.elapsed().as_secs_f64();
            let o = others_frac(j0, cpu_jiffies());
            eprintln!(
                "  step {:6} train loss {:.4} held-out loss {:.4} token acc {:.4} | wall {wall:.1}s train {t_train:.1}s | others' CPU {o:.2}",
                trainer.step, m.loss, rep.loss, rep.token_acc
            );
            let h = serde_json::json!({"step": trainer.step, "train_loss": m.loss, "val_loss": rep.loss,
                "val_acc": rep.token_acc, "wall_s": wall, "train_s": t_train, "others_cpu_frac": o});
            hist.push(h.clone());
            if rep.token_acc >= target {
                reached = h;
                break;
            }
        }
    }
    let cfg_name = &bn.cfg_name;
    match reached.get("step") {
        Some(s) => println!(
            "{cfg_name}: token accuracy ≥ {target} on {eval_samples} held-out samples at step {s} ({:.1} s wall, {:.1} s in train steps)",
            reached["wall_s"].as_f64().unwrap_or(0.0), reached["train_s"].as_f64().unwrap_or(0.0)
        ),
        None => {
            let last = hist.last().cloned().unwrap_or(serde_json::Value::Null);
            println!(
                "{cfg_name}: did not reach {target} within {} steps; last eval: step {} token acc {} ({:.1} s wall)",
                bn.max_steps, last["step"], last["val_acc"], t_start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(
        serde_json::json!({"target_acc": target, "eval_every": eval_every, "eval_samples": eval_samples,
        "max_steps": bn.max_steps, "reached": reached, "history": hist}),
    )
}

/// `--commands` (GPU): the commands and dispatches one training step records, without timing.
fn gpu_commands(task: &TaskSpec, model: &ModelConfig, tc: &TrainConfig) -> Result<()> {
    let w = toyformer::model::Weights::init(model)?;
    let mut g = toyformer::gpu::GpuBackend::new(&w, tc, task.pred_positions())?;
    let (commands, dispatches) = g.runner.commands_per_step(tc.batch_size, task.seq_len())?;
    println!(
        "GPU commands per step: {commands} ({dispatches} dispatches; one stats copy per submission) | B {} T {} P {} C {} V {}",
        tc.batch_size, task.seq_len(), task.pred_positions().len(), model.d_model, model.d_vocab_out
    );
    Ok(())
}

/// `--phases` (CPU only): a rough split of one step's time, from public entry points only.
/// "forward" is `run_with_hooks` (logits at all T positions, more than training computes, so
/// an upper bound); "forward+backward" is `loss_and_grads` (also copies the ~80k gradients to
/// f64 vectors); the rest of a train step is the gradient norm, argmax and AdamW.
fn phases(
    task: &TaskSpec,
    model: &ModelConfig,
    tc: &TrainConfig,
    warmup: u64,
    n: u64,
) -> Result<()> {
    use toyformer::reference::{forward::NoHooks, ReferenceBackend};
    let w = toyformer::model::Weights::init(model)?;
    let mut b = ReferenceBackend::new(&w, tc, task.pred_positions())?;
    let bs = tc.batch_size;
    let time = |f: &mut dyn FnMut(u64) -> Result<()>| -> Result<f64> {
        for s in 0..warmup {
            f(s)?;
        }
        let t0 = Instant::now();
        for s in 0..n {
            f(warmup + s)?;
        }
        Ok(1e3 * t0.elapsed().as_secs_f64() / n as f64)
    };
    let data = time(&mut |s| {
        std::hint::black_box(task.batch(tc.seed, s, bs));
        Ok(())
    })?;
    let step = time(&mut |s| {
        b.train_step(&task.batch(tc.seed, s, bs), bs, tc.lr, s)?;
        Ok(())
    })?;
    let fwd = time(&mut |s| {
        b.run_with_hooks(&task.batch(tc.seed, s, bs), bs, &mut NoHooks)?;
        Ok(())
    })?;
    let fb = time(&mut |s| {
        b.loss_and_grads(&task.batch(tc.seed, s, bs), bs)?;
        Ok(())
    })?;
    println!(
        "phases (ms per step, {n} steps each after {warmup} warm-up; each includes data {data:.2}): data {data:.2} | forward (all T logits) {fwd:.2} | forward+backward {fb:.2} (backward ≈ {:.2}) | full train step {step:.2} (grad norm + argmax + AdamW ≈ {:.2})",
        fb - fwd, step - fb
    );
    Ok(())
}
