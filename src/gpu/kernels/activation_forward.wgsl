// activation_forward: post = act(pre) for pre (N, M): relu, gelu (erf form), gelu_new (tanh form), or
// solu x·softmax(x) over the row's M values. Grid: one workgroup of 64 per row, linearised over (x, y);
// invocation l owns post[row, l], post[row, l + 64], ...
// Memory order: reduce64's workgroupBarriers order its workgroup array (solu's max and sum). Storage:
// pre is only read, each post element is written by its owner; no storageBarrier is needed.
struct Params { n: u32, m: u32, act: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> PRE: array<f32>;
@group(0) @binding(1) var<storage, read_write> POST: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

fn act(a: u32, x: f32) -> f32 {
    if (a == 0u) { return max(x, 0.0); }
    if (a == 1u) { return 0.5 * x * one_plus_erf(x * 0.70710678118654752); }
    let u = clamp(0.79788456080286536 * x * (1.0 + 0.044715 * x * x), -15.0, 15.0);
    return 0.5 * x * (1.0 + tanh(u));
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.n) { return; }
    let l = lid.x;
    let r0 = row * P.m;
    if (P.act != 3u) {
        for (var e = l; e < P.m; e += 64u) { POST[r0 + e] = act(P.act, PRE[r0 + e]); }
        return;
    }
    var mx = -3.0e38;
    for (var e = l; e < P.m; e += 64u) { mx = max(mx, PRE[r0 + e]); }
    let m = reduce64(l, mx, true);
    var s = 0.0;
    for (var e = l; e < P.m; e += 64u) { s += exp(PRE[r0 + e] - m); }
    let tot = reduce64(l, s, false);
    for (var e = l; e < P.m; e += 64u) { let x = PRE[r0 + e]; POST[r0 + e] = x * (exp(x - m) / tot); }
}
