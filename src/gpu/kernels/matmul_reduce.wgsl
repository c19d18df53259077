// matmul_reduce: out (M, N) [+]= Σ_s partial[s] (M, N), summing the K splits of a matmul in split
// order (deterministic), then writing through out's blocked address map (see matmul.wgsl).
// Grid: ceil(M·N / 256) workgroups of 256, linearised over (x, y); each invocation owns one element.
struct Params { m: u32, n: u32, splits: u32, flags: u32, o: Map }

@group(0) @binding(0) var<storage, read> PART: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= P.m * P.n) { return; }
    let r = i / P.n;
    let c = i % P.n;
    var v = 0.0;
    for (var s = 0u; s < P.splits; s++) { v += PART[s * P.m * P.n + i]; }
    let o = addr(P.o, r, c);
    if ((P.flags & 4u) != 0u) { v += O[o]; }
    O[o] = v;
}
