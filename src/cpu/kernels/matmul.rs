//! Matrix products, on the `gemm` crate (the one candle uses: blocked, SIMD, and split over
//! output tiles only, so the summation order of an element does not depend on threads).
//!
//! Weights are stored TransformerLens-style as (in, out): `W_Q[h]` is (C, HS), `W_U` is
//! (C, V). So `matmul_forward` computes out (N, OC) = inp (N, C) · weight (C, OC) + bias.

/// A strided view of a row-major-ish matrix: element (i, j) is at `i·rs + j·cs`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Strided<'a> {
    /// A plain row-major (rows, cols) matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Strided {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major (rows, cols) matrix, seen as (cols, rows).
    pub fn t(data: &'a [f32], cols: usize) -> Self {
        Strided {
            data,
            rs: 1,
            cs: cols,
        }
    }
    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }
}

/// out (m, n), rows `out_rs` apart, = a (m, k) · b (k, n), or `+=` when `acc`. Large
/// products are split over the rayon pool (by output tiles only).
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
    let par = m * n * k >= 48 * 48 * 48;
    gemm_with(out, out_rs, acc, a, b, m, n, k, par)
}

/// [`gemm`] on the calling thread only (for products inside an already parallel task).
pub fn gemm_seq(
    out: &mut [f32],
    out_rs: usize,
    acc: bool,
    a: Strided,
    b: Strided,
    m: usize,
    n: usize,
    k: usize,
) {
    gemm_with(out, out_rs, acc, a, b, m, n, k, false)
}

fn gemm_with(
    out: &mut [f32],
    out_rs: usize,
    acc: bool,
    a: Strided,
    b: Strided,
    m: usize,
    n: usize,
    k: usize,
    par: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    // Internal invariants: callers size their buffers from the same dims.
    assert!(
        (m - 1) * out_rs + n <= out.len(),
        "gemm: out too small for ({m}, {n}) rows {out_rs} apart"
    );
    assert!(
        a.fits(m, k) && b.fits(k, n),
        "gemm: operand too small for m={m} n={n} k={k}"
    );
    if k == 0 {
        if !acc {
            for r in 0..m {
                out[r * out_rs..r * out_rs + n].fill(0.0);
            }
        }
        return;
    }
    // wasm (both builds): the own tiled kernel (one thread there, `par` does not apply)
    #[cfg(target_arch = "wasm32")]
    {
        let _ = par;
        return super::tiled::gemm(out, out_rs, acc, a, b, m, n, k);
    }
    #[allow(unreachable_code)]
    let par = if par {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the product touches inside its slice; out
    // is borrowed mutably, a and b shared, so they cannot alias it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_rs as isize,
            acc,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// out (N, OC) = inp (N, C) · weight (C, OC) + bias (OC). `bias: None` adds nothing.
pub fn matmul_forward(
    out: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    c: usize,
    oc: usize,
) {
    gemm(
        out,
        oc,
        false,
        Strided::rows(inp, c),
        Strided::rows(weight, oc),
        n,
        oc,
        c,
    );
    if let Some(bias) = bias {
        for row in out[..n * oc].chunks_exact_mut(oc) {
            super::add_into(row, bias);
        }
    }
}

/// dinp (N, C) += dout (N, OC) · weightᵀ; dweight (C, OC) += inpᵀ · dout; dbias (OC) +=
/// Σ_rows dout. Each output is optional (a frozen weight needs no gradient).
pub fn matmul_backward(
    dinp: Option<&mut [f32]>,
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    n: usize,
    c: usize,
    oc: usize,
) {
    if let Some(dinp) = dinp {
        gemm(
            dinp,
            c,
            true,
            Strided::rows(dout, oc),
            Strided::t(weight, oc),
            n,
            c,
            oc,
        );
    }
    if let Some(dweight) = dweight {
        gemm(
            dweight,
            oc,
            true,
            Strided::t(inp, c),
            Strided::rows(dout, oc),
            c,
            oc,
            n,
        );
    }
    if let Some(dbias) = dbias {
        bias_backward(dbias, dout, n, oc);
    }
}

/// dbias (OC) += Σ over N rows of dout (N, OC), rows summed in order.
pub fn bias_backward(dbias: &mut [f32], dout: &[f32], n: usize, oc: usize) {
    for row in dout[..n * oc].chunks_exact(oc) {
        super::add_into(dbias, row);
    }
}
