// embed_forward: resid (B·T, C) = W_E[tokens[b, t]] + W_pos[t], the first residual stream
// (hook_embed + hook_pos_embed); with flag 2 W_E[tokens[b, t]] alone (shortformer, positions off). With flag 1 it also zeroes `zero` (B·T, C), the backward's first
// residual-gradient target (only its scored rows are written later), so no separate clear is recorded.
// STEP is bound at the step's dynamic offset. Grid: ceil(B·T·C / 256) workgroups of 256, linearised over
// (x, y); each invocation owns one element of resid (and of zero).
// Memory order: no workgroup memory, no barrier; every storage element is written by its owner only.
struct Params { n: u32, t: u32, c: u32, tok_off: u32, we_off: u32, wp_off: u32, flags: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> STEP: array<u32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read_write> RESID: array<f32>;
@group(0) @binding(3) var<storage, read_write> ZERO: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= P.n * P.c) { return; }
    let row = e / P.c;
    let c = e % P.c;
    let tok = STEP[P.tok_off + row];
    var x = W[P.we_off + tok * P.c + c];
    if ((P.flags & 2u) == 0u) { x += W[P.wp_off + (row % P.t) * P.c + c]; }
    RESID[e] = x;
    if ((P.flags & 1u) != 0u) { ZERO[e] = 0.0; }
}
