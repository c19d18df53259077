//! The Circuit cell's binding (www/js/cells/circuit.js): discovery and faithfulness on the
//! selected snapshot, in the analysis worker. The clean/corrupted runs of one choice of
//! (snapshot, metric, ablation, samples, seed, typed inputs) are prepared once and kept, so
//! toggling an edge costs three forward runs (circuit, complement, all ablated). Typed
//! clean/corrupted prompts (`;` between pairs) replace the task's default pairs; a bad one
//! is an error that leaves the prepared setup as it was.

use super::interp::Interp;
use super::{js_err, parse, to_js};
use crate::error::Error;
use crate::interp::circuit_metric::{default_pairs, CircuitMetric, CircuitSetup, EdgeAblation};
use crate::interp::circuit_pairs::{pairs_or, pairs_text};
use crate::interp::circuit_report::agreement;
use crate::interp::discovery::{
    discover, keep_neurons, rank_neurons, Discovery, Method, NeuronRanking, Select,
};
use crate::interp::faithfulness::faithfulness;
use crate::interp::graph::GraphOptions;
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
    /// typed clean and corrupted prompts (`;` between pairs); both blank: the task's pairs
    clean: String,
    corrupted: String,
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
            clean: String::new(),
            corrupted: String::new(),
        }
    }
}

/// A prepared setup and what it was prepared for.
pub(super) struct Prepared {
    key: String,
    setup: CircuitSetup,
    /// the last discovery and its key
    discovery: Option<(String, Discovery)>,
    /// the neuron view's setup (the same pairs on the graph with one sender per MLP neuron)
    /// and its last ranking with its key (layer, IG steps)
    neurons: Option<(CircuitSetup, Option<(String, NeuronRanking)>)>,
    /// the last agreement check (one run per edge) and its IG steps
    agreement: Option<(usize, serde_json::Value)>,
}

/// The neuron view's choices (the page's `circuit_neuron_*` properties).
#[derive(Deserialize)]
#[serde(default)]
struct NeuronOptions {
    /// the MLP's layer
    layer: usize,
    /// how many of the top-ranked neurons to keep (or to ablate)
    k: usize,
    /// how many of the ranked neurons to list
    top: usize,
}

impl Default for NeuronOptions {
    fn default() -> Self {
        NeuronOptions {
            layer: 0,
            k: 10,
            top: 20,
        }
    }
}

impl Interp {
    /// The setup for `o` on the selected snapshot, prepared now unless kept from before.
    fn prepared(&mut self, o: &CellOptions) -> Result<&CircuitSetup, JsError> {
        let step = self.wb.selected();
        let key = format!(
            "{step:?}/{}/{}/{}/{}/{:?}/{:?}",
            o.metric, o.ablation, o.samples, o.seed, o.clean, o.corrupted
        );
        if self.circuit.as_ref().is_none_or(|p| p.key != key) {
            // built in full before the kept setup is replaced: an error changes nothing
            let metric = CircuitMetric::parse(&o.metric).map_err(js_err)?;
            let ablation = EdgeAblation::parse(&o.ablation).map_err(js_err)?;
            let task = &self.wb.task;
            let pairs = pairs_or(task, &o.clean, &o.corrupted, || {
                default_pairs(task, o.samples, o.seed)
            })
            .map_err(js_err)?;
            let w = self.wb.weights().map_err(js_err)?;
            let setup =
                CircuitSetup::new(w, task, pairs, metric, ablation, DType::F32).map_err(js_err)?;
            self.circuit = Some(Prepared {
                key,
                setup,
                discovery: None,
                neurons: None,
                agreement: None,
            });
        }
        Ok(&self.circuit.as_ref().expect("prepared above").setup)
    }

    /// The prepared setup's pairs on the neuron graph, built now unless kept from before.
    fn prepared_neurons(&mut self, o: &CellOptions) -> Result<(), JsError> {
        self.prepared(o)?;
        let p = self.circuit.as_ref().expect("prepared above");
        if p.neurons.is_none() {
            let metric = CircuitMetric::parse(&o.metric).map_err(js_err)?;
            let ablation = EdgeAblation::parse(&o.ablation).map_err(js_err)?;
            let w = self.wb.weights().map_err(js_err)?;
            let (task, pairs) = (&self.wb.task, p.setup.pairs.clone());
            let graph = GraphOptions { neurons: true };
            let setup =
                CircuitSetup::with_graph(w, task, pairs, metric, ablation, DType::F32, graph)
                    .map_err(js_err)?;
            self.circuit.as_mut().expect("prepared above").neurons = Some((setup, None));
        }
        Ok(())
    }
}

fn options(json: &str) -> Result<CellOptions, JsError> {
    if json.trim().is_empty() {
        return Ok(CellOptions::default());
    }
    parse("circuit options", json)
}

impl CellOptions {
    fn select(&self) -> Result<Select, JsError> {
        match self.select.as_str() {
            "top_k" => Ok(Select::TopK(self.top_k)),
            "threshold" => Ok(Select::Threshold(self.threshold)),
            s => Err(js_err(Error::config(
                "select",
                format!("'{s}' is not threshold or top_k"),
            ))),
        }
    }
    /// What the discovery depends on beyond the setup.
    fn discovery_key(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.method, self.select, self.threshold, self.top_k, self.ig_steps
        )
    }
}

#[wasm_bindgen]
impl Interp {
    /// The Circuit cell: discovers a circuit with the options (JSON, see `CellOptions`;
    /// the discovery is kept while they and the snapshot stay), flips the edges listed in
    /// `toggles_json` (edge indices: the user's clicks) and checks the result. Returns
    /// `{graph, discovery: {circuit, scores, runs, ..}, edges (0/1 per edge, after the
    /// toggles), faithfulness, inputs: {typed, pairs, clean, corrupted (the first pairs'
    /// prompt texts)}}`.
    pub fn circuit(&mut self, options_json: &str, toggles_json: &str) -> Result<JsValue, JsError> {
        let o = options(options_json)?;
        let method = Method::parse(&o.method).map_err(js_err)?;
        let select = o.select()?;
        let toggles: Vec<usize> = if toggles_json.trim().is_empty() {
            Vec::new()
        } else {
            parse("circuit toggles", toggles_json)?
        };
        self.prepared(&o)?;
        let p = self.circuit.as_mut().expect("prepared above");
        let dk = o.discovery_key();
        if p.discovery.as_ref().is_none_or(|(k, _)| *k != dk) {
            let d = discover(&p.setup, method, select, o.ig_steps).map_err(js_err)?;
            p.discovery = Some((dk, d));
        }
        let (s, d) = (&p.setup, &p.discovery.as_ref().expect("discovered above").1);
        let typed = !(o.clean.trim().is_empty() && o.corrupted.trim().is_empty());
        let (clean, corrupted) = pairs_text(&self.wb.task, &s.pairs, 4);
        let mut c = d.circuit.clone();
        for &e in &toggles {
            match c.edges.get_mut(e) {
                Some(x) => *x = !*x,
                None => {
                    return Err(js_err(Error::config(
                        "circuit toggles",
                        format!("edge {e} is not in the graph ({} edges)", c.edges.len()),
                    )))
                }
            }
        }
        let f = faithfulness(s, &c).map_err(js_err)?;
        let bits: Vec<u8> = c.edges.iter().map(|&b| b as u8).collect();
        to_js(&serde_json::json!({
            "graph": s.model.graph, "discovery": d, "edges": bits, "faithfulness": f,
            "inputs": { "typed": typed, "pairs": s.pairs.batch, "clean": clean, "corrupted": corrupted },
        }))
    }

    /// The Circuit cell's neuron view of MLP `layer` (options as `circuit`; `neurons_json`:
    /// `{layer, k, top}`): its neurons ranked by EAP-IG (the sum of each neuron's outgoing
    /// edges' estimates, `ig_steps` steps) and the faithfulness of keeping only the top k
    /// neurons of that MLP (every other edge kept) and of ablating only them. Returns
    /// `{neurons: false}` for an attention-only model, else `{neurons: true, layer, d_mlp,
    /// n_layers, k, top: [{neuron, score}] (by |score|, largest first), keep, ablate}`.
    pub fn circuit_neurons(
        &mut self,
        options_json: &str,
        neurons_json: &str,
    ) -> Result<JsValue, JsError> {
        let o = options(options_json)?;
        let n: NeuronOptions = if neurons_json.trim().is_empty() {
            NeuronOptions::default()
        } else {
            parse("neuron options", neurons_json)?
        };
        let cfg = &self.wb.weights().map_err(js_err)?.cfg;
        let (Some(d_mlp), n_layers) = (cfg.d_mlp, cfg.n_layers) else {
            return to_js(&serde_json::json!({ "neurons": false }));
        };
        if n.layer >= n_layers || n.k > d_mlp {
            return Err(js_err(Error::config(
                "neuron options",
                format!(
                    "layer {} and k {}: the model has {n_layers} MLPs of {d_mlp} neurons",
                    n.layer, n.k
                ),
            )));
        }
        self.prepared_neurons(&o)?;
        let p = self.circuit.as_mut().expect("prepared above");
        let (s, ranking) = p.neurons.as_mut().expect("prepared above");
        let rk = format!("{}/{}", n.layer, o.ig_steps);
        if ranking.as_ref().is_none_or(|(k, _)| *k != rk) {
            *ranking = Some((rk, rank_neurons(s, n.layer, o.ig_steps).map_err(js_err)?));
        }
        let r = &ranking.as_ref().expect("ranked above").1;
        let g = &s.model.graph;
        let keep = keep_neurons(g, n.layer, &r.order[..n.k]).map_err(js_err)?;
        let ablate = keep_neurons(g, n.layer, &r.order[n.k..]).map_err(js_err)?;
        let top: Vec<_> = (r.order.iter().take(n.top))
            .map(|&i| serde_json::json!({ "neuron": i, "score": r.scores[i] }))
            .collect();
        to_js(&serde_json::json!({
            "neurons": true, "layer": n.layer, "d_mlp": d_mlp, "n_layers": n_layers, "k": n.k,
            "top": top,
            "keep": faithfulness(s, &keep).map_err(js_err)?,
            "ablate": faithfulness(s, &ablate).map_err(js_err)?,
        }))
    }

    /// The Circuit cell's check of attribution against patching (options as `circuit`):
    /// Spearman's rank correlation, over every edge of the graph, between EAP / EAP-IG
    /// (`ig_steps`) estimates and noising path patching of each edge on the same pairs —
    /// one run per edge, so it is computed only when the view is open. Returns `{edges,
    /// ig_steps, eap (null for the KL metric: its gradient is zero at the full model),
    /// eap_ig}`.
    pub fn circuit_agreement(&mut self, options_json: &str) -> Result<JsValue, JsError> {
        let o = options(options_json)?;
        self.prepared(&o)?;
        let p = self.circuit.as_mut().expect("prepared above");
        let k = o.ig_steps.max(1);
        if p.agreement.as_ref().is_none_or(|(steps, _)| *steps != k) {
            let a = agreement(&p.setup, k).map_err(js_err)?;
            let v = serde_json::json!({
                "edges": p.setup.model.graph.edges.len(), "ig_steps": k, "eap": a.eap, "eap_ig": a.eap_ig,
            });
            p.agreement = Some((k, v));
        }
        to_js(&p.agreement.as_ref().expect("computed above").1)
    }
}
