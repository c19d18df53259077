// bias_backward: db[c] = Σ_n dout[n, c] for dout (N, OC), into the flat gradient buffer at off + c. Grid
// (ceil(OC / 16), R) workgroups of 16 columns × 16 row lanes; workgroup (x, z) sums row chunk z and owns
// part[part_off + z·OC + c] for its 16 columns (grad_norm sums the R chunks in order); with R = 1 it
// writes db directly. Lane sums are combined in a fixed tree: deterministic.
// Memory order: workgroupBarrier orders the workgroup array r between the tree levels. Storage: dout is
// only read, each output element is written by one invocation; no storageBarrier is needed.
struct Params { n: u32, oc: u32, off: u32, chunks: u32, part_off: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> DOUT: array<f32>;
@group(0) @binding(1) var<storage, read_write> PART_OUT: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

var<workgroup> r: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
        if (P.chunks == 1u) { PART_OUT[P.off + c] = r[li]; } else { PART_OUT[P.part_off + wid.y * P.oc + c] = r[li]; }
    }
}
