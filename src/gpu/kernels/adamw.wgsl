// adamw: one AdamW step over the flat parameter buffer, as candle-nn's AdamW: m = β1 m + (1 − β1) g,
// v = β2 v + (1 − β2) g², θ = θ (1 − lr·wd) − lr · (m·sm) / (sqrt(v·sv) + eps), with g the gradient times
// the clip coefficient and sm, sv the bias corrections (vars: lr, sm, sv, 1 − lr·wd, coef, halt). Frozen
// entries (mask bit 0) and halted chunks are left alone. Grid: ceil(total / 256) workgroups of 256,
// linearised over (x, y); each invocation owns one element of θ, m and v.
struct Params { total: u32, beta1: f32, beta2: f32, omb1: f32, omb2: f32, eps: f32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read_write> TH: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> M: array<f32>;
@group(0) @binding(3) var<storage, read_write> V: array<f32>;
@group(0) @binding(4) var<storage, read> MASK: array<u32>;
@group(0) @binding(5) var<storage, read> VARS: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= P.total || VARS[5] != 0.0) { return; }
    if (((MASK[i / 32u] >> (i % 32u)) & 1u) == 0u) { return; }
    let g = G[i] * VARS[4];
    let m = M[i] * P.beta1 + g * P.omb1;
    let v = V[i] * P.beta2 + (g * g) * P.omb2;
    M[i] = m;
    V[i] = v;
    let step = (m * VARS[1]) / (sqrt(v * VARS[2]) + P.eps);
    TH[i] = TH[i] * VARS[3] - step * VARS[0];
}
