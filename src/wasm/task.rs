//! Task and model forms: what the page shows before any training.

use super::{parse_task, to_js, MAX_SHOWN, SHOW_STEP};
use crate::error::Error;
use crate::model::ModelConfig;
use crate::tasks::TaskSpec;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// What the page needs to know about a task.
#[derive(Serialize)]
struct TaskInfo {
    seq_len: usize,
    d_vocab: usize,
    d_vocab_out: usize,
    vocab: Vec<String>,
    loss_floor: f64,
    default_model: ModelConfig,
    pred_positions: Vec<usize>,
    prompt_len: usize,
}

/// `task_info(task_json) -> {seq_len, d_vocab, d_vocab_out, vocab, loss_floor,
/// default_model, pred_positions, prompt_len}`; throws the task's validation error.
#[wasm_bindgen]
pub fn task_info(task_json: &str) -> Result<JsValue, JsError> {
    let t = parse_task(task_json)?;
    to_js(&TaskInfo {
        seq_len: t.seq_len(),
        d_vocab: t.d_vocab(),
        d_vocab_out: t.d_vocab_out(),
        vocab: t.vocab(),
        loss_floor: t.loss_floor(),
        default_model: t.default_model(),
        pred_positions: t.pred_positions(),
        prompt_len: t.prompt_len(),
    })
}

/// One entry of the task menu.
#[derive(Serialize)]
struct CatalogueEntry {
    name: &'static str,
    description: &'static str,
    /// The task's parameters: `{name, min, max, default, integer, help}`, plus `key`, the
    /// page's property key (`<task>_<param>`; the original three keep their own keys).
    params: Vec<serde_json::Value>,
    /// Whether the task is a finite dataset with a train/test split.
    finite: bool,
    /// The default task JSON.
    defaults: TaskSpec,
}

/// `task_catalogue() -> [{name, description, params, finite, defaults}]`: every registered
/// task in menu order, for the page's task menu and parameter rows.
#[wasm_bindgen]
pub fn task_catalogue() -> Result<JsValue, JsError> {
    let entries: Vec<CatalogueEntry> = crate::tasks::TASK_NAMES
        .iter()
        .filter_map(|n| TaskSpec::default_for(n).ok())
        .map(|t| CatalogueEntry {
            name: t.name(),
            description: t.description(),
            params: t
                .params()
                .into_iter()
                .map(|row| {
                    let key = crate::tasks::page_key(t.name(), row.name);
                    let mut v = serde_json::to_value(&row).unwrap_or_default();
                    v["key"] = serde_json::Value::String(key);
                    v
                })
                .collect(),
            finite: t.finite().is_some(),
            defaults: t,
        })
        .collect();
    to_js(&entries)
}

#[derive(Serialize)]
struct ModelCheck {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    n_params: usize,
}

/// `validate_model(model_json) -> {ok, error?, n_params}`; never throws (a JSON error is
/// reported in `error`, with `n_params` 0).
#[wasm_bindgen]
pub fn validate_model(model_json: &str) -> Result<JsValue, JsError> {
    let check = match serde_json::from_str::<ModelConfig>(model_json) {
        Err(e) => ModelCheck {
            ok: false,
            error: Some(Error::config("model", e.to_string()).to_string()),
            n_params: 0,
        },
        Ok(cfg) => match cfg.validate() {
            Ok(()) => ModelCheck {
                ok: true,
                error: None,
                n_params: cfg.n_params(),
            },
            Err(e) => ModelCheck {
                ok: false,
                error: Some(e.to_string()),
                n_params: 0,
            },
        },
    };
    to_js(&check)
}

/// One shown sequence. `predicted[i]` marks the positions the model is scored on (the
/// targets); `model` and `correct` hold the model's teacher-forced greedy guess there (null
/// elsewhere, and absent before a model exists).
#[derive(Serialize)]
pub(crate) struct Shown {
    pub(crate) tokens: Vec<String>,
    pub(crate) predicted: Vec<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) correct: Option<Vec<Option<bool>>>,
}

pub(crate) fn shown_samples(task: &TaskSpec, seed: u64, k: usize) -> (Vec<u32>, Vec<Shown>) {
    let k = k.min(MAX_SHOWN);
    let vocab = task.vocab();
    let mut targets = vec![false; task.seq_len()];
    for p in task.pred_positions() {
        targets[task.shown_at(p)] = true;
    }
    let tokens = task.batch(seed, SHOW_STEP, k); // (k, T)
    let shown = tokens
        .chunks(task.seq_len().max(1))
        .map(|seq| Shown {
            tokens: seq.iter().map(|&t| vocab[t as usize].clone()).collect(),
            predicted: targets.clone(),
            model: None,
            correct: None,
        })
        .collect();
    (tokens, shown)
}

/// `task_samples(task_json, k, seed) -> [{tokens, predicted}]`: k (≤ 64) fresh sequences
/// of the task, as labels, with the scored positions marked.
#[wasm_bindgen]
pub fn task_samples(task_json: &str, k: usize, seed: u32) -> Result<JsValue, JsError> {
    let task = parse_task(task_json)?;
    to_js(&shown_samples(&task, seed as u64, k).1)
}
