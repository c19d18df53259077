// embed_backward: dW_E[v, c] = Σ dresid[row, c] over the rows holding token v (listed per token, in row
// order, by the host's counting sort: offsets (V + 1) and rows (B·T) in the step buffer), and
// dW_pos[t, c] = Σ_b dresid[b·T + t, c], for dresid (B·T, C); no atomics. Grid: ceil((V + T)·C / 256)
// workgroups of 256, linearised over (x, y); each invocation owns one element of dW_E or dW_pos.
struct Params { v: u32, t: u32, c: u32, b: u32, off_off: u32, rows_off: u32, we_off: u32, wp_off: u32 }

@group(0) @binding(0) var<storage, read> DRES: array<f32>;
@group(0) @binding(1) var<storage, read> STEP: array<u32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e < P.v * P.c) {
        let v = e / P.c;
        let c = e % P.c;
        var s = 0.0;
        for (var k = STEP[P.off_off + v]; k < STEP[P.off_off + v + 1u]; k++) {
            s += DRES[STEP[P.rows_off + k] * P.c + c];
        }
        G[P.we_off + e] = s;
        return;
    }
    let e2 = e - P.v * P.c;
    if (e2 >= P.t * P.c) { return; }
    let t = e2 / P.c;
    let c = e2 % P.c;
    var s = 0.0;
    for (var b = 0u; b < P.b; b++) { s += DRES[(b * P.t + t) * P.c + c]; }
    G[P.wp_off + e2] = s;
}
