//! MLP activations (TransformerLens `act_fn`), elementwise except SoLU:
//! - relu: max(0, x)
//! - gelu: x·Φ(x) = x/2 · (1 + erf(x/√2)) (TL's "gelu" is PyTorch's exact form)
//! - gelu_new: x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))
//! - solu: x · softmax(x) over the d_mlp axis of each row
//!
//! The backward takes the pre-activation (kept by the forward) and recomputes what it needs.

use crate::model::ActFn;
use rayon::prelude::*;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044_715;

fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

fn gelu_grad(x: f32) -> f32 {
    let x = x as f64;
    let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf + x * pdf) as f32
}

fn gelu_new(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI as f32 * (x + GELU_C as f32 * x * x * x);
    0.5 * x * (1.0 + u.tanh())
}

fn gelu_new_grad(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI as f32 * (x + GELU_C as f32 * x * x * x);
    let th = u.tanh();
    let du = SQRT_2_OVER_PI as f32 * (1.0 + 3.0 * GELU_C as f32 * x * x);
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du
}

/// softmax of one row into `s`.
fn softmax_row(s: &mut [f32], x: &[f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0f32;
    for (s, &x) in s.iter_mut().zip(x) {
        *s = (x - max).exp();
        sum += *s;
    }
    let inv = 1.0 / sum;
    s.iter_mut().for_each(|s| *s *= inv);
}

/// out (N, M) = act(inp (N, M)).
pub fn activation_forward(out: &mut [f32], inp: &[f32], act: ActFn, n: usize, m: usize) {
    let (out, inp) = (&mut out[..n * m], &inp[..n * m]);
    match act {
        ActFn::Relu => out
            .par_iter_mut()
            .zip(inp.par_iter())
            .for_each(|(o, &x)| *o = x.max(0.0)),
        ActFn::Gelu => out
            .par_iter_mut()
            .zip(inp.par_iter())
            .for_each(|(o, &x)| *o = gelu(x)),
        ActFn::GeluNew => out
            .par_iter_mut()
            .zip(inp.par_iter())
            .for_each(|(o, &x)| *o = gelu_new(x)),
        ActFn::Solu => out
            .par_chunks_mut(m)
            .zip(inp.par_chunks(m))
            .for_each(|(o, x)| {
                softmax_row(o, x);
                o.iter_mut().zip(x).for_each(|(o, &x)| *o *= x);
            }),
    }
}

/// dinp (N, M) += ∂L/∂inp from dout (N, M) and the pre-activation inp.
/// SoLU: with s = softmax(x) and g = dout·x, dinp = dout·s + s·(g − Σ g·s).
pub fn activation_backward(
    dinp: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    act: ActFn,
    n: usize,
    m: usize,
) {
    let (dinp, dout, inp) = (&mut dinp[..n * m], &dout[..n * m], &inp[..n * m]);
    let mut each = |f: fn(f32) -> f32| {
        dinp.par_iter_mut()
            .zip(dout.par_iter().zip(inp.par_iter()))
            .for_each(|(d, (&g, &x))| *d += g * f(x))
    };
    match act {
        ActFn::Relu => each(|x| if x > 0.0 { 1.0 } else { 0.0 }),
        ActFn::Gelu => each(gelu_grad),
        ActFn::GeluNew => each(gelu_new_grad),
        ActFn::Solu => dinp
            .par_chunks_mut(m)
            .zip(dout.par_chunks(m).zip(inp.par_chunks(m)))
            .for_each_init(
                || vec![0f32; m],
                |s, (d, (g, x))| {
                    softmax_row(s, x);
                    let gs: f32 = g
                        .iter()
                        .zip(x)
                        .zip(s.iter())
                        .map(|((g, x), s)| g * x * s)
                        .sum();
                    for i in 0..m {
                        d[i] += g[i] * s[i] + s[i] * (g[i] * x[i] - gs);
                    }
                },
            ),
    }
}
