// layernorm_forward: TransformerLens LN over the last axis, out = (x − mean) / sqrt(var + eps) · w + b,
// for x (N, C); stats (N, 2) keeps (mean, rstd) for the backward. Grid: one workgroup of 64 per row,
// linearised over (x, y); invocation l owns out[row, l], out[row, l + 64], ...; invocation 0 owns stats.
// Memory order: reduce64's workgroupBarriers order its workgroup array. Storage: x and the weights are
// only read, out and stats elements are written by their owners; no storageBarrier is needed.
struct Params { n: u32, c: u32, w_off: u32, b_off: u32, eps: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(3) var<storage, read_write> STATS: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.n) { return; }
    let l = lid.x;
    let x0 = row * P.c;
    var s = 0.0;
    for (var e = l; e < P.c; e += 64u) { s += X[x0 + e]; }
    let mean = reduce64(l, s, false) / f32(P.c);
    var s2 = 0.0;
    for (var e = l; e < P.c; e += 64u) { let d = X[x0 + e] - mean; s2 = fma(d, d, s2); }
    let scale = sqrt(reduce64(l, s2, false) / f32(P.c) + P.eps);
    for (var e = l; e < P.c; e += 64u) {
        OUT[x0 + e] = (X[x0 + e] - mean) / scale * W[P.w_off + e] + W[P.b_off + e];
    }
    if (l == 0u) { STATS[2u * row] = mean; STATS[2u * row + 1u] = 1.0 / scale; }
}
