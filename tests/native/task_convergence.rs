//! Convergence by steps (never by seconds) for a small configuration of every catalogue
//! task on the CPU engine: token accuracy ≥ 0.95 within a fixed step budget, on fresh
//! samples for sampled tasks and on the held-out test split for finite datasets (the
//! modular tasks, whose generalisation takes grokking's thousands of steps, are held to
//! their training split here).

use toyformer::backend::BackendKind;
use toyformer::model::ModelConfig;
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::{eval, TrainConfig, Trainer};

/// Trains `task` with its default model narrowed to `width` (d_model = d_head × heads)
/// for `steps`, and returns the token accuracy on `split`.
fn train(task: &str, cfg: impl Fn(&mut ModelConfig), tc: TrainConfig, split: Split) -> f64 {
    let task: TaskSpec = serde_json::from_str(task).unwrap();
    let mut model = task.default_model();
    cfg(&mut model);
    let mut tr = Trainer::from_scratch(task.clone(), &model, tc, BackendKind::Cpu).unwrap();
    tr.run(|_| {}).unwrap();
    let rep = eval::evaluate_split(tr.backend.as_mut(), &task, 7, 512, 256, split).unwrap();
    eprintln!("{}: {:?}", task.name(), rep);
    rep.token_acc
}

fn tc(steps: u64, batch_size: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size,
        lr,
        seed: 1,
        ..Default::default()
    }
}

fn width(d_model: usize, d_head: usize) -> impl Fn(&mut ModelConfig) {
    move |m: &mut ModelConfig| {
        m.d_model = d_model;
        m.d_head = d_head;
    }
}

fn check(name: &str, acc: f64) {
    assert!(acc >= 0.95, "{name}: token accuracy {acc}");
}

#[test]
fn reverse_converges() {
    let t = r#"{"task":"reverse","n":4,"max_num":12}"#;
    check(
        "reverse",
        train(t, width(32, 32), tc(400, 64, 3e-3), Split::HeldOut),
    );
}

#[test]
fn array_index_converges() {
    let t = r#"{"task":"array-index","n":3,"max_num":12}"#;
    check(
        "array-index",
        train(t, width(32, 32), tc(600, 64, 3e-3), Split::HeldOut),
    );
}

#[test]
fn majority_converges() {
    let t = r#"{"task":"majority","n":6,"k":4,"max_num":8}"#;
    check(
        "majority",
        train(t, width(32, 32), tc(400, 64, 3e-3), Split::HeldOut),
    );
}

#[test]
fn previous_token_converges_without_positions() {
    // positional embeddings off (the task's default): the model rederives positions
    let t = r#"{"task":"previous-token","n":6,"max_num":12}"#;
    check(
        "previous-token",
        train(t, width(32, 32), tc(1000, 64, 3e-3), Split::HeldOut),
    );
}

#[test]
fn arena_palindromes_converges() {
    let t = r#"{"task":"arena-palindromes","half_length":3,"max_value":5}"#;
    check(
        "arena-palindromes",
        train(t, width(32, 16), tc(1500, 64, 3e-3), Split::HeldOut),
    );
}

#[test]
fn induction_converges() {
    let t = r#"{"task":"induction","k":5,"n_tokens":12}"#;
    check(
        "induction",
        train(t, width(32, 16), tc(600, 64, 3e-3), Split::HeldOut),
    );
}

#[test]
fn arena_sum_converges() {
    let t = r#"{"task":"arena-sum","num_digits":2}"#;
    let mlp = |m: &mut ModelConfig| {
        m.d_model = 48;
        m.d_head = 24;
        m.d_mlp = Some(96);
        m.act_fn = Some(toyformer::model::ActFn::Relu);
    };
    check(
        "arena-sum",
        train(t, mlp, tc(1500, 128, 3e-3), Split::HeldOut),
    );
}

#[test]
fn min_of_two_generalises_to_its_test_split() {
    let t = r#"{"task":"min-of-two","n":16,"frac_train":0.8}"#;
    // full batch: the 205 training pairs
    check(
        "min-of-two",
        train(t, width(32, 32), tc(600, 205, 3e-3), Split::HeldOut),
    );
}

#[test]
fn mod_add_fits_its_training_split() {
    let t = r#"{"task":"mod-add","p":11,"frac_train":0.5}"#;
    let narrow = |m: &mut ModelConfig| {
        m.d_model = 32;
        m.d_head = 16;
        m.d_mlp = Some(64);
    };
    check("mod-add", train(t, narrow, tc(600, 61, 3e-3), Split::Train));
}
