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
    ($id:ident, $file:literal, $binds:expr) => {
        pub static $id: KernelDef = KernelDef {
            name: stringify!($id),
            src: concat!(
                include_str!("kernels/common.wgsl"),
                include_str!(concat!("kernels/", $file))
            ),
            entry: "main",
            binds: $binds,
        };
    };
}

pub mod defs {
    use super::*;
    use Bind::{ReadAt as RA, WriteAt as WA};
    kernel!(
        MATMUL,
        "matmul.wgsl",
        &[(0, R), (1, R), (2, W), (3, R), (4, R), (5, U)]
    );
    kernel!(
        EMBED_FORWARD,
        "embed_forward.wgsl",
        &[(0, RA), (1, R), (2, W), (3, W), (4, U)]
    );
    kernel!(
        EMBED_BACKWARD,
        "embed_backward.wgsl",
        &[(0, R), (1, RA), (2, W), (3, W), (4, U)]
    );
    kernel!(
        SHORTFORMER_FORWARD,
        "shortformer_forward.wgsl",
        &[(0, R), (1, R), (2, W), (3, U)]
    );
    kernel!(
        SHORTFORMER_BACKWARD,
        "shortformer_backward.wgsl",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        LAYERNORM_FORWARD,
        "layernorm_forward.wgsl",
        &[(0, R), (1, R), (2, W), (3, W), (4, U)]
    );
    kernel!(
        LAYERNORM_BACKWARD,
        "layernorm_backward.wgsl",
        &[(0, R), (1, R), (2, R), (3, R), (4, W), (5, U)]
    );
    kernel!(
        LAYERNORM_BACKWARD_PARAMS,
        "layernorm_backward_params.wgsl",
        &[(0, R), (1, R), (2, R), (3, W), (4, U)]
    );
    kernel!(
        ATTENTION_FORWARD,
        "attention_forward.wgsl",
        &[(0, R), (1, W), (2, W), (3, U)]
    );
    kernel!(
        ATTENTION_BACKWARD,
        "attention_backward.wgsl",
        &[(0, R), (1, R), (2, R), (3, R), (4, W), (5, U)]
    );
    kernel!(
        ACTIVATION_FORWARD,
        "activation_forward.wgsl",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        ACTIVATION_BACKWARD,
        "activation_backward.wgsl",
        &[(0, R), (1, R), (2, W), (3, U)]
    );
    kernel!(
        BIAS_BACKWARD,
        "bias_backward.wgsl",
        &[(0, R), (1, W), (2, U)]
    );
    kernel!(
        CROSSENTROPY,
        "crossentropy.wgsl",
        &[(0, W), (1, RA), (2, W), (3, W), (4, U)]
    );
    kernel!(
        GRAD_NORM,
        "grad_norm.wgsl",
        &[
            (0, W),
            (1, R),
            (2, R),
            (3, R),
            (4, W),
            (5, RA),
            (6, R),
            (7, U)
        ]
    );
    kernel!(
        ADAMW,
        "adamw.wgsl",
        &[
            (0, W),
            (1, R),
            (2, W),
            (3, R),
            (4, RA),
            (5, W),
            (6, R),
            (7, WA),
            (8, U)
        ]
    );

    /// Every kernel, for building them all up front (a shader error then shows at start-up).
    pub static ALL: [&KernelDef; 16] = [
        &MATMUL,
        &EMBED_FORWARD,
        &EMBED_BACKWARD,
        &SHORTFORMER_FORWARD,
        &SHORTFORMER_BACKWARD,
        &LAYERNORM_FORWARD,
        &LAYERNORM_BACKWARD,
        &LAYERNORM_BACKWARD_PARAMS,
        &ATTENTION_FORWARD,
        &ATTENTION_BACKWARD,
        &ACTIVATION_FORWARD,
        &ACTIVATION_BACKWARD,
        &BIAS_BACKWARD,
        &CROSSENTROPY,
        &GRAD_NORM,
        &ADAMW,
    ];
}

/// Most workgroups in one grid dimension (WebGPU default `maxComputeWorkgroupsPerDimension`).
/// Most workgroups in one grid dimension (WebGPU default `maxComputeWorkgroupsPerDimension`).
const MAX_GROUPS: u32 = 65_535;

/// A linear count of workgroups as an (x, y) grid; kernels rebuild the index as x + y · num_workgroups.x.
pub fn grid(n: usize) -> (u32, u32, u32) {
    let n = n.max(1) as u64;
    let x = n.min(MAX_GROUPS as u64);
    (x as u32, n.div_ceil(x) as u32, 1)
}

/// One step's window of a buffer that holds a window per step of a submission: bound at a dynamic
/// offset, step k at k · `stride` bytes, `size` bytes long. Per-step inputs, the schedule and the
/// stats live in such buffers, so no step copies anything in or out.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    pub buf: &'a Buffer,
    pub size: u64,
    pub stride: u64,
}

impl<'a> Window<'a> {
    /// The first `len` 4-byte elements of `buf`, the same window for every step.
    pub fn whole(buf: &'a Buffer, len: usize) -> Self {
        Window {
            buf,
            size: (len.max(1) * 4) as u64,
            stride: 0,
        }
    }
}

/// One recorded dispatch. `strides`: per dynamic binding (in binding order), the bytes between steps.
pub struct Dispatch {
    kernel: Kernel,
    bind: wgpu::BindGroup,
    groups: (u32, u32, u32),
    strides: Vec<u32>,
}

/// The dispatches of a step, built once and recorded into a command encoder for every step (one
/// compute pass; wgpu orders dependent dispatches). Nothing else is recorded per step: no copies,
/// no clears, so one step is `len()` GPU commands.
#[derive(Default)]
pub struct Ops {
    pub ops: Vec<Dispatch>,
}

impl Ops {
    /// Appends a dispatch of `def` over `groups` with `bufs` bound whole, in the order of its
    /// bindings (the last binding, the uniform, gets `params`).
    pub fn dispatch(
        &mut self,
        ctx: &GpuContext,
        def: &'static KernelDef,
        bufs: &[&Buffer],
        params: &[u32],
        groups: (u32, u32, u32),
    ) {
        let wins: Vec<Window> = bufs
            .iter()
            .map(|b| Window {
                buf: b,
                size: 0,
                stride: 0,
            })
            .collect();
        self.dispatch_at(ctx, def, &wins, params, groups);
    }

    /// As [`Ops::dispatch`], with the dynamic bindings (`Bind::ReadAt` / `WriteAt`) bound as windows
    /// (a size of 0 binds the whole buffer; only dynamic bindings use the window).
    pub fn dispatch_at(
        &mut self,
        ctx: &GpuContext,
        def: &'static KernelDef,
        bufs: &[Window],
        params: &[u32],
        groups: (u32, u32, u32),
    ) {
        let kernel = ctx.kernel(def);
        let uni = ctx.uniform(def.name, params);
        let mut entries = Vec::with_capacity(def.binds.len());
        let mut strides = Vec::new();
        let mut it = bufs.iter();
        for &(binding, kind) in def.binds {
            let resource = if kind == Bind::Uniform {
                uni.as_entire_binding()
            } else {
                let w = it.next().expect("a buffer for every storage binding");
                if matches!(kind, Bind::ReadAt | Bind::WriteAt) {
                    strides.push(w.stride as u32);
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: w.buf,
                        offset: 0,
                        size: std::num::NonZeroU64::new(w.size),
                    })
                } else {
                    w.buf.as_entire_binding()
                }
            };
            entries.push(wgpu::BindGroupEntry { binding, resource });
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
        self.ops.push(Dispatch {
            kernel,
            bind,
            groups,
            strides,
        });
    }

    /// GPU commands one step records (all dispatches).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Records step `k` of a submission into `enc` (dynamic bindings at k · stride).
    pub fn record(&self, enc: &mut wgpu::CommandEncoder, k: u32) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        let mut offsets = Vec::with_capacity(2);
        for d in &self.ops {
            offsets.clear();
            offsets.extend(d.strides.iter().map(|s| s * k));
            pass.set_pipeline(&d.kernel.pipeline);
            pass.set_bind_group(0, &d.bind, &offsets);
            pass.dispatch_workgroups(d.groups.0, d.groups.1, d.groups.2);
        }
    }

    /// Records and submits the ops on their own (tests and one-off work).
    pub fn submit(&self, ctx: &GpuContext) {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ops") });
        self.record(&mut enc, 0);
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
    /// W_Q, W_K, W_V ([3·NH, C, HS] at `off`) as one (C, 3·NH·HS) matrix: column block h·HS.. is head h.
    pub fn heads(off: usize, c: usize, hs: usize) -> Map {
        Map {
            off: off as u32,
            rs: hs as u32,
            cs: 1,
            rblk: 0,
            rbs: 0,
            cblk: hs as u32,
            cbs: (c * hs) as u32,
        }
    }
    /// The transpose of [`Map::heads`]: (3·NH·HS, C).
    pub fn heads_t(off: usize, c: usize, hs: usize) -> Map {
        Map {
            off: off as u32,
            rs: 1,
            cs: hs as u32,
            rblk: hs as u32,
            rbs: (c * hs) as u32,
            cblk: 0,
            cbs: 0,
        }
    }
    /// The P scored rows p0.. of each sequence of (B, T, ld), as (B·P, ld).
    pub fn scored_rows(p0: usize, p: usize, t: usize, ld: usize) -> Map {
        Map {
            off: (p0 * ld) as u32,
            rs: ld as u32,
            cs: 1,
            rblk: p as u32,
            rbs: (t * ld) as u32,
            cblk: 0,
            cbs: 0,
        }
    }
    /// The transpose of [`Map::scored_rows`]: (ld, B·P).
    pub fn scored_cols(p0: usize, p: usize, t: usize, ld: usize) -> Map {
        Map {
            off: (p0 * ld) as u32,
            rs: 1,
            cs: ld as u32,
            rblk: 0,
            rbs: 0,
            cblk: p as u32,
            cbs: (t * ld) as u32,
        }
    }
    /// The element index of (r, c), as the kernels compute it (common.wgsl `addr`).
    pub fn addr(&self, r: u32, c: u32) -> u32 {
        let row = match r.checked_div(self.rblk) {
            None => r * self.rs,
            Some(q) => q * self.rbs + (r % self.rblk) * self.rs,
        };
        let col = match c.checked_div(self.cblk) {
            None => c * self.cs,
            Some(q) => q * self.cbs + (c % self.cblk) * self.cs,
        };
        self.off + row + col
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

impl<'a> Operand<'a> {
    pub fn new(buf: &'a Buffer, map: Map) -> Self {
        Operand { buf, map }
    }
    /// Row-major (·, ld) from element `off`.
    pub fn rows(buf: &'a Buffer, off: usize, ld: usize) -> Self {
        Operand::new(buf, Map::rows(off, ld))
    }
    /// The transpose of a row-major (·, ld) matrix at `off`.
    pub fn cols(buf: &'a Buffer, off: usize, ld: usize) -> Self {
        Operand::new(buf, Map::cols(off, ld))
    }
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

impl<'a> MatmulArgs<'a> {
    /// out (M, N) = A (M, K) · B (K, N).
    pub fn new(
        out: Operand<'a>,
        a: Operand<'a>,
        b: Operand<'a>,
        m: usize,
        n: usize,
        k: usize,
    ) -> Self {
        MatmulArgs {
            out,
            a,
            b,
            bias: None,
            d: None,
            accumulate: false,
            m,
            n,
            k,
        }
    }
    /// Adds bias (N) at element `off` of `buf`.
    pub fn bias(mut self, buf: &'a Buffer, off: usize) -> Self {
        self.bias = Some((buf, off));
        self
    }
    /// Adds D (M, N), addressed as out, from element `off` of `buf` (the residual connection).
    pub fn plus(mut self, buf: &'a Buffer, off: usize) -> Self {
        self.d = Some((buf, off));
        self
    }
    /// Adds to out instead of overwriting it.
    pub fn accumulate(mut self, yes: bool) -> Self {
        self.accumulate = yes;
        self
    }
}

/// The split sums of one step: weight gradients whose K axis (the B·T rows) was cut into slices
/// leave one partial result per slice in `scratch`, and [`grad_norm`] finishes them all in one
/// dispatch, summing the slices in order (deterministic). A job is 16 u32 (see grad_norm.wgsl).
pub struct SplitSums {
    pub scratch: Buffer,
    cap: usize,
    used: usize,
    jobs: Vec<[u32; 16]>,
    groups: usize,
}

impl SplitSums {
    /// Scratch for `cap` elements of partials (the sum of every job's slices × M × N).
    pub fn new(ctx: &GpuContext, what: &str, cap: usize) -> crate::error::Result<Self> {
        Ok(SplitSums {
            scratch: ctx.storage(what, cap)?,
            cap,
            used: 0,
            jobs: Vec::new(),
            groups: 0,
        })
    }

    /// Reserves `len` elements of scratch; returns their element offset.
    fn alloc(&mut self, len: usize) -> usize {
        let off = self.used;
        self.used += len;
        // the plan sizes the scratch from the same shapes it records: a shortfall is a bug there
        assert!(self.used <= self.cap, "split-sum scratch too small");
        off
    }

    /// A job: out[map(r, c)] = Σ_s scratch[off + s·stride + r·N + c], s < splits, for (M, N).
    fn job(&mut self, off: usize, stride: usize, splits: usize, m: usize, n: usize, out: Map) {
        let mut w = [0u32; 16];
        w[..6].copy_from_slice(&[
            off as u32,
            stride as u32,
            splits as u32,
            m as u32,
            n as u32,
            self.groups as u32,
        ]);
        w[8..].copy_from_slice(&out.words());
        self.jobs.push(w);
        self.groups += (m * n).div_ceil(256);
    }

    /// A job of kind 1: out[map(v, c)] = Σ_k scratch[off + k·N + c] over the segments k of token v,
    /// their range read from the step window at `seg_off` (see embed_backward.wgsl).
    fn segment_job(&mut self, off: usize, seg_off: usize, v: usize, c: usize, out: Map) {
        self.job(off, c, 0, v, c, out);
        let last = self.jobs.len() - 1;
        self.jobs[last][6] = 1;
        self.jobs[last][7] = seg_off as u32;
    }

    /// Workgroups (and partials) of [`grad_norm`] over `total` gradient elements.
    pub fn parts(&self, total: usize) -> usize {
        grad_norm_groups(total) + self.groups
    }
}

/// How many K splits a matmul of this shape uses (1 = none). Weight gradients have few output tiles
/// and a long K (the B·T rows); splitting K keeps the GPU's cores busy, and the splits are summed in
/// a fixed order by [`grad_norm`], so the result stays deterministic.
pub fn matmul_splits(m: usize, n: usize, k: usize) -> usize {
    let tiles = m.div_ceil(64) * n.div_ceil(64);
    if tiles >= 96 || k < 1024 {
        return 1;
    }
    (256 / tiles).clamp(1, k / 256).min(64)
}

/// Elements of split-sum scratch a matmul of this shape needs (0 when it does not split).
pub fn matmul_scratch_len(m: usize, n: usize, k: usize) -> usize {
    let s = matmul_splits(m, n, k);
    if s > 1 {
        s * m * n
    } else {
        0
    }
}

/// Launches `matmul`. With `split` (weight gradients only: no bias, D or accumulate) a long K is cut
/// into slices whose partials [`grad_norm`] sums later; without it the product is written directly.
pub fn matmul(ops: &mut Ops, ctx: &GpuContext, x: &MatmulArgs, split: Option<&mut SplitSums>) {
    let want = if split.is_some() {
        matmul_splits(x.m, x.n, x.k)
    } else {
        1
    };
    let kchunk = x.k.div_ceil(want).div_ceil(16) * 16;
    let splits = x.k.div_ceil(kchunk.max(1)).max(1);
    let mut flags =
        x.bias.is_some() as u32 | (x.d.is_some() as u32) << 1 | (x.accumulate as u32) << 2;
    let mut part_off = 0;
    let mut out = x.out.buf;
    if let (true, Some(sums)) = (splits > 1, split) {
        assert!(
            x.bias.is_none() && x.d.is_none() && !x.accumulate,
            "split matmuls carry no bias, D or accumulate"
        );
        flags = 8;
        part_off = sums.alloc(splits * x.m * x.n);
        sums.job(part_off, x.m * x.n, splits, x.m, x.n, x.out.map);
        out = &sums.scratch;
    }
    let mut p = vec![
        x.m as u32,
        x.n as u32,
        x.k as u32,
        flags,
        kchunk.max(16) as u32,
        x.bias.map(|b| b.1 as u32).unwrap_or(0),
        x.d.map(|d| d.1 as u32).unwrap_or(0),
        part_off as u32,
    ];
    p.extend(x.a.map.words());
    p.extend(x.b.map.words());
    p.extend(x.out.map.words());
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
}

/// Whether matmuls with `m` rows and `n` columns fit the dispatch grid (65 535 tiles of 64 a side).
pub fn matmul_fits(m: usize, n: usize) -> bool {
    m.div_ceil(64) <= MAX_GROUPS as usize && n.div_ceil(64) <= MAX_GROUPS as usize
}

/// resid (B·T, C) = W_E[tokens] + W_pos[t] (W_E[tokens] alone when `wp_off` is `None`: shortformer
/// and positions off), tokens at element `tok_off` of the step's window; with `zero`, also zeroes
/// that (B·T, C) buffer (the backward's first gradient target).
#[allow(clippy::too_many_arguments)]
pub fn embed_forward(
    ops: &mut Ops,
    ctx: &GpuContext,
    resid: &Buffer,
    zero: Option<&Buffer>,
    step: Window,
    tok_off: usize,
    params: &Buffer,
    we_off: usize,
    wp_off: Option<usize>,
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
        wp_off.unwrap_or(0) as u32,
        zero.is_some() as u32 | (wp_off.is_none() as u32) << 1,
        0,
    ];
    let z = zero.unwrap_or(resid);
    let whole = |b| Window::whole(b, 0);
    ops.dispatch_at(
        ctx,
        &defs::EMBED_FORWARD,
        &[step, whole(params), whole(resid), whole(z)],
        &p,
        grid((n * c).div_ceil(256)),
    );
}

/// dW_pos (unless `wp_off` is `None`: shortformer and positions off), and dW_E's row segments
/// (finished by [`grad_norm`]), from dresid (B·T, C) and the step window's per-token row lists in
/// the layout of [`step_data`](super::plan::step_data).
#[allow(clippy::too_many_arguments)]
pub fn embed_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    sums: &mut SplitSums,
    dresid: &Buffer,
    step: Window,
    we_off: usize,
    wp_off: Option<usize>,
    b: usize,
    t: usize,
    c: usize,
    v: usize,
) {
    let npos = if wp_off.is_some() { t } else { 0 };
    let n = b * t;
    let nseg = super::plan::max_segments(n, v);
    let seg_off = 2 * n + v + 1;
    let part_off = sums.alloc(nseg * c);
    sums.segment_job(part_off, seg_off, v, c, Map::rows(we_off, c));
    let p = [
        v as u32,
        t as u32,
        c as u32,
        b as u32,
        n as u32,
        (n + v + 1) as u32,
        seg_off as u32,
        (seg_off + v + 1) as u32,
        nseg as u32,
        part_off as u32,
        wp_off.unwrap_or(0) as u32,
        npos as u32,
    ];
    let whole = |b| Window::whole(b, 0);
    ops.dispatch_at(
        ctx,
        &defs::EMBED_BACKWARD,
        &[whole(dresid), step, whole(grads), whole(&sums.scratch)],
        &p,
        grid((nseg + npos) * c.div_ceil(32)),
    );
}

/// x_qk (B·T, C) = x (B·T, C) + W_pos[t] (at `wp_off` of `params`): a shortformer layer's query and
/// key input.
#[allow(clippy::too_many_arguments)]
pub fn shortformer_forward(
    ops: &mut Ops,
    ctx: &GpuContext,
    xqk: &Buffer,
    x: &Buffer,
    params: &Buffer,
    wp_off: usize,
    n: usize,
    t: usize,
    c: usize,
) {
    let p = [n as u32, t as u32, c as u32, wp_off as u32];
    ops.dispatch(
        ctx,
        &defs::SHORTFORMER_FORWARD,
        &[x, params, xqk],
        &p,
        grid((n * c).div_ceil(256)),
    );
}

/// dW_pos (T, C) at `wp_off` of `grads` = (or += with `accumulate`) Σ_b dx_qk (B·T, C).
#[allow(clippy::too_many_arguments)]
pub fn shortformer_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    dxqk: &Buffer,
    wp_off: usize,
    accumulate: bool,
    b: usize,
    t: usize,
    c: usize,
) {
    let p = [
        b as u32,
        t as u32,
        c as u32,
        wp_off as u32,
        accumulate as u32,
        0,
        0,
        0,
    ];
    ops.dispatch(
        ctx,
        &defs::SHORTFORMER_BACKWARD,
        &[dxqk, grads],
        &p,
        grid((t * c).div_ceil(256)),
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

/// grads[w_off..] = dw, grads[b_off..] = db of LN, from x, stats and dout (N, C); with more than one
/// row chunk the chunks' partials go to `sums` and [`grad_norm`] adds them up.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward_params(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    w_off: usize,
    b_off: usize,
    sums: &mut SplitSums,
    dout: &Buffer,
    x: &Buffer,
    stats: &Buffer,
    n: usize,
    c: usize,
) {
    let r = colsum_chunks(n);
    let mut part_off = 0;
    if r > 1 {
        part_off = sums.alloc(r * 2 * c);
        sums.job(part_off, 2 * c, r, 1, c, Map::rows(w_off, c));
        sums.job(part_off + c, 2 * c, r, 1, c, Map::rows(b_off, c));
    }
    let p = [
        n as u32,
        c as u32,
        w_off as u32,
        b_off as u32,
        r as u32,
        part_off as u32,
        0,
        0,
    ];
    let out = if r > 1 { &sums.scratch } else { grads };
    ops.dispatch(
        ctx,
        &defs::LAYERNORM_BACKWARD_PARAMS,
        &[x, stats, dout, out],
        &p,
        (c.div_ceil(16) as u32, r as u32, 1),
    );
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

/// dqkv (B·T, 3·NH·HS): dq, dk and dv in one dispatch, from qkv, z, dz and lse.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    dqkv: &Buffer,
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
        &defs::ATTENTION_BACKWARD,
        &[qkv, z, dz, lse, dqkv],
        &attn_params(b, t, nh, hs),
        grid(2 * b * nh * t),
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

/// grads[off..off + OC] = column sums of dout (N, OC); with more than one row chunk the chunks'
/// partials go to `sums` and [`grad_norm`] adds them up.
#[allow(clippy::too_many_arguments)]
pub fn bias_backward(
    ops: &mut Ops,
    ctx: &GpuContext,
    grads: &Buffer,
    off: usize,
    sums: &mut SplitSums,
    dout: &Buffer,
    n: usize,
    oc: usize,
) {
    let r = colsum_chunks(n);
    let mut part_off = 0;
    if r > 1 {
        part_off = sums.alloc(r * oc);
        sums.job(part_off, oc, r, 1, oc, Map::rows(off, oc));
    }
    let p = [
        n as u32,
        oc as u32,
        off as u32,
        r as u32,
        part_off as u32,
        0,
        0,
        0,
    ];
    let out = if r > 1 { &sums.scratch } else { grads };
    ops.dispatch(
        ctx,
        &defs::BIAS_BACKWARD,
        &[dout, out],
        &p,
        (oc.div_ceil(16) as u32, r as u32, 1),
    );
}

/// Per-row loss and ok (argmax == target) into `rows_out` (2·rows u32: loss bits, then ok) and the
/// argmax of logits (rows, V) against the targets (rows,) at `tgt_off` of the step's window; with
/// `backward`, the logits are replaced by dlogits of the mean loss.
#[allow(clippy::too_many_arguments)]
pub fn crossentropy(
    ops: &mut Ops,
    ctx: &GpuContext,
    logits: &Buffer,
    rows_out: &Buffer,
    argmax: &Buffer,
    step: Window,
    tgt_off: usize,
    backward: bool,
    rows: usize,
    v: usize,
) {
    let flags = if backward { CE_BACKWARD } else { 0 };
    crossentropy_flags(
        ops, ctx, logits, rows_out, argmax, step, tgt_off, flags, rows, v,
    );
}

/// crossentropy's flag: write dlogits over the logits.
pub const CE_BACKWARD: u32 = 1;
/// crossentropy's flag: scale dlogits by the step's own f32 after its targets (1 / its scored
/// rows) instead of 1 / rows.
pub const CE_STEP_SCALE: u32 = 2;

/// [`crossentropy`] with its flags ([`CE_BACKWARD`], [`CE_STEP_SCALE`]).
#[allow(clippy::too_many_arguments)]
pub fn crossentropy_flags(
    ops: &mut Ops,
    ctx: &GpuContext,
    logits: &Buffer,
    rows_out: &Buffer,
    argmax: &Buffer,
    step: Window,
    tgt_off: usize,
    flags: u32,
    rows: usize,
    v: usize,
) {
    let params = [
        rows as u32,
        v as u32,
        tgt_off as u32,
        flags,
        (1.0 / rows as f32).to_bits(),
    ];
    let whole = |b| Window::whole(b, 0);
    ops.dispatch_at(
        ctx,
        &defs::CROSSENTROPY,
        &[whole(logits), step, whole(rows_out), whole(argmax)],
        &params,
        grid(rows),
    );
}

/// Strided workgroups of grad_norm over `total` gradient elements.
pub fn grad_norm_groups(total: usize) -> usize {
    GRAD_NORM_GROUPS.min(total.div_ceil(256)).max(1)
}

/// Most strided workgroups of grad_norm.
pub const GRAD_NORM_GROUPS: usize = 256;

/// Finishes every job of `sums` into `grads` and writes the partial sums of squares of `grads`
/// (`total` elements) to part[0..sums.parts(total)], and the partial sums of the `nrows` row losses
/// in `rows` (crossentropy's) to part[parts + 2..][..grad_norm_groups(total)] (see grad_norm.wgsl; adamw
/// adds them up). `step`: the step window (embed_backward's segment lists).
#[allow(clippy::too_many_arguments)]
pub fn grad_norm(
    ops: &mut Ops,
    ctx: &GpuContext,
    part: &Buffer,
    grads: &Buffer,
    sums: &SplitSums,
    step: Window,
    rows: &Buffer,
    nrows: usize,
    total: usize,
) -> crate::error::Result<()> {
    let ng = grad_norm_groups(total);
    let mut done = vec![0u32; total.div_ceil(32)];
    let mut jobs = Vec::with_capacity(sums.jobs.len() * 16);
    for w in &sums.jobs {
        jobs.extend_from_slice(w);
        let mut map = Map::rows(0, 0);
        [
            map.off, map.rs, map.cs, map.rblk, map.rbs, map.cblk, map.cbs,
        ] = [w[8], w[9], w[10], w[11], w[12], w[13], w[14]];
        for r in 0..w[3] {
            for c in 0..w[4] {
                let i = map.addr(r, c) as usize;
                done[i / 32] |= 1 << (i % 32);
            }
        }
    }
    let jobs_buf = ctx.storage_init("split-sum jobs", &jobs)?;
    let done_buf = ctx.storage_init("split-sum elements", &done)?;
    let parts = sums.parts(total);
    let p = [
        total as u32,
        ng as u32,
        sums.jobs.len() as u32,
        parts as u32,
        nrows as u32,
        0,
        0,
        0,
    ];
    let whole = |b| Window::whole(b, 0);
    let bufs = [grads, &sums.scratch, &jobs_buf, &done_buf, part].map(whole);
    let bufs = [
        bufs[0],
        bufs[1],
        bufs[2],
        bufs[3],
        bufs[4],
        step,
        whole(rows),
    ];
    ops.dispatch_at(ctx, &defs::GRAD_NORM, &bufs, &p, grid(parts));
    Ok(())
}

/// AdamW's constants: betas, eps, and the gradient clip (0: none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamwArgs {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub clip: f64,
}

/// The buffers adamw reads and writes besides the flat ones.
pub struct AdamwIo<'a> {
    /// The step's (lr, sm, sv, 1 − lr·wd, halt parity) f32.
    pub sched: Window<'a>,
    /// grad_norm's `parts` partials, two halt slots, then grad_norm_groups(total) loss partials.
    pub norm: &'a Buffer,
    pub parts: usize,
    /// crossentropy's rows (2·B·P u32) and B, P.
    pub rows: &'a Buffer,
    pub b: usize,
    pub p: usize,
    /// The step's stats (4 + P) u32.
    pub stats: Window<'a>,
}

/// One AdamW step over every trainable element (mask bit set), the gradient norm, clip and the
/// step's stats (see adamw.wgsl). `moments` holds m then v (2·total).
#[allow(clippy::too_many_arguments)]
pub fn adamw(
    ops: &mut Ops,
    ctx: &GpuContext,
    params: &Buffer,
    moments: &Buffer,
    io: &AdamwIo,
    grads: &Buffer,
    mask: &Buffer,
    opt: &AdamwArgs,
    total: usize,
) {
    let p = [
        total as u32,
        (opt.beta1 as f32).to_bits(),
        (opt.beta2 as f32).to_bits(),
        ((1.0 - opt.beta1) as f32).to_bits(),
        ((1.0 - opt.beta2) as f32).to_bits(),
        (opt.eps as f32).to_bits(),
        io.parts as u32,
        (opt.clip as f32).to_bits(),
        io.b as u32,
        io.p as u32,
        grad_norm_groups(total) as u32,
        0,
    ];
    let whole = |b| Window::whole(b, 0);
    ops.dispatch_at(
        ctx,
        &defs::ADAMW,
        &[
            whole(params),
            whole(grads),
            whole(moments),
            whole(mask),
            io.sched,
            whole(io.norm),
            whole(io.rows),
            io.stats,
        ],
        &p,
        grid(total.div_ceil(256)),
    );
}
