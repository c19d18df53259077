//! Train a model on a task from the command line.
//!
//! cargo run --release --example train -- --task sort --steps 3000 --seed 0 \
//!     --out runs/sort.safetensors [--backend cpu] [--json]
//!
//! With --out it also prints the Python that loads the two files into TransformerLens 4.x
//! (TransformerBridge) and 3.x (HookedTransformer).
//!
//! cargo run --release --example train -- --task custom --data FILE [--separator C] \
//!     [--format auto|jsonl|text] [--frac-train F] [--split-seed S] [--n-ctx N] ...
//! cargo run --release --example train -- --task mod-add --p 53 --steps 4000 \
//!     --weight-decay 1 --eval-every 200     # a finite dataset: train + test accuracy
mod common;

use common::*;
use std::io::{IsTerminal, Write};
use std::time::Instant;
use toyformer::backend::BackendKind;
use toyformer::io::TlVersion;
use toyformer::model::Weights;
use toyformer::tasks::TaskSpec;
use toyformer::train::{eval, Metrics, Schedule, TrainConfig, Trainer};

fn main() {
    main_with(run)
}

fn run() -> toyformer::Result<()> {
    let a = Args::parse(&["json"])?;
    let own = [
        "steps",
        "seed",
        "batch",
        "lr",
        "weight-decay",
        "clip",
        "warmup",
        "out",
        "backend",
        "eval-samples",
        "eval-every",
    ];
    a.check_known(&[TASK_KEYS, MODEL_KEYS, &own].concat())?;
    let task = task_from(&a)?;
    let model = model_from(&a, &task)?;
    let tc = train_config(&a, &task)?;
    let kind = BackendKind::parse(a.str("backend").unwrap_or("auto"))?;
    let mut trainer = Trainer::from_scratch(task.clone(), &model, tc.clone(), kind)?;
    eprintln!(
        "task {} | model {}L {}H d_model {} d_head {} ({} params) | backend {}",
        task.name(),
        model.n_layers,
        model.n_heads,
        model.d_model,
        model.d_head,
        model.n_params(),
        trainer.backend.name()
    );
    let t0 = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut progress = Progress::new(tc.steps, tty);
    // --eval-every N: a finite dataset's exact train and test accuracy every N steps
    // (grokking: test accuracy rising long after train accuracy)
    let eval_every: u64 = a.get_or("eval-every", 0)?;
    let chunk = if eval_every > 0 {
        eval_every.min(50)
    } else {
        50
    };
    // chunks of steps: the GPU backend reads its metrics back once per chunk, not per step
    while !trainer.done() {
        for m in trainer.step_many(chunk)? {
            progress.show(&m);
        }
        if eval_every > 0 && trainer.step % eval_every == 0 {
            let step = trainer.step;
            print_sides(trainer.backend.as_mut(), &task, step, t0)?;
        }
    }
    if tty {
        eprintln!();
    }
    let secs = t0.elapsed().as_secs_f64();
    let w = trainer.backend.weights()?;
    let rep = eval::evaluate(
        trainer.backend.as_mut(),
        &task,
        tc.seed,
        a.get_or("eval-samples", 2048)?,
        512,
    )?;
    if let Some(out) = a.str("out") {
        save(out, &w, &task, &tc)?;
    }
    eprintln!(
        "held-out ({} samples): loss {:.4} token acc {:.4} seq acc {:.4} (floor {:.4})",
        rep.samples,
        rep.loss,
        rep.token_acc,
        rep.seq_acc,
        task.loss_floor()
    );
    let sides = finite_reports(trainer.backend.as_mut(), &task)?;
    for (name, loss, acc) in &sides {
        eprintln!("{name}: loss {loss:.4} token acc {acc:.4}");
    }
    if a.flag("json") {
        let last = trainer.history.last();
        println!(
            "{}",
            serde_json::json!({
                "task": task.name(),
                "steps": trainer.step,
                "loss": last.map(|m| m.loss),
                "token_acc": rep.token_acc,
                "seq_acc": rep.seq_acc,
                "eval_loss": rep.loss,
                "steps_per_s": trainer.step as f64 / secs.max(1e-9),
                "backend": trainer.backend.name(),
                "splits": sides.iter().map(|(n, l, a)| serde_json::json!({"split": n, "loss": l, "token_acc": a})).collect::<Vec<_>>(),
            })
        );
    }
    Ok(())
}

/// A step's line of a finite dataset's exact train / test / full accuracy (`--eval-every`).
fn print_sides(
    backend: &mut dyn toyformer::backend::Backend,
    task: &TaskSpec,
    step: u64,
    t0: Instant,
) -> toyformer::Result<()> {
    let sides = finite_reports(backend, task)?;
    let line: Vec<String> = sides
        .iter()
        .map(|(n, l, a)| format!("{n} loss {l:.4} acc {a:.4}"))
        .collect();
    eprintln!(
        "step {step} ({:.0} s): {}",
        t0.elapsed().as_secs_f64(),
        line.join(" | ")
    );
    Ok(())
}

fn train_config(a: &Args, task: &TaskSpec) -> toyformer::Result<TrainConfig> {
    let mut tc = TrainConfig {
        steps: a.get_or("steps", 3000)?,
        seed: a.get_or("seed", 0)?,
        ..Default::default()
    };
    // A finite dataset trains full-batch (its whole training split) unless --batch says.
    let full = task.finite().map_or(tc.batch_size, |f| f.n_train as usize);
    tc.batch_size = a.get_or("batch", full)?;
    tc.lr = a.get_or("lr", tc.lr)?;
    tc.weight_decay = a.get_or("weight-decay", tc.weight_decay)?;
    tc.grad_clip = a.get_or("clip", tc.grad_clip)?;
    if let Some(w) = a.get::<u64>("warmup")? {
        tc.schedule = Schedule::WarmupCosine {
            warmup_steps: w,
            min_lr_frac: 0.1,
        };
    }
    Ok(tc)
}

/// `--out FILE.safetensors`: the weights with the task and train config as metadata, and the
/// TransformerLens config beside them (FILE.json).
fn save(out: &str, w: &Weights, task: &TaskSpec, tc: &TrainConfig) -> toyformer::Result<()> {
    let meta = vec![
        ("task".to_string(), serde_json::to_string(task)?),
        ("train_config".to_string(), serde_json::to_string(tc)?),
    ];
    let bytes = toyformer::io::save_safetensors(w, &meta)?;
    if let Some(dir) = std::path::Path::new(out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, bytes)?;
    let cfg_path = std::path::Path::new(out).with_extension("json");
    std::fs::write(
        &cfg_path,
        serde_json::to_string_pretty(&w.cfg.to_tl_json())?,
    )?;
    eprintln!("saved {out} and {}", cfg_path.display());
    // The Python that loads them: TransformerLens 4.x (what pip installs today) first.
    let cfg_name = cfg_path.display().to_string();
    for v in [TlVersion::V4, TlVersion::V3] {
        eprintln!("\n{}", toyformer::io::tl_python(v, out, &cfg_name));
    }
    Ok(())
}

/// The progress line: redrawn at most every 200 ms on a terminal, else printed every 500 steps.
struct Progress {
    total: u64,
    tty: bool,
    t0: Instant,
    last_print: Instant,
}

impl Progress {
    fn new(total: u64, tty: bool) -> Self {
        Progress {
            total,
            tty,
            t0: Instant::now(),
            last_print: Instant::now(),
        }
    }

    fn show(&mut self, m: &Metrics) {
        let (done, total) = (m.step + 1, self.total);
        let now = Instant::now();
        if now.duration_since(self.last_print).as_millis() < 200 && done != total {
            return;
        }
        self.last_print = now;
        let el = self.t0.elapsed().as_secs_f64();
        let sps = done as f64 / el.max(1e-9);
        let eta = (total - done) as f64 / sps.max(1e-9);
        let bar: String = (0..30)
            .map(|i| {
                if (i as u64) * total < 30 * done {
                    '#'
                } else {
                    '.'
                }
            })
            .collect();
        let line = format!(
            "[{bar}] {done}/{total} loss {:.4} acc {:.3} gnorm {:.2} | {:.1} steps/s ETA {:.0}s",
            m.loss, m.token_acc, m.grad_norm, sps, eta
        );
        if self.tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else if done % 500 == 0 || done == total {
            eprintln!("{line}");
        }
    }
}
