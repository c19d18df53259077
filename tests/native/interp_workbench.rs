//! The workbench the page drives: every analysis through one object, on the seed-003 model
//! and on a run's snapshots.
use crate::common;

use toyformer::interp::intervene::Ablation;
use toyformer::interp::workbench::{Workbench, WorkbenchOptions};
use toyformer::tasks::TaskSpec;

fn seed003_bench(samples: usize) -> Workbench {
    let task = TaskSpec::default_for("sort").unwrap();
    let mut wb = Workbench::from_file(
        task,
        &common::shared("sort_fixed_len_list_model.pt"),
        5000,
        WorkbenchOptions {
            samples,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(wb.select(None).unwrap(), 5000);
    wb
}

#[test]
fn every_view_of_the_seed_003_model() {
    let mut wb = seed003_bench(64);
    let t0 = std::time::Instant::now();
    let a = wb.attention("42 17 26 14 3 35 20 24 0 13").unwrap();
    assert_eq!(
        a.tokens,
        [
            "BOS", "42", "17", "26", "14", "3", "35", "20", "24", "0", "13", "MID", "0", "3", "13",
            "14", "17", "20", "24", "26", "35", "42"
        ]
    );
    assert_eq!(a.text, "42 17 26 14 3 35 20 24 0 13");
    assert_eq!(a.answer_sources[11], vec![9], "MID predicts 0, at a9");
    assert_eq!(a.answer_sources[12], vec![5], "0 predicts 3, at a5");
    assert!(a.answer_sources[5].is_empty());
    assert_eq!(a.patterns.len(), 1);
    assert_eq!(
        a.guesses.iter().flatten().filter(|(_, ok)| *ok).count(),
        10,
        "the model sorts this list"
    );
    let row = a.patterns[0][0].row(11);
    assert!(row[12..].iter().all(|&x| x == 0.0), "causal");

    let d = wb.decomposition("3 1 4 1 5 9 2 6 5 3", 0, 0).unwrap();
    assert_eq!(d.total().unwrap().rows, 22);
    assert_eq!(d.terms.len(), 4, "no LN, zero biases: the four terms");

    let qk = wb.qk(0, 0, &[], &[]).unwrap();
    assert_eq!(
        (
            qk.tok_tok.rows,
            qk.tok_pos.cols,
            qk.pos_tok.rows,
            qk.pos_pos.cols
        ),
        (52, 22, 22, 22)
    );
    assert_eq!(
        qk.argmax.histogram.iter().find(|(o, _)| *o == 1).unwrap().1,
        31
    );
    // by position alone, the sorter's predicted positions prefer the prompt to the answer so far
    let pref = qk.prompt_preference.unwrap();
    assert!(pref > 1.0, "pos·pos prompt preference {pref}");
    assert_eq!(qk.prompt_len, 12);
    assert!(
        wb.qk(0, 0, &[(0, 0)], &[]).is_err(),
        "a path must end before the reading head"
    );
    let ov = wb.ov(&[(0, 0)]).unwrap();
    assert_eq!(ov.diagonal_fraction, 1.0);
    assert_eq!((ov.token.rows, ov.token.cols, ov.pos.rows), (52, 50, 22));

    let rep = wb.report().unwrap().clone();
    assert!(rep.eval.acc > 0.98);
    let abl = wb.ablate(&[(0, 0)], Ablation::Zero).unwrap();
    assert_eq!(abl.baseline, rep.eval);
    assert!(
        abl.ablated.acc < 0.2,
        "without its only head the model cannot sort: {:?}",
        abl.ablated
    );
    let table = wb.ablation_table().unwrap().clone();
    assert_eq!(table.heads[0].zero, abl.ablated);
    assert!(table.heads[0].mean.acc < rep.eval.acc);

    let inputs = wb.patch_inputs().unwrap();
    assert_ne!(inputs.clean, inputs.corrupted);
    let p = wb.patching(&inputs.clean, &inputs.corrupted).unwrap();
    assert!(
        p.corrupted.loss > p.clean.loss + 1.0,
        "{:?} vs {:?}",
        p.corrupted,
        p.clean
    );
    // the changed list position restores most of the clean loss; the sorted outputs that
    // differ restore some; every other position nothing
    let (c, k) = (
        wb.sequence(&inputs.clean).unwrap(),
        wb.sequence(&inputs.corrupted).unwrap(),
    );
    for (q, o) in p.resid_pre.iter().enumerate() {
        if c[q] == k[q] {
            assert!(
                (o.loss - p.corrupted.loss).abs() < 1e-4,
                "position {q} holds the same token: {o:?}"
            );
        }
    }
    let diff = (1..=10).find(|&i| c[i] != k[i]).unwrap();
    assert!(
        p.resid_pre[diff].loss < 0.2 * p.corrupted.loss,
        "{:?}",
        p.resid_pre[diff]
    );
    eprintln!(
        "seed-003 full recompute, 64 samples, native release: {:?}",
        t0.elapsed()
    );

    assert!(wb
        .attention("3 1 x")
        .unwrap_err()
        .to_string()
        .contains("not a number"));
    assert!(wb
        .patching("1 2 3", "")
        .unwrap_err()
        .to_string()
        .contains("expected 10 numbers"));
}

#[test]
fn snapshots_of_a_run() {
    let task = TaskSpec::Sort { n: 3, max_num: 6 };
    let cfg = common::random_model(1, 2, false, false, false, 1).cfg;
    let mut wb = Workbench::new(
        task,
        cfg.clone(),
        WorkbenchOptions {
            samples: 8,
            capacity: 4,
            every: 10,
            seed: 0,
        },
    )
    .unwrap();
    assert!(wb
        .select(None)
        .unwrap_err()
        .to_string()
        .contains("no snapshot"));
    let n = toyformer::model::ParamTable::new(&cfg).total_len();
    for step in (0..=60).step_by(10) {
        let w = common::random_model(1, 2, false, false, false, step);
        // kept unless off the grid after thinning (10 → 20 once 5 would be held)
        assert_eq!(
            wb.add_snapshot(step, w.data, false).unwrap(),
            step != 50,
            "step {step}"
        );
    }
    assert_eq!(wb.steps(), vec![0, 20, 40, 60]);
    assert!(wb.add_snapshot(65, vec![0.0; n], true).unwrap());
    assert!(wb
        .add_snapshot(70, vec![0.0; 3], false)
        .unwrap_err()
        .to_string()
        .contains(&n.to_string()));
    assert!(wb.add_snapshot(80, vec![f32::NAN; n], false).is_err());
    assert_eq!(
        wb.timeline_fill(1).unwrap(),
        2,
        "one computed, the newest first"
    );
    assert_eq!(
        wb.timeline_points()
            .iter()
            .map(|p| p.step)
            .collect::<Vec<_>>(),
        vec![65]
    );
    let tl = wb.timeline().unwrap();
    assert_eq!(wb.timeline_fill(5).unwrap(), 0);
    // the final (tail) snapshot counts too: 0 20 40 60 65 thins to 0 40 65
    assert_eq!(
        tl.iter().map(|p| p.step).collect::<Vec<_>>(),
        vec![0, 40, 65]
    );
    assert_eq!(wb.steps(), vec![0, 40, 65]);
    assert_eq!(wb.select(Some(45)).unwrap(), 40);
    let a40 = wb.ov(&[(0, 1)]).unwrap();
    assert_eq!(wb.select(Some(39)).unwrap(), 0);
    assert_eq!(wb.select(None).unwrap(), 65);
    let a0 = wb.ov(&[(0, 1)]).unwrap();
    assert_ne!(
        a40.token, a0.token,
        "the timeline position changes the circuit shown"
    );
    let want = toyformer::interp::circuits::full_ov(
        &common::random_model(1, 2, false, false, false, 40),
        0,
        1,
        toyformer::interp::circuits::Embed::Token,
    )
    .unwrap();
    assert_eq!(a40.token, want);
}
