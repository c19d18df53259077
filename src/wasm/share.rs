//! Sharing and keeping experiments: models in (files, URLs, links, saved runs) and out
//! (TransformerLens exports, weights in a link, checkpoints for the page's run store).

use super::{js_err, parse, parse_task, to_js, Session};
use crate::error::Error;
use crate::io::tl_python_snippet;
use crate::model::{ActFn, ModelConfig};
use crate::share::{
    self, ConfigSource, TaskSource, MAX_LINK_WEIGHTS_CHARS, MAX_LINK_WEIGHTS_VALUES,
};
use crate::tasks::TaskSpec;
use crate::train::{BackendKind, OptimizerState, TrainConfig, Trainer};
use serde::Serialize;
use wasm_bindgen::prelude::*;

fn optional_task(json: &str) -> Result<Option<TaskSpec>, JsError> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    parse_task(json).map(Some)
}

fn optional(s: &str) -> Option<&str> {
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

#[derive(Serialize)]
struct LinkWeights {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    chars: usize,
    limit: usize,
    n_params: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Serialize)]
struct LinkComparison {
    values: usize,
    /// Values whose f16 rounding differs from the link's value.
    differ: usize,
    /// Largest |current − link| over all values.
    max_abs_diff: f32,
    link_step: u64,
}

#[wasm_bindgen]
impl Session {
    /// `Session.from_weights(bytes, config_json, selected_task_json, train_json)`: a session
    /// on imported weights (see [`import_model_info`]), at the step its metadata gives (0
    /// for a TransformerLens file), ready to evaluate or to train for `train.steps` in all.
    pub fn from_weights(
        bytes: &[u8],
        config_json: &str,
        selected_task_json: &str,
        train_json: &str,
    ) -> Result<Session, JsError> {
        let selected = optional_task(selected_task_json)?;
        let train: TrainConfig = parse("train", train_json)?;
        let m =
            share::import_model(bytes, optional(config_json), selected.as_ref()).map_err(js_err)?;
        let trainer = Trainer::resume(m.task, &m.weights, train, BackendKind::Cpu, m.step, None)
            .map_err(js_err)?;
        Ok(Session { trainer })
    }

    /// `Session.from_link(text, task_json, model_json, train_json)`: a session on the
    /// weights of a link's `w=` value, at the step it records.
    pub fn from_link(
        text: &str,
        task_json: &str,
        model_json: &str,
        train_json: &str,
    ) -> Result<Session, JsError> {
        let task = parse_task(task_json)?;
        let cfg: ModelConfig = parse("model", model_json)?;
        let train: TrainConfig = parse("train", train_json)?;
        let (w, step) = share::decode_weights_link(text, &cfg).map_err(js_err)?;
        let trainer =
            Trainer::resume(task, &w, train, BackendKind::Cpu, step, None).map_err(js_err)?;
        Ok(Session { trainer })
    }

    /// The weights as a link's `w=` value: `{ok, text?, chars, limit, n_params, message?}`;
    /// `ok` is false (with a message) when they do not fit in a link.
    pub fn weights_link(&self) -> Result<JsValue, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        let n = w.data.len();
        let too_big = |chars: usize, est: &str| {
            Some(format!(
                "the model's {n} parameters need {est}{} KB in a link, over the {} KB limit: share the .safetensors file instead",
                chars.div_ceil(1024),
                MAX_LINK_WEIGHTS_CHARS / 1024
            ))
        };
        let out = if n > MAX_LINK_WEIGHTS_VALUES {
            let chars = n * 2 * 4 / 3;
            LinkWeights {
                ok: false,
                text: None,
                chars,
                limit: MAX_LINK_WEIGHTS_CHARS,
                n_params: n,
                message: too_big(chars, "about "),
            }
        } else {
            let text = share::encode_weights_link(&w, self.trainer.step).map_err(js_err)?;
            let chars = text.len();
            if share::fits_link(&text) {
                LinkWeights {
                    ok: true,
                    text: Some(text),
                    chars,
                    limit: MAX_LINK_WEIGHTS_CHARS,
                    n_params: n,
                    message: None,
                }
            } else {
                LinkWeights {
                    ok: false,
                    text: None,
                    chars,
                    limit: MAX_LINK_WEIGHTS_CHARS,
                    n_params: n,
                    message: too_big(chars, ""),
                }
            }
        };
        to_js(&out)
    }

    /// Compares the current weights with a link's `w=` value (as from a replayed run):
    /// `{values, differ, max_abs_diff, link_step}`; `differ` is 0 when every current value
    /// rounds to exactly the link's f16 value.
    pub fn compare_link(&self, text: &str) -> Result<JsValue, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        let (link, link_step) = share::decode_weights_link(text, &w.cfg).map_err(js_err)?;
        let mut differ = 0;
        let mut max_abs_diff = 0f32;
        for (&a, &b) in w.data.iter().zip(&link.data) {
            differ += (share::round_f16(a).to_bits() != b.to_bits()) as usize;
            max_abs_diff = max_abs_diff.max((a - b).abs());
        }
        to_js(&LinkComparison {
            values: w.data.len(),
            differ,
            max_abs_diff,
            link_step,
        })
    }

    /// A checkpoint for the page's run store: `{weights: Uint8Array (safetensors, as
    /// export_safetensors), step, adam_t, adam_m: Float32Array, adam_v: Float32Array}`.
    pub fn checkpoint(&self) -> Result<JsValue, JsError> {
        let weights = self.export_safetensors()?;
        let opt = self.trainer.backend.optimizer_state().map_err(js_err)?;
        let o = js_sys::Object::new();
        let set =
            |k: &str, v: JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), &v).map(|_| ());
        let res = (|| {
            set("weights", js_sys::Uint8Array::from(&weights[..]).into())?;
            set("step", JsValue::from_f64(self.trainer.step as f64))?;
            set("adam_t", JsValue::from_f64(opt.t as f64))?;
            set("adam_m", js_sys::Float32Array::from(&opt.m[..]).into())?;
            set("adam_v", js_sys::Float32Array::from(&opt.v[..]).into())?;
            // the running state of a loss-driven schedule (reduce_on_plateau), as JSON text
            set(
                "schedule",
                JsValue::from_str(
                    &serde_json::to_string(&self.trainer.schedule_state()).unwrap_or_default(),
                ),
            )
        })();
        res.map_err(|_| {
            js_err(Error::Backend(
                "building the checkpoint object failed".into(),
            ))
        })?;
        Ok(o.into())
    }

    /// Restores the optimiser state of a checkpoint (after `from_weights` on its weights),
    /// so that training continues exactly as if it had never stopped.
    pub fn set_optimizer_state(&mut self, t: f64, m: Vec<f32>, v: Vec<f32>) -> Result<(), JsError> {
        if !(t.is_finite() && t >= 0.0 && t.fract() == 0.0) {
            return Err(js_err(Error::Weights(format!(
                "optimiser step count {t} is not a whole number"
            ))));
        }
        self.trainer
            .backend
            .set_optimizer_state(&OptimizerState { t: t as u64, m, v })
            .map_err(js_err)
    }

    /// Restores the learning-rate schedule's running state of a checkpoint (its `schedule`
    /// JSON text), so a reduce_on_plateau run resumes at the rate it had reached.
    pub fn set_schedule_state(&mut self, json: &str) -> Result<(), JsError> {
        let s: crate::train::ScheduleState = parse("schedule state", json)?;
        self.trainer.set_schedule_state(&s).map_err(js_err)
    }

    /// `{task, model, train, step, backend}` of this session.
    pub fn info(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Info<'a> {
            task: &'a TaskSpec,
            model: ModelConfig,
            train: &'a TrainConfig,
            step: u64,
            backend: String,
        }
        let t = &self.trainer;
        let model = t.backend.weights().map_err(js_err)?.cfg;
        to_js(&Info {
            task: &t.task,
            model,
            train: &t.train,
            step: t.step,
            backend: t.backend.name(),
        })
    }
}
