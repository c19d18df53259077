//! Attention patterns and the decomposition of attention scores into the contributions of
//! the embeddings, for one input.
//!
//! Pattern (TL's `blocks.{l}.attn.hook_pattern`): A = softmax(S + M) over keys, with S the
//! scores q·k / sqrt(d_head) (`hook_attn_scores`) and M the causal mask (0 on and below the
//! diagonal, −∞ above: a query at position i sees keys j ≤ i). Row i of A sums to 1 and is
//! exactly 0 for j > i.
//!
//! Score decomposition (the "Mathematical Framework" expansion of x W_QK xᵀ). The input of
//! head h in layer l at position i is x_i = resid_pre_i / s_i, with s_i the LayerNorm scale
//! cached at `blocks.{l}.ln1.hook_scale` (TL's convention of freezing the scale; s = 1
//! without LayerNorm). For an LN model this is on TL-processed weights, where LN is just
//! centring and division by s and the writing weights are already centred, so
//! resid_pre_i / s_i is exactly what W_Q and W_K read. resid_pre splits into
//! - `tok`: the token embedding `W_E[tok_i]` (`hook_embed`),
//! - `pos`: the positional embedding `W_pos[i]` (`hook_pos_embed`),
//! - `prev` (layers > 0 only): everything earlier layers wrote (resid_pre − tok − pos),
//!
//! and q_i = x_i W_Q + b_Q, k_j = x_j W_K + b_K, so S_ij = Σ over (query part a, key part b)
//! of (a_i W_Q)·(b_j W_K) / sqrt(d_head), with `bias` as one more part on either side (b_Q,
//! b_K; present only when non-zero — after folding LN this includes ln1.b W_Q). In layer 0
//! of an LN-free model without biases the four terms tok·tok, tok·pos, pos·tok and pos·pos
//! sum exactly to the scores. Terms are given for every (i, j); only j ≤ i count (the rest
//! is masked).
//!
//! **Shortformer**: W_pos is not in resid_pre; it is added to ln1's output, so `pos` is
//! `W_pos[i]` itself (not divided by the scale) in every layer, and `prev` is resid_pre −
//! tok. Its ln1 is not folded ([`super::process`]), so the residual parts are
//! resid/s ⊙ ln1.w and ln1.b W_Q joins the query bias (b W_K the key's). With positions
//! off the `pos` terms are zero.

use super::cache::{act_name, ActivationCache};
use super::circuits::check_head;
use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::{Positions, Weights};
use serde::Serialize;

/// Attention patterns of sequence `b` of the cache: `[layer][head]`, each (T, T).
pub fn patterns(cache: &ActivationCache, b: usize) -> Result<Vec<Vec<Mat>>> {
    let p0 = cache.get(&act_name("pattern", 0))?;
    let nh = p0.shape[1];
    let mut layers = Vec::new();
    let mut l = 0;
    while cache.has(&act_name("pattern", l)) {
        layers.push(
            (0..nh)
                .map(|h| cache.pattern(b, l, h))
                .collect::<Result<Vec<_>>>()?,
        );
        l += 1;
    }
    Ok(layers)
}

/// A part of a head's input (or its bias) in the score decomposition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// the token embedding
    Tok,
    /// the positional embedding
    Pos,
    /// what earlier layers wrote (layers > 0)
    Prev,
    /// b_Q on the query side, b_K on the key side
    Bias,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Tok => "tok",
            Part::Pos => "pos",
            Part::Prev => "prev",
            Part::Bias => "bias",
        }
    }
}

/// One term of the decomposition: (query part, key part, (T, T) scores).
#[derive(Clone, Debug, Serialize)]
pub struct ScoreTerm {
    pub query: Part,
    pub key: Part,
    /// (T, T) row = query position, column = key position; unmasked.
    pub scores: Mat,
}

/// The attention scores of one head on one sequence, split into terms that sum to them.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreDecomposition {
    pub layer: usize,
    pub head: usize,
    pub terms: Vec<ScoreTerm>,
}

impl ScoreDecomposition {
    /// The term for (query part, key part), if present.
    pub fn term(&self, q: Part, k: Part) -> Option<&Mat> {
        self.terms
            .iter()
            .find(|t| t.query == q && t.key == k)
            .map(|t| &t.scores)
    }

    /// Σ of all terms: the (unmasked) scores.
    pub fn total(&self) -> Result<Mat> {
        let mut it = self.terms.iter();
        let first = it
            .next()
            .ok_or_else(|| Error::Backend("empty decomposition".into()))?
            .scores
            .clone();
        it.try_fold(first, |acc, t| acc.add(&t.scores))
    }
}

/// (T, d_head) projections x W[h] of each part's rows (T, C); bias rows are b[h] repeated.
fn project(
    parts: &[(Part, Vec<f32>)],
    w: &[f32],
    b: &[f32],
    t: usize,
    c: usize,
    hs: usize,
    h: usize,
) -> Result<Vec<(Part, Mat)>> {
    let wh = Mat::new(c, hs, w[h * c * hs..(h + 1) * c * hs].to_vec())?;
    let bh = &b[h * hs..(h + 1) * hs];
    let mut out = Vec::new();
    for (part, x) in parts {
        out.push((*part, Mat::new(t, c, x.clone())?.matmul(&wh)?));
    }
    if bh.iter().any(|&v| v != 0.0) {
        out.push((Part::Bias, Mat::from_fn(t, hs, |_, a| bh[a])));
    }
    Ok(out)
}

/// ln1's gain and bias of `layer` when it has them (an unfolded ln1), else None.
fn ln1_params(pw: &Weights, layer: usize) -> Result<Option<(&[f32], &[f32])>> {
    if pw.cfg.normalization_type.is_none() {
        return Ok(None);
    }
    let w = pw.get(&format!("blocks.{layer}.ln1.w"))?;
    let b = pw.get(&format!("blocks.{layer}.ln1.b"))?;
    Ok((w.iter().any(|&x| x != 1.0) || b.iter().any(|&x| x != 0.0)).then_some((w, b)))
}

/// The bias `b` [NH, HS] plus ln1.b W [NH, C, HS] when ln1 is unfolded.
fn with_ln1_bias(pw: &Weights, layer: usize, w: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    let mut out = b.to_vec();
    let (c, hs) = (pw.cfg.d_model, pw.cfg.d_head);
    if let Some((_, lb)) = ln1_params(pw, layer)? {
        for (i, o) in out.iter_mut().enumerate() {
            let (h, a) = (i / hs, i % hs);
            let add: f64 = (0..c)
                .map(|r| lb[r] as f64 * w[(h * c + r) * hs + a] as f64)
                .sum();
            *o += add as f32;
        }
    }
    Ok(out)
}

/// The parts of the input of layer `layer`'s heads on sequence `b`, each (T, C): tok, pos
/// and (layers > 0) prev, as the module doc defines them.
fn input_parts(
    pw: &Weights,
    cache: &ActivationCache,
    b: usize,
    layer: usize,
) -> Result<Vec<(Part, Vec<f32>)>> {
    let (c, t) = (pw.cfg.d_model, cache.seq_len);
    let gain = ln1_params(pw, layer)?.map(|(w, _)| w);
    let scale: Vec<f32> = (0..t)
        .map(|i| cache.ln_scale(&format!("blocks.{layer}.ln1"), b, i))
        .collect();
    let raw = |name: &str| -> Result<Vec<f32>> {
        let mut v = Vec::with_capacity(t * c);
        for i in 0..t {
            v.extend_from_slice(cache.at(name, b, i)?);
        }
        Ok(v)
    };
    // what ln1 makes of residual rows: x / s ⊙ gain
    let normed = |x: &[f32]| -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(k, v)| v / scale[k / c] * gain.map_or(1.0, |g| g[k % c]))
            .collect()
    };
    let shortformer = pw.cfg.positional_embedding_type == Positions::Shortformer;
    let tok = raw("hook_embed")?;
    let pos = raw("hook_pos_embed")?;
    let mut parts = vec![
        (Part::Tok, normed(&tok)),
        // shortformer: W_pos joins ln1's output as it is
        (
            Part::Pos,
            if shortformer {
                pos.clone()
            } else {
                normed(&pos)
            },
        ),
    ];
    if layer > 0 {
        let resid = raw(&act_name("resid_pre", layer))?;
        let prev: Vec<f32> = resid
            .iter()
            .zip(&tok)
            .zip(&pos)
            .map(|((r, a), p)| if shortformer { r - a } else { r - a - p })
            .collect();
        parts.push((Part::Prev, normed(&prev)));
    }
    Ok(parts)
}

/// Decomposes the scores of head (layer, h) on sequence `b` of `cache` (see the module
/// doc). `pw` must be the weights the cache was run with, TL-processed for an LN model
/// ([`super::process::process_weights`]); the cache needs `hook_embed`, `hook_pos_embed`,
/// `resid_pre` of the layer and, with LN, `ln1.hook_scale`.
pub fn decompose_scores(
    pw: &Weights,
    cache: &ActivationCache,
    b: usize,
    layer: usize,
    h: usize,
) -> Result<ScoreDecomposition> {
    check_head(pw, layer, h)?;
    if b >= cache.batch {
        return Err(Error::config(
            "sequence",
            format!("{b} is out of range (the cache holds {})", cache.batch),
        ));
    }
    let (c, hs, t) = (pw.cfg.d_model, pw.cfg.d_head, cache.seq_len);
    let parts = input_parts(pw, cache, b, layer)?;
    let g = |n: &str| pw.get(&format!("blocks.{layer}.attn.{n}"));
    let (w_q, w_k) = (g("W_Q")?, g("W_K")?);
    let b_q = with_ln1_bias(pw, layer, w_q, g("b_Q")?)?;
    let b_k = with_ln1_bias(pw, layer, w_k, g("b_K")?)?;
    let q = project(&parts, w_q, &b_q, t, c, hs, h)?;
    let k = project(&parts, w_k, &b_k, t, c, hs, h)?;
    let s = 1.0 / (hs as f32).sqrt();
    let mut terms = Vec::new();
    for (qp, qm) in &q {
        for (kp, km) in &k {
            terms.push(ScoreTerm {
                query: *qp,
                key: *kp,
                scores: qm.matmul(&km.transpose())?.scale(s),
            });
        }
    }
    Ok(ScoreDecomposition {
        layer,
        head: h,
        terms,
    })
}
