//! The wasm builds' matrix product, in place of the `gemm` crate's kernel, which packs both
//! operands into aligned panels on every call: costly for the engine's many small products
//! (attention's per-sequence 10 × 21 × 128 products are most of a step's gemm calls). Here a
//! is copied to row-major only when its columns are strided, b also when its rows are not a
//! whole number of 8-column tiles (zero-padded); then 4 × 8 tiles of `out` (8 four-lane
//! accumulators) are accumulated along k in registers, every element summed over k in order
//! (`c + a·b` each time), so the result does not depend on the tiling.
//!
//! Four-lane vectors are wasm's `v128` (simd128; `f32x4.relaxed_madd` in the relaxed build,
//! which the browser may fuse) and a plain `[f32; 4]` elsewhere, so that the native tests run
//! the same tiling, strides and edges (tests/native/cpu_kernels.rs, against a plain loop).

use super::matmul::Strided;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod v4 {
    use core::arch::wasm32::*;
    pub type V = v128;
    #[inline(always)]
    pub fn splat(x: f32) -> V {
        f32x4_splat(x)
    }
    /// # Safety: p..p+4 is readable.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        v128_load(p as *const v128)
    }
    /// # Safety: p..p+4 is writable.
    #[inline(always)]
    pub unsafe fn store(p: *mut f32, v: V) {
        v128_store(p as *mut v128, v)
    }
    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        f32x4_add(a, b)
    }
    /// The 4 × 4 block whose rows are `r`, transposed (its columns).
    #[inline(always)]
    pub fn transpose4(r: [V; 4]) -> [V; 4] {
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0], r[1]);
        let t1 = i32x4_shuffle::<2, 6, 3, 7>(r[0], r[1]);
        let t2 = i32x4_shuffle::<0, 4, 1, 5>(r[2], r[3]);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2], r[3]);
        [
            i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
            i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
            i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
            i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
        ]
    }
    /// c + a·b, fused where the browser fuses `relaxed_madd`.
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        f32x4_relaxed_madd(a, b, c)
    }
    /// c + a·b
    #[cfg(not(target_feature = "relaxed-simd"))]
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        f32x4_add(c, f32x4_mul(a, b))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod v4 {
    pub type V = [f32; 4];
    #[inline(always)]
    pub fn splat(x: f32) -> V {
        [x; 4]
    }
    /// # Safety: p..p+4 is readable.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        (p as *const V).read_unaligned()
    }
    /// # Safety: p..p+4 is writable.
    #[inline(always)]
    pub unsafe fn store(p: *mut f32, v: V) {
        (p as *mut V).write_unaligned(v)
    }
    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] + b[i])
    }
    /// The 4 × 4 block whose rows are `r`, transposed (its columns).
    #[inline(always)]
    pub fn transpose4(r: [V; 4]) -> [V; 4] {
        std::array::from_fn(|i| std::array::from_fn(|j| r[j][i]))
    }
    /// c + a·b
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        std::array::from_fn(|i| c[i] + a[i] * b[i])
    }
}
use v4::*;

/// out (m, n), rows `out_rs` apart, = a (m, k) · b (k, n), or `+=` when `acc`.
///
/// # Panics
/// When an operand or `out` is too small for the dimensions (the callers size them).
pub fn gemm(
    out: &mut [f32],
    out_rs: usize,
    acc: bool,
    a: Strided,
    b: Strided,
    m: usize,
    n: usize,
    k: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * out_rs + n <= out.len(),
        "tiled gemm: out too small"
    );
    if k == 0 {
        if !acc {
            (0..m).for_each(|r| out[r * out_rs..r * out_rs + n].fill(0.0));
        }
        return;
    }
    PACK.with(|pack| {
        let (ap, bp) = &mut *pack.borrow_mut();
        let (a, a_rs) = contiguous(ap, a, m, k);
        let (b, b_rs) = padded(bp, b, k, n);
        let d = Dims {
            out_rs,
            acc,
            n,
            k,
            a_rs,
            b_rs,
        };
        let mut i = 0;
        while i + TILE_ROWS <= m {
            rows::<TILE_ROWS>(out, a, b, i, &d);
            i += TILE_ROWS;
        }
        while i + 2 <= m {
            rows::<2>(out, a, b, i, &d);
            i += 2;
        }
        if i < m {
            rows::<1>(out, a, b, i, &d);
        }
    })
}

/// Rows of a tile: 8 accumulators, 2 loads of b, a broadcast and a temporary fit the 15 vector
/// registers a browser's x86-64 code allocates. (6 rows with fused multiply-adds, 15 registers
/// without a temporary, measured slower in node 20: 27.0 against 17.3 ms/step.)
const TILE_ROWS: usize = 4;

thread_local! {
    /// Row-major copies of the operands whose columns are strided, reused between calls.
    static PACK: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = Default::default();
}

/// `a` (r, c) as a slice whose rows are the returned stride apart with contiguous columns:
/// itself when its columns are contiguous, else a row-major copy in `buf`.
fn contiguous<'a>(buf: &'a mut Vec<f32>, x: Strided<'a>, r: usize, c: usize) -> (&'a [f32], usize) {
    if x.cs == 1 {
        return (x.data, x.rs);
    }
    copy_rows(buf, x, r, c, c);
    (&buf[..], c)
}

/// `b` (r, c) with contiguous columns and rows a multiple of 8 long, so that every column
/// tile is whole: itself when it is so already, else a copy in `buf` with zeros after column c.
fn padded<'a>(buf: &'a mut Vec<f32>, x: Strided<'a>, r: usize, c: usize) -> (&'a [f32], usize) {
    if x.cs == 1 && c.is_multiple_of(8) {
        return (x.data, x.rs);
    }
    let rs = c.div_ceil(8) * 8;
    copy_rows(buf, x, r, c, rs);
    (&buf[..], rs)
}

/// buf (r, rs) = x (r, c) in columns 0..c, zeros after.
fn copy_rows(buf: &mut Vec<f32>, x: Strided, r: usize, c: usize, rs: usize) {
    buf.clear();
    buf.resize(r * rs, 0.0);
    assert!(
        (r - 1) * x.rs + (c - 1) * x.cs < x.data.len() && c <= rs,
        "tiled gemm: b too small"
    );
    if x.cs == 1 {
        for (i, row) in buf.chunks_exact_mut(rs).enumerate() {
            row[..c].copy_from_slice(&x.data[i * x.rs..i * x.rs + c]);
        }
        return;
    }
    if x.rs == 1 {
        return transpose_into(buf, x.data, r, c, rs, x.cs);
    }
    for (i, row) in buf.chunks_exact_mut(rs).enumerate() {
        let src = &x.data[i * x.rs..];
        for (j, v) in row[..c].iter_mut().enumerate() {
            // SAFETY: i < r, j < c: i·rs + j·cs ≤ (r − 1)·rs + (c − 1)·cs < x.data.len() (asserted).
            *v = unsafe { *src.get_unchecked(j * x.cs) };
        }
    }
}

/// buf (r, rs) = the transpose of `src` (c, r), whose rows are `src_rs` apart:
/// buf[i·rs + j] = src[j·src_rs + i], in 4 × 4 blocks (a transposed operand: Kᵀ, Vᵀ, Wᵀ, xᵀ).
/// Callers assert (r − 1) + (c − 1)·src_rs < src.len() and c ≤ rs.
fn transpose_into(buf: &mut [f32], src: &[f32], r: usize, c: usize, rs: usize, src_rs: usize) {
    let (r4, c4) = (r / 4 * 4, c / 4 * 4);
    for i in (0..r4).step_by(4) {
        for j in (0..c4).step_by(4) {
            // SAFETY: rows j..j+4 ≤ c of src at columns i..i+4 ≤ r: the largest index is
            // (c − 1)·src_rs + r − 1 < src.len(); rows i..i+4 ≤ r of buf at columns j..j+4 ≤ c ≤ rs.
            unsafe {
                let rows = [0, 1, 2, 3].map(|q| load(src.as_ptr().add((j + q) * src_rs + i)));
                for (q, v) in transpose4(rows).into_iter().enumerate() {
                    store(buf.as_mut_ptr().add((i + q) * rs + j), v);
                }
            }
        }
        for q in i..i + 4 {
            for j in c4..c {
                buf[q * rs + j] = src[j * src_rs + q];
            }
        }
    }
    for q in r4..r {
        for j in 0..c {
            buf[q * rs + j] = src[j * src_rs + q];
        }
    }
}

struct Dims {
    out_rs: usize,
    acc: bool,
    n: usize,
    k: usize,
    /// Row strides of a and b (their columns are contiguous).
    a_rs: usize,
    b_rs: usize,
}

/// Rows i..i+R of `out`, in tiles of 8 columns accumulated in registers (b's rows are whole
/// tiles long: the last tile's extra columns are computed and dropped).
#[inline(always)]
fn rows<const R: usize>(out: &mut [f32], a: &[f32], b: &[f32], i: usize, d: &Dims) {
    let (n, k) = (d.n, d.k);
    assert!(
        (i + R - 1) * d.a_rs + k <= a.len() && (k - 1) * d.b_rs + n.div_ceil(8) * 8 <= b.len(),
        "tiled gemm: operand too small"
    );
    // SAFETY (a_at, and the loads of b below): r < R, p < k and j + 8 ≤ ⌈n/8⌉·8, so every index
    // is below (i + R − 1)·a_rs + k ≤ a.len() or (k − 1)·b_rs + ⌈n/8⌉·8 ≤ b.len(), asserted above.
    let a_at = |r: usize, p: usize| unsafe { *a.get_unchecked((i + r) * d.a_rs + p) };
    let mut j = 0;
    while j < n {
        let mut c = [[splat(0.0); 2]; R];
        for p in 0..k {
            let (b0, b1) = unsafe {
                let at = b.as_ptr().add(p * d.b_rs + j);
                (load(at), load(at.add(4)))
            };
            for (r, c) in c.iter_mut().enumerate() {
                let av = splat(a_at(r, p));
                c[0] = madd(av, b0, c[0]);
                c[1] = madd(av, b1, c[1]);
            }
        }
        let w = (n - j).min(8);
        for (r, c) in c.iter().enumerate() {
            let row = &mut out[(i + r) * d.out_rs + j..(i + r) * d.out_rs + j + w];
            if w == 8 {
                for (h, v) in c.iter().enumerate() {
                    let at = row[4 * h..4 * h + 4].as_mut_ptr();
                    // SAFETY: at..at+4 lies in `row` (a checked slice of 8).
                    unsafe { store(at, if d.acc { add(load(at), *v) } else { *v }) };
                }
            } else {
                let mut t = [0f32; 8];
                // SAFETY: t has 8 elements.
                unsafe {
                    store(t.as_mut_ptr(), c[0]);
                    store(t.as_mut_ptr().add(4), c[1]);
                }
                for (o, &v) in row.iter_mut().zip(&t) {
                    *o = if d.acc { *o + v } else { v };
                }
            }
        }
        j += 8;
    }
}
