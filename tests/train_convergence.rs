//! Convergence by steps (never by seconds): a small sort model on the CPU backend must
//! reach ≥ 95% held-out token accuracy within a fixed step budget, and training must be
//! bit-for-bit reproducible from its seeds.

use toyformer::model::ModelConfig;
use toyformer::tasks::TaskSpec;
use toyformer::train::{eval, BackendKind, TrainConfig, Trainer};

fn small_sort() -> (TaskSpec, ModelConfig, TrainConfig) {
    let task = TaskSpec::Sort { n: 6, max_num: 20 };
    let mut model = task.default_model();
    model.d_model = 48;
    model.d_head = 48;
    let tc = TrainConfig { steps: STEPS, batch_size: 64, lr: 3e-3, seed: 1, ..Default::default() };
    (task, model, tc)
}

const STEPS: u64 = 600;

#[test]
fn small_sort_model_learns_within_step_budget() {
    let (task, model, tc) = small_sort();
    let mut tr = Trainer::from_scratch(task.clone(), &model, tc, BackendKind::Cpu).unwrap();
    tr.run(|_| {}).unwrap();
    let first = tr.history[0].loss;
    let rep = eval::evaluate(tr.backend.as_mut(), &task, 7, 1024, 256).unwrap();
    eprintln!("first loss {first}, final held-out {:?}", rep);
    assert!(rep.token_acc >= 0.95, "held-out token accuracy {} after {STEPS} steps", rep.token_acc);
    assert!(rep.loss < 0.25 * first as f64, "loss fell only from {first} to {}", rep.loss);
}
