//! The CPU engine's kernels: plain functions over flat f32 slices, in forward/backward
//! pairs as in llm.c (`X_forward` / `X_backward`, arguments ordered outputs, inputs,
//! weights, dimensions). Backward kernels *accumulate* (`+=`) into their gradient outputs;
//! the engine zeroes the gradients once per step. Each kernel has a twin of the same name
//! on the GPU (`src/gpu/kernels/X.wgsl`), and both are tested against the candle reference.
//!
//! Work is split so that every output element is written by exactly one task, in a fixed
//! order: results are bit-identical whatever the number of threads.
//!
//! Letters: B batch, T key positions, TQ query rows, C d_model, NH n_heads, HS d_head,
//! M d_mlp, V vocabulary, N = B·rows.

// Kernels take outputs, inputs, weights and dimensions as plain arguments in that order
// (llm.c style, DEVELOPERS.md), which often makes more than clippy's seven.
#![allow(clippy::too_many_arguments)]

pub mod activation;
pub mod adamw;
pub mod attention;
pub mod crossentropy;
pub mod embed;
pub mod exp;
pub mod layernorm;
pub mod matmul;
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed;
pub mod shortformer;
pub mod tiled;

/// Defines a function compiled twice, plainly and for AVX2 (x86_64), picking the AVX2
/// copy at run time when the CPU has it. The body is an `#[inline(always)]` function and
/// the helpers it calls (`dot`, `axpy`, ...) are too, so the whole body is generated with
/// 256-bit vectors. The arithmetic is the same in both copies (no FMA contraction), so
/// results do not depend on the CPU's features.
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

/// Dot product with 32 independent accumulators (four 256-bit registers), summed in a
/// fixed tree: a single accumulator is a serial chain the compiler may not reorder.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    return relaxed::dot(a, b);
    #[allow(unreachable_code)]
    let mut acc = [0f32; 32];
    let mut ca = a.chunks_exact(32);
    let mut cb = b.chunks_exact(32);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..32 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    for w in [16, 8, 4, 2, 1] {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail
}

/// Dot products of one row `a` with four rows at once: `a` is loaded once per chunk and
/// each product keeps its own eight lanes; the same fixed tree as [`dot`] sums them.
#[inline(always)]
pub fn dot4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    return relaxed::dot4(a, b);
    #[allow(unreachable_code)]
    let n = a.len();
    let mut acc = [[0f32; 8]; 4];
    let mut c0 = 0;
    while c0 + 8 <= n {
        let x = &a[c0..c0 + 8];
        for (acc, b) in acc.iter_mut().zip(&b) {
            let y = &b[c0..c0 + 8];
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        c0 += 8;
    }
    let mut out = [0f32; 4];
    for (o, (acc, b)) in out.iter_mut().zip(acc.iter_mut().zip(&b)) {
        for w in [4, 2, 1] {
            for i in 0..w {
                acc[i] += acc[i + w];
            }
        }
        let mut tail = 0f32;
        for c in c0..n {
            tail += a[c] * b[c];
        }
        *o = acc[0] + tail;
    }
    out
}

/// `out[j] = a · rows[j]` for `out.len()` rows of length `a.len()`, four at a time.
#[inline(always)]
pub fn dots(out: &mut [f32], a: &[f32], rows: &[f32]) {
    let hs = a.len();
    let mut j = 0;
    while j + 4 <= out.len() {
        let r = |k: usize| &rows[(j + k) * hs..(j + k + 1) * hs];
        out[j..j + 4].copy_from_slice(&dot4(a, [r(0), r(1), r(2), r(3)]));
        j += 4;
    }
    for j in j..out.len() {
        out[j] = dot4(a, [&rows[j * hs..(j + 1) * hs]; 4])[0];
    }
}

/// y += a·x.
#[inline(always)]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    return relaxed::axpy(y, a, x);
    #[allow(unreachable_code)]
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// y += x.
#[inline(always)]
pub fn add_into(y: &mut [f32], x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    for (y, x) in y.iter_mut().zip(x) {
        *y += x;
    }
}
