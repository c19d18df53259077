//! Faithfulness of a circuit: the model run with every edge outside the circuit ablated
//! (carrying the setup's ablation value: the corrupted run's output, the batch mean, or a
//! resample), compared with the full model and with everything ablated.
//!
//! recovered = (metric(circuit) − metric(empty)) / (metric(full) − metric(empty)), for the
//! loss, the logit difference and the chosen metric (for KL, whose full value is 0, this is
//! 1 − KL(circuit)/KL(empty)). The same for the complement (the circuit's edges ablated,
//! the rest kept): a faithful and complete circuit recovers ~1 and its complement ~0.

use super::circuit_metric::{CircuitMetric, CircuitSetup, Eval};
use super::graph::Circuit;
use crate::error::Result;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Faithfulness {
    pub metric: CircuitMetric,
    pub edges: usize,
    pub total_edges: usize,
    pub full: Eval,
    pub empty: Eval,
    pub circuit: Eval,
    pub complement: Eval,
    pub loss_recovered: f64,
    pub logit_diff_recovered: f64,
    pub metric_recovered: f64,
    pub complement_loss_recovered: f64,
    pub complement_logit_diff_recovered: f64,
    pub complement_metric_recovered: f64,
}

/// (x − empty) / (full − empty); NaN when full and empty agree.
pub fn recovered(x: f64, full: f64, empty: f64) -> f64 {
    let d = full - empty;
    if d.abs() < 1e-12 {
        f64::NAN
    } else {
        (x - empty) / d
    }
}

/// The faithfulness of circuit `c` (see the module doc).
pub fn faithfulness(s: &CircuitSetup, c: &Circuit) -> Result<Faithfulness> {
    let g = &s.model.graph;
    let ev = |c: &Circuit| -> Result<Eval> { s.eval(&s.logits(&s.model.mask(c)?)?) };
    let circuit = ev(c)?;
    let complement = ev(&c.complement())?;
    let empty = s.empty()?;
    let full = s.full;
    let m = s.metric;
    let rec = |x: &Eval, f: fn(&Eval) -> f64| recovered(f(x), f(&full), f(&empty));
    Ok(Faithfulness {
        metric: m,
        edges: c.len(),
        total_edges: g.edges.len(),
        loss_recovered: rec(&circuit, |e| e.loss),
        logit_diff_recovered: rec(&circuit, |e| e.logit_diff),
        metric_recovered: recovered(circuit.get(m), full.get(m), empty.get(m)),
        complement_loss_recovered: rec(&complement, |e| e.loss),
        complement_logit_diff_recovered: rec(&complement, |e| e.logit_diff),
        complement_metric_recovered: recovered(complement.get(m), full.get(m), empty.get(m)),
        full,
        empty,
        circuit,
        complement,
    })
}
