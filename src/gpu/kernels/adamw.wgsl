// adamw: one AdamW step over the flat parameter buffer, as candle-nn's AdamW: m = β1 m + (1 − β1) g,
// v = β2 v + (1 − β2) g², θ = θ (1 − lr·wd) − lr · (m·sm) / (sqrt(v·sv) + eps), with g the gradient times
// the clip coefficient min(1, clip / (‖g‖ + 1e-6)) (1 without clipping) and sm, sv the bias corrections.
// It also finishes the step's figures, so that no separate dispatch does: every workgroup re-sums
// grad_norm's norm partials and its NG loss partials (sums of crossentropy's row losses) in the same fixed
// order (lane l sums entries l, l + 256, ..., then a fixed tree), so all of them see the same ‖g‖ and loss; workgroup 0 writes the
// stats (4 + P) u32 = [mean loss, ‖g‖, sequences right, flags, right per position...] (flags: bit 0
// loss not finite, bit 1 loss or norm not finite). A step whose loss or norm is not finite halts the
// chunk: its halt slot, and every later one, is 1 and no parameter moves. Halt slots ping-pong (the step
// reads slot `parity` and writes slot 1 − parity, so no location is read and written in one dispatch).
// SCHED (lr, sm, sv, 1 − lr·wd, parity, scored rows) and STATS are bound at the step's dynamic offsets; MOM holds m
// at i and v at total + i; NORM holds the norm partials, the two halt slots, then NG loss partials; ROWS
// is crossentropy's (loss bits, ok), read here for the metrics only. Frozen entries (mask bit 0) are left alone. Grid: ceil(total / 256) workgroups of
// 256, linearised over (x, y); each invocation owns one element of θ, m and v.
// Memory order: workgroupBarrier orders the workgroup arrays red / ru between tree levels (and before
// they are reused). Storage: the partials, row losses and the read halt slot were written by earlier
// dispatches; the written halt slot and stats are written by workgroup 0 only and read by no
// invocation of this dispatch; θ, m, v elements are owned. No storageBarrier is needed.
struct Params { total: u32, beta1: f32, beta2: f32, omb1: f32, omb2: f32, eps: f32, parts: u32, clip: f32,
                b: u32, p: u32, ng: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read_write> TH: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> MOM: array<f32>;
@group(0) @binding(3) var<storage, read> MASK: array<u32>;
@group(0) @binding(4) var<storage, read> SCHED: array<f32>;
@group(0) @binding(5) var<storage, read_write> NORM: array<f32>;
@group(0) @binding(6) var<storage, read> ROWS: array<u32>;
@group(0) @binding(7) var<storage, read_write> STATS: array<u32>;
@group(0) @binding(8) var<uniform> P: Params;

var<workgroup> red: array<f32, 256>;
var<workgroup> ru: array<u32, 256>;

fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }

// Σ x over the 256 lanes in a fixed tree (x and u separately); every lane gets the result in red[0] /
// ru[0] until the trailing barrier. Call from uniform control flow.
fn tree(l: u32, x: f32, u: u32) -> vec2<u32> {
    red[l] = x;
    ru[l] = u;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (l < w) { red[l] += red[l + w]; ru[l] += ru[l + w]; }
        workgroupBarrier();
    }
    let r = vec2<u32>(bitcast<u32>(red[0]), ru[0]);
    workgroupBarrier();
    return r;
}

// Workgroup 0: rows right per scored position and whole sequences right (ok flags (B, P) at ROWS[B·P..]).
fn metrics(l: u32, loss: f32, norm: f32, bad: bool) {
    let rows = P.b * P.p;
    // right per position: lanes × positions ≤ 256 invocations, then positions past 256 one by one
    let lanes = max(1u, 256u / P.p);
    let i = l / lanes;
    let lane = l % lanes;
    var c = 0u;
    if (i < P.p) {
        for (var b = lane; b < P.b; b += lanes) { c += ROWS[rows + b * P.p + i]; }
    }
    ru[l] = c;
    workgroupBarrier();
    if (lane == 0u && i < P.p) {
        var tot = 0u;
        for (var k = 0u; k < lanes; k++) { tot += ru[l + k]; }
        STATS[4u + i] = tot;
    }
    for (var i2 = l + 256u; i2 < P.p; i2 += 256u) {
        var c2 = 0u;
        for (var b = 0u; b < P.b; b++) { c2 += ROWS[rows + b * P.p + i2]; }
        STATS[4u + i2] = c2;
    }
    workgroupBarrier();
    var seq = 0u;
    for (var b = l; b < P.b; b += 256u) {
        var all = 1u;
        for (var k = 0u; k < P.p; k++) { all = all & ROWS[rows + b * P.p + k]; }
        seq += all;
    }
    let right = tree(l, 0.0, seq).y;
    if (l == 0u) {
        STATS[0] = bitcast<u32>(loss);
        STATS[1] = bitcast<u32>(norm);
        STATS[2] = right;
        STATS[3] = select(0u, 1u, !finite(loss)) | select(0u, 2u, bad);
    }
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let l = lid.x;
    let id = wid.x + wid.y * nwg.x;
    var sq = 0.0;
    for (var k = l; k < P.parts; k += 256u) { sq += NORM[k]; }
    let norm = sqrt(bitcast<f32>(tree(l, sq, 0u).x));
    var ls = 0.0;
    for (var w = l; w < P.ng; w += 256u) { ls += NORM[P.parts + 2u + w]; }
    // the mean over the scored rows (B·P unless some targets are unscored)
    let loss = bitcast<f32>(tree(l, ls, 0u).x) / SCHED[5];
    let bad = !finite(norm) || !finite(loss);
    let parity = u32(SCHED[4]);
    let halt = NORM[P.parts + parity] != 0.0 || bad;
    if (id == 0u) {
        metrics(l, loss, norm, bad);
        if (l == 0u) { NORM[P.parts + 1u - parity] = select(0.0, 1.0, halt); }
    }
    let i = id * 256u + l;
    if (i >= P.total || halt) { return; }
    if (((MASK[i / 32u] >> (i % 32u)) & 1u) == 0u) { return; }
    var coef = 1.0;
    if (P.clip > 0.0) { coef = min(1.0, P.clip / (norm + 1e-6)); }
    let g = G[i] * coef;
    let m = MOM[i] * P.beta1 + g * P.omb1;
    let v = MOM[P.total + i] * P.beta2 + (g * g) * P.omb2;
    MOM[i] = m;
    MOM[P.total + i] = v;
    let step = (m * SCHED[1]) / (sqrt(v * SCHED[2]) + P.eps);
    TH[i] = TH[i] * SCHED[3] - step * SCHED[0];
}
