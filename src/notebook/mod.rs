//! "Open this analysis in Python": a Jupyter notebook (nbformat 4.5, no outputs) that loads
//! a model into TransformerLens 4.x (`TransformerBridge`), defines the task's data generator,
//! and recomputes what the page showed — accuracy, attention patterns on the page's input,
//! full QK and OV circuits with the per-head scores, attention to the answer, direct logit
//! attribution — each cell printing its number next to toyformer's
//! (`check NAME: notebook X toyformer Y tol Z ok`), so a reader sees that they agree and
//! `pkg-config/tl-check.py` can check it.
//!
//! The Python of every cell is in `src/notebook/python/*.py` (one file per step, readable
//! on its own); the task's generator comes from [`tasks::task_python`]. The output is
//! deterministic: the same weights and options give the same bytes.

pub mod numbers;
pub mod tasks;

use crate::error::{Error, Result};
use crate::io::save_safetensors;
use crate::model::Weights;
use crate::tasks::TaskSpec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the notebook is made from, besides the weights and the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotebookOptions {
    /// The page's input (its prompt text; empty = the first fresh sample).
    pub input: String,
    /// Fresh samples the page's analyses average over, and their data-stream seed.
    pub samples: usize,
    pub seed: u64,
    /// Sequences of the fresh-accuracy comparison.
    pub fresh_samples: usize,
    /// Training step of the weights (shown in the title).
    pub step: u64,
    /// `None`: the weights are embedded (base64). `Some(name)`: the notebook reads the
    /// `.safetensors` file of that name beside it.
    pub weights_file: Option<String>,
}

impl Default for NotebookOptions {
    fn default() -> Self {
        NotebookOptions {
            input: String::new(),
            samples: 32,
            seed: 0,
            fresh_samples: 256,
            step: 0,
            weights_file: None,
        }
    }
}

fn lines(text: &str) -> Value {
    // nbformat stores a cell's source as a list of lines, each but the last ending in \n.
    let parts: Vec<&str> = text.trim_end_matches('\n').split_inclusive('\n').collect();
    json!(parts)
}

fn markdown(id: usize, text: &str) -> Value {
    json!({"cell_type": "markdown", "id": format!("cell-{id}"), "metadata": {}, "source": lines(text)})
}

fn code(id: usize, text: &str) -> Value {
    json!({"cell_type": "code", "execution_count": null, "id": format!("cell-{id}"),
           "metadata": {}, "outputs": [], "source": lines(text)})
}

/// Python that sets `state_dict` (3.x keys) from the embedded bytes or the file beside.
fn weights_python(w: &Weights, task: &TaskSpec, opts: &NotebookOptions) -> Result<String> {
    let cfg_json = serde_json::to_string_pretty(&w.cfg.to_tl_json())?;
    let load = match &opts.weights_file {
        Some(name) => format!(
            "from safetensors.torch import load_file\n\nstate_dict = load_file({})  # the .safetensors file beside this notebook\n",
            serde_json::to_string(name)?
        ),
        None => {
            let meta = [("toyformer_task".to_string(), serde_json::to_string(task)?)];
            let bytes = save_safetensors(w, &meta)?;
            format!(
                "WEIGHTS = \"{}\"  # the .safetensors file, base64\nstate_dict = load_safetensors(base64.b64decode(WEIGHTS))\n",
                base64(&bytes)
            )
        }
    };
    Ok(format!(
        "CONFIG = json.loads(r'''{cfg_json}''')  # HookedTransformerConfig fields; TransformerBridgeConfig takes them\n{load}"
    ))
}

/// Standard base64 with padding (Python's `base64.b64decode`).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The notebook as JSON text (nbformat 4.5): see the module doc.
pub fn export_notebook(w: &Weights, task: &TaskSpec, opts: &NotebookOptions) -> Result<String> {
    let nums = numbers::page_numbers(
        w,
        task,
        &opts.input,
        opts.samples,
        opts.fresh_samples,
        opts.seed,
    )?;
    let toyformer = format!(
        "TOYFORMER = json.loads(r'''{}''')  # the numbers the page showed\n",
        serde_json::to_string(&nums)?
    );
    let cfg = &w.cfg;
    let mut src: Vec<(bool, String)> = vec![
        (false, intro(w, task, opts)),
        (true, include_str!("python/setup.py").into()),
        (false, MD_WEIGHTS.into()),
        (
            true,
            weights_python(w, task, opts)? + &toyformer + "\n" + include_str!("python/load.py"),
        ),
        (false, format!("## The task: {}\n\n{MD_TASK}", task.name())),
        (true, tasks::task_python(task)),
        (false, MD_ACCURACY.into()),
        (true, include_str!("python/accuracy.py").into()),
        (false, MD_ATTENTION.into()),
        (true, include_str!("python/attention.py").into()),
        (
            false,
            if cfg.normalization_type.is_some() {
                MD_PROCESS_LN
            } else {
                MD_PROCESS_NONE
            }
            .into(),
        ),
        (true, include_str!("python/process.py").into()),
        (false, MD_CIRCUITS.into()),
        (true, include_str!("python/circuits.py").into()),
        (false, MD_SCORES.into()),
        (true, include_str!("python/scores.py").into()),
        (false, MD_DLA.into()),
        (true, include_str!("python/dla.py").into()),
    ];
    if cfg.n_layers >= 2 {
        src.push((false, MD_COMPOSITION.into()));
        src.push((true, include_str!("python/composition.py").into()));
        src.push((false, MD_LEFT_OUT.into()));
    }
    let cells: Vec<Value> = src
        .iter()
        .enumerate()
        .map(|(i, (is_code, text))| {
            if *is_code {
                code(i, text)
            } else {
                markdown(i, text)
            }
        })
        .collect();
    let nb = json!({
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "toyformer": {"task": task, "model": cfg, "step": opts.step}
        },
        "nbformat": 4,
        "nbformat_minor": 5
    });
    let mut text = serde_json::to_string_pretty(&nb).map_err(Error::from)?;
    text.push('\n');
    Ok(text)
}

fn intro(w: &Weights, task: &TaskSpec, opts: &NotebookOptions) -> String {
    let c = &w.cfg;
    let mlp = match (c.d_mlp, c.act_fn) {
        (Some(m), Some(a)) => format!("an MLP of {m} ({})", a.as_str()),
        _ => "attention only".into(),
    };
    format!(
        "# toyformer analysis in TransformerLens\n\n\
         A {}-layer transformer with {} head(s) per layer (d_model {}, d_head {}, {mlp}{}) trained on \
         **{}** for {} steps, exported from toyformer. This notebook loads it into TransformerLens 4.x \
         (`TransformerBridge`) and recomputes what the page showed. Every `check` line prints the number \
         computed here next to the page's: they agree to the stated tolerance.\n\n\
         Needs `pip install \"transformer_lens>=4\" plotly` (TransformerLens with PyTorch is a large install).\n",
        c.n_layers,
        c.n_heads,
        c.d_model,
        c.d_head,
        if c.normalization_type.is_some() { ", LayerNorm" } else { "" },
        task.name(),
        opts.step
    )
}

const MD_WEIGHTS: &str = "## The weights\n\n\
The weights are a `.safetensors` file with TransformerLens 3.x names (`embed.W_E`, `blocks.0.attn.W_Q` \
[n_heads, d_model, d_head], …). TransformerLens 4.x builds the same architecture from the config with \
`TransformerBridge.boot_native` and converts the 3.x names with `convert_tl_checkpoint`.";

const MD_TASK: &str = "The data generator writes sequences in toyformer's token layout, with its own \
random numbers (numpy). `answer_sources(tokens, p)` gives the positions holding the token predicted at \
position p: where a copying head should attend.";

const MD_ACCURACY: &str = "## Accuracy\n\n\
Token accuracy: the fraction of predicted positions whose highest logit is the correct next token. First \
on the page's own fresh samples (the same sequences, so the same number), then on fresh samples drawn \
here (a different draw, so equal up to sampling noise).";

const MD_ATTENTION: &str = "## Attention patterns\n\n\
The attention patterns of every head on the page's input (`hook_pattern`: query rows, key columns). \
The check is the mean attention each head puts on the answer's position(s) when predicting.";

const MD_PROCESS_LN: &str = "## Processed weights\n\n\
Circuits are read off TransformerLens-processed weights, as the page does: `fold_ln` (the LayerNorm \
gains and biases folded into the weights that read them) and `center_writing_weights` (every weight \
writing to the residual stream has its mean removed). The processed model computes the same logits. \
(TransformerLens 4.3's `bridge.process_weights` is not used: on a `boot_native` bridge it changed the \
logits when we tried it, so the two steps are written out here.)";

const MD_PROCESS_NONE: &str = "## Processed weights\n\n\
Without LayerNorm, TransformerLens's weight processing changes nothing: `processed` is the state dict \
as loaded, and `pmodel` the same model.";

const MD_CIRCUITS: &str = "## Full QK and OV circuits\n\n\
Full QK circuit: `W_E W_Q W_Kᵀ W_Eᵀ / sqrt(d_head)`, the score a query token gives a key token. Full OV \
circuit: `W_E W_V W_O W_U`, what attending to a token adds to each logit. The scores, over the task's \
value tokens: the OV diagonal fraction (rows whose largest logit is the token itself), the eigenvalue \
copying score (Σ Re λ / Σ |λ|), and where each query token's QK row peaks (key − query offset: its mean, \
and the fraction 1 to 3 above).";

const MD_SCORES: &str = "## Attention to the answer\n\n\
Over the page's fresh samples, at the predicted positions: the attention each head puts on the \
position(s) holding the correct answer, and on the prompt.";

const MD_DLA: &str = "## Direct logit attribution\n\n\
The final residual stream is a sum of components; with the final LayerNorm's scale frozen, each \
component's dot product with the correct token's unembedding is its direct contribution to the correct \
logit. Means over the page's samples and predicted positions; they sum to the mean correct logit.";

const MD_COMPOSITION: &str = "## Composition\n\n\
How much a head in a later layer reads what a head in an earlier layer writes: \
‖W_OV^A W^B‖_F / (‖W_OV^A‖_F ‖W^B‖_F) with W^B the later head's W_QK (Q-composition), W_QKᵀ \
(K-composition) or W_OV (V-composition), from TransformerLens's `all_composition_scores` on the \
processed weights. Random heads already score well above 0: compare heads with each other.";

const MD_LEFT_OUT: &str = "## Not reproduced here\n\n\
The page also splits the DLA by path (source → heads → logits) for models with 2+ layers; this \
notebook stops at the per-component DLA.";
