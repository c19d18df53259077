//! Bringing a model in: a `.safetensors` or TransformerLens `.pt` state dict (from a file,
//! a drop, or a URL), an optional config JSON, and the task it was trained for.

use crate::error::{Error, Result};
use crate::io;
use crate::model::{ModelConfig, Weights};
use crate::tasks::{permutations, sort, TaskSpec};
use crate::train::check_compatible;
use serde::Serialize;

/// Where an imported model's config came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// The config JSON given with the weights.
    ConfigJson,
    /// The file's safetensors metadata (`toyformer_config` or `tl_config`).
    Metadata,
    /// Inferred from the tensor shapes ([`io::infer_config`]).
    Shapes,
}

/// Where an imported model's task came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSource {
    /// The file's metadata `toyformer_task` (our exports).
    Metadata,
    /// The task the page had selected, which fits the model.
    Selected,
    /// Guessed from d_vocab, d_vocab_out and n_ctx ([`guess_task`]).
    Guessed,
}

/// A model read from bytes, ready to evaluate or train further.
#[derive(Clone, Debug)]
pub struct Imported {
    pub weights: Weights,
    pub task: TaskSpec,
    /// Training steps the weights had (metadata `toyformer_steps`; 0 when unknown).
    pub step: u64,
    pub config_source: ConfigSource,
    pub task_source: TaskSource,
    /// Things the user should know: tensors that were ignored, an activation that had to be assumed.
    pub notes: Vec<String>,
}

/// The task a model of this config was trained for, if the sizes say so unambiguously:
/// - sort: `d_vocab = d_vocab_out + 2` (BOS, MID), `n_ctx = 2n + 2`, `max_num = d_vocab_out`;
/// - apply-perm: `d_vocab = d_vocab_out + 3` (BOS, MID, END), `n_ctx = 3k + 3`, `max_int = d_vocab_out`;
/// - permutations: `d_vocab = d_vocab_out = 65` (its fixed vocabulary), `n_ctx = n!(n + 1) + 2`.
///
/// `selected` (the page's current task) wins when the model fits it. The error says which
/// sizes match no task.
pub fn guess_task(
    cfg: &ModelConfig,
    selected: Option<&TaskSpec>,
) -> Result<(TaskSpec, TaskSource)> {
    if let Some(t) = selected {
        if check_compatible(t, cfg).is_ok() {
            return Ok((t.clone(), TaskSource::Selected));
        }
    }
    let (v, vo, t) = (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx);
    let mut candidates = Vec::new();
    if v == vo + 2 && t >= 4 && t % 2 == 0 {
        candidates.push(TaskSpec::Sort {
            n: (t - 2) / 2,
            max_num: vo,
        });
    }
    if v == vo + 3 && t >= 6 && t % 3 == 0 {
        candidates.push(TaskSpec::ApplyPerm {
            k: t / 3 - 1,
            max_int: vo,
        });
    }
    let pv = permutations::VOCAB.len();
    if v == pv && vo == pv {
        candidates.extend(
            (1..=5)
                .filter(|&n| permutations::seq_len(n) == t)
                .map(TaskSpec::permutations),
        );
    }
    for c in candidates {
        if check_compatible(&c, cfg).is_ok() && c.seq_len() == t {
            return Ok((c, TaskSource::Guessed));
        }
    }
    Err(Error::config(
        "task",
        format!(
            "cannot tell which task a model with d_vocab {v}, d_vocab_out {vo}, n_ctx {t} was trained for: \
             sort needs d_vocab = d_vocab_out + 2 and n_ctx = 2n + 2 (n ≤ {}), apply-perm d_vocab = d_vocab_out + 3 \
             and n_ctx = 3k + 3, permutations d_vocab = d_vocab_out = {pv} and n_ctx = n!(n+1) + 2; \
             choose the task in the Task cell and load it again",
            sort::MAX_N
        ),
    ))
}

/// Reads a weight file (`.pt` or `.safetensors`) with an optional config JSON (TL's
/// `HookedTransformerConfig` fields, or ours). The config is, in order: `config_json`; the
/// file's metadata; the tensor shapes. The task is, in order: the file's `toyformer_task`
/// metadata; `selected` when the model fits it; [`guess_task`]. Every tensor is checked
/// against the config: a missing weight or a wrong shape is an error naming the tensor and
/// both shapes.
pub fn import_model(
    bytes: &[u8],
    config_json: Option<&str>,
    selected: Option<&TaskSpec>,
) -> Result<Imported> {
    let (tensors, meta) = io::read_tensors(bytes)?;
    let mut notes = Vec::new();
    let (cfg, config_source) = match config_json.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => {
            let v: serde_json::Value = serde_json::from_str(s).map_err(|e| {
                Error::config("config", format!("the config file is not JSON: {e}"))
            })?;
            (ModelConfig::from_tl_json(&v)?, ConfigSource::ConfigJson)
        }
        None => match io::config_from_metadata(meta.as_ref())? {
            Some(c) => (c, ConfigSource::Metadata),
            None => {
                let c = io::infer_config(&tensors)?;
                if c.d_mlp.is_some() {
                    notes.push("the MLP's activation cannot be read from tensor shapes: assumed relu (load a config JSON with act_fn to set it)".into());
                }
                (c, ConfigSource::Shapes)
            }
        },
    };
    let weights = io::weights_from_tensors(&tensors, &cfg)?;
    let extra = io::unexpected_tensors(&tensors, &cfg);
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(5).map(String::as_str).collect();
        let more = if extra.len() > 5 {
            format!(" and {} more", extra.len() - 5)
        } else {
            String::new()
        };
        notes.push(format!(
            "ignored {} tensor(s) this model config does not use: {}{more}",
            extra.len(),
            shown.join(", ")
        ));
    }
    let meta_task = match meta.as_ref().and_then(|m| m.get("toyformer_task")) {
        Some(s) => Some(serde_json::from_str::<TaskSpec>(s).map_err(|e| {
            Error::Weights(format!(
                "metadata `toyformer_task` is not a valid task: {e}"
            ))
        })?),
        None => None,
    };
    let (task, task_source) = match meta_task {
        Some(t) => (t, TaskSource::Metadata),
        None => guess_task(&cfg, selected)?,
    };
    check_compatible(&task, &cfg)?;
    let step = match meta.as_ref().and_then(|m| m.get("toyformer_steps")) {
        Some(s) => s.parse::<u64>().map_err(|_| {
            Error::Weights(format!(
                "metadata `toyformer_steps` is not a step count: {s:?}"
            ))
        })?,
        None => 0,
    };
    Ok(Imported {
        weights,
        task,
        step,
        config_source,
        task_source,
        notes,
    })
}
