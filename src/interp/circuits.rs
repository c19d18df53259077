//! Full QK and OV circuits, composition scores and copying scores, as TransformerLens and
//! "A Mathematical Framework for Transformer Circuits" (Elhage et al. 2021) define them,
//! read straight from the weights.
//!
//! For layer `l`, head `h` (TL's `model.QK[l, h]` and `model.OV[l, h]`, row-vector
//! convention: the residual stream is a row x and a head reads x W):
//! - W_QK = W_Q[h] W_K[h]ᵀ (C, C): the score of query residual x_q for key residual x_k is
//!   x_q W_QK x_kᵀ / sqrt(d_head) (plus bias terms, left out here as in TL's circuits).
//! - W_OV = W_V[h] W_O[h] (C, C): attending to a source residual x adds x W_OV to the
//!   destination's residual (times the attention weight). Its rank is at most d_head.
//! - Full OV circuit (source token → logit): W_E W_OV W_U, (d_vocab, d_vocab_out). Row i is
//!   what attending fully to token i adds to every output logit. W_pos W_OV W_U does the
//!   same for source positions.
//! - Full QK circuit: W_E W_QK W_Eᵀ / sqrt(d_head), (d_vocab, d_vocab): entry (i, j) is the
//!   score a query holding token i gives a key holding token j through the token
//!   embeddings alone; W_E·W_pos, W_pos·W_E and W_pos·W_pos likewise. The four together
//!   are the concatenated view [W_E; W_pos] W_QK [W_E; W_pos]ᵀ / sqrt(d_head)
//!   ([`Embed::Both`]): for layer 0 of a model without LayerNorm the actual score is the
//!   sum of the four blocks picked by (token, position) of query and key, plus bias terms.
//!   **Every full QK circuit here includes the 1/sqrt(d_head)**, so its entries are on the
//!   scale of `hook_attn_scores`.
//! - Paths through earlier heads ([`Path`]): an embedding followed by the OV circuits of
//!   heads in earlier layers, E W_OV^{a} W_OV^{b} …. For a head in layer > 0, K-composition
//!   is the QK circuit with such a path on the key side (E W_QK (E W_OV^{a})ᵀ: query token ×
//!   the token the key position attended to), Q-composition the same on the query side;
//!   the virtual OV circuit of a 2-layer model is E W_OV^{0,a} W_OV^{1,b} W_U (the OV of
//!   layer 1 applied to what layer 0's head wrote).
//!
//! **Shortformer and positions off** (`positional_embedding_type`): a shortformer model
//! adds W_pos to the query and key inputs of every layer (after ln1), never to the
//! residual stream, so a position enters only the Q/K side of a QK circuit, in every
//! layer, and only directly: a path through a head carries no W_pos (values read the
//! residual alone), and the OV circuit of a position is zero. With positions off every
//! W_pos term is zero. [`Path::matrix`] is what a path adds to the residual stream;
//! [`full_qk_path`] adds the shortformer W_pos to both sides. A shortformer model with
//! LayerNorm keeps its ln1 unfolded (see [`super::process`]); its circuits fold ln1's
//! gain into W_Q, W_K and W_V as they read the residual stream (W_pos reads them as
//! stored), so they are the circuits TL's fold_ln would give without the W_pos problem.
//! [`w_ov`], [`w_qk`] and the composition scores stay TL's `model.OV`/`model.QK` of the
//! weights as given (what TL's `all_composition_scores` computes on them).
//!
//! All of these ignore biases, MLPs and attention patterns: they are the weight-only
//! (direct) paths. For a model with LayerNorm, pass weights processed by
//! [`super::process::process_weights`] (TL's `fold_ln` + `center_writing_weights`); the
//! circuits are then TL's circuits of the processed model, off from the actual path by
//! the positive LayerNorm scale of each position (1/scale), which no argmax-based score
//! depends on for OV rows.

use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::{Positions, Weights};
use serde::Serialize;

/// Which embedding a circuit starts or ends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Embed {
    /// W_E (d_vocab, C)
    Token,
    /// W_pos (n_ctx, C)
    Pos,
    /// [W_E; W_pos] (d_vocab + n_ctx, C): token rows first, then position rows.
    Both,
}

fn mat(w: &Weights, name: &str, rows: usize, cols: usize) -> Result<Mat> {
    Mat::new(rows, cols, w.get(name)?.to_vec())
}

/// Slice head `h` of a [NH, A, B] tensor as an (A, B) matrix.
fn head(w: &Weights, name: &str, h: usize, a: usize, b: usize) -> Result<Mat> {
    let all = w.get(name)?;
    Mat::new(a, b, all[h * a * b..(h + 1) * a * b].to_vec())
}

/// Checks that (layer, h) names a head of the model; the error names the bad index.
pub fn check_head(w: &Weights, layer: usize, h: usize) -> Result<()> {
    if layer >= w.cfg.n_layers {
        return Err(Error::config(
            "layer",
            format!(
                "{layer} is out of range (the model has {} layers)",
                w.cfg.n_layers
            ),
        ));
    }
    if h >= w.cfg.n_heads {
        return Err(Error::config(
            "head",
            format!(
                "{h} is out of range (the model has {} heads)",
                w.cfg.n_heads
            ),
        ));
    }
    Ok(())
}

/// The embedding matrix: W_E (d_vocab, C), W_pos (n_ctx, C) or both stacked.
pub fn embed(w: &Weights, e: Embed) -> Result<Mat> {
    let c = w.cfg.d_model;
    match e {
        Embed::Token => mat(w, "embed.W_E", w.cfg.d_vocab, c),
        Embed::Pos => mat(w, "pos_embed.W_pos", w.cfg.n_ctx, c),
        Embed::Both => embed(w, Embed::Token)?.vstack(&embed(w, Embed::Pos)?),
    }
}

/// What an embedding adds to the residual stream: `embed`, with the position rows zero
/// unless positions are standard (shortformer and off add no W_pos to the stream).
fn resid_embed(w: &Weights, e: Embed) -> Result<Mat> {
    let m = embed(w, e)?;
    if w.cfg.positional_embedding_type == Positions::Standard {
        return Ok(m);
    }
    let first_pos = match e {
        Embed::Token => return Ok(m),
        Embed::Pos => 0,
        Embed::Both => w.cfg.d_vocab,
    };
    Ok(Mat::from_fn(m.rows, m.cols, |r, c| {
        if r < first_pos {
            m.at(r, c)
        } else {
            0.0
        }
    }))
}

/// A head's `W_Q`, `W_K` or `W_V` (C, HS) as it reads the residual stream: with an
/// unfolded ln1 (gain not all 1: a shortformer model with LayerNorm) the gain folded in
/// and the rows centred as TL's fold_ln does (the LN output is centred); else as stored.
fn read_weight(w: &Weights, layer: usize, h: usize, which: &str) -> Result<Mat> {
    let m = head_weight(w, layer, h, which)?;
    if w.cfg.normalization_type.is_none() {
        return Ok(m);
    }
    let g = w.get(&format!("blocks.{layer}.ln1.w"))?;
    if g.iter().all(|&x| x == 1.0) {
        return Ok(m);
    }
    let mean: Vec<f64> = (0..m.cols)
        .map(|a| (0..m.rows).map(|r| (m.at(r, a) * g[r]) as f64).sum::<f64>() / m.rows as f64)
        .collect();
    Ok(Mat::from_fn(m.rows, m.cols, |r, a| {
        (m.at(r, a) as f64 * g[r] as f64 - mean[a]) as f32
    }))
}

/// Head (layer, h)'s queries (`which` = "W_Q") or keys ("W_K") along path `p`, (rows,
/// HS): the path's residual rows through the weight as it reads the stream, plus, on the
/// position rows of a direct path of a shortformer model, W_pos through the weight as
/// stored (W_pos joins ln1's output).
fn qk_side(w: &Weights, layer: usize, h: usize, which: &str, p: &Path) -> Result<Mat> {
    let m = p.matrix(w)?.matmul(&read_weight(w, layer, h, which)?)?;
    if w.cfg.positional_embedding_type != Positions::Shortformer || !p.through.is_empty() {
        return Ok(m);
    }
    let first_pos = match p.embed {
        Embed::Token => return Ok(m),
        Embed::Pos => 0,
        Embed::Both => w.cfg.d_vocab,
    };
    let pos = embed(w, Embed::Pos)?.matmul(&head_weight(w, layer, h, which)?)?;
    Ok(Mat::from_fn(m.rows, m.cols, |r, a| {
        m.at(r, a)
            + if r < first_pos {
                0.0
            } else {
                pos.at(r - first_pos, a)
            }
    }))
}

/// W_U (C, d_vocab_out).
pub fn unembed(w: &Weights) -> Result<Mat> {
    mat(w, "unembed.W_U", w.cfg.d_model, w.cfg.d_vocab_out)
}

/// One head's weight matrix: `W_Q`, `W_K`, `W_V` (C, HS) or `W_O` (HS, C).
pub fn head_weight(w: &Weights, layer: usize, h: usize, which: &str) -> Result<Mat> {
    check_head(w, layer, h)?;
    let (c, hs) = (w.cfg.d_model, w.cfg.d_head);
    let (a, b) = if which == "W_O" { (hs, c) } else { (c, hs) };
    head(w, &format!("blocks.{layer}.attn.{which}"), h, a, b)
}

/// `W_OV = W_V[h] W_O[h]`, (C, C); TL's `model.OV[layer, h]`.
pub fn w_ov(w: &Weights, layer: usize, h: usize) -> Result<Mat> {
    head_weight(w, layer, h, "W_V")?.matmul(&head_weight(w, layer, h, "W_O")?)
}

/// W_QK = W_Q[h] W_K[h]ᵀ, (C, C); TL's `model.QK[layer, h]` (no 1/sqrt(d_head)).
pub fn w_qk(w: &Weights, layer: usize, h: usize) -> Result<Mat> {
    head_weight(w, layer, h, "W_Q")?.matmul(&head_weight(w, layer, h, "W_K")?.transpose())
}

/// Full OV circuit from `src` embeddings to the logits: E W_OV W_U, (rows of E, d_vocab_out).
pub fn full_ov(w: &Weights, layer: usize, h: usize, src: Embed) -> Result<Mat> {
    full_ov_path(
        w,
        &Path {
            embed: src,
            through: vec![(layer, h)],
        },
    )
}

/// Full QK circuit: Q-side embedding W_QK K-sideᵀ / sqrt(d_head), (rows of q, rows of k).
/// Entry (i, j) is the score a query at token/position i gives a key at token/position j.
pub fn full_qk(w: &Weights, layer: usize, h: usize, q: Embed, k: Embed) -> Result<Mat> {
    full_qk_path(w, layer, h, &Path::direct(q), &Path::direct(k))
}

/// A path into the residual stream: an embedding, then the OV circuits of heads
/// `through` (in strictly increasing layers), E W_OV^{through[0]} W_OV^{through[1]} ….
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Path {
    pub embed: Embed,
    /// (layer, head) pairs, layers strictly increasing.
    pub through: Vec<(usize, usize)>,
}

impl Path {
    /// The embedding alone (the direct path).
    pub fn direct(embed: Embed) -> Self {
        Path {
            embed,
            through: Vec::new(),
        }
    }

    /// "W_E", "W_pos·L0H1", … for labels.
    pub fn label(&self) -> String {
        let mut s = match self.embed {
            Embed::Token => "W_E".to_string(),
            Embed::Pos => "W_pos".to_string(),
            Embed::Both => "[W_E;W_pos]".to_string(),
        };
        for (l, h) in &self.through {
            s.push_str(&format!("·L{l}H{h}"));
        }
        s
    }

    /// The (rows, C) matrix of the path, what it adds to the residual stream:
    /// E W_OV^{a} W_OV^{b} … (position rows zero unless positions are standard).
    pub fn matrix(&self, w: &Weights) -> Result<Mat> {
        let mut m = resid_embed(w, self.embed)?;
        let mut last: Option<usize> = None;
        for &(l, h) in &self.through {
            if last.is_some_and(|p| l <= p) {
                return Err(Error::config(
                    "path",
                    format!(
                        "{}: the heads of a path must be in increasing layers",
                        self.label()
                    ),
                ));
            }
            last = Some(l);
            // (E W_V) W_O: cheaper than forming W_OV (C, C) when d_head < d_model
            m = m
                .matmul(&read_weight(w, l, h, "W_V")?)?
                .matmul(&head_weight(w, l, h, "W_O")?)?;
        }
        Ok(m)
    }

    /// The layer of the last head, if any.
    fn last_layer(&self) -> Option<usize> {
        self.through.last().map(|&(l, _)| l)
    }
}

/// The QK circuit of head (layer, h) with paths on both sides:
/// (q-path) W_QK (k-path)ᵀ / sqrt(d_head). With a direct query and a key path through a
/// head of an earlier layer this is K-composition; the other way round, Q-composition.
pub fn full_qk_path(w: &Weights, layer: usize, h: usize, q: &Path, k: &Path) -> Result<Mat> {
    check_head(w, layer, h)?;
    for p in [q, k] {
        if p.last_layer().is_some_and(|l| l >= layer) {
            return Err(Error::config(
                "path",
                format!("{} does not end before layer {layer}", p.label()),
            ));
        }
    }
    let s = 1.0 / (w.cfg.d_head as f32).sqrt();
    // (q-path W_Q) (k-path W_K)ᵀ: the factored form of q-path W_QK k-pathᵀ
    let qs = qk_side(w, layer, h, "W_Q", q)?;
    let ks = qk_side(w, layer, h, "W_K", k)?;
    Ok(qs.matmul(&ks.transpose())?.scale(s))
}

/// The OV circuit along a path ending at its last head, read out by W_U:
/// E W_OV^{a} … W_OV^{z} W_U, (rows of E, d_vocab_out). One head: the full OV circuit;
/// two heads in layers 0 and 1: the virtual OV circuit.
pub fn full_ov_path(w: &Weights, p: &Path) -> Result<Mat> {
    if p.through.is_empty() {
        return Err(Error::config(
            "path",
            "an OV circuit needs at least one head",
        ));
    }
    p.matrix(w)?.matmul(&unembed(w)?)
}

/// The three kinds of composition between a head in an earlier layer (A, writing) and one
/// in a later layer (B, reading).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Composition {
    /// B's queries read what A wrote: W_OV^A W_QK^B.
    Q,
    /// B's keys read what A wrote: W_OV^A (W_QK^B)ᵀ.
    K,
    /// B's values read what A wrote: W_OV^A W_OV^B.
    V,
}

/// TL's composition score (`HookedTransformer.all_composition_scores`,
/// `utils.composition_scores`): ‖W_A W_B‖_F / (‖W_A‖_F ‖W_B‖_F) with W_A = W_OV of the
/// earlier head and W_B = W_QK (Q), W_QKᵀ (K) or W_OV (V) of the later one. It is at
/// most 1 and is larger the more of what A writes B reads; random heads already score
/// well above 0 (a baseline that depends on d_model and d_head), so compare heads with
/// each other rather than with an absolute bar. Errors unless `a` is in an earlier layer
/// than `b`.
pub fn composition_score(
    w: &Weights,
    kind: Composition,
    a: (usize, usize),
    b: (usize, usize),
) -> Result<f64> {
    if a.0 >= b.0 {
        return Err(Error::config(
            "layer",
            format!(
                "composition needs the first head in an earlier layer (got L{}H{} → L{}H{})",
                a.0, a.1, b.0, b.1
            ),
        ));
    }
    let wa = w_ov(w, a.0, a.1)?;
    let wb = match kind {
        Composition::Q => w_qk(w, b.0, b.1)?,
        Composition::K => w_qk(w, b.0, b.1)?.transpose(),
        Composition::V => w_ov(w, b.0, b.1)?,
    };
    let den = wa.frobenius() * wb.frobenius();
    Ok(if den > 0.0 {
        wa.matmul(&wb)?.frobenius() / den
    } else {
        0.0
    })
}

/// Every composition score of one kind, [n_layers][n_heads][n_layers][n_heads] flattened
/// row-major, 0 where the second head is not in a later layer (TL masks those to 0).
pub fn all_composition_scores(w: &Weights, kind: Composition) -> Result<Vec<f64>> {
    let (nl, nh) = (w.cfg.n_layers, w.cfg.n_heads);
    let mut out = vec![0.0; nl * nh * nl * nh];
    let ov: Vec<Mat> = (0..nl * nh)
        .map(|i| w_ov(w, i / nh, i % nh))
        .collect::<Result<_>>()?;
    for b in nh..nl * nh {
        let wb = match kind {
            Composition::Q => w_qk(w, b / nh, b % nh)?,
            Composition::K => w_qk(w, b / nh, b % nh)?.transpose(),
            Composition::V => ov[b].clone(),
        };
        let nb = wb.frobenius();
        for a in 0..(b / nh) * nh {
            let den = ov[a].frobenius() * nb;
            out[a * nl * nh + b] = if den > 0.0 {
                ov[a].matmul(&wb)?.frobenius() / den
            } else {
                0.0
            };
        }
    }
    Ok(out)
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
    let hits = sq
        .row_argmax()
        .iter()
        .enumerate()
        .filter(|(i, &j)| *i == j)
        .count();
    hits as f64 / sq.rows.max(1) as f64
}

/// Eigenvalue copying score, Σ Re λ / Σ |λ| over the eigenvalues of the square part: +1 for
/// a matrix that maps every token to itself positively, −1 for one that suppresses it
/// (the Mathematical Framework's copying score, as TL's `FactoredMatrix.eigenvalues` are
/// used for it).
pub fn eigen_copying_score(m: &Mat) -> Result<f64> {
    let ev = square_part(m).eigenvalues()?;
    let re: f64 = ev.iter().map(|(r, _)| r).sum();
    let abs: f64 = ev.iter().map(|(r, i)| (r * r + i * i).sqrt()).sum();
    Ok(if abs > 0.0 { re / abs } else { 0.0 })
}

/// The OV copying scores of `m` over `ids` (a task's `copy_tokens`): the diagonal fraction
/// and the eigenvalue copying score of its block; both 0 when `ids` is empty (a task whose
/// outputs are labels, not tokens, has nothing to copy).
pub fn copying_scores(m: &Mat, ids: std::ops::Range<usize>) -> Result<(f64, f64)> {
    if ids.is_empty() {
        return Ok((0.0, 0.0));
    }
    let block = token_block(m, ids)?;
    Ok((diagonal_fraction(&block), eigen_copying_score(&block)?))
}

/// The block of `m` for the token ids `ids` on both sides (e.g. the task's value tokens),
/// so that copying scores ignore special tokens.
pub fn token_block(m: &Mat, ids: std::ops::Range<usize>) -> Result<Mat> {
    if ids.end > m.rows || ids.end > m.cols || ids.is_empty() {
        return Err(Error::config(
            "tokens",
            format!(
                "token range {ids:?} does not fit a {}x{} circuit",
                m.rows, m.cols
            ),
        ));
    }
    Ok(m.sub(ids.clone(), ids))
}
