//! Sharing experiments: models in (what a `.pt` / `.safetensors` file holds) and out
//! (TransformerLens exports). A `Session`'s own links and checkpoints are in `session.rs`.

use super::{js_err, parse, parse_task, to_js};
use crate::io::tl_python_snippet;
use crate::model::{ActFn, ModelConfig};
use crate::share::{self, ConfigSource, TaskSource};
use crate::tasks::TaskSpec;
use serde::Serialize;
use wasm_bindgen::prelude::*;

pub(super) fn optional_task(json: &str) -> Result<Option<TaskSpec>, JsError> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    parse_task(json).map(Some)
}

pub(super) fn optional(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.trim().is_empty())
}

#[derive(Serialize)]
struct ImportInfo {
    task: TaskSpec,
    model: ModelConfig,
    step: u64,
    config_source: ConfigSource,
    task_source: TaskSource,
    notes: Vec<String>,
    n_params: usize,
}

/// `import_model_info(bytes, config_json, selected_task_json) -> {task, model, step,
/// config_source, task_source, notes, n_params}` for a `.pt` or `.safetensors` file; throws
/// the error that names the bad tensor and its shapes. `config_json` and
/// `selected_task_json` may be empty.
#[wasm_bindgen]
pub fn import_model_info(
    bytes: &[u8],
    config_json: &str,
    selected_task_json: &str,
) -> Result<JsValue, JsError> {
    let selected = optional_task(selected_task_json)?;
    let m = share::import_model(bytes, optional(config_json), selected.as_ref()).map_err(js_err)?;
    to_js(&ImportInfo {
        n_params: m.weights.data.len(),
        task: m.task,
        model: m.weights.cfg,
        step: m.step,
        config_source: m.config_source,
        task_source: m.task_source,
        notes: m.notes,
    })
}

#[derive(Serialize)]
struct TlExport {
    config_json: String,
    python: String,
    notes: Vec<String>,
}

/// `tl_export(model_json, weights_name, config_name) -> {config_json, python, notes}`: the
/// config file's text (HookedTransformerConfig field names), the Python that loads both
/// files into TransformerLens, and what would not carry over.
#[wasm_bindgen]
pub fn tl_export(
    model_json: &str,
    weights_name: &str,
    config_name: &str,
) -> Result<JsValue, JsError> {
    let cfg: ModelConfig = parse("model", model_json)?;
    let mut notes = Vec::new();
    if cfg.act_fn == Some(ActFn::Solu) && cfg.d_mlp.is_some() {
        notes.push("TransformerLens has no plain \"solu\" activation (only \"solu_ln\", which adds a LayerNorm): this model will not load there as it is".into());
    }
    if cfg.train_biases {
        notes.push("trained biases are exported as they are; TransformerLens uses them".into());
    }
    let config_json =
        serde_json::to_string_pretty(&cfg.to_tl_json()).map_err(|e| js_err(e.into()))?;
    to_js(&TlExport {
        config_json,
        python: tl_python_snippet(weights_name, config_name),
        notes,
    })
}
