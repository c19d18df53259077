// shortformer_forward: x_qk (B·T, C) = x (B·T, C) + W_pos[row % T], a shortformer layer's query and key
// input (ln1 output + positions; the values read x). Grid: ceil(B·T·C / 256) workgroups of 256,
// linearised over (x, y); each invocation owns one element of x_qk. No workgroup memory, no barrier.
struct Params { n: u32, t: u32, c: u32, wp_off: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;           // (B·T, C)
@group(0) @binding(1) var<storage, read> W: array<f32>;           // flat params: W_pos (n_ctx, C) at wp_off
@group(0) @binding(2) var<storage, read_write> XQK: array<f32>;   // (B·T, C)
@group(0) @binding(3) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= P.n * P.c) { return; }
    let row = e / P.c;
    XQK[e] = X[e] + W[P.wp_off + (row % P.t) * P.c + e % P.c];
}
