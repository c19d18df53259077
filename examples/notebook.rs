//! Write a Jupyter notebook that redoes a model's analysis in TransformerLens 4.x.
//!
//! cargo run --release --example notebook -- --model FILE.(safetensors|pt) [--config FILE.json] \
//!     [--task sort --n 10 ...] --out analysis.ipynb [--input "3 1 4 1 5 9 2 6 5 3"] \
//!     [--samples 32] [--seed 0] [--fresh 256] [--beside]
//!
//! The task comes from the file's metadata when it has one, else from --task. `--model random`
//! makes a random model of the task's default config (with --n-layers, --d-mlp, ... as in the
//! train example; LayerNorm parameters and biases away from 1 / 0). `--beside`
//! writes the weights as a .safetensors file next to the notebook instead of embedding them.
//!
//! For `pkg-config/tl-check.py` (both directions of the TransformerLens 4.x round trip):
//!   --families DIR       one model of every family: DIR/NAME.safetensors, NAME.json (the TL
//!                        config) and NAME.logits.json (tokens, toyformer's logits)
//!   --check-bridge DIR   reads DIR/NAME.bridge.safetensors (a TL 4.x `state_dict()`) with its
//!                        NAME.json and compares our logits with NAME.bridge_logits.json (TL's)
mod common;

use common::*;
use std::path::Path;
use toyformer::interp::run_with_cache_weights;
use toyformer::model::{ActFn, ModelConfig, Norm, ParamKind, Weights};
use toyformer::notebook::{export_notebook, NotebookOptions};
use toyformer::share::import::import_model;
use toyformer::tasks::rng::CounterRng;
use toyformer::tasks::TaskSpec;
use toyformer::{Error, Result};

fn main() {
    main_with(run)
}

fn read(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("{path}: {e}")))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

fn run() -> Result<()> {
    let a = Args::parse(&["beside"])?;
    let own = [
        "model",
        "config",
        "out",
        "input",
        "samples",
        "seed",
        "fresh",
        "families",
        "check-bridge",
    ];
    a.check_known(&[TASK_KEYS, MODEL_KEYS, &own].concat())?;
    if let Some(dir) = a.str("families") {
        return families(Path::new(dir));
    }
    if let Some(dir) = a.str("check-bridge") {
        return check_bridge(Path::new(dir));
    }
    let path = a
        .str("model")
        .ok_or_else(|| Error::config("model", "give --model FILE.(safetensors|pt)"))?;
    let out = a
        .str("out")
        .ok_or_else(|| Error::config("out", "give --out analysis.ipynb"))?;
    let config = a.str("config").map(read).transpose()?;
    let config = config.map(|c| String::from_utf8_lossy(&c).into_owned());
    let selected = a.str("task").map(|_| task_from(&a)).transpose()?;
    let im = if path == "random" {
        let task = task_from(&a)?;
        let w = family_weights(&model_from(&a, &task)?, true)?;
        let bytes = toyformer::io::save_safetensors(&w, &[])?;
        import_model(&bytes, None, Some(&task))?
    } else {
        import_model(&read(path)?, config.as_deref(), selected.as_ref())?
    };
    let mut opts = NotebookOptions {
        input: a.str("input").unwrap_or("").to_string(),
        samples: a.get_or("samples", 32)?,
        seed: a.get_or("seed", 0)?,
        fresh_samples: a.get_or("fresh", 256)?,
        step: im.step,
        weights_file: None,
    };
    let out = Path::new(out);
    if a.flag("beside") {
        let st = out.with_extension("safetensors");
        let meta = [(
            "toyformer_task".to_string(),
            serde_json::to_string(&im.task)?,
        )];
        write(&st, &toyformer::io::save_safetensors(&im.weights, &meta)?)?;
        opts.weights_file = st.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    write(
        out,
        export_notebook(&im.weights, &im.task, &opts)?.as_bytes(),
    )?;
    eprintln!("wrote {} (task {})", out.display(), im.task.name());
    Ok(())
}

/// The model families the round trip covers, on sort (n 5, max_num 10).
fn family_configs() -> Vec<(&'static str, ModelConfig, bool)> {
    let base = |layers, heads, d_model, d_head| ModelConfig {
        n_layers: layers,
        n_heads: heads,
        d_model,
        d_head,
        d_mlp: None,
        act_fn: None,
        normalization_type: None,
        n_ctx: 12,
        d_vocab: 12,
        d_vocab_out: 10,
        seed: 7,
        train_biases: false,
        positional_embedding_type: Default::default(),
    };
    let mlp = |mut c: ModelConfig, act, ln| {
        c.d_mlp = Some(4 * c.d_model);
        c.act_fn = Some(act);
        c.normalization_type = ln;
        c
    };
    let ln = |mut c: ModelConfig| {
        c.normalization_type = Some(Norm::LN);
        c
    };
    vec![
        ("attn_1l1h_frozen", base(1, 1, 16, 16), false),
        ("attn_2l4h_biases", base(2, 4, 16, 4), true),
        ("attn_ln_2l2h_odd_heads", ln(base(2, 3, 16, 5)), true),
        (
            "mlp_relu_ln_1l2h",
            mlp(base(1, 2, 16, 8), ActFn::Relu, Some(Norm::LN)),
            true,
        ),
        (
            "mlp_gelu_2l2h",
            mlp(base(2, 2, 16, 8), ActFn::Gelu, None),
            true,
        ),
        (
            "mlp_gelu_new_ln_2l2h_frozen",
            mlp(base(2, 2, 16, 8), ActFn::GeluNew, Some(Norm::LN)),
            false,
        ),
        (
            "mlp_solu_ln_1l1h",
            mlp(base(1, 1, 16, 16), ActFn::Solu, Some(Norm::LN)),
            true,
        ),
    ]
}

/// TL's init, then LayerNorm parameters (and biases when `biases`) set away from 1 / 0, so
/// a transposition or a dropped tensor shows in the logits.
fn family_weights(cfg: &ModelConfig, biases: bool) -> Result<Weights> {
    let mut w = Weights::init(cfg)?;
    let mut rng = CounterRng::new(cfg.seed, 99, 0);
    for p in w.table.params.clone() {
        let (base, on) = match p.kind {
            ParamKind::LnWeight => (1.0, true),
            ParamKind::LnBias => (0.0, true),
            ParamKind::Bias => (0.0, biases),
            ParamKind::Weight => continue,
        };
        if on {
            for x in &mut w.data[p.offset..p.offset + p.len] {
                *x = base + 0.2 * rng.normal() as f32;
            }
        }
    }
    Ok(w)
}

fn families(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
    let task = TaskSpec::Sort { n: 5, max_num: 10 };
    let (batch, t) = (4, task.seq_len());
    let tokens = task.batch(3, 0, batch);
    for (name, cfg, biases) in family_configs() {
        let w = family_weights(&cfg, biases)?;
        let meta = [("toyformer_task".to_string(), serde_json::to_string(&task)?)];
        write(
            &dir.join(format!("{name}.safetensors")),
            &toyformer::io::save_safetensors(&w, &meta)?,
        )?;
        write(
            &dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&cfg.to_tl_json())?.as_bytes(),
        )?;
        let logits = run_with_cache_weights(&w, &tokens, batch)?.logits;
        let rows: Vec<&[u32]> = tokens.chunks(t).collect();
        let doc = serde_json::json!({"tokens": rows, "shape": logits.shape, "logits": logits.data});
        write(
            &dir.join(format!("{name}.logits.json")),
            doc.to_string().as_bytes(),
        )?;
        println!("wrote {name}");
    }
    Ok(())
}

fn check_bridge(dir: &Path) -> Result<()> {
    let mut worst = 0.0f64;
    for (name, _, _) in family_configs() {
        let file = |suffix: &str| dir.join(format!("{name}{suffix}"));
        let bytes = read(&file(".bridge.safetensors").display().to_string())?;
        let config =
            String::from_utf8_lossy(&read(&file(".json").display().to_string())?).into_owned();
        let im = import_model(&bytes, Some(&config), None)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&read(&file(".bridge_logits.json").display().to_string())?)?;
        let rows: Vec<Vec<u32>> = serde_json::from_value(doc["tokens"].clone())?;
        let tokens: Vec<u32> = rows.concat(); // (B, T)
        let theirs: Vec<f64> = serde_json::from_value(doc["logits"].clone())?;
        let batch = tokens.len() / im.weights.cfg.n_ctx;
        let ours = run_with_cache_weights(&im.weights, &tokens, batch)?
            .logits
            .data;
        let scale = theirs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let diff = ours
            .iter()
            .zip(&theirs)
            .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
        let rel = diff / scale.max(1e-12);
        worst = worst.max(rel);
        println!(
            "bridge -> toyformer {name}: max |Δlogit| {diff:.3e}, relative {rel:.3e} ({} logits)",
            ours.len()
        );
    }
    if worst > 1e-4 {
        return Err(Error::Weights(format!(
            "largest relative logit difference {worst:.3e} > 1e-4"
        )));
    }
    println!("all families within 1e-4 relative (worst {worst:.3e})");
    Ok(())
}
