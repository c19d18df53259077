//! Evaluate any model (ours or TransformerLens's) on fresh samples of a task.
//!
//! cargo run --release --example eval -- --model FILE.(pt|safetensors) --task sort \
//!     --samples 10000 [--json]
//! Without --task the task is proposed by evaluating every registered task that fits.
mod common;

use common::*;
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::TaskSpec;
use toyformer::train::{check_compatible, eval};

fn main() {
    main_with(run)
}

/// Without `--task`: the task the import proposes (every task that fits, scored on a small
/// sample), with the others and the config fields that had to be assumed, on stderr.
fn propose(bytes: &[u8]) -> toyformer::Result<(toyformer::model::Weights, TaskSpec)> {
    let m = toyformer::share::import_model(bytes, None, None)?;
    eprintln!("task proposed by evaluation ({:?}):", m.task_source);
    for c in &m.candidates {
        eprintln!(
            "  {:<14} token acc {:.3} on {} samples",
            c.task.name(),
            c.token_acc,
            toyformer::share::import::PROPOSAL_SAMPLES
        );
    }
    for f in &m.assumed {
        eprintln!("assumed {f}");
    }
    for n in &m.notes {
        eprintln!("note: {n}");
    }
    Ok((m.weights, m.task))
}

fn run() -> toyformer::Result<()> {
    let a = Args::parse(&["json"])?;
    a.check_known(&[TASK_KEYS, &["model", "samples", "seed", "batch"]].concat())?;
    let path = a
        .str("model")
        .ok_or_else(|| toyformer::Error::config("model", "give --model FILE.(pt|safetensors)"))?;
    let bytes = std::fs::read(path).map_err(|e| toyformer::Error::Io(format!("{path}: {e}")))?;
    let (w, task) = match a.str("task") {
        Some(_) => {
            let w = toyformer::io::load_weights(&bytes, None)?;
            let task = task_from(&a)?;
            let n_ctx = w.cfg.n_ctx;
            let w = task.fit_context(w)?;
            if w.cfg.n_ctx != n_ctx {
                eprintln!(
                    "n_ctx {n_ctx} < T = {}: W_pos extended with zero rows (the answer the task appends is never an input to a scored logit)",
                    w.cfg.n_ctx
                );
            }
            (w, task)
        }
        None => propose(&bytes)?,
    };
    check_compatible(&task, &w.cfg)?;
    let mut b = ReferenceBackend::for_inference(&w)?;
    let samples = a.get_or("samples", 10_000)?;
    let rep = eval::evaluate(
        &mut b,
        &task,
        a.get_or("seed", 0)?,
        samples,
        a.get_or("batch", 1000)?,
    )?;
    let sides = finite_reports(&mut b, &task)?;
    if a.flag("json") {
        println!(
            "{}",
            serde_json::json!({
                "task": task.name(), "model": path, "samples": rep.samples, "loss": rep.loss,
                "token_acc": rep.token_acc, "seq_acc": rep.seq_acc, "algo_acc": rep.algo_acc,
                "per_pos_acc": rep.per_pos_acc, "positions": rep.positions, "loss_floor": task.loss_floor(),
                "backend": "cpu",
                "splits": sides.iter().map(|(n, l, a)| serde_json::json!({"split": n, "loss": l, "token_acc": a})).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "model {path}: {}L {}H d_model {} d_head {}",
            w.cfg.n_layers, w.cfg.n_heads, w.cfg.d_model, w.cfg.d_head
        );
        println!("task {} ({} fresh samples)", task.name(), rep.samples);
        println!("loss {:.5} (floor {:.5})", rep.loss, task.loss_floor());
        println!(
            "token acc {:.4}  seq acc {:.4}  algorithm acc {:.4}",
            rep.token_acc, rep.seq_acc, rep.algo_acc
        );
        for (name, loss, acc) in &sides {
            println!("{name} split: loss {loss:.5} token acc {acc:.5}");
        }
        print!("per position:");
        for (p, acc) in rep.positions.iter().zip(&rep.per_pos_acc) {
            print!(" {p}:{acc:.3}");
        }
        println!();
    }
    Ok(())
}
