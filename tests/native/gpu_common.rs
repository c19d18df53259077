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
