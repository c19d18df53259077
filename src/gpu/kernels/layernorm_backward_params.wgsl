// layernorm_backward_params: dw[c] = Σ_n dout[n, c]·xhat[n, c], db[c] = Σ_n dout[n, c] of TransformerLens LN,
// xhat from x (N, C) and stats (N, 2), into the flat gradient buffer at w_off / b_off. Grid (ceil(C / 16), R)
// workgroups of 16 columns × 16 row lanes; workgroup (x, z) sums row chunk z and owns
// part[part_off + z·2C + c] and part[part_off + z·2C + C + c] (grad_norm sums the R chunks in order); with
// R = 1 it writes dw, db directly. Fixed-order trees: deterministic.
// Memory order: workgroupBarrier orders the workgroup arrays rw / rb between the tree levels. Storage:
// the inputs are only read, each output element is written by one invocation; no storageBarrier is needed.
struct Params { n: u32, c: u32, w_off: u32, b_off: u32, chunks: u32, part_off: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> STATS: array<f32>;
@group(0) @binding(2) var<storage, read> DOUT: array<f32>;
@group(0) @binding(3) var<storage, read_write> PART_OUT: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

var<workgroup> rw: array<f32, 256>;
var<workgroup> rb: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x * 16u + lid.x;
    let li = lid.y * 16u + lid.x;
    let rows = (P.n + P.chunks - 1u) / P.chunks;
    let n1 = min(P.n, (wid.y + 1u) * rows);
    var sw = 0.0;
    var sb = 0.0;
    if (c < P.c) {
        for (var n = wid.y * rows + lid.y; n < n1; n += 16u) {
            let d = DOUT[n * P.c + c];
            sw = fma(d, (X[n * P.c + c] - STATS[2u * n]) * STATS[2u * n + 1u], sw);
            sb += d;
        }
    }
    rw[li] = sw;
    rb[li] = sb;
    workgroupBarrier();
    for (var w = 8u; w > 0u; w >>= 1u) {
        if (lid.y < w) { rw[li] += rw[li + 16u * w]; rb[li] += rb[li + 16u * w]; }
        workgroupBarrier();
    }
    if (lid.y == 0u && c < P.c) {
        if (P.chunks == 1u) {
            PART_OUT[P.w_off + c] = rw[li];
            PART_OUT[P.b_off + c] = rb[li];
        } else {
            PART_OUT[P.part_off + wid.y * 2u * P.c + c] = rw[li];
            PART_OUT[P.part_off + wid.y * 2u * P.c + P.c + c] = rb[li];
        }
    }
}
