// bias_backward: db[c] = Σ_n dout[n, c] for dout (N, OC), written into the flat gradient buffer at
// off + c. Grid: ceil(OC / 16) workgroups of (16 columns × 16 row lanes); lane sums are combined in a
// fixed tree (deterministic); invocation (c, 0) owns db[c].
struct Params { n: u32, oc: u32, off: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> DOUT: array<f32>;
@group(0) @binding(1) var<storage, read_write> G: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

var<workgroup> r: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x * 16u + lid.x;
    let li = lid.y * 16u + lid.x;
    var s = 0.0;
    if (c < P.oc) {
        for (var n = lid.y; n < P.n; n += 16u) { s += DOUT[n * P.oc + c]; }
    }
    r[li] = s;
    workgroupBarrier();
    for (var w = 8u; w > 0u; w >>= 1u) {
        if (lid.y < w) { r[li] += r[li + 16u * w]; }
        workgroupBarrier();
    }
    if (lid.y == 0u && c < P.oc) { G[P.off + c] = r[li]; }
}
