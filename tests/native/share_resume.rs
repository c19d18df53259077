//! Exact resume: a run saved mid-way (weights as a safetensors export, plus the AdamW
//! state) and continued gives the same losses and weights, bit for bit, as the run that
//! never stopped; and the CPU backend's own AdamW matches candle_nn's AdamW bit for bit.

use candle_core::{backprop::GradStore, Device, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use toyformer::backend::BackendKind;
use toyformer::io::save_safetensors;
use toyformer::model::params::Weights;
use toyformer::reference::adamw::AdamW;
use toyformer::share::import_model;
use toyformer::tasks::TaskSpec;
use toyformer::train::{TrainConfig, Trainer};

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn setup() -> (TaskSpec, toyformer::model::ModelConfig, TrainConfig) {
    let task = TaskSpec::Sort { n: 4, max_num: 8 };
    let mut cfg = task.default_model();
    cfg.d_model = 16;
    cfg.d_head = 16;
    cfg.seed = 3;
    let train = TrainConfig {
        steps: 40,
        batch_size: 16,
        lr: 3e-3,
        seed: 9,
        ..TrainConfig::default()
    };
    (task, cfg, train)
}

#[test]
fn a_saved_run_continues_bit_identically() {
    let (task, cfg, train) = setup();
    let mut whole =
        Trainer::from_scratch(task.clone(), &cfg, train.clone(), BackendKind::Cpu).unwrap();
    whole.run(|_| {}).unwrap();
    let whole_losses: Vec<f32> = whole.history.iter().map(|m| m.loss).collect();

    let mut first =
        Trainer::from_scratch(task.clone(), &cfg, train.clone(), BackendKind::Cpu).unwrap();
    for _ in 0..15 {
        first.step().unwrap();
    }
    let meta = [
        (
            "toyformer_task".to_string(),
            serde_json::to_string(&task).unwrap(),
        ),
        ("toyformer_steps".to_string(), "15".to_string()),
    ];
    let file = save_safetensors(&first.backend.weights().unwrap(), &meta).unwrap();
    let opt = first.backend.optimizer_state().unwrap();
    assert_eq!(opt.t, 15);
    drop(first);

    let m = import_model(&file, None, None).unwrap();
    assert_eq!(m.step, 15);
    let mut rest = Trainer::resume(
        m.task,
        &m.weights,
        train.clone(),
        BackendKind::Cpu,
        m.step,
        Some(&opt),
    )
    .unwrap();
    rest.run(|_| {}).unwrap();
    let rest_losses: Vec<f32> = rest.history.iter().map(|x| x.loss).collect();
    assert_eq!(rest.history[0].step, 15);
    assert_eq!(bits(&rest_losses), bits(&whole_losses[15..]));
    assert_eq!(
        bits(&rest.backend.weights().unwrap().data),
        bits(&whole.backend.weights().unwrap().data)
    );

    // Without the optimiser state the run goes on (same data, same schedule) but AdamW
    // restarts: the first continued loss is the same (same weights, same batch), later ones differ.
    let mut cold = Trainer::resume(task, &m.weights, train, BackendKind::Cpu, 15, None).unwrap();
    cold.run(|_| {}).unwrap();
    assert_eq!(cold.history[0].loss.to_bits(), whole_losses[15].to_bits());
    assert_ne!(
        bits(&cold.backend.weights().unwrap().data),
        bits(&whole.backend.weights().unwrap().data)
    );
}

#[test]
fn optimizer_state_is_checked() {
    let (task, cfg, train) = setup();
    let mut t = Trainer::from_scratch(task, &cfg, train, BackendKind::Cpu).unwrap();
    t.step().unwrap();
    let good = t.backend.optimizer_state().unwrap();
    // frozen biases have zero moments; trained weights do not
    let w = Weights::zeros(&cfg).unwrap();
    let bq = w.table.get("blocks.0.attn.b_Q").unwrap();
    assert!(good.m[bq.offset..bq.offset + bq.len]
        .iter()
        .all(|&x| x == 0.0));
    let wq = w.table.get("blocks.0.attn.W_Q").unwrap();
    assert!(good.v[wq.offset..wq.offset + wq.len]
        .iter()
        .any(|&x| x > 0.0));
    let mut short = good.clone();
    short.m.pop();
    assert!(t
        .backend
        .set_optimizer_state(&short)
        .unwrap_err()
        .to_string()
        .contains("values"));
    let mut neg = good.clone();
    neg.v[wq.offset + 2] = -1.0;
    let e = t.backend.set_optimizer_state(&neg).unwrap_err().to_string();
    assert!(e.contains("second moment of `blocks.0.attn.W_Q`"), "{e}");
    t.backend.set_optimizer_state(&good).unwrap();
}

#[test]
fn adamw_matches_candle_nn_bit_for_bit() {
    let dev = Device::Cpu;
    let init = Tensor::arange(0f32, 12.0, &dev)
        .unwrap()
        .reshape((3, 4))
        .unwrap();
    let init = ((init * 0.37).unwrap().sin().unwrap() * 0.5).unwrap();
    let p = ParamsAdamW {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-8,
        weight_decay: 0.01,
    };
    let (a, b) = (
        Var::from_tensor(&init).unwrap(),
        Var::from_tensor(&init).unwrap(),
    );
    let mut ours = AdamW::new(vec![a.clone()], p.clone()).unwrap();
    let mut theirs = candle_nn::AdamW::new(vec![b.clone()], p).unwrap();
    for step in 0..25 {
        // loss = Σ (θ − target)^3-ish: any smooth function with varied gradients
        let grad = |v: &Var| -> GradStore {
            let x = v.as_tensor();
            let loss = ((x - 0.1 * step as f64).unwrap().powf(2.0).unwrap() * x.cos().unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            loss.backward().unwrap()
        };
        ours.set_learning_rate(0.01 / (1.0 + step as f64));
        theirs.set_learning_rate(0.01 / (1.0 + step as f64));
        ours.step(&grad(&a)).unwrap();
        theirs.step(&grad(&b)).unwrap();
        let va: Vec<f32> = a.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let vb: Vec<f32> = b.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(bits(&va), bits(&vb), "step {step}");
    }
}

/// reduce_on_plateau with a short patience, so the rate drops within 40 steps of a
/// tiny model: the loss wobbles from batch to batch.
fn plateau_train() -> TrainConfig {
    let (_, _, mut train) = setup();
    train.schedule =
        serde_json::from_str(r#"{"kind": "reduce_on_plateau", "factor": 0.5, "patience": 1}"#)
            .unwrap();
    train
}

#[test]
fn reduce_on_plateau_runs_the_same_in_chunks_and_after_a_resume() {
    let (task, cfg, _) = setup();
    let train = plateau_train();
    let mut whole =
        Trainer::from_scratch(task.clone(), &cfg, train.clone(), BackendKind::Cpu).unwrap();
    whole.run(|_| {}).unwrap();
    let lrs: Vec<f64> = whole.history.iter().map(|m| m.lr).collect();
    assert!(
        lrs.iter().any(|&l| l < train.lr),
        "the rate never dropped: {lrs:?}"
    );
    let drops_after_20 = lrs[20..].windows(2).filter(|w| w[1] < w[0]).count();
    assert!(
        drops_after_20 > 0,
        "the rate must also drop after step 20 for the resume check to mean anything: {lrs:?}"
    );

    // step_many plans no chunk ahead for a loss-driven schedule: the same rates and losses
    let mut chunked =
        Trainer::from_scratch(task.clone(), &cfg, train.clone(), BackendKind::Cpu).unwrap();
    chunked.step_many(13).unwrap();
    chunked.step_many(27).unwrap();
    let pairs = |t: &Trainer| {
        t.history
            .iter()
            .map(|m| (m.lr, m.loss.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&chunked), pairs(&whole));

    // saved at step 20 with weights, AdamW state and schedule state: the rest is identical
    let mut first =
        Trainer::from_scratch(task.clone(), &cfg, train.clone(), BackendKind::Cpu).unwrap();
    first.step_many(20).unwrap();
    let w = first.backend.weights().unwrap();
    let opt = first.backend.optimizer_state().unwrap();
    let state: toyformer::train::ScheduleState =
        serde_json::from_str(&serde_json::to_string(&first.schedule_state()).unwrap()).unwrap();
    let mut rest = Trainer::resume(
        task.clone(),
        &w,
        train.clone(),
        BackendKind::Cpu,
        20,
        Some(&opt),
    )
    .unwrap();
    rest.set_schedule_state(&state).unwrap();
    rest.run(|_| {}).unwrap();
    assert_eq!(pairs(&rest), pairs(&whole)[20..].to_vec());

    // without the schedule state the resumed run starts again at the base rate: it differs
    let mut forgetful =
        Trainer::resume(task, &w, train.clone(), BackendKind::Cpu, 20, Some(&opt)).unwrap();
    forgetful.run(|_| {}).unwrap();
    assert_ne!(pairs(&forgetful), pairs(&whole)[20..].to_vec());

    // a state no run could produce is refused, naming it
    let bad = toyformer::train::ScheduleState {
        current: f64::NAN,
        best: None,
        num_bad: 0,
        cooldown_left: 0,
    };
    let err = rest.set_schedule_state(&bad).unwrap_err().to_string();
    assert!(err.contains("schedule state"), "{err}");
}
