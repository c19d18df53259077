// layernorm_backward: dx of TransformerLens LN for one row, from x (N, C), stats (N, 2) = (mean, rstd),
// w and dout (N, C): with g = dout·w and xhat = (x − mean)·rstd, dx = rstd (g − mean(g) − xhat·mean(g·xhat)).
// dx is added to dres (flag 1) or written to it. Grid: one workgroup of 64 per row, linearised over
// (x, y); invocation l owns dres[row, l], dres[row, l + 64], ... (dw and db: layernorm_backward_params).
// Memory order: reduce64's workgroupBarriers order its workgroup array. Storage: each dres element is
// read (flag 1) and then written by its owning invocation only; no storageBarrier is needed.
struct Params { n: u32, c: u32, w_off: u32, flags: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> STATS: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> DOUT: array<f32>;
@group(0) @binding(4) var<storage, read_write> DRES: array<f32>;
@group(0) @binding(5) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.n) { return; }
    let l = lid.x;
    let x0 = row * P.c;
    let mean = STATS[2u * row];
    let rstd = STATS[2u * row + 1u];
    var sg = 0.0;
    var sgx = 0.0;
    for (var e = l; e < P.c; e += 64u) {
        let g = DOUT[x0 + e] * W[P.w_off + e];
        sg += g;
        sgx = fma(g, (X[x0 + e] - mean) * rstd, sgx);
    }
    let mg = reduce64(l, sg, false) / f32(P.c);
    let mgx = reduce64(l, sgx, false) / f32(P.c);
    for (var e = l; e < P.c; e += 64u) {
        let g = DOUT[x0 + e] * W[P.w_off + e];
        let xhat = (X[x0 + e] - mean) * rstd;
        var dx = rstd * (g - mg - xhat * mgx);
        if ((P.flags & 1u) != 0u) { dx += DRES[x0 + e]; }
        DRES[x0 + e] = dx;
    }
}
