//! The kernels: one `.wgsl` file per kernel under `kernels/` (its first lines say what it computes,
//! the grid, and which outputs each invocation owns), and one launcher per kernel, with the same name,
//! that appends its dispatch to an [`Ops`] list. Launcher arguments follow llm.c's order: outputs,
//! inputs, weights, then dimensions. Offsets into the flat parameter / gradient buffers are element
//! offsets from the [`ParamTable`](crate::model::ParamTable).

use super::context::{Bind, GpuContext, Kernel, KernelDef};
use wgpu::Buffer;

use Bind::{Read as R, Uniform as U, Write as W};

/// Every kernel's source is `kernels/common.wgsl` (shared helpers) followed by its own file.
macro_rules! kernel {
    ($id:ident, $file:literal, $entry:literal, $binds:expr) => {
        pub static $id: KernelDef = KernelDef {
            name: stringify!($id),
            src: concat!(
                include_str!("kernels/common.wgsl"),
                include_str!(concat!("kernels/", $file))
            ),
            entry: $entry,
            binds: $binds,
        };
    };
}

pub mod defs {
    use super::*;
    kernel!(
        MATMUL,
        "matmul.wgsl",
        "main",
        &[(0, R), (1, R), (2, W), (3, R), (4, R), (5, U)]
    );
    kernel!(
        MATMUL_REDUCE,
        "matmul_reduce.wgsl",
        "main",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        EMBED_FORWARD,
        "embed_forward.wgsl",
        "main",
        &[(0, R), (1, R), (2, W), (3, U)]
    );
    kernel!(
        EMBED_BACKWARD,
        "embed_backward.wgsl",
        "main",
        &[(0, R), (1, R), (2, W), (3, U)]
    );
    kernel!(
        LAYERNORM_FORWARD,
        "layernorm_forward.wgsl",
        "main",
        &[(0, R), (1, R), (2, W), (3, W), (4, U)]
    );
    kernel!(
        LAYERNORM_BACKWARD,
        "layernorm_backward.wgsl",
        "main",
        &[(0, R), (1, R), (2, R), (3, R), (4, W), (5, U)]
    );
    kernel!(
        LAYERNORM_BACKWARD_PARAMS,
        "layernorm_backward_params.wgsl",
        "partial",
        &[(0, R), (1, R), (2, R), (3, W), (4, U)]
    );
    kernel!(
        LAYERNORM_BACKWARD_PARAMS_FINISH,
        "layernorm_backward_params.wgsl",
        "finish",
        &[(5, R), (6, W), (7, U)]
    );
    kernel!(
        ATTENTION_FORWARD,
        "attention_forward.wgsl",
        "main",
        &[(0, R), (1, W), (2, W), (3, U)]
    );
    kernel!(
        ATTENTION_BACKWARD_DQ,
        "attention_backward_dq.wgsl",
        "main",
        &[(0, R), (1, R), (2, R), (3, R), (4, W), (5, W), (6, U)]
    );
    kernel!(
        ATTENTION_BACKWARD_DKV,
        "attention_backward_dkv.wgsl",
        "main",
        &[(0, R), (1, R), (2, R), (3, R), (4, W), (5, U)]
    );
    kernel!(
        ACTIVATION_FORWARD,
        "activation_forward.wgsl",
        "main",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        ACTIVATION_BACKWARD,
        "activation_backward.wgsl",
        "main",
        &[(0, R), (1, R), (2, W), (3, U)]
    );
    kernel!(
        BIAS_BACKWARD,
        "bias_backward.wgsl",
        "partial",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        BIAS_BACKWARD_FINISH,
        "bias_backward.wgsl",
        "finish",
        &[(3, R), (4, W), (5, U)]
    );
    kernel!(
        CROSSENTROPY,
        "crossentropy.wgsl",
        "main",
        &[(0, W), (1, R), (2, W), (3, W), (4, W), (5, U)]
    );
    kernel!(
        METRICS,
        "metrics.wgsl",
        "main",
        &[(0, R), (1, R), (2, W), (3, U)]
    );
    kernel!(
        GRAD_NORM_PARTIAL,
        "grad_norm.wgsl",
        "partial",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        GRAD_NORM_FINISH,
        "grad_norm.wgsl",
        "finish",
        &[(3, R), (4, W), (5, W), (6, U)]
    );
    kernel!(
        ADAMW,
        "adamw.wgsl",
        "main",
        &[(0, W), (1, R), (2, W), (3, W), (4, R), (5, R), (6, U)]
    );

    /// Every kernel, for building them all up front (a shader error then shows at start-up).
    pub static ALL: [&KernelDef; 20] = [
        &MATMUL,
        &MATMUL_REDUCE,
        &EMBED_FORWARD,
        &EMBED_BACKWARD,
        &LAYERNORM_FORWARD,
        &LAYERNORM_BACKWARD,
        &LAYERNORM_BACKWARD_PARAMS,
        &LAYERNORM_BACKWARD_PARAMS_FINISH,
        &BIAS_BACKWARD_FINISH,
        &ATTENTION_FORWARD,
        &ATTENTION_BACKWARD_DQ,
        &ATTENTION_BACKWARD_DKV,
        &ACTIVATION_FORWARD,
        &ACTIVATION_BACKWARD,
        &BIAS_BACKWARD,
        &CROSSENTROPY,
        &METRICS,
        &GRAD_NORM_PARTIAL,
        &GRAD_NORM_FINISH,
        &ADAMW,
    ];
}

/// Most workgroups in one grid dimension (WebGPU default `maxComputeWorkgroupsPerDimension`).
const MAX_GROUPS: u32 = 65_535;

/// A linear count of workgroups as an (x, y) grid; kernels rebuild the index as x + y · num_workgroups.x.
pub fn grid(n: usize) -> (u32, u32, u32) {
    let n = n.max(1) as u64;
    let x = n.min(MAX_GROUPS as u64);
    (x as u32, n.div_ceil(x) as u32, 1)
}

/// One recorded GPU command.
pub enum Op {
    Dispatch {
        kernel: Kernel,
        bind: wgpu::BindGroup,
        groups: (u32, u32, u32),
    },
    Clear(Buffer),
    Copy {
        src: Buffer,
        src_off: u64,
        dst: Buffer,
        dst_off: u64,
        bytes: u64,
    },
}

/// A list of dispatches, clears and copies, built once and recorded into a command encoder for every
/// step (consecutive dispatches share one compute pass).
#[derive(Default)]
pub struct Ops {
    pub ops: Vec<Op>,
}

impl Ops {
    /// Appends a dispatch of `def` over `groups` with `bufs` bound in the order of its bindings
    /// (the last binding, the uniform, gets `params`).
    pub fn dispatch(
        &mut self,
        ctx: &GpuContext,
        def: &'static KernelDef,
        bufs: &[&Buffer],
        params: &[u32],
        groups: (u32, u32, u32),
    ) {
        let kernel = ctx.kernel(def);
        let uni = ctx.uniform(def.name, params);
        let mut entries = Vec::with_capacity(def.binds.len());
        let mut it = bufs.iter();
        for &(binding, kind) in def.binds {
            let buf: &Buffer = if kind == Bind::Uniform {
                &uni
            } else {
                it.next().expect("a buffer for every storage binding")
            };
            entries.push(wgpu::BindGroupEntry {
                binding,
                resource: buf.as_entire_binding(),
            });
        }
        assert!(
            it.next().is_none(),
            "{}: more buffers than bindings",
            def.name
        );
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(def.name),
            layout: &kernel.layout,
            entries: &entries,
        });
        self.ops.push(Op::Dispatch {
            kernel,
            bind,
            groups,
        });
    }

    pub fn clear(&mut self, b: &Buffer) {
        self.ops.push(Op::Clear(b.clone()));
    }

    pub fn copy(&mut self, src: &Buffer, src_off: u64, dst: &Buffer, dst_off: u64, bytes: u64) {
        self.ops.push(Op::Copy {
            src: src.clone(),
            src_off,
            dst: dst.clone(),
            dst_off,
            bytes,
        });
    }

    /// Records every op into `enc`.
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        let mut i = 0;
        while i < self.ops.len() {
            match &self.ops[i] {
                Op::Dispatch { .. } => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: None,
                    });
                    while let Some(Op::Dispatch {
                        kernel,
                        bind,
                        groups,
                    }) = self.ops.get(i)
                    {
                        pass.set_pipeline(&kernel.pipeline);
                        pass.set_bind_group(0, bind, &[]);
                        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
                        i += 1;
                    }
                }
                Op::Clear(b) => {
                    enc.clear_buffer(b, 0, None);
                    i += 1;
                }
                Op::Copy {
                    src,
                    src_off,
                    dst,
                    dst_off,
                    bytes,
                } => {
                    enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *bytes);
                    i += 1;
                }
            }
        }
    }

    /// Records and submits the ops on their own (tests and one-off work).
    pub fn submit(&self, ctx: &GpuContext) {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ops") });
        self.record(&mut enc);
        ctx.queue.submit([enc.finish()]);
    }
}

/// How an operand of [`matmul`] is addressed: element (r, c) lives at
/// `off + (r / rblk)·rbs + (r % rblk)·rs + (c / cblk)·cbs + (c % cblk)·cs` (a block of 0 means none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Map {
    pub off: u32,
    pub rs: u32,
    pub cs: u32,
    pub rblk: u32,
    pub rbs: u32,
    pub cblk: u32,
    pub cbs: u32,
}

impl Map {
    /// Row-major with leading dimension `ld`, starting at `off`.
    pub fn rows(off: usize, ld: usize) -> Map {
        Map {
            off: off as u32,
            rs: ld as u32,
            cs: 1,
            rblk: 0,
            rbs: 0,
            cblk: 0,
            cbs: 0,
        }
    }
    /// The transpose of a row-major matrix with leading dimension `ld`: (r, c) at off + c·ld + r.
    pub fn cols(off: usize, ld: usize) -> Map {
        Map {
            off: off as u32,
            rs: 1,
            cs: ld as u32,
            rblk: 0,
            rbs: 0,
            cblk: 0,
            cbs: 0,
        }
    }
    fn words(&self) -> [u32; 8] {
        [
            self.off, self.rs, self.cs, self.rblk, self.rbs, self.cblk, self.cbs, 0,
        ]
    }
}

/// A matrix operand: a buffer and its address map.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub buf: &'a Buffer,
    pub map: Map,
}

/// out (M, N) [+]= A (M, K) · B (K, N) [+ bias (N) at an element offset] [+ D (M, N), addressed as out].
pub struct MatmulArgs<'a> {
    pub out: Operand<'a>,
    pub a: Operand<'a>,
    pub b: Operand<'a>,
    pub bias: Option<(&'a Buffer, usize)>,
    pub d: Option<(&'a Buffer, usize)>,
    pub accumulate: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// How many K splits a matmul of this shape uses (1 = none). Weight gradients have few output tiles
/// and a long K (the B·T rows); splitting K keeps the GPU's cores busy, and the splits are summed in
/// a fixed order by `matmul_reduce`, so the result stays deterministic.
pub fn matmul_splits(m: usize, n: usize, k: usize) -> usize {
    let tiles = m.div_ceil(64) * n.div_ceil(64);
    if tiles >= 96 || k < 1024 {
        return 1;
    }
    (256 / tiles).clamp(1, k / 256).min(64)
}

/// Elements of split-K scratch a matmul of this shape needs (0 when it does not split).
pub fn matmul_scratch_len(m: usize, n: usize, k: usize) -> usize {
    let s = matmul_splits(m, n, k);
    if s > 1 {
        s * m * n
    } else {
        0
    }
}

/// Launches `matmul` (and `matmul_reduce` when K is split; `scratch` must then hold
/// [`matmul_scratch_len`] elements).
pub fn matmul(ops: &mut Ops, ctx: &GpuContext, x: &MatmulArgs, scratch: Option<&Buffer>) {
    let splits = if scratch.is_some() {
        matmul_splits(x.m, x.n, x.k)
    } else {
        1
    };
    let kchunk = x.k.div_ceil(splits).div_ceil(16) * 16;
    let splits = x.k.div_ceil(kchunk.max(1)).max(1);
    let mut flags = 0u32;
    if x.bias.is_some() {
        flags |= 1;
    }
    if x.d.is_some() {
        flags |= 2;
    }
    if x.accumulate {
        flags |= 4;
    }
    let partial = splits > 1;
    if partial {
        assert!(
            x.bias.is_none() && x.d.is_none(),
            "split matmuls carry no bias or D"
        );
        flags = 8;
    }
    let mut p = vec![
        x.m as u32,
        x.n as u32,
        x.k as u32,
        flags,
        kchunk.max(16) as u32,
        x.bias.map(|b| b.1 as u32).unwrap_or(0),
        x.d.map(|d| d.1 as u32).unwrap_or(0),
        0,
    ];
    p.extend(x.a.map.words());
    p.extend(x.b.map.words());
    p.extend(x.out.map.words());
    let out = if partial {
        scratch.expect("scratch for a split matmul")
    } else {
        x.out.buf
    };
    let bias = x.bias.map(|b| b.0).unwrap_or(x.b.buf);
    let d = x.d.map(|d| d.0).unwrap_or(x.a.buf);
    let groups = (
        x.n.div_ceil(64) as u32,
        x.m.div_ceil(64) as u32,
        splits as u32,
    );
    ops.dispatch(
        ctx,
        &defs::MATMUL,
        &[x.a.buf, x.b.buf, out, bias, d],
        &p,
        groups,
    );
    if partial {
        matmul_reduce(ops, ctx, x.out, out, x.accumulate, splits, x.m, x.n);
    }
}

/// out (M, N) [+]= the sum of `splits` partial products (splits, M, N) in `part`, in split order.
#[allow(clippy::too_many_arguments)]
pub fn matmul_reduce(
    ops: &mut Ops,
    ctx: &GpuContext,
    out: Operand,
    part: &Buffer,
    accumulate: bool,
    splits: usize,
    m: usize,
    n: usize,
) {
    let mut p = vec![
        m as u32,
        n as u32,
        splits as u32,
        if accumulate { 4 } else { 0 },
    ];
    p.extend(out.map.words());
    ops.dispatch(
        ctx,
        &defs::MATMUL_REDUCE,
        &[part, out.buf],
        &p,
        grid((m * n).div_ceil(256)),
    );
}

/// Whether matmuls with `m` rows and `n` columns fit the dispatch grid (65 535 tiles of 64 a side).
pub fn matmul_fits(m: usize, n: usize) -> bool {
    m.div_ceil(64) <= MAX_GROUPS as usize && n.div_ceil(64) <= MAX_GROUPS as usize
}

/// resid (B·T, C) = W_E[tokens] + W_pos[t]; tokens at element `tok_off` of the step buffer.
#[allow(clippy::too_many_arguments)]
pub fn embed_forward(
    ops: &mut Ops,
    ctx: &GpuContext,
    resid: &Buffer,
    step: &Buffer,
    tok_off: usize,
    params: &Buffer,
    we_off: usize,
    wp_off: usize,
    n: usize,
    t: usize,
    c: usize,
) {
    let p = [
        n as u32,
        t as u32,
        c as u32,
        tok_off as u32,
        we_off as u32,
        wp_off as u32,
        0,
        0,
    ];
    ops.dispatch(
        ctx,
        &defs::EMBED_FORWARD,
        &[step, params, resid],
        &p,
        grid((n * c).div_ceil(256)),
    );
}

/// dW_E and dW_pos from dresid (B·T, C) and the step buffer's per-token row lists.
#[allow(clippy::too_many_arguments)]
pub fn embed_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    dresid: &Buffer,
    step: &Buffer,
    off_off: usize,
    rows_off: usize,
    we_off: usize,
    wp_off: usize,
    b: usize,
    t: usize,
    c: usize,
    v: usize,
) {
    let p = [
        v as u32,
        t as u32,
        c as u32,
        b as u32,
        off_off as u32,
        rows_off as u32,
        we_off as u32,
        wp_off as u32,
    ];
    ops.dispatch(
        ctx,
        &defs::EMBED_BACKWARD,
        &[dresid, step, grads],
        &p,
        grid((v + t) * c.div_ceil(32)),
    );
}

/// out (N, C), stats (N, 2) = LN(x) with gain and bias at `w_off` / `b_off` of `params`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    ops: &mut Ops,
    ctx: &GpuContext,
    out: &Buffer,
    stats: &Buffer,
    x: &Buffer,
    params: &Buffer,
    w_off: usize,
    b_off: usize,
    n: usize,
    c: usize,
) {
    let p = [
        n as u32,
        c as u32,
        w_off as u32,
        b_off as u32,
        (crate::model::config::LN_EPS as f32).to_bits(),
        0,
        0,
        0,
    ];
    ops.dispatch(
        ctx,
        &defs::LAYERNORM_FORWARD,
        &[x, params, out, stats],
        &p,
        grid(n),
    );
}

/// dres (N, C) (+)= dx of LN, from x, stats, the gain at `w_off` and dout.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    dres: &Buffer,
    dout: &Buffer,
    x: &Buffer,
    stats: &Buffer,
    params: &Buffer,
    w_off: usize,
    accumulate: bool,
    n: usize,
    c: usize,
) {
    let p = [n as u32, c as u32, w_off as u32, accumulate as u32];
    ops.dispatch(
        ctx,
        &defs::LAYERNORM_BACKWARD,
        &[x, stats, params, dout, dres],
        &p,
        grid(n),
    );
}

/// Row chunks of a column sum over `n` rows (each chunk one workgroup row of the grid; 1 = no second pass).
pub fn colsum_chunks(n: usize) -> usize {
    (n / 2048).clamp(1, 64)
}

/// Elements of scratch a column sum of `cols` columns over `n` rows needs (`colsum_chunks` rows of them).
pub fn colsum_scratch_len(n: usize, cols: usize) -> usize {
    let r = colsum_chunks(n);
    if r > 1 {
        r * cols
    } else {
        0
    }
}

/// grads[w_off..] = dw, grads[b_off..] = db of LN, from x, stats and dout (N, C); `part` holds
/// `colsum_scratch_len(n, 2·C)` elements.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward_params(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    w_off: usize,
    b_off: usize,
    part: &Buffer,
    dout: &Buffer,
    x: &Buffer,
    stats: &Buffer,
    n: usize,
    c: usize,
) {
    let r = colsum_chunks(n);
    let p = [
        n as u32,
        c as u32,
        w_off as u32,
        b_off as u32,
        r as u32,
        0,
        0,
        0,
    ];
    let out = if r > 1 { part } else { grads };
    ops.dispatch(
        ctx,
        &defs::LAYERNORM_BACKWARD_PARAMS,
        &[x, stats, dout, out],
        &p,
        (c.div_ceil(16) as u32, r as u32, 1),
    );
    if r > 1 {
        ops.dispatch(
            ctx,
            &defs::LAYERNORM_BACKWARD_PARAMS_FINISH,
            &[part, grads],
            &p,
            (c.div_ceil(256) as u32, 1, 1),
        );
    }
}

fn attn_params(b: usize, t: usize, nh: usize, hs: usize) -> [u32; 8] {
    [
        b as u32,
        t as u32,
        nh as u32,
        hs as u32,
        (1.0 / (hs as f32).sqrt()).to_bits(),
        0,
        0,
        0,
    ]
}

/// z (B·T, NH·HS) and lse (B, NH, T) from qkv (B·T, 3·NH·HS).
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    ops: &mut Ops,
    ctx: &GpuContext,
    z: &Buffer,
    lse: &Buffer,
    qkv: &Buffer,
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
) {
    ops.dispatch(
        ctx,
        &defs::ATTENTION_FORWARD,
        &[qkv, z, lse],
        &attn_params(b, t, nh, hs),
        grid(b * nh * t),
    );
}

/// The Q columns of dqkv and D (B, NH, T) from qkv, z, dz and lse.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_dq(
    ops: &mut Ops,
    ctx: &GpuContext,
    dqkv: &Buffer,
    dd: &Buffer,
    dz: &Buffer,
    qkv: &Buffer,
    z: &Buffer,
    lse: &Buffer,
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
) {
    ops.dispatch(
        ctx,
        &defs::ATTENTION_BACKWARD_DQ,
        &[qkv, z, dz, lse, dqkv, dd],
        &attn_params(b, t, nh, hs),
        grid(b * nh * t),
    );
}

/// The K and V columns of dqkv from qkv, dz, lse and D.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_dkv(
    ops: &mut Ops,
    ctx: &GpuContext,
    dqkv: &Buffer,
    dz: &Buffer,
    qkv: &Buffer,
    lse: &Buffer,
    dd: &Buffer,
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
) {
    ops.dispatch(
        ctx,
        &defs::ATTENTION_BACKWARD_DKV,
        &[qkv, dz, lse, dd, dqkv],
        &attn_params(b, t, nh, hs),
        grid(b * nh * t),
    );
}

/// The activation code the kernels use.
pub fn act_code(a: crate::model::ActFn) -> u32 {
    use crate::model::ActFn::*;
    match a {
        Relu => 0,
        Gelu => 1,
        GeluNew => 2,
        Solu => 3,
    }
}

/// post (N, M) = act(pre).
pub fn activation_forward(
    ops: &mut Ops,
    ctx: &GpuContext,
    post: &Buffer,
    pre: &Buffer,
    act: u32,
    n: usize,
    m: usize,
) {
    ops.dispatch(
        ctx,
        &defs::ACTIVATION_FORWARD,
        &[pre, post],
        &[n as u32, m as u32, act, 0],
        grid(n),
    );
}

/// dpre (N, M) = dpost · act'(pre).
#[allow(clippy::too_many_arguments)]
pub fn activation_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    dpre: &Buffer,
    dpost: &Buffer,
    pre: &Buffer,
    act: u32,
    n: usize,
    m: usize,
) {
    ops.dispatch(
        ctx,
        &defs::ACTIVATION_BACKWARD,
        &[pre, dpost, dpre],
        &[n as u32, m as u32, act, 0],
        grid(n),
    );
}

/// grads[off..off + OC] = column sums of dout (N, OC); `part` holds `colsum_scratch_len(n, OC)` elements.
#[allow(clippy::too_many_arguments)]
pub fn bias_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    off: usize,
    part: &Buffer,
    dout: &Buffer,
    n: usize,
    oc: usize,
) {
    let r = colsum_chunks(n);
    let p = [n as u32, oc as u32, off as u32, r as u32];
    let out = if r > 1 { part } else { grads };
    ops.dispatch(
        ctx,
        &defs::BIAS_BACKWARD,
        &[dout, out],
        &p,
        (oc.div_ceil(16) as u32, r as u32, 1),
    );
    if r > 1 {
        ops.dispatch(
            ctx,
            &defs::BIAS_BACKWARD_FINISH,
            &[part, grads],
            &p,
            (oc.div_ceil(256) as u32, 1, 1),
        );
    }
}

/// Per-row loss, argmax and ok (argmax == target) of logits (B·P, V) against tokens[b, p0 + i + 1];
/// with `backward`, the logits are replaced by dlogits of the mean loss.
#[allow(clippy::too_many_arguments)]
pub fn crossentropy(
    ops: &mut Ops,
    ctx: &GpuContext,
    logits: &Buffer,
    loss: &Buffer,
    argmax: &Buffer,
    ok: &Buffer,
    step: &Buffer,
    tok_off: usize,
    backward: bool,
    b: usize,
    t: usize,
    p0: usize,
    p: usize,
    v: usize,
) {
    let rows = b * p;
    let params = [
        rows as u32,
        v as u32,
        p as u32,
        t as u32,
        p0 as u32,
        tok_off as u32,
        backward as u32,
        (1.0 / rows as f32).to_bits(),
    ];
    ops.dispatch(
        ctx,
        &defs::CROSSENTROPY,
        &[logits, step, loss, argmax, ok],
        &params,
        grid(rows),
    );
}

/// stats (4 + P) u32 = [mean loss, (grad norm), sequences right, flags, right per position...] from
/// crossentropy's per-row loss and ok (B, P).
pub fn metrics(
    ops: &mut Ops,
    ctx: &GpuContext,
    stats: &Buffer,
    loss: &Buffer,
    ok: &Buffer,
    b: usize,
    p: usize,
) {
    ops.dispatch(
        ctx,
        &defs::METRICS,
        &[loss, ok, stats],
        &[b as u32, p as u32, 0, 0],
        (1, 1, 1),
    );
}

/// Workgroups of grad_norm's first pass (and elements of its `part` buffer).
pub const GRAD_NORM_GROUPS: usize = 256;

/// stats[1] = ‖grads‖, vars[4] = clip coefficient, vars[5] = halt flag (see grad_norm.wgsl).
#[allow(clippy::too_many_arguments)]
pub fn grad_norm(
    ops: &mut Ops,
    ctx: &GpuContext,
    stats: &Buffer,
    vars: &Buffer,
    part: &Buffer,
    grads: &Buffer,
    clip: f32,
    total: usize,
) {
    let ng = GRAD_NORM_GROUPS.min(total.div_ceil(256)).max(1);
    ops.dispatch(
        ctx,
        &defs::GRAD_NORM_PARTIAL,
        &[grads, part],
        &[total as u32, ng as u32, 0, 0],
        (ng as u32, 1, 1),
    );
    ops.dispatch(
        ctx,
        &defs::GRAD_NORM_FINISH,
        &[part, stats, vars],
        &[ng as u32, clip.to_bits(), 0, 0],
        (1, 1, 1),
    );
}

/// One AdamW step over every trainable element (mask bit set), with the per-step values in vars.
#[allow(clippy::too_many_arguments)]
pub fn adamw(
    ops: &mut Ops,
    ctx: &GpuContext,
    params: &Buffer,
    m: &Buffer,
    v: &Buffer,
    grads: &Buffer,
    mask: &Buffer,
    vars: &Buffer,
    beta1: f64,
    beta2: f64,
    eps: f64,
    total: usize,
) {
    let p = [
        total as u32,
        (beta1 as f32).to_bits(),
        (beta2 as f32).to_bits(),
        ((1.0 - beta1) as f32).to_bits(),
        ((1.0 - beta2) as f32).to_bits(),
        (eps as f32).to_bits(),
        0,
        0,
    ];
    ops.dispatch(
        ctx,
        &defs::ADAMW,
        &[params, grads, m, v, mask, vars],
        &p,
        grid(total.div_ceil(256)),
    );
}
