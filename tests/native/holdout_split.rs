//! The held-out split of the permutations task (seed 000's assumption 5): training never
//! draws a held-out character combination, evaluation draws only held-out ones, and the
//! split follows the documented rule. Exhaustive for n = 1 and 2.

use std::collections::HashSet;
use toyformer::tasks::permutations::{self, FIRST_CHAR, N_CHARS};
use toyformer::tasks::rng::mix64;
use toyformer::tasks::{Split, TaskSpec};

fn spec(n: usize, holdout: f64, split_seed: u64) -> TaskSpec {
    TaskSpec::Permutations {
        n,
        holdout,
        split_seed,
    }
}

/// The rule of the module doc, written out again from its formula.
fn held_by_formula(chars: &[u32], holdout: f64, split_seed: u64) -> bool {
    let mask: u64 = chars.iter().map(|&c| 1u64 << (c - 3)).sum();
    let h = mix64(mix64(split_seed ^ 0x686f_6c64_6f75_7421).wrapping_add(mask));
    ((h >> 11) as f64) / 9_007_199_254_740_992.0 < holdout
}

/// Every combination of n of the 62 term characters (token ids), by nested loops.
fn all_combinations(n: usize) -> Vec<Vec<u32>> {
    let ids: Vec<u32> = (FIRST_CHAR..FIRST_CHAR + N_CHARS as u32).collect();
    let mut out: Vec<Vec<u32>> = vec![vec![]];
    for _ in 0..n {
        out = out
            .into_iter()
            .flat_map(|c| {
                let start = c.last().map_or(0, |&l| (l - FIRST_CHAR + 1) as usize);
                ids[start..]
                    .iter()
                    .map(move |&x| [c.clone(), vec![x]].concat())
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    out
}

/// The first term of a sequence: its combination (sorted token ids).
fn first_term(n: usize, tokens: &[u32]) -> Vec<u32> {
    tokens[2..2 + n].to_vec()
}

#[test]
fn split_rule_matches_its_documented_formula_for_every_small_combination() {
    for n in 1..=2 {
        let combs = all_combinations(n);
        assert_eq!(combs.len() as u64, permutations::n_combinations(n));
        for (h, seed) in [(0.2, 0), (0.5, 17), (0.05, 3)] {
            for c in &combs {
                let want = held_by_formula(c, h, seed);
                assert_eq!(
                    permutations::is_held_out(permutations::comb_mask(c), h, seed),
                    want,
                    "{c:?}"
                );
            }
        }
    }
}

/// n = 1 and 2, exhaustively: every training sample's combination is outside the held-out
/// set H, every held-out sample's inside it, and enough draws see every member of each.
#[test]
fn training_never_draws_a_held_out_combination_exhaustive_small_n() {
    for (n, draws) in [(1usize, 4000u64), (2, 40_000)] {
        let (h, seed) = (0.2, 11);
        let task = spec(n, h, seed);
        task.validate().unwrap();
        let combs = all_combinations(n);
        let held: HashSet<Vec<u32>> = combs
            .iter()
            .filter(|c| held_by_formula(c, h, seed))
            .cloned()
            .collect();
        let train: HashSet<Vec<u32>> = combs
            .iter()
            .filter(|c| !held.contains(*c))
            .cloned()
            .collect();
        assert!(!held.is_empty() && !train.is_empty());
        // The trainer's path: task.batch(seed, step, B).
        let (mut seen_train, mut seen_held) = (HashSet::new(), HashSet::new());
        let b = 50;
        for step in 0..draws / b {
            let batch = task.batch(3, step, b as usize);
            for row in batch.chunks(task.seq_len()) {
                let c = first_term(n, row);
                assert!(
                    !held.contains(&c),
                    "n {n}: training step {step} drew held-out {c:?}"
                );
                seen_train.insert(c);
            }
            let batch = task.batch_split(3, 1 << 40 | step, b as usize, Split::HeldOut);
            for row in batch.chunks(task.seq_len()) {
                let c = first_term(n, row);
                assert!(
                    held.contains(&c),
                    "n {n}: held-out sample {c:?} is a training combination"
                );
                seen_held.insert(c);
            }
        }
        assert_eq!(
            seen_train, train,
            "n {n}: training draws do not cover the training set"
        );
        assert_eq!(
            seen_held, held,
            "n {n}: held-out draws do not cover the held-out set"
        );
    }
}

/// n = 1: training draws are uniform over the training combinations (each of ~50 gets
/// 20000/50 = 400 ± 20 draws; the bounds are 5 standard deviations).
#[test]
fn training_draws_are_uniform_over_the_training_set() {
    let task = spec(1, 0.2, 11);
    let mut counts = std::collections::HashMap::new();
    for i in 0..20_000 {
        *counts.entry(task.sample(0, 0, i)[2]).or_insert(0u32) += 1;
    }
    let k = counts.len() as f64;
    let mean = 20_000.0 / k;
    for (&c, &x) in &counts {
        assert!(
            (x as f64 - mean).abs() < 5.0 * mean.sqrt(),
            "char {c}: {x} draws, expected {mean:.0}"
        );
    }
}

/// n = 3 and 4 (not exhaustive): no leak over many samples, and the held-out fraction of
/// all combinations is close to holdout.
#[test]
fn larger_n_never_leaks_and_holds_out_the_right_fraction() {
    for n in [3usize, 4] {
        let (h, seed) = (0.25, 2);
        let task = spec(n, h, seed);
        for i in 0..3000 {
            let c = first_term(n, &task.sample(9, 1, i));
            assert!(
                !held_by_formula(&c, h, seed),
                "n {n}: training sample {i} is held out: {c:?}"
            );
            let c = first_term(n, &task.sample_split(9, 1, i, Split::HeldOut));
            assert!(
                held_by_formula(&c, h, seed),
                "n {n}: held-out sample {i} is a training one: {c:?}"
            );
        }
    }
    let (train, held) = permutations::split_sizes(3, 0.25, 2);
    assert_eq!(train + held, 37_820);
    let frac = held as f64 / 37_820.0;
    // binomial sd = sqrt(0.25·0.75/37820) ≈ 0.0022
    assert!((frac - 0.25).abs() < 0.011, "held-out fraction {frac}");
}

#[test]
fn holdout_zero_keeps_the_old_stream_and_json() {
    let plain = TaskSpec::permutations(4);
    let zero = spec(4, 0.0, 5);
    for i in 0..50 {
        let mut rng = toyformer::tasks::rng::CounterRng::new(1, 2, i);
        let old = permutations::sample(4, &mut rng);
        assert_eq!(plain.sample(1, 2, i), old);
        assert_eq!(zero.sample_split(1, 2, i, Split::HeldOut), old);
        assert_eq!(zero.sample(1, 2, i), old);
    }
    // Existing specs parse; a zero split is left out of the JSON.
    let parsed: TaskSpec = serde_json::from_str(r#"{"task": "permutations", "n": 3}"#).unwrap();
    assert_eq!(parsed, TaskSpec::permutations(3));
    assert_eq!(
        serde_json::to_string(&parsed).unwrap(),
        r#"{"task":"permutations","n":3}"#
    );
    let with: TaskSpec = serde_json::from_str(
        r#"{"task": "permutations", "n": 4, "holdout": 0.2, "split_seed": 7}"#,
    )
    .unwrap();
    assert_eq!(with, spec(4, 0.2, 7));
    assert_eq!(
        serde_json::to_string(&with).unwrap(),
        r#"{"task":"permutations","n":4,"holdout":0.2,"split_seed":7}"#
    );
    assert!(with.has_holdout() && !plain.has_holdout());
}

#[test]
fn bad_splits_are_errors_naming_holdout() {
    for h in [-0.1, 0.95, 1.0, f64::NAN, f64::INFINITY] {
        let e = spec(4, h, 0).validate().unwrap_err().to_string();
        assert!(e.contains("holdout") && e.contains("[0, 0.9]"), "{e}");
    }
    // n = 1 has 62 combinations: holdout 0.001 usually holds out none of them.
    let seed = (0..100)
        .find(|&s| (0..62).all(|c| !permutations::is_held_out(1 << c, 0.001, s)))
        .unwrap();
    let e = spec(1, 0.001, seed).validate().unwrap_err().to_string();
    assert!(
        e.contains("holds out none") && e.contains("split_seed"),
        "{e}"
    );
    // ... and holdout 0.9 with some split seed holds out all of them (0.9^62 ≈ 0.0015).
    let seed = (0..100_000)
        .find(|&s| (0..62).all(|c| permutations::is_held_out(1 << c, 0.9, s)))
        .unwrap();
    let e = spec(1, 0.9, seed).validate().unwrap_err().to_string();
    assert!(e.contains("no training combination"), "{e}");
    // prompts of a spec with a bad split are refused with the same error
    assert!(spec(4, 2.0, 0).parse_prompt("abcd").is_err());
}

/// The floor of the training distribution: ln(#training combinations) / (T − 1), with
/// the count taken here by brute force.
#[test]
fn loss_floor_with_a_split_counts_training_combinations() {
    let (h, seed) = (0.3, 4);
    let train = all_combinations(2)
        .iter()
        .filter(|c| !held_by_formula(c, h, seed))
        .count() as f64;
    let t = spec(2, h, seed);
    assert_eq!(t.loss_floor(), train.ln() / (t.seq_len() - 1) as f64);
    assert_eq!(
        spec(2, 0.0, seed).loss_floor(),
        TaskSpec::permutations(2).loss_floor()
    );
    assert!(t.loss_floor() < TaskSpec::permutations(2).loss_floor());
}

// ---------------------------------------------------------------- finite datasets

/// The (a, b) pair of a finite two-operand item.
fn pair(seq: &[u32]) -> (u32, u32) {
    (seq[0], seq[1])
}

fn finite_small() -> Vec<TaskSpec> {
    [
        r#"{"task":"min-of-two","n":20,"frac_train":0.8,"split_seed":4}"#,
        r#"{"task":"mod-add","p":13,"frac_train":0.3,"split_seed":0}"#,
        r#"{"task":"mod-sub","p":17,"frac_train":0.5,"split_seed":9}"#,
    ]
    .iter()
    .map(|j| serde_json::from_str(j).unwrap())
    .collect()
}

/// The full batch is the whole training side, each item once; the test side is the rest;
/// random draws from either side never cross over; the split is a function of
/// split_seed alone.
#[test]
fn finite_splits_partition_the_dataset_and_never_leak() {
    for task in finite_small() {
        let fs = task.finite().unwrap();
        let t = task.seq_len();
        let train: Vec<(u32, u32)> = task
            .batch(0, 0, fs.n_train as usize)
            .chunks(t)
            .map(pair)
            .collect();
        let test: Vec<(u32, u32)> = task
            .batch_split(0, 0, fs.n_test() as usize, Split::HeldOut)
            .chunks(t)
            .map(pair)
            .collect();
        let train_set: HashSet<_> = train.iter().copied().collect();
        let test_set: HashSet<_> = test.iter().copied().collect();
        assert_eq!(
            train_set.len(),
            train.len(),
            "{task:?}: a training item twice"
        );
        assert_eq!(test_set.len(), test.len());
        assert!(train_set.is_disjoint(&test_set), "{task:?}: leak");
        assert_eq!((train.len() + test.len()) as u64, fs.n_items);
        // Every pair of the dataset is on one side.
        let n = (fs.n_items as f64).sqrt() as u32;
        for a in 0..n {
            for b in 0..n {
                assert!(train_set.contains(&(a, b)) ^ test_set.contains(&(a, b)));
            }
        }
        // Random draws (batches smaller than a side; evaluation samples) stay on their side.
        for step in 0..20 {
            for row in task.batch(3, step, 17).chunks(t) {
                assert!(
                    train_set.contains(&pair(row)),
                    "{task:?}: train drew a test item"
                );
            }
            for row in task.batch_split(3, step, 17, Split::HeldOut).chunks(t) {
                assert!(test_set.contains(&pair(row)));
            }
        }
        // Deterministic, and another split seed gives another split of the same sizes.
        assert_eq!(task.batch(0, 0, fs.n_train as usize).len(), train.len() * t);
        let mut other = serde_json::to_value(&task).unwrap();
        other["split_seed"] = serde_json::json!(1234);
        let other: TaskSpec = serde_json::from_value(other).unwrap();
        let other_train: HashSet<(u32, u32)> = other
            .batch(0, 0, fs.n_train as usize)
            .chunks(t)
            .map(pair)
            .collect();
        assert_eq!(other_train.len(), train.len());
        assert_ne!(other_train, train_set, "{task:?}: split_seed ignored");
    }
}

/// Training draws are spread over the whole training side (every item drawn within a
/// few thousand draws of a 320-item side).
#[test]
fn finite_training_draws_cover_the_training_side() {
    let task = &finite_small()[0];
    let fs = task.finite().unwrap();
    let mut seen = std::collections::HashSet::new();
    for step in 0..100 {
        for row in task.batch(1, step, 64).chunks(4) {
            seen.insert(pair(row));
        }
    }
    assert_eq!(seen.len() as u64, fs.n_train);
}
