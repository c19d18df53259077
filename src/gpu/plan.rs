//! The recorded GPU plan of one batch shape: the activation buffers, and the forward pass, the loss,
//! the backward pass, the gradient norm and AdamW as one list of dispatches ([`Ops`]) over the flat
//! parameter, gradient and moment buffers. Built once per shape, replayed every step: the step's
//! inputs, schedule and stats are windows of per-submission buffers bound at dynamic offsets, so a
//! step records nothing but its dispatches.
//!
//! Letters: B batch, T positions, C d_model, NH n_heads, HS d_head, V d_vocab_out, M d_mlp, P scored
//! positions per sequence (a contiguous range starting at p0), N = B·T rows.

use super::context::GpuContext;
use super::kernels::{
    self as k, AdamwArgs, AdamwIo, Map, MatmulArgs, Operand, Ops, SplitSums, Window,
};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamTable, Positions};
use wgpu::Buffer;

/// The flat buffers every plan shares (table layout).
pub struct Flat {
    pub params: Buffer,
    pub grads: Buffer,
    /// AdamW's m (total), then v (total).
    pub moments: Buffer,
    /// One bit per element: trainable.
    pub mask: Buffer,
}

/// The shape a plan is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub b: usize,
    pub t: usize,
    /// First scored position and how many (training: the task's; inference: 0 and T).
    pub p0: usize,
    pub p: usize,
    pub train: bool,
}

/// f32 values of one step's schedule: lr, sm, sv, 1 − lr·wd, halt parity.
pub const SCHED_LEN: usize = 6;

impl Shape {
    /// Length in u32 of the step buffer: tokens (B·T), then for training the per-token row lists
    /// (offsets V_in + 1, rows B·T), their segments (seg_first V_in + 1, seg_tok NSEG), the
    /// targets (B·P) and the loss scale (f32 bits of 1 / the scored rows), see [`step_data`].
    pub fn step_len(&self, d_vocab: usize) -> usize {
        if self.train {
            self.targets_at(d_vocab) + self.b * self.p + 1
        } else {
            self.b * self.t
        }
    }
    /// Where the (B, P) targets start in a training step's buffer.
    pub fn targets_at(&self, d_vocab: usize) -> usize {
        let n = self.b * self.t;
        2 * n + 2 * (d_vocab + 1) + max_segments(n, d_vocab)
    }
    /// Length in u32 of one step's stats.
    pub fn stats_len(&self) -> usize {
        4 + self.p
    }
}

/// Bytes of `len` 4-byte values rounded up to the dynamic-offset alignment.
pub fn stride(len: usize, align: u64) -> u64 {
    ((len * 4) as u64).div_ceil(align) * align
}

/// One window per step of a submission (`cap` steps) for what changes every step.
pub struct Io {
    pub cap: usize,
    /// (step_len,) u32 per step: tokens [+ row lists].
    pub step: Buffer,
    pub step_stride: u64,
    /// (SCHED_LEN,) f32 per step.
    pub sched: Buffer,
    pub sched_stride: u64,
    /// (4 + P,) u32 per step: the step's stats (training).
    pub stats: Buffer,
    pub stats_stride: u64,
    step_len: usize,
    stats_len: usize,
}

impl Io {
    fn new(
        ctx: &GpuContext,
        shape: &Shape,
        d_vocab: usize,
        cap: usize,
        what: &dyn Fn(&str) -> String,
    ) -> Result<Io> {
        let a = ctx.offset_align();
        let (step_len, stats_len) = (shape.step_len(d_vocab), shape.stats_len());
        let (step_stride, sched_stride, stats_stride) = (
            stride(step_len, a),
            stride(SCHED_LEN, a),
            stride(stats_len, a),
        );
        let words = |s: u64| (cap as u64 * s / 4) as usize;
        Ok(Io {
            cap,
            step: ctx.storage(&what("step inputs"), words(step_stride))?,
            step_stride,
            sched: ctx.storage("schedule", words(sched_stride))?,
            sched_stride,
            stats: ctx.storage(&what("stats"), words(stats_stride))?,
            stats_stride,
            step_len,
            stats_len,
        })
    }
    fn step(&self) -> Window<'_> {
        Window {
            buf: &self.step,
            size: (self.step_len * 4) as u64,
            stride: self.step_stride,
        }
    }
    fn sched(&self) -> Window<'_> {
        Window {
            buf: &self.sched,
            size: (SCHED_LEN * 4) as u64,
            stride: self.sched_stride,
        }
    }
    fn stats(&self) -> Window<'_> {
        Window {
            buf: &self.stats,
            size: (self.stats_len * 4) as u64,
            stride: self.stats_stride,
        }
    }
}

struct Layer {
    ln1: Option<(Buffer, Buffer)>, // out (N, C), stats (N, 2)
    xqk: Option<Buffer>,           // (N, C) shortformer: ln1 output + W_pos, Q and K's input
    qkv: Buffer,                   // (N, 3·NH·HS)
    z: Buffer,                     // (N, NH·HS)
    lse: Buffer,                   // (B, NH, T)
    mid: Option<Buffer>,           // resid_mid (N, C), with an MLP
    ln2: Option<(Buffer, Buffer)>,
    pre: Option<Buffer>,  // (N, M)
    post: Option<Buffer>, // (N, M)
}

/// Sizes of a plan.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    n: usize,
    c: usize,
    nh: usize,
    hs: usize,
    v: usize,
    m: usize,
    rows: usize,
}

type Alloc<'a> = dyn Fn(&str, usize) -> Result<Buffer> + 'a;

/// The forward activations.
struct Acts {
    resid: Vec<Buffer>, // n_layers + 1 of (N, C)
    layers: Vec<Layer>,
    lnf: Option<(Buffer, Buffer)>,
    logits: Buffer, // (B·P, V), dlogits after a training step
    rows: Buffer,   // (2·B·P,) u32: loss bits, ok
    argmax: Buffer, // (B·P,) u32
}

impl Acts {
    fn new(cfg: &ModelConfig, d: Dims, buf: &Alloc) -> Result<Acts> {
        let ln = cfg.normalization_type.is_some();
        let mlp = cfg.d_mlp.is_some();
        let pair = |name: &str, stats: &str| -> Result<(Buffer, Buffer)> {
            Ok((buf(name, d.n * d.c)?, buf(stats, 2 * d.n)?))
        };
        let opt = |on: bool, name: &str, len: usize| -> Result<Option<Buffer>> {
            if on {
                buf(name, len).map(Some)
            } else {
                Ok(None)
            }
        };
        let mut resid = Vec::with_capacity(cfg.n_layers + 1);
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for _ in 0..cfg.n_layers {
            resid.push(buf("resid", d.n * d.c)?);
            layers.push(Layer {
                ln1: if ln {
                    Some(pair("ln1", "ln1 stats")?)
                } else {
                    None
                },
                xqk: opt(shortformer(cfg), "query/key input", d.n * d.c)?,
                qkv: buf("qkv", d.n * 3 * d.nh * d.hs)?,
                z: buf("z", d.n * d.nh * d.hs)?,
                lse: buf("lse", d.b * d.nh * d.t)?,
                mid: opt(mlp, "resid_mid", d.n * d.c)?,
                ln2: if ln && mlp {
                    Some(pair("ln2", "ln2 stats")?)
                } else {
                    None
                },
                pre: opt(mlp, "mlp pre", d.n * d.m)?,
                post: opt(mlp, "mlp post", d.n * d.m)?,
            });
        }
        resid.push(buf("resid", d.n * d.c)?);
        Ok(Acts {
            resid,
            layers,
            lnf: if ln {
                Some(pair("ln_final", "ln_final stats")?)
            } else {
                None
            },
            logits: buf("logits", d.rows * d.v)?,
            rows: buf("row loss and ok", 2 * d.rows)?,
            argmax: buf("argmax", d.rows)?,
        })
    }
}

/// The backward's gradient buffers.
struct Grads {
    dresid: Buffer,       // (N, C)
    dln: Option<Buffer>,  // (N, C), with LayerNorm: d(LN output)
    dz: Buffer,           // (N, NH·HS)
    dqkv: Buffer,         // (N, 3·NH·HS)
    dxqk: Option<Buffer>, // (N, C) shortformer: d(query/key input)
    dpost: Buffer,        // (N, M)
    dpre: Buffer,         // (N, M)
}

impl Grads {
    fn new(cfg: &ModelConfig, d: Dims, buf: &Alloc) -> Result<Grads> {
        Ok(Grads {
            dresid: buf("dresid", d.n * d.c)?,
            dln: if cfg.normalization_type.is_some() {
                Some(buf("dln", d.n * d.c)?)
            } else {
                None
            },
            dz: buf("dz", d.n * d.nh * d.hs)?,
            dqkv: buf("dqkv", d.n * 3 * d.nh * d.hs)?,
            dxqk: if shortformer(cfg) {
                Some(buf("dxqk", d.n * d.c)?)
            } else {
                None
            },
            dpost: buf("dpost", d.n * d.m)?,
            dpre: buf("dpre", d.n * d.m)?,
        })
    }
    /// The backward's first target, only partly written (the scored rows): embed_forward zeroes it.
    fn first(&self) -> &Buffer {
        self.dln.as_ref().unwrap_or(&self.dresid)
    }
    /// Where a layer's input gradient goes: dln (overwritten, then LN backward adds it to dresid)
    /// or dresid itself (accumulated).
    fn input_target(&self) -> (&Buffer, bool) {
        match &self.dln {
            Some(d) => (d, false),
            None => (&self.dresid, true),
        }
    }
}

/// Activations, windows and recorded ops for one shape.
pub struct Plan {
    pub shape: Shape,
    pub io: Io,
    /// (B·P, V) logits at the scored rows (dlogits after a training step).
    pub logits: Buffer,
    /// (B·P,) u32 argmax at the scored rows (training).
    pub argmax: Buffer,
    /// grad_norm's partials, then the two halt slots (training).
    pub norm: Option<Buffer>,
    /// How many partials `norm` holds before the halt slots.
    pub parts: usize,
    pub ops: Ops,
}

/// Records one plan's ops.
struct Rec<'a> {
    ctx: &'a GpuContext,
    cfg: &'a ModelConfig,
    tb: &'a ParamTable,
    flat: &'a Flat,
    shape: Shape,
    d: Dims,
    ops: Ops,
}

impl Plan {
    /// Allocates the activations of `shape` (with windows for `cap` steps per submission) and
    /// records its ops. Refuses (with the buffer, the config and the limit named) shapes whose
    /// buffers do not fit the adapter.
    pub fn new(
        ctx: &GpuContext,
        cfg: &ModelConfig,
        table: &ParamTable,
        flat: &Flat,
        shape: Shape,
        cap: usize,
        opt: &AdamwArgs,
    ) -> Result<Plan> {
        let d = dims(cfg, &shape)?;
        let what = |name: &str| {
            format!(
                "`{name}` (batch {}, T {}, d_model {}, n_heads {}, d_head {}, d_mlp {})",
                d.b, d.t, d.c, d.nh, d.hs, d.m
            )
        };
        let buf = |name: &str, len: usize| ctx.storage(&what(name), len);
        let io = Io::new(ctx, &shape, cfg.d_vocab, cap, &what)?;
        let acts = Acts::new(cfg, d, &buf)?;
        let grads = if shape.train {
            Some(Grads::new(cfg, d, &buf)?)
        } else {
            None
        };
        let mut rec = Rec {
            ctx,
            cfg,
            tb: table,
            flat,
            shape,
            d,
            ops: Ops::default(),
        };
        rec.forward(&acts, &io, grads.as_ref().map(Grads::first));
        let (mut norm, mut parts) = (None, 0);
        if let Some(g) = &grads {
            rec.loss(&acts, &io);
            let mut sums = SplitSums::new(ctx, &what("split sums"), split_sums_len(cfg, &shape))?;
            rec.backward(&acts, g, &io, &mut sums);
            parts = sums.parts(table.total_len());
            // norm partials, two halt slots, loss partials
            let nb = buf(
                "grad_norm partials",
                parts + 2 + k::grad_norm_groups(table.total_len()),
            )?;
            rec.optimizer(&acts, &io, &sums, &nb, opt)?;
            norm = Some(nb);
        }
        Ok(Plan {
            shape,
            io,
            logits: acts.logits,
            argmax: acts.argmax,
            norm,
            parts,
            ops: rec.ops,
        })
    }
}

/// The sizes of `shape`, checked against what the kernels hold.
fn dims(cfg: &ModelConfig, shape: &Shape) -> Result<Dims> {
    let (b, t) = (shape.b, shape.t);
    if t == 0 || t > 1024 || t > cfg.n_ctx {
        return Err(Error::config("n_ctx", format!("sequence length {t} is not in 1..={} (the GPU kernels hold at most 1024 positions)", cfg.n_ctx.min(1024))));
    }
    let d = Dims {
        b,
        t,
        n: b * t,
        c: cfg.d_model,
        nh: cfg.n_heads,
        hs: cfg.d_head,
        v: cfg.d_vocab_out,
        m: cfg.d_mlp.unwrap_or(0),
        rows: b * shape.p,
    };
    if !k::matmul_fits(d.n, 3 * d.nh * d.hs) {
        return Err(Error::config("batch_size", format!("batch {b} × T {t} = {} rows is more than one GPU matmul grid holds (4 194 240 rows); use a smaller batch", d.n)));
    }
    Ok(d)
}

/// Elements of split-sum scratch the backward of `shape` needs: every weight gradient that
/// [`k::matmul`], [`k::bias_backward`] or [`k::layernorm_backward_params`] splits (the same shapes
/// the backward records).
fn split_sums_len(cfg: &ModelConfig, shape: &Shape) -> usize {
    let (n, c, v, m) = (
        shape.b * shape.t,
        cfg.d_model,
        cfg.d_vocab_out,
        cfg.d_mlp.unwrap_or(0),
    );
    let qkv = 3 * cfg.n_heads * cfg.d_head;
    let rows = shape.b * shape.p;
    let ln = cfg.normalization_type.is_some();
    let bias = |n: usize, oc: usize| {
        if cfg.train_biases {
            k::colsum_scratch_len(n, oc)
        } else {
            0
        }
    };
    let lnp = |on: bool| {
        if on {
            k::colsum_scratch_len(n, 2 * c)
        } else {
            0
        }
    };
    let mut len = k::matmul_scratch_len(c, v, rows) + bias(rows, v) + lnp(ln);
    // dW_QKV: one product, or with shortformer Q and K's and V's
    let dw_qkv = if shortformer(cfg) {
        k::matmul_scratch_len(c, 2 * qkv / 3, n) + k::matmul_scratch_len(c, qkv / 3, n)
    } else {
        k::matmul_scratch_len(c, qkv, n)
    };
    let mut layer =
        k::matmul_scratch_len(qkv / 3, c, n) + bias(n, c) + dw_qkv + bias(n, qkv) + lnp(ln);
    if m > 0 {
        layer += k::matmul_scratch_len(m, c, n)
            + bias(n, c)
            + k::matmul_scratch_len(c, m, n)
            + bias(n, m)
            + lnp(ln);
    }
    len += cfg.n_layers * layer;
    len + max_segments(n, cfg.d_vocab) * c
}

impl Rec<'_> {
    fn off(&self, name: &str) -> usize {
        // Every name asked for here is in the table of the plan's own config.
        self.tb
            .get(name)
            .unwrap_or_else(|| unreachable!("parameter {name} missing from the table"))
            .offset
    }

    /// With trainable biases: the gradient of bias `name` from dout (N, OC).
    fn bias_backward(
        &mut self,
        name: &str,
        sums: &mut SplitSums,
        dout: &Buffer,
        n: usize,
        oc: usize,
    ) {
        if self.cfg.train_biases {
            let off = self.off(name);
            k::bias_backward(
                &mut self.ops,
                self.ctx,
                &self.flat.grads,
                off,
                sums,
                dout,
                n,
                oc,
            );
        }
    }

    /// `x`, or LN(x) into `ln` when the model has LayerNorm.
    fn norm<'b>(
        &mut self,
        ln: &'b Option<(Buffer, Buffer)>,
        x: &'b Buffer,
        name: &str,
    ) -> &'b Buffer {
        let Some((out, st)) = ln else { return x };
        let (w, b) = (
            self.off(&format!("{name}.w")),
            self.off(&format!("{name}.b")),
        );
        let p = &self.flat.params;
        k::layernorm_forward(
            &mut self.ops,
            self.ctx,
            out,
            st,
            x,
            p,
            w,
            b,
            self.d.n,
            self.d.c,
        );
        out
    }

    /// The forward pass up to the logits of the scored rows; `zero` is the backward's first target.
    fn forward(&mut self, a: &Acts, io: &Io, zero: Option<&Buffer>) {
        let (d, p) = (self.d, &self.flat.params);
        let (we, wp) = (self.off("embed.W_E"), self.resid_positions());
        k::embed_forward(
            &mut self.ops,
            self.ctx,
            &a.resid[0],
            zero,
            io.step(),
            0,
            p,
            we,
            wp,
            d.n,
            d.t,
            d.c,
        );
        for l in 0..self.cfg.n_layers {
            self.forward_layer(a, l);
        }
        let fin = self.norm(&a.lnf, &a.resid[self.cfg.n_layers], "ln_final");
        let scored = Map::scored_rows(self.shape.p0, self.shape.p, d.t, d.c);
        let x = MatmulArgs::new(
            Operand::rows(&a.logits, 0, d.v),
            Operand::new(fin, scored),
            Operand::rows(p, self.off("unembed.W_U"), d.v),
            d.rows,
            d.v,
            d.c,
        )
        .bias(p, self.off("unembed.b_U"));
        k::matmul(&mut self.ops, self.ctx, &x, None);
    }

    fn forward_layer(&mut self, a: &Acts, l: usize) {
        let (d, p, ly) = (self.d, &self.flat.params, &a.layers[l]);
        let pre = format!("blocks.{l}");
        let o = |s: &str| format!("{pre}.{s}");
        let (wo, bo) = (self.off(&o("attn.W_O")), self.off(&o("attn.b_O")));
        let x = self.norm(&ly.ln1, &a.resid[l], &format!("{pre}.ln1"));
        self.qkv_forward(ly, x, &pre);
        k::attention_forward(
            &mut self.ops,
            self.ctx,
            &ly.z,
            &ly.lse,
            &ly.qkv,
            d.b,
            d.t,
            d.nh,
            d.hs,
        );
        let after = ly.mid.as_ref().unwrap_or(&a.resid[l + 1]);
        let out = MatmulArgs::new(
            Operand::rows(after, 0, d.c),
            Operand::rows(&ly.z, 0, d.nh * d.hs),
            Operand::rows(p, wo, d.c),
            d.n,
            d.c,
            d.nh * d.hs,
        )
        .bias(p, bo)
        .plus(&a.resid[l], 0);
        k::matmul(&mut self.ops, self.ctx, &out, None);
        let (Some(mid), Some(hid), Some(post)) = (&ly.mid, &ly.pre, &ly.post) else {
            return;
        };
        let (wi, bi) = (self.off(&o("mlp.W_in")), self.off(&o("mlp.b_in")));
        let (wout, bout) = (self.off(&o("mlp.W_out")), self.off(&o("mlp.b_out")));
        let x2 = self.norm(&ly.ln2, mid, &format!("{pre}.ln2"));
        let up = MatmulArgs::new(
            Operand::rows(hid, 0, d.m),
            Operand::rows(x2, 0, d.c),
            Operand::rows(p, wi, d.m),
            d.n,
            d.m,
            d.c,
        )
        .bias(p, bi);
        k::matmul(&mut self.ops, self.ctx, &up, None);
        let act = self.cfg.act_fn.map(k::act_code).unwrap_or(0);
        k::activation_forward(&mut self.ops, self.ctx, post, hid, act, d.n, d.m);
        let down = MatmulArgs::new(
            Operand::rows(&a.resid[l + 1], 0, d.c),
            Operand::rows(post, 0, d.m),
            Operand::rows(p, wout, d.c),
            d.n,
            d.c,
            d.m,
        )
        .bias(p, bout)
        .plus(mid, 0);
        k::matmul(&mut self.ops, self.ctx, &down, None);
    }

    /// W_pos's offset when the residual stream carries positions (standard), else `None`
    /// (shortformer adds them to Q and K's input instead; positions off has none).
    fn resid_positions(&self) -> Option<usize> {
        (self.cfg.positional_embedding_type == Positions::Standard)
            .then(|| self.off("pos_embed.W_pos"))
    }

    /// qkv (N, 3·NH·HS) from the layer's input x (N, C): one product, or with shortformer Q and K
    /// from x + W_pos (`ly.xqk`) and V from x.
    fn qkv_forward(&mut self, ly: &Layer, x: &Buffer, pre: &str) {
        let (d, p) = (self.d, &self.flat.params);
        let z = d.nh * d.hs;
        let (wq, bq) = (
            self.off(&format!("{pre}.attn.W_Q")),
            self.off(&format!("{pre}.attn.b_Q")),
        );
        let (wv, bv) = (
            self.off(&format!("{pre}.attn.W_V")),
            self.off(&format!("{pre}.attn.b_V")),
        );
        let proj = |input, w: usize, b: usize, col: usize, n: usize| {
            MatmulArgs::new(
                Operand::rows(&ly.qkv, col, 3 * z),
                Operand::rows(input, 0, d.c),
                Operand::new(p, Map::heads(w, d.c, d.hs)),
                d.n,
                n,
                d.c,
            )
            .bias(p, b)
        };
        let Some(xqk) = &ly.xqk else {
            k::matmul(&mut self.ops, self.ctx, &proj(x, wq, bq, 0, 3 * z), None);
            return;
        };
        let wp = self.off("pos_embed.W_pos");
        k::shortformer_forward(&mut self.ops, self.ctx, xqk, x, p, wp, d.n, d.t, d.c);
        k::matmul(&mut self.ops, self.ctx, &proj(xqk, wq, bq, 0, 2 * z), None);
        k::matmul(&mut self.ops, self.ctx, &proj(x, wv, bv, 2 * z, z), None);
    }

    /// Per-row loss, argmax and ok; the logits become dlogits.
    fn loss(&mut self, a: &Acts, io: &Io) {
        let (d, s) = (self.d, self.shape);
        k::crossentropy_flags(
            &mut self.ops,
            self.ctx,
            &a.logits,
            &a.rows,
            &a.argmax,
            io.step(),
            s.targets_at(self.cfg.d_vocab),
            k::CE_BACKWARD | k::CE_STEP_SCALE,
            d.b * s.p,
            d.v,
        );
    }

    /// The backward pass from dlogits to every weight gradient (split sums left to grad_norm).
    fn backward(&mut self, a: &Acts, g: &Grads, io: &Io, sums: &mut SplitSums) {
        self.backward_head(a, g, sums);
        for l in (0..self.cfg.n_layers).rev() {
            // dresid holds d(resid_post): the MLP first, then attention
            self.backward_mlp(a, g, l, sums);
            self.backward_attn(a, g, l, sums);
        }
        let (d, we, wp) = (self.d, self.off("embed.W_E"), self.resid_positions());
        let dv = self.cfg.d_vocab;
        k::embed_backward(
            &mut self.ops,
            self.ctx,
            &self.flat.grads,
            sums,
            &g.dresid,
            io.step(),
            we,
            wp,
            d.b,
            d.t,
            d.c,
            dv,
        );
    }

    /// dW_U, db_U and d(final residual) from dlogits, through ln_final.
    fn backward_head(&mut self, a: &Acts, g: &Grads, sums: &mut SplitSums) {
        let (d, s, p, gr) = (self.d, self.shape, &self.flat.params, &self.flat.grads);
        let w_u = self.off("unembed.W_U");
        let last = &a.resid[self.cfg.n_layers];
        let fin = a.lnf.as_ref().map(|x| &x.0).unwrap_or(last);
        let dwu = MatmulArgs::new(
            Operand::rows(gr, w_u, d.v),
            Operand::new(fin, Map::scored_cols(s.p0, s.p, d.t, d.c)),
            Operand::rows(&a.logits, 0, d.v),
            d.c,
            d.v,
            d.rows,
        );
        k::matmul(&mut self.ops, self.ctx, &dwu, Some(sums));
        self.bias_backward("unembed.b_U", sums, &a.logits, d.rows, d.v);
        // g.first() was zeroed by embed_forward: only the scored rows are written here
        let dfin = MatmulArgs::new(
            Operand::new(g.first(), Map::scored_rows(s.p0, s.p, d.t, d.c)),
            Operand::rows(&a.logits, 0, d.v),
            Operand::cols(p, w_u, d.v),
            d.rows,
            d.c,
            d.v,
        );
        k::matmul(&mut self.ops, self.ctx, &dfin, None);
        self.backward_norm(&a.lnf, g, last, "ln_final", false, sums);
    }

    /// With LayerNorm `ln` over x: dresid (+)= dx from g.dln, and the gain and bias gradients.
    fn backward_norm(
        &mut self,
        ln: &Option<(Buffer, Buffer)>,
        g: &Grads,
        x: &Buffer,
        name: &str,
        acc: bool,
        sums: &mut SplitSums,
    ) {
        let (Some((_, st)), Some(dln)) = (ln, &g.dln) else {
            return;
        };
        let (d, p, gr) = (self.d, &self.flat.params, &self.flat.grads);
        let (w, b) = (
            self.off(&format!("{name}.w")),
            self.off(&format!("{name}.b")),
        );
        k::layernorm_backward(
            &mut self.ops,
            self.ctx,
            &g.dresid,
            dln,
            x,
            st,
            p,
            w,
            acc,
            d.n,
            d.c,
        );
        k::layernorm_backward_params(
            &mut self.ops,
            self.ctx,
            gr,
            w,
            b,
            sums,
            dln,
            x,
            st,
            d.n,
            d.c,
        );
    }

    /// Layer l's MLP: dW_out, db_out, dW_in, db_in, and d(resid_mid) added to dresid.
    fn backward_mlp(&mut self, a: &Acts, g: &Grads, l: usize, sums: &mut SplitSums) {
        let ly = &a.layers[l];
        let (Some(mid), Some(hid), Some(post)) = (&ly.mid, &ly.pre, &ly.post) else {
            return;
        };
        let (d, p, gr, ctx) = (self.d, &self.flat.params, &self.flat.grads, self.ctx);
        let pre = format!("blocks.{l}");
        let (w_out, w_in) = (
            self.off(&format!("{pre}.mlp.W_out")),
            self.off(&format!("{pre}.mlp.W_in")),
        );
        let x = MatmulArgs::new(
            Operand::rows(gr, w_out, d.c),
            Operand::cols(post, 0, d.m),
            Operand::rows(&g.dresid, 0, d.c),
            d.m,
            d.c,
            d.n,
        );
        k::matmul(&mut self.ops, ctx, &x, Some(sums));
        self.bias_backward(&format!("{pre}.mlp.b_out"), sums, &g.dresid, d.n, d.c);
        let x = MatmulArgs::new(
            Operand::rows(&g.dpost, 0, d.m),
            Operand::rows(&g.dresid, 0, d.c),
            Operand::cols(p, w_out, d.c),
            d.n,
            d.m,
            d.c,
        );
        k::matmul(&mut self.ops, ctx, &x, None);
        let act = self.cfg.act_fn.map(k::act_code).unwrap_or(0);
        k::activation_backward(&mut self.ops, ctx, &g.dpre, &g.dpost, hid, act, d.n, d.m);
        let x2 = ly.ln2.as_ref().map(|x| &x.0).unwrap_or(mid);
        let x = MatmulArgs::new(
            Operand::rows(gr, w_in, d.m),
            Operand::cols(x2, 0, d.c),
            Operand::rows(&g.dpre, 0, d.m),
            d.c,
            d.m,
            d.n,
        );
        k::matmul(&mut self.ops, ctx, &x, Some(sums));
        self.bias_backward(&format!("{pre}.mlp.b_in"), sums, &g.dpre, d.n, d.m);
        let (target, acc) = g.input_target();
        let x = MatmulArgs::new(
            Operand::rows(target, 0, d.c),
            Operand::rows(&g.dpre, 0, d.m),
            Operand::cols(p, w_in, d.m),
            d.n,
            d.c,
            d.m,
        )
        .accumulate(acc);
        k::matmul(&mut self.ops, ctx, &x, None);
        self.backward_norm(&ly.ln2, g, mid, &format!("{pre}.ln2"), true, sums);
    }

    /// Layer l's attention: dW_O, db_O, dqkv, dW_QKV, db_QKV, and d(resid_pre) added to dresid.
    fn backward_attn(&mut self, a: &Acts, g: &Grads, l: usize, sums: &mut SplitSums) {
        let ly = &a.layers[l];
        let (d, p, gr, ctx) = (self.d, &self.flat.params, &self.flat.grads, self.ctx);
        let pre = format!("blocks.{l}");
        let w_o = self.off(&format!("{pre}.attn.W_O"));
        let z = d.nh * d.hs;
        let x = MatmulArgs::new(
            Operand::rows(gr, w_o, d.c),
            Operand::cols(&ly.z, 0, z),
            Operand::rows(&g.dresid, 0, d.c),
            z,
            d.c,
            d.n,
        );
        k::matmul(&mut self.ops, ctx, &x, Some(sums));
        self.bias_backward(&format!("{pre}.attn.b_O"), sums, &g.dresid, d.n, d.c);
        let x = MatmulArgs::new(
            Operand::rows(&g.dz, 0, z),
            Operand::rows(&g.dresid, 0, d.c),
            Operand::cols(p, w_o, d.c),
            d.n,
            z,
            d.c,
        );
        k::matmul(&mut self.ops, ctx, &x, None);
        k::attention_backward(
            &mut self.ops,
            ctx,
            &g.dqkv,
            &g.dz,
            &ly.qkv,
            &ly.z,
            &ly.lse,
            d.b,
            d.t,
            d.nh,
            d.hs,
        );
        self.bias_backward(&format!("{pre}.attn.b_Q"), sums, &g.dqkv, d.n, 3 * z);
        self.backward_qkv(a, g, l, sums);
        self.backward_norm(&ly.ln1, g, &a.resid[l], &format!("{pre}.ln1"), true, sums);
    }

    /// dW_Q/K/V and the gradient of layer l's input x from dqkv, as (weight, first qkv column,
    /// columns, input, input gradient, accumulate, plus) products: one for the whole of W_QKV, or
    /// with shortformer Q and K's on x + W_pos into dxqk, then V's on x, whose input gradient
    /// adds dxqk; dW_pos (+)= Σ_b dxqk.
    fn backward_qkv(&mut self, a: &Acts, g: &Grads, l: usize, sums: &mut SplitSums) {
        let ly = &a.layers[l];
        let (d, p, gr, ctx) = (self.d, &self.flat.params, &self.flat.grads, self.ctx);
        let z = d.nh * d.hs;
        let (w_q, w_v) = (
            self.off(&format!("blocks.{l}.attn.W_Q")),
            self.off(&format!("blocks.{l}.attn.W_V")),
        );
        let xin = ly.ln1.as_ref().map(|x| &x.0).unwrap_or(&a.resid[l]);
        let (target, acc) = g.input_target();
        let parts = match (&ly.xqk, &g.dxqk) {
            (Some(xqk), Some(dxqk)) => vec![
                (w_q, 0, 2 * z, xqk, dxqk, false, None),
                (w_v, 2 * z, z, xin, target, acc, Some(dxqk)),
            ],
            _ => vec![(w_q, 0, 3 * z, xin, target, acc, None)],
        };
        for (w, col, cols, x, dx, acc, plus) in parts {
            let dw = MatmulArgs::new(
                Operand::new(gr, Map::heads(w, d.c, d.hs)),
                Operand::cols(x, 0, d.c),
                Operand::rows(&g.dqkv, col, 3 * z),
                d.c,
                cols,
                d.n,
            );
            k::matmul(&mut self.ops, ctx, &dw, Some(sums));
            let mut dx = MatmulArgs::new(
                Operand::rows(dx, 0, d.c),
                Operand::rows(&g.dqkv, col, 3 * z),
                Operand::new(p, Map::heads_t(w, d.c, d.hs)),
                d.n,
                d.c,
                cols,
            )
            .accumulate(acc);
            if let Some(q) = plus {
                dx = dx.plus(q, 0);
            }
            k::matmul(&mut self.ops, ctx, &dx, None);
        }
        if let Some(dxqk) = &g.dxqk {
            let (wp, first) = (self.off("pos_embed.W_pos"), l + 1 == self.cfg.n_layers);
            k::shortformer_backward(&mut self.ops, ctx, gr, dxqk, wp, !first, d.b, d.t, d.c);
        }
    }

    /// grad_norm (finishing the split sums), then AdamW with the step's stats.
    fn optimizer(
        &mut self,
        a: &Acts,
        io: &Io,
        sums: &SplitSums,
        norm: &Buffer,
        opt: &AdamwArgs,
    ) -> Result<()> {
        let (f, total) = (self.flat, self.tb.total_len());
        k::grad_norm(
            &mut self.ops,
            self.ctx,
            norm,
            &f.grads,
            sums,
            io.step(),
            &a.rows,
            self.d.rows,
            total,
        )?;
        let aio = AdamwIo {
            sched: io.sched(),
            norm,
            parts: sums.parts(total),
            rows: &a.rows,
            b: self.d.b,
            p: self.shape.p,
            stats: io.stats(),
        };
        k::adamw(
            &mut self.ops,
            self.ctx,
            &f.params,
            &f.moments,
            &aio,
            &f.grads,
            &f.mask,
            opt,
            total,
        );
        Ok(())
    }
}

/// Whether W_pos joins every layer's query and key input instead of the residual stream.
fn shortformer(cfg: &ModelConfig) -> bool {
    cfg.positional_embedding_type == Positions::Shortformer
}

/// Most rows one embed_backward workgroup gathers (embed_backward.wgsl's SEG).
pub const EMBED_SEGMENT: usize = 256;

/// Most segments the row lists of `n` tokens over a vocabulary of `d_vocab` can have.
pub fn max_segments(n: usize, d_vocab: usize) -> usize {
    d_vocab + n.div_ceil(EMBED_SEGMENT)
}

/// The step buffer's contents for one batch (B, T) of tokens: the tokens, and for training the rows
/// of each input token in row order (a counting sort: offsets (d_vocab + 1), then rows (B·T)), which
/// lets embed_backward sum dW_E without atomics, then each token's list cut into segments of at most
/// [`EMBED_SEGMENT`] rows: seg_first (d_vocab + 1; token v owns segments seg_first[v]..seg_first[v + 1])
/// and seg_tok ([`max_segments`]; the token of each segment, 0 past the last). The training targets
/// (B, P) follow (the caller appends them, at [`Shape::targets_at`]).
pub fn step_data(tokens: &[u32], d_vocab: usize, train: bool, out: &mut Vec<u32>) {
    out.extend_from_slice(tokens);
    if !train {
        return;
    }
    let mut counts = vec![0u32; d_vocab + 1];
    for &x in tokens {
        counts[x as usize + 1] += 1;
    }
    for i in 0..d_vocab {
        counts[i + 1] += counts[i];
    }
    let base = out.len();
    out.extend_from_slice(&counts);
    let rows = out.len();
    out.resize(rows + tokens.len(), 0);
    let mut next = counts.clone();
    for (r, &x) in tokens.iter().enumerate() {
        let slot = &mut next[x as usize];
        out[rows + *slot as usize] = r as u32;
        *slot += 1;
    }
    let seg = EMBED_SEGMENT as u32;
    let mut first = 0u32;
    let mut seg_tok = Vec::with_capacity(max_segments(tokens.len(), d_vocab));
    for v in 0..d_vocab {
        out.push(first);
        let k = (counts[v + 1] - counts[v]).div_ceil(seg);
        seg_tok.extend(std::iter::repeat_n(v as u32, k as usize));
        first += k;
    }
    out.push(first);
    seg_tok.resize(max_segments(tokens.len(), d_vocab), 0);
    out.extend_from_slice(&seg_tok);
    debug_assert_eq!(
        out.len() - base,
        2 * (d_vocab + 1) + tokens.len() + max_segments(tokens.len(), d_vocab)
    );
}
