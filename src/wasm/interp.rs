//! The interpretability binding. The page's analysis worker (www/js/interp/analysis-worker.js)
//! owns one [`Interp`] per run, so no analysis blocks the page; the training worker decides
//! when to post weight snapshots with a [`SnapshotSchedule`] and reads them with
//! `Session.weights()`, and the page forwards them to the analysis worker.
//! Every analysis returns a plain JS object (see `interp::workbench` for the fields);
//! matrices are `{rows, cols, data}` with `data` row-major.

use super::{js_err, parse, parse_task, to_js};
use crate::error::Error;
use crate::interp::intervene::Ablation;
use crate::interp::timeline::{snapshot_plan, SnapshotStore};
use crate::interp::workbench::{Workbench, WorkbenchOptions};
use crate::model::ModelConfig;
use wasm_bindgen::prelude::*;

type Heads = Vec<(usize, usize)>;

fn heads(what: &str, json: &str) -> Result<Heads, JsError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    parse(what, json)
}

fn step_arg(step: f64) -> Result<u64, JsError> {
    if !(step.is_finite() && (0.0..=9.0e15).contains(&step)) {
        return Err(js_err(Error::config(
            "step",
            format!("{step} is not a step number"),
        )));
    }
    Ok(step as u64)
}

/// The analyses of one run or one loaded model.
#[wasm_bindgen]
pub struct Interp {
    pub(super) wb: Workbench,
    /// the circuit cell's prepared runs (src/wasm/circuit.rs), kept while its inputs stay
    pub(super) circuit: Option<super::circuit::Prepared>,
}

#[wasm_bindgen]
impl Interp {
    /// `new Interp(task_json, model_json, options_json)`; options `{samples, seed,
    /// capacity, every}` (any may be left out; see `snapshot_plan` for capacity/every).
    #[wasm_bindgen(constructor)]
    pub fn new(task_json: &str, model_json: &str, options_json: &str) -> Result<Interp, JsError> {
        let task = parse_task(task_json)?;
        let cfg: ModelConfig = parse("model", model_json)?;
        cfg.validate().map_err(js_err)?;
        let opts: WorkbenchOptions = if options_json.trim().is_empty() {
            WorkbenchOptions::default()
        } else {
            parse("options", options_json)?
        };
        Ok(Interp {
            wb: Workbench::new(task, cfg, opts).map_err(js_err)?,
            circuit: None,
        })
    }

    /// An `Interp` holding one model from the bytes of a `.safetensors` or TL `.pt` file.
    pub fn from_file(task_json: &str, bytes: &[u8], options_json: &str) -> Result<Interp, JsError> {
        let task = parse_task(task_json)?;
        let opts: WorkbenchOptions = if options_json.trim().is_empty() {
            WorkbenchOptions::default()
        } else {
            parse("options", options_json)?
        };
        Ok(Interp {
            wb: Workbench::from_file(task, bytes, 0, opts).map_err(js_err)?,
            circuit: None,
        })
    }

    /// Offers the flat weights (parameter-table order) at `step`; `tail` marks the final
    /// weights of a run (kept off the snapshot grid). Returns whether they were kept.
    pub fn add_snapshot(
        &mut self,
        step: f64,
        weights: Vec<f32>,
        tail: bool,
    ) -> Result<bool, JsError> {
        self.wb
            .add_snapshot(step_arg(step)?, weights, tail)
            .map_err(js_err)
    }

    /// The kept snapshot steps, ascending.
    pub fn steps(&self) -> Result<JsValue, JsError> {
        to_js(&self.wb.steps())
    }

    /// Selects the newest snapshot at or before `step` (a negative step: the newest of
    /// all); returns the selected step.
    pub fn select(&mut self, step: f64) -> Result<f64, JsError> {
        let s = if step < 0.0 {
            None
        } else {
            Some(step_arg(step)?)
        };
        self.wb.select(s).map(|s| s as f64).map_err(js_err)
    }

    /// `{task, model, n_params}`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&serde_json::json!({
            "task": self.wb.task, "model": self.wb.cfg, "n_params": self.wb.cfg.n_params(),
            "samples": self.wb.opts.samples, "value_tokens": [self.wb.task.value_tokens().start, self.wb.task.value_tokens().end],
        }))
    }

    /// Attention patterns of every head on typed input (empty: the first fresh sample).
    pub fn attention(&self, text: &str) -> Result<JsValue, JsError> {
        to_js(&self.wb.attention(text).map_err(js_err)?)
    }

    /// The score decomposition of one head on typed input.
    pub fn decomposition(&self, text: &str, layer: usize, head: usize) -> Result<JsValue, JsError> {
        to_js(&self.wb.decomposition(text, layer, head).map_err(js_err)?)
    }

    /// The four QK panels; `q_through` / `k_through` are JSON lists of [layer, head] (or
    /// empty) for K-/Q-composition paths.
    pub fn qk(
        &self,
        layer: usize,
        head: usize,
        q_through: &str,
        k_through: &str,
    ) -> Result<JsValue, JsError> {
        let (q, k) = (
            heads("q_through", q_through)?,
            heads("k_through", k_through)?,
        );
        to_js(&self.wb.qk(layer, head, &q, &k).map_err(js_err)?)
    }

    /// The OV circuits through a JSON list of [layer, head] (one head: its full OV).
    pub fn ov(&self, through: &str) -> Result<JsValue, JsError> {
        to_js(&self.wb.ov(&heads("through", through)?).map_err(js_err)?)
    }

    /// Per-head scores, DLA and composition scores.
    pub fn report(&mut self) -> Result<JsValue, JsError> {
        let r = self.wb.report().map_err(js_err)?;
        to_js(r)
    }

    /// Ablates the heads (JSON list of [layer, head]) together; kind "zero" or "mean".
    pub fn ablate(&mut self, heads_json: &str, kind: &str) -> Result<JsValue, JsError> {
        let kind = match kind {
            "zero" => Ablation::Zero,
            "mean" => Ablation::Mean,
            _ => {
                return Err(js_err(Error::config(
                    "ablation",
                    format!("{kind:?} is not zero or mean"),
                )))
            }
        };
        to_js(
            &self
                .wb
                .ablate(&heads("heads", heads_json)?, kind)
                .map_err(js_err)?,
        )
    }

    /// Every head ablated alone, zero and mean.
    pub fn ablation_table(&mut self) -> Result<JsValue, JsError> {
        let t = self.wb.ablation_table().map_err(js_err)?;
        to_js(t)
    }

    /// Default `{clean, corrupted}` texts for patching.
    pub fn patch_inputs(&self) -> Result<JsValue, JsError> {
        to_js(&self.wb.patch_inputs().map_err(js_err)?)
    }

    /// Activation patching from the clean into the corrupted typed input.
    pub fn patching(&self, clean: &str, corrupted: &str) -> Result<JsValue, JsError> {
        to_js(&self.wb.patching(clean, corrupted).map_err(js_err)?)
    }

    /// Timeline points of every kept snapshot (computing the missing ones).
    pub fn timeline(&mut self) -> Result<JsValue, JsError> {
        to_js(&self.wb.timeline().map_err(js_err)?)
    }

    /// Computes at most `max` missing timeline points; returns how many remain missing.
    pub fn timeline_fill(&mut self, max: usize) -> Result<usize, JsError> {
        self.wb.timeline_fill(max).map_err(js_err)
    }

    /// The timeline points computed so far.
    pub fn timeline_points(&self) -> Result<JsValue, JsError> {
        to_js(&self.wb.timeline_points())
    }
}

/// `snapshot_plan(n_params, total_steps) -> {capacity, every}`: the snapshot store's size
/// and first spacing for a run (the worker and the page use the same plan).
#[wasm_bindgen]
pub fn snapshot_plan_js(n_params: f64, total_steps: f64) -> Result<JsValue, JsError> {
    let (capacity, every) = snapshot_plan(n_params.max(0.0) as usize, step_arg(total_steps)?);
    to_js(&serde_json::json!({ "capacity": capacity, "every": every }))
}

/// The worker's side of the snapshot store: which steps to post (the same thinning rule,
/// without the weights).
#[wasm_bindgen]
pub struct SnapshotSchedule {
    store: SnapshotStore<()>,
}

#[wasm_bindgen]
impl SnapshotSchedule {
    #[wasm_bindgen(constructor)]
    pub fn new(capacity: usize, every: f64) -> Result<SnapshotSchedule, JsError> {
        Ok(SnapshotSchedule {
            store: SnapshotStore::new(capacity, step_arg(every)?).map_err(js_err)?,
        })
    }

    /// Whether the weights after `step` steps should be posted.
    pub fn wants(&self, step: f64) -> bool {
        step >= 0.0 && self.store.wants(step as u64)
    }

    /// Records a posted snapshot (`tail`: the final one, off the grid).
    pub fn push(&mut self, step: f64, tail: bool) -> bool {
        step >= 0.0 && self.store.push(step as u64, (), tail)
    }

    /// The first step ≥ `after` that [`wants`](Self::wants) (so the worker can stop a
    /// chunk of steps there).
    pub fn next_step(&self, after: f64) -> f64 {
        let every = self.store.every();
        let mut s = (after.max(0.0) as u64).div_ceil(every) * every;
        while !self.store.wants(s) {
            s += every;
        }
        s as f64
    }
}
