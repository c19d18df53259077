// bias_backward: db[c] = Σ_n dout[n, c] for dout (N, OC), into the flat gradient buffer at off + c, in two
// entry points: `partial` (grid (ceil(OC / 16), R) workgroups of 16 columns × 16 row lanes; workgroup
// (x, z) sums row chunk z and owns part[z, c] for its 16 columns; with R = 1 it writes db directly) and
// `finish` (ceil(OC / 256) workgroups of 256; invocation c owns db[c], the sum of part[0..R, c] in order).
// Lane sums are combined in a fixed tree: deterministic.
struct Params { n: u32, oc: u32, off: u32, chunks: u32 }

@group(0) @binding(0) var<storage, read> DOUT: array<f32>;
@group(0) @binding(1) var<storage, read_write> PART_OUT: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<storage, read> PART: array<f32>;
@group(0) @binding(4) var<storage, read_write> G: array<f32>;
@group(0) @binding(5) var<uniform> F: Params;

var<workgroup> r: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x * 16u + lid.x;
    let li = lid.y * 16u + lid.x;
    let rows = (P.n + P.chunks - 1u) / P.chunks;
    let n1 = min(P.n, (wid.y + 1u) * rows);
    var s = 0.0;
    if (c < P.oc) {
        for (var n = wid.y * rows + lid.y; n < n1; n += 16u) { s += DOUT[n * P.oc + c]; }
    }
    r[li] = s;
    workgroupBarrier();
    for (var w = 8u; w > 0u; w >>= 1u) {
        if (lid.y < w) { r[li] += r[li + 16u * w]; }
        workgroupBarrier();
    }
    if (lid.y == 0u && c < P.oc) {
        if (P.chunks == 1u) { PART_OUT[P.off + c] = r[li]; } else { PART_OUT[wid.y * P.oc + c] = r[li]; }
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= F.oc) { return; }
    var s = 0.0;
    for (var z = 0u; z < F.chunks; z++) { s += PART[z * F.oc + c]; }
    G[F.off + c] = s;
}
