//! Bad configs give errors that name the field; nothing panics.

use toyformer::model::ModelConfig;
use toyformer::tasks::TaskSpec;
use toyformer::train::{check_compatible, Schedule, TrainConfig};

fn field_of(e: toyformer::Error) -> String {
    match e {
        toyformer::Error::Config { field, .. } => field,
        other => panic!("expected a config error, got {other}"),
    }
}

#[test]
fn model_config_fields_are_checked() {
    let ok = ModelConfig::sort_ref();
    ok.validate().unwrap();
    type Case = (&'static str, Box<dyn Fn(&mut ModelConfig)>);
    let cases: Vec<Case> = vec![
        ("n_layers", Box::new(|c| c.n_layers = 0)),
        ("n_heads", Box::new(|c| c.n_heads = 0)),
        ("d_model", Box::new(|c| c.d_model = 0)),
        ("d_head", Box::new(|c| c.d_head = 100_000)),
        ("n_ctx", Box::new(|c| c.n_ctx = 1025)),
        ("act_fn", Box::new(|c| c.d_mlp = Some(64))),
        ("d_model", Box::new(|c| c.d_model = 5000)),
        (
            "n_heads",
            Box::new(|c| {
                c.n_heads = 64;
                c.d_head = 4096
            }),
        ),
    ];
    for (field, f) in cases {
        let mut c = ok.clone();
        f(&mut c);
        assert_eq!(field_of(c.validate().unwrap_err()), field);
    }
}

#[test]
fn tl_json_parsing_reports_bad_fields() {
    let good = ModelConfig::sort_ref().to_tl_json();
    assert_eq!(
        ModelConfig::from_tl_json(&good).unwrap(),
        ModelConfig::sort_ref()
    );
    for (k, v, field) in [
        ("d_model", serde_json::json!(-3), "d_model"),
        ("n_layers", serde_json::json!("two"), "n_layers"),
        (
            "normalization_type",
            serde_json::json!("RMS"),
            "normalization_type",
        ),
        ("n_ctx", serde_json::json!(0), "n_ctx"),
    ] {
        let mut j = good.clone();
        j[k] = v;
        assert_eq!(field_of(ModelConfig::from_tl_json(&j).unwrap_err()), field);
    }
    let mut j = good.clone();
    j.as_object_mut().unwrap().remove("d_vocab");
    assert_eq!(
        field_of(ModelConfig::from_tl_json(&j).unwrap_err()),
        "d_vocab"
    );
    assert!(ModelConfig::from_tl_json(&serde_json::json!([1, 2])).is_err());
    let mut j = good.clone();
    j["attn_only"] = serde_json::json!(false);
    j["d_mlp"] = serde_json::json!(32);
    j["act_fn"] = serde_json::json!("swish");
    assert_eq!(
        field_of(ModelConfig::from_tl_json(&j).unwrap_err()),
        "act_fn"
    );
}

#[test]
fn train_config_fields_are_checked() {
    TrainConfig::default().validate().unwrap();
    let cases: Vec<(&str, TrainConfig)> = vec![
        (
            "batch_size",
            TrainConfig {
                batch_size: 0,
                ..Default::default()
            },
        ),
        (
            "lr",
            TrainConfig {
                lr: f64::NAN,
                ..Default::default()
            },
        ),
        (
            "lr",
            TrainConfig {
                lr: -1.0,
                ..Default::default()
            },
        ),
        (
            "beta2",
            TrainConfig {
                beta2: 1.0,
                ..Default::default()
            },
        ),
        (
            "grad_clip",
            TrainConfig {
                grad_clip: -0.5,
                ..Default::default()
            },
        ),
        (
            "weight_decay",
            TrainConfig {
                weight_decay: f64::INFINITY,
                ..Default::default()
            },
        ),
        (
            "warmup_steps",
            TrainConfig {
                steps: 10,
                schedule: Schedule::WarmupCosine {
                    warmup_steps: 11,
                    min_lr_frac: 0.1,
                },
                ..Default::default()
            },
        ),
    ];
    for (field, tc) in cases {
        assert_eq!(field_of(tc.validate().unwrap_err()), field);
    }
    // serde: partial JSON takes defaults, wrong types are errors
    let tc: TrainConfig = serde_json::from_str(r#"{"steps": 5}"#).unwrap();
    assert_eq!(tc.steps, 5);
    assert!(serde_json::from_str::<TrainConfig>(r#"{"lr": "fast"}"#).is_err());
}

#[test]
fn model_must_fit_the_task() {
    let sort = TaskSpec::default_for("sort").unwrap();
    check_compatible(&sort, &ModelConfig::sort_ref()).unwrap();
    let perm = TaskSpec::default_for("permutations").unwrap();
    assert_eq!(
        field_of(check_compatible(&perm, &ModelConfig::sort_ref()).unwrap_err()),
        "n_ctx"
    );
    let mut c = ModelConfig::sort_ref();
    c.d_vocab = 60;
    assert_eq!(
        field_of(check_compatible(&sort, &c).unwrap_err()),
        "d_vocab"
    );
}

#[test]
fn backend_rejects_out_of_vocab_and_overlong_tokens() {
    use toyformer::backend::Backend;
    let w = toyformer::model::Weights::init(&ModelConfig::sort_ref()).unwrap();
    let mut b = toyformer::reference::ReferenceBackend::for_inference(&w).unwrap();
    assert!(b
        .logits(&[0, 1, 52], 1)
        .unwrap_err()
        .to_string()
        .contains("52"));
    assert!(b
        .logits(&[0; 23], 1)
        .unwrap_err()
        .to_string()
        .contains("n_ctx"));
    assert!(b.logits(&[0, 1, 2], 2).is_err());
    assert!(b.logits(&[], 1).is_err());
}

#[test]
fn predicted_position_needs_its_target_inside_the_context() {
    use toyformer::backend::Backend;
    let w = toyformer::model::Weights::init(&ModelConfig::sort_ref()).unwrap();
    let tc = TrainConfig::default();
    // n_ctx 22: a scored position must be inside the context (21 is: a task may score its
    // last position, e.g. a label at END); 22 is outside
    assert!(toyformer::reference::ReferenceBackend::new(&w, &tc, vec![20]).is_ok());
    assert_eq!(
        field_of(
            toyformer::reference::ReferenceBackend::new(&w, &tc, vec![22])
                .err()
                .unwrap()
        ),
        "n_ctx"
    );
    // a next-token step at position 21 has its target at 22, outside the 22 tokens given
    let mut b = toyformer::reference::ReferenceBackend::new(&w, &tc, vec![21]).unwrap();
    assert_eq!(
        field_of(b.train_step(&[0; 22], 1, 1e-3, 0).unwrap_err()),
        "tokens"
    );
}
