//! Positional-embedding options: TransformerLens's shortformer (W_pos added to the query and
//! key inputs of every layer's attention, never to the residual stream) and positions off
//! (W_pos frozen at zero). The reference backend against a plain f64 loop and against finite
//! differences; the CPU engine's gradients against finite differences and its training against
//! the reference; every backend builds both (engine and GPU parity: cpu_engine.rs, gpu_model.rs).

use candle_core::DType;
use toyformer::backend::{Backend, BackendKind};
use toyformer::backends::make_backend;
use toyformer::cpu::{CpuEngine, EngineOptions, Factor};
use toyformer::model::{ModelConfig, Norm, Positions, Weights};
use toyformer::reference::ReferenceBackend as CpuBackend; // reference backend
use toyformer::tasks::rng::CounterRng;
use toyformer::tasks::TaskSpec;
use toyformer::train::TrainConfig;

fn tiny(n_layers: usize, ln: bool, pos: Positions) -> ModelConfig {
    let mut c = ModelConfig::sort_ref();
    c.n_layers = n_layers;
    c.n_heads = 2;
    c.d_model = 8;
    c.d_head = 4;
    c.normalization_type = ln.then_some(Norm::LN);
    c.n_ctx = 7;
    c.d_vocab = 9;
    c.d_vocab_out = 6;
    c.seed = 3;
    c.train_biases = true;
    c.positional_embedding_type = pos;
    c
}

fn random_weights(cfg: &ModelConfig) -> Weights {
    let mut w = Weights::init(cfg).unwrap();
    let mut r = CounterRng::new(99, 1, 2);
    for p in w.table.params.clone() {
        if p.trainable {
            for v in &mut w.data[p.offset..p.offset + p.len] {
                *v += 0.3 * r.normal() as f32;
            }
        }
    }
    w
}

fn tokens(batch: usize, t: usize) -> Vec<u32> {
    let mut r = CounterRng::new(5, 0, 0);
    (0..batch * t).map(|_| r.below(6) as u32).collect()
}

/// A 1-layer attention-only shortformer written out as plain f64 loops: logits (T, V).
fn shortformer_by_hand(w: &Weights, seq: &[u32]) -> Vec<f64> {
    let c = &w.cfg;
    let (d, nh, hs, vo, t) = (c.d_model, c.n_heads, c.d_head, c.d_vocab_out, seq.len());
    let g = |n: &str| -> Vec<f64> { w.get(n).unwrap().iter().map(|&x| x as f64).collect() };
    let (we, wp, wu, bu) = (
        g("embed.W_E"),
        g("pos_embed.W_pos"),
        g("unembed.W_U"),
        g("unembed.b_U"),
    );
    let (wq, wk, wv, wo) = (
        g("blocks.0.attn.W_Q"),
        g("blocks.0.attn.W_K"),
        g("blocks.0.attn.W_V"),
        g("blocks.0.attn.W_O"),
    );
    let (bq, bk, bv, bo) = (
        g("blocks.0.attn.b_Q"),
        g("blocks.0.attn.b_K"),
        g("blocks.0.attn.b_V"),
        g("blocks.0.attn.b_O"),
    );
    let resid: Vec<Vec<f64>> = seq
        .iter()
        .map(|&tok| we[tok as usize * d..(tok as usize + 1) * d].to_vec())
        .collect();
    let proj = |x: &[f64], wm: &[f64], b: &[f64], h: usize| -> Vec<f64> {
        (0..hs)
            .map(|j| b[h * hs + j] + (0..d).map(|i| x[i] * wm[(h * d + i) * hs + j]).sum::<f64>())
            .collect()
    };
    let mut out = resid.clone();
    for h in 0..nh {
        let qk_in: Vec<Vec<f64>> = (0..t)
            .map(|p| (0..d).map(|i| resid[p][i] + wp[p * d + i]).collect())
            .collect();
        let q: Vec<Vec<f64>> = qk_in.iter().map(|x| proj(x, &wq, &bq, h)).collect();
        let k: Vec<Vec<f64>> = qk_in.iter().map(|x| proj(x, &wk, &bk, h)).collect();
        let v: Vec<Vec<f64>> = resid.iter().map(|x| proj(x, &wv, &bv, h)).collect();
        for p in 0..t {
            let s: Vec<f64> = (0..=p)
                .map(|j| (0..hs).map(|e| q[p][e] * k[j][e]).sum::<f64>() / (hs as f64).sqrt())
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for i in 0..d {
                let mut acc = 0.0;
                for e in 0..hs {
                    let ze: f64 = (0..=p).map(|j| (s[j] - m).exp() / z * v[j][e]).sum();
                    acc += ze * wo[(h * hs + e) * d + i];
                }
                out[p][i] += acc;
            }
        }
    }
    let mut logits = Vec::new(); // (T, V)
    for row in &out {
        for o in 0..vo {
            logits.push(
                bo.iter()
                    .enumerate()
                    .map(|(i, b)| (row[i] + b) * wu[i * vo + o])
                    .sum::<f64>()
                    + bu[o],
            );
        }
    }
    logits
}

#[test]
fn shortformer_matches_a_plain_loop() {
    let w = random_weights(&tiny(1, false, Positions::Shortformer));
    let seq = tokens(1, 7);
    let want = shortformer_by_hand(&w, &seq);
    let mut b = CpuBackend::for_inference(&w).unwrap();
    let got = b.logits(&seq, 1).unwrap();
    toyformer::compare::assert_close("shortformer", &got, &want, 1e-4, 1e-4);
    // and it differs from standard positions on the same weights
    let mut std_w = w.clone();
    std_w.cfg.positional_embedding_type = Positions::Standard;
    let other = CpuBackend::for_inference(&std_w)
        .unwrap()
        .logits(&seq, 1)
        .unwrap();
    assert!(got.iter().zip(&other).any(|(a, b)| (a - b).abs() > 1e-3));
}

/// Finite differences of the reference's loss (f64) against its autograd.
fn finite_differences(cfg: ModelConfig) {
    let w = random_weights(&cfg);
    let (batch, pred) = (3, vec![2, 3, 4, 5]);
    let toks = tokens(batch, 7);
    let tc = TrainConfig::default();
    let b = CpuBackend::with_dtype(&w, &tc, pred.clone(), DType::F64).unwrap();
    let (_, grads) = b.loss_and_grads(&toks, batch).unwrap();
    let off = cfg.positional_embedding_type == Positions::Off;
    assert_eq!(grads.iter().any(|(n, _)| n == "pos_embed.W_pos"), !off);
    for (name, g) in &grads {
        let info = w.table.get(name).unwrap().clone();
        for k in 0..info.len.min(4) {
            let idx = (k * 7919) % info.len;
            let at = |delta: f32| {
                let mut w2 = w.clone();
                w2.data[info.offset + idx] += delta;
                let actual = w2.data[info.offset + idx] as f64 - w.data[info.offset + idx] as f64;
                let b2 = CpuBackend::with_dtype(&w2, &tc, pred.clone(), DType::F64).unwrap();
                (b2.loss_and_grads(&toks, batch).unwrap().0, actual)
            };
            let ((lp, dp), (lm, dm)) = (at(1e-4), at(-1e-4));
            let fd = (lp - lm) / (dp - dm);
            let tol = 1e-5 + 1e-3 * g[idx].abs();
            assert!(
                (fd - g[idx]).abs() <= tol,
                "{name}[{idx}]: autograd {} vs fd {fd}",
                g[idx]
            );
        }
    }
}

#[test]
fn shortformer_and_positions_off_gradients_by_finite_differences() {
    finite_differences(tiny(1, false, Positions::Shortformer));
    finite_differences(tiny(2, true, Positions::Shortformer));
    finite_differences(tiny(2, true, Positions::Off));
}

/// Positions off: W_pos starts and stays exactly zero in the CPU engine and the reference,
/// whose losses agree step by step.
#[test]
fn positions_off_trains_with_w_pos_frozen_at_zero_in_engine_and_reference() {
    let task = TaskSpec::Reverse(toyformer::tasks::reverse::Reverse { n: 3, max_num: 6 });
    let mut cfg = task.default_model();
    cfg.d_model = 16;
    cfg.d_head = 16;
    cfg.positional_embedding_type = Positions::Off;
    let w = Weights::init(&cfg).unwrap();
    assert!(w.get("pos_embed.W_pos").unwrap().iter().all(|&x| x == 0.0));
    let tc = TrainConfig {
        batch_size: 16,
        lr: 3e-3,
        ..Default::default()
    };
    let mut engine = make_backend(BackendKind::Cpu, &w, &tc, &task).unwrap();
    let mut reference = make_backend(BackendKind::Reference, &w, &tc, &task).unwrap();
    for step in 0..10 {
        let toks = task.batch(0, step, 16);
        let a = engine.train_step(&toks, 16, 3e-3, step).unwrap().loss;
        let b = reference.train_step(&toks, 16, 3e-3, step).unwrap().loss;
        assert!(
            (a - b).abs() < 1e-3 * b.abs().max(1.0),
            "step {step}: engine {a} vs reference {b}"
        );
    }
    for b in [&mut engine, &mut reference] {
        let w = b.weights().unwrap();
        assert!(
            w.get("pos_embed.W_pos").unwrap().iter().all(|&x| x == 0.0),
            "{}",
            b.name()
        );
        assert_ne!(
            w.get("embed.W_E").unwrap(),
            Weights::init(&cfg).unwrap().get("embed.W_E").unwrap()
        );
    }
    // exported for TransformerLens as standard positions with a zero W_pos
    assert_eq!(cfg.to_tl_json()["positional_embedding_type"], "standard");
}

/// Every backend builds shortformer and positions-off models: `auto` takes the CPU engine here (or a
/// hardware GPU), never the reference, and `gpu` takes any adapter (lavapipe) when there is one.
#[test]
fn every_backend_runs_shortformer_and_positions_off() {
    let task = TaskSpec::default_for("reverse").unwrap();
    for pos in [Positions::Shortformer, Positions::Off] {
        let mut cfg = task.default_model();
        cfg.positional_embedding_type = pos;
        let w = Weights::init(&cfg).unwrap();
        let tc = TrainConfig::default();
        let name = |kind| make_backend(kind, &w, &tc, &task).unwrap().name();
        assert_eq!(name(BackendKind::Cpu), "cpu", "{pos:?}");
        assert_ne!(name(BackendKind::Auto), "reference", "{pos:?}");
        if crate::gpu_common::gpu_available() {
            assert!(
                make_backend(BackendKind::Gpu, &w, &tc, &task).is_ok(),
                "{pos:?}"
            );
        }
    }
}

/// The CPU engine's gradients (f32) against central finite differences of the loss, taken in f64
/// by the reference backend (an independent forward), on a few entries of every trainable tensor.
fn engine_finite_differences(cfg: ModelConfig, factor: Factor) {
    let w = random_weights(&cfg);
    let (batch, pred) = (3, vec![2, 3, 4, 5]);
    let toks = tokens(batch, 7);
    let tc = TrainConfig::default();
    let opts = EngineOptions {
        factor,
        flush_denormals: true,
    };
    let mut e = CpuEngine::with_options(&w, &tc, pred.clone(), opts).unwrap();
    let (_, grads) = e.loss_and_grads(&toks, batch).unwrap();
    let off = cfg.positional_embedding_type == Positions::Off;
    assert_eq!(grads.iter().any(|(n, _)| n == "pos_embed.W_pos"), !off);
    let loss = |w: &Weights| {
        let b = CpuBackend::with_dtype(w, &tc, pred.clone(), DType::F64).unwrap();
        b.loss_and_grads(&toks, batch).unwrap().0
    };
    let mut worst = (0.0f64, String::new());
    for (name, g) in &grads {
        let info = w.table.get(name).unwrap().clone();
        for k in 0..info.len.min(4) {
            let idx = (k * 7919) % info.len;
            let at = |delta: f32| {
                let mut w2 = w.clone();
                w2.data[info.offset + idx] += delta;
                let actual = w2.data[info.offset + idx] as f64 - w.data[info.offset + idx] as f64;
                (loss(&w2), actual)
            };
            let ((lp, dp), (lm, dm)) = (at(1e-3), at(-1e-3));
            let fd = (lp - lm) / (dp - dm);
            let got = g[idx] as f64;
            // f32 gradient against an f64 difference quotient (h = 1e-3: error O(h²) ≈ 1e-7)
            let tol = 2e-5 + 2e-3 * fd.abs();
            assert!(
                (fd - got).abs() <= tol,
                "{:?} {factor:?} {name}[{idx}]: engine {got} vs finite difference {fd}",
                cfg.positional_embedding_type
            );
            if (fd - got).abs() > worst.0 {
                worst = ((fd - got).abs(), format!("{name}[{idx}]"));
            }
        }
    }
    eprintln!(
        "{:?} {factor:?}: largest |engine − finite difference| {:e} at {}",
        cfg.positional_embedding_type, worst.0, worst.1
    );
}

#[test]
fn engine_gradients_by_finite_differences() {
    for f in [Factor::Always, Factor::Never] {
        engine_finite_differences(tiny(1, false, Positions::Shortformer), f);
        engine_finite_differences(tiny(2, false, Positions::Off), f);
    }
    engine_finite_differences(tiny(2, true, Positions::Shortformer), Factor::Auto);
    engine_finite_differences(tiny(2, true, Positions::Off), Factor::Auto);
}

/// A shortformer model trains on the CPU engine with the reference's losses step by step, and
/// W_pos moves (its gradient flows through the query and key inputs only).
#[test]
fn shortformer_trains_in_engine_and_reference_alike() {
    let task = TaskSpec::Reverse(toyformer::tasks::reverse::Reverse { n: 3, max_num: 6 });
    let mut cfg = task.default_model();
    (cfg.d_model, cfg.d_head) = (16, 16);
    cfg.positional_embedding_type = Positions::Shortformer;
    let w = Weights::init(&cfg).unwrap();
    let tc = TrainConfig {
        batch_size: 16,
        lr: 3e-3,
        ..Default::default()
    };
    let mut engine = make_backend(BackendKind::Cpu, &w, &tc, &task).unwrap();
    let mut reference = make_backend(BackendKind::Reference, &w, &tc, &task).unwrap();
    for step in 0..10 {
        let toks = task.batch(0, step, 16);
        let a = engine.train_step(&toks, 16, 3e-3, step).unwrap().loss;
        let b = reference.train_step(&toks, 16, 3e-3, step).unwrap().loss;
        assert!(
            (a - b).abs() < 1e-3 * b.abs().max(1.0),
            "step {step}: engine {a} vs reference {b}"
        );
    }
    let (we, wr) = (engine.weights().unwrap(), reference.weights().unwrap());
    let p0 = w.get("pos_embed.W_pos").unwrap();
    assert_ne!(we.get("pos_embed.W_pos").unwrap(), p0, "W_pos trained");
    toyformer::compare::assert_close(
        "W_pos after 10 steps",
        we.get("pos_embed.W_pos").unwrap(),
        wr.get("pos_embed.W_pos").unwrap(),
        3e-4,
        1e-3,
    );
}
