//! AdamW over the flat parameter buffer, exactly as candle-nn's `AdamW` (the reference):
//! m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; θ ← θ·(1 − lr·λ) − lr · m̂ / (sqrt(v̂) + ε),
//! with m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ); scalars rounded to f32 first as candle does.
//! Only the ranges of trainable parameters are touched. Also the global gradient norm.

use super::simd_fn;
use rayon::prelude::*;
use std::ops::Range;

/// AdamW hyper-parameters for one update.
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// 1-based step count (bias correction).
    pub t: u64,
}

/// The per-step scalars, in f32.
#[derive(Clone, Copy)]
struct Hyper {
    b1: f32,
    b2: f32,
    omb1: f32,
    omb2: f32,
    sm: f32,
    sv: f32,
    decay: f32,
    lr: f32,
    eps: f32,
}

simd_fn! {
    fn update_chunk(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], h: Hyper) {
        for i in 0..p.len() {
            let nm = m[i] * h.b1 + g[i] * h.omb1;
            let nv = v[i] * h.b2 + (g[i] * g[i]) * h.omb2;
            m[i] = nm;
            v[i] = nv;
            let adj = (nm * h.sm) / ((nv * h.sv).sqrt() + h.eps);
            p[i] = p[i] * h.decay - adj * h.lr;
        }
    }
}

/// One AdamW update of params, m, v (all (P,)) from grads (P,), over `ranges`.
pub fn adamw(
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grads: &[f32],
    ranges: &[Range<usize>],
    s: AdamWStep,
) {
    let b1 = s.beta1 as f32;
    let b2 = s.beta2 as f32;
    let omb1 = (1.0 - s.beta1) as f32;
    let omb2 = (1.0 - s.beta2) as f32;
    let sm = (1.0 / (1.0 - s.beta1.powi(s.t as i32))) as f32;
    let sv = (1.0 / (1.0 - s.beta2.powi(s.t as i32))) as f32;
    let decay = (1.0 - s.lr * s.weight_decay) as f32;
    let lr = s.lr as f32;
    let eps = s.eps as f32;
    let h = Hyper {
        b1,
        b2,
        omb1,
        omb2,
        sm,
        sv,
        decay,
        lr,
        eps,
    };
    for r in ranges {
        params[r.clone()]
            .par_chunks_mut(4096)
            .zip(m[r.clone()].par_chunks_mut(4096))
            .zip(v[r.clone()].par_chunks_mut(4096))
            .zip(grads[r.clone()].par_chunks(4096))
            .for_each(|(((p, m), v), g)| update_chunk(p, m, v, g, h));
    }
}

/// sqrt(Σ g²) over `ranges`, summed in f64 in a fixed order.
pub fn grad_norm(grads: &[f32], ranges: &[Range<usize>]) -> f64 {
    let mut sq = 0f64;
    for r in ranges {
        let part: Vec<f64> = grads[r.clone()]
            .par_chunks(4096)
            .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum())
            .collect();
        sq += part.iter().sum::<f64>();
    }
    sq.sqrt()
}

/// grads *= coef over `ranges` (gradient clipping).
pub fn scale(grads: &mut [f32], ranges: &[Range<usize>], coef: f32) {
    for r in ranges {
        grads[r.clone()].par_iter_mut().for_each(|g| *g *= coef);
    }
}
