//! The browser API (wasm-bindgen). The page's worker owns one [`Session`]; the page itself
//! calls the free functions ([`task_info`], [`validate_model`], [`task_samples`]) to fill
//! its forms. Configs come in as JSON strings (the serde forms of [`TaskSpec`],
//! [`ModelConfig`] and [`TrainConfig`]); results go out as plain JS objects. This is the
//! only place where [`Error`] becomes a `JsError`, with the crate's message unchanged.
//!
//! One file per area: [`task`] (forms and samples), [`session`] (a training run on the CPU, all
//! of `Session`: training, links, checkpoints, snapshots), [`gpu`] (a training run on WebGPU,
//! asynchronous, over the same `TrainRun` bookkeeping), [`interp`] (the interpretability
//! analyses and weight snapshots), [`share`] (models in and out: imports, exports),
//! [`sweep`] (sweeps run across the page's workers). Shared helpers (JSON in,
//! plain JS objects out, errors) live here.

mod circuit;
mod gpu;
mod interp;
mod interp_analyses;
mod pool;
mod session;
mod share;
mod sweep;
mod task;

pub use gpu::GpuSession;
pub use interp::{snapshot_plan_js, Interp, SnapshotSchedule};
pub use pool::ShardWorker;
pub use session::Session;
pub use share::{import_model_info, tl_export};
pub use sweep::{sweep_aggregate, sweep_expand, sweep_link, sweep_on_data, sweep_run};
pub use task::{
    data_check, data_from_link, data_hash, data_link, task_catalogue, task_info, task_samples,
    validate_model,
};

use crate::error::Error;
use crate::tasks::TaskSpec;
use crate::train::eval::EVAL_STEP_OFFSET;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Data stream step used for the samples the page shows (never a training step).
pub(crate) const SHOW_STEP: u64 = EVAL_STEP_OFFSET - 1;
/// Most samples `samples` / `task_samples` return, and most `evaluate` scores.
pub(crate) const MAX_SHOWN: usize = 64;
pub(crate) const MAX_EVAL: usize = 100_000;

pub(crate) fn js_err(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("serialising the result failed: {e}")))
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| js_err(Error::config(what, e.to_string())))
}

pub(crate) fn parse_task(json: &str) -> Result<TaskSpec, JsError> {
    let task: TaskSpec = parse("task", json)?;
    task.validate().map_err(js_err)?;
    Ok(task)
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
