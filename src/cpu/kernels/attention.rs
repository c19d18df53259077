//! Causal softmax attention, one task per (head, sequence), without keeping the
//! (B, NH, T, T) pattern: the forward stores the log-sum-exp of every query row and the
//! backward recomputes each row's pattern from it (as flash attention does). Query rows
//! may be a subset of the positions (`qpos`): the last layer only needs the rows the loss
//! scores, while keys and values cover every position up to the last of them.
//!
//! Layouts: q, z (NH, B, TQ, HS); k, v (NH, B, T, HS); lse (NH, B, TQ); qpos (TQ) the
//! absolute position of each query row, ascending, each < T. Query row i attends to key
//! positions 0..=qpos[i] with scores q·k / sqrt(HS) (TransformerLens's `attn_scale`).
//!
//! Per task the work is small matrix products (gemm on the calling thread: the parallelism
//! is over tasks) and a row-wise masked softmax, in per-thread (TQ, T) scratch.

use super::exp::exp_in_place;
use super::matmul::{gemm_seq, Strided};
use super::simd_fn;
use rayon::prelude::*;

/// Dimensions shared by the pair.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub b: usize,
    pub nh: usize,
    pub t: usize,
    pub tq: usize,
    pub hs: usize,
}

impl AttnDims {
    fn scale(&self) -> f32 {
        (1.0 / (self.hs as f64).sqrt()) as f32
    }
}

simd_fn! {
    /// p (TQ, T): raw scores in, masked softmax of scores · scale out; lse (TQ) = log Σ exp
    /// of the scaled scores. Row i keeps keys 0..=qpos[i] and is zero beyond.
    fn softmax_rows(p: &mut [f32], lse: &mut [f32], qpos: &[usize], scale: f32) {
        let t = p.len() / qpos.len();
        for (i, &q) in qpos.iter().enumerate() {
            let row = &mut p[i * t..(i + 1) * t];
            let mut max = f32::NEG_INFINITY;
            for x in row[..=q].iter_mut() {
                *x *= scale;
                max = max.max(*x);
            }
            row[..=q].iter_mut().for_each(|x| *x -= max);
            exp_in_place(&mut row[..=q]);
            let mut sum = 0f32;
            for x in &row[..=q] {
                sum += *x;
            }
            let inv = 1.0 / sum;
            row[..=q].iter_mut().for_each(|x| *x *= inv);
            row[q + 1..].fill(0.0);
            lse[i] = max + sum.ln();
        }
    }
}

simd_fn! {
    /// p (TQ, T): raw scores in, the forward's pattern out, exp(scores · scale − lse), masked.
    /// dp (TQ, T): dz·vᵀ in, ds = p ∘ (dp − Σ_j p·dp) · scale out.
    fn dscores_rows(p: &mut [f32], dp: &mut [f32], lse: &[f32], qpos: &[usize], scale: f32) {
        let t = p.len() / qpos.len();
        for (i, &q) in qpos.iter().enumerate() {
            let (pr, dr) = (&mut p[i * t..(i + 1) * t], &mut dp[i * t..(i + 1) * t]);
            pr[..=q].iter_mut().for_each(|x| *x = *x * scale - lse[i]);
            exp_in_place(&mut pr[..=q]);
            let mut dsum = 0f32;
            for (x, d) in pr[..=q].iter().zip(&dr[..=q]) {
                dsum += *x * d;
            }
            for (d, x) in dr[..=q].iter_mut().zip(&pr[..=q]) {
                *d = x * (*d - dsum) * scale;
            }
            pr[q + 1..].fill(0.0);
            dr[q + 1..].fill(0.0);
        }
    }
}

/// z = softmax(q kᵀ / sqrt(HS), causal) v, and lse = log Σ_j exp(score_j) per query row.
pub fn attention_forward(
    z: &mut [f32],
    lse: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    qpos: &[usize],
    d: AttnDims,
) {
    let AttnDims { t, tq, hs, .. } = d;
    let scale = d.scale();
    debug_assert!(qpos.len() == tq && qpos.iter().all(|&p| p < t));
    q.par_chunks(tq * hs)
        .zip(k.par_chunks(t * hs))
        .zip(v.par_chunks(t * hs))
        .zip(z.par_chunks_mut(tq * hs))
        .zip(lse.par_chunks_mut(tq))
        .for_each_init(
            || vec![0f32; tq * t],
            |p, ((((q, k), v), z), lse)| {
                gemm_seq(
                    p,
                    t,
                    false,
                    Strided::rows(q, hs),
                    Strided::t(k, hs),
                    tq,
                    t,
                    hs,
                ); // q kᵀ
                softmax_rows(p, lse, qpos, scale);
                gemm_seq(
                    z,
                    hs,
                    false,
                    Strided::rows(p, t),
                    Strided::rows(v, hs),
                    tq,
                    hs,
                    t,
                ); // p v
            },
        );
}

/// Gradients of [`attention_forward`] from dz. dq, dk, dv are *written*, not accumulated
/// (every element gets a value). With p the recomputed pattern and dp = dz vᵀ:
/// ds = p ∘ (dp − rowsum(p ∘ dp)) / sqrt(HS); dq = ds k, dk = dsᵀ q, dv = pᵀ dz.
pub fn attention_backward(
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    dz: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    lse: &[f32],
    qpos: &[usize],
    d: AttnDims,
) {
    let AttnDims { t, tq, hs, .. } = d;
    let scale = d.scale();
    dq.par_chunks_mut(tq * hs)
        .zip(dk.par_chunks_mut(t * hs))
        .zip(dv.par_chunks_mut(t * hs))
        .zip(dz.par_chunks(tq * hs))
        .zip(q.par_chunks(tq * hs))
        .zip(k.par_chunks(t * hs))
        .zip(v.par_chunks(t * hs))
        .zip(lse.par_chunks(tq))
        .for_each_init(
            || (vec![0f32; tq * t], vec![0f32; tq * t]),
            |(p, ds), (((((((dq, dk), dv), dz), q), k), v), lse)| {
                gemm_seq(
                    p,
                    t,
                    false,
                    Strided::rows(q, hs),
                    Strided::t(k, hs),
                    tq,
                    t,
                    hs,
                ); // q kᵀ
                gemm_seq(
                    ds,
                    t,
                    false,
                    Strided::rows(dz, hs),
                    Strided::t(v, hs),
                    tq,
                    t,
                    hs,
                ); // dz vᵀ
                dscores_rows(p, ds, lse, qpos, scale);
                gemm_seq(
                    dq,
                    hs,
                    false,
                    Strided::rows(ds, t),
                    Strided::rows(k, hs),
                    tq,
                    hs,
                    t,
                ); // ds k
                gemm_seq(
                    dk,
                    hs,
                    false,
                    Strided::t(ds, t),
                    Strided::rows(q, hs),
                    t,
                    hs,
                    tq,
                ); // dsᵀ q
                gemm_seq(
                    dv,
                    hs,
                    false,
                    Strided::t(p, t),
                    Strided::rows(dz, hs),
                    t,
                    hs,
                    tq,
                ); // pᵀ dz
            },
        );
}
