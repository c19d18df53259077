//! Circuit analysis of any model (ours or TransformerLens's) on a task: for every head the
//! OV diagonal fraction and eigenvalue copying score (value tokens of W_E W_OV W_U), the
//! token·token QK argmax summary (key − query offsets), the mean attention on the answer
//! position, and the per-component and per-path direct logit attribution to the correct
//! logit; composition scores for 2+ layers.
//!
//! cargo run --release --example circuits -- --model FILE.(pt|safetensors) --task sort \
//!     [--samples 1000] [--seed 0] [--json]
//! With --discover acdc|eap|eap-ig: circuit discovery and faithfulness (circuits_discover/).
mod common;
#[path = "circuits_discover/mod.rs"]
mod discover;

use common::*;
use toyformer::interp::report::{model_report, ModelReport};
use toyformer::tasks::TaskSpec;
use toyformer::train::check_compatible;

fn main() {
    main_with(run)
}

fn run() -> toyformer::Result<()> {
    let a = Args::parse(&["json", "compare", "neurons"])?;
    a.check_known(&[TASK_KEYS, &["model", "samples", "seed"], discover::KEYS].concat())?;
    let path = a
        .str("model")
        .ok_or_else(|| toyformer::Error::config("model", "give --model FILE.(pt|safetensors)"))?;
    let bytes = std::fs::read(path).map_err(|e| toyformer::Error::Io(format!("{path}: {e}")))?;
    let w = toyformer::io::load_weights(&bytes, None)?;
    let task = task_from(&a)?;
    let w = task.fit_context(w)?;
    if a.str("discover").is_some() {
        return discover::run(&a, &w, &task, path);
    }
    check_compatible(&task, &w.cfg)?;
    let rep = model_report(&w, &task, a.get_or("samples", 1000)?, a.get_or("seed", 0)?)?;
    if a.flag("json") {
        let mut v = serde_json::to_value(&rep)?;
        v["model_file"] = serde_json::json!(path);
        println!("{v}");
        return Ok(());
    }
    print_summary(&rep, path, &task);
    print_heads(&rep);
    print_dla(&rep);
    print_composition(&rep);
    for line in toyformer::interp::extra::extra_lines(&w, &task, &rep, a.get_or("seed", 0)?)? {
        println!("{line}");
    }
    Ok(())
}

/// The model, the task and how well the model does it.
fn print_summary(rep: &ModelReport, path: &str, task: &TaskSpec) {
    let c = &rep.model;
    println!(
        "model {path}: {}L {}H d_model {} d_head {}{}{}",
        c.n_layers,
        c.n_heads,
        c.d_model,
        c.d_head,
        if c.normalization_type.is_some() {
            ", LayerNorm (TL-processed: fold_ln, center_writing_weights)"
        } else {
            ""
        },
        if c.d_mlp.is_some() { ", MLP" } else { "" }
    );
    println!(
        "task {} · {} fresh samples · loss {:.4} · accuracy {:.4}",
        task.name(),
        rep.samples,
        rep.eval.loss,
        rep.eval.acc
    );
    println!(
        "value tokens {:?} (copying and QK scores are taken over these)",
        task.value_tokens()
    );
}

/// One line per head, then its QK argmax offsets.
fn print_heads(rep: &ModelReport) {
    println!();
    println!("head   OV diag  OV eig   QK argmax key−query (mean, median, above/equal/below)   attn→answer  attn→prompt  DLA");
    for h in &rep.heads {
        let q = &h.qk_token_argmax;
        println!(
            "L{}H{}   {:6.3}  {:6.3}   {:+6.2}, {:+5.1}, {:4.0}% / {:3.0}% / {:3.0}%                 {:6.3}       {:6.3}    {:+8.3}",
            h.layer, h.head, h.ov_diagonal_fraction, h.ov_eigen_copying, q.mean, q.median,
            q.frac_above * 100.0, q.frac_equal * 100.0, q.frac_below * 100.0, h.attention_to_answer, h.attention_to_prompt, h.dla
        );
        let hist: Vec<String> = q
            .histogram
            .iter()
            .map(|(o, n)| format!("{o:+}:{n}"))
            .collect();
        println!(
            "       QK argmax offsets (offset:count): {}",
            hist.join(" ")
        );
    }
}

/// DLA per component and per path.
fn print_dla(rep: &ModelReport) {
    println!();
    println!("direct logit attribution to the correct logit (mean over {} predicted positions; mean logit {:.3})", rep.dla.pairs, rep.dla.logit);
    println!("  per component:");
    for x in &rep.dla.components {
        println!("    {:32} {:+10.3}", x.label, x.mean);
    }
    println!("  per path (patterns and LN scales frozen):");
    for x in &rep.dla.paths {
        println!("    {:32} {:+10.3}", x.label, x.mean);
    }
}

/// Composition scores for 2+ layers.
fn print_composition(rep: &ModelReport) {
    let Some(comp) = &rep.composition else {
        return;
    };
    let (nl, nh) = (rep.model.n_layers, rep.model.n_heads);
    println!();
    println!("composition scores (earlier head → later head: Q K V)");
    for a in 0..nl * nh {
        for b in 0..nl * nh {
            if b / nh > a / nh {
                let i = a * nl * nh + b;
                println!(
                    "  L{}H{} → L{}H{}: {:.3} {:.3} {:.3}",
                    a / nh,
                    a % nh,
                    b / nh,
                    b % nh,
                    comp.q[i],
                    comp.k[i],
                    comp.v[i]
                );
            }
        }
    }
}
