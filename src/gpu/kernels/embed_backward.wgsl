// embed_backward: dW_E[v, c] = Σ dresid[row, c] over the rows holding token v, and (npos = T) dW_pos[t, c] =
// Σ_b dresid[b·T + t, c], for dresid (B·T, C); no atomics. With npos = 0 dW_pos is not written
// (shortformer, positions off). The host's step data lists the rows of each
// token in row order (a counting sort: offsets (V + 1), rows (B·T)) and cuts each token's list into
// segments of at most SEG = 256 rows (seg_first (V + 1): token v owns segments seg_first[v]..seg_first[v + 1];
// seg_tok (NSEG): the token of each segment), so that no workgroup gathers more than SEG rows however
// frequent a token is (the space token of permutations). Grid: one workgroup of (32 columns × 8 lanes) per
// (segment slot or position, 32 columns), linearised over (x, y): NSEG segment slots (slots past
// seg_first[V] write nothing), then T positions. Lane l sums every 8th row of its segment (or every 8th
// sequence), lanes are combined in a fixed tree; invocation (c, 0) owns part[part_off + k·C + c] of
// segment k (grad_norm sums a token's segments in order into dW_E) or dW_pos[t, c]. A token's first
// segment sums exactly what one workgroup summed before segments existed. STEP is bound at the step's
// dynamic offset.
// Memory order: workgroupBarrier orders the workgroup array red between the tree levels. Storage: dresid
// and the step are only read; each G / part element is written by one invocation; no storageBarrier is
// needed.
struct Params { v: u32, t: u32, c: u32, b: u32, off_off: u32, rows_off: u32, seg_off: u32, tok_off: u32,
                nseg: u32, part_off: u32, wp_off: u32, npos: u32 }

@group(0) @binding(0) var<storage, read> DRES: array<f32>;
@group(0) @binding(1) var<storage, read> STEP: array<u32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> PART: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

const SEG: u32 = 256u;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(32, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let chunks = (P.c + 31u) / 32u;
    let id = wid.x + wid.y * nwg.x;
    if (id >= (P.nseg + P.npos) * chunks) { return; }
    let r = id / chunks;
    let c = (id % chunks) * 32u + lid.x;
    let lane = lid.y;
    let used = r < P.nseg && r < STEP[P.seg_off + P.v];
    var s = 0.0;
    if (c < P.c) {
        if (used) {
            let v = STEP[P.tok_off + r];
            let k0 = STEP[P.off_off + v] + (r - STEP[P.seg_off + v]) * SEG;
            let k1 = min(STEP[P.off_off + v + 1u], k0 + SEG);
            for (var k = k0 + lane; k < k1; k += 8u) { s += DRES[STEP[P.rows_off + k] * P.c + c]; }
        } else if (r >= P.nseg) {
            let t = r - P.nseg;
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
        if (used) { PART[P.part_off + r * P.c + c] = red[li]; }
        if (r >= P.nseg) { G[P.wp_off + (r - P.nseg) * P.c + c] = red[li]; }
    }
}
