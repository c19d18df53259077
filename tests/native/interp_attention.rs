//! run_with_cache, attention patterns and the score decomposition, against the plain-loop
//! forward of tests/common on random models of every kind in the family.
use crate::common;

use common::*;
use toyformer::interp::attention::{decompose_scores, patterns, Part};
use toyformer::interp::process::process_weights;
use toyformer::interp::{act_name, run_with_cache};
use toyformer::reference::ReferenceBackend;

const KINDS: [(usize, usize, bool, bool, bool); 5] = [
    // (layers, heads, LN, MLP, biases)
    (1, 1, false, false, false),
    (1, 3, false, false, true),
    (2, 2, false, false, false),
    (2, 2, true, true, true),
    (3, 2, true, false, false),
];

fn seqs() -> Vec<u32> {
    let task = small_sort();
    task.batch(5, 1, 3) // (3, 8)
}

#[test]
fn cache_holds_every_tl_hook_with_tl_shapes() {
    let w = random_model(2, 2, true, true, true, 1);
    let tokens = seqs();
    let cache = run_with_cache(&ReferenceBackend::for_inference(&w).unwrap(), &tokens, 3).unwrap();
    let (b, t, c, nh, hs, m) = (3, 8, 8, 2, 4, 12);
    let want: Vec<(String, Vec<usize>)> = [
        ("hook_embed".to_string(), vec![b, t, c]),
        ("hook_pos_embed".into(), vec![b, t, c]),
        ("ln_final.hook_scale".into(), vec![b, t, 1]),
        ("ln_final.hook_normalized".into(), vec![b, t, c]),
    ]
    .into_iter()
    .chain((0..2).flat_map(|l| {
        [
            (act_name("resid_pre", l), vec![b, t, c]),
            (format!("blocks.{l}.ln1.hook_scale"), vec![b, t, 1]),
            (format!("blocks.{l}.ln1.hook_normalized"), vec![b, t, c]),
            (act_name("q", l), vec![b, t, nh, hs]),
            (act_name("k", l), vec![b, t, nh, hs]),
            (act_name("v", l), vec![b, t, nh, hs]),
            (act_name("attn_scores", l), vec![b, nh, t, t]),
            (act_name("pattern", l), vec![b, nh, t, t]),
            (act_name("z", l), vec![b, t, nh, hs]),
            (act_name("result", l), vec![b, t, nh, c]),
            (act_name("attn_out", l), vec![b, t, c]),
            (act_name("resid_mid", l), vec![b, t, c]),
            (format!("blocks.{l}.ln2.hook_scale"), vec![b, t, 1]),
            (format!("blocks.{l}.ln2.hook_normalized"), vec![b, t, c]),
            (act_name("pre", l), vec![b, t, m]),
            (act_name("post", l), vec![b, t, m]),
            (act_name("mlp_out", l), vec![b, t, c]),
            (act_name("resid_post", l), vec![b, t, c]),
        ]
    }))
    .collect();
    for (name, shape) in &want {
        assert_eq!(
            &cache.get(name).unwrap_or_else(|e| panic!("{e}")).shape,
            shape,
            "{name}"
        );
    }
    assert_eq!(
        cache.names().count(),
        want.len(),
        "no other hooks: {:?}",
        cache.names().collect::<Vec<_>>()
    );
    let err = cache
        .get("blocks.0.attn.hook_nothing")
        .unwrap_err()
        .to_string();
    assert!(err.contains("hook_nothing"), "{err}");
    assert_eq!(cache.logits.shape, vec![b, t, 6]);
}

#[test]
fn patterns_match_plain_loops_and_are_causal_distributions() {
    let tokens = seqs();
    for (i, &(nl, nh, ln, mlp, bias)) in KINDS.iter().enumerate() {
        let w = random_model(nl, nh, ln, mlp, bias, 10 + i as u64);
        let cache =
            run_with_cache(&ReferenceBackend::for_inference(&w).unwrap(), &tokens, 3).unwrap();
        for b in 0..3 {
            let want = forward(&w, &tokens[b * 8..(b + 1) * 8]);
            let got = patterns(&cache, b).unwrap();
            assert_eq!((got.len(), got[0].len()), (nl, nh));
            for (l, heads) in got.iter().enumerate() {
                for (h, p) in heads.iter().enumerate() {
                    for q in 0..8 {
                        let row_sum: f64 = p.row(q).iter().map(|&x| x as f64).sum();
                        assert!(
                            (row_sum - 1.0).abs() < 1e-5,
                            "kind {i} L{l}H{h} row {q} sums to {row_sum}"
                        );
                        for k in 0..8 {
                            let g = p.at(q, k) as f64;
                            if k > q {
                                assert_eq!(g, 0.0, "masked entry ({q},{k}) must be exactly 0");
                            }
                            assert!(
                                (g - want.pattern[l][h][q][k]).abs() < 2e-5,
                                "kind {i} seq {b} L{l}H{h} ({q},{k}): {g} vs {}",
                                want.pattern[l][h][q][k]
                            );
                        }
                    }
                }
            }
            for (j, v) in cache.logits.data[b * 8 * 6..(b + 1) * 8 * 6]
                .iter()
                .enumerate()
            {
                let want_v = want.logits[j / 6][j % 6];
                assert!(
                    close(*v as f64, want_v, 1e-4),
                    "kind {i} logits[{j}] {v} vs {want_v}"
                );
            }
        }
    }
}

#[test]
fn processed_weights_compute_the_same_logits() {
    let tokens = seqs();
    for (i, &(nl, nh, ln, mlp, bias)) in KINDS.iter().enumerate() {
        let w = random_model(nl, nh, ln, mlp, bias, 20 + i as u64);
        let pw = process_weights(&w).unwrap();
        if !ln {
            assert_eq!(pw, w, "models without LN are left as they are");
        } else {
            assert!(pw.get("ln_final.w").unwrap().iter().all(|&x| x == 1.0));
            assert!(
                pw.get("embed.W_E")
                    .unwrap()
                    .chunks(8)
                    .all(|r| r.iter().sum::<f32>().abs() < 1e-5),
                "W_E rows centred"
            );
        }
        for b in 0..3 {
            let a = forward(&w, &tokens[b * 8..(b + 1) * 8]);
            let p = forward(&pw, &tokens[b * 8..(b + 1) * 8]);
            for (ra, rp) in a.logits.iter().zip(&p.logits) {
                for (x, y) in ra.iter().zip(rp) {
                    assert!(
                        close(*y, *x, 1e-5),
                        "kind {i}: processed logit {y} vs original {x}"
                    );
                }
            }
        }
    }
}

#[test]
fn score_terms_sum_to_the_scores_and_match_loops() {
    let tokens = seqs();
    for (i, &(nl, nh, ln, mlp, bias)) in KINDS.iter().enumerate() {
        let w = process_weights(&random_model(nl, nh, ln, mlp, bias, 30 + i as u64)).unwrap();
        let cache =
            run_with_cache(&ReferenceBackend::for_inference(&w).unwrap(), &tokens, 3).unwrap();
        for b in [0, 2] {
            let want = forward(&w, &tokens[b * 8..(b + 1) * 8]);
            for l in 0..nl {
                for h in 0..nh {
                    let d = decompose_scores(&w, &cache, b, l, h).unwrap();
                    let parts = if l == 0 { 2 } else { 3 } + usize::from(bias || ln);
                    assert!(d.terms.len() <= parts * parts);
                    assert_eq!(d.term(Part::Prev, Part::Tok).is_some(), l > 0);
                    let total = d.total().unwrap();
                    for q in 0..8 {
                        for k in 0..=q {
                            let (g, wv) = (total.at(q, k) as f64, want.scores[l][h][q][k]);
                            assert!(
                                (g - wv).abs() < 1e-4 * (1.0 + wv.abs()),
                                "kind {i} L{l}H{h} ({q},{k}): Σ terms {g} vs scores {wv}"
                            );
                        }
                    }
                }
            }
        }
    }
    // Layer 0 without LN or biases: exactly the four terms, and tok·pos by an explicit loop.
    let w = random_model(1, 2, false, false, false, 7);
    let cache = run_with_cache(&ReferenceBackend::for_inference(&w).unwrap(), &tokens, 3).unwrap();
    let d = decompose_scores(&w, &cache, 1, 0, 1).unwrap();
    assert_eq!(d.terms.len(), 4);
    let (e, p, wq, wk) = (
        w.get("embed.W_E").unwrap(),
        w.get("pos_embed.W_pos").unwrap(),
        w.get("blocks.0.attn.W_Q").unwrap(),
        w.get("blocks.0.attn.W_K").unwrap(),
    );
    let seq = &tokens[8..16];
    let tp = d.term(Part::Tok, Part::Pos).unwrap();
    for q in 0..8 {
        for k in 0..8 {
            // (e_tok[q] W_Q[1]) · (p[k] W_K[1]) / 2
            let mut s = 0.0f64;
            for a in 0..4 {
                let qa: f64 = (0..8)
                    .map(|c| e[seq[q] as usize * 8 + c] as f64 * wq[(8 + c) * 4 + a] as f64)
                    .sum();
                let ka: f64 = (0..8)
                    .map(|c| p[k * 8 + c] as f64 * wk[(8 + c) * 4 + a] as f64)
                    .sum();
                s += qa * ka;
            }
            assert!(
                (tp.at(q, k) as f64 - s / 2.0).abs() < 1e-4,
                "tok·pos ({q},{k})"
            );
        }
    }
    assert!(decompose_scores(&w, &cache, 3, 0, 0).is_err());
    assert!(decompose_scores(&w, &cache, 0, 1, 0)
        .unwrap_err()
        .to_string()
        .contains("layer"));
}
