//! One call that discovers a circuit and checks it: what the `circuits --discover` example
//! prints and the page's Circuit cell shows.

use super::attribution::{edge_attribution, rank_correlation};
use super::circuit_metric::{default_pairs, CircuitMetric, CircuitSetup, EdgeAblation};
use super::discovery::{discover, eap_refusal, Discovery, Method, Select};
use super::faithfulness::{faithfulness, Faithfulness};
use super::graph::{Graph, GraphOptions};
use super::path_patch::{path_patching, PatchDirection};
use crate::error::Result;
use crate::model::Weights;
use crate::tasks::TaskSpec;
use candle_core::DType;
use serde::Serialize;

/// The choices of one circuit analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CircuitOptions {
    pub method: Method,
    pub select: Select,
    pub metric: CircuitMetric,
    pub ablation: EdgeAblation,
    /// EAP-IG's k
    pub ig_steps: usize,
    /// clean/corrupted pairs
    pub samples: usize,
    pub seed: u64,
    /// also patch every edge and report how attribution ranks agree with it
    pub compare: bool,
    /// the graph: `neurons` makes every MLP neuron a node of its own
    pub graph: GraphOptions,
}

impl Default for CircuitOptions {
    fn default() -> Self {
        CircuitOptions {
            method: Method::Acdc,
            select: Select::Threshold(0.01),
            metric: CircuitMetric::Kl,
            ablation: EdgeAblation::Corrupted,
            ig_steps: 8,
            samples: 64,
            seed: 0,
            compare: false,
            graph: GraphOptions::default(),
        }
    }
}

/// Spearman correlations of attribution with true (noising) path patching, all edges.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    /// None for the KL metric, whose gradient is zero at the full model (see [`eap_refusal`])
    pub eap: Option<f64>,
    pub eap_ig: f64,
    /// the patching effects, per edge
    pub patching: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CircuitReport {
    pub options: CircuitOptions,
    pub graph: Graph,
    pub discovery: Discovery,
    pub faithfulness: Faithfulness,
    pub agreement: Option<Agreement>,
}

/// Sets up `opts.samples` default pairs of `task` on `w` (f32).
pub fn setup(w: &Weights, task: &TaskSpec, opts: &CircuitOptions) -> Result<CircuitSetup> {
    let pairs = default_pairs(task, opts.samples, opts.seed)?;
    let (m, a) = (opts.metric, opts.ablation);
    CircuitSetup::with_graph(w, task, pairs, m, a, DType::F32, opts.graph)
}

/// Discovers a circuit of `w` on `task` and measures its faithfulness.
pub fn circuit_report(
    w: &Weights,
    task: &TaskSpec,
    opts: &CircuitOptions,
) -> Result<CircuitReport> {
    let s = setup(w, task, opts)?;
    let discovery = discover(&s, opts.method, opts.select, opts.ig_steps)?;
    let faithfulness = faithfulness(&s, &discovery.circuit)?;
    let agreement = if opts.compare {
        Some(agreement(&s, opts.ig_steps)?)
    } else {
        None
    };
    Ok(CircuitReport {
        options: opts.clone(),
        graph: s.model.graph.clone(),
        discovery,
        faithfulness,
        agreement,
    })
}

/// EAP and EAP-IG against noising path patching of every edge.
pub fn agreement(s: &CircuitSetup, ig_steps: usize) -> Result<Agreement> {
    let all: Vec<usize> = (0..s.model.graph.edges.len()).collect();
    let p = path_patching(s, &all, PatchDirection::Noising)?;
    let eap = match eap_refusal(s.metric) {
        Some(_) => None,
        None => Some(rank_correlation(&edge_attribution(s, 0)?.edges, &p.effects)),
    };
    let ig = edge_attribution(s, ig_steps.max(1))?;
    Ok(Agreement {
        eap,
        eap_ig: rank_correlation(&ig.edges, &p.effects),
        patching: p.effects,
    })
}
