//! The model on the GPU: the activation buffers of one batch shape and the layer loop that records the
//! forward pass, the loss, the backward pass, the gradient norm and AdamW as one list of dispatches
//! ([`Ops`]) over the flat parameter, gradient and moment buffers. Built once per shape, replayed
//! every step.
//!
//! Letters: B batch, T positions, C d_model, NH n_heads, HS d_head, V d_vocab_out, M d_mlp, P scored
//! positions per sequence (a contiguous range starting at p0), N = B·T rows.

use super::context::GpuContext;
use super::kernels::{self as k, Map, MatmulArgs, Operand, Ops};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamTable};
use wgpu::Buffer;

/// The flat buffers every plan shares (table layout).
pub struct Flat {
    pub params: Buffer,
    pub grads: Buffer,
    pub m: Buffer,
    pub v: Buffer,
    /// One bit per element: trainable.
    pub mask: Buffer,
    /// (8,) f32: lr, bias corrections sm and sv, 1 − lr·wd (per step, from the host), clip coefficient
    /// and halt flag (from grad_norm).
    pub vars: Buffer,
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

impl Shape {
    /// Length in u32 of the step buffer: tokens (B·T), then for training the per-token row lists
    /// (offsets V_in + 1, rows B·T).
    pub fn step_len(&self, d_vocab: usize) -> usize {
        let n = self.b * self.t;
        if self.train {
            2 * n + d_vocab + 1
        } else {
            n
        }
    }
    /// Length in u32 of one step's stats.
    pub fn stats_len(&self) -> usize {
        4 + self.p
    }
}

struct Layer {
    ln1: Option<(Buffer, Buffer)>, // out (N, C), stats (N, 2)
    qkv: Buffer,                   // (N, 3·NH·HS)
    z: Buffer,                     // (N, NH·HS)
    lse: Buffer,                   // (B, NH, T)
    mid: Option<Buffer>,           // resid_mid (N, C), with an MLP
    ln2: Option<(Buffer, Buffer)>,
    pre: Option<Buffer>,  // (N, M)
    post: Option<Buffer>, // (N, M)
}

/// Activations and recorded ops for one shape.
pub struct Plan {
    pub shape: Shape,
    /// (step_len,) u32 tokens [+ row lists]: the step's input, copied in before each replay.
    pub step: Buffer,
    /// (B·P, V) logits at the scored rows (dlogits after a training step).
    pub logits: Buffer,
    /// (B·P,) u32 argmax at the scored rows (training).
    pub argmax: Buffer,
    /// (4 + P,) u32 the step's stats (training).
    pub stats: Buffer,
    pub ops: Ops,
}

fn off(t: &ParamTable, name: &str) -> usize {
    // Every name asked for here is in the table of the plan's own config.
    t.get(name)
        .unwrap_or_else(|| unreachable!("parameter {name} missing from the table"))
        .offset
}

impl Plan {
    /// Allocates the activations of `shape` and records its ops. Refuses (with the buffer, the
    /// config and the limit named) shapes whose buffers do not fit the adapter.
    pub fn new(
        ctx: &GpuContext,
        cfg: &ModelConfig,
        table: &ParamTable,
        flat: &Flat,
        shape: Shape,
        clip: f64,
        betas: (f64, f64, f64),
    ) -> Result<Plan> {
        let (b, t, c, nh, hs, v) = (
            shape.b,
            shape.t,
            cfg.d_model,
            cfg.n_heads,
            cfg.d_head,
            cfg.d_vocab_out,
        );
        if t == 0 || t > 1024 || t > cfg.n_ctx {
            return Err(Error::config("n_ctx", format!("sequence length {t} is not in 1..={} (the GPU kernels hold at most 1024 positions)", cfg.n_ctx.min(1024))));
        }
        let n = b * t;
        let rows = b * shape.p;
        if !k::matmul_fits(n, 3 * nh * hs) {
            return Err(Error::config("batch_size", format!("batch {b} × T {t} = {n} rows is more than one GPU matmul grid holds (4 194 240 rows); use a smaller batch")));
        }
        let m_dim = cfg.d_mlp.unwrap_or(0);
        let ln = cfg.normalization_type.is_some();
        let what = |name: &str| {
            format!("`{name}` (batch {b}, T {t}, d_model {c}, n_heads {nh}, d_head {hs}, d_mlp {m_dim})")
        };
        let buf = |name: &str, len: usize| ctx.storage(&what(name), len);
        let step = buf("step", shape.step_len(cfg.d_vocab))?;
        let mut resid = Vec::with_capacity(cfg.n_layers + 1);
        for _ in 0..=cfg.n_layers {
            resid.push(buf("resid", n * c)?);
        }
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for _ in 0..cfg.n_layers {
            let mlp = cfg.d_mlp.is_some();
            layers.push(Layer {
                ln1: if ln {
                    Some((buf("ln1", n * c)?, buf("ln1 stats", 2 * n)?))
                } else {
                    None
                },
                qkv: buf("qkv", n * 3 * nh * hs)?,
                z: buf("z", n * nh * hs)?,
                lse: buf("lse", b * nh * t)?,
                mid: if mlp {
                    Some(buf("resid_mid", n * c)?)
                } else {
                    None
                },
                ln2: if ln && mlp {
                    Some((buf("ln2", n * c)?, buf("ln2 stats", 2 * n)?))
                } else {
                    None
                },
                pre: if mlp {
                    Some(buf("mlp pre", n * m_dim)?)
                } else {
                    None
                },
                post: if mlp {
                    Some(buf("mlp post", n * m_dim)?)
                } else {
                    None
                },
            });
        }
        let lnf = if ln {
            Some((buf("ln_final", n * c)?, buf("ln_final stats", 2 * n)?))
        } else {
            None
        };
        let logits = buf("logits", rows * v)?;
        let loss_rows = buf("row loss", rows)?;
        let argmax = buf("argmax", rows)?;
        let ok_rows = buf("row ok", rows)?;
        let stats = buf("stats", shape.stats_len())?;
        let mut ops = Ops::default();
        // backward's first target is only partly written (the scored rows): zero it up front, so that
        // the whole step is one compute pass
        let dresid = if shape.train {
            Some(buf("dresid", n * c)?)
        } else {
            None
        };
        let dln = if shape.train && ln {
            Some(buf("dln", n * c)?)
        } else {
            None
        };
        if let Some(d) = dln.as_ref().or(dresid.as_ref()) {
            ops.clear(d);
        }
        let tb = table;
        let params = &flat.params;
        let act = cfg.act_fn.map(k::act_code).unwrap_or(0);

        // ---- forward
        k::embed_forward(
            &mut ops,
            ctx,
            &resid[0],
            &step,
            0,
            params,
            off(tb, "embed.W_E"),
            off(tb, "pos_embed.W_pos"),
            n,
            t,
            c,
        );
        for (l, ly) in layers.iter().enumerate() {
            let pre = format!("blocks.{l}");
            let x = match &ly.ln1 {
                Some((out, st)) => {
                    k::layernorm_forward(
                        &mut ops,
                        ctx,
                        out,
                        st,
                        &resid[l],
                        params,
                        off(tb, &format!("{pre}.ln1.w")),
                        off(tb, &format!("{pre}.ln1.b")),
                        n,
                        c,
                    );
                    out
                }
                None => &resid[l],
            };
            let w_qkv = Map {
                off: off(tb, &format!("{pre}.attn.W_Q")) as u32,
                rs: hs as u32,
                cs: 1,
                rblk: 0,
                rbs: 0,
                cblk: hs as u32,
                cbs: (c * hs) as u32,
            };
            k::matmul(
                &mut ops,
                ctx,
                &MatmulArgs {
                    out: Operand {
                        buf: &ly.qkv,
                        map: Map::rows(0, 3 * nh * hs),
                    },
                    a: Operand {
                        buf: x,
                        map: Map::rows(0, c),
                    },
                    b: Operand {
                        buf: params,
                        map: w_qkv,
                    },
                    bias: Some((params, off(tb, &format!("{pre}.attn.b_Q")))),
                    d: None,
                    accumulate: false,
                    m: n,
                    n: 3 * nh * hs,
                    k: c,
                },
                None,
            );
            k::attention_forward(&mut ops, ctx, &ly.z, &ly.lse, &ly.qkv, b, t, nh, hs);
            let after_attn = ly.mid.as_ref().unwrap_or(&resid[l + 1]);
            k::matmul(
                &mut ops,
                ctx,
                &MatmulArgs {
                    out: Operand {
                        buf: after_attn,
                        map: Map::rows(0, c),
                    },
                    a: Operand {
                        buf: &ly.z,
                        map: Map::rows(0, nh * hs),
                    },
                    b: Operand {
                        buf: params,
                        map: Map::rows(off(tb, &format!("{pre}.attn.W_O")), c),
                    },
                    bias: Some((params, off(tb, &format!("{pre}.attn.b_O")))),
                    d: Some((&resid[l], 0)),
                    accumulate: false,
                    m: n,
                    n: c,
                    k: nh * hs,
                },
                None,
            );
            if let (Some(mid), Some(pre_b), Some(post)) = (&ly.mid, &ly.pre, &ly.post) {
                let x2 = match &ly.ln2 {
                    Some((out, st)) => {
                        k::layernorm_forward(
                            &mut ops,
                            ctx,
                            out,
                            st,
                            mid,
                            params,
                            off(tb, &format!("{pre}.ln2.w")),
                            off(tb, &format!("{pre}.ln2.b")),
                            n,
                            c,
                        );
                        out
                    }
                    None => mid,
                };
                k::matmul(
                    &mut ops,
                    ctx,
                    &MatmulArgs {
                        out: Operand {
                            buf: pre_b,
                            map: Map::rows(0, m_dim),
                        },
                        a: Operand {
                            buf: x2,
                            map: Map::rows(0, c),
                        },
                        b: Operand {
                            buf: params,
                            map: Map::rows(off(tb, &format!("{pre}.mlp.W_in")), m_dim),
                        },
                        bias: Some((params, off(tb, &format!("{pre}.mlp.b_in")))),
                        d: None,
                        accumulate: false,
                        m: n,
                        n: m_dim,
                        k: c,
                    },
                    None,
                );
                k::activation_forward(&mut ops, ctx, post, pre_b, act, n, m_dim);
                k::matmul(
                    &mut ops,
                    ctx,
                    &MatmulArgs {
                        out: Operand {
                            buf: &resid[l + 1],
                            map: Map::rows(0, c),
                        },
                        a: Operand {
                            buf: post,
                            map: Map::rows(0, m_dim),
                        },
                        b: Operand {
                            buf: params,
                            map: Map::rows(off(tb, &format!("{pre}.mlp.W_out")), c),
                        },
                        bias: Some((params, off(tb, &format!("{pre}.mlp.b_out")))),
                        d: Some((mid, 0)),
                        accumulate: false,
                        m: n,
                        n: c,
                        k: m_dim,
                    },
                    None,
                );
            }
        }
        let last = &resid[cfg.n_layers];
        let fin = match &lnf {
            Some((out, st)) => {
                k::layernorm_forward(
                    &mut ops,
                    ctx,
                    out,
                    st,
                    last,
                    params,
                    off(tb, "ln_final.w"),
                    off(tb, "ln_final.b"),
                    n,
                    c,
                );
                out
            }
            None => last,
        };
        // the scored rows of (B, T, C): row r = (b, i) at (b·T + p0 + i)·C
        let scored = Map {
            off: (shape.p0 * c) as u32,
            rs: c as u32,
            cs: 1,
            rblk: shape.p as u32,
            rbs: (t * c) as u32,
            cblk: 0,
            cbs: 0,
        };
        let w_u = off(tb, "unembed.W_U");
        k::matmul(
            &mut ops,
            ctx,
            &MatmulArgs {
                out: Operand {
                    buf: &logits,
                    map: Map::rows(0, v),
                },
                a: Operand {
                    buf: fin,
                    map: scored,
                },
                b: Operand {
                    buf: params,
                    map: Map::rows(w_u, v),
                },
                bias: Some((params, off(tb, "unembed.b_U"))),
                d: None,
                accumulate: false,
                m: rows,
                n: v,
                k: c,
            },
            None,
        );
        if !shape.train {
            return Ok(Plan {
                shape,
                step,
                logits,
                argmax,
                stats,
                ops,
            });
        }

        // ---- loss and metrics
        k::crossentropy(
            &mut ops, ctx, &logits, &loss_rows, &argmax, &ok_rows, &step, 0, true, b, t, shape.p0,
            shape.p, v,
        );
        k::metrics(&mut ops, ctx, &stats, &loss_rows, &ok_rows, b, shape.p);

        // ---- backward
        let train_b = cfg.train_biases;
        // split-K scratch: the largest weight-gradient matmul
        let mut scratch_len = k::matmul_scratch_len(c, v, rows);
        scratch_len = scratch_len
            .max(k::matmul_scratch_len(nh * hs, c, n))
            .max(k::matmul_scratch_len(c, 3 * nh * hs, n));
        if m_dim > 0 {
            scratch_len = scratch_len
                .max(k::matmul_scratch_len(m_dim, c, n))
                .max(k::matmul_scratch_len(c, m_dim, n));
        }
        let scratch = buf("split-K scratch", scratch_len)?;
        // column sums (bias and LN gradients) over the N rows
        let widest = (2 * c).max(3 * nh * hs).max(m_dim).max(v);
        let colpart = buf(
            "column-sum partials",
            k::colsum_scratch_len(n, widest).max(k::colsum_scratch_len(rows, v)),
        )?;
        let sc = if scratch_len > 0 {
            Some(&scratch)
        } else {
            None
        };
        let dresid = dresid.expect("made above for training");
        let dz = buf("dz", n * nh * hs)?;
        let dqkv = buf("dqkv", n * 3 * nh * hs)?;
        let dd = buf("attention D", b * nh * t)?;
        let dpost = buf("dpost", n * m_dim)?;
        let dpre = buf("dpre", n * m_dim)?;
        let part = buf("grad_norm partials", k::GRAD_NORM_GROUPS)?;
        let g = &flat.grads;

        k::matmul(
            &mut ops,
            ctx,
            &MatmulArgs {
                out: Operand {
                    buf: g,
                    map: Map::rows(w_u, v),
                },
                a: Operand {
                    buf: fin,
                    map: Map {
                        off: (shape.p0 * c) as u32,
                        rs: 1,
                        cs: c as u32,
                        rblk: 0,
                        rbs: 0,
                        cblk: shape.p as u32,
                        cbs: (t * c) as u32,
                    },
                },
                b: Operand {
                    buf: &logits,
                    map: Map::rows(0, v),
                },
                bias: None,
                d: None,
                accumulate: false,
                m: c,
                n: v,
                k: rows,
            },
            sc,
        );
        if train_b {
            k::bias_backward(
                &mut ops,
                ctx,
                g,
                off(tb, "unembed.b_U"),
                &colpart,
                &logits,
                rows,
                v,
            );
        }
        let dfin = dln.as_ref().unwrap_or(&dresid); // zeroed at the start of the step
        k::matmul(
            &mut ops,
            ctx,
            &MatmulArgs {
                out: Operand {
                    buf: dfin,
                    map: scored,
                },
                a: Operand {
                    buf: &logits,
                    map: Map::rows(0, v),
                },
                b: Operand {
                    buf: params,
                    map: Map::cols(w_u, v),
                },
                bias: None,
                d: None,
                accumulate: false,
                m: rows,
                n: c,
                k: v,
            },
            None,
        );
        if let (Some((_, st)), Some(dln)) = (&lnf, &dln) {
            k::layernorm_backward(
                &mut ops,
                ctx,
                &dresid,
                dln,
                last,
                st,
                params,
                off(tb, "ln_final.w"),
                false,
                n,
                c,
            );
            k::layernorm_backward_params(
                &mut ops,
                ctx,
                g,
                off(tb, "ln_final.w"),
                off(tb, "ln_final.b"),
                &colpart,
                dln,
                last,
                st,
                n,
                c,
            );
        }
        for (l, ly) in layers.iter().enumerate().rev() {
            let pre = format!("blocks.{l}");
            // dresid holds d(resid_post); the MLP first
            if let (Some(mid), Some(pre_b), Some(post)) = (&ly.mid, &ly.pre, &ly.post) {
                let w_out = off(tb, &format!("{pre}.mlp.W_out"));
                let w_in = off(tb, &format!("{pre}.mlp.W_in"));
                k::matmul(
                    &mut ops,
                    ctx,
                    &MatmulArgs {
                        out: Operand {
                            buf: g,
                            map: Map::rows(w_out, c),
                        },
                        a: Operand {
                            buf: post,
                            map: Map::cols(0, m_dim),
                        },
                        b: Operand {
                            buf: &dresid,
                            map: Map::rows(0, c),
                        },
                        bias: None,
                        d: None,
                        accumulate: false,
                        m: m_dim,
                        n: c,
                        k: n,
                    },
                    sc,
                );
                if train_b {
                    k::bias_backward(
                        &mut ops,
                        ctx,
                        g,
                        off(tb, &format!("{pre}.mlp.b_out")),
                        &colpart,
                        &dresid,
                        n,
                        c,
                    );
                }
                k::matmul(
                    &mut ops,
                    ctx,
                    &MatmulArgs {
                        out: Operand {
                            buf: &dpost,
                            map: Map::rows(0, m_dim),
                        },
                        a: Operand {
                            buf: &dresid,
                            map: Map::rows(0, c),
                        },
                        b: Operand {
                            buf: params,
                            map: Map::cols(w_out, c),
                        },
                        bias: None,
                        d: None,
                        accumulate: false,
                        m: n,
                        n: m_dim,
                        k: c,
                    },
                    None,
                );
                k::activation_backward(&mut ops, ctx, &dpre, &dpost, pre_b, act, n, m_dim);
                let x2 = ly.ln2.as_ref().map(|x| &x.0).unwrap_or(mid);
                k::matmul(
                    &mut ops,
                    ctx,
                    &MatmulArgs {
                        out: Operand {
                            buf: g,
                            map: Map::rows(w_in, m_dim),
                        },
                        a: Operand {
                            buf: x2,
                            map: Map::cols(0, c),
                        },
                        b: Operand {
                            buf: &dpre,
                            map: Map::rows(0, m_dim),
                        },
                        bias: None,
                        d: None,
                        accumulate: false,
                        m: c,
                        n: m_dim,
                        k: n,
                    },
                    sc,
                );
                if train_b {
                    k::bias_backward(
                        &mut ops,
                        ctx,
                        g,
                        off(tb, &format!("{pre}.mlp.b_in")),
                        &colpart,
                        &dpre,
                        n,
                        m_dim,
                    );
                }
                let (target, accumulate) = match &dln {
                    Some(d) => (d, false),
                    None => (&dresid, true),
                };
                k::matmul(
                    &mut ops,
                    ctx,
                    &MatmulArgs {
                        out: Operand {
                            buf: target,
                            map: Map::rows(0, c),
                        },
                        a: Operand {
                            buf: &dpre,
                            map: Map::rows(0, m_dim),
                        },
                        b: Operand {
                            buf: params,
                            map: Map::cols(w_in, m_dim),
                        },
                        bias: None,
                        d: None,
                        accumulate,
                        m: n,
                        n: c,
                        k: m_dim,
                    },
                    None,
                );
                if let (Some((_, st)), Some(dln)) = (&ly.ln2, &dln) {
                    let (w, bb) = (
                        off(tb, &format!("{pre}.ln2.w")),
                        off(tb, &format!("{pre}.ln2.b")),
                    );
                    k::layernorm_backward(
                        &mut ops, ctx, &dresid, dln, mid, st, params, w, true, n, c,
                    );
                    k::layernorm_backward_params(
                        &mut ops, ctx, g, w, bb, &colpart, dln, mid, st, n, c,
                    );
                }
            }
            // dresid holds d(resid_mid): attention
            let w_o = off(tb, &format!("{pre}.attn.W_O"));
            k::matmul(
                &mut ops,
                ctx,
                &MatmulArgs {
                    out: Operand {
                        buf: g,
                        map: Map::rows(w_o, c),
                    },
                    a: Operand {
                        buf: &ly.z,
                        map: Map::cols(0, nh * hs),
                    },
                    b: Operand {
                        buf: &dresid,
                        map: Map::rows(0, c),
                    },
                    bias: None,
                    d: None,
                    accumulate: false,
                    m: nh * hs,
                    n: c,
                    k: n,
                },
                sc,
            );
            if train_b {
                k::bias_backward(
                    &mut ops,
                    ctx,
                    g,
                    off(tb, &format!("{pre}.attn.b_O")),
                    &colpart,
                    &dresid,
                    n,
                    c,
                );
            }
            k::matmul(
                &mut ops,
                ctx,
                &MatmulArgs {
                    out: Operand {
                        buf: &dz,
                        map: Map::rows(0, nh * hs),
                    },
                    a: Operand {
                        buf: &dresid,
                        map: Map::rows(0, c),
                    },
                    b: Operand {
                        buf: params,
                        map: Map::cols(w_o, c),
                    },
                    bias: None,
                    d: None,
                    accumulate: false,
                    m: n,
                    n: nh * hs,
                    k: c,
                },
                None,
            );
            k::attention_backward_dq(
                &mut ops, ctx, &dqkv, &dd, &dz, &ly.qkv, &ly.z, &ly.lse, b, t, nh, hs,
            );
            k::attention_backward_dkv(
                &mut ops, ctx, &dqkv, &dz, &ly.qkv, &ly.lse, &dd, b, t, nh, hs,
            );
            let x = ly.ln1.as_ref().map(|x| &x.0).unwrap_or(&resid[l]);
            let w_q = off(tb, &format!("{pre}.attn.W_Q"));
            k::matmul(
                &mut ops,
                ctx,
                &MatmulArgs {
                    out: Operand {
                        buf: g,
                        map: Map {
                            off: w_q as u32,
                            rs: hs as u32,
                            cs: 1,
                            rblk: 0,
                            rbs: 0,
                            cblk: hs as u32,
                            cbs: (c * hs) as u32,
                        },
                    },
                    a: Operand {
                        buf: x,
                        map: Map::cols(0, c),
                    },
                    b: Operand {
                        buf: &dqkv,
                        map: Map::rows(0, 3 * nh * hs),
                    },
                    bias: None,
                    d: None,
                    accumulate: false,
                    m: c,
                    n: 3 * nh * hs,
                    k: n,
                },
                sc,
            );
            if train_b {
                k::bias_backward(
                    &mut ops,
                    ctx,
                    g,
                    off(tb, &format!("{pre}.attn.b_Q")),
                    &colpart,
                    &dqkv,
                    n,
                    3 * nh * hs,
                );
            }
            let (target, accumulate) = match &dln {
                Some(d) => (d, false),
                None => (&dresid, true),
            };
            k::matmul(
                &mut ops,
                ctx,
                &MatmulArgs {
                    out: Operand {
                        buf: target,
                        map: Map::rows(0, c),
                    },
                    a: Operand {
                        buf: &dqkv,
                        map: Map::rows(0, 3 * nh * hs),
                    },
                    b: Operand {
                        buf: params,
                        map: Map {
                            off: w_q as u32,
                            rs: 1,
                            cs: hs as u32,
                            rblk: hs as u32,
                            rbs: (c * hs) as u32,
                            cblk: 0,
                            cbs: 0,
                        },
                    },
                    bias: None,
                    d: None,
                    accumulate,
                    m: n,
                    n: c,
                    k: 3 * nh * hs,
                },
                None,
            );
            if let (Some((_, st)), Some(dln)) = (&ly.ln1, &dln) {
                let (w, bb) = (
                    off(tb, &format!("{pre}.ln1.w")),
                    off(tb, &format!("{pre}.ln1.b")),
                );
                k::layernorm_backward(
                    &mut ops, ctx, &dresid, dln, &resid[l], st, params, w, true, n, c,
                );
                k::layernorm_backward_params(
                    &mut ops, ctx, g, w, bb, &colpart, dln, &resid[l], st, n, c,
                );
            }
        }
        k::embed_backward(
            &mut ops,
            ctx,
            g,
            &dresid,
            &step,
            n,
            n + cfg.d_vocab + 1,
            off(tb, "embed.W_E"),
            off(tb, "pos_embed.W_pos"),
            b,
            t,
            c,
            cfg.d_vocab,
        );

        // ---- optimiser
        let total = table.total_len();
        k::grad_norm(
            &mut ops,
            ctx,
            &stats,
            &flat.vars,
            &part,
            g,
            clip as f32,
            total,
        );
        k::adamw(
            &mut ops, ctx, params, &flat.m, &flat.v, g, &flat.mask, &flat.vars, betas.0, betas.1,
            betas.2, total,
        );
        Ok(Plan {
            shape,
            step,
            logits,
            argmax,
            stats,
            ops,
        })
    }
}

/// The step buffer's contents for one batch (B, T) of tokens: the tokens, and for training the rows
/// of each input token in row order (a counting sort: offsets (d_vocab + 1), then rows (B·T)), which
/// lets embed_backward sum dW_E without atomics.
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
    let mut next = counts;
    for (r, &x) in tokens.iter().enumerate() {
        let slot = &mut next[x as usize];
        out[rows + *slot as usize] = r as u32;
        *slot += 1;
    }
    debug_assert_eq!(out.len() - base, d_vocab + 1 + tokens.len());
}
