//! Path patching (Wang et al. 2022; Goldowsky-Dill et al. 2023) on the edges of the
//! [`Graph`](super::graph::Graph): one edge sender → receiver carries another run's value,
//! every other edge carries the base run's own, and everything downstream of the receiver
//! is recomputed. The metric's change per edge is the edge's effect.
//!
//! - **Denoising** (clean → corrupted): base = the corrupted inputs, the patched edge
//!   carries the sender's output in the clean run; effect = metric(patched) − metric(corrupted).
//! - **Noising** (the ablation that discovery and attribution estimate): base = the clean
//!   inputs, the patched edge carries the setup's ablation value (the corrupted run's
//!   output by default); effect = metric(patched) − metric(clean).

use super::circuit_metric::CircuitSetup;
use super::graph::Circuit;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchDirection {
    Denoising,
    Noising,
}

/// The effect of patching each of a list of edges.
#[derive(Clone, Debug, Serialize)]
pub struct PathPatching {
    pub direction: PatchDirection,
    /// the metric of the unpatched base run
    pub base: f64,
    pub edges: Vec<usize>,
    /// per edge of `edges`: metric(patched) − base
    pub effects: Vec<f64>,
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Patches each edge of `edges` alone (see the module doc).
pub fn path_patching(
    s: &CircuitSetup,
    edges: &[usize],
    direction: PatchDirection,
) -> Result<PathPatching> {
    let g = &s.model.graph;
    if let Some(&e) = edges.iter().find(|&&e| e >= g.edges.len()) {
        return Err(Error::config(
            "edge",
            format!("edge {e} is not in the graph ({} edges)", g.edges.len()),
        ));
    }
    let (tokens, alt) = match direction {
        PatchDirection::Denoising => (&s.pairs.corrupted, &s.clean_outs),
        PatchDirection::Noising => (&s.pairs.clean, &s.alt),
    };
    let b = s.pairs.batch;
    let run = |mask: &Tensor| -> Result<f64> {
        scalar(&s.value(&s.model.run(tokens, b, mask, Some(alt))?.logits)?)
    };
    let base = run(&s.model.uniform_mask(1.0)?)?;
    let mut effects = Vec::with_capacity(edges.len());
    for &e in edges {
        let mut c = Circuit::full(g);
        c.edges[e] = false;
        effects.push(run(&s.model.mask(&c)?)? - base);
    }
    Ok(PathPatching {
        direction,
        base,
        edges: edges.to_vec(),
        effects,
    })
}
