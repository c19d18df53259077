//! Sweeps in the page: the page expands a grid once, hands one run to each of its sweep
//! workers (one wasm instance per Web Worker, one run at a time), and aggregates the
//! results it gets back. The same library code as the CLI's `examples/sweep`.

use super::{js_err, parse, to_js};
use crate::sweep::{
    aggregate, page_fragment, run_one, runs_on_data, Grid, RunResult, RunSpec, Settings,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[derive(Serialize)]
struct Expanded {
    settings: Settings,
    runs: Vec<RunSpec>,
}

/// `sweep_expand(grid_json) -> {settings, runs: [RunSpec]}`; throws the grid's first error
/// (naming the key).
#[wasm_bindgen]
pub fn sweep_expand(grid_json: &str) -> Result<JsValue, JsError> {
    let grid = Grid::from_json(grid_json).map_err(js_err)?;
    let runs = grid.expand().map_err(js_err)?;
    to_js(&Expanded {
        settings: grid.settings,
        runs,
    })
}

/// `sweep_run(run_json, settings_json) -> RunResult`: trains and measures one run (blocks
/// its worker until done). NaN figures come back as null.
#[wasm_bindgen]
pub fn sweep_run(run_json: &str, settings_json: &str) -> Result<JsValue, JsError> {
    let spec: RunSpec = parse("run", run_json)?;
    let settings: Settings = parse("settings", settings_json)?;
    to_js(&run_one(&spec, &settings).map_err(js_err)?)
}

/// `sweep_aggregate(results_json) -> [ConfigSummary]`: mean/min/max over seeds per config.
#[wasm_bindgen]
pub fn sweep_aggregate(results_json: &str) -> Result<JsValue, JsError> {
    let results: Vec<RunResult> = parse("results", results_json)?;
    to_js(&aggregate(&results))
}

/// `sweep_link(run_json) -> "#v=1&task=...&..."`: the page fragment that opens this run.
#[wasm_bindgen]
pub fn sweep_link(run_json: &str) -> Result<String, JsError> {
    let spec: RunSpec = parse("run", run_json)?;
    Ok(page_fragment(&spec))
}

/// `sweep_on_data(runs_json, data_json) -> [RunSpec]`: a custom task's runs re-made on the
/// page's data file (`data_json`: `{data, name, format, separator, hash}`), each model sized
/// from the data, as the CLI's `sweep --data FILE` does; throws naming the first run that fails.
#[wasm_bindgen]
pub fn sweep_on_data(runs_json: &str, data_json: &str) -> Result<JsValue, JsError> {
    let mut runs: Vec<RunSpec> = parse("runs", runs_json)?;
    let patch: serde_json::Map<String, serde_json::Value> = parse("data", data_json)?;
    runs_on_data(&mut runs, &patch).map_err(js_err)?;
    to_js(&runs)
}
