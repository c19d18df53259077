//! Full QK and OV circuits and copying scores, as TransformerLens and "A Mathematical
//! Framework for Transformer Circuits" define them, read straight from the weights.
//!
//! For layer `l`, head `h`: W_QK = W_Q[h] W_K[h]ᵀ (C×C) and W_OV = W_V[h] W_O[h] (C×C).
//! - Full OV circuit (token → logit): W_E W_OV W_U, shape (d_vocab, d_vocab_out). Row i is
//!   what attending to token i adds to every output logit.
//! - Full QK circuit (query token × key token): W_E W_QK W_Eᵀ / sqrt(d_head), the
//!   attention score (before softmax and mask) a query token gives a key token through the
//!   token embeddings alone; likewise with W_pos on either side for positional terms.
//!
//! Biases and LayerNorm are left out (TL's circuits do the same on unfolded weights); for
//! a model with LN, the circuits are those of the direct embedding path.

use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::Weights;

/// Which embedding a circuit starts or ends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embed {
    /// W_E (d_vocab, C)
    Token,
    /// W_pos (n_ctx, C)
    Pos,
}

fn mat(w: &Weights, name: &str, rows: usize, cols: usize) -> Result<Mat> {
    Mat::new(rows, cols, w.get(name)?.to_vec())
}

/// Slice head `h` of a [NH, A, B] tensor as an (A, B) matrix.
fn head(w: &Weights, name: &str, h: usize, a: usize, b: usize) -> Result<Mat> {
    let all = w.get(name)?;
    Mat::new(a, b, all[h * a * b..(h + 1) * a * b].to_vec())
}

fn check_head(w: &Weights, layer: usize, h: usize) -> Result<()> {
    if layer >= w.cfg.n_layers {
        return Err(Error::config("layer", format!("{layer} is out of range (the model has {} layers)", w.cfg.n_layers)));
    }
    if h >= w.cfg.n_heads {
        return Err(Error::config("head", format!("{h} is out of range (the model has {} heads)", w.cfg.n_heads)));
    }
    Ok(())
}

fn embed(w: &Weights, e: Embed) -> Result<Mat> {
    let c = w.cfg.d_model;
    match e {
        Embed::Token => mat(w, "embed.W_E", w.cfg.d_vocab, c),
        Embed::Pos => mat(w, "pos_embed.W_pos", w.cfg.n_ctx, c),
    }
}

/// W_OV = W_V[h] W_O[h], (C, C).
pub fn w_ov(w: &Weights, layer: usize, h: usize) -> Result<Mat> {
    check_head(w, layer, h)?;
    let (c, hs) = (w.cfg.d_model, w.cfg.d_head);
    let v = head(w, &format!("blocks.{layer}.attn.W_V"), h, c, hs)?;
    let o = head(w, &format!("blocks.{layer}.attn.W_O"), h, hs, c)?;
    v.matmul(&o)
}

/// W_QK = W_Q[h] W_K[h]ᵀ, (C, C).
pub fn w_qk(w: &Weights, layer: usize, h: usize) -> Result<Mat> {
    check_head(w, layer, h)?;
    let (c, hs) = (w.cfg.d_model, w.cfg.d_head);
    let q = head(w, &format!("blocks.{layer}.attn.W_Q"), h, c, hs)?;
    let k = head(w, &format!("blocks.{layer}.attn.W_K"), h, c, hs)?;
    q.matmul(&k.transpose())
}

/// Full OV circuit from `src` embeddings to the logits: E W_OV W_U, (rows of E, d_vocab_out).
pub fn full_ov(w: &Weights, layer: usize, h: usize, src: Embed) -> Result<Mat> {
    let u = mat(w, "unembed.W_U", w.cfg.d_model, w.cfg.d_vocab_out)?;
    embed(w, src)?.matmul(&w_ov(w, layer, h)?)?.matmul(&u)
}

/// Full QK circuit: Q-side embedding W_QK K-sideᵀ / sqrt(d_head), (rows of q, rows of k).
/// Entry (i, j) is the score a query at token/position i gives a key at token/position j.
pub fn full_qk(w: &Weights, layer: usize, h: usize, q: Embed, k: Embed) -> Result<Mat> {
    let s = 1.0 / (w.cfg.d_head as f32).sqrt();
    Ok(embed(w, q)?.matmul(&w_qk(w, layer, h)?)?.matmul(&embed(w, k)?.transpose())?.scale(s))
}

/// The square part of a full OV circuit: tokens that are both inputs and outputs
/// (ids < min(d_vocab, d_vocab_out)).
pub fn square_part(m: &Mat) -> Mat {
    let n = m.rows.min(m.cols);
    m.block(n, n)
}

/// Fraction of rows whose argmax is the diagonal entry (of the square part): 1.0 means
/// attending to token i always raises logit i the most — a copying head.
pub fn diagonal_fraction(m: &Mat) -> f64 {
    let sq = square_part(m);
    let hits = sq.row_argmax().iter().enumerate().filter(|(i, &j)| *i == j).count();
    hits as f64 / sq.rows.max(1) as f64
}

/// Eigenvalue copying score, Σ Re λ / Σ |λ| over the eigenvalues of the square part: +1 for
/// a matrix that maps every token to itself positively, −1 for one that suppresses it.
pub fn eigen_copying_score(m: &Mat) -> Result<f64> {
    let ev = square_part(m).eigenvalues()?;
    let re: f64 = ev.iter().map(|(r, _)| r).sum();
    let abs: f64 = ev.iter().map(|(r, i)| (r * r + i * i).sqrt()).sum();
    Ok(if abs > 0.0 { re / abs } else { 0.0 })
}
