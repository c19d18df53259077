//! The CPU engine's own kernels against plain computations: the branch-free `exp` against
//! f64's exp, the wasm builds' tiled matrix product against a plain loop, and layer 0's cached gather tables (reused while the weights are unchanged)
//! against an engine built fresh on the same weights.

use toyformer::backend::Backend;
use toyformer::cpu::kernels::exp::{exp, exp_in_place};
use toyformer::cpu::kernels::matmul::Strided;
use toyformer::cpu::kernels::tiled;
use toyformer::cpu::{CpuEngine, EngineOptions, Factor};
use toyformer::model::{ModelConfig, Weights};
use toyformer::tasks::rng::CounterRng;
use toyformer::train::TrainConfig;

/// Relative error of `got` against e^x in f64, in units of f32's epsilon at the value.
fn ulps(got: f32, x: f32) -> f64 {
    let want = (x as f64).exp();
    ((got as f64 - want) / want).abs() / f32::EPSILON as f64
}

#[test]
fn exp_is_within_two_ulp_of_f64_exp_over_the_normal_range() {
    // a dense grid over the whole range, then random points near 0 (the engine's inputs)
    let mut xs: Vec<f32> = (0..200_001)
        .map(|i| -87.3 + (88.3 + 87.3) * i as f32 / 200_000.0)
        .collect();
    let mut r = CounterRng::new(3, 0, 0);
    xs.extend((0..100_000).map(|_| -20.0 * r.uniform() as f32));
    xs.extend([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, std::f32::consts::LN_2]);
    let mut got = xs.clone();
    exp_in_place(&mut got); // the vectorised loop the engine runs
    for (i, (&x, &g)) in xs.iter().zip(&got).enumerate() {
        assert_eq!(
            g.to_bits(),
            exp(x).to_bits(),
            "in place differs at index {i}"
        );
        let e = ulps(g, x);
        assert!(
            e <= 2.0,
            "exp({x}) = {g}: {e:.2} ulp from {} (first bad index {i})",
            (x as f64).exp()
        );
    }
    assert_eq!(exp(0.0), 1.0);
}

#[test]
fn exp_limits_and_nan() {
    assert_eq!(exp(-87.34), 0.0);
    assert_eq!(exp(-1000.0), 0.0);
    assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp(88.38), f32::INFINITY);
    assert_eq!(exp(f32::INFINITY), f32::INFINITY);
    assert!(exp(f32::NAN).is_nan());
    assert!(exp(88.3).is_finite() && ulps(exp(88.3), 88.3) <= 2.0);
}

fn sorter() -> ModelConfig {
    ModelConfig {
        n_layers: 2,
        n_heads: 2,
        d_model: 16,
        d_head: 8,
        d_mlp: None,
        act_fn: None,
        normalization_type: None,
        n_ctx: 12,
        d_vocab: 11,
        d_vocab_out: 9,
        seed: 5,
        train_biases: true,
        positional_embedding_type: Default::default(),
    }
}

fn tokens(batch: usize, t: usize, seed: u64) -> Vec<u32> {
    let mut r = CounterRng::new(seed, 0, 0);
    (0..batch * t).map(|_| r.below(9) as u32).collect()
}

/// After each training step (weights changed in place) and after `set_weights`, the engine's
/// logits equal, bit for bit, those of an engine built fresh on its weights: the cached
/// tables are never stale.
#[test]
fn layer0_tables_cache_matches_a_fresh_engine() {
    let c = sorter();
    let w = Weights::init(&c).unwrap();
    let tc = TrainConfig {
        lr: 1e-2,
        grad_clip: 0.0,
        ..Default::default()
    };
    let opts = EngineOptions {
        factor: Factor::Always,
        flush_denormals: true,
    };
    let pred: Vec<usize> = (0..9).collect();
    let mut eng = CpuEngine::with_options(&w, &tc, pred.clone(), opts).unwrap();
    let (batch, t) = (5, 10);
    let probe = tokens(batch, t, 99);
    let fresh = |w: &Weights| {
        let mut e = CpuEngine::with_options(w, &tc, pred.clone(), opts).unwrap();
        e.logits(&probe, batch).unwrap()
    };
    for step in 0..4 {
        eng.train_step(&tokens(batch, t, step), batch, 1e-2, step)
            .unwrap();
        let got = eng.logits(&probe, batch).unwrap();
        let want = fresh(&eng.weights().unwrap());
        assert_eq!(bits(&got), bits(&want), "logits after step {step}");
    }
    let mut w2 = w.clone();
    w2.data[0] += 0.5; // W_E[0, 0]: one table input changes
    eng.set_weights(&w2).unwrap();
    assert_eq!(bits(&eng.logits(&probe, batch).unwrap()), bits(&fresh(&w2)));
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// A plain loop: out[i][j] (+)= Σ_p a[i][p]·b[p][j], summed over p in order from 0.
fn plain_gemm(
    out: &mut [f32],
    out_rs: usize,
    acc: bool,
    a: &Strided,
    b: &Strided,
    mnk: [usize; 3],
) {
    let [m, n, k] = mnk;
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f32;
            for p in 0..k {
                s += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
            }
            let o = &mut out[i * out_rs + j];
            *o = if acc { *o + s } else { s };
        }
    }
}

/// The wasm builds' tiled matrix product (run natively on four-lane arrays: the same tiling,
/// strides and edges) equals the plain loop bit for bit: every element is summed over k in
/// order. Row and column edges (m, n not multiples of the 4 × 8 tile), transposed operands (in
/// rows wider than the matrix; copied in 4 × 4 blocks with edges), accumulation, rows of `out`
/// further apart than n, k = 0.
#[test]
fn tiled_gemm_equals_a_plain_loop() {
    let mut r = CounterRng::new(8, 0, 0);
    let mut rand = |len: usize| -> Vec<f32> { (0..len).map(|_| r.normal() as f32).collect() };
    for (m, n, k) in [
        (1, 1, 1),
        (10, 21, 128),
        (21, 128, 10),
        (13, 50, 7),
        (6, 8, 0),
        (7, 9, 3),
        (52, 128, 33),
    ] {
        for (ta, tb, acc) in [
            (false, false, false),
            (true, false, true),
            (false, true, false),
            (true, true, true),
        ] {
            // transposed operands inside wider rows (a head's slice of a packed buffer): 5 more
            let (ad, bd) = (rand(m * k + 5 * k), rand(k * n + 5 * n));
            let a = if ta {
                Strided::t(&ad, m + 5)
            } else {
                Strided::rows(&ad, k)
            };
            let b = if tb {
                Strided::t(&bd, k + 5)
            } else {
                Strided::rows(&bd, n)
            };
            let out_rs = n + 3;
            let start = rand(m * out_rs);
            let (mut got, mut want) = (start.clone(), start);
            tiled::gemm(&mut got, out_rs, acc, a, b, m, n, k);
            plain_gemm(&mut want, out_rs, acc, &a, &b, [m, n, k]);
            let bad = got
                .iter()
                .zip(&want)
                .position(|(g, w)| g.to_bits() != w.to_bits());
            if let Some(i) = bad {
                panic!(
                    "m={m} n={n} k={k} ta={ta} tb={tb} acc={acc}: first bad index {i} ({} vs {})",
                    got[i], want[i]
                );
            }
        }
    }
}
