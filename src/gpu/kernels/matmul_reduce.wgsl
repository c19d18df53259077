// matmul_reduce: out (M, N) [+]= Σ_s partial[s] (M, N), summing the K splits of a matmul in split
// order (deterministic), then writing through out's blocked address map (see matmul.wgsl).
// Grid: ceil(M·N / 256) workgroups of 256, linearised over (x, y); each invocation owns one element.
struct Map { off: u32, rs: u32, cs: u32, rblk: u32, rbs: u32, cblk: u32, cbs: u32, pad: u32 }
struct Params { m: u32, n: u32, splits: u32, flags: u32, o: Map }

@group(0) @binding(0) var<storage, read> PART: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

fn addr(m: Map, r: u32, c: u32) -> u32 {
    var a = m.off;
    if (m.rblk == 0u) { a += r * m.rs; } else { a += (r / m.rblk) * m.rbs + (r % m.rblk) * m.rs; }
    if (m.cblk == 0u) { a += c * m.cs; } else { a += (c / m.cblk) * m.cbs + (c % m.cblk) * m.cs; }
    return a;
}

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
