// attention_backward_dq: for query row (b, h, i), with P_ij recomputed from q, k and lse: D_i = dz_i·z_i,
// dS_ij = P_ij (dz_i·v_j − D_i), dq_i = Σ_j dS_ij k_j / sqrt(HS). Writes the Q columns of dqkv
// (B·T, 3·NH·HS) and D (B, NH, T). Grid: one workgroup of 64 per row (b, h, i), linearised over
// (x, y); dS of the row lives in workgroup memory; invocation d owns dq[.., d], dq[.., d + 64], ...
// of its row, invocation 0 owns D.
struct Params { b: u32, t: u32, nh: u32, hs: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> Z: array<f32>;
@group(0) @binding(2) var<storage, read> DZ: array<f32>;
@group(0) @binding(3) var<storage, read> LSE: array<f32>;
@group(0) @binding(4) var<storage, read_write> DQKV: array<f32>;
@group(0) @binding(5) var<storage, read_write> DD: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

var<workgroup> s: array<f32, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.b * P.nh * P.t) { return; }
    let l = lid.x;
    let i = row % P.t;
    let h = (row / P.t) % P.nh;
    let b = row / (P.t * P.nh);
    let w3 = 3u * P.nh * P.hs;
    let q0 = (b * P.t + i) * w3 + h * P.hs;
    let z0 = (b * P.t + i) * P.nh * P.hs + h * P.hs;
    let kcol = (P.nh + h) * P.hs;
    let vcol = (2u * P.nh + h) * P.hs;
    var part = 0.0;
    for (var e = l; e < P.hs; e += 64u) { part = fma(DZ[z0 + e], Z[z0 + e], part); }
    let dd = reduce64(l, part, false);
    let lse = LSE[row];
    for (var j = l; j <= i; j += 64u) {
        let k0 = (b * P.t + j) * w3 + kcol;
        let v0 = (b * P.t + j) * w3 + vcol;
        var sc = 0.0;
        var dp = 0.0;
        for (var e = 0u; e < P.hs; e++) {
            sc = fma(QKV[q0 + e], QKV[k0 + e], sc);
            dp = fma(DZ[z0 + e], QKV[v0 + e], dp);
        }
        let p = exp(sc * P.scale - lse);
        s[j] = p * (dp - dd);
    }
    workgroupBarrier();
    for (var e = l; e < P.hs; e += 64u) {
        var acc = 0.0;
        for (var j = 0u; j <= i; j++) { acc = fma(s[j], QKV[(b * P.t + j) * w3 + kcol + e], acc); }
        DQKV[q0 + e] = acc * P.scale;
    }
    if (l == 0u) { DD[row] = dd; }
}
