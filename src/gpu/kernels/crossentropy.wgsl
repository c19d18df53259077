// crossentropy: for each scored row r = (b, i) of logits (B·P, V), loss_r = logsumexp − logit[target],
// target = tokens[b, p0 + i + 1]; argmax (first index of the largest logit) and ok = (argmax == target);
// with flag 1, dlogits = (softmax − onehot) / (B·P) written over the logits in place. Grid: one workgroup
// of 64 per row, linearised over (x, y); invocation l owns logits[r, l], logits[r, l + 64], ...;
// invocation 0 owns loss[r], argmax[r] and ok[r].
struct Params { rows: u32, v: u32, p: u32, t: u32, p0: u32, tok_off: u32, flags: u32, inv_rows: f32 }

@group(0) @binding(0) var<storage, read_write> LOGITS: array<f32>;
@group(0) @binding(1) var<storage, read> STEP: array<u32>;
@group(0) @binding(2) var<storage, read_write> LOSS: array<f32>;
@group(0) @binding(3) var<storage, read_write> ARGMAX: array<u32>;
@group(0) @binding(4) var<storage, read_write> OK: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

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
    workgroupBarrier();
    var s = 0.0;
    for (var e = l; e < P.v; e += 64u) { s += exp(LOGITS[r0 + e] - m); }
    rv[l] = s;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (l < w) { rv[l] = rv[l] + rv[l + w]; }
        workgroupBarrier();
    }
    let tot = rv[0];
    let b = r / P.p;
    let i = r % P.p;
    let tgt = STEP[P.tok_off + b * P.t + P.p0 + i + 1u];
    let lse = m + log(tot);
    if (l == 0u) {
        LOSS[r] = lse - LOGITS[r0 + tgt];
        ARGMAX[r] = am;
        OK[r] = select(0u, 1u, am == tgt);
    }
    workgroupBarrier(); // LOSS read the target logit before it is overwritten
    if ((P.flags & 1u) != 0u) {
        for (var e = l; e < P.v; e += 64u) {
            let pr = exp(LOGITS[r0 + e] - m) / tot;
            LOGITS[r0 + e] = (pr - select(0.0, 1.0, e == tgt)) * P.inv_rows;
        }
    }
}
