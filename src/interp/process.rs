//! TransformerLens's weight processing for LayerNorm models, so that circuits read off the
//! weights mean what they mean in TL.
//!
//! `HookedTransformer.from_pretrained` by default applies `fold_ln=True`,
//! `center_writing_weights=True` (and `center_unembed=True`, which we leave out: it only
//! subtracts a per-position constant from the logits). [`process_weights`] does the first
//! two on our flat weights:
//!
//! - **fold_ln** (with `center_weights=True`): a LayerNorm computes
//!   `LN(x) = (x − mean x) / scale(x) ⊙ w + b`. Its gain `w` is folded into the weights
//!   that read its output (`W_Q[h][c, :] *= w[c]`, same for W_K, W_V, W_in, W_U), its bias
//!   into their biases (`b_Q += b W_Q`, …, `b_U += b W_U`), and those reading weights are
//!   centred over d_model (`W_Q[h][:, a] −= mean_c W_Q[h][c, a]`), which changes nothing
//!   because the input of those weights, LNPre's output, is centred. The LN is left as `w = 1, b = 0`: TL's `LNPre`
//!   (centre and divide by the scale, nothing more).
//! - **center_writing_weights**: every weight that writes to the residual stream (W_E,
//!   W_pos, `W_O[h]` rows, b_O, W_out rows, b_out) has its mean over d_model removed. Every
//!   reader of the stream is a LayerNorm, which removes that mean anyway.
//!
//! **Shortformer**: W_pos is added to ln1's output before W_Q and W_K, so ln1 cannot be
//! folded into them (W_pos W_Q would change, and W_pos is shared by every layer) and W_pos
//! is not a writing weight. For a shortformer model ln1 is left as it is (with W_Q, W_K,
//! W_V and their biases) and W_pos is not centred; ln2 and ln_final are folded and the
//! writing weights centred as usual (ln1 still centres its input). The analyses apply the
//! unfolded ln1 where they read W_Q, W_K or W_V.
//!
//! The processed model computes the same logits as the original (tested); its residual
//! stream is the original one, centred. Models without LayerNorm are returned unchanged
//! (TL also skips both steps for them).

use crate::error::Result;
use crate::model::Weights;

/// Multiplies row c of every (C, X) matrix in `name` (shape [.., C, X] flattened) by
/// `w[c]`, adds `b @ W` to the bias `bias` (shape [.., X]), then centres each column over c.
fn fold_into(pw: &mut Weights, name: &str, bias: &str, w: &[f32], b: &[f32]) -> Result<()> {
    let c = w.len();
    let shape = pw
        .table
        .get(name)
        .map(|p| p.shape.clone())
        .unwrap_or_default();
    let (heads, hx) = match shape.as_slice() {
        [nh, _, hs] => (*nh, *hs), // [NH, C, HS]
        [_, x] => (1, *x),         // [C, X]
        _ => {
            return Err(crate::Error::Weights(format!(
                "cannot fold LayerNorm into `{name}` of shape {shape:?}"
            )))
        }
    };
    let m = pw.get(name)?.to_vec();
    let mut folded = m.clone();
    let mut bias_v = pw.get(bias)?.to_vec();
    for h in 0..heads {
        for a in 0..hx {
            let at = |r: usize| h * c * hx + r * hx + a;
            let add: f64 = (0..c).map(|r| b[r] as f64 * m[at(r)] as f64).sum();
            bias_v[h * hx + a] += add as f32;
            let col: Vec<f64> = (0..c).map(|r| m[at(r)] as f64 * w[r] as f64).collect();
            let mean = col.iter().sum::<f64>() / c as f64;
            for r in 0..c {
                folded[at(r)] = (col[r] - mean) as f32;
            }
        }
    }
    pw.get_mut(name)?.copy_from_slice(&folded);
    pw.get_mut(bias)?.copy_from_slice(&bias_v);
    Ok(())
}

/// Removes the mean over the last axis (d_model) of every row of `name`.
fn center_rows(pw: &mut Weights, name: &str, c: usize) -> Result<()> {
    for row in pw.get_mut(name)?.chunks_mut(c) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        row.iter_mut().for_each(|v| *v = (*v as f64 - mean) as f32);
    }
    Ok(())
}

fn reset_ln(pw: &mut Weights, prefix: &str) -> Result<(Vec<f32>, Vec<f32>)> {
    let w = pw.get(&format!("{prefix}.w"))?.to_vec();
    let b = pw.get(&format!("{prefix}.b"))?.to_vec();
    pw.get_mut(&format!("{prefix}.w"))?.fill(1.0);
    pw.get_mut(&format!("{prefix}.b"))?.fill(0.0);
    Ok((w, b))
}

/// TL's `fold_ln` + `center_writing_weights` (see the module doc). A copy of `w` for a
/// model without LayerNorm.
pub fn process_weights(w: &Weights) -> Result<Weights> {
    let mut pw = w.clone();
    if w.cfg.normalization_type.is_none() {
        return Ok(pw);
    }
    let c = w.cfg.d_model;
    let shortformer = w.cfg.positional_embedding_type == crate::model::Positions::Shortformer;
    for l in 0..w.cfg.n_layers {
        let b = format!("blocks.{l}");
        // shortformer: ln1 stays (W_pos joins its output before W_Q and W_K)
        if !shortformer {
            let (lw, lb) = reset_ln(&mut pw, &format!("{b}.ln1"))?;
            for n in ["Q", "K", "V"] {
                fold_into(
                    &mut pw,
                    &format!("{b}.attn.W_{n}"),
                    &format!("{b}.attn.b_{n}"),
                    &lw,
                    &lb,
                )?;
            }
        }
        if w.cfg.d_mlp.is_some() {
            let (lw, lb) = reset_ln(&mut pw, &format!("{b}.ln2"))?;
            fold_into(
                &mut pw,
                &format!("{b}.mlp.W_in"),
                &format!("{b}.mlp.b_in"),
                &lw,
                &lb,
            )?;
        }
    }
    let (lw, lb) = reset_ln(&mut pw, "ln_final")?;
    fold_into(&mut pw, "unembed.W_U", "unembed.b_U", &lw, &lb)?;
    center_rows(&mut pw, "embed.W_E", c)?;
    if !shortformer {
        center_rows(&mut pw, "pos_embed.W_pos", c)?;
    }
    for l in 0..w.cfg.n_layers {
        let b = format!("blocks.{l}");
        center_rows(&mut pw, &format!("{b}.attn.W_O"), c)?;
        center_rows(&mut pw, &format!("{b}.attn.b_O"), c)?;
        if w.cfg.d_mlp.is_some() {
            center_rows(&mut pw, &format!("{b}.mlp.W_out"), c)?;
            center_rows(&mut pw, &format!("{b}.mlp.b_out"), c)?;
        }
    }
    Ok(pw)
}
