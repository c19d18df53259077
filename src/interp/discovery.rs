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

use super::attribution::edge_attribution;
use super::circuit_metric::CircuitSetup;
use super::graph::{Circuit, Graph};
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

/// Whether node n has an outgoing edge in the circuit (the logits always do).
fn reaches_logits(g: &Graph, c: &Circuit, n: usize) -> bool {
    if n + 1 == g.nodes.len() {
        return true;
    }
    let Some(s) = g.sender_of(n) else {
        return false;
    };
    g.edges
        .iter()
        .enumerate()
        .any(|(e, edge)| edge.sender == s && c.edges[e])
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
