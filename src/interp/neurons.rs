//! MLP neurons: activations over the a × b grid of a two-operand task, direct effects on
//! the logits, importance ranking, top activating inputs, and neuron ablation.
//!
//! - **Two-operand tasks** (`min-of-two`, `mod-add`, `mod-sub`): prompts `[a, b, =]` with
//!   a, b in the task's value tokens 0..n and `=` = n; the neuron's activation is
//!   `blocks.{l}.mlp.hook_post` at position 2 (the `=`, where the answer is predicted).
//!   Grid row a·n + b.
//! - **Direct effect** of neuron i of layer l: W_out[l][i] · W_U (V,), the change in every
//!   logit per unit of activation through the residual stream straight to the unembedding
//!   (TL: `model.W_out[l] @ model.W_U`; for a LayerNorm model on TL-processed weights, where
//!   ln_final's gain is folded into W_U).
//! - **Importance** of a neuron: the mean over the grid of act(x) · (DE[ans(x)] − mean_c
//!   DE[c]) over the output tokens c: its mean direct push of the correct logit above the
//!   average logit (a logit difference; softmax ignores the mean). Neurons are ranked by it,
//!   largest first.
//! - **Neuron ablation** ([`run_neurons_ablated`]): the activations of the chosen neurons at
//!   `hook_post` replaced by 0 (zero) or by their mean over the batch and positions (mean).

use super::cache::{run_with_hooks, ActivationCache, HookSet};
use super::intervene::Ablation;
use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use candle_core::{Device, Tensor};
use serde::Serialize;

/// The operand count n and `=` token of a two-operand task, or an error naming the task.
pub fn two_operands(task: &TaskSpec) -> Result<usize> {
    match task.name() {
        "min-of-two" | "mod-add" | "mod-sub" => Ok(task.value_tokens().len()),
        other => Err(Error::task(
            other,
            "the a × b neuron grid is for two-operand tasks (min-of-two, mod-add, mod-sub)",
        )),
    }
}

/// Checks that `layer` is an MLP layer of the model.
fn check_mlp(w: &Weights, layer: usize) -> Result<usize> {
    let m = w
        .cfg
        .d_mlp
        .ok_or_else(|| Error::config("d_mlp", "the model has no MLP (attention-only)"))?;
    if layer >= w.cfg.n_layers {
        return Err(Error::config(
            "layer",
            format!(
                "{layer} is out of range (the model has {} layers)",
                w.cfg.n_layers
            ),
        ));
    }
    Ok(m)
}

/// Direct effects of every neuron of `layer`: W_out[layer] W_U, (M, V). Pass processed
/// weights for a LayerNorm model.
pub fn direct_effects(w: &Weights, layer: usize) -> Result<Mat> {
    let m = check_mlp(w, layer)?;
    let w_out = Mat::new(
        m,
        w.cfg.d_model,
        w.get(&format!("blocks.{layer}.mlp.W_out"))?.to_vec(),
    )?;
    w_out.matmul(&super::circuits::unembed(w)?)
}

/// The a × b grid of a two-operand task.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronGrid {
    /// operands per side
    pub n: usize,
    pub layer: usize,
    /// (n², M) activations at position 2, row a·n + b
    pub acts: Mat,
    /// the correct answer of each row
    pub answers: Vec<u32>,
}

/// The activations of every neuron of `layer` over all n² prompts `[a, b, =]`.
pub fn neuron_grid(w: &Weights, task: &TaskSpec, layer: usize) -> Result<NeuronGrid> {
    let n = two_operands(task)?;
    let m = check_mlp(w, layer)?;
    let backend = ReferenceBackend::for_inference(w)?;
    let name = super::act_name("post", layer);
    let (mut acts, mut answers) = (Vec::with_capacity(n * n * m), Vec::with_capacity(n * n));
    let rows: Vec<usize> = (0..n * n).collect();
    for chunk in rows.chunks(2048) {
        let tokens: Vec<u32> = chunk
            .iter()
            .flat_map(|&i| [(i / n) as u32, (i % n) as u32, n as u32])
            .collect();
        let want = name.clone();
        let cache = run_with_hooks(
            &backend,
            &tokens,
            chunk.len(),
            HookSet::recording(move |x| x == want),
        )?;
        for (r, prompt) in tokens.chunks(3).enumerate() {
            acts.extend_from_slice(cache.at(&name, r, 2)?);
            answers.push(task.solve(prompt)?[3]);
        }
    }
    Ok(NeuronGrid {
        n,
        layer,
        acts: Mat::new(n * n, m, acts)?,
        answers,
    })
}

/// One neuron's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NeuronSummary {
    pub neuron: usize,
    /// see the module docs
    pub importance: f64,
    /// mean activation over the grid
    pub mean_act: f64,
    /// the `top` grid rows with the largest activation: (a, b, activation), largest first
    pub top_inputs: Vec<(usize, usize, f32)>,
}

/// Every neuron's [`NeuronSummary`] ranked by importance (largest first), from the grid and
/// the direct effects (M, V) of its layer.
pub fn rank_neurons(grid: &NeuronGrid, de: &Mat, top: usize) -> Result<Vec<NeuronSummary>> {
    let (rows, m) = (grid.acts.rows, grid.acts.cols);
    if de.rows != m {
        return Err(Error::config(
            "neurons",
            format!("{} direct-effect rows for {m} neurons", de.rows),
        ));
    }
    let mut out: Vec<NeuronSummary> = (0..m)
        .map(|i| {
            let de_row = de.row(i);
            let de_mean = de_row.iter().map(|&x| x as f64).sum::<f64>() / de.cols as f64;
            let (mut imp, mut mean) = (0.0, 0.0);
            let mut acts: Vec<(usize, f32)> = Vec::with_capacity(rows);
            for r in 0..rows {
                let a = grid.acts.at(r, i);
                imp += a as f64 * (de_row[grid.answers[r] as usize] as f64 - de_mean);
                mean += a as f64;
                acts.push((r, a));
            }
            acts.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            NeuronSummary {
                neuron: i,
                importance: imp / rows.max(1) as f64,
                mean_act: mean / rows.max(1) as f64,
                top_inputs: acts
                    .iter()
                    .take(top)
                    .map(|&(r, a)| (r / grid.n, r % grid.n, a))
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.importance
            .total_cmp(&x.importance)
            .then(x.neuron.cmp(&y.neuron))
    });
    Ok(out)
}

/// Runs tokens (B, T) with `neurons` of MLP `layer` ablated at `hook_post` (zero, or their
/// mean over this batch's positions for [`Ablation::Mean`]); records nothing but logits.
pub fn run_neurons_ablated(
    backend: &ReferenceBackend,
    tokens: &[u32],
    batch: usize,
    layer: usize,
    neurons: &[usize],
    kind: Ablation,
) -> Result<ActivationCache> {
    let cfg = backend.config().clone();
    let m = cfg
        .d_mlp
        .ok_or_else(|| Error::config("d_mlp", "the model has no MLP (attention-only)"))?;
    if layer >= cfg.n_layers {
        return Err(Error::config(
            "layer",
            format!(
                "{layer} is out of range (the model has {} layers)",
                cfg.n_layers
            ),
        ));
    }
    if let Some(&i) = neurons.iter().find(|&&i| i >= m) {
        return Err(Error::config(
            "neuron",
            format!("{i} is out of range (the layer has {m} neurons)"),
        ));
    }
    let mut mask = vec![0.0f32; m];
    neurons.iter().for_each(|&i| mask[i] = 1.0);
    let mask = Tensor::from_vec(mask, (1, 1, m), &Device::Cpu)?;
    let hook = move |x: Tensor| -> Result<Tensor> {
        let fill = match kind {
            Ablation::Zero => x.zeros_like()?,
            Ablation::Mean => x
                .mean_keepdim(0)?
                .mean_keepdim(1)?
                .broadcast_as(x.shape())?,
        };
        let mask = mask.to_dtype(x.dtype())?;
        Ok(x.broadcast_add(&mask.broadcast_mul(&fill.sub(&x)?)?)?)
    };
    let hooks = HookSet::none().with(super::act_name("post", layer), hook);
    run_with_hooks(backend, tokens, batch, hooks)
}
