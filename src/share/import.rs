//! Bringing a model in: a `.safetensors` or TransformerLens `.pt` state dict (from a file,
//! a drop, or a URL), an optional config JSON, and the task it was trained for.

use crate::error::{Error, Result};
use crate::io;
use crate::model::{ModelConfig, Weights};
use crate::tasks::{permutations, TaskSpec, TASK_NAMES};
use crate::train::{check_compatible, eval};
use serde::Serialize;
use std::collections::HashMap;

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
    /// The `task` field of the config JSON given with the weights.
    ConfigJson,
    /// The task the page had selected: it fits the model and scores at least as well as
    /// every other task that fits.
    Selected,
    /// Proposed: the best-scoring of the registered tasks whose vocabulary and context fit
    /// ([`guess_task`]; serialised "guessed", as before the catalogue).
    Guessed,
}

/// A task the model fits, with the model's token accuracy on a small sample of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub task: TaskSpec,
    pub token_acc: f64,
}

/// Sequences each candidate task is scored on.
pub const PROPOSAL_SAMPLES: usize = 64;

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
    /// Config fields the weights cannot reveal and that were taken from the chosen task's
    /// default model (a state dict without a config), one line each.
    pub assumed: Vec<String>,
    /// Every task the model fits with its score, best first (empty when the task came from
    /// metadata or a config JSON).
    pub candidates: Vec<Candidate>,
}

/// The tasks a model of this config can be run on: every registered task with its default
/// parameters whose d_vocab and d_vocab_out equal the model's and whose scored positions fit
/// its context, plus the sizes' own readings of the original three (sort: `d_vocab =
/// d_vocab_out + 2`, `n_ctx = 2n + 2`; apply-perm: `d_vocab = d_vocab_out + 3`, `n_ctx =
/// 3k + 3`; permutations: 65 tokens, `n_ctx = n!(n + 1) + 2`).
pub fn fitting_tasks(cfg: &ModelConfig) -> Vec<TaskSpec> {
    let (v, vo, t) = (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx);
    let mut out = Vec::new();
    if v == vo + 2 && t >= 4 && t % 2 == 0 {
        out.push(TaskSpec::Sort {
            n: (t - 2) / 2,
            max_num: vo,
        });
    }
    if v == vo + 3 && t >= 6 && t % 3 == 0 {
        out.push(TaskSpec::ApplyPerm {
            k: t / 3 - 1,
            max_int: vo,
        });
    }
    let pv = permutations::VOCAB.len();
    if v == pv && vo == pv {
        out.extend(
            (1..=5)
                .filter(|&n| permutations::seq_len(n) == t)
                .map(TaskSpec::permutations),
        );
    }
    out.extend(
        TASK_NAMES
            .iter()
            .filter_map(|n| TaskSpec::default_for(n).ok()),
    );
    let mut seen = Vec::new();
    out.retain(|task| {
        let fits = task.validate().is_ok()
            && task.d_vocab() == v
            && task.d_vocab_out() == vo
            && task.input_len() <= t
            && !seen.contains(task);
        seen.push(task.clone());
        fits
    });
    out
}

/// `w` with the config fields a state dict cannot show taken from `task`'s default model:
/// positional_embedding_type (standard, shortformer or off) and, when there is an MLP, act_fn.
pub fn with_task_defaults(mut w: Weights, task: &TaskSpec) -> Weights {
    let d = task.default_model();
    w.cfg.positional_embedding_type = d.positional_embedding_type;
    if let (Some(_), Some(act)) = (w.cfg.d_mlp, d.act_fn) {
        w.cfg.act_fn = Some(act);
    }
    w.table = crate::model::ParamTable::new(&w.cfg); // same layout; W_pos frozen when off
    w
}

/// The model's token accuracy on [`PROPOSAL_SAMPLES`] sequences of `task` (the CPU engine).
fn score(w: &Weights, task: &TaskSpec, from_shapes: bool) -> Result<f64> {
    let mut w = task.fit_context(w.clone())?;
    if from_shapes {
        w = with_task_defaults(w, task);
    }
    let n = PROPOSAL_SAMPLES;
    let mut b = crate::cpu::CpuEngine::new(&w, &Default::default(), vec![])?;
    Ok(eval::evaluate(&mut b, task, 0, n, n)?.token_acc)
}

/// The task these weights were trained for, proposed by evaluation: every task that fits
/// ([`fitting_tasks`], and `selected` when it fits) is scored on a small sample, best
/// first; `selected` wins ties (then [`TaskSource::Selected`]). The error names the sizes
/// when no task fits. See [`propose`] for a config read from tensor shapes.
pub fn guess_task(
    w: &Weights,
    selected: Option<&TaskSpec>,
) -> Result<(TaskSpec, TaskSource, Vec<Candidate>)> {
    propose(w, selected, false)
}

/// [`guess_task`]; with `from_shapes` (the config was read from tensor shapes) each
/// candidate is scored with the fields shapes cannot show taken from its default model
/// ([`with_task_defaults`]).
pub fn propose(
    w: &Weights,
    selected: Option<&TaskSpec>,
    from_shapes: bool,
) -> Result<(TaskSpec, TaskSource, Vec<Candidate>)> {
    let cfg = &w.cfg;
    let mut tasks: Vec<TaskSpec> = selected
        .filter(|t| t.validate().is_ok() && t.d_vocab() == cfg.d_vocab)
        .filter(|t| t.d_vocab_out() == cfg.d_vocab_out && t.input_len() <= cfg.n_ctx)
        .cloned()
        .into_iter()
        .collect();
    tasks.extend(
        fitting_tasks(cfg)
            .into_iter()
            .filter(|t| Some(t) != selected),
    );
    let mut candidates = Vec::new();
    for task in tasks {
        let token_acc = score(w, &task, from_shapes)?;
        candidates.push(Candidate { task, token_acc });
    }
    // stable: the selected task (first) stays ahead on ties
    candidates.sort_by(|a, b| b.token_acc.total_cmp(&a.token_acc));
    let Some(best) = candidates.first() else {
        return Err(no_task_fits(cfg));
    };
    let source = if Some(&best.task) == selected {
        TaskSource::Selected
    } else {
        TaskSource::Guessed
    };
    Ok((best.task.clone(), source, candidates))
}

fn no_task_fits(cfg: &ModelConfig) -> Error {
    let (v, vo, t) = (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx);
    let sizes: Vec<String> = TASK_NAMES
        .iter()
        .filter_map(|n| TaskSpec::default_for(n).ok())
        .map(|t| {
            format!(
                "{} {}/{}/{}",
                t.name(),
                t.d_vocab(),
                t.d_vocab_out(),
                t.input_len()
            )
        })
        .collect();
    Error::config(
        "task",
        format!(
            "no task fits a model with d_vocab {v}, d_vocab_out {vo}, n_ctx {t} (the tasks' d_vocab/d_vocab_out/n_ctx at their defaults: {}; sort, apply-perm and permutations also fit other sizes); choose the task and its parameters in the Task cell and load it again",
            sizes.join(", ")
        ),
    )
}

/// A file that holds tensors but not a transformer of this family (e.g. the collection's
/// MLP for modular addition, `{W_E, W_in, W_U}`): one error naming what was found and what
/// was expected.
fn check_family(tensors: &[io::NamedTensor]) -> Result<()> {
    let has = |k: &str| tensors.iter().any(|t| t.name == k);
    let blocks = tensors.iter().any(|t| t.name.starts_with("blocks."));
    // TransformerLens 3.x keys, or the 4.x bridge state dict (`io::bridge` maps it)
    if blocks && has("embed.W_E") && has("unembed.W_U")
        || blocks && io::is_bridge_format(tensors) && has("unembed.weight")
    {
        return Ok(());
    }
    let mut found: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).take(8).collect();
    if tensors.len() > 8 {
        found.push("…");
    }
    Err(Error::Weights(format!(
        "not a TransformerLens HookedTransformer of the kind toyformer runs: the file holds {} tensor(s) ({}), expected embed.W_E, pos_embed.W_pos, blocks.0.attn.W_Q/W_K/W_V/W_O, … and unembed.W_U",
        tensors.len(),
        found.join(", ")
    )))
}

/// The `task` field of a config JSON: a task name (its defaults) or a task object.
fn task_of_config(v: &serde_json::Value) -> Result<Option<TaskSpec>> {
    match v.get("task") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(name)) => TaskSpec::default_for(name).map(Some),
        Some(obj) => serde_json::from_value(obj.clone())
            .map(Some)
            .map_err(|e| Error::config("task", format!("the config's task is not a task: {e}"))),
    }
}

/// Config fields a state dict cannot show, as assumed for `task` (one line each).
fn assumed_fields(cfg: &ModelConfig, task: &TaskSpec) -> Vec<String> {
    let pos = match cfg.positional_embedding_type {
        crate::model::Positions::Standard => "standard",
        crate::model::Positions::Shortformer => "shortformer",
        crate::model::Positions::Off => "off (W_pos frozen at zero)",
    };
    let mut out = vec![format!(
        "positional_embedding_type: {pos} ({}'s default model)",
        task.name()
    )];
    if cfg.d_mlp.is_some() {
        let act = cfg.act_fn.map_or("relu", |a| a.as_str());
        out.push(format!(
            "act_fn: {act} ({}'s default model; the shapes of W_in and W_out do not show it)",
            task.name()
        ));
    }
    if cfg.normalization_type.is_some() {
        out.push("normalization_type: LN (LN weights are present; LNPre would have none)".into());
    }
    out
}

/// Reads a weight file (`.pt` or `.safetensors`) with an optional config JSON (TL's
/// `HookedTransformerConfig` fields, or ours). The config is, in order: `config_json`; the
/// file's metadata; the tensor shapes. The task is, in order: the file's `toyformer_task`
/// metadata; the config JSON's `task` field; the best-scoring task that fits
/// ([`guess_task`], `selected` winning ties). A model whose n_ctx lacks only the position
/// of an appended answer is fitted to the task ([`TaskSpec::fit_context`]). Every tensor is checked
/// against the config: a missing weight or a wrong shape is an error naming the tensor and
/// both shapes.
pub fn import_model(
    bytes: &[u8],
    config_json: Option<&str>,
    selected: Option<&TaskSpec>,
) -> Result<Imported> {
    let (tensors, meta) = io::read_tensors(bytes)?;
    check_family(&tensors)?;
    let mut notes = Vec::new();
    let (cfg, config_source, config_task) =
        read_config(config_json, meta.as_ref(), &tensors, &mut notes)?;
    let weights = io::weights_from_tensors(&tensors, &cfg)?;
    note_unused_tensors(&io::unexpected_tensors(&tensors, &cfg), &mut notes);
    let meta_task = metadata_task(meta.as_ref())?;
    let (task, task_source, candidates) = match (meta_task, config_task) {
        (Some(t), _) => (t, TaskSource::Metadata, Vec::new()),
        (None, Some(t)) => (t, TaskSource::ConfigJson, Vec::new()),
        (None, None) => propose(&weights, selected, config_source == ConfigSource::Shapes)?,
    };
    let (weights, assumed) = if config_source == ConfigSource::Shapes {
        let w = with_task_defaults(weights, &task);
        let a = assumed_fields(&w.cfg, &task);
        (w, a)
    } else {
        (weights, Vec::new())
    };
    let n_ctx = cfg.n_ctx;
    let weights = task.fit_context(weights)?;
    if weights.cfg.n_ctx != n_ctx {
        notes.push(format!(
            "n_ctx {n_ctx} → {}: W_pos gained a zero row for the answer {} appends as its last target (no scored logit changes)",
            weights.cfg.n_ctx,
            task.name()
        ));
    }
    check_compatible(&task, &weights.cfg)?;
    let step = metadata_steps(meta.as_ref())?;
    Ok(Imported {
        weights,
        task,
        step,
        config_source,
        task_source,
        notes,
        assumed,
        candidates,
    })
}

/// The model config, where it came from, and the config JSON's task (if any): from
/// `config_json` when given and not blank, else the file's metadata, else the tensor shapes.
fn read_config(
    config_json: Option<&str>,
    meta: Option<&HashMap<String, String>>,
    tensors: &[io::NamedTensor],
    notes: &mut Vec<String>,
) -> Result<(ModelConfig, ConfigSource, Option<TaskSpec>)> {
    if let Some(s) = config_json.map(str::trim).filter(|s| !s.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(s)
            .map_err(|e| Error::config("config", format!("the config file is not JSON: {e}")))?;
        let config_task = task_of_config(&v)?;
        return Ok((
            ModelConfig::from_tl_json(&v)?,
            ConfigSource::ConfigJson,
            config_task,
        ));
    }
    if let Some(c) = io::config_from_metadata(meta)? {
        return Ok((c, ConfigSource::Metadata, None));
    }
    let c = io::infer_config(tensors)?;
    if c.d_mlp.is_some() {
        notes.push("the MLP's activation cannot be read from tensor shapes: assumed relu (load a config JSON with act_fn to set it)".into());
    }
    Ok((c, ConfigSource::Shapes, None))
}

/// Notes the tensors the model config does not use (the first five by name).
fn note_unused_tensors(extra: &[String], notes: &mut Vec<String>) {
    if extra.is_empty() {
        return;
    }
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

/// The task in the file's `toyformer_task` metadata, if any.
fn metadata_task(meta: Option<&HashMap<String, String>>) -> Result<Option<TaskSpec>> {
    match meta.and_then(|m| m.get("toyformer_task")) {
        Some(s) => Ok(Some(serde_json::from_str::<TaskSpec>(s).map_err(|e| {
            Error::Weights(format!(
                "metadata `toyformer_task` is not a valid task: {e}"
            ))
        })?)),
        None => Ok(None),
    }
}

/// The step count in the file's `toyformer_steps` metadata (0 without one).
fn metadata_steps(meta: Option<&HashMap<String, String>>) -> Result<u64> {
    match meta.and_then(|m| m.get("toyformer_steps")) {
        Some(s) => s.parse::<u64>().map_err(|_| {
            Error::Weights(format!(
                "metadata `toyformer_steps` is not a step count: {s:?}"
            ))
        }),
        None => Ok(0),
    }
}
