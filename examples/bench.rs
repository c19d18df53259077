//! Training-speed benchmark of a reference config (a benchmark, never a test).
//!
//! cargo run --release --example bench -- --backend cpu --config sort-ref \
//!     [--windows 5 --window-steps 20 --warmup 10] [--converge --max-steps 8000 --target 0.99] [--json]
//!
//! sort-ref is seed 003's model and optimiser (1L 1H attn-only, d_model = d_head = 128,
//! batch 256, AdamW lr 1e-3, wd 0.01, betas 0.9/0.98) with clipping off, as in
//! ../shared/bench/pytorch_sort.py, so ms/step can be compared side by side.
mod common;

use common::*;
use std::time::Instant;
use toyformer::model::ModelConfig;
use toyformer::tasks::TaskSpec;
use toyformer::train::{eval, BackendKind, TrainConfig, Trainer};

fn main() {
    main_with(run)
}

/// FLOPs of one forward pass as pytorch_sort.py counts them (a multiply-add is 2 FLOPs;
/// the full T×T score matrix; every position unembedded). A training step is 3× forward
/// plus ~15 FLOPs per parameter for AdamW.
fn flops_per_step(cfg: &ModelConfig, b: usize, t: usize, n_loss: usize) -> f64 {
    let (b, t, c, hs, v) = (b as f64, t as f64, cfg.d_model as f64, (cfg.d_head * cfg.n_heads) as f64, cfg.d_vocab_out as f64);
    let per_layer = 3.0 * 2.0 * b * t * c * hs + 2.0 * b * t * t * hs * 2.0 + b * t * t * 7.0 + 2.0 * b * t * hs * c + b * t * c;
    let fwd = b * t * c + cfg.n_layers as f64 * per_layer + 2.0 * b * t * c * v + b * n_loss as f64 * v * 5.0;
    3.0 * fwd + 15.0 * cfg.n_params() as f64
}

fn run() -> toyformer::Result<()> {
    let a = Args::parse(&["json", "converge"])?;
    a.check_known(&["backend", "config", "windows", "window-steps", "warmup", "max-steps", "eval-every", "target", "batch"])?;
    let (task, mut model) = match a.str("config").unwrap_or("sort-ref") {
        "sort-ref" => (TaskSpec::default_for("sort")?, ModelConfig::sort_ref()),
        "perm-4" => {
            let t = TaskSpec::Permutations { n: 4 };
            let m = t.default_model();
            (t, m)
        }
        other => return Err(toyformer::Error::config("config", format!("unknown config {other:?} (sort-ref or perm-4)"))),
    };
    model.seed = 0;
    let batch = a.get_or("batch", 256usize)?;
    let tc = TrainConfig { steps: 10_000_000, batch_size: batch, grad_clip: 0.0, ..Default::default() };
    let kind = BackendKind::parse(a.str("backend").unwrap_or("cpu"))?;
    let threads = candle_core::utils::get_num_threads();
    let flops = flops_per_step(&model, batch, task.seq_len(), task.pred_positions().len());
    let mut out = serde_json::json!({
        "config": a.str("config").unwrap_or("sort-ref"), "batch": batch, "threads": threads,
        "gflop_per_step": flops / 1e9,
    });

    let mut tr = Trainer::new(task.clone(), tc.clone(), toyformer::train::make_backend(kind, &toyformer::model::Weights::init(&model)?, &tc, &task)?)?;
    out["backend"] = tr.backend.name().into();
    for _ in 0..a.get_or("warmup", 10)? {
        tr.step()?;
    }
    let (windows, per) = (a.get_or("windows", 5usize)?, a.get_or("window-steps", 20usize)?);
    let mut ms = Vec::new();
    for _ in 0..windows {
        let t0 = Instant::now();
        for _ in 0..per {
            tr.step()?;
        }
        ms.push(t0.elapsed().as_secs_f64() * 1e3 / per as f64);
    }
    let mut sorted = ms.clone();
    sorted.sort_by(|x, y| x.total_cmp(y));
    let med = sorted[sorted.len() / 2];
    eprintln!(
        "{} on {} ({} threads), batch {batch}: ms/step min {:.2} median {:.2} max {:.2} | {:.1} steps/s | {:.2} GFLOP/s",
        out["config"], out["backend"], threads, sorted[0], med, sorted[sorted.len() - 1], 1e3 / med, flops / (med * 1e-3) / 1e9
    );
    out["ms_per_step"] = serde_json::json!({"min": sorted[0], "median": med, "max": sorted[sorted.len() - 1], "windows": ms});
    out["gflops_median"] = (flops / (med * 1e-3) / 1e9).into();

    if a.flag("converge") {
        let target: f64 = a.get_or("target", 0.99)?;
        let (max_steps, every) = (a.get_or("max-steps", 8000u64)?, a.get_or("eval-every", 100u64)?);
        let mut tr = Trainer::new(task.clone(), tc.clone(), toyformer::train::make_backend(kind, &toyformer::model::Weights::init(&model)?, &tc, &task)?)?;
        let t0 = Instant::now();
        let mut reached = serde_json::Value::Null;
        let mut last = (0u64, 0.0f64);
        while tr.step < max_steps {
            for _ in 0..every {
                tr.step()?;
            }
            // a fixed held-out set of 2048 sequences (the same every evaluation)
            let rep = eval::evaluate(tr.backend.as_mut(), &task, 12345, 2048, 512)?;
            last = (tr.step, rep.token_acc);
            if rep.token_acc >= target {
                reached = serde_json::json!({"step": tr.step, "token_acc": rep.token_acc, "wall_s": t0.elapsed().as_secs_f64()});
                break;
            }
        }
        eprintln!("converge to {target}: {}", if reached.is_null() { format!("not reached; step {} acc {:.4}", last.0, last.1) } else { reached.to_string() });
        out["converge"] = serde_json::json!({"target": target, "reached": reached, "last_step": last.0, "last_acc": last.1});
    }
    if a.flag("json") {
        println!("{out}");
    }
    Ok(())
}
