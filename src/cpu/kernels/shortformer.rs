//! TransformerLens's shortformer positions: W_pos joins the query and key inputs of every
//! layer's attention (after ln1) and never the residual stream, whose first value is the
//! token embedding alone.
//!
//! `shortformer_forward` / `shortformer_backward`: x_qk[b, t] = x[b, t] + W_pos[t], and
//! dW_pos[t] += Σ_b dx_qk[b, t] (the batch summed in order).
//! `embed_tokens_forward` / `embed_tokens_backward`: resid0[b, i] = W_E[tokens[b, rows[i]]].

use super::simd_fn;

simd_fn! {
    /// out (B, T, C) = x (B, T, C) + W_pos (≥T, C) at each row's position.
    pub fn shortformer_forward(out: &mut [f32], x: &[f32], w_pos: &[f32], b: usize, t: usize, c: usize) {
        for bi in 0..b {
            for p in 0..t {
                let r = (bi * t + p) * c;
                let (o, xr, wp) = (&mut out[r..r + c], &x[r..r + c], &w_pos[p * c..(p + 1) * c]);
                for ((o, x), q) in o.iter_mut().zip(xr).zip(wp) {
                    *o = x + q;
                }
            }
        }
    }
}

simd_fn! {
    /// dW_pos (≥T, C) += Σ_b dx_qk (B, T, C), sequences in order.
    pub fn shortformer_backward(dw_pos: &mut [f32], dx_qk: &[f32], b: usize, t: usize, c: usize) {
        for bi in 0..b {
            for p in 0..t {
                let r = (bi * t + p) * c;
                super::add_into(&mut dw_pos[p * c..(p + 1) * c], &dx_qk[r..r + c]);
            }
        }
    }
}

simd_fn! {
    /// out (B, TR, C) = W_E (V, C) at tokens (B, T) of `rows` (TR).
    pub fn embed_tokens_forward(out: &mut [f32], tokens: &[u32], w_e: &[f32], rows: &[usize], b: usize, t: usize, c: usize) {
        let tr = rows.len();
        for bi in 0..b {
            for (i, &p) in rows.iter().enumerate() {
                let tok = tokens[bi * t + p] as usize;
                out[(bi * tr + i) * c..(bi * tr + i + 1) * c].copy_from_slice(&w_e[tok * c..(tok + 1) * c]);
            }
        }
    }
}

simd_fn! {
    /// dW_E (V, C) += scatter of dout (B, TR, C) rows by token (row order).
    pub fn embed_tokens_backward(dw_e: &mut [f32], dout: &[f32], tokens: &[u32], rows: &[usize], b: usize, t: usize, c: usize) {
        let tr = rows.len();
        for bi in 0..b {
            for (i, &p) in rows.iter().enumerate() {
                let tok = tokens[bi * t + p] as usize;
                super::add_into(&mut dw_e[tok * c..(tok + 1) * c], &dout[(bi * tr + i) * c..(bi * tr + i + 1) * c]);
            }
        }
    }
}
