//! One summary of a model on a task, per head: what the `circuits` example prints and the
//! page's Scores table shows.

use super::cache::{run_with_cache, ActivationCache};
use super::circuits::{
    all_composition_scores, copying_scores, full_ov, full_qk, Composition, Embed,
};
use super::dla::{direct_logit_attribution, DlaReport};
use super::intervene::{outcome, Outcome};
use super::process::process_weights;
use super::scores::{argmax_offsets, attention_mass, OffsetSummary};
use crate::error::Result;
use crate::model::{ModelConfig, Weights};
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use crate::train::check_compatible;
use serde::Serialize;

/// Scores of one head.
#[derive(Clone, Debug, Serialize)]
pub struct HeadReport {
    pub layer: usize,
    pub head: usize,
    /// fraction of value-token rows of W_E W_OV W_U whose argmax is the diagonal
    pub ov_diagonal_fraction: f64,
    /// Σ Re λ / Σ |λ| of that block
    pub ov_eigen_copying: f64,
    /// argmax key − query over the value tokens of W_E W_QK W_Eᵀ / sqrt(d_head)
    pub qk_token_argmax: OffsetSummary,
    /// mean attention on the answer position(s) at predicted positions (fresh samples)
    pub attention_to_answer: f64,
    /// mean attention on the prompt at predicted positions (sort: BOS, the list, MID)
    pub attention_to_prompt: f64,
    /// the head's mean direct logit attribution to the correct logit
    pub dla: f64,
}

/// TL composition scores for models with 2+ layers, `[L][NH][L][NH]` flattened.
#[derive(Clone, Debug, Serialize)]
pub struct CompositionReport {
    pub q: Vec<f64>,
    pub k: Vec<f64>,
    pub v: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    pub task: TaskSpec,
    pub model: ModelConfig,
    /// fresh samples the data-based numbers average over
    pub samples: usize,
    /// loss and accuracy on those samples
    pub eval: Outcome,
    pub heads: Vec<HeadReport>,
    pub dla: DlaReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composition: Option<CompositionReport>,
}

/// Every score of every head of `w` (raw weights; LN models are processed here) on
/// `samples` fresh sequences of `task` drawn from the data stream of `seed`.
pub fn model_report(
    w: &Weights,
    task: &TaskSpec,
    samples: usize,
    seed: u64,
) -> Result<ModelReport> {
    check_compatible(task, &w.cfg)?;
    let pw = process_weights(w)?;
    let backend = ReferenceBackend::for_inference(&pw)?;
    let samples = samples.max(1);
    let tokens = task.batch(seed, super::ANALYSIS_STEP, samples);
    let cache = run_with_cache(&backend, &tokens, samples)?;
    model_report_from(&pw, task, &cache)
}

/// [`model_report`] from processed weights `pw` and a full cache of task sequences run
/// with them.
pub fn model_report_from(
    pw: &Weights,
    task: &TaskSpec,
    cache: &ActivationCache,
) -> Result<ModelReport> {
    let mass = attention_mass(task, cache)?;
    let dla = direct_logit_attribution(pw, task, cache)?;
    let ids = task.value_tokens();
    let mut heads = Vec::new();
    for m in &mass {
        let (l, h) = (m.layer, m.head);
        let ov = full_ov(pw, l, h, Embed::Token)?;
        let (ov_diagonal_fraction, ov_eigen_copying) = copying_scores(&ov, task.copy_tokens())?;
        let qk = full_qk(pw, l, h, Embed::Token, Embed::Token)?;
        heads.push(HeadReport {
            layer: l,
            head: h,
            ov_diagonal_fraction,
            ov_eigen_copying,
            qk_token_argmax: argmax_offsets(&qk, ids.clone())?,
            attention_to_answer: m.answer,
            attention_to_prompt: m.prompt,
            dla: dla.get(&format!("L{l}H{h}")).unwrap_or(0.0),
        });
    }
    let composition = if pw.cfg.n_layers >= 2 {
        Some(CompositionReport {
            q: all_composition_scores(pw, Composition::Q)?,
            k: all_composition_scores(pw, Composition::K)?,
            v: all_composition_scores(pw, Composition::V)?,
        })
    } else {
        None
    };
    Ok(ModelReport {
        task: task.clone(),
        model: pw.cfg.clone(),
        samples: cache.batch,
        eval: outcome(task, cache),
        heads,
        dla,
        composition,
    })
}
