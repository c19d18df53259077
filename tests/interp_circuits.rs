//! Circuit analyses against independent computations (explicit loops here, in a different
//! association order) and on the real seed-003 model.

use toyformer::interp::circuits::{self, Embed};
use toyformer::model::{ModelConfig, Weights};
use toyformer::tasks::rng::CounterRng;

fn random_model(d_model: usize, d_head: usize, n_heads: usize) -> Weights {
    let cfg = ModelConfig { d_model, d_head, n_heads, n_layers: 2, d_vocab: 7, d_vocab_out: 5, n_ctx: 6, ..ModelConfig::sort_ref() };
    let mut w = Weights::init(&cfg).unwrap();
    let mut r = CounterRng::new(11, 0, 0);
    w.data.iter_mut().for_each(|x| *x = r.normal() as f32);
    w
}

/// E (V, C) · (W_V[h] (C, HS) · (W_O[h] (HS, C) · W_U (C, Vo))) by explicit loops.
fn ov_by_loops(w: &Weights, l: usize, h: usize) -> Vec<f64> {
    let (c, hs, v, vo) = (w.cfg.d_model, w.cfg.d_head, w.cfg.d_vocab, w.cfg.d_vocab_out);
    let e = w.get("embed.W_E").unwrap();
    let wv = &w.get(&format!("blocks.{l}.attn.W_V")).unwrap()[h * c * hs..];
    let wo = &w.get(&format!("blocks.{l}.attn.W_O")).unwrap()[h * hs * c..];
    let wu = w.get("unembed.W_U").unwrap();
    let mut ou = vec![0.0f64; hs * vo]; // W_O W_U
    for a in 0..hs {
        for j in 0..vo {
            ou[a * vo + j] = (0..c).map(|k| wo[a * c + k] as f64 * wu[k * vo + j] as f64).sum();
        }
    }
    let mut vou = vec![0.0f64; c * vo];
    for k in 0..c {
        for j in 0..vo {
            vou[k * vo + j] = (0..hs).map(|a| wv[k * hs + a] as f64 * ou[a * vo + j]).sum();
        }
    }
    (0..v * vo).map(|ij| (0..c).map(|k| e[(ij / vo) * c + k] as f64 * vou[k * vo + ij % vo]).sum()).collect()
}

#[test]
fn full_ov_matches_loops_for_every_head() {
    let w = random_model(6, 3, 2);
    for l in 0..2 {
        for h in 0..2 {
            let got = circuits::full_ov(&w, l, h, Embed::Token).unwrap();
            let want = ov_by_loops(&w, l, h);
            assert_eq!((got.rows, got.cols), (7, 5));
            for (i, (g, wv)) in got.data.iter().zip(&want).enumerate() {
                assert!((*g as f64 - wv).abs() <= 1e-4 + 1e-4 * wv.abs(), "L{l}H{h} index {i}: {g} vs {wv}");
            }
        }
    }
}

#[test]
fn full_qk_pos_pos_matches_loops() {
    let w = random_model(6, 3, 2);
    let (c, hs, t) = (6, 3, 6);
    let p = w.get("pos_embed.W_pos").unwrap();
    let wq = &w.get("blocks.1.attn.W_Q").unwrap()[hs * c..];
    let wk = &w.get("blocks.1.attn.W_K").unwrap()[hs * c..];
    let got = circuits::full_qk(&w, 1, 1, Embed::Pos, Embed::Pos).unwrap();
    for i in 0..t {
        for j in 0..t {
            // (p_i W_Q) · (p_j W_K) / sqrt(HS)
            let q: Vec<f64> = (0..hs).map(|a| (0..c).map(|k| p[i * c + k] as f64 * wq[k * hs + a] as f64).sum()).collect();
            let kk: Vec<f64> = (0..hs).map(|a| (0..c).map(|k| p[j * c + k] as f64 * wk[k * hs + a] as f64).sum()).collect();
            let want = q.iter().zip(&kk).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt();
            let g = got.at(i, j) as f64;
            assert!((g - want).abs() <= 1e-4 + 1e-4 * want.abs(), "({i},{j}): {g} vs {want}");
        }
    }
}

#[test]
fn ov_rank_is_at_most_d_head() {
    let w = random_model(8, 3, 1);
    let ev = circuits::w_ov(&w, 0, 0).unwrap().eigenvalues().unwrap();
    let max = ev.iter().map(|(r, i)| (r * r + i * i).sqrt()).fold(0.0, f64::max);
    let zero = ev.iter().filter(|(r, i)| (r * r + i * i).sqrt() < 1e-4 * max).count();
    assert!(zero >= 8 - 3, "only {zero} zero eigenvalues of an 8x8 OV of rank ≤ 3: {ev:?}");
    assert!(circuits::w_ov(&w, 0, 1).is_err() && circuits::w_ov(&w, 2, 0).is_err());
}

#[test]
fn copying_scores_of_identity_and_negated_identity() {
    let m = toyformer::interp::Mat::new(3, 4, vec![2., 0., 0., 9., 0., 2., 0., 0., 0., 0., 2., 0.]).unwrap();
    assert!((circuits::diagonal_fraction(&m) - 1.0).abs() < 1e-12);
    assert!((circuits::eigen_copying_score(&m).unwrap() - 1.0).abs() < 1e-9);
    let neg = m.clone().scale(-1.0);
    assert!((circuits::eigen_copying_score(&neg).unwrap() + 1.0).abs() < 1e-9);
    assert_eq!(circuits::diagonal_fraction(&neg), 0.0);
}

#[test]
fn seed_003_model_ov_circuit_copies() {
    let p = format!("{}/../shared/reference-models/sort_fixed_len_list_model.safetensors", env!("CARGO_MANIFEST_DIR"));
    let w = toyformer::io::load_weights(&std::fs::read(&p).unwrap(), None).unwrap();
    let ov = circuits::full_ov(&w, 0, 0, Embed::Token).unwrap();
    assert_eq!((ov.rows, ov.cols), (52, 50));
    let diag = circuits::diagonal_fraction(&ov);
    let eig = circuits::eigen_copying_score(&ov).unwrap();
    eprintln!("seed-003 OV: diagonal fraction {diag}, eigenvalue copying score {eig}");
    // the tutorial's claim: every row's argmax is on the diagonal
    assert_eq!(diag, 1.0);
    assert!(eig > 0.5, "eigenvalue copying score {eig}");
}
