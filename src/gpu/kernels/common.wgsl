// common: helpers prepended to every kernel's source (WGSL has no includes): the blocked address map of
// matmul operands, a fixed-order reduction over a workgroup of 64 invocations, and 1 + erf(x).
// reduce64's workgroupBarriers order only workgroup memory (red64); kernels that share storage
// locations between invocations must not rely on them for that.
struct Map { off: u32, rs: u32, cs: u32, rblk: u32, rbs: u32, cblk: u32, cbs: u32, pad: u32 }

// element (r, c) at off + (r / rblk)·rbs + (r % rblk)·rs + (c / cblk)·cbs + (c % cblk)·cs (block 0: none)
fn addr(m: Map, r: u32, c: u32) -> u32 {
    var a = m.off;
    if (m.rblk == 0u) { a += r * m.rs; } else { a += (r / m.rblk) * m.rbs + (r % m.rblk) * m.rs; }
    if (m.cblk == 0u) { a += c * m.cs; } else { a += (c / m.cblk) * m.cbs + (c % m.cblk) * m.cs; }
    return a;
}

var<workgroup> red64: array<f32, 64>;

// The sum (or max) of x over the 64 invocations of a workgroup, in a fixed tree; every invocation
// gets the result. Call from uniform control flow.
fn reduce64(l: u32, x: f32, is_max: bool) -> f32 {
    red64[l] = x;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (l < w) { red64[l] = select(red64[l] + red64[l + w], max(red64[l], red64[l + w]), is_max); }
        workgroupBarrier();
    }
    let r = red64[0];
    workgroupBarrier();
    return r;
}

// 1 + erf(x), from the Chebyshev erfc fit of Numerical Recipes (relative error < 1.2e-7).
fn one_plus_erf(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return select(r, 2.0 - r, x >= 0.0);
}

