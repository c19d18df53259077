// embed_backward: dW_E[v, c] = Σ dresid[row, c] over the rows holding token v (listed per token, in row
// order, by the host's counting sort: offsets (V + 1) and rows (B·T) in the step buffer), and
// dW_pos[t, c] = Σ_b dresid[b·T + t, c], for dresid (B·T, C); no atomics. Grid: one workgroup of
// (32 columns × 8 lanes) per (table row, 32 columns), linearised over (x, y); lane l sums every 8th
// source row, lanes are combined in a fixed tree; invocation (c, 0) owns dW_E[v, c] or dW_pos[t, c].
// STEP is bound at the step's dynamic offset.
// Memory order: workgroupBarrier orders the workgroup array red between the tree levels. Storage: dresid
// and the step are only read; each G element is written by one invocation; no storageBarrier is needed.
struct Params { v: u32, t: u32, c: u32, b: u32, off_off: u32, rows_off: u32, we_off: u32, wp_off: u32 }

@group(0) @binding(0) var<storage, read> DRES: array<f32>;
@group(0) @binding(1) var<storage, read> STEP: array<u32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(32, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let chunks = (P.c + 31u) / 32u;
    let id = wid.x + wid.y * nwg.x;
    if (id >= (P.v + P.t) * chunks) { return; }
    let r = id / chunks;
    let c = (id % chunks) * 32u + lid.x;
    let lane = lid.y;
    var s = 0.0;
    if (c < P.c) {
        if (r < P.v) {
            let k1 = STEP[P.off_off + r + 1u];
            for (var k = STEP[P.off_off + r] + lane; k < k1; k += 8u) { s += DRES[STEP[P.rows_off + k] * P.c + c]; }
        } else {
            let t = r - P.v;
            for (var b = lane; b < P.b; b += 8u) { s += DRES[(b * P.t + t) * P.c + c]; }
        }
    }
    let li = lane * 32u + lid.x;
    red[li] = s;
    workgroupBarrier();
    for (var w = 4u; w > 0u; w >>= 1u) {
        if (lane < w) { red[li] += red[li + 32u * w]; }
        workgroupBarrier();
    }
    if (lane == 0u && c < P.c) {
        if (r < P.v) { G[P.we_off + r * P.c + c] = red[li]; } else { G[P.wp_off + (r - P.v) * P.c + c] = red[li]; }
    }
}
