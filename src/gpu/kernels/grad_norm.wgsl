// grad_norm: global L2 norm of the flat gradient (frozen entries are zero), in two entry points:
// `partial` (NG workgroups of 256; workgroup w owns part[w], a fixed-order sum of squares over a strided
// slice) and `finish` (one workgroup of 256; invocation 0 owns stats[1] = norm, vars[4] = the clip
// coefficient min(1, clip / (norm + 1e-6)) and vars[5] = 1 once a loss or norm is not finite, which
// makes adamw skip the rest of the chunk).
struct PartParams { total: u32, ng: u32, pad0: u32, pad1: u32 }
struct FinParams { ng: u32, clip: f32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read_write> PART_OUT: array<f32>;
@group(0) @binding(2) var<uniform> PP: PartParams;
@group(0) @binding(3) var<storage, read> PART: array<f32>;
@group(0) @binding(4) var<storage, read_write> STATS: array<u32>;
@group(0) @binding(5) var<storage, read_write> VARS: array<f32>;
@group(0) @binding(6) var<uniform> FP: FinParams;

var<workgroup> red: array<f32, 256>;

fn tree(l: u32) {
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (l < w) { red[l] += red[l + w]; }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var s = 0.0;
    for (var i = wid.x * 256u + lid.x; i < PP.total; i += PP.ng * 256u) { let g = G[i]; s = fma(g, g, s); }
    red[lid.x] = s;
    tree(lid.x);
    if (lid.x == 0u) { PART_OUT[wid.x] = red[0]; }
}

fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    red[lid.x] = select(0.0, PART[lid.x], lid.x < FP.ng);
    tree(lid.x);
    if (lid.x == 0u) {
        let norm = sqrt(red[0]);
        STATS[1] = bitcast<u32>(norm);
        var coef = 1.0;
        if (FP.clip > 0.0) { coef = min(1.0, FP.clip / (norm + 1e-6)); }
        VARS[4] = coef;
        if (!finite(norm) || !finite(bitcast<f32>(STATS[0]))) {
            VARS[5] = 1.0;
            STATS[3] = STATS[3] | 2u;
        }
    }
}
