//! Sharing experiments: models in (what a `.pt` / `.safetensors` file holds) and out
//! (TransformerLens exports). A `Session`'s own links and checkpoints are in `session.rs`.

use super::{js_err, parse, parse_task, to_js};
use crate::io::{tl_python, TlVersion};
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
    assumed: Vec<String>,
    candidates: Vec<share::Candidate>,
    n_params: usize,
}

/// `import_model_info(bytes, config_json, selected_task_json) -> {task, model, step,
/// config_source, task_source, notes, assumed, candidates: [{task, token_acc}], n_params}` for a `.pt` or `.safetensors` file; throws
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
        assumed: m.assumed,
        candidates: m.candidates,
    })
}

#[derive(Serialize)]
struct TlExport {
    config_json: String,
    /// TransformerLens 4.x lines (the default, what `pip install transformer_lens` gets).
    python: String,
    /// TransformerLens 3.x lines (`HookedTransformer`).
    python_tl3: String,
    notes: Vec<String>,
}

/// `tl_export(model_json, weights_name, config_name) -> {config_json, python, python_tl3,
/// notes}`: the config file's text (HookedTransformerConfig field names, which 4.x's
/// TransformerBridgeConfig accepts too), the Python that loads both files into TransformerLens
/// 4.x (`python`) and 3.x (`python_tl3`), and what would not carry over.
#[wasm_bindgen]
pub fn tl_export(
    model_json: &str,
    weights_name: &str,
    config_name: &str,
) -> Result<JsValue, JsError> {
    let cfg: ModelConfig = parse("model", model_json)?;
    let mut notes = Vec::new();
    if cfg.act_fn == Some(ActFn::Solu) && cfg.d_mlp.is_some() {
        notes.push("TransformerLens 3.x has no plain \"solu\" activation (only \"solu_ln\", which adds a LayerNorm): use the 4.x lines, whose TransformerBridge has \"solu\"".into());
    }
    if cfg.train_biases {
        notes.push("trained biases are exported as they are; TransformerLens uses them".into());
    }
    let config_json =
        serde_json::to_string_pretty(&cfg.to_tl_json()).map_err(|e| js_err(e.into()))?;
    to_js(&TlExport {
        config_json,
        python: tl_python(TlVersion::V4, weights_name, config_name),
        python_tl3: tl_python(TlVersion::V3, weights_name, config_name),
        notes,
    })
}

/// `notebook_export(safetensors_bytes, task_json, options_json) -> string`: the Jupyter
/// notebook that redoes this model's analysis in TransformerLens 4.x
/// ([`crate::notebook::export_notebook`]; options `{input, samples, seed, fresh_samples,
/// step}`, missing ones default). The bytes are the page's own export.
#[wasm_bindgen]
pub fn notebook_export(
    bytes: &[u8],
    task_json: &str,
    options_json: &str,
) -> Result<String, JsError> {
    let w = crate::io::load_weights(bytes, None).map_err(js_err)?;
    let task = parse_task(task_json)?;
    let opts: crate::notebook::NotebookOptions = parse("options", options_json)?;
    crate::notebook::export_notebook(&w, &task, &opts).map_err(js_err)
}
