//! Attribution patching on edges (EAP, Syed et al. 2023) and its integrated-gradients
//! version (EAP-IG, Hanna et al. 2024), from the edge mask m of
//! [`graph_forward`](super::graph_forward): edge e carries `alt + m_e (out − alt)`.
//!
//! - **EAP**: the effect of ablating edge s → r, metric(m_e = 0) − metric(m = 1), is
//!   estimated to first order by −∂metric/∂m_e at m = 1, which is
//!   −(out_s − alt_s) · ∂metric/∂x_r: one clean run, one ablation run, one backward.
//! - **EAP-IG** with k steps: −(1/k) Σ_i ∂metric/∂m_e at m = α_i on every edge,
//!   α_i = (i + ½)/k (midpoints). As k grows this is the integrated gradient along the
//!   straight path from every edge ablated to none; the estimates then add up to
//!   metric(all ablated) − metric(full) (completeness).
//! - A node's attribution is the sum over its outgoing edges (the gradient of a scale on
//!   the sender's output).
//!
//! [`rank_correlation`] (Spearman) says how well estimates order edges as true patching
//! ([`path_patch`](super::path_patch), noising) does.

use super::circuit_metric::CircuitSetup;
use crate::error::Result;
use candle_core::{DType, Var};
use serde::Serialize;

/// Per-edge and per-node estimated effects of ablation.
#[derive(Clone, Debug, Serialize)]
pub struct Attribution {
    /// 0 for EAP, k for EAP-IG
    pub ig_steps: usize,
    /// per edge: estimated metric(edge ablated) − metric(full)
    pub edges: Vec<f64>,
    /// per sender: the sum over its edges
    pub nodes: Vec<f64>,
}

/// ∂metric/∂m at m = `alpha` on every edge, per edge.
fn mask_gradient(s: &CircuitSetup, alpha: f64) -> Result<Vec<f64>> {
    if let Some(f) = &s.fast {
        return f.edge_gradient(&s.model.graph, alpha, |l| s.value(l));
    }
    let m = Var::from_tensor(&s.model.uniform_mask(alpha)?)?;
    let v = s.value(&s.logits(m.as_tensor())?)?;
    let grads = v.backward()?;
    let sn = s.model.graph.senders.len();
    let g: Vec<f64> = match grads.get(m.as_tensor()) {
        Some(g) => g.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?,
        None => vec![0.0; s.model.graph.receivers.len() * sn],
    };
    Ok(s.model
        .graph
        .edges
        .iter()
        .map(|e| g[e.receiver * sn + e.sender])
        .collect())
}

/// EAP (`ig_steps` = 0) or EAP-IG with `ig_steps` steps.
pub fn edge_attribution(s: &CircuitSetup, ig_steps: usize) -> Result<Attribution> {
    let g = &s.model.graph;
    let mut est = vec![0.0; g.edges.len()];
    let alphas: Vec<f64> = if ig_steps == 0 {
        vec![1.0]
    } else {
        (0..ig_steps)
            .map(|i| (i as f64 + 0.5) / ig_steps as f64)
            .collect()
    };
    for &a in &alphas {
        for (x, d) in est.iter_mut().zip(mask_gradient(s, a)?) {
            *x -= d / alphas.len() as f64;
        }
    }
    let mut nodes = vec![0.0; g.senders.len()];
    for (e, edge) in g.edges.iter().enumerate() {
        nodes[edge.sender] += est[e];
    }
    Ok(Attribution {
        ig_steps,
        edges: est,
        nodes,
    })
}

/// Ranks (1-based, ties averaged).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of two equally long lists (NaN when either is constant).
pub fn rank_correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}
