//! Interpretability analyses, for any model of the family (any number of layers and heads,
//! with or without LayerNorm and MLP). Names and definitions follow TransformerLens (TL);
//! each function's doc states its formula.
//!
//! - [`cache`]: `run_with_cache` / `run_with_hooks` over the CPU backend's hook points.
//! - [`attention`]: attention patterns and the decomposition of attention scores into
//!   token/position terms.
//! - [`circuits`]: full QK and OV circuits, paths through earlier heads (K-, Q-composition,
//!   virtual OV), composition scores, copying scores.
//! - [`scores`]: summaries read off circuits and patterns (QK argmax offsets, attention to
//!   the answer).
//! - [`dla`]: direct logit attribution to the correct logit, per component and per path.
//! - [`intervene`]: zero/mean ablation of heads and activation patching, through hooks.
//! - [`fourier`], [`fourier_grid`]: the Fourier basis of modular arithmetic, the
//!   embedding and unembedding in it, key frequencies, logits and neurons over all inputs.
//! - [`extra`]: the task- and model-specific sections `examples/circuits` prints.
//! - [`head_types`]: previous-token, duplicate-token and induction scores on repeated
//!   random tokens; the K-composition paths of induction heads.
//! - [`neurons`]: MLP neurons over the a × b grid, direct effects, ranking, ablation.
//! - [`progress`]: grokking's progress measures over training (restricted and excluded
//!   loss, Gini of the Fourier spectrum, sum of squared weights).
//! - [`hypotheses`]: each task's first hypothesis with the numbers for and against it.
//! - [`graph`], [`graph_forward`], [`circuit_metric`]: the computational graph (nodes,
//!   edges sender → receiver), its forward with per-edge ablation, pairs and metrics;
//!   [`path_patch`], [`attribution`] (EAP, EAP-IG), [`discovery`] (ACDC, top-k) and
//!   [`faithfulness`] find and check circuits.
//! - [`timeline`]: weight snapshots during training and the curves of scores over them.
//! - [`report`]: the per-head summary the `circuits` example and the page's table show.
//! - [`workbench`]: the state behind an interactive front end (the page): snapshots, the
//!   selected one, and every analysis as one method ([`workbench_analyses`]: those of the
//!   Fourier, head-type, neuron, hypothesis and progress analyses).
//!
//! Conventions used throughout:
//! - Weight-based analyses of a LayerNorm model run on TL-processed weights
//!   ([`process::process_weights`]: `fold_ln` + `center_writing_weights`, what
//!   `HookedTransformer.from_pretrained` does by default). The processed model computes
//!   the same logits, so activation-based analyses agree whichever is used.
//! - Statistics over "fresh samples" use a batch of the task's data stream at
//!   [`ANALYSIS_STEP`], a step no training run or evaluation reaches.

pub mod attention;
pub mod attribution;
pub mod cache;
pub mod circuit_metric;
pub mod circuit_pairs;
pub mod circuit_report;
pub mod circuits;
pub mod discovery;
pub mod dla;
pub mod extra;
pub mod faithfulness;
pub mod fourier;
pub mod fourier_grid;
pub mod graph;
pub mod graph_fast;
pub mod graph_forward;
pub mod head_types;
pub mod hypotheses;
pub mod intervene;
pub mod mat;
pub mod neurons;
pub mod path_patch;
pub mod process;
pub mod progress;
pub mod report;
pub mod scores;
pub mod timeline;
pub mod workbench;
pub mod workbench_analyses;

pub use cache::{
    act_name, run_with_cache, run_with_cache_weights, run_with_hooks, ActivationCache, HookSet,
};
pub use mat::Mat;

/// The data-stream step of the fresh samples analyses average over (below evaluation's
/// offset and the page's shown samples, far above any training step).
pub const ANALYSIS_STEP: u64 = crate::train::eval::EVAL_STEP_OFFSET - 16;
