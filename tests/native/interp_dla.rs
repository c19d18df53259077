//! Direct logit attribution against plain loops (tests/common), against ablation, and the
//! exactness of both decompositions on every kind of model.
use crate::common;

use common::*;
use toyformer::interp::dla::direct_logit_attribution;
use toyformer::interp::intervene::{run_ablated, Ablation};
use toyformer::interp::process::process_weights;
use toyformer::interp::run_with_cache;
use toyformer::reference::ReferenceBackend;

const B: usize = 4;

/// Mean correct logit over the task's predicted positions, by the plain-loop forward.
fn mean_correct_logit(w: &toyformer::model::Weights, tokens: &[u32]) -> f64 {
    let task = small_sort();
    let (mut s, mut n) = (0.0, 0);
    for seq in tokens.chunks(8) {
        let f = forward(w, seq);
        for p in task.pred_positions() {
            s += f.logits[p][seq[p + 1] as usize];
            n += 1;
        }
    }
    s / n as f64
}

#[test]
fn components_and_paths_each_sum_to_the_correct_logit() {
    let task = small_sort();
    let tokens = task.batch(3, 0, B);
    for (i, &(nl, nh, ln, mlp, bias)) in [
        (1, 1, false, false, false),
        (1, 2, true, false, true),
        (2, 2, false, false, false),
        (2, 2, true, true, true),
        (3, 2, true, false, true),
    ]
    .iter()
    .enumerate()
    {
        let w = random_model(nl, nh, ln, mlp, bias, 40 + i as u64);
        let pw = process_weights(&w).unwrap();
        let cache =
            run_with_cache(&ReferenceBackend::for_inference(&pw).unwrap(), &tokens, B).unwrap();
        let r = direct_logit_attribution(&pw, &task, &cache).unwrap();
        let want = mean_correct_logit(&w, &tokens);
        let comp: f64 = r.components.iter().map(|a| a.mean).sum();
        let paths: f64 = r.paths.iter().map(|a| a.mean).sum();
        assert!(
            close(r.logit, want, 1e-4),
            "kind {i}: logit {} vs loops {want}",
            r.logit
        );
        assert!(
            close(comp, want, 1e-4),
            "kind {i}: Σ components {comp} vs {want}"
        );
        assert!(
            close(paths, want, 1e-4),
            "kind {i}: Σ paths {paths} vs {want}"
        );
        assert_eq!(
            r.path_depth, nl,
            "all chains are listed for these small models"
        );
        assert!(!r.paths.iter().any(|a| a.label.starts_with("longer")));
        assert_eq!(r.pairs, B * 3);
        assert_eq!(
            r.components
                .iter()
                .filter(|a| a.label.starts_with('L') && a.label.contains('H'))
                .count(),
            nl * nh
        );
        // 1 + NH + NH² … chains from embed: paths through every increasing-layer head chain
        let chains_from_embed = r
            .paths
            .iter()
            .filter(|a| a.label.starts_with("embed"))
            .count();
        assert_eq!(chains_from_embed, (1 + nh).pow(nl as u32));
    }
}

#[test]
fn per_head_dla_matches_loops() {
    let task = small_sort();
    let tokens = task.batch(4, 0, B);
    for (i, &(nl, nh, ln, mlp)) in [(2, 2, false, false), (2, 2, true, true)]
        .iter()
        .enumerate()
    {
        let pw = process_weights(&random_model(nl, nh, ln, mlp, true, 50 + i as u64)).unwrap();
        let cache =
            run_with_cache(&ReferenceBackend::for_inference(&pw).unwrap(), &tokens, B).unwrap();
        let r = direct_logit_attribution(&pw, &task, &cache).unwrap();
        let wu = pw.get("unembed.W_U").unwrap();
        for l in 0..nl {
            for h in 0..nh {
                let mut s = 0.0;
                for seq in tokens.chunks(8) {
                    let f = forward(&pw, seq);
                    for p in task.pred_positions() {
                        let tg = seq[p + 1] as usize;
                        let scale = if ln { ln_scale(&f.resid_final[p]) } else { 1.0 };
                        s += (0..8)
                            .map(|k| f.result[l][h][p][k] * wu[k * 6 + tg] as f64)
                            .sum::<f64>()
                            / scale;
                    }
                }
                let want = s / (B * 3) as f64;
                let got = r.get(&format!("L{l}H{h}")).unwrap();
                assert!(close(got, want, 1e-4), "kind {i} L{l}H{h}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn one_layer_head_dla_is_the_logit_change_when_the_head_is_zero_ablated() {
    // Without LN, a 1-layer head's only route to the logits is direct, so removing it
    // lowers the correct logit by exactly its DLA (biases stay: b_V W_O is in hook_z).
    let task = small_sort();
    let tokens = task.batch(5, 0, B);
    let w = random_model(1, 3, false, false, false, 60);
    let b = ReferenceBackend::for_inference(&w).unwrap();
    let cache = run_with_cache(&b, &tokens, B).unwrap();
    let r = direct_logit_attribution(&w, &task, &cache).unwrap();
    let correct = |c: &toyformer::interp::ActivationCache| {
        let mut s = 0.0;
        for (bi, seq) in tokens.chunks(8).enumerate() {
            for p in task.pred_positions() {
                s += c.logits.data[(bi * 8 + p) * 6 + seq[p + 1] as usize] as f64;
            }
        }
        s / (B * 3) as f64
    };
    let base = correct(&cache);
    for h in 0..3 {
        let ablated = run_ablated(&b, &tokens, B, &[(0, h)], Ablation::Zero, None).unwrap();
        let drop = base - correct(&ablated);
        let dla = r.get(&format!("L0H{h}")).unwrap();
        assert!(
            close(dla, drop, 1e-4),
            "H{h}: DLA {dla} vs logit drop {drop}"
        );
    }
}

#[test]
fn two_head_path_matches_loops() {
    // embed → L0H1 → L1H0 → logits with frozen patterns, by explicit loops.
    let task = small_sort();
    let tokens = task.batch(6, 0, B);
    let w = random_model(2, 2, false, false, false, 70);
    let cache = run_with_cache(&ReferenceBackend::for_inference(&w).unwrap(), &tokens, B).unwrap();
    let r = direct_logit_attribution(&w, &task, &cache).unwrap();
    let g = |n: &str| {
        w.get(n)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect::<Vec<f64>>()
    };
    let (e, wu) = (g("embed.W_E"), g("unembed.W_U"));
    let ov = |l: usize, h: usize, x: &[f64]| -> Vec<f64> {
        let (wv, wo) = (
            g(&format!("blocks.{l}.attn.W_V")),
            g(&format!("blocks.{l}.attn.W_O")),
        );
        let z: Vec<f64> = (0..4)
            .map(|a| (0..8).map(|k| x[k] * wv[(h * 8 + k) * 4 + a]).sum())
            .collect();
        (0..8)
            .map(|k| (0..4).map(|a| z[a] * wo[(h * 4 + a) * 8 + k]).sum())
            .collect()
    };
    let mut s = 0.0;
    for (bi, seq) in tokens.chunks(8).enumerate() {
        let a0 = cache.pattern(bi, 0, 1).unwrap();
        let a1 = cache.pattern(bi, 1, 0).unwrap();
        // what L0H1 writes at each position from the token embeddings alone
        let w0: Vec<Vec<f64>> = (0..8)
            .map(|j| {
                let mut acc = vec![0.0; 8];
                for i in 0..=j {
                    let o = ov(0, 1, &e[seq[i] as usize * 8..][..8]);
                    acc.iter_mut()
                        .zip(&o)
                        .for_each(|(a, x)| *a += a0.at(j, i) as f64 * x);
                }
                acc
            })
            .collect();
        for p in task.pred_positions() {
            let mut acc = [0.0; 8];
            for (j, w0j) in w0.iter().enumerate().take(p + 1) {
                let o = ov(1, 0, w0j);
                acc.iter_mut()
                    .zip(&o)
                    .for_each(|(a, x)| *a += a1.at(p, j) as f64 * x);
            }
            s += (0..8)
                .map(|k| acc[k] * wu[k * 6 + seq[p + 1] as usize])
                .sum::<f64>();
        }
    }
    let want = s / (B * 3) as f64;
    let got = r.get("embed → L0H1 → L1H0").unwrap();
    assert!(close(got, want, 1e-4), "{got} vs {want}");
}
