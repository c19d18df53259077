//! Token + position embedding, and the same gather for layer-0 projections.
//!
//! `embed_forward` / `embed_backward`: resid0[b, i] = W_E[tokens[b, rows[i]]] + W_pos[rows[i]].
//!
//! `embed_proj_*`: the first layer's Q/K/V input is one-hot, so without LayerNorm its
//! projection factors through the vocabulary: x W = (W_E W)[token] + (W_pos W)[position].
//! The engine multiplies the two small tables (V, HS) and (T, HS) once per step and these
//! kernels gather them per row, instead of a (B·T, C) × (C, HS) product per head. The
//! backward scatters row gradients back into the two tables, in row order.

use super::simd_fn;

simd_fn! {
    /// out (B, TR, C) from tokens (B, T), W_E (V, C), W_pos (≥T, C), rows (TR).
    pub fn embed_forward(out: &mut [f32], tokens: &[u32], w_e: &[f32], w_pos: &[f32], rows: &[usize], b: usize, t: usize, c: usize) {
        let tr = rows.len();
        for bi in 0..b {
            for (i, &p) in rows.iter().enumerate() {
                let tok = tokens[bi * t + p] as usize;
                let o = &mut out[(bi * tr + i) * c..(bi * tr + i + 1) * c];
                for ((o, e), q) in o.iter_mut().zip(&w_e[tok * c..(tok + 1) * c]).zip(&w_pos[p * c..(p + 1) * c]) {
                    *o = e + q;
                }
            }
        }
    }
}

simd_fn! {
    /// dW_E += scatter of dout rows by token; dW_pos += scatter by position (row order).
    pub fn embed_backward(dw_e: &mut [f32], dw_pos: &mut [f32], dout: &[f32], tokens: &[u32], rows: &[usize], b: usize, t: usize, c: usize) {
        let tr = rows.len();
        for bi in 0..b {
            for (i, &p) in rows.iter().enumerate() {
                let tok = tokens[bi * t + p] as usize;
                let d = &dout[(bi * tr + i) * c..(bi * tr + i + 1) * c];
                super::add_into(&mut dw_e[tok * c..(tok + 1) * c], d);
                super::add_into(&mut dw_pos[p * c..(p + 1) * c], d);
            }
        }
    }
}

/// Dimensions of the gathered projection.
#[derive(Clone, Copy, Debug)]
pub struct ProjDims {
    pub b: usize,
    /// Token positions per sequence in `tokens`.
    pub t: usize,
    pub nh: usize,
    pub hs: usize,
    /// Rows of the vocabulary table (d_vocab).
    pub v: usize,
    /// Rows of the position table.
    pub tp: usize,
}

simd_fn! {
    /// out (NH, B, TR, HS) = e_tab[h, token] + p_tab[h, row] + bias[h], with e_tab (NH, V, HS),
    /// p_tab (NH, TP, HS), bias (NH, HS).
    pub fn embed_proj_forward(out: &mut [f32], tokens: &[u32], e_tab: &[f32], p_tab: &[f32], bias: Option<&[f32]>, rows: &[usize], d: ProjDims) {
        let (tr, hs) = (rows.len(), d.hs);
        for h in 0..d.nh {
            let et = &e_tab[h * d.v * hs..(h + 1) * d.v * hs];
            let pt = &p_tab[h * d.tp * hs..(h + 1) * d.tp * hs];
            for bi in 0..d.b {
                for (i, &p) in rows.iter().enumerate() {
                    let tok = tokens[bi * d.t + p] as usize;
                    let o0 = ((h * d.b + bi) * tr + i) * hs;
                    let o = &mut out[o0..o0 + hs];
                    for ((o, e), q) in o.iter_mut().zip(&et[tok * hs..(tok + 1) * hs]).zip(&pt[p * hs..(p + 1) * hs]) {
                        *o = e + q;
                    }
                    if let Some(bias) = bias {
                        super::add_into(o, &bias[h * hs..(h + 1) * hs]);
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// de_tab += scatter of dout (NH, B, TR, HS) by token, dp_tab += by row, dbias += Σ rows.
    pub fn embed_proj_backward(
            de_tab: &mut [f32],
            dp_tab: &mut [f32],
            dbias: Option<&mut [f32]>,
            dout: &[f32],
            tokens: &[u32],
            rows: &[usize],
            d: ProjDims,
        ) {
        let mut dbias = dbias;
                let (tr, hs) = (rows.len(), d.hs);
                for h in 0..d.nh {
                    let et = &mut de_tab[h * d.v * hs..(h + 1) * d.v * hs];
                    let pt = &mut dp_tab[h * d.tp * hs..(h + 1) * d.tp * hs];
                    for bi in 0..d.b {
                        for (i, &p) in rows.iter().enumerate() {
                            let tok = tokens[bi * d.t + p] as usize;
                            let o0 = ((h * d.b + bi) * tr + i) * hs;
                            let g = &dout[o0..o0 + hs];
                            super::add_into(&mut et[tok * hs..(tok + 1) * hs], g);
                            super::add_into(&mut pt[p * hs..(p + 1) * hs], g);
                            if let Some(db) = dbias.as_deref_mut() {
                                super::add_into(&mut db[h * hs..(h + 1) * hs], g);
                            }
                        }
                    }
                }
    }
}
