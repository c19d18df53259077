//! The sweep runner's library part: grid expansion (count, order, labels, defaults), bad
//! grids as errors naming the key, aggregation math, and runs that do not depend on the
//! thread count.

use serde_json::json;
use toyformer::model::ActFn;
use toyformer::sweep::run::{EvalSummary, RunResult};
use toyformer::sweep::{aggregate, run_one, Grid, Stat};
use toyformer::tasks::TaskSpec;
use toyformer::train::Schedule;

fn grid(v: serde_json::Value) -> Grid {
    Grid::from_value(&v).unwrap()
}

fn grid_err(v: serde_json::Value) -> String {
    match Grid::from_value(&v).and_then(|g| g.expand()) {
        Ok(r) => panic!("{v} was accepted ({} runs)", r.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn expansion_is_the_product_in_axis_order_with_seed_fastest() {
    // Keys given out of order: expansion follows AXES order (task params, model, train, seed).
    let g = grid(json!({
        "seed": [0, 1, 2], "act_fn": [null, "relu"], "n_layers": [1, 2], "n": [3, 4],
        "task": "permutations", "d_model": 32, "d_head": 8, "steps": 10
    }));
    let runs = g.expand().unwrap();
    assert_eq!(g.n_runs(), 24);
    assert_eq!(runs.len(), 24);
    for (i, r) in runs.iter().enumerate() {
        let n = [3, 4][i / 12];
        let layers = [1, 2][(i / 6) % 2];
        let relu = (i / 3) % 2 == 1;
        let seed = (i % 3) as u64;
        assert_eq!(r.index, i);
        assert_eq!(r.config_index, i / 3, "run {i}");
        assert_eq!(r.task, TaskSpec::permutations(n));
        assert_eq!(r.model.n_layers, layers);
        assert_eq!((r.model.d_model, r.model.d_head), (32, 8));
        assert_eq!(r.model.act_fn, relu.then_some(ActFn::Relu));
        assert_eq!(
            r.model.d_mlp,
            relu.then_some(128),
            "d_mlp defaults to 4·d_model"
        );
        assert_eq!(r.model.n_ctx, r.task.seq_len());
        assert_eq!((r.seed, r.train.seed, r.model.seed), (seed, seed, seed));
        assert_eq!(r.train.steps, 10);
        // the label holds the varying axes only (not task, d_model, steps, seed)
        let keys: Vec<&str> = r.label.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, vec!["act_fn", "n", "n_layers"]);
        assert_eq!(r.label["n"], json!(n));
    }
    assert_eq!(runs[3].label_text(), "act_fn=relu n=3 n_layers=1");
}

#[test]
fn defaults_schedules_and_settings() {
    let g = grid(json!({
        "task": "permutations", "holdout": 0.2, "split_seed": 5, "normalization_type": [null, "LN"],
        "schedule": ["constant", "reduce_on_plateau", {"kind": "reduce_on_plateau", "patience": 100}],
        "eval_samples": 64, "eval_every": 7, "target": 0.9, "name": "x"
    }));
    let runs = g.expand().unwrap();
    assert_eq!(runs.len(), 6);
    assert_eq!(
        runs[0].task,
        TaskSpec::Permutations {
            n: 4,
            holdout: 0.2,
            split_seed: 5
        }
    );
    assert_eq!(runs[0].model.normalization_type, None);
    assert!(runs[3].model.normalization_type.is_some());
    assert_eq!(runs[0].train.schedule, Schedule::Constant);
    assert_eq!(runs[1].train.schedule, Schedule::plateau_defaults());
    assert_eq!(
        runs[2].train.schedule,
        Schedule::ReduceOnPlateau {
            factor: 0.1,
            patience: 100,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0
        }
    );
    assert_eq!(
        runs[2].label_text(),
        "normalization_type=null schedule=reduce_on_plateau(patience:100)"
    );
    // untouched settings are the task's default model and TrainConfig's defaults
    let d = TaskSpec::permutations(4).default_model();
    assert_eq!(
        (
            runs[0].model.d_model,
            runs[0].model.d_head,
            runs[0].model.n_layers
        ),
        (d.d_model, d.d_head, d.n_layers)
    );
    assert_eq!(runs[0].train.batch_size, 256);
    assert_eq!(
        (
            g.settings.eval_samples,
            g.settings.eval_every,
            g.settings.target
        ),
        (64, Some(7), 0.9)
    );
    assert_eq!(g.settings.name, "x");
}

#[test]
fn bad_grids_are_errors_naming_the_key() {
    let cases = [
        (json!({"n_layer": [1, 2]}), "n_layer"),
        (json!({"n_layers": []}), "empty list"),
        (json!({"n_layers": "two"}), "n_layers"),
        (json!({"lr": [1e-3, "fast"]}), "lr"),
        (json!({"eval_samples": [1, 2]}), "eval_samples"),
        (json!({"task": "sort", "holdout": 0.2}), "holdout"),
        (json!({"task": "permutations", "max_num": 5}), "max_num"),
        (json!({"task": "permutations", "n": 6}), "n = 6"),
        (json!({"task": "permutations", "holdout": 0.95}), "holdout"),
        (json!({"n_layers": [1, 9]}), "n_layers"),
        (json!({"act_fn": "swish"}), "act_fn"),
        (json!({"d_mlp": 64}), "d_mlp"),
        (json!({"normalization_type": "RMS"}), "normalization_type"),
        (json!({"schedule": "cosine"}), "schedule"),
        (
            json!({"schedule": {"kind": "reduce_on_plateau", "factor": 2.0}}),
            "factor",
        ),
        (json!({"batch_size": 0}), "batch_size"),
        (json!({"target": 1.5}), "target"),
        (json!({"backend": "gpu"}), "backend"),
        (
            json!({"seed": (0..101).collect::<Vec<_>>(), "lr": (0..100).map(|i| 1e-3 + i as f64 * 1e-5).collect::<Vec<_>>()}),
            "10000",
        ),
        (json!([1, 2]), "grid"),
    ];
    for (v, want) in cases {
        let e = grid_err(v.clone());
        assert!(e.contains(want), "{v}: error {e:?} does not name {want:?}");
    }
    let e = Grid::from_json("{\"n\": [3,").unwrap_err().to_string();
    assert!(e.contains("grid") && e.contains("JSON"), "{e}");
}

fn fake(g: &Grid, i: usize, final_loss: f64, algo_acc: Option<f64>, to: Option<u64>) -> RunResult {
    let spec = g.expand().unwrap()[i].clone();
    RunResult {
        n_params: spec.model.n_params(),
        floor: spec.task.loss_floor(),
        steps_done: spec.train.steps,
        final_loss,
        excess: final_loss - spec.task.loss_floor(),
        max_grad_norm: final_loss * 10.0,
        max_grad_norm_step: 0,
        eval: algo_acc.map(|a| EvalSummary {
            samples: 8,
            loss: 1.0 - a,
            algo_loss: 2.0 * (1.0 - a),
            token_acc: a,
            algo_acc: a,
            seq_acc: 0.0,
        }),
        eval_train_split: None,
        steps_to_target: to,
        curve: vec![],
        error: algo_acc.is_none().then(|| "diverged".to_string()),
        spec,
    }
}

#[test]
fn aggregation_is_mean_min_max_over_seeds() {
    let g = grid(json!({"task": "permutations", "n": [3, 4], "seed": [0, 1, 2], "steps": 5}));
    // results arrive out of order
    let rs = vec![
        fake(&g, 4, 0.30, Some(0.90), None),
        fake(&g, 0, 0.50, Some(1.0), Some(100)),
        fake(&g, 1, 0.70, Some(0.98), None),
        fake(&g, 2, 0.60, Some(0.99), Some(300)),
        fake(&g, 3, 0.20, None, None),
        fake(&g, 5, 0.40, Some(0.95), Some(50)),
    ];
    let s = aggregate(&rs);
    assert_eq!(s.len(), 2);
    // first appearance order: config 1 (run 4) first
    let (c1, c0) = (&s[0], &s[1]);
    assert_eq!((c1.config_index, c0.config_index), (1, 0));
    assert_eq!((c0.runs, c0.failed, c1.runs, c1.failed), (3, 0, 3, 1));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(
        close(c0.final_loss.mean, 0.6)
            && close(c0.final_loss.min, 0.5)
            && close(c0.final_loss.max, 0.7)
    );
    let f3 = TaskSpec::permutations(3).loss_floor();
    assert!(close(c0.excess.mean, 0.6 - f3) && close(c0.floor, f3));
    assert!(
        close(c0.eval_algo_acc.mean, (1.0 + 0.98 + 0.99) / 3.0)
            && close(c0.eval_algo_acc.min, 0.98)
    );
    assert!(close(c0.eval_algo_loss.max, 0.04));
    assert_eq!(
        (
            c0.steps_to_target.n,
            c0.steps_to_target.mean,
            c0.steps_to_target.min,
            c0.steps_to_target.max
        ),
        (2, 200.0, 100.0, 300.0)
    );
    // the failed run has no eval: eval stats are over the other two
    assert_eq!(c1.eval_algo_acc.n, 2);
    assert!(close(c1.eval_algo_acc.mean, 0.925));
    assert_eq!(c1.final_loss.n, 3);
    assert_eq!(c1.steps_to_target.n, 1);
    assert_eq!(c1.label["n"], json!(4));
    // Stat: non-finite values are left out; empty is NaN with n = 0
    let st = Stat::of([1.0, f64::NAN, 3.0, f64::INFINITY]);
    assert_eq!((st.n, st.mean, st.min, st.max), (2, 2.0, 1.0, 3.0));
    assert!(Stat::of([]).mean.is_nan());
}

/// A run's numbers are the same on one thread and on two.
#[test]
fn run_one_is_deterministic_and_thread_independent() {
    let g = grid(json!({
        "task": "permutations", "n": 3, "holdout": 0.3, "d_model": 16, "d_head": 8, "steps": 40,
        "batch_size": 8, "lr": 3e-3, "eval_every": 10, "curve_samples": 16, "eval_samples": 32
    }));
    let spec = &g.expand().unwrap()[0];
    let in_pool = |t: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
            .install(|| run_one(spec, &g.settings).unwrap())
    };
    let a = in_pool(1);
    let b = in_pool(2);
    assert_eq!(a, b);
    assert_eq!(
        a.curve.iter().map(|p| p.step).collect::<Vec<_>>(),
        vec![10, 20, 30, 40]
    );
    assert_eq!(a.steps_done, 40);
    assert!(
        a.eval.is_some() && a.eval_train_split.is_some(),
        "a split task is evaluated on both sides"
    );
    assert!(a.final_loss.is_finite() && a.final_loss > a.floor);
    assert!((a.excess - (a.final_loss - a.floor)).abs() < 1e-12);
}

/// NaN figures (a run with no finished step) survive JSON as null, for --resume and the page.
#[test]
fn results_round_trip_through_json_with_nan() {
    let g = grid(json!({"task": "permutations", "n": 3, "steps": 5}));
    let mut r = fake(&g, 0, f64::NAN, None, None);
    r.curve.push(toyformer::sweep::run::CurvePoint {
        step: 5,
        train_loss: f64::NAN,
        algo_acc: 0.5,
        algo_loss: 1.0,
    });
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains("\"final_loss\":null"), "{text}");
    let back: RunResult = serde_json::from_str(&text).unwrap();
    assert!(back.final_loss.is_nan() && back.excess.is_nan() && back.curve[0].train_loss.is_nan());
    assert_eq!(back.spec, r.spec);
    let s = aggregate(&[back]);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v[0]["final_loss"],
        json!({"n": 0, "mean": null, "min": null, "max": null})
    );
}

#[test]
fn page_fragment_writes_every_key_in_the_pages_names() {
    let g = grid(
        json!({"task": "permutations", "n": 3, "holdout": 0.2, "n_layers": 2, "act_fn": "relu", "d_mlp": 64,
        "schedule": {"kind": "reduce_on_plateau", "patience": 100}, "beta2": 0.99, "batch_size": 4, "steps": 3100, "seed": 1}),
    );
    let q = toyformer::sweep::page_fragment(&g.expand().unwrap()[0]);
    assert_eq!(
        q,
        "#v=1&task=permutations&perm_n=3&holdout=0.2&split_seed=0&n_layers=2&n_heads=1&d_model=128&d_head=64&model_seed=1\
         &ln=true&mlp=true&d_mlp=64&act_fn=relu&steps=3100&batch_size=4&lr=0.001&schedule=reduce_on_plateau\
         &plateau_patience=100&plateau_factor=0.1&weight_decay=0.01&beta2=0.99&grad_clip=1&seed=1"
    );
}

#[test]
fn grids_set_catalogue_task_parameters() {
    // mod-add over p and frac_train: the task each run gets is the one its JSON names
    let runs = grid(json!({
        "task": "mod-add", "p": [7, 11], "frac_train": [0.3, 0.5], "steps": 5, "seed": [0, 1]
    }))
    .expand()
    .unwrap();
    assert_eq!(runs.len(), 8);
    for (i, r) in runs.iter().enumerate() {
        // frac_train comes before p in axis order (registry order: min-of-two, then mod-*)
        let (f, p) = ([0.3, 0.5][i / 4], [7, 11][(i / 2) % 2]);
        let want: TaskSpec =
            serde_json::from_str(&format!(r#"{{"task":"mod-add","p":{p},"frac_train":{f}}}"#))
                .unwrap();
        assert_eq!(r.task, want, "run {i}");
        assert_eq!((r.model.d_vocab, r.model.d_vocab_out), (p + 1, p));
        assert_eq!(r.config_index, i / 2);
        assert_eq!(r.label_text(), format!("frac_train={f} p={p}"));
        let split = r.task.finite().unwrap();
        assert_eq!(split.n_items, (p * p) as u64);
        assert_eq!(split.n_train, (f * (p * p) as f64).round() as u64);
    }
    // min-of-two over n, and induction over its own keys
    let runs = grid(json!({"task": "min-of-two", "n": [8, 16], "steps": 5}))
        .expand()
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.model.d_vocab).collect::<Vec<_>>(),
        vec![9, 17]
    );
    let runs = grid(json!({"task": "induction", "k": 4, "n_tokens": [10, 20], "steps": 5}))
        .expand()
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.task.seq_len()).collect::<Vec<_>>(),
        vec![9, 9]
    );
    assert_eq!(runs[1].label_text(), "n_tokens=20");
}

#[test]
fn bad_catalogue_task_parameters_name_the_key() {
    let e = grid_err(json!({"task": "sort", "p": 53}));
    assert!(
        e.contains("p") && e.contains("is not a parameter of the task sort"),
        "{e}"
    );
    let e = grid_err(json!({"task": "mod-add", "p": 0.5}));
    assert!(e.contains("p") && e.contains("whole number"), "{e}");
    let e = grid_err(json!({"task": "mod-add", "p": 1}));
    assert!(e.contains("p"), "{e}");
    let e = grid_err(json!({"task": "mod-sub", "frac_train": 1.5}));
    assert!(e.contains("frac_train"), "{e}");
    // a task axis whose tasks do not all have the parameter: the first run without it fails
    let e = grid_err(json!({"task": ["mod-add", "majority"], "p": 7}));
    assert!(e.contains("is not a parameter of the task majority"), "{e}");
}

#[test]
fn a_catalogue_grid_run_trains_on_its_finite_dataset() {
    let g = grid(json!({
        "task": "mod-add", "p": 7, "frac_train": 0.5, "d_model": 16, "d_head": 8,
        "steps": 20, "batch_size": 25, "lr": 0.003, "eval_samples": 24
    }));
    let runs = g.expand().unwrap();
    let r = run_one(&runs[0], &g.settings).unwrap();
    assert_eq!(r.steps_done, 20);
    assert!(r.final_loss.is_finite());
    assert!(
        r.eval.is_some() && r.eval_train_split.is_some(),
        "both sides evaluated"
    );
}
