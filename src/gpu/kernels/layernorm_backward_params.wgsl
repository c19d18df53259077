// layernorm_backward_params: dw[c] = Σ_n dout[n, c]·xhat[n, c] and db[c] = Σ_n dout[n, c] for TransformerLens
// LN, xhat recomputed from x (N, C) and stats (N, 2); written into the flat gradient buffer at w_off /
// b_off. Grid: ceil(C / 16) workgroups of (16 columns × 16 row lanes); lane sums are combined in a
// fixed tree, so the result is deterministic; invocation (c, 0) owns dw[c] and db[c].
struct Params { n: u32, c: u32, w_off: u32, b_off: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> STATS: array<f32>;
@group(0) @binding(2) var<storage, read> DOUT: array<f32>;
@group(0) @binding(3) var<storage, read_write> G: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

var<workgroup> rw: array<f32, 256>;
var<workgroup> rb: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x * 16u + lid.x;
    let li = lid.y * 16u + lid.x;
    var sw = 0.0;
    var sb = 0.0;
    if (c < P.c) {
        for (var n = lid.y; n < P.n; n += 16u) {
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
        G[P.w_off + c] = rw[li];
        G[P.b_off + c] = rb[li];
    }
}
