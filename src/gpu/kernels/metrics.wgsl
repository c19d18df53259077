// metrics: one step's figures from crossentropy's per-row loss and ok flags (B, P): stats[0] = mean loss,
// stats[2] = sequences with every scored token right, stats[4 + i] = rows right at scored position i,
// stats[3] bit 0 = loss not finite. Grid: one workgroup of 256; position i is counted by 256 / P lanes
// (one invocation per position and a loop when P > 256) and the lane with index 0 owns stats[4 + i];
// invocation 0 owns stats[0], stats[2] and stats[3] (stats[1] is grad_norm's).
struct Params { b: u32, p: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> LOSS: array<f32>;
@group(0) @binding(1) var<storage, read> OK: array<u32>;
@group(0) @binding(2) var<storage, read_write> STATS: array<u32>;
@group(0) @binding(3) var<uniform> P: Params;

var<workgroup> rf: array<f32, 256>;
var<workgroup> ru: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let l = lid.x;
    let rows = P.b * P.p;
    // right per position: lanes × positions ≤ 256 invocations, then positions past 256 one by one
    let lanes = max(1u, 256u / P.p);
    let i = l / lanes;
    let lane = l % lanes;
    var c = 0u;
    if (i < P.p) {
        for (var b = lane; b < P.b; b += lanes) { c += OK[b * P.p + i]; }
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
        for (var b = 0u; b < P.b; b++) { c2 += OK[b * P.p + i2]; }
        STATS[4u + i2] = c2;
    }
    workgroupBarrier();
    // loss and whole sequences: fixed-order tree sums
    var s = 0.0;
    for (var r = l; r < rows; r += 256u) { s += LOSS[r]; }
    var seq = 0u;
    for (var b = l; b < P.b; b += 256u) {
        var all = 1u;
        for (var k = 0u; k < P.p; k++) { all = all & OK[b * P.p + k]; }
        seq += all;
    }
    rf[l] = s;
    ru[l] = seq;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (l < w) { rf[l] += rf[l + w]; ru[l] += ru[l + w]; }
        workgroupBarrier();
    }
    if (l == 0u) {
        let loss = rf[0] / f32(rows);
        STATS[0] = bitcast<u32>(loss);
        STATS[2] = ru[0];
        STATS[3] = select(0u, 1u, (bitcast<u32>(loss) & 0x7f800000u) == 0x7f800000u);
    }
}
