//! The forward pass over the [`Graph`]: every receiver's input is assembled from its edges,
//! so that any edge can carry a different value than the run's own sender output.
//!
//! Edge s → r carries `alt_s + m[r, s] · (out_s − alt_s)`, where `out_s` is sender s's
//! output in this run and `alt_s` a fixed replacement (the corrupted run's output, a mean,
//! a resample; zero when none is given). m = 1 on every edge is the model itself, m = 0
//! replaces the edge. m is a tensor, so autograd gives ∂metric/∂m per edge (attribution).
//! On a neuron graph ([`GraphOptions::neurons`]) each MLP's stage yields one sender per
//! neuron (post_n · W_out[n, :]), so every method on edges works on neurons unchanged; the
//! cost grows with the senders (each run stacks every sender's (B, T, C) output).
//!
//! Letters: B batch, T positions, P scored positions, C d_model, NH n_heads, HS d_head,
//! V d_vocab_out, M d_mlp, R receivers, S senders.

use super::graph::{Circuit, Graph, GraphOptions};
use crate::error::{Error, Result};
use crate::model::{ActFn, ModelConfig, Positions, Weights};
use crate::reference::forward::{causal_mask, softmax_forward};
use candle_core::{DType, Device, Tensor, D};
use std::collections::HashMap;

/// A model's weights as tensors, with its graph and scored positions.
pub struct GraphModel {
    pub cfg: ModelConfig,
    pub graph: Graph,
    pub dtype: DType,
    params: HashMap<String, Tensor>,
    /// (P,) the scored positions
    pred: Tensor,
}

/// One run: the logits at the scored positions and every sender's output.
pub struct GraphRun {
    /// (B, P, V)
    pub logits: Tensor,
    /// per sender (B, T, C)
    pub outs: Vec<Tensor>,
    /// per sender (B, T, C): out − alt, what a mask entry scales
    diffs: Vec<Tensor>,
}

impl GraphModel {
    /// The model `w` scored at `pred_positions`, computing in `dtype` (F32 or F64).
    pub fn new(w: &Weights, pred_positions: &[usize], dtype: DType) -> Result<Self> {
        Self::with_options(w, pred_positions, dtype, GraphOptions::default())
    }

    /// [`new`](Self::new) on the graph `opts` asks for (e.g. every MLP neuron a sender).
    pub fn with_options(
        w: &Weights,
        pred_positions: &[usize],
        dtype: DType,
        opts: GraphOptions,
    ) -> Result<Self> {
        w.cfg.validate()?;
        if let Some(&p) = pred_positions.iter().find(|&&p| p >= w.cfg.n_ctx) {
            return Err(Error::config(
                "positions",
                format!("scored position {p} is outside n_ctx {}", w.cfg.n_ctx),
            ));
        }
        let mut params = HashMap::new();
        for p in &w.table.params {
            let t = Tensor::from_slice(
                &w.data[p.offset..p.offset + p.len],
                &p.shape[..],
                &Device::Cpu,
            )?;
            params.insert(p.name.clone(), t.to_dtype(dtype)?);
        }
        let pred: Vec<u32> = pred_positions.iter().map(|&p| p as u32).collect();
        Ok(GraphModel {
            cfg: w.cfg.clone(),
            graph: Graph::of_with(&w.cfg, opts),
            dtype,
            params,
            pred: Tensor::from_vec(pred, pred_positions.len(), &Device::Cpu)?,
        })
    }

    fn p(&self, name: &str) -> &Tensor {
        // every name asked for is in the table of this config
        &self.params[name]
    }

    /// The mask (R, S) of a circuit: 1 on its edges, 0 elsewhere.
    pub fn mask(&self, c: &Circuit) -> Result<Tensor> {
        let g = &self.graph;
        if c.edges.len() != g.edges.len() {
            return Err(Error::config(
                "circuit",
                format!(
                    "{} edges given, the model's graph has {}",
                    c.edges.len(),
                    g.edges.len()
                ),
            ));
        }
        let (r, s) = (g.receivers.len(), g.senders.len());
        let mut m = vec![0.0f64; r * s];
        for (e, edge) in g.edges.iter().enumerate() {
            if c.edges[e] {
                m[edge.receiver * s + edge.sender] = 1.0;
            }
        }
        Ok(Tensor::from_vec(m, (r, s), &Device::Cpu)?.to_dtype(self.dtype)?)
    }

    /// A mask (R, S) with `value` everywhere.
    pub fn uniform_mask(&self, value: f64) -> Result<Tensor> {
        let (r, s) = (self.graph.receivers.len(), self.graph.senders.len());
        Ok((Tensor::ones((r, s), self.dtype, &Device::Cpu)? * value)?)
    }

    /// Runs tokens (B, T) with edge mask `mask` (R, S) and replacements `alt` (per sender,
    /// (B, T, C)); `alt = None` replaces by zero.
    pub fn run(
        &self,
        tokens: &[u32],
        batch: usize,
        mask: &Tensor,
        alt: Option<&[Tensor]>,
    ) -> Result<GraphRun> {
        let t = self.cfg.check_tokens(tokens, batch)?;
        let c = self.cfg.d_model;
        let tok = Tensor::from_slice(tokens, batch * t, &Device::Cpu)?;
        let mut outs = vec![self
            .p("embed.W_E")
            .index_select(&tok, 0)?
            .reshape((batch, t, c))?];
        if self.cfg.positional_embedding_type != Positions::Shortformer {
            let pos = self.p("pos_embed.W_pos").narrow(0, 0, t)?;
            outs.push(
                pos.unsqueeze(0)?
                    .broadcast_as((batch, t, c))?
                    .contiguous()?,
            );
        }
        let diffs = (0..outs.len())
            .map(|i| self.diff(&outs, alt, i))
            .collect::<Result<_>>()?;
        self.run_stages((outs, diffs), 0, mask, alt)
    }

    /// Reruns `prev` (a run of the same inputs and `alt`) with a mask that differs from
    /// prev's only in rows ≥ receiver `r`: the senders before r's layer are unchanged and
    /// reused, only r's stage and those after it are computed.
    pub fn rerun_from(
        &self,
        prev: &GraphRun,
        r: usize,
        mask: &Tensor,
        alt: Option<&[Tensor]>,
    ) -> Result<GraphRun> {
        let n = self.graph.avail[r];
        let pre = (prev.outs[..n].to_vec(), prev.diffs[..n].to_vec());
        self.run_stages(pre, self.stage_of(r), mask, alt)
    }

    /// The stage of receiver r: per layer its attention (q, k, v of every head), then
    /// its MLP; the logits last.
    fn stage_of(&self, r: usize) -> usize {
        let nh = self.cfg.n_heads;
        let per_layer = if self.cfg.d_mlp.is_some() { 2 } else { 1 };
        let (mut r0, mut k) = (0, 0);
        for _ in 0..self.cfg.n_layers {
            for rg in [3 * nh, 1].into_iter().take(per_layer) {
                if r < r0 + rg {
                    return k;
                }
                (r0, k) = (r0 + rg, k + 1);
            }
        }
        k
    }

    /// Sender i's out − alt (out itself when alt is zero).
    fn diff(&self, outs: &[Tensor], alt: Option<&[Tensor]>, i: usize) -> Result<Tensor> {
        Ok(match alt {
            Some(a) => (&outs[i] - &a[i])?,
            None => outs[i].clone(),
        })
    }

    /// The stages from `k0` on, given the outputs and diffs of every sender before stage k0.
    fn run_stages(
        &self,
        (mut outs, mut diffs): (Vec<Tensor>, Vec<Tensor>),
        k0: usize,
        mask: &Tensor,
        alt: Option<&[Tensor]>,
    ) -> Result<GraphRun> {
        let c = self.cfg.d_model;
        // (B, T, C) or (C): the biases b_O, b_out so far plus every ablation value so far
        let mut base = Tensor::zeros(c, self.dtype, &Device::Cpu)?;
        if let Some(a) = alt {
            for ai in &a[..diffs.len()] {
                base = base.broadcast_add(ai)?;
            }
        }
        let (mut r0, mut k) = (0, 0);
        let nh = self.cfg.n_heads;
        let push = |outs: &mut Vec<Tensor>, diffs: &mut Vec<Tensor>, base: &mut Tensor, o| {
            outs.push(o);
            diffs.push(self.diff(outs, alt, outs.len() - 1)?);
            if let Some(a) = alt {
                *base = base.broadcast_add(&a[outs.len() - 1])?;
            }
            Result::Ok(())
        };
        for l in 0..self.cfg.n_layers {
            if k >= k0 {
                let x = self.inputs(&diffs, mask, r0, 3 * nh, &base)?; // (3NH, B, T, C)
                for o in self.attention(&x, l)? {
                    push(&mut outs, &mut diffs, &mut base, o)?;
                }
            }
            base = base.broadcast_add(self.p(&format!("blocks.{l}.attn.b_O")))?;
            (r0, k) = (r0 + 3 * nh, k + 1);
            if self.cfg.d_mlp.is_some() {
                if k >= k0 {
                    let x = self.inputs(&diffs, mask, r0, 1, &base)?; // (1, B, T, C)
                    for o in self.mlp_senders(&x.squeeze(0)?, l)? {
                        push(&mut outs, &mut diffs, &mut base, o)?;
                    }
                }
                base = base.broadcast_add(self.p(&format!("blocks.{l}.mlp.b_out")))?;
                (r0, k) = (r0 + 1, k + 1);
            }
        }
        let x = self.inputs(&diffs, mask, r0, 1, &base)?.squeeze(0)?; // (B, T, C)
        let logits = self.unembed(&x)?;
        Ok(GraphRun {
            logits,
            outs,
            diffs,
        })
    }

    /// Inputs (RG, B, T, C) of receivers r0..r0+rg, which all read the senders in `diffs`
    /// (per sender (B, T, C)); `base` (B, T, C) or (C) is added to each.
    fn inputs(
        &self,
        diffs: &[Tensor],
        mask: &Tensor,
        r0: usize,
        rg: usize,
        base: &Tensor,
    ) -> Result<Tensor> {
        let n = diffs.len();
        let (b, t, c) = diffs[0].dims3()?;
        let d = Tensor::stack(diffs, 0)?; // (S', B, T, C)
        let m = mask.narrow(0, r0, rg)?.narrow(1, 0, n)?; // (RG, S')
        let x = m
            .matmul(&d.reshape((n, b * t * c))?)?
            .reshape((rg, b, t, c))?;
        Ok(x.broadcast_add(base)?)
    }

    /// TL's LayerNorm over the last axis with `{pre}.w`, `{pre}.b`, or x itself without LN.
    fn ln(&self, x: &Tensor, pre: &str) -> Result<Tensor> {
        if self.cfg.normalization_type.is_none() {
            return Ok(x.clone());
        }
        let x = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let scale = (x.sqr()?.mean_keepdim(D::Minus1)? + crate::model::config::LN_EPS)?.sqrt()?;
        let y = x.broadcast_div(&scale)?;
        Ok(y.broadcast_mul(self.p(&format!("{pre}.w")))?
            .broadcast_add(self.p(&format!("{pre}.b")))?)
    }

    /// Layer l's heads on inputs x (3NH, B, T, C) (q, k, v per head); returns each head's
    /// output z W_O[h] (B, T, C).
    fn attention(&self, x: &Tensor, l: usize) -> Result<Vec<Tensor>> {
        let (_, b, t, c) = x.dims4()?;
        let (nh, hs) = (self.cfg.n_heads, self.cfg.d_head);
        let x = self.ln(&x.reshape((nh, 3, b * t, c))?, &format!("blocks.{l}.ln1"))?;
        let pre = format!("blocks.{l}.attn");
        let proj = |i: usize, n: &str, pos: bool| -> Result<Tensor> {
            let mut xi = x.narrow(1, i, 1)?.squeeze(1)?; // (NH, B*T, C)
            if pos && self.cfg.positional_embedding_type == Positions::Shortformer {
                let wp = self.p("pos_embed.W_pos").narrow(0, 0, t)?; // (T, C)
                xi = xi
                    .reshape((nh, b, t, c))?
                    .broadcast_add(&wp)?
                    .reshape((nh, b * t, c))?;
            }
            let w = self.p(&format!("{pre}.W_{n}")); // (NH, C, HS)
            let bias = self.p(&format!("{pre}.b_{n}")).unsqueeze(1)?; // (NH, 1, HS)
            Ok(xi
                .matmul(w)?
                .broadcast_add(&bias)?
                .reshape((nh * b, t, hs))?)
        };
        let (q, k, v) = (
            proj(0, "Q", true)?,
            proj(1, "K", true)?,
            proj(2, "V", false)?,
        );
        let mask = causal_mask(t, &Device::Cpu)?.to_dtype(self.dtype)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (hs as f64).sqrt()))?;
        let pattern = softmax_forward(&scores.broadcast_add(&mask)?)?; // (NH*B, T, T)
        let z = pattern.matmul(&v)?.reshape((nh, b * t, hs))?;
        let out = z.matmul(self.p(&format!("{pre}.W_O")))?; // (NH, B*T, C)
        (0..nh)
            .map(|h| Ok(out.narrow(0, h, 1)?.reshape((b, t, c))?))
            .collect()
    }

    /// The sender outputs of layer l's MLP on x (B, T, C): the MLP's output (B, T, C), or
    /// in a neuron graph every neuron's post_n · W_out[n, :] (M of (B, T, C)); no b_out.
    fn mlp_senders(&self, x: &Tensor, l: usize) -> Result<Vec<Tensor>> {
        if !self.graph.has_neurons() {
            return Ok(vec![self.mlp(x, l, false)?]);
        }
        let (b, t, c) = x.dims3()?;
        let post = self.mlp(x, l, true)?; // (B*T, M)
        let w_out = self.p(&format!("blocks.{l}.mlp.W_out")); // (M, C)
        let m = post.dim(1)?;
        // (M, B*T, C): neuron n's column times its row of W_out
        let all = post
            .t()?
            .unsqueeze(2)?
            .broadcast_mul(&w_out.unsqueeze(1)?)?;
        (0..m)
            .map(|n| Ok(all.narrow(0, n, 1)?.reshape((b, t, c))?))
            .collect()
    }

    /// Layer l's MLP on x (B, T, C), without b_out: (B, T, C); or with `post_only` its
    /// activations (B*T, M) before W_out.
    fn mlp(&self, x: &Tensor, l: usize, post_only: bool) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let x = self
            .ln(x, &format!("blocks.{l}.ln2"))?
            .reshape((b * t, c))?;
        let pre = format!("blocks.{l}.mlp");
        let a = x
            .matmul(self.p(&format!("{pre}.W_in")))?
            .broadcast_add(self.p(&format!("{pre}.b_in")))?;
        let post = match self.cfg.act_fn.unwrap_or(ActFn::Relu) {
            ActFn::Relu => a.relu()?,
            ActFn::Gelu => a.gelu_erf()?,
            ActFn::GeluNew => a.gelu()?,
            ActFn::Solu => (&a * softmax_forward(&a)?)?,
        };
        if post_only {
            return Ok(post);
        }
        Ok(post
            .matmul(self.p(&format!("{pre}.W_out")))?
            .reshape((b, t, c))?)
    }

    /// The logits (B, P, V) at the scored positions of the residual stream x (B, T, C).
    fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.ln(&x.index_select(&self.pred, 1)?, "ln_final")?; // (B, P, C)
        let (b, p, c) = x.dims3()?;
        let y = x.reshape((b * p, c))?.matmul(self.p("unembed.W_U"))?;
        let y = y.broadcast_add(self.p("unembed.b_U"))?;
        Ok(y.reshape((b, p, self.cfg.d_vocab_out))?)
    }
}
