//! Ablation and activation patching through the hooks: against plain-loop forwards of
//! edited weights, and the invariants patching must satisfy.
use crate::common;

use common::*;
use toyformer::interp::intervene::{
    ablation_table, activation_patching, mean_z, outcome, run_ablated, run_patched, Ablation,
    Outcome, Patch,
};
use toyformer::interp::{act_name, run_with_cache, run_with_hooks, HookSet};
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::sort;

fn same(a: Outcome, b: Outcome, what: &str) {
    assert!(
        (a.loss - b.loss).abs() < 1e-5 * (1.0 + b.loss.abs()) && (a.acc - b.acc).abs() < 1e-12,
        "{what}: {a:?} vs {b:?}"
    );
}

#[test]
fn zero_ablating_a_head_equals_removing_its_w_o() {
    let task = small_sort();
    let tokens = task.batch(1, 0, 3);
    for &(nl, nh, ln, mlp) in &[(1, 2, false, false), (2, 2, true, true)] {
        let w = random_model(nl, nh, ln, mlp, true, 80);
        let b = ReferenceBackend::for_inference(&w).unwrap();
        for l in 0..nl {
            for h in 0..nh {
                let got = run_ablated(&b, &tokens, 3, &[(l, h)], Ablation::Zero, None).unwrap();
                let mut edited = w.clone();
                let wo = edited.get_mut(&format!("blocks.{l}.attn.W_O")).unwrap();
                wo[h * 4 * 8..(h + 1) * 4 * 8].fill(0.0);
                for (bi, seq) in tokens.chunks(8).enumerate() {
                    let want = forward(&edited, seq);
                    for p in 0..8 {
                        for v in 0..6 {
                            let g = got.logits.data[(bi * 8 + p) * 6 + v] as f64;
                            assert!(
                                close(g, want.logits[p][v], 1e-4),
                                "{nl}L L{l}H{h} seq {bi} ({p},{v}): {g} vs {}",
                                want.logits[p][v]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn mean_ablation_substitutes_the_batch_mean() {
    let task = small_sort();
    let w = random_model(2, 2, false, false, false, 81);
    let b = ReferenceBackend::for_inference(&w).unwrap();
    let one = task.batch(2, 0, 1);
    // The mean over a batch of one sequence is that sequence's own z: nothing changes.
    let clean = run_with_cache(&b, &one, 1).unwrap();
    let means = mean_z(&clean).unwrap();
    let abl = run_ablated(&b, &one, 1, &[(0, 0), (1, 1)], Ablation::Mean, Some(&means)).unwrap();
    for (x, y) in abl.logits.data.iter().zip(&clean.logits.data) {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
    // Over a batch of 4 the substituted value is the plain mean of the cached z.
    let four = task.batch(2, 1, 4);
    let z = run_with_cache(&b, &four, 4).unwrap();
    let means = mean_z(&z).unwrap();
    let z1 = z.get(&act_name("z", 1)).unwrap(); // (4, 8, 2, 4)
    for i in 0..8 * 2 * 4 {
        let want: f64 = (0..4).map(|s| z1.data[s * 64 + i] as f64).sum::<f64>() / 4.0;
        assert!(
            close(means[1].data[i] as f64, want, 1e-6),
            "{} vs {want}",
            means[1].data[i]
        );
    }
    let ab = run_ablated(&b, &four, 4, &[(1, 0)], Ablation::Mean, Some(&means)).unwrap();
    assert!(
        ab.logits
            .data
            .iter()
            .zip(&z.logits.data)
            .any(|(a, c)| (a - c).abs() > 1e-3),
        "mean ablation changes something"
    );
    assert!(run_ablated(&b, &four, 4, &[(1, 0)], Ablation::Mean, None).is_err());
    assert!(mean_z(&run_with_hooks(&b, &four, 4, HookSet::none()).unwrap()).is_err());
    assert!(run_ablated(&b, &four, 4, &[(2, 0)], Ablation::Zero, None)
        .unwrap_err()
        .to_string()
        .contains("L2H0"));
}

#[test]
fn ablation_table_matches_single_runs() {
    let task = small_sort();
    let w = random_model(1, 2, false, false, false, 82);
    let b = ReferenceBackend::for_inference(&w).unwrap();
    let t = ablation_table(&b, &task, 16, 0).unwrap();
    assert_eq!(t.heads.len(), 2);
    let tokens = task.batch(0, toyformer::interp::ANALYSIS_STEP, 16);
    same(
        t.baseline,
        outcome(&task, &run_with_cache(&b, &tokens, 16).unwrap()),
        "baseline",
    );
    let zero = run_ablated(&b, &tokens, 16, &[(0, 1)], Ablation::Zero, None).unwrap();
    same(t.heads[1].zero, outcome(&task, &zero), "zero-ablated H1");
    // loss by hand from the logits: mean −log softmax at the targets
    let mut loss = 0.0;
    for (bi, seq) in tokens.chunks(8).enumerate() {
        for p in task.pred_positions() {
            let row: Vec<f64> = zero.logits.data[(bi * 8 + p) * 6..][..6]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
            loss += lse - row[seq[p + 1] as usize];
        }
    }
    assert!(close(t.heads[1].zero.loss, loss / 48.0, 1e-5));
}

#[test]
fn patching_invariants_and_batched_cells_equal_single_runs() {
    let task = small_sort();
    for &(nl, nh, ln) in &[(1, 2, false), (2, 2, true)] {
        let w = random_model(nl, nh, ln, false, true, 83);
        let b = ReferenceBackend::for_inference(&w).unwrap();
        let clean = sort::tokens_for(&[4, 1, 3], 6);
        let corrupted = sort::tokens_for(&[4, 5, 3], 6);
        // clean into clean changes nothing, anywhere
        let same_run = activation_patching(&b, &task, &clean, &clean).unwrap();
        same(same_run.corrupted, same_run.clean, "clean as corrupted");
        for o in same_run
            .resid_pre
            .iter()
            .chain(&same_run.head_out)
            .chain(&same_run.head_out_by_pos)
        {
            same(*o, same_run.clean, "clean patched into clean");
        }
        let r = activation_patching(&b, &task, &clean, &corrupted).unwrap();
        assert_eq!(
            (r.resid_pre.len(), r.head_out.len(), r.head_out_by_pos.len()),
            (nl * 8, nl * nh, nl * nh * 8)
        );
        assert!(
            (r.clean.loss - r.corrupted.loss).abs() > 1e-3,
            "the corruption matters"
        );
        let cc = run_with_cache(&b, &clean, 1).unwrap();
        // everything from clean (the whole residual stream entering a layer) gives the clean result
        for l in 0..nl {
            let all = run_patched(
                &b,
                &task,
                &cc,
                &corrupted,
                &[Patch {
                    hook: act_name("resid_pre", l),
                    positions: vec![],
                    head: None,
                }],
            )
            .unwrap();
            same(all, r.clean, &format!("all of resid_pre {l}"));
        }
        // a position after the last predicted one cannot matter (causal mask)
        same(r.resid_pre[7], r.corrupted, "last position");
        // positions before the first difference (BOS, a1) hold the same values: no change
        same(r.resid_pre[0], r.corrupted, "BOS");
        same(r.resid_pre[1], r.corrupted, "a1 is the same in both");
        // every batched cell equals its own single run
        for l in 0..nl {
            for p in 0..8 {
                let one = run_patched(
                    &b,
                    &task,
                    &cc,
                    &corrupted,
                    &[Patch {
                        hook: act_name("resid_pre", l),
                        positions: vec![p],
                        head: None,
                    }],
                )
                .unwrap();
                same(
                    r.resid_pre[l * 8 + p],
                    one,
                    &format!("resid_pre L{l} pos {p}"),
                );
            }
            for h in 0..nh {
                let one = run_patched(
                    &b,
                    &task,
                    &cc,
                    &corrupted,
                    &[Patch {
                        hook: act_name("z", l),
                        positions: vec![],
                        head: Some(h),
                    }],
                )
                .unwrap();
                same(r.head_out[l * nh + h], one, &format!("z L{l}H{h}"));
                for p in [2, 5] {
                    let one = run_patched(
                        &b,
                        &task,
                        &cc,
                        &corrupted,
                        &[Patch {
                            hook: act_name("z", l),
                            positions: vec![p],
                            head: Some(h),
                        }],
                    )
                    .unwrap();
                    same(
                        r.head_out_by_pos[(l * nh + h) * 8 + p],
                        one,
                        &format!("z L{l}H{h} pos {p}"),
                    );
                }
            }
        }
    }
    let w = random_model(1, 1, false, false, false, 84);
    let b = ReferenceBackend::for_inference(&w).unwrap();
    let err = activation_patching(&b, &task, &[6, 1, 2], &sort::tokens_for(&[1, 2, 3], 6))
        .unwrap_err()
        .to_string();
    assert!(err.contains("8 tokens"), "{err}");
}
