// crossentropy: for each scored row r = (b, i) of logits (B·P, V), loss_r = logsumexp − logit[target],
// target = TARGETS[r] (the step's (B, P) targets, at tgt_off in the step buffer); argmax (first index of the largest logit) and ok = (argmax == target);
// with flag 1, dlogits = (softmax − onehot) · scale written over the logits in place, scale = inv_rows
// (1 / (B·P)), or with flag 2 the step's own f32 at STEP[tgt_off + rows] (1 / its scored rows). A row
// whose target is 0xffffffff (unscored, Batch::IGNORE) has loss 0, ok 1 (it never makes its sequence
// wrong; the host takes the unscored rows out of the per-position counts) and dlogits 0. Grid: one workgroup
// of 64 per row, linearised over (x, y); invocation l owns logits[r, l], logits[r, l + 64], ...;
// invocation 0 owns argmax[r] and ok[r], the invocation that owns logits[r, target] owns loss[r].
// Rows: (2·B·P) u32: loss (f32 bits) at r, ok at B·P + r. STEP is bound at the step's dynamic offset.
// Memory order: workgroupBarrier orders the workgroup arrays rv / ri between the levels of the two
// trees (max, then sum). Storage: every logits element is read and overwritten by its owning
// invocation only (the target logit is read for the loss by its owner before that owner overwrites
// it, in program order), so no storage location is shared between invocations and no storageBarrier
// is needed.
struct Params { rows: u32, v: u32, tgt_off: u32, flags: u32, inv_rows: f32 }

@group(0) @binding(0) var<storage, read_write> LOGITS: array<f32>;
@group(0) @binding(1) var<storage, read> STEP: array<u32>;
@group(0) @binding(2) var<storage, read_write> ROWS: array<u32>;
@group(0) @binding(3) var<storage, read_write> ARGMAX: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;

var<workgroup> rv: array<f32, 64>;
var<workgroup> ri: array<u32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= P.rows) { return; }
    let l = lid.x;
    let r0 = r * P.v;
    // max and its first index
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var e = l; e < P.v; e += 64u) {
        let x = LOGITS[r0 + e];
        if (x > bv || bi == 0xffffffffu) { bv = x; bi = e; }
    }
    rv[l] = bv;
    ri[l] = bi;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (l < w) {
            let ov = rv[l + w];
            let oi = ri[l + w];
            if (oi != 0xffffffffu && (ri[l] == 0xffffffffu || ov > rv[l] || (ov == rv[l] && oi < ri[l]))) {
                rv[l] = ov;
                ri[l] = oi;
            }
        }
        workgroupBarrier();
    }
    let m = rv[0];
    let am = ri[0];
    workgroupBarrier(); // every lane has read rv[0] before rv is reused for the sum
    var s = 0.0;
    for (var e = l; e < P.v; e += 64u) { s += exp(LOGITS[r0 + e] - m); }
    rv[l] = s;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (l < w) { rv[l] = rv[l] + rv[l + w]; }
        workgroupBarrier();
    }
    let tot = rv[0];
    let tgt = STEP[P.tgt_off + r];
    let unscored = tgt == 0xffffffffu;
    let lse = m + log(tot);
    if (unscored) {
        if (l == 0u) { ROWS[r] = 0u; }
    } else if (l == tgt % 64u) {
        ROWS[r] = bitcast<u32>(lse - LOGITS[r0 + tgt]);
    }
    if (l == 0u) {
        ARGMAX[r] = am;
        ROWS[P.rows + r] = select(0u, 1u, am == tgt || unscored);
    }
    if ((P.flags & 1u) != 0u) {
        var scale = P.inv_rows;
        if ((P.flags & 2u) != 0u) { scale = bitcast<f32>(STEP[P.tgt_off + P.rows]); }
        if (unscored) { scale = 0.0; }
        for (var e = l; e < P.v; e += 64u) {
            let pr = exp(LOGITS[r0 + e] - m) / tot;
            LOGITS[r0 + e] = (pr - select(0.0, 1.0, e == tgt)) * scale;
        }
    }
}
