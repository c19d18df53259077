//! Helpers shared by the interp tests: random models of the family and a plain-loop
//! forward pass (f64, written from the definitions, sharing no code with the crate's
//! candle forward) to check analyses against.
#![allow(dead_code)]

use toyformer::model::{ActFn, ModelConfig, Norm, Weights};
use toyformer::tasks::rng::CounterRng;

pub fn shared(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../shared/reference-models/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("cannot read {p}: {e} (CI must have ../shared beside the repo)"))
}

pub fn seed003() -> Weights {
    toyformer::io::load_weights(&shared("sort_fixed_len_list_model.safetensors"), None).unwrap()
}

/// A random model: every parameter (biases and LN gains included) ~ N(0, scale²), LN gains
/// around 1. For a sort task of n = 3 below 6 (d_vocab 8, d_vocab_out 6, n_ctx 8).
pub fn random_model(
    n_layers: usize,
    n_heads: usize,
    ln: bool,
    mlp: bool,
    biases: bool,
    seed: u64,
) -> Weights {
    let cfg = ModelConfig {
        n_layers,
        n_heads,
        d_model: 8,
        d_head: 4,
        d_mlp: mlp.then_some(12),
        act_fn: mlp.then_some(ActFn::Relu),
        normalization_type: ln.then_some(Norm::LN),
        n_ctx: 8,
        d_vocab: 8,
        d_vocab_out: 6,
        seed,
        train_biases: biases,
        positional_embedding_type: Default::default(),
    };
    let mut w = Weights::init(&cfg).unwrap();
    let mut r = CounterRng::new(seed, 99, 0);
    for p in w.table.params.clone() {
        let is_bias = p.name.contains(".b_") || p.name.ends_with(".b");
        let is_gain = p.name.ends_with(".w");
        for x in &mut w.data[p.offset..p.offset + p.len] {
            let z = r.normal() as f32;
            *x = if is_gain {
                1.0 + 0.3 * z
            } else if is_bias {
                if biases {
                    0.3 * z
                } else {
                    0.0
                }
            } else {
                0.6 * z
            };
        }
    }
    w
}

/// The sort task the random models fit.
pub fn small_sort() -> toyformer::tasks::TaskSpec {
    toyformer::tasks::TaskSpec::Sort { n: 3, max_num: 6 }
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// Everything the plain-loop forward computes for one sequence.
pub struct Loop {
    /// [layer][head] (T, T) attention patterns
    pub pattern: Vec<Vec<Vec<Vec<f64>>>>,
    /// [layer][head] (T, T) scores (unmasked)
    pub scores: Vec<Vec<Vec<Vec<f64>>>>,
    /// [layer][head][position] head result z W_O (C)
    pub result: Vec<Vec<Vec<Vec<f64>>>>,
    /// (T, V) logits
    pub logits: Vec<Vec<f64>>,
    /// [layer] (T, C) resid_pre
    pub resid_pre: Vec<Vec<Vec<f64>>>,
    /// (T, C) the residual stream before the final LayerNorm
    pub resid_final: Vec<Vec<f64>>,
}

fn get(w: &Weights, n: &str) -> Vec<f64> {
    w.get(n).unwrap().iter().map(|&x| x as f64).collect()
}

/// The LayerNorm scale sqrt(var + eps) of one row.
pub fn ln_scale(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n + 1e-5).sqrt()
}

fn ln(x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let s = (var + 1e-5).sqrt();
    x.iter()
        .zip(w)
        .zip(b)
        .map(|((v, g), bb)| (v - mean) / s * g + bb)
        .collect()
}

/// Plain-loop forward of one sequence (ReLU MLPs only).
pub fn forward(w: &Weights, tokens: &[u32]) -> Loop {
    let c = &w.cfg;
    let (d, nh, hs, t, vo) = (c.d_model, c.n_heads, c.d_head, tokens.len(), c.d_vocab_out);
    let e = get(w, "embed.W_E");
    let pe = get(w, "pos_embed.W_pos");
    let mut resid: Vec<Vec<f64>> = (0..t)
        .map(|i| {
            (0..d)
                .map(|k| e[tokens[i] as usize * d + k] + pe[i * d + k])
                .collect()
        })
        .collect();
    let mut out = Loop {
        pattern: vec![],
        scores: vec![],
        result: vec![],
        logits: vec![],
        resid_pre: vec![],
        resid_final: vec![],
    };
    let has_ln = c.normalization_type.is_some();
    for l in 0..c.n_layers {
        out.resid_pre.push(resid.clone());
        let g = |n: &str| get(w, &format!("blocks.{l}.{n}"));
        let x: Vec<Vec<f64>> = if has_ln {
            resid
                .iter()
                .map(|r| ln(r, &g("ln1.w"), &g("ln1.b")))
                .collect()
        } else {
            resid.clone()
        };
        let (wq, wk, wv, wo) = (g("attn.W_Q"), g("attn.W_K"), g("attn.W_V"), g("attn.W_O"));
        let (bq, bk, bv, bo) = (g("attn.b_Q"), g("attn.b_K"), g("attn.b_V"), g("attn.b_O"));
        let proj = |m: &[f64], b: &[f64], h: usize, xi: &[f64]| -> Vec<f64> {
            (0..hs)
                .map(|a| {
                    b[h * hs + a] + (0..d).map(|k| xi[k] * m[(h * d + k) * hs + a]).sum::<f64>()
                })
                .collect()
        };
        let (mut pats, mut scs, mut ress) = (vec![], vec![], vec![]);
        let mut attn_out = vec![bo.clone(); t];
        for h in 0..nh {
            let q: Vec<Vec<f64>> = x.iter().map(|xi| proj(&wq, &bq, h, xi)).collect();
            let k: Vec<Vec<f64>> = x.iter().map(|xi| proj(&wk, &bk, h, xi)).collect();
            let v: Vec<Vec<f64>> = x.iter().map(|xi| proj(&wv, &bv, h, xi)).collect();
            let sc: Vec<Vec<f64>> = (0..t)
                .map(|i| {
                    (0..t)
                        .map(|j| {
                            (0..hs).map(|a| q[i][a] * k[j][a]).sum::<f64>() / (hs as f64).sqrt()
                        })
                        .collect()
                })
                .collect();
            let pat: Vec<Vec<f64>> = (0..t)
                .map(|i| {
                    let m = (0..=i).map(|j| sc[i][j]).fold(f64::NEG_INFINITY, f64::max);
                    let ex: Vec<f64> = (0..t)
                        .map(|j| if j <= i { (sc[i][j] - m).exp() } else { 0.0 })
                        .collect();
                    let s: f64 = ex.iter().sum();
                    ex.iter().map(|x| x / s).collect()
                })
                .collect();
            let res: Vec<Vec<f64>> = (0..t)
                .map(|i| {
                    let z: Vec<f64> = (0..hs)
                        .map(|a| (0..t).map(|j| pat[i][j] * v[j][a]).sum())
                        .collect();
                    (0..d)
                        .map(|k| (0..hs).map(|a| z[a] * wo[(h * hs + a) * d + k]).sum())
                        .collect()
                })
                .collect();
            for i in 0..t {
                for k in 0..d {
                    attn_out[i][k] += res[i][k];
                }
            }
            pats.push(pat);
            scs.push(sc);
            ress.push(res);
        }
        for i in 0..t {
            for k in 0..d {
                resid[i][k] += attn_out[i][k];
            }
        }
        out.pattern.push(pats);
        out.scores.push(scs);
        out.result.push(ress);
        if let Some(m) = c.d_mlp {
            let (wi, bi, wout, bout) =
                (g("mlp.W_in"), g("mlp.b_in"), g("mlp.W_out"), g("mlp.b_out"));
            for r in resid.iter_mut().take(t) {
                let x = if has_ln {
                    ln(r, &g("ln2.w"), &g("ln2.b"))
                } else {
                    r.clone()
                };
                let hidden: Vec<f64> = (0..m)
                    .map(|a| (bi[a] + (0..d).map(|k| x[k] * wi[k * m + a]).sum::<f64>()).max(0.0))
                    .collect();
                for k in 0..d {
                    r[k] += bout[k] + (0..m).map(|a| hidden[a] * wout[a * d + k]).sum::<f64>();
                }
            }
        }
    }
    out.resid_final = resid.clone();
    let fin: Vec<Vec<f64>> = if has_ln {
        resid
            .iter()
            .map(|r| ln(r, &get(w, "ln_final.w"), &get(w, "ln_final.b")))
            .collect()
    } else {
        resid
    };
    let (wu, bu) = (get(w, "unembed.W_U"), get(w, "unembed.b_U"));
    out.logits = fin
        .iter()
        .map(|r| {
            (0..vo)
                .map(|j| bu[j] + (0..d).map(|k| r[k] * wu[k * vo + j]).sum::<f64>())
                .collect()
        })
        .collect();
    out
}
