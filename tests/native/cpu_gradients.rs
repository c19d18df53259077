//! Finite-difference check of the CPU backend's autograd (in f64), for attention-only,
//! LayerNorm and MLP configs: catches a gradient that candle silently drops (fused ops
//! without backward) or gets wrong.

use candle_core::DType;
use toyformer::model::{ActFn, ModelConfig, Norm, Weights};
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::rng::CounterRng;
use toyformer::train::TrainConfig;

fn tiny(n_layers: usize, n_heads: usize, ln: bool, mlp: Option<ActFn>) -> ModelConfig {
    ModelConfig {
        n_layers,
        n_heads,
        d_model: 8,
        d_head: 4,
        d_mlp: mlp.map(|_| 12),
        act_fn: mlp,
        normalization_type: ln.then_some(Norm::LN),
        n_ctx: 7,
        d_vocab: 9,
        d_vocab_out: 6,
        seed: 3,
        train_biases: true,
        positional_embedding_type: Default::default(),
    }
}

/// Random weights with non-trivial biases and LN parameters (so their gradients matter).
fn random_weights(cfg: &ModelConfig) -> Weights {
    let mut w = Weights::init(cfg).unwrap();
    let mut r = CounterRng::new(99, 1, 2);
    for x in w.data.iter_mut() {
        *x += 0.3 * r.normal() as f32;
    }
    w
}

fn check(cfg: ModelConfig) {
    let w = random_weights(&cfg);
    let batch = 3;
    let t = 7;
    let mut r = CounterRng::new(5, 0, 0);
    let tokens: Vec<u32> = (0..batch * t).map(|_| r.below(6) as u32).collect();
    let pred = vec![2, 3, 4, 5];
    let tc = TrainConfig::default();
    let b = ReferenceBackend::with_dtype(&w, &tc, pred.clone(), DType::F64).unwrap();
    let (_, grads) = b.loss_and_grads(&tokens, batch).unwrap();
    assert_eq!(
        grads.len(),
        w.table.params.len(),
        "every parameter trains in this config"
    );
    let h = 1e-4f64;
    let mut worst = (0.0f64, String::new());
    for (name, g) in &grads {
        let info = w.table.get(name).unwrap().clone();
        // b_K adds q·b_K to every score of a query row, which softmax ignores: its true
        // gradient is zero. Every other tensor must receive a gradient.
        if !name.ends_with("b_K") {
            assert!(
                g.iter().any(|x| x.abs() > 1e-9),
                "{name}: gradient is identically zero (dropped by autograd?)"
            );
        }
        // probe a few entries of every tensor
        for k in 0..info.len.min(6) {
            let idx = (k * 7919) % info.len;
            let at = |delta: f64| {
                let mut w2 = w.clone();
                w2.data[info.offset + idx] += delta as f32;
                let b2 = ReferenceBackend::with_dtype(&w2, &tc, pred.clone(), DType::F64).unwrap();
                // the perturbation is applied in f32 storage: use the actual delta
                let actual = w2.data[info.offset + idx] as f64 - w.data[info.offset + idx] as f64;
                (b2.loss_and_grads(&tokens, batch).unwrap().0, actual)
            };
            let ((lp, dp), (lm, dm)) = (at(h), at(-h));
            let fd = (lp - lm) / (dp - dm);
            let diff = (fd - g[idx]).abs();
            let tol = 1e-5 + 1e-3 * g[idx].abs();
            assert!(
                diff <= tol,
                "{name}[{idx}]: autograd {} vs finite difference {fd} (diff {diff:e})",
                g[idx]
            );
            if diff > worst.0 {
                worst = (diff, format!("{name}[{idx}]"));
            }
        }
    }
    eprintln!(
        "largest |autograd − finite difference| = {:e} at {}",
        worst.0, worst.1
    );
}

#[test]
fn gradients_attn_only_two_heads() {
    check(tiny(1, 2, false, None));
}

#[test]
fn gradients_layernorm_two_layers() {
    check(tiny(2, 2, true, None));
}

#[test]
fn gradients_mlp_relu_ln() {
    check(tiny(1, 1, true, Some(ActFn::Relu)));
}

#[test]
fn gradients_mlp_gelu_and_solu() {
    check(tiny(2, 1, false, Some(ActFn::Gelu)));
    check(tiny(1, 2, true, Some(ActFn::Solu)));
    check(tiny(1, 1, false, Some(ActFn::GeluNew)));
}
