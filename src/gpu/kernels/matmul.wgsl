// matmul: out (M, N) = A (M, K) · B (K, N) [+ bias (N)] [+ D (M, N)] [+ out], every operand read through
// a blocked address map (row and column blocks with their own strides), so W_Q [NH, C, HS] or the
// predicted rows of (B, T, C) are used in place. Grid (ceil(N/64), ceil(M/64), S): workgroup z sums K
// slice z; each invocation owns the 4×4 elements (4ty + i, 4tx + j) of its workgroup's 64×64 tile
// of out, or of partial[z] (M, N) at part_off of the split-sum scratch when the K splits are summed
// afterwards (grad_norm finishes every split sum of a step in one dispatch).
// Memory order: workgroupBarrier orders the shared tiles As / Bs (loaded by all, read by all, then
// overwritten by the next K step after the second barrier). Storage: A, B, bias and D are only read; each
// out element is read (accumulate) and written by its owning invocation only; no storageBarrier is needed.
struct Params { m: u32, n: u32, k: u32, flags: u32, kchunk: u32, bias_off: u32, d_off: u32, part_off: u32,
                a: Map, b: Map, o: Map }

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read> D: array<f32>;
@group(0) @binding(5) var<uniform> P: Params;

const FLAG_BIAS: u32 = 1u;
const FLAG_D: u32 = 2u;
const FLAG_ACC: u32 = 4u;
const FLAG_PARTIAL: u32 = 8u;
const TS: u32 = 64u;   // tile rows / columns
const TK: u32 = 16u;   // tile depth
const LD4: u32 = 17u;  // padded leading dimension of the shared tiles, in vec4 (68 floats)

// [TK][LD4] vec4: element (k, m) at As[k * LD4 + m / 4][m % 4], so an invocation's 4 rows (or
// columns) are one vec4 load
var<workgroup> As: array<vec4<f32>, 272>;
var<workgroup> Bs: array<vec4<f32>, 272>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let li = ty * 16u + tx;
    let row0 = wid.y * TS;
    let col0 = wid.x * TS;
    let k0 = wid.z * P.kchunk;
    let k1 = min(P.k, k0 + P.kchunk);
    // load order: walk the operand's unit-stride axis with consecutive invocations
    let a_m_fast = P.a.rs == 1u && P.a.cs != 1u;
    let b_k_fast = P.b.rs == 1u && P.b.cs != 1u;
    var acc: array<vec4<f32>, 4>; // acc[i][j]: row 4ty + i, column 4tx + j
    for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
    for (var kt = k0; kt < k1; kt += TK) {
        for (var e = li; e < TS * TK; e += 256u) {
            var mm: u32; var kk: u32;
            if (a_m_fast) { mm = e % TS; kk = e / TS; } else { mm = e / TK; kk = e % TK; }
            let r = row0 + mm;
            let k = kt + kk;
            var v = 0.0;
            if (r < P.m && k < k1) { v = A[addr(P.a, r, k)]; }
            As[kk * LD4 + mm / 4u][mm % 4u] = v;
            var nn: u32;
            if (b_k_fast) { nn = e / TK; kk = e % TK; } else { nn = e % TS; kk = e / TS; }
            let c = col0 + nn;
            let k2 = kt + kk;
            var w = 0.0;
            if (c < P.n && k2 < k1) { w = B[addr(P.b, k2, c)]; }
            Bs[kk * LD4 + nn / 4u][nn % 4u] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = As[kk * LD4 + ty];
            let b = Bs[kk * LD4 + tx];
            acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
            acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
            acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
            acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + 4u * ty + i;
        if (r >= P.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + 4u * tx + j;
            if (c >= P.n) { continue; }
            var v = acc[i][j];
            if ((P.flags & FLAG_PARTIAL) != 0u) {
                O[P.part_off + (wid.z * P.m + r) * P.n + c] = v;
                continue;
            }
            if ((P.flags & FLAG_BIAS) != 0u) { v += BIAS[P.bias_off + c]; }
            let o = addr(P.o, r, c);
            if ((P.flags & FLAG_D) != 0u) { v += D[o - P.o.off + P.d_off]; }
            if ((P.flags & FLAG_ACC) != 0u) { v += O[o]; }
            O[o] = v;
        }
    }
}
