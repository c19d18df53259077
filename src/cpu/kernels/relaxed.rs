//! The helpers of [`super`] (`dot`, `dot4`, `axpy`) with wasm's relaxed-SIMD fused
//! multiply-add (`f32x4.relaxed_madd`), for the second wasm build (`-C
//! target-feature=+simd128,+relaxed-simd`, www/pkg-relaxed), which the page loads where the
//! browser supports it. Same accumulator layout and summation tree as the plain loops; whether
//! each multiply-add is fused is the browser's choice, fixed for a given machine, so results are
//! deterministic for a given build and browser, and within rounding of the plain build.

use core::arch::wasm32::*;

#[inline(always)]
fn load(s: &[f32], at: usize) -> v128 {
    debug_assert!(at + 4 <= s.len());
    // SAFETY: at + 4 ≤ s.len() (every caller steps through whole chunks); v128_load needs no alignment.
    unsafe { v128_load(s.as_ptr().add(at) as *const v128) }
}

/// As [`super::dot`]: 32 lanes (eight vectors) of accumulators, the same fixed tree.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [f32x4_splat(0.0); 8];
    let mut c = 0;
    while c + 32 <= n {
        for (j, v) in acc.iter_mut().enumerate() {
            *v = f32x4_relaxed_madd(load(a, c + 4 * j), load(b, c + 4 * j), *v);
        }
        c += 32;
    }
    let mut tail = 0f32;
    for i in c..n {
        tail += a[i] * b[i];
    }
    for w in [4, 2, 1] {
        for j in 0..w {
            acc[j] = f32x4_add(acc[j], acc[j + w]);
        }
    }
    lanes_sum(acc[0]) + tail
}

/// Lanes summed as the plain tree does: (l0 + l2) + (l1 + l3).
#[inline(always)]
fn lanes_sum(v: v128) -> f32 {
    let l = |i| match i {
        0 => f32x4_extract_lane::<0>(v),
        1 => f32x4_extract_lane::<1>(v),
        2 => f32x4_extract_lane::<2>(v),
        _ => f32x4_extract_lane::<3>(v),
    };
    (l(0) + l(2)) + (l(1) + l(3))
}

/// As [`super::dot4`]: each product keeps eight lanes (two vectors).
#[inline(always)]
pub fn dot4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    let n = a.len();
    let mut acc = [[f32x4_splat(0.0); 2]; 4];
    let mut c0 = 0;
    while c0 + 8 <= n {
        let (x0, x1) = (load(a, c0), load(a, c0 + 4));
        for (acc, b) in acc.iter_mut().zip(&b) {
            acc[0] = f32x4_relaxed_madd(x0, load(b, c0), acc[0]);
            acc[1] = f32x4_relaxed_madd(x1, load(b, c0 + 4), acc[1]);
        }
        c0 += 8;
    }
    let mut out = [0f32; 4];
    for (o, (acc, b)) in out.iter_mut().zip(acc.iter().zip(&b)) {
        let mut tail = 0f32;
        for c in c0..n {
            tail += a[c] * b[c];
        }
        *o = lanes_sum(f32x4_add(acc[0], acc[1])) + tail;
    }
    out
}

/// As [`super::axpy`]: y += a·x.
#[inline(always)]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let av = f32x4_splat(a);
    let mut i = 0;
    while i + 4 <= n {
        let v = f32x4_relaxed_madd(av, load(x, i), load(y, i));
        // SAFETY: i + 4 ≤ y.len(); v128_store needs no alignment.
        unsafe { v128_store(y.as_mut_ptr().add(i) as *mut v128, v) };
        i += 4;
    }
    for i in i..n {
        y[i] += a * x[i];
    }
}
