// shortformer_backward: dW_pos[t, c] (+)= Σ_b dx_qk[b·T + t, c], the B sequences summed in order, into the
// flat gradient at wp_off (acc 0 overwrites: the first layer the backward reaches; later layers add).
// Grid: ceil(T·C / 256) workgroups of 256, linearised over (x, y); each invocation owns one element of
// dW_pos. No atomics, no workgroup memory, no barrier: dx_qk is only read.
struct Params { b: u32, t: u32, c: u32, wp_off: u32, acc: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> DXQK: array<f32>;        // (B·T, C)
@group(0) @binding(1) var<storage, read_write> G: array<f32>;     // flat gradients: dW_pos (n_ctx, C) at wp_off
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= P.t * P.c) { return; }
    var s = 0.0;
    for (var b = 0u; b < P.b; b++) { s += DXQK[b * P.t * P.c + e]; }
    if (P.acc != 0u) { s += G[P.wp_off + e]; }
    G[P.wp_off + e] = s;
}
