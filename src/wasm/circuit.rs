//! The Circuit cell's binding (www/js/cells/circuit.js): discovery and faithfulness on the
//! selected snapshot, in the analysis worker. The clean/corrupted runs of one choice of
//! (snapshot, metric, ablation, samples, seed) are prepared once and kept, so toggling an
//! edge costs three forward runs (circuit, complement, all ablated).

use super::interp::Interp;
use super::{js_err, parse, to_js};
use crate::error::Error;
use crate::interp::circuit_metric::{default_pairs, CircuitMetric, CircuitSetup, EdgeAblation};
use crate::interp::discovery::{discover, Method, Select};
use crate::interp::faithfulness::faithfulness;
use crate::interp::graph::Circuit;
use candle_core::DType;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// The cell's choices (the page's `circuit_*` properties).
#[derive(Deserialize)]
#[serde(default)]
struct CellOptions {
    method: String,
    metric: String,
    ablation: String,
    /// "threshold" or "top_k"
    select: String,
    threshold: f64,
    top_k: usize,
    ig_steps: usize,
    samples: usize,
    seed: u64,
}

impl Default for CellOptions {
    fn default() -> Self {
        CellOptions {
            method: "acdc".into(),
            metric: "kl".into(),
            ablation: "corrupted".into(),
            select: "threshold".into(),
            threshold: 0.01,
            top_k: 10,
            ig_steps: 8,
            samples: 32,
            seed: 0,
        }
    }
}

/// A prepared setup and what it was prepared for.
pub(super) struct Prepared {
    key: String,
    setup: CircuitSetup,
}

impl Interp {
    /// The setup for `o` on the selected snapshot, prepared now unless kept from before.
    fn prepared(&mut self, o: &CellOptions) -> Result<&CircuitSetup, JsError> {
        let step = self.wb.selected();
        let key = format!(
            "{step:?}/{}/{}/{}/{}",
            o.metric, o.ablation, o.samples, o.seed
        );
        if self.circuit.as_ref().is_none_or(|p| p.key != key) {
            self.circuit = None;
            let metric = CircuitMetric::parse(&o.metric).map_err(js_err)?;
            let ablation = EdgeAblation::parse(&o.ablation).map_err(js_err)?;
            let w = self.wb.weights().map_err(js_err)?;
            let pairs = default_pairs(&self.wb.task, o.samples, o.seed).map_err(js_err)?;
            let setup = CircuitSetup::new(w, &self.wb.task, pairs, metric, ablation, DType::F32)
                .map_err(js_err)?;
            self.circuit = Some(Prepared { key, setup });
        }
        Ok(&self.circuit.as_ref().expect("prepared above").setup)
    }
}

fn options(json: &str) -> Result<CellOptions, JsError> {
    if json.trim().is_empty() {
        return Ok(CellOptions::default());
    }
    parse("circuit options", json)
}

#[wasm_bindgen]
impl Interp {
    /// Discovers a circuit with the options (JSON; see the cell) and checks it: `{graph,
    /// discovery: {circuit: {edges}, scores, runs, ...}, faithfulness}`.
    pub fn circuit_discover(&mut self, options_json: &str) -> Result<JsValue, JsError> {
        let o = options(options_json)?;
        let method = Method::parse(&o.method).map_err(js_err)?;
        let select = match o.select.as_str() {
            "top_k" => Select::TopK(o.top_k),
            "threshold" => Select::Threshold(o.threshold),
            s => {
                return Err(js_err(Error::config(
                    "select",
                    format!("'{s}' is not threshold or top_k"),
                )))
            }
        };
        let s = self.prepared(&o)?;
        let d = discover(s, method, select, o.ig_steps).map_err(js_err)?;
        let f = faithfulness(s, &d.circuit).map_err(js_err)?;
        to_js(&serde_json::json!({
            "graph": s.model.graph, "discovery": d, "faithfulness": f,
        }))
    }

    /// The faithfulness of a circuit given as a JSON list of 0/1 per edge.
    pub fn circuit_check(
        &mut self,
        options_json: &str,
        edges_json: &str,
    ) -> Result<JsValue, JsError> {
        let o = options(options_json)?;
        let bits: Vec<u8> = parse("circuit edges", edges_json)?;
        let s = self.prepared(&o)?;
        let c = Circuit {
            edges: bits.iter().map(|&b| b != 0).collect(),
        };
        to_js(&faithfulness(s, &c).map_err(js_err)?)
    }
}
