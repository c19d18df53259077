// attention_backward_dkv: for key row (b, h, j), with P_ij recomputed from q, k and lse (and D from
// attention_backward_dq): dv_j = Σ_{i≥j} P_ij dz_i, dk_j = Σ_{i≥j} P_ij (dz_i·v_j − D_i) q_i / sqrt(HS).
// Writes the K and V columns of dqkv (B·T, 3·NH·HS). Grid: one workgroup of 64 per key row (b, h, j),
// linearised over (x, y); P and dS of the column live in workgroup memory; invocation d owns dk and dv
// at d, d + 64, ... of its row.
struct Params { b: u32, t: u32, nh: u32, hs: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> DZ: array<f32>;
@group(0) @binding(2) var<storage, read> LSE: array<f32>;
@group(0) @binding(3) var<storage, read> DD: array<f32>;
@group(0) @binding(4) var<storage, read_write> DQKV: array<f32>;
@group(0) @binding(5) var<uniform> P: Params;

var<workgroup> pp: array<f32, 1024>;
var<workgroup> ds: array<f32, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.b * P.nh * P.t) { return; }
    let l = lid.x;
    let j = row % P.t;
    let h = (row / P.t) % P.nh;
    let b = row / (P.t * P.nh);
    let w3 = 3u * P.nh * P.hs;
    let zw = P.nh * P.hs;
    let k0 = (b * P.t + j) * w3 + (P.nh + h) * P.hs;
    let v0 = (b * P.t + j) * w3 + (2u * P.nh + h) * P.hs;
    let lrow = (b * P.nh + h) * P.t; // lse / D of query i at lrow + i
    for (var i = j + l; i < P.t; i += 64u) {
        let q0 = (b * P.t + i) * w3 + h * P.hs;
        let z0 = (b * P.t + i) * zw + h * P.hs;
        var sc = 0.0;
        var dp = 0.0;
        for (var e = 0u; e < P.hs; e++) {
            sc = fma(QKV[q0 + e], QKV[k0 + e], sc);
            dp = fma(DZ[z0 + e], QKV[v0 + e], dp);
        }
        let p = exp(sc * P.scale - LSE[lrow + i]);
        pp[i] = p;
        ds[i] = p * (dp - DD[lrow + i]);
    }
    workgroupBarrier();
    for (var e = l; e < P.hs; e += 64u) {
        var dk = 0.0;
        var dv = 0.0;
        for (var i = j; i < P.t; i++) {
            dv = fma(pp[i], DZ[(b * P.t + i) * zw + h * P.hs + e], dv);
            dk = fma(ds[i], QKV[(b * P.t + i) * w3 + h * P.hs + e], dk);
        }
        DQKV[k0 + e] = dk * P.scale;
        DQKV[v0 + e] = dv;
    }
}
