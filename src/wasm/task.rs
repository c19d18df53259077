//! Task and model forms: what the page shows before any training.

use super::{js_err, parse, parse_task, to_js, MAX_SHOWN, SHOW_STEP};
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
    /// What the analysis cells say about this task.
    analysis_notes: crate::tasks::task::AnalysisNotes,
}

/// `task_info(task_json) -> {seq_len, d_vocab, d_vocab_out, vocab, loss_floor,
/// default_model, pred_positions, prompt_len, analysis_notes}`; throws the task's validation error.
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
        analysis_notes: t.with_task(|x| x.analysis_notes()),
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
    /// What the analysis cells say about the task (`Task::analysis_notes`).
    notes: crate::tasks::task::AnalysisNotes,
}

/// The text of `www/js/task-rows.js` (the page's task rows and analysis notes), which
/// `make wasm` writes with `pkg-config/task-rows.mjs`: the registry is its one source.
#[wasm_bindgen]
pub fn task_rows_js() -> String {
    crate::tasks::page_rows_js()
}

/// `task_catalogue() -> [{name, description, params, finite, defaults, notes}]`: every registered
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
            notes: t.with_task(|x| x.analysis_notes()),
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

/// What the page's Data cell shows about a file.
#[derive(Serialize)]
struct DataCheck {
    ok: bool,
    name: String,
    format: crate::tasks::custom::Format,
    hash: String,
    bytes: usize,
    examples: usize,
    labels: usize,
    longest: usize,
    marks_splits: bool,
    /// The first errors (line 0: the whole file) and how many lines they affect.
    errors: crate::error::DataErrors,
    /// The task's own refusal (lines scoring different positions, ...) when the file decodes.
    task_error: Option<String>,
}

/// `data_check(text, name, format, separator, n_ctx) -> {ok, name, format, hash, bytes,
/// examples, labels, longest, marks_splits, errors: {first: [{line, msg}], lines_affected},
/// task_error}`: a custom task's data file as the Data cell reports it. Never throws on the
/// file's content.
#[wasm_bindgen]
pub fn data_check(
    text: String,
    name: &str,
    format: &str,
    separator: &str,
    n_ctx: usize,
) -> Result<JsValue, JsError> {
    use crate::tasks::custom::{Custom, Options};
    let format = parse("format", &format!("\"{}\"", format.escape_default()))?;
    let mut chars = separator.chars();
    let separator = match (chars.next(), chars.next()) {
        (Some(c), None) => c,
        _ => return Err(js_err(Error::config("separator", "give one character"))),
    };
    let bytes = text.len();
    let c = Custom::new(
        text,
        name,
        Options {
            format,
            separator,
            n_ctx,
        },
    );
    let ds = c.dataset().ok();
    let task_error = ds.and(
        TaskSpec::Custom(c.clone())
            .validate()
            .err()
            .map(|e| e.to_string()),
    );
    to_js(&DataCheck {
        ok: ds.is_some() && task_error.is_none(),
        name: c.name.clone(),
        format: ds.map_or(format, |d| d.format),
        hash: c.hash().to_string(),
        bytes,
        examples: ds.map_or(0, |d| d.examples.len()),
        labels: ds.map_or(0, |d| d.labels.len()),
        longest: ds.map_or(0, |d| d.longest),
        marks_splits: c.marks_splits(),
        errors: c.errors(),
        task_error,
    })
}

/// `data_link(text) -> string | null`: the data packed for a link's `d=`, or null when it
/// does not fit the link's budget.
#[wasm_bindgen]
pub fn data_link(text: &str) -> Result<Option<String>, JsError> {
    let packed = crate::share::link_data::encode_data_link(text).map_err(js_err)?;
    Ok(crate::share::link_data::fits_data_link(&packed).then_some(packed))
}

/// `data_from_link(d) -> string`: the text of a link's `d=`; throws what is wrong.
#[wasm_bindgen]
pub fn data_from_link(packed: &str) -> Result<String, JsError> {
    crate::share::link_data::decode_data_link(packed).map_err(js_err)
}

/// `data_hash(text) -> string`: the hash a custom task records for its data.
#[wasm_bindgen]
pub fn data_hash(text: &str) -> String {
    crate::tasks::custom::data_hash(text.as_bytes())
}
