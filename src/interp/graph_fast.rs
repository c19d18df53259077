//! The graph forward of [`graph_forward`](super::graph_forward) and its backward with
//! respect to the edge mask, hand-written in f32 on the CPU engine's kernels
//! ([`crate::cpu::kernels`]). It computes the same thing as the candle version, which stays
//! the reference (f64, autograd, every graph); this one is for speed with small shapes
//! (the page's wasm, one thread), where candle's per-op cost dominates.
//!
//! Edge s → r carries `alt_s + m[r, s] · (out_s − alt_s)`. The backward gives, per receiver
//! r, g_r = ∂metric/∂x_r (its input before LayerNorm), and ∂metric/∂m[r, s] =
//! (out_s − alt_s) · g_r; a sender's output gets Σ_r m[r, s] g_r.
//!
//! Savings over the candle forward: the last layer computes its queries, head outputs and
//! MLP only at the scored positions (nothing else reaches the logits) unless `full` rows
//! are asked for; a sender with no edge in the mask is not computed at all (its edges all
//! carry alt); no weight gradients are made.
//!
//! Only the node-level graph ([`Graph::of`]: embeddings, heads, MLPs, logits) is supported;
//! [`FastModel::new`] returns None for anything else and callers use the candle path.
//!
//! Letters: B batch, T positions, TQ computed query rows, P scored positions, C d_model,
//! NH n_heads, HS d_head, M d_mlp, V d_vocab_out, R receivers, S senders.

use super::graph::{Graph, NodeKind, Port};
use super::graph_forward::{GraphModel, GraphRun};
use crate::cpu::kernels::activation::{activation_backward, activation_forward};
use crate::cpu::kernels::attention::{attention_backward, attention_forward, AttnDims};
use crate::cpu::kernels::layernorm::{layernorm_backward, layernorm_forward};
use crate::cpu::kernels::matmul::{matmul_backward, matmul_forward};
use crate::cpu::kernels::{axpy, dot};
use crate::error::{Error, Result};
use crate::model::{ActFn, ModelConfig, Positions, Weights};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

/// A model's weights as f32 slices, with its graph's layout and scored positions.
pub struct FastModel {
    cfg: ModelConfig,
    params: HashMap<String, Vec<f32>>,
    /// (P,) the scored positions, in the metric's order
    pred: Vec<usize>,
    /// the scored positions ascending without repeats: the last layer's computed rows
    last_rows: Vec<usize>,
    /// receiver r reads senders 0..avail[r]
    avail: Vec<usize>,
    n_senders: usize,
}

/// What a LayerNorm's backward needs: its input rows (N, C), mean and rstd (N).
struct LnTape {
    x: Vec<f32>,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

/// What one layer's backward needs.
struct LayerTape {
    /// the positions of the computed query (and MLP) rows
    rows: Vec<usize>,
    /// per head whether it was computed
    used: Vec<bool>,
    /// per head and port (3h + p): the LayerNorm of its input
    ln1: Vec<Option<LnTape>>,
    /// q, z (NH, B, TQ, HS); k, v (NH, B, T, HS); lse (NH, B, TQ)
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    lse: Vec<f32>,
    /// the MLP's LayerNorm and pre-activation (B·TQ, M), when computed
    mlp: Option<(Option<LnTape>, Vec<f32>)>,
}

/// One run: the logits at the scored positions and every sender's output.
pub struct FastRun {
    /// (B, P, V)
    pub logits: Vec<f32>,
    /// per sender (B, T, C), zero at rows not computed; empty for a sender not computed
    pub outs: Vec<Vec<f32>>,
    layers: Vec<LayerTape>,
    final_ln: Option<LnTape>,
    batch: usize,
}

/// The state of a forward between stages.
struct Stream<'a> {
    outs: Vec<Vec<f32>>,
    /// per sender out − alt (empty when not computed: every edge carries alt)
    diffs: Vec<Vec<f32>>,
    /// (B, T, C) the biases so far plus every alt so far
    base: Vec<f32>,
    alt: Option<&'a [Vec<f32>]>,
    b: usize,
    t: usize,
}

impl Stream<'_> {
    /// Adds sender output `out` (empty: not computed).
    fn push(&mut self, out: Vec<f32>) {
        let i = self.outs.len();
        let diff = match (self.alt, out.is_empty()) {
            (_, true) => Vec::new(),
            (None, false) => out.clone(),
            (Some(a), false) => out.iter().zip(&a[i]).map(|(o, a)| o - a).collect(),
        };
        if let Some(a) = self.alt {
            self.base.iter_mut().zip(&a[i]).for_each(|(b, a)| *b += a);
        }
        self.outs.push(out);
        self.diffs.push(diff);
    }

    /// base += bias (C) on every row.
    fn add_bias(&mut self, bias: &[f32]) {
        let c = bias.len();
        for row in self.base.chunks_exact_mut(c) {
            row.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
        }
    }

    /// The input (B, T, C) of a receiver with mask row `m` (S).
    fn input(&self, m: &[f32]) -> Vec<f32> {
        let mut x = self.base.clone();
        for (d, &w) in self.diffs.iter().zip(m) {
            if w != 0.0 && !d.is_empty() {
                axpy(&mut x, w, d);
            }
        }
        x
    }
}

/// Rows `rows` (positions) of x (B, T, C): (B, len, C).
fn gather(x: &[f32], rows: &[usize], t: usize, c: usize) -> Vec<f32> {
    let b = x.len() / (t * c);
    let mut out = Vec::with_capacity(b * rows.len() * c);
    for bi in 0..b {
        for &p in rows {
            out.extend_from_slice(&x[(bi * t + p) * c..(bi * t + p + 1) * c]);
        }
    }
    out
}

/// y (B, T, C) += x (B, len, C) at positions `rows`.
fn scatter_add(y: &mut [f32], x: &[f32], rows: &[usize], t: usize, c: usize) {
    for (i, xr) in x.chunks_exact(c).enumerate() {
        let (bi, p) = (i / rows.len(), rows[i % rows.len()]);
        let yr = &mut y[(bi * t + p) * c..(bi * t + p + 1) * c];
        yr.iter_mut().zip(xr).for_each(|(y, x)| *y += x);
    }
}

/// erf in f32 by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): libm's f64 erf was a
/// sixth of a GELU model's time here.
fn erf32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * (-a * a).exp()).copysign(x)
}

/// out = gelu(inp) = x Φ(x) (TL's "gelu", the exact form), elementwise.
fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = 0.5 * x * (1.0 + erf32(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// dinp = dout · (Φ(x) + x φ(x)) from the pre-activation inp, elementwise (written).
fn gelu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((d, &g), &x) in dinp.iter_mut().zip(dout).zip(inp) {
        let cdf = 0.5 * (1.0 + erf32(x * std::f32::consts::FRAC_1_SQRT_2));
        *d = g * (cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp());
    }
}

/// The senders and receivers the fast path expects for `cfg`, with each receiver's avail.
fn expected_layout(cfg: &ModelConfig) -> (Vec<NodeKind>, Vec<(NodeKind, Port, usize)>) {
    let mut s = vec![NodeKind::Embed];
    if cfg.positional_embedding_type != Positions::Shortformer {
        s.push(NodeKind::PosEmbed);
    }
    let mut r = Vec::new();
    for layer in 0..cfg.n_layers {
        let before = s.len();
        for head in 0..cfg.n_heads {
            let k = NodeKind::Head { layer, head };
            s.push(k);
            r.extend([Port::Q, Port::K, Port::V].map(|p| (k, p, before)));
        }
        if cfg.d_mlp.is_some() {
            r.push((NodeKind::Mlp { layer }, Port::In, s.len()));
            s.push(NodeKind::Mlp { layer });
        }
    }
    r.push((NodeKind::Logits, Port::In, s.len()));
    (s, r)
}

impl FastModel {
    /// The fast model of `w` scored at `pred_positions`, or None when `g` is not the
    /// node-level graph of its config (then use the candle path).
    pub fn new(w: &Weights, pred_positions: &[usize], g: &Graph) -> Option<Self> {
        let (s, r) = expected_layout(&w.cfg);
        let got_s: Vec<NodeKind> = g.senders.iter().map(|&n| g.nodes[n].kind).collect();
        let got_r: Vec<_> = (g.receivers.iter().zip(&g.avail))
            .map(|(x, &a)| (g.nodes[x.node].kind, x.port, a))
            .collect();
        let ok = got_s == s && got_r == r && g.edges.len() == r.iter().map(|x| x.2).sum::<usize>();
        if !ok || pred_positions.iter().any(|&p| p >= w.cfg.n_ctx) {
            return None;
        }
        let params = (w.table.params.iter())
            .map(|p| (p.name.clone(), w.data[p.offset..p.offset + p.len].to_vec()))
            .collect();
        let mut last_rows = pred_positions.to_vec();
        last_rows.sort_unstable();
        last_rows.dedup();
        Some(FastModel {
            cfg: w.cfg.clone(),
            params,
            pred: pred_positions.to_vec(),
            last_rows,
            avail: g.avail.clone(),
            n_senders: g.senders.len(),
        })
    }

    fn p(&self, name: &str) -> &[f32] {
        // every name asked for is in the table of this config
        &self.params[name]
    }

    /// (R, S) rows of the mask per receiver; checks its size.
    fn check_mask(&self, mask: &[f32]) -> Result<()> {
        let want = self.avail.len() * self.n_senders;
        if mask.len() != want {
            return Err(Error::config(
                "mask",
                format!("{} mask entries given, the graph needs {want}", mask.len()),
            ));
        }
        Ok(())
    }

    /// Whether sender s has an edge with a non-zero mask entry.
    fn sender_used(&self, mask: &[f32], s: usize) -> bool {
        let sn = self.n_senders;
        (self.avail.iter().enumerate()).any(|(r, &a)| s < a && mask[r * sn + s] != 0.0)
    }

    /// LayerNorm `pre` (TL's LN, or nothing without normalisation) of rows x (N, C).
    fn ln_forward(&self, x: Vec<f32>, pre: &str) -> (Vec<f32>, Option<LnTape>) {
        if self.cfg.normalization_type.is_none() {
            return (x, None);
        }
        let c = self.cfg.d_model;
        let n = x.len() / c;
        let (mut y, mut mean, mut rstd) = (vec![0f32; n * c], vec![0f32; n], vec![0f32; n]);
        let (w, b) = (self.p(&format!("{pre}.w")), self.p(&format!("{pre}.b")));
        layernorm_forward(&mut y, &mut mean, &mut rstd, &x, w, b, n, c);
        (y, Some(LnTape { x, mean, rstd }))
    }

    /// dx (N, C) from dy (N, C) through LayerNorm `pre` (identity without normalisation).
    fn ln_backward(&self, dy: Vec<f32>, tape: &Option<LnTape>, pre: &str) -> Vec<f32> {
        let Some(t) = tape else { return dy };
        let c = self.cfg.d_model;
        let n = dy.len() / c;
        let (mut dx, mut dw, mut db) = (vec![0f32; n * c], vec![0f32; c], vec![0f32; c]);
        let w = self.p(&format!("{pre}.w"));
        layernorm_backward(
            &mut dx, &mut dw, &mut db, &dy, &t.x, w, &t.mean, &t.rstd, n, c,
        );
        dx
    }

    /// Runs tokens (B, T) with edge mask `mask` (R, S) and replacements `alt` (per sender
    /// (B, T, C); None: zero). `full`: every row of the last layer (the senders' outputs
    /// complete), else only the scored rows. `tape`: keep what [`Self::mask_grad`] needs
    /// (then every sender is computed).
    pub fn run(
        &self,
        tokens: &[u32],
        batch: usize,
        mask: &[f32],
        alt: Option<&[Vec<f32>]>,
        full: bool,
        tape: bool,
    ) -> Result<FastRun> {
        let t = self.cfg.check_tokens(tokens, batch)?;
        self.check_mask(mask)?;
        if alt.is_some_and(|a| a.len() != self.n_senders) {
            return Err(Error::config("alt", "one replacement per sender is needed"));
        }
        let c = self.cfg.d_model;
        let mut st = Stream {
            outs: Vec::new(),
            diffs: Vec::new(),
            base: vec![0f32; batch * t * c],
            alt,
            b: batch,
            t,
        };
        let w_e = self.p("embed.W_E");
        st.push(
            tokens
                .iter()
                .flat_map(|&k| &w_e[k as usize * c..(k as usize + 1) * c])
                .copied()
                .collect(),
        );
        if self.cfg.positional_embedding_type != Positions::Shortformer {
            let pos = &self.p("pos_embed.W_pos")[..t * c];
            st.push(pos.repeat(batch));
        }
        let mut layers = Vec::new();
        let mut r0 = 0;
        for l in 0..self.cfg.n_layers {
            let rows: Vec<usize> = if full || l + 1 < self.cfg.n_layers {
                (0..t).collect()
            } else {
                self.last_rows.clone()
            };
            layers.push(self.layer_forward(&mut st, mask, l, r0, rows, tape)?);
            r0 += 3 * self.cfg.n_heads + usize::from(self.cfg.d_mlp.is_some());
        }
        let x = gather(&st.input(self.row(mask, r0)), &self.pred, t, c);
        let (y, final_ln) = self.ln_forward(x, "ln_final");
        let (n, v) = (y.len() / c, self.cfg.d_vocab_out);
        let mut logits = vec![0f32; n * v];
        matmul_forward(
            &mut logits,
            &y,
            self.p("unembed.W_U"),
            Some(self.p("unembed.b_U")),
            n,
            c,
            v,
        );
        Ok(FastRun {
            logits,
            outs: st.outs,
            layers,
            final_ln,
            batch,
        })
    }

    fn row<'m>(&self, mask: &'m [f32], r: usize) -> &'m [f32] {
        &mask[r * self.n_senders..(r + 1) * self.n_senders]
    }

    fn dims(&self, b: usize, t: usize, tq: usize) -> AttnDims {
        AttnDims {
            b,
            nh: self.cfg.n_heads,
            t,
            tq,
            hs: self.cfg.d_head,
        }
    }

    /// Layer l (receivers from r0): its heads, then its MLP, computed at query rows `rows`.
    fn layer_forward(
        &self,
        st: &mut Stream,
        mask: &[f32],
        l: usize,
        r0: usize,
        rows: Vec<usize>,
        tape: bool,
    ) -> Result<LayerTape> {
        let (c, nh, hs) = (self.cfg.d_model, self.cfg.n_heads, self.cfg.d_head);
        let (b, t, tq) = (st.b, st.t, rows.len());
        let s0 = st.outs.len();
        let used: Vec<bool> = (0..nh)
            .map(|h| tape || self.sender_used(mask, s0 + h))
            .collect();
        let pre = format!("blocks.{l}.attn");
        let (mut q, mut k, mut v) = (
            vec![0f32; nh * b * tq * hs],
            vec![0f32; nh * b * t * hs],
            vec![0f32; nh * b * t * hs],
        );
        let mut ln1 = Vec::new();
        for h in 0..nh {
            for (p, buf) in [&mut q, &mut k, &mut v].into_iter().enumerate() {
                if !used[h] {
                    ln1.push(None);
                    continue;
                }
                let rs: Vec<usize> = if p == 0 {
                    rows.clone()
                } else {
                    (0..t).collect()
                };
                let n = b * rs.len();
                let out = &mut buf[h * n * hs..(h + 1) * n * hs];
                ln1.push(self.project(out, st, mask, (l, h, p, r0 + 3 * h + p), &rs));
            }
        }
        let (mut z, mut lse) = (vec![0f32; nh * b * tq * hs], vec![0f32; nh * b * tq]);
        attention_forward(&mut z, &mut lse, &q, &k, &v, &rows, self.dims(b, t, tq));
        let w_o = self.p(&format!("{pre}.W_O"));
        for h in 0..nh {
            if !used[h] {
                st.push(Vec::new());
                continue;
            }
            let n = b * tq;
            let mut o = vec![0f32; n * c];
            matmul_forward(
                &mut o,
                &z[h * n * hs..(h + 1) * n * hs],
                &w_o[h * hs * c..(h + 1) * hs * c],
                None,
                n,
                hs,
                c,
            );
            let mut out = vec![0f32; b * t * c];
            scatter_add(&mut out, &o, &rows, t, c);
            st.push(out);
        }
        st.add_bias(self.p(&format!("{pre}.b_O")));
        let mlp = match self.cfg.d_mlp {
            Some(_) => self.mlp_forward(st, mask, l, r0 + 3 * nh, &rows, tape),
            None => None,
        };
        Ok(LayerTape {
            rows,
            used,
            ln1,
            q,
            k,
            v,
            lse,
            mlp,
        })
    }

    /// Head h's port p (0 q, 1 k, 2 v; receiver r) of layer l: its input at rows `rs`
    /// through ln1 (and W_pos for a shortformer's q and k) times W_{Q,K,V}[h] plus the
    /// bias, into `out` (B·len, HS); returns the LayerNorm's tape.
    fn project(
        &self,
        out: &mut [f32],
        st: &Stream,
        mask: &[f32],
        (l, h, p, r): (usize, usize, usize, usize),
        rs: &[usize],
    ) -> Option<LnTape> {
        let (c, hs, t) = (self.cfg.d_model, self.cfg.d_head, st.t);
        let x = st.input(self.row(mask, r));
        let x = if rs.len() < t {
            gather(&x, rs, t, c)
        } else {
            x
        };
        let (mut y, lt) = self.ln_forward(x, &format!("blocks.{l}.ln1"));
        if p < 2 && self.cfg.positional_embedding_type == Positions::Shortformer {
            self.add_pos(&mut y, rs);
        }
        let n = y.len() / c;
        let name = ["Q", "K", "V"][p];
        let pre = format!("blocks.{l}.attn");
        let (w, bias) = (
            self.p(&format!("{pre}.W_{name}")),
            self.p(&format!("{pre}.b_{name}")),
        );
        let (w, bias) = (
            &w[h * c * hs..(h + 1) * c * hs],
            &bias[h * hs..(h + 1) * hs],
        );
        matmul_forward(out, &y, w, Some(bias), n, c, hs);
        lt
    }

    /// Layer l's MLP (receiver r) at rows `rows`; returns its LayerNorm and pre-activation
    /// (B·TQ, M) when `tape`.
    fn mlp_forward(
        &self,
        st: &mut Stream,
        mask: &[f32],
        l: usize,
        r: usize,
        rows: &[usize],
        tape: bool,
    ) -> Option<(Option<LnTape>, Vec<f32>)> {
        let (b, t, c) = (st.b, st.t, self.cfg.d_model);
        let m = self.cfg.d_mlp.unwrap_or(0);
        let pre = format!("blocks.{l}.mlp");
        let mut kept = None;
        if tape || self.sender_used(mask, st.outs.len()) {
            let x = gather(&st.input(self.row(mask, r)), rows, t, c);
            let (y, lt) = self.ln_forward(x, &format!("blocks.{l}.ln2"));
            let n = b * rows.len();
            let (mut a, mut post) = (vec![0f32; n * m], vec![0f32; n * m]);
            let (w_in, b_in) = (
                self.p(&format!("{pre}.W_in")),
                self.p(&format!("{pre}.b_in")),
            );
            matmul_forward(&mut a, &y, w_in, Some(b_in), n, c, m);
            match self.act() {
                ActFn::Gelu => gelu_forward(&mut post, &a),
                act => activation_forward(&mut post, &a, act, n, m),
            }
            let mut o = vec![0f32; n * c];
            matmul_forward(
                &mut o,
                &post,
                self.p(&format!("{pre}.W_out")),
                None,
                n,
                m,
                c,
            );
            let mut out = vec![0f32; b * t * c];
            scatter_add(&mut out, &o, rows, t, c);
            st.push(out);
            kept = tape.then_some((lt, a));
        } else {
            st.push(Vec::new());
        }
        st.add_bias(self.p(&format!("{pre}.b_out")));
        kept
    }

    fn act(&self) -> ActFn {
        self.cfg.act_fn.unwrap_or(ActFn::Relu)
    }

    /// Shortformer: y (B·len, C) at positions `rows` += W_pos of each row's position.
    fn add_pos(&self, y: &mut [f32], rows: &[usize]) {
        let (c, wp) = (self.cfg.d_model, self.p("pos_embed.W_pos"));
        for (i, yr) in y.chunks_exact_mut(c).enumerate() {
            let p = rows[i % rows.len()];
            yr.iter_mut()
                .zip(&wp[p * c..(p + 1) * c])
                .for_each(|(y, w)| *y += w);
        }
    }

    /// Σ_r mask[r, s] g_r over the receivers r that read sender s: ∂metric/∂out_s (B, T, C).
    /// With `suffix` = (α, Σ g_r over the receivers after s's stage), for a mask that is α
    /// on every edge: α times that sum (the receivers reading s are exactly those).
    fn sender_grad(
        &self,
        g: &[Vec<f32>],
        mask: &[f32],
        s: usize,
        suffix: Option<(f32, &[f32])>,
    ) -> Vec<f32> {
        if let Some((a, acc)) = suffix {
            return acc.iter().map(|x| a * x).collect();
        }
        let mut out = vec![0f32; g[g.len() - 1].len()];
        for (r, gr) in g.iter().enumerate() {
            let w = mask[r * self.n_senders + s];
            if s < self.avail[r] && w != 0.0 && !gr.is_empty() {
                axpy(&mut out, w, gr);
            }
        }
        out
    }

    /// α when the mask is α on every edge.
    fn uniform(&self, mask: &[f32]) -> Option<f32> {
        let sn = self.n_senders;
        let mut edges = (self.avail.iter().enumerate())
            .flat_map(|(r, &a)| mask[r * sn..r * sn + a].iter().copied());
        let a = edges.next()?;
        edges.all(|x| x == a).then_some(a)
    }

    /// ∂metric/∂mask (R, S) of a run made with `tape`, from dlogits (B, P, V) =
    /// ∂metric/∂logits; `mask` as given to the run, `alt` the replacements whose
    /// difference from the run's outputs a mask entry scales (None: zero).
    pub fn mask_grad(
        &self,
        run: &FastRun,
        mask: &[f32],
        alt: Option<&[Vec<f32>]>,
        dlogits: &[f32],
    ) -> Result<Vec<f32>> {
        self.check_mask(mask)?;
        let (b, c, v) = (run.batch, self.cfg.d_model, self.cfg.d_vocab_out);
        let n = b * self.pred.len();
        let complete = run.layers.iter().all(|l| l.used.iter().all(|&u| u));
        if !complete || run.layers.len() != self.cfg.n_layers || dlogits.len() != n * v {
            return Err(Error::config(
                "mask gradient",
                "needs a run made with its tape and dlogits (B, P, V)",
            ));
        }
        let t = run.outs[0].len() / (b * c);
        let (rn, sn) = (self.avail.len(), self.n_senders);
        let mut g: Vec<Vec<f32>> = vec![Vec::new(); rn];
        let mut dy = vec![0f32; n * c];
        matmul_backward(
            Some(&mut dy),
            None,
            None,
            dlogits,
            &[],
            self.p("unembed.W_U"),
            n,
            c,
            v,
        );
        let dx = self.ln_backward(dy, &run.final_ln, "ln_final");
        g[rn - 1] = vec![0f32; b * t * c];
        scatter_add(&mut g[rn - 1], &dx, &self.pred, t, c);
        let per_layer = self.cfg.n_heads + usize::from(self.cfg.d_mlp.is_some());
        let (mut r_end, mut s_end) = (rn - 1, sn);
        // Σ g_r over the receivers done so far (a suffix), for a uniform mask
        let (alpha, mut acc) = (self.uniform(mask), g[rn - 1].clone());
        for (l, lt) in run.layers.iter().enumerate().rev() {
            if self.cfg.d_mlp.is_some() {
                let dout = self.sender_grad(&g, mask, s_end - 1, alpha.map(|a| (a, &acc[..])));
                g[r_end - 1] = self.mlp_backward(&dout, l, lt, b, t);
                axpy(&mut acc, 1.0, &g[r_end - 1]);
            }
            let (r0, s0) = (r_end - 2 * self.cfg.n_heads - per_layer, s_end - per_layer);
            let suffix = alpha.map(|a| (a, &acc[..]));
            self.attn_backward(&mut g, mask, l, lt, (r0, s0, suffix), (b, t));
            for gr in &g[r0..r_end - usize::from(self.cfg.d_mlp.is_some())] {
                axpy(&mut acc, 1.0, gr);
            }
            (r_end, s_end) = (r0, s0);
        }
        let mut gm = vec![0f32; rn * sn];
        for (s, out) in run.outs.iter().enumerate() {
            let d: Vec<f32> = match alt {
                Some(a) => out.iter().zip(&a[s]).map(|(o, a)| o - a).collect(),
                None => out.clone(),
            };
            for (r, gr) in g.iter().enumerate() {
                if s < self.avail[r] && !gr.is_empty() {
                    gm[r * sn + s] = dot(&d, gr);
                }
            }
        }
        Ok(gm)
    }

    /// The MLP of layer l backward: ∂metric/∂(its input) (B, T, C) from ∂metric/∂out.
    fn mlp_backward(&self, dout: &[f32], l: usize, lt: &LayerTape, b: usize, t: usize) -> Vec<f32> {
        let (c, m) = (self.cfg.d_model, self.cfg.d_mlp.unwrap_or(0));
        let Some((ln, a)) = &lt.mlp else {
            return Vec::new();
        };
        let rows = &lt.rows;
        let n = b * rows.len();
        let d = gather(dout, rows, t, c);
        let pre = format!("blocks.{l}.mlp");
        let (mut dpost, mut da) = (vec![0f32; n * m], vec![0f32; n * m]);
        matmul_backward(
            Some(&mut dpost),
            None,
            None,
            &d,
            &[],
            self.p(&format!("{pre}.W_out")),
            n,
            m,
            c,
        );
        match self.act() {
            ActFn::Gelu => gelu_backward(&mut da, &dpost, a),
            act => activation_backward(&mut da, &dpost, a, act, n, m),
        }
        let mut dy = vec![0f32; n * c];
        matmul_backward(
            Some(&mut dy),
            None,
            None,
            &da,
            &[],
            self.p(&format!("{pre}.W_in")),
            n,
            c,
            m,
        );
        let dx = self.ln_backward(dy, ln, &format!("blocks.{l}.ln2"));
        let mut gx = vec![0f32; b * t * c];
        scatter_add(&mut gx, &dx, rows, t, c);
        gx
    }

    /// Layer l's heads backward: fills g of its q/k/v receivers (from r0); its senders
    /// start at s0.
    fn attn_backward(
        &self,
        g: &mut [Vec<f32>],
        mask: &[f32],
        l: usize,
        lt: &LayerTape,
        (r0, s0, suffix): (usize, usize, Option<(f32, &[f32])>),
        (b, t): (usize, usize),
    ) {
        let (c, nh, hs) = (self.cfg.d_model, self.cfg.n_heads, self.cfg.d_head);
        let (rows, tq) = (&lt.rows, lt.rows.len());
        let n = b * tq;
        let pre = format!("blocks.{l}.attn");
        let w_o = self.p(&format!("{pre}.W_O"));
        let mut dz = vec![0f32; nh * n * hs];
        for h in 0..nh {
            let d = gather(&self.sender_grad(g, mask, s0 + h, suffix), rows, t, c);
            let w = &w_o[h * hs * c..(h + 1) * hs * c];
            matmul_backward(
                Some(&mut dz[h * n * hs..(h + 1) * n * hs]),
                None,
                None,
                &d,
                &[],
                w,
                n,
                hs,
                c,
            );
        }
        let (mut dq, mut dk, mut dv) = (
            vec![0f32; nh * n * hs],
            vec![0f32; nh * b * t * hs],
            vec![0f32; nh * b * t * hs],
        );
        attention_backward(
            &mut dq,
            &mut dk,
            &mut dv,
            &dz,
            &lt.q,
            &lt.k,
            &lt.v,
            &lt.lse,
            rows,
            self.dims(b, t, tq),
        );
        let all: Vec<usize> = (0..t).collect();
        for h in 0..nh {
            for (p, (buf, name)) in [(&dq, "Q"), (&dk, "K"), (&dv, "V")].into_iter().enumerate() {
                let rs = if p == 0 { rows } else { &all };
                let np = b * rs.len();
                let w = &self.p(&format!("{pre}.W_{name}"))[h * c * hs..(h + 1) * c * hs];
                let mut dy = vec![0f32; np * c];
                matmul_backward(
                    Some(&mut dy),
                    None,
                    None,
                    &buf[h * np * hs..(h + 1) * np * hs],
                    &[],
                    w,
                    np,
                    c,
                    hs,
                );
                let dx = self.ln_backward(dy, &lt.ln1[3 * h + p], &format!("blocks.{l}.ln1"));
                let mut gx = vec![0f32; b * t * c];
                scatter_add(&mut gx, &dx, rs, t, c);
                g[r0 + 3 * h + p] = gx;
            }
        }
    }
}

/// A run's logits (B, P, V) and sender outputs (B, T, C) as tensors.
pub struct PairRun {
    pub logits: Tensor,
    pub outs: Vec<Tensor>,
}

/// The fast model and its clean run, as [`pair_runs`] makes them.
pub type FastPrepared = (FastModel, FastRun);

/// The clean and corrupted runs (every edge on) of `clean`, `corrupted` (B, T): on the
/// fast path when `model`'s graph and `dtype` (F32) allow, with the fast model and the
/// clean run; else on candle.
pub fn pair_runs(
    model: &GraphModel,
    w: &Weights,
    preds: &[usize],
    (clean, corrupted, b): (&[u32], &[u32], usize),
) -> Result<(PairRun, PairRun, Option<FastPrepared>)> {
    let fast = (model.dtype == DType::F32)
        .then(|| FastModel::new(w, preds, &model.graph))
        .flatten();
    let Some(f) = fast else {
        let ones = model.uniform_mask(1.0)?;
        let (x, y) = (
            model.run(clean, b, &ones, None)?,
            model.run(corrupted, b, &ones, None)?,
        );
        let pr = |r: GraphRun| PairRun {
            logits: r.logits,
            outs: r.outs,
        };
        return Ok((pr(x), pr(y), None));
    };
    let ones = vec![1f32; f.avail.len() * f.n_senders];
    let x = f.run(clean, b, &ones, None, true, true)?;
    let y = f.run(corrupted, b, &ones, None, true, false)?;
    let (xt, yt) = (f.tensors(&x)?, f.tensors(&y)?);
    Ok((xt, yt, Some((f, x))))
}

impl FastModel {
    /// A run's logits and outputs as tensors.
    fn tensors(&self, r: &FastRun) -> Result<PairRun> {
        let (b, c) = (r.batch, self.cfg.d_model);
        let t = r.outs[0].len() / (b * c);
        let dev = &Device::Cpu;
        Ok(PairRun {
            logits: self.logits_tensor(r)?,
            outs: (r.outs.iter())
                .map(|o| Ok(Tensor::from_slice(o, (b, t, c), dev)?))
                .collect::<Result<_>>()?,
        })
    }

    fn logits_tensor(&self, r: &FastRun) -> Result<Tensor> {
        let (b, p, v) = (r.batch, self.pred.len(), self.cfg.d_vocab_out);
        Ok(Tensor::from_slice(&r.logits, (b, p, v), &Device::Cpu)?)
    }
}

/// The fast path's part of a circuit setup: the model, the clean run with its tape (where
/// EAP differentiates: every edge on), the clean inputs and the ablation values.
pub struct FastSetup {
    pub model: FastModel,
    clean_run: FastRun,
    clean: Vec<u32>,
    alt: Vec<Vec<f32>>,
}

impl FastSetup {
    /// From [`pair_runs`]' fast model and clean run, the clean inputs (B, T) and the
    /// ablation values (per sender (B, T, C)).
    pub fn new((model, clean_run): FastPrepared, clean: &[u32], alt: &[Tensor]) -> Result<Self> {
        let alt = (alt.iter())
            .map(|a| Ok(a.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<_>>()?;
        Ok(FastSetup {
            model,
            clean_run,
            clean: clean.to_vec(),
            alt,
        })
    }

    fn mask_vec(&self, mask: &Tensor) -> Result<Vec<f32>> {
        Ok(mask.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The logits (B, P, V) of the clean inputs with edge mask `mask` (R, S), ablated
    /// edges carrying the ablation values.
    pub fn logits(&self, mask: &Tensor) -> Result<Tensor> {
        let m = self.mask_vec(mask)?;
        let b = self.clean_run.batch;
        let r = self
            .model
            .run(&self.clean, b, &m, Some(&self.alt), false, false)?;
        self.model.logits_tensor(&r)
    }

    /// ∂metric/∂m_e at m = `alpha` on every edge, per edge of `g`; `value` is the metric
    /// of logits (B, P, V) as a differentiable scalar.
    pub fn edge_gradient(
        &self,
        g: &Graph,
        alpha: f64,
        value: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Vec<f64>> {
        let f = &self.model;
        let m = vec![alpha as f32; f.avail.len() * f.n_senders];
        let b = self.clean_run.batch;
        let fresh;
        let run = if alpha == 1.0 {
            &self.clean_run // every edge on is the clean run (its tape kept by pair_runs)
        } else {
            fresh = f.run(&self.clean, b, &m, Some(&self.alt), false, true)?;
            &fresh
        };
        let var = Var::from_tensor(&f.logits_tensor(run)?)?;
        let grads = value(var.as_tensor())?.backward()?;
        let dl: Vec<f32> = match grads.get(var.as_tensor()) {
            Some(d) => d.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            None => vec![0.0; run.logits.len()],
        };
        let gm = f.mask_grad(run, &m, Some(&self.alt), &dl)?;
        let sn = f.n_senders;
        Ok((g.edges.iter())
            .map(|e| gm[e.receiver * sn + e.sender] as f64)
            .collect())
    }
}
