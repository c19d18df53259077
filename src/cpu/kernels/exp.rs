//! `exp` on f32 without a library call, branch-free so that a loop of it vectorises (simd128
//! in wasm, AVX2 in the engine's [`super::simd_fn`] copies): wasm's `expf` is a scalar
//! library function (compiler_builtins' libm), ~5% of a sort-ref step in Chromium. Cody–Waite
//! range reduction x = n·ln 2 + r, |r| ≤ ln 2 / 2, then Cephes' degree-6 polynomial for
//! exp(r) and 2ⁿ built in the exponent bits. Within 2 ulp of exp over the normal range
//! (tests/native/cpu_kernels.rs checks it against f64 exp). The same arithmetic on every
//! target and build (no fused multiply-add), so results do not depend on the CPU.
//!
//! Range: x < −87.33 (exp below the smallest normal f32) gives 0; x > 88.37 gives +∞ (the
//! true exp overflows only above 88.72: the last 0.35 is given up to keep 2ⁿ a normal
//! float); NaN gives NaN. The engine calls it on shifted scores (≤ 0), nowhere near either.

/// Below this, 0.
const LO: f32 = -87.33;
/// Above this, +∞.
const HI: f32 = 88.37;
/// 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer, kept in the low
/// mantissa bits.
const ROUND: f32 = 12_582_912.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits (so n·LN2_HI is exact for |n| ≤ 2¹⁵).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes expf's polynomial, highest degree first.
const P: [f32; 6] = [
    1.987_569_2e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes' 5.0000001201e-1, rounded to f32
];

/// e^x (see the module note for the range).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(LO, HI); // NaN stays NaN
    let t = xc * LOG2E + ROUND; // n in its low mantissa bits
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let y = (p * r * r + r) + 1.0;
    // 2ⁿ: the integer n sits in t's low bits (t's bits = 0x4B40_0000 + n), moved to the exponent
    let scale = f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    let e = y * scale;
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        e
    }
}

/// x ← e^x for every element (a loop the compiler vectorises).
#[inline(always)]
pub fn exp_in_place(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = exp(*v);
    }
}
