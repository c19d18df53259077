//! Direct logit attribution (DLA) to the correct logit, per component and per path.
//!
//! TL's convention (`ActivationCache.decompose_resid` / `stack_head_results` +
//! `apply_ln_to_stack` + `residual_stack_to_logit_diff`-style dot products), on
//! TL-processed weights ([`super::process::process_weights`]; nothing changes for a model
//! without LayerNorm): the final residual at position p is a sum of components, every one
//! already centred, and the final LayerNorm is frozen at its cached scale s_f(p)
//! (`ln_final.hook_scale`; 1 without LN). The correct logit t = tokens[p + 1] is then
//!
//! ```text
//! logit_t(p) = Σ_components component(p) · W_U[:, t] / s_f(p) + b_U[t]
//! ```
//!
//! exactly (tested). **Per component**: `embed` (`hook_embed`), `pos_embed`, every head
//! `L{l}H{h}` (its `hook_result`, which includes its b_V W_O), `L{l} b_O`, `MLP{l}`
//! (`hook_mlp_out`), and `b_U` (which holds the folded ln_final.b W_U).
//!
//! **Per path**: with attention patterns and LayerNorm scales frozen at their cached
//! values, everything between the sources and the logits is linear, so every head's output
//! splits further by where its value input came from. A path is a source (`embed`,
//! `pos_embed`, `MLP{l}`, or `attn bias L{l}` = Σ_h b_V W_O + b_O of layer l) followed by
//! heads in increasing layers: source → L{a}H{i} → L{b}H{j} → logits. Its value at (p, t)
//! is Σ_j A^{last}[p, j] … Σ_i A^{first}[·, i] src_i/s^{first}_i · (W_OV^{first} … W_OV^{last}
//! W_U[:, t]) / s_f(p), with A the cached patterns and s^{l} the cached `ln1` scales.
//! Paths through up to [`DlaReport::path_depth`] heads are listed; when that is less than
//! the number of layers, the rest is one `longer paths` entry (the difference to the
//! logit), so paths too sum to the logit.
//!
//! Values are means over the (sample, predicted position) pairs of the cache.

use super::cache::{act_name, ActivationCache};
use super::circuits::head_weight;
use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::tasks::TaskSpec;
use candle_core::{Device, Tensor};
use serde::Serialize;

/// One attribution: a label and its mean contribution to the correct logit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribution {
    pub label: String,
    pub mean: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DlaReport {
    /// (sample, predicted position) pairs averaged over
    pub pairs: usize,
    /// the mean correct logit itself (components and paths each sum to it)
    pub logit: f64,
    pub components: Vec<Attribution>,
    pub paths: Vec<Attribution>,
    /// paths through at most this many heads are listed separately
    pub path_depth: usize,
}

impl DlaReport {
    /// The mean attribution of a component or path by label.
    pub fn get(&self, label: &str) -> Option<f64> {
        self.components
            .iter()
            .chain(&self.paths)
            .find(|a| a.label == label)
            .map(|a| a.mean)
    }
}

/// Most chains of heads (including the empty one) enumerated for per-path DLA.
const MAX_CHAINS: usize = 128;

/// The chains of heads (layers strictly increasing) of length ≤ depth, starting at a layer
/// ≥ `from`; depth is the largest that keeps the count within [`MAX_CHAINS`].
fn chains(n_layers: usize, n_heads: usize) -> (usize, Vec<Vec<(usize, usize)>>) {
    let all = |depth: usize| {
        let mut out: Vec<Vec<(usize, usize)>> = vec![vec![]];
        let mut frontier = out.clone();
        for _ in 0..depth {
            let mut next = Vec::new();
            for c in &frontier {
                let start = c.last().map_or(0, |&(l, _)| l + 1);
                for l in start..n_layers {
                    for h in 0..n_heads {
                        let mut d = c.clone();
                        d.push((l, h));
                        next.push(d);
                    }
                }
            }
            out.extend(next.iter().cloned());
            frontier = next;
        }
        out
    };
    let mut depth = n_layers;
    loop {
        let c = all(depth);
        if c.len() <= MAX_CHAINS || depth == 0 {
            return (depth, c);
        }
        depth -= 1;
    }
}

fn label(src: &str, chain: &[(usize, usize)]) -> String {
    let mut s = src.to_string();
    for (l, h) in chain {
        s.push_str(&format!(" → L{l}H{h}"));
    }
    if chain.is_empty() {
        s.push_str(" (direct)");
    }
    s
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// A source of the residual stream for per-path DLA.
struct Source {
    name: String,
    /// first layer whose heads can read it
    from: usize,
    /// Some(vector) when the same at every position, else read from the cache hook
    constant: Option<Vec<f32>>,
    hook: String,
}

/// DLA of the correct logit on a cache of task sequences (see the module doc). `pw` must
/// be the (processed) weights the cache was run with; the cache must hold every hook
/// ([`super::run_with_cache`]).
pub fn direct_logit_attribution(
    pw: &Weights,
    task: &TaskSpec,
    cache: &ActivationCache,
) -> Result<DlaReport> {
    let cfg = &pw.cfg;
    let (c, nl, nh, v) = (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_vocab_out);
    let t = cache.seq_len;
    if t != task.seq_len() {
        return Err(Error::config(
            "tokens",
            format!(
                "the cache holds sequences of {t} tokens, the task's are {}",
                task.seq_len()
            ),
        ));
    }
    let w_u = Mat::new(c, v, pw.get("unembed.W_U")?.to_vec())?.transpose(); // (V, C): row t = W_U[:, t]
    let b_u = pw.get("unembed.b_U")?;
    let preds = task.pred_positions();
    // (b, p, target) for every scored pair
    let pairs: Vec<(usize, usize, usize)> = (0..cache.batch)
        .flat_map(|b| preds.iter().map(move |&p| (b, p)))
        .map(|(b, p)| (b, p, cache.tokens[b * t + p + 1] as usize))
        .collect();
    let n = pairs.len().max(1) as f64;
    let sf = |b: usize, p: usize| cache.ln_scale("ln_final", b, p) as f64;

    // --- per component
    let mut components = Vec::new();
    let mut per_hook = |label: String, hook: &str, slot: Option<(usize, usize)>| -> Result<f64> {
        let a = cache.get(hook)?;
        let mut s = 0.0;
        for &(b, p, tg) in &pairs {
            let row = match slot {
                // hook_result (B, T, NH, C): head h
                Some((h, nh)) => &a.data[((b * t + p) * nh + h) * c..][..c],
                None => cache.at(hook, b, p)?,
            };
            s += dot(row, w_u.row(tg)) / sf(b, p);
        }
        components.push(Attribution { label, mean: s / n });
        Ok(s / n)
    };
    let mut total = per_hook("embed".into(), "hook_embed", None)?;
    total += per_hook("pos_embed".into(), "hook_pos_embed", None)?;
    for l in 0..nl {
        for h in 0..nh {
            total += per_hook(format!("L{l}H{h}"), &act_name("result", l), Some((h, nh)))?;
        }
        if cfg.d_mlp.is_some() {
            total += per_hook(format!("MLP{l}"), &act_name("mlp_out", l), None)?;
        }
    }
    let mut const_part = |label: String, vec: &[f32]| -> f64 {
        let s: f64 = pairs
            .iter()
            .map(|&(b, p, tg)| dot(vec, w_u.row(tg)) / sf(b, p))
            .sum::<f64>()
            / n;
        components.push(Attribution { label, mean: s });
        s
    };
    let mut attn_bias = Vec::new(); // Σ_h b_V W_O + b_O per layer
    for l in 0..nl {
        let b_o = pw.get(&format!("blocks.{l}.attn.b_O"))?;
        if b_o.iter().any(|&x| x != 0.0) {
            total += const_part(format!("L{l} b_O"), b_o);
        }
        let mut beta: Vec<f64> = b_o.iter().map(|&x| x as f64).collect();
        let (hs, b_v, w_o) = (
            cfg.d_head,
            pw.get(&format!("blocks.{l}.attn.b_V"))?,
            pw.get(&format!("blocks.{l}.attn.W_O"))?,
        );
        for h in 0..nh {
            for a in 0..hs {
                let bv = b_v[h * hs + a] as f64;
                if bv != 0.0 {
                    for (k, be) in beta.iter_mut().enumerate() {
                        *be += bv * w_o[(h * hs + a) * c + k] as f64;
                    }
                }
            }
        }
        attn_bias.push(beta.iter().map(|&x| x as f32).collect::<Vec<f32>>());
    }
    let bias_u = pairs.iter().map(|&(_, _, tg)| b_u[tg] as f64).sum::<f64>() / n;
    components.push(Attribution {
        label: "b_U".into(),
        mean: bias_u,
    });
    total += bias_u;

    // --- per path
    let mut sources = vec![
        Source {
            name: "embed".into(),
            from: 0,
            constant: None,
            hook: "hook_embed".into(),
        },
        Source {
            name: "pos_embed".into(),
            from: 0,
            constant: None,
            hook: "hook_pos_embed".into(),
        },
    ];
    for l in 0..nl {
        if cfg.d_mlp.is_some() {
            sources.push(Source {
                name: format!("MLP{l}"),
                from: l + 1,
                constant: None,
                hook: act_name("mlp_out", l),
            });
        }
        if attn_bias[l].iter().any(|&x| x != 0.0) {
            sources.push(Source {
                name: format!("attn bias L{l}"),
                from: l + 1,
                constant: Some(attn_bias[l].clone()),
                hook: String::new(),
            });
        }
    }
    let (depth, chain_list) = chains(nl, nh);
    // Batched over samples with candle: D = src (B, T, C) @ G (C, V) gives every (position,
    // target) value at the first head's input; each head of the chain then mixes positions
    // by its cached pattern, D ← A (B, T, T) @ (D / s_ln1) (B, T, V); the path's value at
    // (b, p) is D[b, p, target] / s_f.
    let dev = Device::Cpu;
    let (b_n, c_n) = (cache.batch, c);
    let w_u_t = Tensor::from_slice(pw.get("unembed.W_U")?, (c_n, v), &dev)?; // (C, V)
    let ln1_scale = |l: usize| -> Result<Option<Tensor>> {
        match cache.get(&format!("blocks.{l}.ln1.hook_scale")) {
            Ok(sc) => Ok(Some(Tensor::from_slice(&sc.data, (b_n, t, 1), &dev)?)),
            Err(_) => Ok(None),
        }
    };
    let head_pattern = |l: usize, h: usize| -> Result<Tensor> {
        let p = cache.get(&act_name("pattern", l))?; // (B, NH, T, T)
        Ok(Tensor::from_slice(&p.data, (b_n, nh, t, t), &dev)?
            .narrow(1, h, 1)?
            .squeeze(1)?
            .contiguous()?)
    };
    let src_tensor = |src: &Source| -> Result<Tensor> {
        Ok(match &src.constant {
            Some(vec) => Tensor::from_slice(vec, (1, 1, c_n), &dev)?
                .broadcast_as((b_n, t, c_n))?
                .contiguous()?,
            None => Tensor::from_slice(&cache.get(&src.hook)?.data, (b_n, t, c_n), &dev)?,
        })
    };
    let mut paths = Vec::new();
    let mut path_total = bias_u;
    for chain in &chain_list {
        // G = W_OV^{first} … W_OV^{last} W_U, (C, V)
        let mut g = w_u_t.clone();
        for &(l, h) in chain.iter().rev() {
            let wv =
                Tensor::from_slice(&head_weight(pw, l, h, "W_V")?.data, (c_n, cfg.d_head), &dev)?;
            let wo =
                Tensor::from_slice(&head_weight(pw, l, h, "W_O")?.data, (cfg.d_head, c_n), &dev)?;
            g = wv.matmul(&wo.matmul(&g)?)?;
        }
        for src in sources
            .iter()
            .filter(|s| chain.first().is_none_or(|&(l, _)| l >= s.from))
        {
            let mut d = src_tensor(src)?
                .reshape((b_n * t, c_n))?
                .matmul(&g)?
                .reshape((b_n, t, v))?; // (B, T, V)
            for &(l, h) in chain {
                if let Some(sc) = ln1_scale(l)? {
                    d = d.broadcast_div(&sc)?;
                }
                d = head_pattern(l, h)?.matmul(&d)?;
            }
            let d = d.flatten_all()?.to_vec1::<f32>()?;
            let s: f64 = pairs
                .iter()
                .map(|&(b, p, tg)| d[(b * t + p) * v + tg] as f64 / sf(b, p))
                .sum();
            let mean = s / n;
            path_total += mean;
            paths.push(Attribution {
                label: label(&src.name, chain),
                mean,
            });
        }
    }
    if depth < nl {
        paths.push(Attribution {
            label: format!("longer paths (through more than {depth} heads)"),
            mean: total - path_total,
        });
    }
    paths.push(Attribution {
        label: "b_U".into(),
        mean: bias_u,
    });
    Ok(DlaReport {
        pairs: pairs.len(),
        logit: total,
        components,
        paths,
        path_depth: depth,
    })
}
