//! Models in and out: the real TransformerLens model imports with its task guessed; an export
//! imports back bit-identically with its task and step; a wrong config names the tensor and
//! both shapes; exports are byte-deterministic; and what we export matches TransformerLens's
//! state-dict keys and shapes (from the real TL model) and HookedTransformerConfig's field
//! names (tests/fixtures/tl_config_fields.txt, transcribed from TL's source).

use std::collections::BTreeSet;
use std::path::PathBuf;
use toyformer::io::{load_weights, read_pt, read_safetensors, save_safetensors, tl_python_snippet};
use toyformer::model::config::{ActFn, ModelConfig, Norm};
use toyformer::model::params::Weights;
use toyformer::share::{guess_task, import_model, ConfigSource, TaskSource};
use toyformer::tasks::TaskSpec;
use toyformer::Error;

fn reference(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "shared",
        "reference-models",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("reference model {} is required: {e}", path.display()))
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// (HookedTransformerConfig fields, TL's SUPPORTED_ACTIVATIONS) from the fixture.
fn tl_fields() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = include_str!("../fixtures/tl_config_fields.txt");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let split = lines
        .iter()
        .position(|&l| l == "SUPPORTED_ACTIVATIONS")
        .unwrap();
    let set = |ls: &[&str]| ls.iter().map(|s| s.to_string()).collect();
    (set(&lines[..split]), set(&lines[split + 1..]))
}

#[test]
fn the_real_tl_model_imports_with_its_task_guessed() {
    for name in [
        "sort_fixed_len_list_model.pt",
        "sort_fixed_len_list_model.safetensors",
    ] {
        let m = import_model(&reference(name), None, None).unwrap();
        assert_eq!(m.weights.cfg, ModelConfig::sort_ref(), "{name}");
        assert_eq!(m.config_source, ConfigSource::Shapes);
        assert_eq!(m.task, TaskSpec::Sort { n: 10, max_num: 50 });
        assert_eq!(m.task_source, TaskSource::Guessed);
        assert_eq!(m.step, 0);
        // mask and IGNORE are TL buffers, not unexpected tensors
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        // independent: the first four W_E values read with Python's struct (see weights_io.rs)
        assert_eq!(
            bits(&m.weights.get("embed.W_E").unwrap()[..4]),
            [0xbdc58fbc_u32, 0xbe1c62f0, 0xbe28c8f2, 0xbd9e433d]
        );
    }
    // With a task selected that the model fits (a sort of 10 numbers below 50), that task is kept.
    let sel = TaskSpec::Sort { n: 10, max_num: 50 };
    let m = import_model(&reference("sort_fixed_len_list_model.pt"), None, Some(&sel)).unwrap();
    assert_eq!(m.task_source, TaskSource::Selected);
    // A selected task it does not fit is passed over for the guess.
    let m = import_model(
        &reference("sort_fixed_len_list_model.pt"),
        None,
        Some(&TaskSpec::permutations(3)),
    )
    .unwrap();
    assert_eq!((m.task, m.task_source), (sel, TaskSource::Guessed));
}

#[test]
fn a_tl_config_json_is_used_and_a_wrong_one_names_the_tensor_and_shapes() {
    let pt = reference("sort_fixed_len_list_model.pt");
    // The config as Python would dump it (extra TL fields are ignored).
    let good = r#"{"n_layers": 1, "d_model": 128, "n_ctx": 22, "d_head": 128, "n_heads": 1, "d_vocab": 52,
        "d_vocab_out": 50, "attn_only": true, "normalization_type": null, "act_fn": null, "d_mlp": null,
        "model_name": "custom", "positional_embedding_type": "standard", "seed": 398}"#;
    let m = import_model(&pt, Some(good), None).unwrap();
    assert_eq!(m.config_source, ConfigSource::ConfigJson);
    assert_eq!(m.weights.cfg.seed, 398);
    // d_head 64 with 2 heads: W_Q should be [2, 128, 64] but the file has [1, 128, 128]
    let wrong = good.replace(
        r#""d_head": 128, "n_heads": 1"#,
        r#""d_head": 64, "n_heads": 2"#,
    );
    let e = import_model(&pt, Some(&wrong), None).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "weights: tensor `blocks.0.attn.W_Q` has shape [1, 128, 128], expected [2, 128, 64]"
    );
    // LayerNorm in the config: the file has no ln1.w
    let ln = good.replace(
        r#""normalization_type": null"#,
        r#""normalization_type": "LN""#,
    );
    let e = import_model(&pt, Some(&ln), None).unwrap_err().to_string();
    assert_eq!(
        e,
        "weights: missing tensor `blocks.0.ln1.w` (expected shape [128])"
    );
    assert!(import_model(&pt, Some("{not json"), None)
        .unwrap_err()
        .to_string()
        .contains("not JSON"));
    // d_vocab 60 fits no task: the message says which sizes
    let odd = good.replace(r#""d_vocab": 52"#, r#""d_vocab": 60"#);
    let e = import_model(&pt, Some(&odd), None).unwrap_err().to_string();
    assert!(e.contains("embed.W_E") && e.contains("[60, 128]"), "{e}");
}

#[test]
fn an_export_imports_back_bit_identically_with_task_and_step() {
    let task = TaskSpec::ApplyPerm { k: 4, max_int: 9 };
    let mut cfg = task.default_model();
    cfg.n_layers = 2;
    cfg.n_heads = 2;
    cfg.d_model = 16;
    cfg.d_head = 8;
    cfg.d_mlp = Some(32);
    cfg.act_fn = Some(ActFn::GeluNew);
    cfg.normalization_type = Some(Norm::LN);
    cfg.seed = 5;
    let w = Weights::init(&cfg).unwrap();
    let meta = [
        (
            "toyformer_task".to_string(),
            serde_json::to_string(&task).unwrap(),
        ),
        ("toyformer_steps".to_string(), "250".to_string()),
    ];
    let bytes = save_safetensors(&w, &meta).unwrap();
    let m = import_model(&bytes, None, Some(&TaskSpec::Sort { n: 10, max_num: 50 })).unwrap();
    assert_eq!(m.config_source, ConfigSource::Metadata);
    assert_eq!(
        (m.task, m.task_source, m.step),
        (task, TaskSource::Metadata, 250)
    );
    assert_eq!(m.weights.cfg, cfg);
    assert_eq!(bits(&m.weights.data), bits(&w.data));
    // the activation came from the metadata, so there is no "assumed relu" note
    assert!(m.notes.is_empty());
    // without metadata (a plain TL state dict with an MLP) the activation is assumed, and said so
    let (ts, _) = read_safetensors(&bytes).unwrap();
    let plain = strip_metadata(&ts);
    let m = import_model(&plain, None, None).unwrap();
    assert_eq!(m.weights.cfg.act_fn, Some(ActFn::Relu));
    assert!(m.notes[0].contains("assumed relu"), "{:?}", m.notes);
    assert_eq!(
        m.task,
        TaskSpec::ApplyPerm { k: 4, max_int: 9 },
        "guessed from d_vocab = d_vocab_out + 3 and n_ctx = 3k + 3"
    );
}

/// A safetensors file of these tensors with no metadata, written with the `safetensors` crate.
fn strip_metadata(ts: &[toyformer::io::NamedTensor]) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = ts
        .iter()
        .map(|t| t.data.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = ts
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            (
                t.name.clone(),
                TensorView::new(Dtype::F32, t.shape.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize(views, None).unwrap()
}

#[test]
fn task_guess_covers_every_task_and_explains_a_miss() {
    for task in [
        TaskSpec::Sort { n: 7, max_num: 20 },
        TaskSpec::ApplyPerm { k: 5, max_int: 30 },
        TaskSpec::permutations(1),
        TaskSpec::permutations(4),
    ] {
        let w = toyformer::model::Weights::init(&task.default_model()).unwrap();
        let (got, source, candidates) = guess_task(&w, None).unwrap();
        assert_eq!((got, source), (task.clone(), TaskSource::Guessed));
        assert_eq!(candidates.len(), 1);
    }
    let mut c = ModelConfig::sort_ref();
    c.n_ctx = 23;
    c.d_vocab = 60;
    let w = toyformer::model::Weights::init(&c).unwrap();
    let e = guess_task(&w, None).unwrap_err().to_string();
    assert!(
        e.contains("d_vocab 60, d_vocab_out 50, n_ctx 23") && e.contains("no task fits"),
        "{e}"
    );
}

#[test]
fn exports_are_byte_deterministic_and_readable_by_the_safetensors_crate() {
    let w = load_weights(&reference("sort_fixed_len_list_model.pt"), None).unwrap();
    let meta = [
        ("toyformer_task".to_string(), "{}".to_string()),
        ("a".to_string(), "1".to_string()),
    ];
    let a = save_safetensors(&w, &meta).unwrap();
    let b = save_safetensors(&w.clone(), &meta).unwrap();
    assert_eq!(a, b);
    let n = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "header padded to 8 bytes");
    let st = safetensors::SafeTensors::deserialize(&a).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&a[8..8 + n]).unwrap();
    for p in &w.table.params {
        let v = st.tensor(&p.name).unwrap();
        assert_eq!(v.shape(), p.shape.as_slice());
        assert_eq!(
            bits(
                &v.data()
                    .chunks(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<_>>()
            ),
            bits(w.get(&p.name).unwrap())
        );
        // tensors lie in table order
        assert_eq!(
            header[&p.name]["data_offsets"],
            serde_json::json!([4 * p.offset, 4 * (p.offset + p.len)])
        );
    }
    let keys: Vec<&String> = header["__metadata__"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "a",
            "format",
            "tl_config",
            "toyformer_config",
            "toyformer_task"
        ]
    );
}

#[test]
fn exports_match_transformerlens_keys_shapes_and_config_fields() {
    let (fields, activations) = tl_fields();
    // The real TL model's state dict: every key we write is there with the same shape, and
    // every TL key we do not write is a buffer (mask, IGNORE) TL rebuilds itself.
    let tl = read_pt(&reference("sort_fixed_len_list_model.pt")).unwrap();
    let tl_st = read_safetensors(&reference("sort_fixed_len_list_model.safetensors"))
        .unwrap()
        .0;
    let w = Weights::init(&ModelConfig::sort_ref()).unwrap();
    let ours = read_safetensors(&save_safetensors(&w, &[]).unwrap())
        .unwrap()
        .0;
    let ours_keys: BTreeSet<&str> = ours.iter().map(|t| t.name.as_str()).collect();
    for t in &ours {
        let theirs = tl
            .iter()
            .find(|x| x.name == t.name)
            .unwrap_or_else(|| panic!("TL has no `{}`", t.name));
        assert_eq!(t.shape, theirs.shape, "{}", t.name);
    }
    let tl_only: BTreeSet<&str> = tl_st
        .iter()
        .map(|t| t.name.as_str())
        .filter(|k| !ours_keys.contains(k))
        .collect();
    assert_eq!(
        tl_only,
        BTreeSet::from(["blocks.0.attn.IGNORE", "blocks.0.attn.mask"])
    );

    // Config JSON: only HookedTransformerConfig fields, with TL's meaning for each default we
    // depend on: normalization_type must be written (TL's default is "LN"), n_heads and
    // d_vocab_out too (TL would derive them), attn_only decides whether d_mlp is used.
    let configs = [
        ModelConfig::sort_ref(),
        TaskSpec::permutations(4).default_model(),
        {
            let mut c = ModelConfig::sort_ref();
            c.d_mlp = Some(512);
            c.act_fn = Some(ActFn::Gelu);
            c
        },
    ];
    for c in &configs {
        let j = c.to_tl_json();
        let obj = j.as_object().unwrap();
        for k in obj.keys() {
            assert!(
                fields.contains(k),
                "`{k}` is not a HookedTransformerConfig field"
            );
        }
        for k in [
            "n_layers",
            "d_model",
            "n_ctx",
            "d_head",
            "n_heads",
            "d_vocab",
            "d_vocab_out",
            "normalization_type",
            "attn_only",
            "act_fn",
            "d_mlp",
        ] {
            assert!(obj.contains_key(k), "{k} must be explicit");
        }
        assert_eq!(obj["attn_only"], c.d_mlp.is_none());
        assert_eq!(
            obj["normalization_type"],
            serde_json::json!(c.normalization_type.map(|_| "LN"))
        );
        if let Some(a) = obj["act_fn"].as_str() {
            assert!(activations.contains(a), "TL does not accept act_fn {a}");
        }
        assert_eq!(&ModelConfig::from_tl_json(&j).unwrap(), c);
    }
    // relu, gelu and gelu_new export as TL accepts them; plain solu has no TL equivalent
    // (TL only has solu_ln), which the page says when such a model is exported.
    for a in [ActFn::Relu, ActFn::Gelu, ActFn::GeluNew] {
        assert!(activations.contains(a.as_str()));
    }
    assert!(!activations.contains(ActFn::Solu.as_str()));

    // The Python snippet loads the config with HookedTransformerConfig(**...) and the state
    // dict non-strictly (our files leave out mask / IGNORE).
    let py = tl_python_snippet("m.safetensors", "m.json");
    assert!(
        py.contains("HookedTransformer(HookedTransformerConfig(**json.load(open(\"m.json\"))))"),
        "{py}"
    );
    assert!(
        py.contains("model.load_state_dict(load_file(\"m.safetensors\"), strict=False)"),
        "{py}"
    );
}

#[test]
fn previous_token_and_palindrome_state_dicts_are_proposed_their_task() {
    for name in ["previous-token", "arena-palindromes"] {
        let task = TaskSpec::default_for(name).unwrap();
        let w = Weights::init(&task.default_model()).unwrap();
        let (ts, _) = read_safetensors(&save_safetensors(&w, &[]).unwrap()).unwrap();
        let m = import_model(&strip_metadata(&ts), None, None).unwrap();
        assert_eq!((m.task.name(), m.task_source), (name, TaskSource::Guessed));
        let (a, b) = (&m.weights.cfg, &w.cfg);
        assert_eq!(
            (
                a.positional_embedding_type,
                a.n_ctx,
                a.d_vocab,
                a.d_vocab_out
            ),
            (
                b.positional_embedding_type,
                b.n_ctx,
                b.d_vocab,
                b.d_vocab_out
            ),
            "{name}"
        );
        let pos = if name == "previous-token" {
            "off"
        } else {
            "standard"
        };
        assert!(
            m.assumed[0].starts_with(&format!("positional_embedding_type: {pos}")),
            "{name}: {:?}",
            m.assumed
        );
    }
}
