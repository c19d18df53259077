// metrics: one step's figures from the per-row loss and argmax of crossentropy: stats[0] = mean loss,
// stats[2] = sequences with every scored token right, stats[4 + i] = rows right at scored position i
// (B, P), stats[3] bit 0 = loss not finite. Grid: one workgroup of 256; invocation l owns stats[4 + i]
// for i ≡ l (mod 256); invocation 0 owns stats[0], stats[2] and stats[3] (stats[1] is grad_norm's).
struct Params { b: u32, p: u32, t: u32, p0: u32, tok_off: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> LOSS: array<f32>;
@group(0) @binding(1) var<storage, read> ARGMAX: array<u32>;
@group(0) @binding(2) var<storage, read> STEP: array<u32>;
@group(0) @binding(3) var<storage, read_write> STATS: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;

var<workgroup> rf: array<f32, 256>;
var<workgroup> ru: array<u32, 256>;

fn ok(b: u32, i: u32) -> bool {
    return ARGMAX[b * P.p + i] == STEP[P.tok_off + b * P.t + P.p0 + i + 1u];
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let l = lid.x;
    let rows = P.b * P.p;
    var s = 0.0;
    for (var r = l; r < rows; r += 256u) { s += LOSS[r]; }
    var seq = 0u;
    for (var b = l; b < P.b; b += 256u) {
        var all = true;
        for (var i = 0u; i < P.p; i++) { all = all && ok(b, i); }
        seq += select(0u, 1u, all);
    }
    rf[l] = s;
    ru[l] = seq;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (l < w) { rf[l] += rf[l + w]; ru[l] += ru[l + w]; }
        workgroupBarrier();
    }
    for (var i = l; i < P.p; i += 256u) {
        var c = 0u;
        for (var b = 0u; b < P.b; b++) { c += select(0u, 1u, ok(b, i)); }
        STATS[4u + i] = c;
    }
    if (l == 0u) {
        let loss = rf[0] / f32(rows);
        STATS[0] = bitcast<u32>(loss);
        STATS[2] = ru[0];
        STATS[3] = select(0u, 1u, (bitcast<u32>(loss) & 0x7f800000u) == 0x7f800000u);
    }
}
