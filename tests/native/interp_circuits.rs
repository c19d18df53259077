//! Circuit analyses against independent computations (explicit loops here, in a different
//! association order, or the model's own attention scores). The seed-003 checks are in
//! interp_seed003.rs.
use crate::common;

use toyformer::interp::circuits::{self, Composition, Embed, Path};
use toyformer::interp::scores;
use toyformer::model::{ModelConfig, Weights};
use toyformer::tasks::rng::CounterRng;

fn random_model(d_model: usize, d_head: usize, n_heads: usize) -> Weights {
    let cfg = ModelConfig {
        d_model,
        d_head,
        n_heads,
        n_layers: 2,
        d_vocab: 7,
        d_vocab_out: 5,
        n_ctx: 6,
        ..ModelConfig::sort_ref()
    };
    let mut w = Weights::init(&cfg).unwrap();
    let mut r = CounterRng::new(11, 0, 0);
    w.data.iter_mut().for_each(|x| *x = r.normal() as f32);
    w
}

/// E (V, C) · (W_V[h] (C, HS) · (W_O[h] (HS, C) · W_U (C, Vo))) by explicit loops.
fn ov_by_loops(w: &Weights, l: usize, h: usize) -> Vec<f64> {
    let (c, hs, v, vo) = (
        w.cfg.d_model,
        w.cfg.d_head,
        w.cfg.d_vocab,
        w.cfg.d_vocab_out,
    );
    let e = w.get("embed.W_E").unwrap();
    let wv = &w.get(&format!("blocks.{l}.attn.W_V")).unwrap()[h * c * hs..];
    let wo = &w.get(&format!("blocks.{l}.attn.W_O")).unwrap()[h * hs * c..];
    let wu = w.get("unembed.W_U").unwrap();
    let mut ou = vec![0.0f64; hs * vo]; // W_O W_U
    for a in 0..hs {
        for j in 0..vo {
            ou[a * vo + j] = (0..c)
                .map(|k| wo[a * c + k] as f64 * wu[k * vo + j] as f64)
                .sum();
        }
    }
    let mut vou = vec![0.0f64; c * vo];
    for k in 0..c {
        for j in 0..vo {
            vou[k * vo + j] = (0..hs)
                .map(|a| wv[k * hs + a] as f64 * ou[a * vo + j])
                .sum();
        }
    }
    (0..v * vo)
        .map(|ij| {
            (0..c)
                .map(|k| e[(ij / vo) * c + k] as f64 * vou[k * vo + ij % vo])
                .sum()
        })
        .collect()
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
                assert!(
                    (*g as f64 - wv).abs() <= 1e-4 + 1e-4 * wv.abs(),
                    "L{l}H{h} index {i}: {g} vs {wv}"
                );
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
            let q: Vec<f64> = (0..hs)
                .map(|a| {
                    (0..c)
                        .map(|k| p[i * c + k] as f64 * wq[k * hs + a] as f64)
                        .sum()
                })
                .collect();
            let kk: Vec<f64> = (0..hs)
                .map(|a| {
                    (0..c)
                        .map(|k| p[j * c + k] as f64 * wk[k * hs + a] as f64)
                        .sum()
                })
                .collect();
            let want = q.iter().zip(&kk).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt();
            let g = got.at(i, j) as f64;
            assert!(
                (g - want).abs() <= 1e-4 + 1e-4 * want.abs(),
                "({i},{j}): {g} vs {want}"
            );
        }
    }
}

#[test]
fn ov_rank_is_at_most_d_head() {
    let w = random_model(8, 3, 1);
    let ev = circuits::w_ov(&w, 0, 0).unwrap().eigenvalues().unwrap();
    let max = ev
        .iter()
        .map(|(r, i)| (r * r + i * i).sqrt())
        .fold(0.0, f64::max);
    let zero = ev
        .iter()
        .filter(|(r, i)| (r * r + i * i).sqrt() < 1e-4 * max)
        .count();
    assert!(
        zero >= 8 - 3,
        "only {zero} zero eigenvalues of an 8x8 OV of rank ≤ 3: {ev:?}"
    );
    assert!(circuits::w_ov(&w, 0, 1).is_err() && circuits::w_ov(&w, 2, 0).is_err());
}

#[test]
fn copying_scores_of_identity_and_negated_identity() {
    let m = toyformer::interp::Mat::new(3, 4, vec![2., 0., 0., 9., 0., 2., 0., 0., 0., 0., 2., 0.])
        .unwrap();
    assert!((circuits::diagonal_fraction(&m) - 1.0).abs() < 1e-12);
    assert!((circuits::eigen_copying_score(&m).unwrap() - 1.0).abs() < 1e-9);
    let neg = m.clone().scale(-1.0);
    assert!((circuits::eigen_copying_score(&neg).unwrap() + 1.0).abs() < 1e-9);
    assert_eq!(circuits::diagonal_fraction(&neg), 0.0);
}

/// x (C,) @ W_V[h] W_O[h] of layer l, by loops.
fn ov_vec(w: &Weights, l: usize, h: usize, x: &[f64]) -> Vec<f64> {
    let (c, hs) = (w.cfg.d_model, w.cfg.d_head);
    let wv = w.get(&format!("blocks.{l}.attn.W_V")).unwrap();
    let wo = w.get(&format!("blocks.{l}.attn.W_O")).unwrap();
    let z: Vec<f64> = (0..hs)
        .map(|a| (0..c).map(|k| x[k] * wv[(h * c + k) * hs + a] as f64).sum())
        .collect();
    (0..c)
        .map(|k| {
            (0..hs)
                .map(|a| z[a] * wo[(h * hs + a) * c + k] as f64)
                .sum()
        })
        .collect()
}

/// (x W_Q[h]) · (y W_K[h]) / sqrt(d_head) of layer l, by loops.
fn qk_pair(w: &Weights, l: usize, h: usize, x: &[f64], y: &[f64]) -> f64 {
    let (c, hs) = (w.cfg.d_model, w.cfg.d_head);
    let wq = w.get(&format!("blocks.{l}.attn.W_Q")).unwrap();
    let wk = w.get(&format!("blocks.{l}.attn.W_K")).unwrap();
    let q: Vec<f64> = (0..hs)
        .map(|a| (0..c).map(|k| x[k] * wq[(h * c + k) * hs + a] as f64).sum())
        .collect();
    let kk: Vec<f64> = (0..hs)
        .map(|a| (0..c).map(|k| y[k] * wk[(h * c + k) * hs + a] as f64).sum())
        .collect();
    q.iter().zip(&kk).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt()
}

fn row(w: &Weights, name: &str, i: usize) -> Vec<f64> {
    let c = w.cfg.d_model;
    w.get(name).unwrap()[i * c..(i + 1) * c]
        .iter()
        .map(|&x| x as f64)
        .collect()
}

#[test]
fn composition_paths_and_virtual_ov_match_loops() {
    let w = random_model(6, 3, 2);
    // K-composition: query token i, key token j seen through L0H1's OV
    let k_comp = circuits::full_qk_path(
        &w,
        1,
        0,
        &Path::direct(Embed::Token),
        &Path {
            embed: Embed::Token,
            through: vec![(0, 1)],
        },
    )
    .unwrap();
    // Q-composition with positions: query position i through L0H0, key position j direct
    let q_comp = circuits::full_qk_path(
        &w,
        1,
        1,
        &Path {
            embed: Embed::Pos,
            through: vec![(0, 0)],
        },
        &Path::direct(Embed::Pos),
    )
    .unwrap();
    for i in 0..6 {
        for j in 0..6 {
            let want = qk_pair(
                &w,
                1,
                0,
                &row(&w, "embed.W_E", i),
                &ov_vec(&w, 0, 1, &row(&w, "embed.W_E", j)),
            );
            assert!(
                (k_comp.at(i, j) as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "K-comp ({i},{j})"
            );
            let want = qk_pair(
                &w,
                1,
                1,
                &ov_vec(&w, 0, 0, &row(&w, "pos_embed.W_pos", i)),
                &row(&w, "pos_embed.W_pos", j),
            );
            assert!(
                (q_comp.at(i, j) as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "Q-comp ({i},{j})"
            );
        }
    }
    // virtual OV: W_E W_OV^{0,1} W_OV^{1,0} W_U
    let v = circuits::full_ov_path(
        &w,
        &Path {
            embed: Embed::Token,
            through: vec![(0, 1), (1, 0)],
        },
    )
    .unwrap();
    let wu = w.get("unembed.W_U").unwrap();
    for i in 0..7 {
        let x = ov_vec(&w, 1, 0, &ov_vec(&w, 0, 1, &row(&w, "embed.W_E", i)));
        for t in 0..5 {
            let want: f64 = (0..6).map(|k| x[k] * wu[k * 5 + t] as f64).sum();
            assert!(
                (v.at(i, t) as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "virtual OV ({i},{t})"
            );
        }
    }
    // paths must go forward in layers and end before the reading head
    let back = Path {
        embed: Embed::Token,
        through: vec![(1, 0), (0, 0)],
    };
    assert!(circuits::full_ov_path(&w, &back).is_err());
    assert!(circuits::full_qk_path(
        &w,
        0,
        0,
        &Path {
            embed: Embed::Token,
            through: vec![(0, 1)]
        },
        &Path::direct(Embed::Token)
    )
    .is_err());
    assert!(circuits::full_ov_path(&w, &Path::direct(Embed::Token)).is_err());
    assert_eq!(back.label(), "W_E·L1H0·L0H0");
}

#[test]
fn concatenated_qk_view_gives_layer_0_scores() {
    // 1 layer, no LN, zero biases: score(i, j) = the sum of the four blocks of
    // [W_E; W_pos] W_QK [W_E; W_pos]ᵀ / sqrt(d_head) picked by tokens and positions.
    let w = common::random_model(1, 2, false, false, false, 5);
    let task = common::small_sort();
    let tokens = task.batch(9, 0, 2);
    let cache = toyformer::interp::run_with_cache_weights(&w, &tokens, 2).unwrap();
    for h in 0..2 {
        let both = circuits::full_qk(&w, 0, h, Embed::Both, Embed::Both).unwrap();
        assert_eq!((both.rows, both.cols), (8 + 8, 8 + 8));
        let tp = circuits::full_qk(&w, 0, h, Embed::Token, Embed::Pos).unwrap();
        assert_eq!(
            tp,
            both.sub(0..8, 8..16),
            "the token·pos panel is a block of the concatenated view"
        );
        let scores = cache.get("blocks.0.attn.hook_attn_scores").unwrap();
        for b in 0..2 {
            let seq = &tokens[b * 8..(b + 1) * 8];
            for i in 0..8 {
                for j in 0..=i {
                    let (ti, tj) = (seq[i] as usize, seq[j] as usize);
                    let want = (both.at(ti, tj)
                        + both.at(ti, 8 + j)
                        + both.at(8 + i, tj)
                        + both.at(8 + i, 8 + j)) as f64;
                    let got = scores.data[((b * 2 + h) * 8 + i) * 8 + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "H{h} seq {b} ({i},{j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn composition_scores_match_loops() {
    let w = random_model(6, 3, 2);
    let fro = |m: &[Vec<f64>]| m.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    // full C×C matrices by loops: W_OV = rows ov_vec(e_k), W_QK[a][b] = qk_pair(e_a, e_b)·sqrt(d_head)
    let unit = |k: usize| (0..6).map(|i| (i == k) as u8 as f64).collect::<Vec<f64>>();
    let ov = |l, h| {
        (0..6)
            .map(|k| ov_vec(&w, l, h, &unit(k)))
            .collect::<Vec<_>>()
    };
    let qk = |l, h| {
        (0..6)
            .map(|a| {
                (0..6)
                    .map(|b| qk_pair(&w, l, h, &unit(a), &unit(b)) * 3f64.sqrt())
                    .collect()
            })
            .collect::<Vec<Vec<f64>>>()
    };
    let mul = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        (0..6)
            .map(|i| {
                (0..6)
                    .map(|j| (0..6).map(|k| a[i][k] * b[k][j]).sum())
                    .collect()
            })
            .collect::<Vec<Vec<f64>>>()
    };
    let tr = |a: &[Vec<f64>]| {
        (0..6)
            .map(|i| (0..6).map(|j| a[j][i]).collect())
            .collect::<Vec<Vec<f64>>>()
    };
    let all: Vec<Vec<f64>> = [Composition::Q, Composition::K, Composition::V]
        .iter()
        .map(|&k| circuits::all_composition_scores(&w, k).unwrap())
        .collect();
    for a in 0..2 {
        for b in 0..2 {
            let wa = ov(0, a);
            let cases = [
                (Composition::Q, qk(1, b)),
                (Composition::K, tr(&qk(1, b))),
                (Composition::V, ov(1, b)),
            ];
            for (ki, (kind, wb)) in cases.iter().enumerate() {
                let want = fro(&mul(&wa, wb)) / (fro(&wa) * fro(wb));
                let got = circuits::composition_score(&w, *kind, (0, a), (1, b)).unwrap();
                assert!(
                    (got - want).abs() < 1e-5,
                    "{kind:?} L0H{a}→L1H{b}: {got} vs {want}"
                );
                assert!(
                    (all[ki][a * 4 + 2 + b] - got).abs() < 1e-12,
                    "all_composition_scores holds the same value"
                );
                assert_eq!(
                    all[ki][(2 + b) * 4 + a],
                    0.0,
                    "later → earlier is masked to 0"
                );
            }
        }
    }
    assert!(circuits::composition_score(&w, Composition::V, (1, 0), (1, 1)).is_err());
}

#[test]
fn argmax_offsets_summary() {
    // rows: query 0 → key 2 (+2), query 1 → key 1 (0), query 2 → key 3 (+1), query 3 → key 0 (−3)
    let m = toyformer::interp::Mat::from_fn(5, 5, |i, j| match (i, j) {
        (0, 2) | (1, 1) | (2, 3) | (3, 0) => 5.0,
        (4, _) => 9.0, // outside the range below
        _ => j as f32 * 0.1,
    });
    let s = scores::argmax_offsets(&m, 0..4).unwrap();
    assert_eq!(s.offsets, vec![2, 0, 1, -3]);
    assert_eq!(s.histogram, vec![(-3, 1), (0, 1), (1, 1), (2, 1)]);
    assert_eq!(
        (
            s.frac_above,
            s.frac_equal,
            s.frac_below,
            s.frac_slightly_above
        ),
        (0.5, 0.25, 0.25, 0.5)
    );
    assert_eq!((s.mean, s.median), (0.0, 0.5));
    // offset +3 occurs once, at (0, 3): 0.3 − mean of row 0 (5 + 0 + 0.1 + 0.3)/4
    let at3 = s
        .mean_score_by_offset
        .iter()
        .find(|(d, _)| *d == 3)
        .unwrap()
        .1;
    assert!((at3 - (0.3 - 5.4 / 4.0)).abs() < 1e-6, "{at3}");
    assert!(scores::argmax_offsets(&m, 0..6).is_err());
}

#[test]
fn attention_mass_matches_loops_over_the_patterns() {
    let w = common::random_model(2, 2, true, false, true, 8);
    let task = common::small_sort();
    let tokens = task.batch(1, 2, 6);
    let cache = toyformer::interp::run_with_cache_weights(&w, &tokens, 6).unwrap();
    let got = scores::attention_mass(&task, &cache).unwrap();
    assert_eq!(got.len(), 4);
    for m in &got {
        let (mut ans, mut prompt) = (0.0, 0.0);
        for b in 0..6 {
            let seq = &tokens[b * 8..(b + 1) * 8];
            let p = cache.pattern(b, m.layer, m.head).unwrap();
            for q in 4..=6 {
                // the list is at 1..=3; the target of q is seq[q + 1]
                ans += (1..=3)
                    .filter(|&k| seq[k] == seq[q + 1])
                    .map(|k| p.at(q, k) as f64)
                    .sum::<f64>();
                prompt += (0..5).map(|k| p.at(q, k) as f64).sum::<f64>();
            }
        }
        assert_eq!(m.answer_count, 18);
        assert!(
            (m.answer - ans / 18.0).abs() < 1e-6 && (m.prompt - prompt / 18.0).abs() < 1e-6,
            "{m:?}"
        );
    }
}
