//! The matrix product ([`gemm`], in place of the `gemm` crate's kernel: most of the engine's
//! time) and the helpers of [`super`] (`dot`, `dot4`, `axpy`) with wasm's relaxed-SIMD fused
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

/// The relaxed build's matrix product, in place of the `gemm` crate's simd128 kernel (which
/// multiplies and adds separately): out (m, n), rows `out_rs` apart, = a (m, k) · b (k, n), or
/// `+=` when `acc`. Both operands are packed row-major, then 4 × 8 tiles of `out` are accumulated
/// in registers along k with fused multiply-adds, each element summed over k in order.
pub fn gemm(
    out: &mut [f32],
    out_rs: usize,
    acc: bool,
    a: super::matmul::Strided,
    b: super::matmul::Strided,
    m: usize,
    n: usize,
    k: usize,
) {
    let mut ap = vec![0f32; m * k]; // (m, k)
    for i in 0..m {
        for p in 0..k {
            ap[i * k + p] = a.data[i * a.rs + p * a.cs];
        }
    }
    let mut bp = vec![0f32; k * n]; // (k, n)
    for p in 0..k {
        for j in 0..n {
            bp[p * n + j] = b.data[p * b.rs + j * b.cs];
        }
    }
    let d = Dims { out_rs, acc, n, k };
    let mut i = 0;
    while i + 4 <= m {
        rows::<4>(out, &ap, &bp, i, &d);
        i += 4;
    }
    while i < m {
        rows::<1>(out, &ap, &bp, i, &d);
        i += 1;
    }
}

struct Dims {
    out_rs: usize,
    acc: bool,
    n: usize,
    k: usize,
}

/// Rows i..i+R of `out`: 8-column tiles in registers, then the last n % 8 columns one by one.
#[inline(always)]
fn rows<const R: usize>(out: &mut [f32], ap: &[f32], bp: &[f32], i: usize, d: &Dims) {
    let (n, k) = (d.n, d.k);
    let mut j = 0;
    while j + 8 <= n {
        let mut c = [[f32x4_splat(0.0); 2]; R];
        for p in 0..k {
            let (b0, b1) = (load(bp, p * n + j), load(bp, p * n + j + 4));
            for (r, c) in c.iter_mut().enumerate() {
                let av = f32x4_splat(ap[(i + r) * k + p]);
                c[0] = f32x4_relaxed_madd(av, b0, c[0]);
                c[1] = f32x4_relaxed_madd(av, b1, c[1]);
            }
        }
        for (r, c) in c.iter().enumerate() {
            let at = (i + r) * d.out_rs + j;
            for (h, v) in c.iter().enumerate() {
                let v = if d.acc {
                    f32x4_add(load(out, at + 4 * h), *v)
                } else {
                    *v
                };
                // SAFETY: at + 4h + 4 ≤ (i + r)·out_rs + n ≤ out.len() (checked by the caller's asserts).
                unsafe { v128_store(out.as_mut_ptr().add(at + 4 * h) as *mut v128, v) };
            }
        }
        j += 8;
    }
    for r in 0..R {
        for j in j..n {
            let mut s = 0f32;
            for p in 0..k {
                s += ap[(i + r) * k + p] * bp[p * n + j];
            }
            let o = &mut out[(i + r) * d.out_rs + j];
            *o = if d.acc { *o + s } else { s };
        }
    }
}
