//! The forward pass of the model family in candle, composed from basic ops so that
//! autograd reaches every parameter (candle's fused `softmax_last_dim` and fast
//! `layer_norm` have no backward). Every activation passes through a hook point named as
//! in TransformerLens, so one code path serves training, `run_with_cache`, ablation and
//! patching.
//!
//! Letters: B batch, T positions, C d_model, NH n_heads, HS d_head, V d_vocab_out, M d_mlp.

use crate::backend::Batch;
use crate::error::Result;
use crate::model::{ActFn, ModelConfig};
use candle_core::{DType, Device, Tensor, D};

/// Sees (and may replace) activations at TransformerLens hook points.
pub trait Hooks {
    /// Whether `name` is wanted: activations nobody wants (e.g. `hook_result`) are not built.
    fn wants(&self, name: &str) -> bool;
    /// Called with the activation at `name`; the returned tensor replaces it.
    fn hook(&mut self, name: &str, t: Tensor) -> Result<Tensor>;
}

/// No hooks: the training path.
pub struct NoHooks;

impl Hooks for NoHooks {
    fn wants(&self, _: &str) -> bool {
        false
    }
    fn hook(&mut self, _: &str, t: Tensor) -> Result<Tensor> {
        Ok(t)
    }
}

/// Records every activation under its hook name (TL's `run_with_cache`).
#[derive(Default)]
pub struct CacheHooks {
    pub cache: std::collections::BTreeMap<String, Tensor>,
}

impl Hooks for CacheHooks {
    fn wants(&self, _: &str) -> bool {
        true
    }
    fn hook(&mut self, name: &str, t: Tensor) -> Result<Tensor> {
        self.cache.insert(name.to_string(), t.clone());
        Ok(t)
    }
}

fn hook(h: &mut dyn Hooks, name: &str, t: Tensor) -> Result<Tensor> {
    if h.wants(name) {
        h.hook(name, t)
    } else {
        Ok(t)
    }
}

/// The tensors of one model, looked up by TL key (candle `Var`s for training, or plain
/// tensors for inference).
pub struct ParamSet<'a> {
    pub cfg: &'a ModelConfig,
    pub get: &'a dyn Fn(&str) -> Tensor,
    /// True for parameters that are frozen and exactly zero (the default biases): adding
    /// them is skipped, which changes no value and saves a broadcast op and its backward.
    pub is_zero: &'a dyn Fn(&str) -> bool,
}

impl ParamSet<'_> {
    /// x + the named bias (broadcast), or x itself when that bias is a frozen zero.
    fn add_bias(&self, x: Tensor, name: &str) -> Result<Tensor> {
        if (self.is_zero)(name) {
            Ok(x)
        } else {
            Ok(x.broadcast_add(&(self.get)(name))?)
        }
    }
}

/// softmax over the last axis, composed (max is detached: softmax is shift-invariant, so
/// the gradient is unchanged and the graph is smaller).
pub fn softmax_forward(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&s)?)
}

/// log-softmax over the last axis, composed.
pub fn log_softmax_forward(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let d = x.broadcast_sub(&max)?;
    let lse = d.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(d.broadcast_sub(&lse)?)
}

/// TL's LayerNorm: (x − mean) / sqrt(mean((x − mean)²) + eps) · w + b over the last axis.
/// Hooks `{prefix}.hook_scale` (B, T, 1) and `{prefix}.hook_normalized` (B, T, C).
pub fn layernorm_forward(
    h: &mut dyn Hooks,
    prefix: &str,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
) -> Result<Tensor> {
    let x = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let scale = (x.sqr()?.mean_keepdim(D::Minus1)? + crate::model::config::LN_EPS)?.sqrt()?;
    let scale = hook(h, &format!("{prefix}.hook_scale"), scale)?;
    let y = x
        .broadcast_div(&scale)?
        .broadcast_mul(w)?
        .broadcast_add(b)?;
    hook(h, &format!("{prefix}.hook_normalized"), y)
}

/// The causal mask added to attention scores: (T, T), 0 on and below the diagonal, −∞ above.
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t * t)
        .map(|i| {
            if i % t > i / t {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Ok(Tensor::from_vec(m, (t, t), device)?)
}

/// x (B, T, C) @ W [NH, C, HS] + b [NH, HS] → (B, T, NH, HS), for W = `{pre}.W_{n}`.
fn head_proj(p: &ParamSet, pre: &str, n: &str, x: &Tensor) -> Result<Tensor> {
    let (bsz, t, c) = x.dims3()?;
    let w = (p.get)(&format!("{pre}.W_{n}"));
    let (nh, _, hs) = w.dims3()?;
    let w2 = if nh == 1 {
        w.reshape((c, hs))?
    } else {
        w.permute((1, 0, 2))?.reshape((c, nh * hs))?
    }; // (C, NH*HS)
    let y = x.reshape((bsz * t, c))?.matmul(&w2)?;
    let y = p.add_bias(y.reshape((bsz * t, nh, hs))?, &format!("{pre}.b_{n}"))?;
    Ok(y.reshape((bsz, t, nh, hs))?)
}

/// (B, T, NH, HS) → (B, NH, T, HS), contiguous (a free reshape when NH = 1).
fn heads_first(x: &Tensor) -> Result<Tensor> {
    let (bsz, t, nh, hs) = x.dims4()?;
    if nh == 1 {
        Ok(x.reshape((bsz, 1, t, hs))?)
    } else {
        Ok(x.transpose(1, 2)?.contiguous()?)
    }
}

/// Multi-head causal attention of block `l`; returns attn_out (B, T, C).
/// Hooks: attn.hook_q/k/v (B, T, NH, HS), attn.hook_attn_scores (B, NH, T, T, masked with
/// −∞), attn.hook_pattern (B, NH, T, T), attn.hook_z (B, T, NH, HS), attn.hook_result
/// (B, T, NH, C, only when wanted), hook_attn_out (B, T, C).
pub fn attention_forward(
    h: &mut dyn Hooks,
    p: &ParamSet,
    l: usize,
    x: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    let pre = format!("blocks.{l}.attn");
    let g = |n: &str| (p.get)(&format!("{pre}.{n}"));
    let (bsz, t, c) = x.dims3()?;
    let (nh, hs) = (p.cfg.n_heads, p.cfg.d_head);
    // shortformer: W_pos joins the query and key inputs (after ln1), never the values
    let xqk = if p.cfg.positional_embedding_type == crate::model::Positions::Shortformer {
        x.broadcast_add(&(p.get)("pos_embed.W_pos").narrow(0, 0, t)?.unsqueeze(0)?)?
    } else {
        x.clone()
    }; // (B, T, C)
    let q = heads_first(&hook(
        h,
        &format!("{pre}.hook_q"),
        head_proj(p, &pre, "Q", &xqk)?,
    )?)?; // (B, NH, T, HS)
    let k = heads_first(&hook(
        h,
        &format!("{pre}.hook_k"),
        head_proj(p, &pre, "K", &xqk)?,
    )?)?;
    let v = heads_first(&hook(
        h,
        &format!("{pre}.hook_v"),
        head_proj(p, &pre, "V", x)?,
    )?)?;
    let scores = (q.matmul(&k.t()?)? * (1.0 / (hs as f64).sqrt()))?; // (B, NH, T, T)
    let scores = scores.broadcast_add(mask)?;
    let scores = hook(h, &format!("{pre}.hook_attn_scores"), scores)?;
    let pattern = hook(h, &format!("{pre}.hook_pattern"), softmax_forward(&scores)?)?;
    let z = pattern.matmul(&v)?; // (B, NH, T, HS)
    let z = if nh == 1 {
        z.reshape((bsz, t, 1, hs))?
    } else {
        z.transpose(1, 2)?.contiguous()?
    }; // (B, T, NH, HS)
    let z = hook(h, &format!("{pre}.hook_z"), z)?;
    let w_o = g("W_O"); // [NH, HS, C]
    let out = if h.wants(&format!("{pre}.hook_result")) {
        // per-head outputs: (NH, B*T, HS) @ (NH, HS, C) → (NH, B*T, C) → (B, T, NH, C)
        let zh = z
            .reshape((bsz * t, nh, hs))?
            .transpose(0, 1)?
            .contiguous()?;
        let r = zh.matmul(&w_o)?.transpose(0, 1)?.reshape((bsz, t, nh, c))?;
        let r = hook(h, &format!("{pre}.hook_result"), r)?;
        r.sum(2)?
    } else {
        z.reshape((bsz * t, nh * hs))?
            .matmul(&w_o.reshape((nh * hs, c))?)?
            .reshape((bsz, t, c))?
    };
    let out = p.add_bias(out, &format!("{pre}.b_O"))?;
    hook(h, &format!("blocks.{l}.hook_attn_out"), out)
}

/// MLP of block `l`: act(x W_in + b_in) W_out + b_out. Hooks mlp.hook_pre, mlp.hook_post
/// (B, T, M), hook_mlp_out (B, T, C).
pub fn mlp_forward(h: &mut dyn Hooks, p: &ParamSet, l: usize, x: &Tensor) -> Result<Tensor> {
    let pre = format!("blocks.{l}.mlp");
    let g = |n: &str| (p.get)(&format!("{pre}.{n}"));
    let (bsz, t, c) = x.dims3()?;
    let w_in = g("W_in"); // [C, M]
    let m = w_in.dim(1)?;
    let a = p
        .add_bias(
            x.reshape((bsz * t, c))?.matmul(&w_in)?,
            &format!("{pre}.b_in"),
        )?
        .reshape((bsz, t, m))?;
    let a = hook(h, &format!("{pre}.hook_pre"), a)?;
    let post = match p.cfg.act_fn.unwrap_or(ActFn::Relu) {
        ActFn::Relu => a.relu()?,
        ActFn::Gelu => a.gelu_erf()?,
        ActFn::GeluNew => a.gelu()?,
        ActFn::Solu => (&a * softmax_forward(&a)?)?,
    };
    let post = hook(h, &format!("{pre}.hook_post"), post)?;
    let out = p
        .add_bias(
            post.reshape((bsz * t, m))?.matmul(&g("W_out"))?,
            &format!("{pre}.b_out"),
        )?
        .reshape((bsz, t, c))?;
    hook(h, &format!("blocks.{l}.hook_mlp_out"), out)
}

/// Embedding through every block and the final LayerNorm: tokens (B, T) u32 → (B, T, C).
/// Hooks: hook_embed, hook_pos_embed, blocks.{l}.hook_resid_pre / hook_resid_mid /
/// hook_resid_post, ln hooks, and those of attention and MLP.
pub fn residual_forward(h: &mut dyn Hooks, p: &ParamSet, tokens: &Tensor) -> Result<Tensor> {
    let cfg = p.cfg;
    let (bsz, t) = tokens.dims2()?;
    let w_e = (p.get)("embed.W_E");
    let c = w_e.dim(1)?;
    let embed = w_e
        .index_select(&tokens.flatten_all()?, 0)?
        .reshape((bsz, t, c))?;
    let embed = hook(h, "hook_embed", embed)?;
    let pos = (p.get)("pos_embed.W_pos").narrow(0, 0, t)?.unsqueeze(0)?; // (1, T, C)
    let pos = if h.wants("hook_pos_embed") {
        hook(h, "hook_pos_embed", pos.broadcast_as((bsz, t, c))?)?
    } else {
        pos
    };
    // shortformer: positions enter only through attention's queries and keys
    let mut resid = if cfg.positional_embedding_type == crate::model::Positions::Shortformer {
        embed
    } else {
        embed.broadcast_add(&pos)?
    };
    let mask = causal_mask(t, tokens.device())?.to_dtype(w_e.dtype())?;
    let ln = cfg.normalization_type.is_some();
    for l in 0..cfg.n_layers {
        let b = format!("blocks.{l}");
        resid = hook(h, &format!("{b}.hook_resid_pre"), resid)?;
        let x = if ln {
            layernorm_forward(
                h,
                &format!("{b}.ln1"),
                &resid,
                &(p.get)(&format!("{b}.ln1.w")),
                &(p.get)(&format!("{b}.ln1.b")),
            )?
        } else {
            resid.clone()
        };
        resid = (resid + attention_forward(h, p, l, &x, &mask)?)?;
        if cfg.d_mlp.is_some() {
            resid = hook(h, &format!("{b}.hook_resid_mid"), resid)?;
            let x = if ln {
                layernorm_forward(
                    h,
                    &format!("{b}.ln2"),
                    &resid,
                    &(p.get)(&format!("{b}.ln2.w")),
                    &(p.get)(&format!("{b}.ln2.b")),
                )?
            } else {
                resid.clone()
            };
            resid = (resid + mlp_forward(h, p, l, &x)?)?;
        }
        resid = hook(h, &format!("{b}.hook_resid_post"), resid)?;
    }
    if ln {
        resid = layernorm_forward(
            h,
            "ln_final",
            &resid,
            &(p.get)("ln_final.w"),
            &(p.get)("ln_final.b"),
        )?;
    }
    Ok(resid)
}

/// x (B, P, C) → logits (B, P, V) = x W_U + b_U.
pub fn unembed_forward(p: &ParamSet, x: &Tensor) -> Result<Tensor> {
    let (bsz, n, c) = x.dims3()?;
    let w_u = (p.get)("unembed.W_U");
    let v = w_u.dim(1)?;
    Ok(
        p.add_bias(x.reshape((bsz * n, c))?.matmul(&w_u)?, "unembed.b_U")?
            .reshape((bsz, n, v))?,
    )
}

/// Mean cross-entropy of logits (B, P, V) against targets (B, P) u32, over the scored pairs:
/// a target `Batch::IGNORE` leaves its pair out of the sum and the count (0 when none is
/// scored).
pub fn cross_entropy_forward(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let lp = log_softmax_forward(logits)?;
    let ignore = Batch::IGNORE as f64;
    let keep = targets.ne(ignore)?; // (B, P) u8
    if keep.to_dtype(DType::F32)?.min_all()?.to_scalar::<f32>()? > 0.0 {
        // every pair scored: the plain mean (bit for bit as before)
        let picked = lp.gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?; // (B, P, 1)
        return Ok(picked.mean_all()?.neg()?);
    }
    let safe = keep.where_cond(targets, &targets.zeros_like()?)?; // (B, P) ignored → class 0
    let picked = lp
        .gather(&safe.unsqueeze(D::Minus1)?, D::Minus1)?
        .squeeze(D::Minus1)?;
    let mask = keep.to_dtype(lp.dtype())?; // (B, P) 1 scored, 0 not
    let n = mask
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?
        .max(1.0);
    Ok((picked * mask)?.sum_all()?.neg()?.affine(1.0 / n, 0.0)?)
}

/// Token ids (B, T) as a u32 tensor.
pub fn tokens_tensor(tokens: &[u32], batch: usize, device: &Device) -> Result<Tensor> {
    let t = tokens.len() / batch.max(1);
    Ok(Tensor::from_slice(tokens, (batch, t), device)?.to_dtype(DType::U32)?)
}
