// attention_backward: dq, dk and dv of causal attention in one dispatch, with P_ij = exp(q_i·k_j / sqrt(HS)
// − lse_i) recomputed from qkv and the forward's lse, and D_i = dz_i·z_i (a serial dot in e order, computed
// where it is needed, so both halves use the same value):
//   query row (b, h, i): dS_ij = P_ij (dz_i·v_j − D_i) for j ≤ i, dq_i = Σ_j dS_ij k_j / sqrt(HS);
//   key row (b, h, j):   dv_j = Σ_{i≥j} P_ij dz_i, dk_j = Σ_{i≥j} P_ij (dz_i·v_j − D_i) q_i / sqrt(HS).
// Writes dqkv (B·T, 3·NH·HS), columns [Q heads | K heads | V heads]. Grid: 2·B·NH·T workgroups of 64,
// linearised over (x, y): the first B·NH·T are query rows, the rest key rows. A query row's dS (or a key
// row's P and dS) live in workgroup memory; invocation d owns dq (or dk and dv) at d, d + 64, ... of its row.
// Memory order: the one workgroupBarrier orders the workgroup arrays (each written by one lane, then read
// by all). Storage: qkv, z, dz and lse are only read; each dqkv element is written by exactly one
// invocation of the grid and read by none, so no storageBarrier is needed.
struct Params { b: u32, t: u32, nh: u32, hs: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> Z: array<f32>;
@group(0) @binding(2) var<storage, read> DZ: array<f32>;
@group(0) @binding(3) var<storage, read> LSE: array<f32>;
@group(0) @binding(4) var<storage, read_write> DQKV: array<f32>;
@group(0) @binding(5) var<uniform> P: Params;

var<workgroup> pp: array<f32, 1024>;
var<workgroup> ds: array<f32, 1024>;

// D_i = dz_i · z_i of query row (b, h, i), in e order.
fn delta(b: u32, h: u32, i: u32) -> f32 {
    let z0 = (b * P.t + i) * P.nh * P.hs + h * P.hs;
    var d = 0.0;
    for (var e = 0u; e < P.hs; e++) { d = fma(DZ[z0 + e], Z[z0 + e], d); }
    return d;
}

// (score · scale, dz_i · v_j) of query i against key j.
fn score_dp(b: u32, h: u32, i: u32, j: u32) -> vec2<f32> {
    let w3 = 3u * P.nh * P.hs;
    let q0 = (b * P.t + i) * w3 + h * P.hs;
    let k0 = (b * P.t + j) * w3 + (P.nh + h) * P.hs;
    let v0 = (b * P.t + j) * w3 + (2u * P.nh + h) * P.hs;
    let z0 = (b * P.t + i) * P.nh * P.hs + h * P.hs;
    var sc = 0.0;
    var dp = 0.0;
    for (var e = 0u; e < P.hs; e++) {
        sc = fma(QKV[q0 + e], QKV[k0 + e], sc);
        dp = fma(DZ[z0 + e], QKV[v0 + e], dp);
    }
    return vec2<f32>(sc * P.scale, dp);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = P.b * P.nh * P.t;
    let id = wid.x + wid.y * nwg.x;
    if (id >= 2u * rows) { return; }
    let key = id >= rows;
    let row = select(id, id - rows, key);
    let l = lid.x;
    let x = row % P.t; // i for a query row, j for a key row
    let h = (row / P.t) % P.nh;
    let b = row / (P.t * P.nh);
    let w3 = 3u * P.nh * P.hs;
    let lrow = (b * P.nh + h) * P.t; // lse of query i at lrow + i
    if (!key) {
        let dd = delta(b, h, x);
        for (var j = l; j <= x; j += 64u) {
            let sd = score_dp(b, h, x, j);
            ds[j] = exp(sd.x - LSE[lrow + x]) * (sd.y - dd);
        }
    } else {
        for (var i = x + l; i < P.t; i += 64u) {
            let sd = score_dp(b, h, i, x);
            let p = exp(sd.x - LSE[lrow + i]);
            pp[i] = p;
            ds[i] = p * (sd.y - delta(b, h, i));
        }
    }
    workgroupBarrier();
    let q0 = (b * P.t + x) * w3 + h * P.hs;
    let k0 = (b * P.t + x) * w3 + (P.nh + h) * P.hs;
    let v0 = (b * P.t + x) * w3 + (2u * P.nh + h) * P.hs;
    for (var e = l; e < P.hs; e += 64u) {
        if (!key) {
            var acc = 0.0;
            for (var j = 0u; j <= x; j++) { acc = fma(ds[j], QKV[(b * P.t + j) * w3 + (P.nh + h) * P.hs + e], acc); }
            DQKV[q0 + e] = acc * P.scale;
        } else {
            var dk = 0.0;
            var dv = 0.0;
            for (var i = x; i < P.t; i++) {
                dv = fma(pp[i], DZ[(b * P.t + i) * P.nh * P.hs + h * P.hs + e], dv);
                dk = fma(ds[i], QKV[(b * P.t + i) * w3 + h * P.hs + e], dk);
            }
            DQKV[k0 + e] = dk * P.scale;
            DQKV[v0 + e] = dv;
        }
    }
}
