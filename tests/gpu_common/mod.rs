//! Shared by the GPU tests: the one comparison rule of DEVELOPERS.md, and the adapter check.
#![allow(dead_code)]

/// Passes when |got − want| ≤ atol + rtol·|want| for every element; otherwise panics with the first
/// bad index, both values there, and the largest difference over the whole tensor.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    let mut first = None;
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        let ok = d <= atol + rtol * w.abs();
        if !ok && first.is_none() {
            first = Some(i);
        }
        if d > worst.0 || (d.is_nan() && !worst.0.is_nan()) {
            worst = (d, i);
        }
    }
    if let Some(i) = first {
        let j = worst.1;
        panic!(
            "{what}: |got − want| ≤ {atol} + {rtol}·|want| fails first at index {i} of {}: got {} want {}; largest difference {} at index {j} (got {} want {})",
            got.len(), got[i], want[i], worst.0, got[j], want[j]
        );
    }
}

/// Largest |got − want| (for reporting how tight a tolerance is).
pub fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max)
}

/// Whether a GPU adapter (lavapipe counts) can be opened; prints why not when it cannot. Only a
/// machine with no Vulkan driver at all should see this skip: CI installs lavapipe
/// (mesa-vulkan-drivers), so there these tests really run.
pub fn gpu_available() -> bool {
    match pollster::block_on(toyformer::gpu::GpuContext::new(toyformer::gpu::AdapterChoice::Any)) {
        Ok(ctx) => {
            eprintln!("GPU tests on {}", ctx.describe());
            true
        }
        Err(e) => {
            eprintln!("SKIPPED: no GPU adapter could be created ({e}); install mesa-vulkan-drivers for lavapipe");
            false
        }
    }
}
