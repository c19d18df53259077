//! Automatic circuit discovery on the [`Graph`](super::graph::Graph).
//!
//! - **ACDC** (Conmy et al. 2023): start from every edge; visit the receivers in reverse
//!   topological order (logits first) and, for each, its senders latest first; remove the
//!   edge when doing so raises the badness (KL to the full model, the loss, or −logit
//!   difference; [`CircuitMetric::badness`]) by less than the threshold, keeping it removed
//!   for the edges tried after it. A node none of whose outgoing edges is left loses its
//!   incoming edges without a run (they cannot change anything).
//! - **EAP / EAP-IG top-k or threshold**: keep the k edges with the largest |estimated
//!   effect| ([`attribution`](super::attribution)), or those at or above the threshold.
//!
//! Either way, edges into nodes that no longer reach the logits are removed at the end.
//!
//! **Neurons** (on a neuron graph, [`GraphOptions::neurons`](super::graph::GraphOptions)):
//! besides edge-level discovery, which works unchanged on the neuron graph's edges, a neuron
//! can be kept or dropped as a whole (all its outgoing edges at once): [`rank_neurons`]
//! orders an MLP's neurons by EAP(-IG) node attribution, [`keep_neurons`] is the model with
//! only the chosen neurons of an MLP left, and [`acdc_neurons`] is ACDC over neurons as
//! nodes (one run per neuron instead of one per edge).

use super::attribution::edge_attribution;
use super::circuit_metric::{CircuitMetric, CircuitSetup};
use super::graph::{Circuit, Graph, NodeKind};
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Acdc,
    Eap,
    EapIg,
}

impl Method {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "acdc" => Ok(Self::Acdc),
            "eap" => Ok(Self::Eap),
            "eap-ig" | "eap_ig" => Ok(Self::EapIg),
            _ => Err(Error::config(
                "discover",
                format!("'{s}' is not a method (acdc, eap, eap-ig)"),
            )),
        }
    }
}

/// How many edges to keep: those scoring at or above a threshold, or the top k.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    Threshold(f64),
    TopK(usize),
}

/// A discovered circuit and the scores it was chosen by.
#[derive(Clone, Debug, Serialize)]
pub struct Discovery {
    pub method: Method,
    pub select: Select,
    pub circuit: Circuit,
    /// per edge: ACDC the badness increase when it was tried (0 for edges removed without
    /// a run), EAP the estimated metric change when ablated
    pub scores: Vec<f64>,
    /// forward runs made
    pub runs: usize,
}

/// ACDC with `threshold` on the setup's metric; returns the circuit, per-edge scores and
/// the number of runs.
pub fn acdc(s: &CircuitSetup, threshold: f64) -> Result<(Circuit, Vec<f64>, usize)> {
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(Error::config(
            "threshold",
            format!("{threshold} is not a number ≥ 0"),
        ));
    }
    let g = &s.model.graph;
    let mut c = Circuit::full(g);
    let mut scores = vec![0.0; g.edges.len()];
    let mut run = s.run(&s.model.mask(&c)?)?; // the current circuit's run
    let mut cur = s.metric.badness(s.metric_of(&run.logits)?);
    let mut runs = 1;
    for r in (0..g.receivers.len()).rev() {
        let dead = !reaches_logits(g, &c, g.receivers[r].node);
        for sdr in (0..g.avail[r]).rev() {
            let e = g.edge(sdr, r).expect("s < avail[r] is an edge");
            c.edges[e] = false;
            if dead {
                continue;
            }
            // only receiver r's row changed: the senders before its layer are reused
            let trial = s.rerun_from(&run, r, &s.model.mask(&c)?)?;
            let b = s.metric.badness(s.metric_of(&trial.logits)?);
            runs += 1;
            scores[e] = b - cur;
            if b - cur < threshold {
                (cur, run) = (b, trial);
            } else {
                c.edges[e] = true;
            }
        }
    }
    g.prune_dangling(&mut c);
    Ok((c, scores, runs))
}

/// Whether node n has an outgoing edge in the circuit (the logits always do; in a neuron
/// graph an MLP node has one when any of its neurons has).
fn reaches_logits(g: &Graph, c: &Circuit, n: usize) -> bool {
    if n + 1 == g.nodes.len() {
        return true;
    }
    g.edges
        .iter()
        .enumerate()
        .any(|(e, edge)| c.edges[e] && g.owner(g.senders[edge.sender]) == n)
}

/// The edges with the k largest |score| (ties broken by edge order), or with
/// |score| ≥ threshold.
pub fn select_edges(g: &Graph, scores: &[f64], select: Select) -> Circuit {
    let mut c = Circuit::empty(g);
    match select {
        Select::Threshold(t) => {
            for (e, x) in scores.iter().enumerate() {
                c.edges[e] = x.abs() >= t;
            }
        }
        Select::TopK(k) => {
            let mut idx: Vec<usize> = (0..scores.len()).collect();
            idx.sort_by(|&a, &b| scores[b].abs().total_cmp(&scores[a].abs()).then(a.cmp(&b)));
            for &e in idx.iter().take(k) {
                c.edges[e] = true;
            }
        }
    }
    c
}

/// Discovers a circuit by `method`; `ig_steps` is EAP-IG's k. ACDC needs a threshold.
pub fn discover(
    s: &CircuitSetup,
    method: Method,
    select: Select,
    ig_steps: usize,
) -> Result<Discovery> {
    let g = &s.model.graph;
    if let (Method::Eap, Some(why)) = (method, eap_refusal(s.metric)) {
        return Err(Error::config("metric", why));
    }
    let (circuit, scores, runs) = match (method, select) {
        (Method::Acdc, Select::Threshold(t)) => acdc(s, t)?,
        (Method::Acdc, Select::TopK(_)) => {
            return Err(Error::config(
                "top-k",
                "ACDC takes a threshold, not a top k",
            ))
        }
        (Method::Eap | Method::EapIg, _) => {
            let k = if method == Method::Eap {
                0
            } else {
                ig_steps.max(1)
            };
            let a = edge_attribution(s, k)?;
            let mut c = select_edges(g, &a.edges, select);
            g.prune_dangling(&mut c);
            (c, a.edges, 2 + k.max(1))
        }
    };
    Ok(Discovery {
        method,
        select,
        circuit,
        scores,
        runs,
    })
}

/// An MLP's neurons ranked by their estimated effect when ablated.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronRanking {
    pub layer: usize,
    /// per neuron (in neuron order): estimated metric(neuron ablated) − metric(full), the
    /// sum of the EAP(-IG) estimates of its outgoing edges
    pub scores: Vec<f64>,
    /// neuron indices by |score|, largest first (ties by index)
    pub order: Vec<usize>,
}

/// The neuron senders of MLP `layer`, or an error when the graph has none.
fn neurons_of(g: &Graph, layer: usize) -> Result<Vec<usize>> {
    let ns = g.neuron_senders(layer);
    if ns.is_empty() {
        return Err(Error::config(
            "neurons",
            format!("the graph has no neurons of MLP {layer} (an MLP model on a neuron graph is needed)"),
        ));
    }
    Ok(ns)
}

/// Ranks MLP `layer`'s neurons by EAP (`ig_steps` = 0) or EAP-IG node attribution.
pub fn rank_neurons(s: &CircuitSetup, layer: usize, ig_steps: usize) -> Result<NeuronRanking> {
    neuron_ranking(&s.model.graph, layer, &edge_attribution(s, ig_steps)?.edges)
}

/// Ranks MLP `layer`'s neurons by the sum of per-edge scores (as `Attribution::edges` or
/// `Discovery::scores` of EAP/EAP-IG) over each neuron's outgoing edges.
pub fn neuron_ranking(g: &Graph, layer: usize, edge_scores: &[f64]) -> Result<NeuronRanking> {
    let ns = neurons_of(g, layer)?;
    if edge_scores.len() != g.edges.len() {
        return Err(Error::config(
            "scores",
            format!(
                "{} edge scores for {} edges",
                edge_scores.len(),
                g.edges.len()
            ),
        ));
    }
    let scores: Vec<f64> = ns
        .iter()
        .map(|&sd| g.edges_from(sd).iter().map(|&e| edge_scores[e]).sum())
        .collect();
    let mut order: Vec<usize> = (0..ns.len()).collect();
    order.sort_by(|&a, &b| scores[b].abs().total_cmp(&scores[a].abs()).then(a.cmp(&b)));
    Ok(NeuronRanking {
        layer,
        scores,
        order,
    })
}

/// Every edge of the graph except those out of MLP `layer`'s neurons not in `keep`
/// (neuron indices): the model with only the kept neurons of that MLP.
pub fn keep_neurons(g: &Graph, layer: usize, keep: &[usize]) -> Result<Circuit> {
    let ns = neurons_of(g, layer)?;
    if let Some(&n) = keep.iter().find(|&&n| n >= ns.len()) {
        return Err(Error::config(
            "neurons",
            format!("neuron {n} is not in MLP {layer} ({} neurons)", ns.len()),
        ));
    }
    let mut c = Circuit::full(g);
    for (n, &sd) in ns.iter().enumerate() {
        if !keep.contains(&n) {
            for e in g.edges_from(sd) {
                c.edges[e] = false;
            }
        }
    }
    Ok(c)
}

/// ACDC over neurons as nodes: from circuit `start`, visit every neuron sender (latest
/// first) and drop all its outgoing edges at once when that raises the badness by less than
/// `threshold`. Returns the circuit, per sender the badness increase when tried (0 for
/// senders that are not neurons) and the runs made.
pub fn acdc_neurons(
    s: &CircuitSetup,
    start: &Circuit,
    threshold: f64,
) -> Result<(Circuit, Vec<f64>, usize)> {
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(Error::config(
            "threshold",
            format!("{threshold} is not a number ≥ 0"),
        ));
    }
    let g = &s.model.graph;
    let mut c = start.clone();
    let mut scores = vec![0.0; g.senders.len()];
    let mut run = s.run(&s.model.mask(&c)?)?;
    let mut cur = s.metric.badness(s.metric_of(&run.logits)?);
    let mut runs = 1;
    for sd in (0..g.senders.len()).rev() {
        let out = g.edges_from(sd);
        let is_neuron = matches!(g.nodes[g.senders[sd]].kind, NodeKind::Neuron { .. });
        if !is_neuron || out.iter().all(|&e| !c.edges[e]) {
            continue;
        }
        let mut trial_c = c.clone();
        out.iter().for_each(|&e| trial_c.edges[e] = false);
        // the first receiver reading sd: rows before it are unchanged
        let r = g.edges[out[0]].receiver;
        let trial = s.rerun_from(&run, r, &s.model.mask(&trial_c)?)?;
        let b = s.metric.badness(s.metric_of(&trial.logits)?);
        runs += 1;
        scores[sd] = b - cur;
        if b - cur < threshold {
            (cur, run, c) = (b, trial, trial_c);
        }
    }
    g.prune_dangling(&mut c);
    Ok((c, scores, runs))
}

/// Why plain EAP cannot use `metric`, if it cannot: KL to the full model is at its minimum
/// (zero) with every edge on, so its gradient there is zero and EAP's first-order
/// estimates would rank edges by rounding noise. EAP-IG integrates away from that point.
pub fn eap_refusal(metric: CircuitMetric) -> Option<&'static str> {
    (metric == CircuitMetric::Kl).then_some(
        "EAP's gradient of the KL metric is zero at the full model (KL is at its minimum \
         there), so it cannot rank edges: use EAP-IG, or the loss or logit-diff metric",
    )
}
