//! `eval::evaluate_finite`, the exact train / test / full figures of a finite dataset (the
//! page's Evaluate cell and the Train cell's train and test curves), against a plain loop:
//! every pair (a, b) enumerated by hand, its answer computed by arithmetic, each sequence
//! scored alone with its own log-softmax.

use toyformer::backend::{Backend, BackendKind};
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::{eval, TrainConfig, Trainer};

const P: u32 = 11;

/// A small mod-add model trained a few steps, so that its accuracies are neither 0 nor 1.
fn trained() -> (TaskSpec, Trainer) {
    let task: TaskSpec =
        serde_json::from_str(r#"{"task":"mod-add","p":11,"frac_train":0.5}"#).unwrap();
    let mut model = task.default_model();
    model.d_model = 32;
    model.d_head = 16;
    model.d_mlp = Some(64);
    let tc = TrainConfig {
        steps: 40,
        batch_size: 60,
        lr: 3e-3,
        seed: 1,
        ..Default::default()
    };
    let mut tr = Trainer::from_scratch(task.clone(), &model, tc, BackendKind::Cpu).unwrap();
    tr.run(|_| {}).unwrap();
    (task, tr)
}

/// (loss, correct) of one sequence [a, b, =, c] scored alone: the logit row at '='.
fn score_alone(b: &mut dyn Backend, seq: &[u32]) -> (f64, bool) {
    let logits = b.logits(seq, 1).unwrap(); // (1, T, V)
    let v = logits.len() / seq.len();
    let row: Vec<f64> = logits[2 * v..3 * v].iter().map(|&x| x as f64).collect();
    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = row.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max;
    let target = (seq[0] + seq[1]) % P;
    let best = (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b });
    (lse - row[target as usize], best == target as usize)
}

/// The whole side of the split, in split order (the trainer's full batch).
fn side(task: &TaskSpec, split: Split) -> Vec<Vec<u32>> {
    let fs = task.finite().unwrap();
    let n = fs.side_len(split == Split::HeldOut) as usize;
    let t = task.seq_len();
    task.batch_split(0, 0, n, split)
        .chunks(t)
        .map(|c| c.to_vec())
        .collect()
}

#[test]
fn finite_figures_match_a_plain_loop_over_every_pair() {
    let (task, mut tr) = trained();
    let (train, test) = (side(&task, Split::Train), side(&task, Split::HeldOut));
    // the two sides are every pair once, each with its answer
    let mut all: Vec<(u32, u32)> = train.iter().chain(&test).map(|s| (s[0], s[1])).collect();
    all.sort();
    let want: Vec<(u32, u32)> = (0..P).flat_map(|a| (0..P).map(move |b| (a, b))).collect();
    assert_eq!(all, want);
    let got = eval::evaluate_finite(tr.backend.as_mut(), &task, 1 << 20, 7)
        .unwrap()
        .unwrap();
    let mut totals = Vec::new();
    for (seqs, rep) in [(&train, &got.train), (&test, &got.test)] {
        assert!(seqs.iter().all(|s| s[3] == (s[0] + s[1]) % P));
        let scored: Vec<(f64, bool)> = seqs
            .iter()
            .map(|s| score_alone(tr.backend.as_mut(), s))
            .collect();
        let n = scored.len() as f64;
        let loss = scored.iter().map(|x| x.0).sum::<f64>() / n;
        let acc = scored.iter().filter(|x| x.1).count() as f64 / n;
        assert_eq!(rep.samples, seqs.len());
        assert!((rep.loss - loss).abs() < 1e-4, "{} vs {loss}", rep.loss);
        assert!(
            (rep.token_acc - acc).abs() < 1e-6,
            "{} vs {acc}",
            rep.token_acc
        );
        totals.push((loss * n, acc * n));
    }
    assert!(
        got.train.token_acc > 0.0 && got.test.token_acc < 1.0,
        "{got:?}"
    );
    let n = (P * P) as f64;
    assert_eq!(got.full.items, (P * P) as u64);
    assert!((got.full.loss - (totals[0].0 + totals[1].0) / n).abs() < 1e-4);
    assert!((got.full.token_acc - (totals[0].1 + totals[1].1) / n).abs() < 1e-6);
}

#[test]
fn a_capped_side_is_its_first_items_in_split_order() {
    let (task, mut tr) = trained();
    let got = eval::evaluate_finite(tr.backend.as_mut(), &task, 5, 2)
        .unwrap()
        .unwrap();
    for (split, rep) in [(Split::Train, &got.train), (Split::HeldOut, &got.test)] {
        let first: Vec<Vec<u32>> = side(&task, split).into_iter().take(5).collect();
        let acc = first
            .iter()
            .filter(|s| score_alone(tr.backend.as_mut(), s).1)
            .count() as f64
            / 5.0;
        assert_eq!(rep.samples, 5);
        assert!((rep.token_acc - acc).abs() < 1e-6);
    }
}

#[test]
fn sampled_tasks_have_no_finite_figures_and_zero_items_is_an_error() {
    let (task, mut tr) = trained();
    assert!(eval::evaluate_finite(tr.backend.as_mut(), &task, 0, 8).is_err());
    let sort = TaskSpec::default_for("sort").unwrap();
    let mut s = Trainer::from_scratch(
        sort.clone(),
        &sort.default_model(),
        TrainConfig::default(),
        BackendKind::Cpu,
    )
    .unwrap();
    assert!(eval::evaluate_finite(s.backend.as_mut(), &sort, 10, 8)
        .unwrap()
        .is_none());
}
