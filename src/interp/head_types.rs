//! Head-type scores on repeated random tokens, as TransformerLens / ARENA define them, and
//! the K-composition path that builds an induction head.
//!
//! **The sequences** ([`repeated_tokens`]): `batch` sequences of T = s + 2n tokens: an
//! optional prefix of s ∈ {0, 1} tokens (TL prepends BOS; the family's models have no
//! common BOS, so a prefix is given only for tasks that start with one, e.g. `induction`),
//! then n = ⌊(n_ctx − s) / 2⌋ tokens drawn uniformly from the token range (the task's
//! value tokens), then the same n again: x[s + i + n] = x[s + i].
//!
//! **The scores** of head (l, h), from its attention pattern A (query i, key j), averaged
//! over the batch:
//! - previous-token: mean over i = s + 1..T of A[i, i − 1];
//! - duplicate-token: mean over i = s + n..T of A[i, i − n] (the earlier copy of x[i]);
//! - induction: mean over i = s + n..T of A[i, i − n + 1] (the token after the earlier
//!   copy).
//!
//! **Induction K-composition** ([`induction_paths`]): for a head b of layer 1 and a head a
//! of layer 0, the token × token circuit W_E W_QK^b (W_E W_OV^a)ᵀ / sqrt(d_head) (query
//! token × the token that head a moved into the key's position; [`super::circuits`]'s
//! K-composition path) over the value tokens. An induction head built on a previous-token
//! head a puts each row's maximum on the diagonal (the key whose previous token equals the
//! query token); the score is that diagonal fraction, beside TL's K-composition score.

use super::cache::{run_with_cache, ActivationCache};
use super::circuits::{
    composition_score, diagonal_fraction, full_qk_path, Composition, Embed, Path,
};
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::ReferenceBackend;
use crate::rng::CounterRng;
use serde::Serialize;
use std::ops::Range;

/// The scores of one head.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeadTypeScore {
    pub layer: usize,
    pub head: usize,
    pub previous_token: f64,
    pub duplicate_token: f64,
    pub induction: f64,
}

/// `batch` repeated random sequences (B, s + 2n) after the prefix `prefix` (s = 0 or 1
/// tokens), n = ⌊(n_ctx − s)/2⌋, tokens from `ids`, drawn from `seed` (see the module docs).
pub fn repeated_tokens(
    ids: Range<usize>,
    prefix: Option<u32>,
    n_ctx: usize,
    batch: usize,
    seed: u64,
) -> Result<Vec<u32>> {
    let n = n_ctx.saturating_sub(prefix.is_some() as usize) / 2;
    if n < 2 || ids.is_empty() {
        return Err(Error::config(
            "n_ctx",
            format!(
                "repeated tokens need 4 positions after the prefix and a token range (n_ctx {n_ctx}, tokens {ids:?})"
            ),
        ));
    }
    let mut out = Vec::with_capacity(batch * 2 * n);
    for b in 0..batch {
        let mut r = CounterRng::new(seed, 0x4854_5950, b as u64);
        let half: Vec<u32> = (0..n)
            .map(|_| (ids.start as u64 + r.below(ids.len() as u64)) as u32)
            .collect();
        out.extend(prefix);
        out.extend_from_slice(&half);
        out.extend_from_slice(&half);
    }
    Ok(out)
}

/// The three scores of every head from a cache of repeated sequences (B, s + 2n) with a
/// prefix of `s` tokens.
pub fn head_type_scores_from(cache: &ActivationCache, s: usize) -> Result<Vec<HeadTypeScore>> {
    let t = cache.seq_len;
    let n = t.saturating_sub(s) / 2;
    if n < 2 || t != s + 2 * n {
        return Err(Error::config(
            "tokens",
            format!("repeated sequences after {s} prefix tokens have an even length ≥ 4, got {t}"),
        ));
    }
    let mut out = Vec::new();
    let mut l = 0;
    while cache.has(&super::act_name("pattern", l)) {
        let pat = cache.get(&super::act_name("pattern", l))?; // (B, NH, T, T)
        let nh = pat.shape[1];
        for h in 0..nh {
            let (mut prev, mut dup, mut ind) = (0.0, 0.0, 0.0);
            for b in 0..cache.batch {
                let a = |i: usize, j: usize| pat.data[((b * nh + h) * t + i) * t + j] as f64;
                prev += (s + 1..t).map(|i| a(i, i - 1)).sum::<f64>() / (t - s - 1) as f64;
                dup += (s + n..t).map(|i| a(i, i - n)).sum::<f64>() / n as f64;
                ind += (s + n..t).map(|i| a(i, i - n + 1)).sum::<f64>() / n as f64;
            }
            let bn = cache.batch.max(1) as f64;
            out.push(HeadTypeScore {
                layer: l,
                head: h,
                previous_token: prev / bn,
                duplicate_token: dup / bn,
                induction: ind / bn,
            });
        }
        l += 1;
    }
    Ok(out)
}

/// The scores of every head of `w` on `batch` repeated sequences of tokens `ids` after
/// `prefix`, from `seed`.
pub fn head_type_scores(
    w: &Weights,
    ids: Range<usize>,
    prefix: Option<u32>,
    batch: usize,
    seed: u64,
) -> Result<Vec<HeadTypeScore>> {
    let batch = batch.max(1);
    let tokens = repeated_tokens(ids, prefix, w.cfg.n_ctx, batch, seed)?;
    let backend = ReferenceBackend::for_inference(w)?;
    let cache = run_with_cache(&backend, &tokens, batch)?;
    head_type_scores_from(&cache, prefix.is_some() as usize)
}

/// The prefix a task's sequences start with, for [`repeated_tokens`]: its first token when
/// position 0 is named `BOS` (the token of a sample), else none.
pub fn task_prefix(task: &crate::tasks::TaskSpec) -> Option<u32> {
    let named_bos = task.position_names().first().is_some_and(|n| n == "BOS");
    named_bos.then(|| task.batch(0, 0, 1)[0])
}

/// One (layer-0 head, layer-1 head) K-composition path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InductionPath {
    /// the layer-0 head whose OV output the key side reads
    pub prev_head: usize,
    /// the layer-1 head
    pub head: usize,
    /// TL's K-composition score of the pair
    pub k_composition: f64,
    /// fraction of value-token rows of W_E W_QK (W_E W_OV^prev)ᵀ with the argmax on the
    /// diagonal
    pub diagonal_fraction: f64,
}

/// Every (layer-0 head, layer-1 head) path of a model with ≥ 2 layers (processed weights
/// for a LayerNorm model), over the value tokens `ids`; empty for 1 layer.
pub fn induction_paths(w: &Weights, ids: Range<usize>) -> Result<Vec<InductionPath>> {
    if w.cfg.n_layers < 2 {
        return Ok(Vec::new());
    }
    let nh = w.cfg.n_heads;
    let mut out = Vec::new();
    for b in 0..nh {
        for a in 0..nh {
            let key = Path {
                embed: Embed::Token,
                through: vec![(0, a)],
            };
            let m = full_qk_path(w, 1, b, &Path::direct(Embed::Token), &key)?;
            let block = super::circuits::token_block(&m, ids.clone())?;
            out.push(InductionPath {
                prev_head: a,
                head: b,
                k_composition: composition_score(w, Composition::K, (0, a), (1, b))?,
                diagonal_fraction: diagonal_fraction(&block),
            });
        }
    }
    Ok(out)
}

/// The scores of every snapshot `(step, weights)` in order, each on the same repeated
/// sequences (tokens `ids`, `batch` of them from `seed`).
pub fn head_type_curve(
    snapshots: &[(u64, Weights)],
    ids: Range<usize>,
    prefix: Option<u32>,
    batch: usize,
    seed: u64,
) -> Result<Vec<(u64, Vec<HeadTypeScore>)>> {
    snapshots
        .iter()
        .map(|(step, w)| {
            Ok((
                *step,
                head_type_scores(w, ids.clone(), prefix, batch, seed)?,
            ))
        })
        .collect()
}
