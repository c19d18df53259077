// activation_backward: dpre = dpost · act'(pre) for pre, dpost (N, M) (relu, gelu erf, gelu_new tanh); for
// solu (y = x·s, s = softmax(x) over the row) dpre_k = s_k (g_k (1 + x_k) − Σ_i g_i x_i s_i). Grid: one
// workgroup of 64 per row, linearised over (x, y); invocation l owns dpre[row, l], dpre[row, l + 64], ...
// Memory order: reduce64's workgroupBarriers order its workgroup array (solu's sums). Storage: pre and
// dpost are only read, each dpre element is written by its owner; no storageBarrier is needed.
struct Params { n: u32, m: u32, act: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> PRE: array<f32>;
@group(0) @binding(1) var<storage, read> DPOST: array<f32>;
@group(0) @binding(2) var<storage, read_write> DPRE: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

fn dact(a: u32, x: f32) -> f32 {
    if (a == 0u) { return select(0.0, 1.0, x >= 0.0); }
    if (a == 1u) {
        return 0.5 * one_plus_erf(x * 0.70710678118654752) + x * 0.39894228040143268 * exp(-0.5 * x * x);
    }
    let k = 0.79788456080286536;
    let th = tanh(clamp(k * x * (1.0 + 0.044715 * x * x), -15.0, 15.0));
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3.0 * 0.044715 * x * x);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.n) { return; }
    let l = lid.x;
    let r0 = row * P.m;
    if (P.act != 3u) {
        for (var e = l; e < P.m; e += 64u) { DPRE[r0 + e] = DPOST[r0 + e] * dact(P.act, PRE[r0 + e]); }
        return;
    }
    var mx = -3.0e38;
    for (var e = l; e < P.m; e += 64u) { mx = max(mx, PRE[r0 + e]); }
    let m = reduce64(l, mx, true);
    var s = 0.0;
    for (var e = l; e < P.m; e += 64u) { s += exp(PRE[r0 + e] - m); }
    let inv = 1.0 / reduce64(l, s, false);
    var gxs = 0.0;
    for (var e = l; e < P.m; e += 64u) {
        let x = PRE[r0 + e];
        gxs += DPOST[r0 + e] * x * (exp(x - m) * inv);
    }
    let sum_gxs = reduce64(l, gxs, false);
    for (var e = l; e < P.m; e += 64u) {
        let x = PRE[r0 + e];
        let sk = exp(x - m) * inv;
        DPRE[r0 + e] = sk * (DPOST[r0 + e] * (1.0 + x) - sum_gxs);
    }
}
