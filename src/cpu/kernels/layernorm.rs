//! TransformerLens's LayerNorm over the last axis: y = (x − mean) · rstd · w + b with
//! rstd = 1 / sqrt(mean((x − mean)²) + eps). The forward keeps mean and rstd (N) for the
//! backward. Rows are independent (one task each); dw and db sum over rows in order.

use super::simd_fn;
use crate::model::config::LN_EPS;
use rayon::prelude::*;

simd_fn! {
    /// One row: y (C) from x (C); returns (mean, rstd) through `mr`.
    fn forward_row(y: &mut [f32], mr: (&mut f32, &mut f32), x: &[f32], w: &[f32], b: &[f32]) {
        let c = x.len();
        let mu = x.iter().sum::<f32>() / c as f32;
        let var = x.iter().map(|&v| (v - mu) * (v - mu)).sum::<f32>() / c as f32;
        let rs = 1.0 / (var + LN_EPS as f32).sqrt();
        for i in 0..c {
            y[i] = (x[i] - mu) * rs * w[i] + b[i];
        }
        *mr.0 = mu;
        *mr.1 = rs;
    }
}

/// out (N, C), mean (N), rstd (N) from inp (N, C), w (C), b (C).
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: &[f32],
    n: usize,
    c: usize,
) {
    out[..n * c]
        .par_chunks_mut(c)
        .zip(inp[..n * c].par_chunks(c))
        .zip(mean[..n].par_iter_mut().zip(rstd[..n].par_iter_mut()))
        .for_each(|((y, x), mr)| forward_row(y, mr, x, w, b));
}

simd_fn! {
    /// One row of dinp += rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dout · w.
    fn backward_row(dx: &mut [f32], dy: &[f32], x: &[f32], w: &[f32], mu: f32, rs: f32) {
        let c = x.len();
        let (mut mg, mut mgx) = (0f32, 0f32);
        for i in 0..c {
            let g = dy[i] * w[i];
            mg += g;
            mgx += g * (x[i] - mu) * rs;
        }
        mg /= c as f32;
        mgx /= c as f32;
        for i in 0..c {
            let xh = (x[i] - mu) * rs;
            dx[i] += rs * (dy[i] * w[i] - mg - xh * mgx);
        }
    }
}

simd_fn! {
    /// dw (C) += Σ_rows dout · x̂ and db (C) += Σ_rows dout, rows in order.
    fn params_backward(dw: &mut [f32], db: &mut [f32], dout: &[f32], inp: &[f32], mean: &[f32], rstd: &[f32]) {
        let c = dw.len();
        for (r, (dy, x)) in dout.chunks_exact(c).zip(inp.chunks_exact(c)).enumerate() {
            for i in 0..c {
                dw[i] += dy[i] * (x[i] - mean[r]) * rstd[r];
                db[i] += dy[i];
            }
        }
    }
}

/// dinp (N, C) += ∂L/∂inp; dw (C) += Σ dout·x̂; db (C) += Σ dout, where x̂ = (x − mean)·rstd.
pub fn layernorm_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
    n: usize,
    c: usize,
) {
    dinp[..n * c]
        .par_chunks_mut(c)
        .zip(dout[..n * c].par_chunks(c))
        .zip(inp[..n * c].par_chunks(c))
        .zip(mean[..n].par_iter().zip(rstd[..n].par_iter()))
        .for_each(|(((dx, dy), x), (&mu, &rs))| backward_row(dx, dy, x, w, mu, rs));
    params_backward(
        dw,
        db,
        &dout[..n * c],
        &inp[..n * c],
        &mean[..n],
        &rstd[..n],
    );
}
