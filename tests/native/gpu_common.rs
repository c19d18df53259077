//! Shared by the GPU tests: the one comparison rule of DEVELOPERS.md, and the adapter check.
#![allow(dead_code)]

/// The one comparison rule (`toyformer::compare`): |got − want| ≤ atol + rtol·|want| for every
/// element, else a panic naming the first bad index and the largest difference.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    toyformer::compare::assert_close(what, got, want, atol as f64, rtol as f64);
}

/// Largest |got − want| (for reporting how tight a tolerance is).
pub fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f32::max)
}

/// Whether a GPU adapter (lavapipe counts) can be opened; prints why not when it cannot. Only a
/// machine with no Vulkan driver at all should see this skip: CI installs lavapipe
/// (mesa-vulkan-drivers), so there (CI=true) a missing adapter fails instead of skipping.
pub fn gpu_available() -> bool {
    match pollster::block_on(toyformer::gpu::GpuContext::new(
        toyformer::gpu::AdapterChoice::Any,
    )) {
        Ok(ctx) => {
            eprintln!("GPU tests on {}", ctx.describe());
            true
        }
        Err(e) => {
            let why = format!(
                "no GPU adapter could be created ({e}); install mesa-vulkan-drivers for lavapipe"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("CI must run the GPU tests, but {why}");
            }
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

use toyformer::gpu::kernels::Ops;
use toyformer::gpu::{AdapterChoice, GpuContext};

/// A context for running single kernels on uploaded data.
pub struct Rig {
    pub ctx: GpuContext,
}

impl Rig {
    pub fn new() -> Option<Rig> {
        if !gpu_available() {
            return None;
        }
        Some(Rig {
            ctx: pollster::block_on(GpuContext::new(AdapterChoice::Any)).unwrap(),
        })
    }
    pub fn f32s(&self, data: &[f32]) -> wgpu::Buffer {
        self.ctx.storage_init("test input", data).unwrap()
    }
    pub fn u32s(&self, data: &[u32]) -> wgpu::Buffer {
        self.ctx.storage_init("test input", data).unwrap()
    }
    pub fn zeros(&self, n: usize) -> wgpu::Buffer {
        self.ctx.storage("test output", n).unwrap()
    }
    pub fn run(&self, ops: &Ops) {
        ops.submit(&self.ctx);
    }
    /// The first `n` values of `b` (f32).
    pub fn read(&self, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
        bytemuck::cast_slice(&self.read_bytes(b, n)).to_vec()
    }
    pub fn read_u32(&self, b: &wgpu::Buffer, n: usize) -> Vec<u32> {
        bytemuck::cast_slice(&self.read_bytes(b, n)).to_vec()
    }
    fn read_bytes(&self, b: &wgpu::Buffer, n: usize) -> Vec<u8> {
        pollster::block_on(self.ctx.read_buffer(b, n as u64 * 4)).unwrap()
    }
}

/// `n` normal values (counter-based, reproducible), times `scale`.
pub fn randn(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut r = toyformer::tasks::rng::CounterRng::new(seed, 77, 0);
    (0..n).map(|_| r.normal() as f32 * scale).collect()
}

use toyformer::gpu::kernels::{self as k, AdamwArgs, AdamwIo, SplitSums, Window};

impl Rig {
    /// Records grad_norm over `grads` (`total` elements), finishing the jobs of `sums`; returns the
    /// partials buffer (then two zeroed halt slots) and how many partials it holds.
    pub fn grad_norm(
        &self,
        ops: &mut Ops,
        grads: &wgpu::Buffer,
        sums: &SplitSums,
        total: usize,
    ) -> (wgpu::Buffer, usize) {
        let no_step = self.zeros(1);
        self.grad_norm_at(ops, grads, sums, Window::whole(&no_step, 1), total)
    }

    /// As [`Rig::grad_norm`], also summing the `nrows` row losses of `rows` (crossentropy's layout).
    pub fn grad_norm_rows(
        &self,
        ops: &mut Ops,
        grads: &wgpu::Buffer,
        rows: &wgpu::Buffer,
        nrows: usize,
        total: usize,
    ) -> (wgpu::Buffer, usize) {
        let no_step = self.zeros(1);
        let sums = self.sums(0);
        let parts = sums.parts(total);
        let norm = self.zeros(parts + 2 + k::grad_norm_groups(total));
        let step = Window::whole(&no_step, 1);
        k::grad_norm(
            ops, &self.ctx, &norm, grads, &sums, step, rows, nrows, total,
        )
        .unwrap();
        (norm, parts)
    }

    /// As [`Rig::grad_norm`], with embed_backward's segment lists in the step window `step`.
    pub fn grad_norm_at(
        &self,
        ops: &mut Ops,
        grads: &wgpu::Buffer,
        sums: &SplitSums,
        step: Window,
        total: usize,
    ) -> (wgpu::Buffer, usize) {
        let parts = sums.parts(total);
        let norm = self.zeros(parts + 2 + k::grad_norm_groups(total));
        let no_rows = self.zeros(1);
        k::grad_norm(ops, &self.ctx, &norm, grads, sums, step, &no_rows, 0, total).unwrap();
        (norm, parts)
    }

    /// An empty split-sum collector with room for `cap` partial elements.
    pub fn sums(&self, cap: usize) -> SplitSums {
        SplitSums::new(&self.ctx, "test split sums", cap).unwrap()
    }

    /// The stats (4 + P) that adamw's workgroup 0 writes from crossentropy's rows (2·B·P u32: loss
    /// bits, ok) and a gradient `grads` of `total` elements (nothing trainable, so nothing moves).
    pub fn stats(&self, rows: &wgpu::Buffer, grads: &[f32], b: usize, p: usize) -> Vec<u32> {
        let total = grads.len();
        let (bg, bt, bmom) = (self.f32s(grads), self.zeros(total), self.zeros(2 * total));
        let mask = self.zeros(total.div_ceil(32));
        // sched: lr … parity zero, then the scored rows B·P (adamw's loss denominator)
        let mut sc = [0f32; 8];
        sc[5] = (b * p) as f32;
        let (sched, stats) = (self.f32s(&sc), self.zeros(4 + p));
        let mut ops = Ops::default();
        let (norm, parts) = self.grad_norm_rows(&mut ops, &bg, rows, b * p, total);
        let io = AdamwIo {
            sched: Window::whole(&sched, 6),
            norm: &norm,
            parts,
            rows,
            b,
            p,
            stats: Window::whole(&stats, 4 + p),
        };
        let opt = AdamwArgs {
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            clip: 0.0,
        };
        k::adamw(
            &mut ops, &self.ctx, &bt, &bmom, &io, &bg, &mask, &opt, total,
        );
        self.run(&ops);
        self.read_u32(&stats, 4 + p)
    }
}
