// grad_norm: finishes the step's split sums and computes the partial sums of squares of the flat gradient
// (frozen entries are zero), in one dispatch. A split sum (job) is a weight gradient whose K axis (the
// B·T rows) was cut into S slices: split-K matmuls and the row chunks of bias / LayerNorm column sums
// leave S partial (M, N) results in the scratch buffer, and element (r, c) of the gradient is
// Σ_s scratch[off + s·stride + r·N + c], summed in slice order and written through the job's address
// map (see matmul.wgsl). Jobs: 16 u32 each (off, stride, S, M, N, first workgroup, kind, seg_off, Map).
// A job of kind 1 sums embed_backward's row segments: element (v, c) is Σ_k scratch[off + k·N + c] over
// token v's segments k = seg_first[v]..seg_first[v + 1], read from the step window at seg_off.
// Grid: NG + Σ ceil(M·N / 256) workgroups of 256, linearised over (x, y). Workgroup w < NG sums g² over a strided slice
// of the gradient, skipping the elements a job writes (bit set in DONE); a later workgroup finishes 256
// elements of one job and sums their squares. Workgroup w owns part[w], a fixed-order tree of its lanes:
// adamw re-sums the NG + job partials in order, so the norm is deterministic.
// The NG strided workgroups also sum the row losses of crossentropy (ROWS, f32 bits) in strided slices:
// loss partial w at part[parts + 2 + w] (after adamw's two halt slots). STEP is bound at the step's
// dynamic offset.
// Memory order: workgroupBarrier orders the workgroup array red between the tree levels. Storage: a job
// element of G is written by one invocation and read by none in this dispatch (the strided workgroups
// skip it); every other element of G is only read; so no storageBarrier is needed.
struct Params { total: u32, ng: u32, njobs: u32, parts: u32, rows: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read_write> G: array<f32>;
@group(0) @binding(1) var<storage, read> SCRATCH: array<f32>;
@group(0) @binding(2) var<storage, read> JOBS: array<u32>;
@group(0) @binding(3) var<storage, read> DONE: array<u32>;
@group(0) @binding(4) var<storage, read_write> PART: array<f32>;
@group(0) @binding(5) var<storage, read> STEP: array<u32>;
@group(0) @binding(6) var<storage, read> ROWS: array<u32>;
@group(0) @binding(7) var<uniform> P: Params;

var<workgroup> red: array<f32, 256>;

fn job_map(j: u32) -> Map {
    let o = 16u * j + 8u;
    return Map(JOBS[o], JOBS[o + 1u], JOBS[o + 2u], JOBS[o + 3u], JOBS[o + 4u], JOBS[o + 5u], JOBS[o + 6u], 0u);
}

// The finished value of element e of job j, written to G; returns it.
fn finish(j: u32, e: u32) -> f32 {
    let o = 16u * j;
    let n = JOBS[o + 4u];
    var v = 0.0;
    if (JOBS[o + 6u] == 1u) {
        let seg = JOBS[o + 7u] + e / n;
        for (var k = STEP[seg]; k < STEP[seg + 1u]; k++) { v += SCRATCH[JOBS[o] + k * n + e % n]; }
    } else {
        for (var s = 0u; s < JOBS[o + 2u]; s++) { v += SCRATCH[JOBS[o] + s * JOBS[o + 1u] + e]; }
    }
    G[addr(job_map(j), e / n, e % n)] = v;
    return v;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = wid.x + wid.y * nwg.x;
    if (id >= P.parts) { return; }
    let l = lid.x;
    var s = 0.0;
    if (id < P.ng) {
        for (var i = id * 256u + l; i < P.total; i += P.ng * 256u) {
            if (((DONE[i / 32u] >> (i % 32u)) & 1u) == 0u) { let g = G[i]; s = fma(g, g, s); }
        }
    } else {
        let w = id - P.ng;
        var j = 0u;
        while (j + 1u < P.njobs && JOBS[16u * (j + 1u) + 5u] <= w) { j++; }
        let e = (w - JOBS[16u * j + 5u]) * 256u + l;
        if (e < JOBS[16u * j + 3u] * JOBS[16u * j + 4u]) { let v = finish(j, e); s = v * v; }
    }
    red[l] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (l < w) { red[l] += red[l + w]; }
        workgroupBarrier();
    }
    if (l == 0u) { PART[id] = red[0]; }
    if (id >= P.ng) { return; }
    // the strided workgroups also sum crossentropy's row losses (f32 bits in ROWS): loss partial w at
    // part[parts + 2 + w], after the two halt slots, for adamw
    workgroupBarrier();
    var ls = 0.0;
    for (var r = id * 256u + l; r < P.rows; r += P.ng * 256u) { ls += bitcast<f32>(ROWS[r]); }
    red[l] = ls;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (l < w) { red[l] += red[l + w]; }
        workgroupBarrier();
    }
    if (l == 0u) { PART[P.parts + 2u + id] = red[0]; }
}
