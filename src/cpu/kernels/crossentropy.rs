//! Softmax cross-entropy over the scored rows, with the argmax each row predicts.
//! loss_i = log Σ_v exp(logit_v) − logit_target; the mean over the scored rows is the step's
//! loss. A row whose target is `Batch::IGNORE` (unscored) has loss 0 and dlogits 0.

use super::exp::exp_in_place;
use crate::backend::Batch;
use rayon::prelude::*;

/// probs (N, V) = softmax(logits), losses (N), argmax (N, first maximum on ties).
pub fn crossentropy_forward(
    probs: &mut [f32],
    losses: &mut [f32],
    argmax: &mut [u32],
    logits: &[f32],
    targets: &[u32],
    n: usize,
    v: usize,
) {
    probs[..n * v]
        .par_chunks_mut(v)
        .zip(logits[..n * v].par_chunks(v))
        .zip(losses[..n].par_iter_mut().zip(argmax[..n].par_iter_mut()))
        .zip(targets[..n].par_iter())
        .for_each(|(((p, x), (loss, am)), &tg)| {
            let mut best = 0;
            for (i, &xi) in x.iter().enumerate() {
                if xi > x[best] {
                    best = i;
                }
            }
            *am = best as u32;
            let max = x[best];
            for (p, &xi) in p.iter_mut().zip(x) {
                *p = xi - max;
            }
            exp_in_place(p);
            let mut sum = 0f32;
            for p in p.iter() {
                sum += *p;
            }
            let inv = 1.0 / sum;
            p.iter_mut().for_each(|p| *p *= inv);
            *loss = if tg == Batch::IGNORE {
                0.0
            } else {
                max + sum.ln() - x[tg as usize]
            };
        });
}

/// dlogits (N, V) = (probs − onehot(target)) · scale; written, not accumulated (it starts
/// the backward pass). scale = 1/N for a mean loss.
pub fn crossentropy_backward(
    dlogits: &mut [f32],
    probs: &[f32],
    targets: &[u32],
    scale: f32,
    n: usize,
    v: usize,
) {
    dlogits[..n * v]
        .par_chunks_mut(v)
        .zip(probs[..n * v].par_chunks(v))
        .zip(targets[..n].par_iter())
        .for_each(|((d, p), &tg)| {
            if tg == Batch::IGNORE {
                d.fill(0.0);
                return;
            }
            for (d, &p) in d.iter_mut().zip(p) {
                *d = p * scale;
            }
            d[tg as usize] -= scale;
        });
}
