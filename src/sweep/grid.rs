//! Sweep grids: a JSON object whose keys are settings and whose values are lists (or single
//! values) to try, expanded into one run per combination.
//!
//! ```json
//! {"name": "layers", "task": "permutations", "n": [3, 4], "n_layers": [1, 2],
//!  "act_fn": [null, "relu"], "steps": 1500, "batch_size": 32, "seed": [0, 1, 2]}
//! ```
//!
//! Axes (any of them a list): [`axis_keys`], in that order. Task keys: `task` and every
//! registered task's parameters by their JSON names ([`task_param_keys`]: `n`, `max_num`,
//! `k`, `max_int`, `holdout`, `split_seed`, then the catalogue's `frac_train`, `p`,
//! `n_tokens`, `num_digits`, ...), each of which must be a parameter of the run's task, e.g.
//! `{"task": "mod-add", "p": [53, 113], "frac_train": [0.3, 0.5]}`. Model keys (HookedTransformerConfig names):
//! `n_layers`, `n_heads`, `d_model`, `d_head`, `act_fn` (`null` = attention-only, else
//! relu / gelu / gelu_new / solu; TL's `attn_only` is `act_fn: null`), `d_mlp` (default
//! 4·d_model when there is an MLP), `normalization_type` (`"LN"` or `null`). Train keys:
//! `steps`, `batch_size`, `lr`, `schedule` (`"constant"`, `"reduce_on_plateau"` with
//! PyTorch's defaults, or a schedule object such as `{"kind": "reduce_on_plateau",
//! "patience": 100}`), `weight_decay`, `beta1`, `beta2`, `grad_clip`, and `seed`, which
//! seeds both the data stream and the weight init. Anything not given is the task's
//! default model and [`TrainConfig`]'s default.
//!
//! Settings (single values, not axes): [`Settings`] (`name`, `eval_samples`,
//! `eval_every`, `curve_samples`, `target`, `backend`).
//!
//! Expansion is the cartesian product in [`AXES`] order with the last axis varying fastest,
//! like nested loops; `seed` is the last axis, so the runs of one config (all seeds) are
//! consecutive and a config is everything but the seed.

use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::model::{ActFn, ModelConfig, Norm};
use crate::tasks::TaskSpec;
use crate::train::{check_compatible, Schedule, TrainConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The fixed axis keys, in expansion order (first slowest, `seed` fastest): `task` and the
/// original three tasks' parameters, then the model and training keys. [`axis_keys`] inserts
/// the other registered tasks' parameters after the task keys.
pub const AXES: [&str; 24] = [
    "task",
    "n",
    "max_num",
    "k",
    "max_int",
    "holdout",
    "split_seed", // task
    "n_layers",
    "n_heads",
    "d_model",
    "d_head",
    "act_fn",
    "d_mlp",
    "normalization_type", // model
    "steps",
    "batch_size",
    "lr",
    "schedule",
    "weight_decay",
    "beta1",
    "beta2",
    "grad_clip", // train
    "eps",
    "seed",
];
/// The single-valued settings.
pub const SETTINGS: [&str; 6] = [
    "name",
    "eval_samples",
    "eval_every",
    "curve_samples",
    "target",
    "backend",
];
/// Every registered task's parameter names (JSON fields), each once: the original three's in
/// [`AXES`] order, then the catalogue's in registry order.
pub fn task_param_keys() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = AXES[1..N_TASK_AXES].to_vec();
    for t in crate::tasks::TASK_NAMES
        .iter()
        .filter_map(|n| TaskSpec::default_for(n).ok())
    {
        for row in t.params() {
            if !out.contains(&row.name) {
                out.push(row.name);
            }
        }
    }
    out
}

/// Every axis key in expansion order: `task`, [`task_param_keys`], then the model and
/// training keys of [`AXES`] (`seed` last).
pub fn axis_keys() -> Vec<&'static str> {
    let mut out = vec![AXES[0]];
    out.extend(task_param_keys());
    out.extend(&AXES[N_TASK_AXES..]);
    out
}

/// `task` and the original three tasks' parameters: the first keys of [`AXES`].
const N_TASK_AXES: usize = 7;

/// Most runs one grid may expand to.
pub const MAX_RUNS: usize = 10_000;

/// Evaluation settings of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub name: String,
    /// Samples of the final evaluation (held-out split when the task has one).
    pub eval_samples: usize,
    /// Evaluate every this many steps for the learning curve and steps-to-target
    /// (0 = only at the end; default steps / 20).
    pub eval_every: Option<u64>,
    /// Samples of each curve evaluation (the same samples every time).
    pub curve_samples: usize,
    /// Algorithm accuracy that counts as learned (steps-to-target).
    pub target: f64,
    pub backend: BackendKind,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: "sweep".into(),
            eval_samples: 1024,
            eval_every: None,
            curve_samples: 256,
            target: 0.99,
            backend: BackendKind::Cpu,
        }
    }
}

/// One run of a sweep, fully specified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Position in the expansion.
    pub index: usize,
    /// Which config (everything but the seed) it belongs to: runs differing only in
    /// `seed` share it.
    pub config_index: usize,
    pub seed: u64,
    /// The values of the axes that vary in this grid (`seed` excepted), e.g.
    /// `{"n_layers": 2, "act_fn": "relu"}`: what tells this config from the others.
    pub label: BTreeMap<String, Value>,
    pub task: TaskSpec,
    pub model: ModelConfig,
    pub train: TrainConfig,
}

impl RunSpec {
    /// `n_layers=2 act_fn=relu` (or `-` for a grid with one config).
    pub fn label_text(&self) -> String {
        label_text(&self.label)
    }
}

/// `key=value` pairs joined by spaces (strings unquoted), `-` when empty.
pub fn label_text(label: &BTreeMap<String, Value>) -> String {
    if label.is_empty() {
        return "-".into();
    }
    label
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            Value::Object(_) => format!("{k}={}", schedule_short(v)),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn schedule_short(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("?");
    let rest: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, x)| format!("{k}:{x}"))
        .collect();
    if rest.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}({})", rest.join(","))
    }
}

/// A parsed grid: the axes in [`AXES`] order (only those given) and the settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub axes: Vec<(String, Vec<Value>)>,
    pub settings: Settings,
}

fn bad(key: &str, msg: impl Into<String>) -> Error {
    Error::config(key, msg)
}

fn as_u64(key: &str, v: &Value) -> Result<u64> {
    v.as_u64()
        .ok_or_else(|| bad(key, format!("expected a whole number ≥ 0, got {v}")))
}

fn as_usize(key: &str, v: &Value) -> Result<usize> {
    usize::try_from(as_u64(key, v)?).map_err(|_| bad(key, format!("{v} is too large")))
}

fn as_f64(key: &str, v: &Value) -> Result<f64> {
    v.as_f64()
        .ok_or_else(|| bad(key, format!("expected a number, got {v}")))
}

fn as_str<'a>(key: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| bad(key, format!("expected a string, got {v}")))
}

impl Grid {
    /// Parses grid JSON text. Errors name the key (unknown keys, empty lists, values of
    /// the wrong type, settings given as lists).
    pub fn from_json(text: &str) -> Result<Grid> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad("grid", format!("not valid JSON: {e}")))?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Grid> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("grid", "expected a JSON object of key: [values]"))?;
        let keys = axis_keys();
        for k in obj.keys() {
            if !keys.contains(&k.as_str()) && !SETTINGS.contains(&k.as_str()) {
                return Err(bad(
                    k,
                    format!(
                        "unknown grid key (axes: {}; settings: {})",
                        keys.join(", "),
                        SETTINGS.join(", ")
                    ),
                ));
            }
        }
        let mut axes = Vec::new();
        for &k in keys.iter() {
            let Some(x) = obj.get(k) else { continue };
            let vals = match x {
                Value::Array(a) if a.is_empty() => {
                    return Err(bad(k, "empty list: give at least one value"))
                }
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            axes.push((k.to_string(), vals));
        }
        let mut s = Settings::default();
        for &k in SETTINGS.iter() {
            let Some(x) = obj.get(k) else { continue };
            if x.is_array() {
                return Err(bad(
                    k,
                    "is a setting of the whole sweep, not an axis: give one value, not a list",
                ));
            }
            match k {
                "name" => s.name = as_str(k, x)?.to_string(),
                "eval_samples" => s.eval_samples = as_usize(k, x)?,
                "eval_every" => s.eval_every = Some(as_u64(k, x)?),
                "curve_samples" => s.curve_samples = as_usize(k, x)?,
                "target" => s.target = as_f64(k, x)?,
                "backend" => s.backend = BackendKind::parse(as_str(k, x)?)?,
                _ => unreachable!("every SETTINGS key is handled"),
            }
        }
        if s.eval_samples == 0 || s.eval_samples > 100_000 {
            return Err(bad(
                "eval_samples",
                format!("{} is not in 1..=100000", s.eval_samples),
            ));
        }
        if s.curve_samples == 0 || s.curve_samples > 100_000 {
            return Err(bad(
                "curve_samples",
                format!("{} is not in 1..=100000", s.curve_samples),
            ));
        }
        if !(s.target.is_finite() && s.target > 0.0 && s.target <= 1.0) {
            return Err(bad("target", format!("{} is not in (0, 1]", s.target)));
        }
        if s.backend == BackendKind::Gpu {
            return Err(bad("backend", "sweeps run on the CPU (cpu or reference)"));
        }
        let g = Grid { axes, settings: s };
        let n = g.n_runs();
        if n > MAX_RUNS as u128 {
            return Err(bad(
                "grid",
                format!("{n} runs is more than {MAX_RUNS}; split the sweep"),
            ));
        }
        Ok(g)
    }

    /// Number of runs (the product of the axis lengths).
    pub fn n_runs(&self) -> u128 {
        self.axes.iter().map(|(_, v)| v.len() as u128).product()
    }

    /// All runs, in expansion order, each validated (task, model, train config, and that
    /// the model fits the task). The first bad run's error is returned.
    pub fn expand(&self) -> Result<Vec<RunSpec>> {
        let n = self.n_runs() as usize;
        let lens: Vec<usize> = self.axes.iter().map(|(_, v)| v.len()).collect();
        let seeds = self
            .axes
            .iter()
            .find(|(k, _)| k == "seed")
            .map_or(1, |(_, v)| v.len());
        let varying: Vec<bool> = self
            .axes
            .iter()
            .map(|(k, v)| v.len() > 1 && k != "seed")
            .collect();
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; lens.len()];
        for index in 0..n {
            // idx is the mixed-radix digits of `index`, last axis fastest
            let mut rest = index;
            for a in (0..lens.len()).rev() {
                idx[a] = rest % lens[a];
                rest /= lens[a];
            }
            let chosen: Vec<(&str, &Value)> = self
                .axes
                .iter()
                .zip(&idx)
                .map(|((k, v), &i)| (k.as_str(), &v[i]))
                .collect();
            let mut run = build_run(&chosen)?;
            run.index = index;
            run.config_index = index / seeds;
            run.label = chosen
                .iter()
                .zip(&varying)
                .filter(|(_, &vary)| vary)
                .map(|((k, v), _)| (k.to_string(), (*v).clone()))
                .collect();
            out.push(run);
        }
        Ok(out)
    }
}

fn schedule_of(v: &Value) -> Result<Schedule> {
    match v {
        Value::String(s) => match s.as_str() {
            "constant" => Ok(Schedule::Constant),
            "reduce_on_plateau" => Ok(Schedule::plateau_defaults()),
            "warmup_cosine" => Err(bad("schedule", "warmup_cosine needs its settings: {\"kind\": \"warmup_cosine\", \"warmup_steps\": 100, \"min_lr_frac\": 0.1}")),
            other => Err(bad("schedule", format!("unknown schedule {other:?} (constant, reduce_on_plateau, or a schedule object)"))),
        },
        Value::Object(_) => serde_json::from_value(v.clone()).map_err(|e| bad("schedule", e.to_string())),
        other => Err(bad("schedule", format!("expected a name or an object, got {other}"))),
    }
}

/// The task, model and train config of one combination of axis values.
fn build_run(chosen: &[(&str, &Value)]) -> Result<RunSpec> {
    let task = task_of_axes(chosen)?;
    let mut model = task.default_model();
    let mut train = TrainConfig::default();
    let mut d_mlp: Option<usize> = None;
    let mut seed = 0;
    for &(k, v) in chosen {
        set_model_or_train_axis(k, v, &mut model, &mut train, &mut d_mlp, &mut seed)?;
    }
    model.d_mlp = model.act_fn.map(|_| d_mlp.unwrap_or(4 * model.d_model));
    if d_mlp.is_some() && model.act_fn.is_none() && chosen.iter().all(|(k, _)| *k != "act_fn") {
        return Err(bad(
            "d_mlp",
            "needs an act_fn (relu, gelu, gelu_new or solu); act_fn null means attention-only",
        ));
    }
    model.seed = seed;
    train.seed = seed;
    check_compatible(&task, &model)?;
    train.validate()?;
    Ok(RunSpec {
        index: 0,
        config_index: 0,
        seed,
        label: BTreeMap::new(),
        task,
        model,
        train,
    })
}

/// The validated task of one combination: the `task` axis (default sort) with its parameter axes.
fn task_of_axes(chosen: &[(&str, &Value)]) -> Result<TaskSpec> {
    let get = |k: &str| chosen.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let task_name = match get("task") {
        Some(v) => as_str("task", v)?,
        None => "sort",
    };
    let mut task = TaskSpec::default_for(task_name)?;
    // task parameters: each key must belong to this task; set through the task's JSON
    let keys = task_param_keys();
    for &(k, v) in chosen.iter().filter(|(k, _)| keys.contains(k)) {
        let Some(row) = task.params().into_iter().find(|r| r.name == k) else {
            return Err(bad(
                k,
                format!("is not a parameter of the task {task_name}"),
            ));
        };
        let value = if row.integer {
            Value::from(as_u64(k, v)?)
        } else {
            Value::from(as_f64(k, v)?)
        };
        let mut json = serde_json::to_value(&task).map_err(|e| bad(k, e.to_string()))?;
        json[k] = value;
        task = serde_json::from_value(json).map_err(|e| bad(k, e.to_string()))?;
    }
    task.validate()?;
    Ok(task)
}

/// Sets one model or training axis (`d_mlp` and `seed` are applied by the caller); task keys
/// are left alone.
fn set_model_or_train_axis(
    k: &str,
    v: &Value,
    model: &mut ModelConfig,
    train: &mut TrainConfig,
    d_mlp: &mut Option<usize>,
    seed: &mut u64,
) -> Result<()> {
    match k {
        "n_layers" => model.n_layers = as_usize(k, v)?,
        "n_heads" => model.n_heads = as_usize(k, v)?,
        "d_model" => model.d_model = as_usize(k, v)?,
        "d_head" => model.d_head = as_usize(k, v)?,
        "act_fn" => {
            model.act_fn = match v {
                Value::Null => None,
                _ => match as_str(k, v)? {
                    "none" | "attn_only" => None,
                    s => Some(ActFn::parse(s)?),
                },
            }
        }
        "d_mlp" => *d_mlp = Some(as_usize(k, v)?),
        "normalization_type" => {
            model.normalization_type = match v {
                Value::Null => None,
                Value::String(s) if s == "LN" => Some(Norm::LN),
                _ => return Err(bad(k, format!("expected \"LN\" or null, got {v}"))),
            }
        }
        "steps" => train.steps = as_u64(k, v)?,
        "batch_size" => train.batch_size = as_usize(k, v)?,
        "lr" => train.lr = as_f64(k, v)?,
        "schedule" => train.schedule = schedule_of(v)?,
        "weight_decay" => train.weight_decay = as_f64(k, v)?,
        "beta1" => train.beta1 = as_f64(k, v)?,
        "beta2" => train.beta2 = as_f64(k, v)?,
        "grad_clip" => train.grad_clip = as_f64(k, v)?,
        "eps" => train.eps = as_f64(k, v)?,
        "seed" => *seed = as_u64(k, v)?,
        _ => {} // task keys, handled above
    }
    Ok(())
}
