// attention_forward: causal softmax attention without the (B, NH, T, T) pattern: z_i = Σ_j softmax_j(q_i·k_j
// / sqrt(HS)) v_j over j ≤ i, and lse_i = log Σ_j exp(scores) kept for the backward. qkv (B·T, 3·NH·HS)
// columns [Q heads | K heads | V heads]; z (B·T, NH·HS); lse (B, NH, T). Grid: one workgroup of 64 per
// row (b, h, i), linearised over (x, y); the row's scores live in workgroup memory; invocation d owns
// z[.., d], z[.., d + 64], ... of its row, invocation 0 owns lse.
// Memory order: s[j] is written and rescaled by lane j % 64 only, then read by every lane after
// reduce64's workgroupBarrier. Storage: qkv is only read, z and lse elements are written by their owners;
// no storageBarrier is needed.
struct Params { b: u32, t: u32, nh: u32, hs: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> Z: array<f32>;
@group(0) @binding(2) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

var<workgroup> s: array<f32, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x; // (b, h, i)
    if (row >= P.b * P.nh * P.t) { return; }
    let l = lid.x;
    let i = row % P.t;
    let h = (row / P.t) % P.nh;
    let b = row / (P.t * P.nh);
    let w3 = 3u * P.nh * P.hs;
    let q0 = (b * P.t + i) * w3 + h * P.hs;
    let kcol = (P.nh + h) * P.hs;
    let vcol = (2u * P.nh + h) * P.hs;
    var mx = -3.0e38;
    for (var j = l; j <= i; j += 64u) {
        let k0 = (b * P.t + j) * w3 + kcol;
        var d = 0.0;
        for (var e = 0u; e < P.hs; e++) { d = fma(QKV[q0 + e], QKV[k0 + e], d); }
        d = d * P.scale;
        s[j] = d;
        mx = max(mx, d);
    }
    let m = reduce64(l, mx, true);
    var sum = 0.0;
    for (var j = l; j <= i; j += 64u) {
        let p = exp(s[j] - m);
        s[j] = p;
        sum += p;
    }
    let tot = reduce64(l, sum, false); // also a barrier: every s[j] is final
    let inv = 1.0 / tot;
    for (var e = l; e < P.hs; e += 64u) {
        var acc = 0.0;
        for (var j = 0u; j <= i; j++) { acc = fma(s[j] * inv, QKV[(b * P.t + j) * w3 + vcol + e], acc); }
        Z[(b * P.t + i) * P.nh * P.hs + h * P.hs + e] = acc;
    }
    if (l == 0u) { LSE[row] = m + log(tot); }
}
