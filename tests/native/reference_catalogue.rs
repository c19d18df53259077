//! The three collection models of ../shared/reference-models added for the task catalogue
//! (majority element, min of two ints, modular subtraction): their logits against the
//! float64 logits of an independent implementation, and their accuracy on our tasks,
//! named by `--task` alone, against the README's figures.

use toyformer::backend::Backend;
use toyformer::model::Weights;
use toyformer::reference::ReferenceBackend as CpuBackend; // reference backend
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::eval;

fn shared(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../shared/reference-models/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"))
}

/// The model of `file`, fitted to the task's context.
fn model(file: &str, task: &TaskSpec) -> Weights {
    let w = toyformer::io::load_weights(&shared(file), None).unwrap();
    task.fit_context(w).unwrap()
}

/// Every example of `file`: (tokens, scored positions, float64 logits (P, V) flat).
fn examples(file: &str) -> Vec<(Vec<u32>, Vec<usize>, Vec<f64>)> {
    let v: serde_json::Value = serde_json::from_slice(&shared(file)).unwrap();
    let nums = |x: &serde_json::Value| -> Vec<f64> {
        let mut out = Vec::new();
        let mut stack = vec![x];
        while let Some(x) = stack.pop() {
            match x {
                serde_json::Value::Array(a) => stack.extend(a.iter().rev()),
                _ => out.push(x.as_f64().unwrap()),
            }
        }
        out
    };
    v["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let tokens = nums(&e["tokens"]).iter().map(|&x| x as u32).collect();
            let pos = nums(&e["scored_positions"])
                .iter()
                .map(|&x| x as usize)
                .collect();
            (tokens, pos, nums(&e["logits_f64"]))
        })
        .collect()
}

fn check_logits(pt: &str, json: &str, task: &str) {
    let task = TaskSpec::default_for(task).unwrap();
    let w = model(pt, &task);
    let t = task.seq_len();
    let mut reference = CpuBackend::for_inference(&w).unwrap(); // reference backend
    let mut engine = toyformer::cpu::CpuEngine::new(&w, &Default::default(), vec![]).unwrap();
    for (tokens, pos, want) in examples(json) {
        assert_eq!(pos, task.pred_positions(), "{pt}");
        // the task's sequence: the example's tokens, then the answer slot (any id: it is
        // after every scored position)
        let mut seq = tokens.clone();
        seq.resize(t, 0);
        for (name, b) in [
            ("reference", &mut reference as &mut dyn Backend),
            ("cpu", &mut engine),
        ] {
            let all = b.logits(&seq, 1).unwrap(); // (1, T, V)
            let v = all.len() / t;
            let got: Vec<f32> = pos
                .iter()
                .flat_map(|&p| all[p * v..(p + 1) * v].to_vec())
                .collect();
            toyformer::compare::assert_close(&format!("{pt} ({name})"), &got, &want, 1e-2, 1e-4);
        }
    }
}

#[test]
fn collection_logits_match_the_float64_references() {
    check_logits(
        "majority_element_model.pt",
        "majority_element_logits_example.json",
        "majority",
    );
    check_logits(
        "min_int_model.pt",
        "min_int_logits_example.json",
        "min-of-two",
    );
    check_logits(
        "modular_subtraction_model.pt",
        "modular_subtraction_logits_example.json",
        "mod-sub",
    );
}

/// Accuracy over a finite dataset's every item (both splits, each item once).
fn full_accuracy(b: &mut dyn Backend, task: &TaskSpec) -> f64 {
    let fs = task.finite().unwrap();
    let mut correct = 0.0;
    for (split, n) in [(Split::Train, fs.n_train), (Split::HeldOut, fs.n_test())] {
        let n = n as usize;
        let rep = eval::evaluate_split(b, task, 0, n, n, split).unwrap();
        correct += rep.token_acc * n as f64;
    }
    correct / fs.n_items as f64
}

#[test]
fn collection_models_reach_their_readme_accuracy_on_our_tasks() {
    let task = TaskSpec::default_for("majority").unwrap();
    let mut b = CpuBackend::for_inference(&model("majority_element_model.pt", &task)).unwrap();
    let rep = eval::evaluate(&mut b, &task, 0, 4000, 1000).unwrap();
    eprintln!("majority: {rep:?}");
    assert!(rep.token_acc >= 1.0, "majority accuracy {}", rep.token_acc);

    let task = TaskSpec::default_for("min-of-two").unwrap();
    let mut b = CpuBackend::for_inference(&model("min_int_model.pt", &task)).unwrap();
    let acc = full_accuracy(&mut b, &task);
    eprintln!("min-of-two: {acc}");
    assert!(
        acc >= 0.99965,
        "min-of-two accuracy {acc} over all 40,000 pairs"
    );

    let task = TaskSpec::default_for("mod-sub").unwrap();
    let mut b = CpuBackend::for_inference(&model("modular_subtraction_model.pt", &task)).unwrap();
    let acc = full_accuracy(&mut b, &task);
    eprintln!("mod-sub: {acc}");
    assert!(acc >= 1.0, "mod-sub accuracy {acc} over all 12,769 pairs");
}

/// Dropped on the page with no config, each collection model is proposed its task by
/// evaluation (sort over array-index, which has the same vocabulary; mod-sub over mod-add,
/// which has the same sizes), and the fields its shapes cannot show are listed.
#[test]
fn collection_models_import_with_their_task_proposed() {
    use toyformer::share::{import_model, TaskSource};
    for (file, want, others) in [
        ("sort_fixed_len_list_model.pt", "sort", &["array-index"][..]),
        ("majority_element_model.pt", "majority", &[][..]),
        ("min_int_model.pt", "min-of-two", &[][..]),
        ("modular_subtraction_model.pt", "mod-sub", &["mod-add"][..]),
    ] {
        let m = import_model(&shared(file), None, None).unwrap();
        assert_eq!(
            (m.task.name(), m.task_source),
            (want, TaskSource::Guessed),
            "{file}"
        );
        let names: Vec<&str> = m.candidates.iter().map(|c| c.task.name()).collect();
        assert_eq!(names[0], want);
        for o in others {
            assert!(names.contains(o), "{file}: {names:?}");
        }
        assert!(
            m.candidates[0].token_acc > 0.9,
            "{file}: {:?}",
            m.candidates
        );
        assert!(m.candidates[1..]
            .iter()
            .all(|c| c.token_acc < m.candidates[0].token_acc));
        assert!(m.assumed[0].contains("positional_embedding_type"));
        assert_eq!(m.weights.cfg.n_ctx, m.task.seq_len());
    }
    let m = import_model(&shared("modular_subtraction_model.pt"), None, None).unwrap();
    assert!(
        m.assumed.iter().any(|a| a.contains("act_fn: relu")),
        "{:?}",
        m.assumed
    );
    // a config JSON's task field wins over the proposal
    let cfg = r#"{"n_layers":1,"n_heads":2,"d_model":128,"d_head":64,"d_mlp":512,"act_fn":"relu",
        "n_ctx":3,"d_vocab":114,"d_vocab_out":113,"task":"mod-add"}"#;
    let m = import_model(&shared("modular_subtraction_model.pt"), Some(cfg), None).unwrap();
    assert_eq!(
        (m.task.name(), m.task_source),
        ("mod-add", TaskSource::ConfigJson)
    );
    assert!(m.assumed.is_empty() && m.candidates.is_empty());
}

/// The collection's two-layer MLP for modular addition is a state dict of W_E, W_in and
/// W_U only: one error saying what was found and what was expected.
#[test]
fn a_state_dict_of_another_family_gets_one_clear_error() {
    use safetensors::tensor::{Dtype, TensorView};
    let data = vec![0u8; 4 * 6];
    let views: Vec<(String, TensorView)> = ["W_E", "W_in", "W_U"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                TensorView::new(Dtype::F32, vec![2, 3], &data).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::tensor::serialize(views, None).unwrap();
    let e = toyformer::share::import_model(&bytes, None, None)
        .unwrap_err()
        .to_string();
    for want in [
        "W_E",
        "W_in",
        "W_U",
        "3 tensor(s)",
        "expected embed.W_E",
        "not a TransformerLens",
    ] {
        assert!(e.contains(want), "{e}");
    }
}
