//! TransformerLens 4.x's state-dict format (`TransformerBridge.state_dict()`): models that TL 4.3
//! built and saved itself (tests/fixtures/tl4/, made by make_fixture.py there) import by every
//! route and compute TL's logits; wrong or missing bridge tensors are errors naming the 4.x key;
//! the converter is exactly inverted by its reverse and never panics on odd shapes.

use toyformer::interp::run_with_cache_weights;
use toyformer::io::{
    bridge_to_tl, is_bridge_format, load_weights, read_tensors, tl_python, tl_to_bridge,
    weights_from_tensors, NamedTensor, TlVersion,
};
use toyformer::model::{ActFn, ModelConfig, Norm, Weights};
use toyformer::share::{import_model, ConfigSource};
use toyformer::tasks::rng::CounterRng;
use toyformer::Error;

fn fixture(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/tl4/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Our logits for the fixture's tokens against TL 4.x's, max |Δ| / max |TL|.
fn relative_logit_error(w: &Weights, logits_json: &str) -> f64 {
    let doc: serde_json::Value = serde_json::from_slice(&fixture(logits_json)).unwrap();
    let rows: Vec<Vec<u32>> = serde_json::from_value(doc["tokens"].clone()).unwrap();
    let theirs: Vec<f64> = serde_json::from_value(doc["logits"].clone()).unwrap();
    let ours = run_with_cache_weights(w, &rows.concat(), rows.len())
        .unwrap()
        .logits
        .data;
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = ours
        .iter()
        .zip(&theirs)
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
    diff / scale
}

fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

#[test]
fn tl4_pt_with_config_json_imports_and_computes_tls_logits() {
    let bytes = fixture("mlp_ln.pt");
    let (tensors, _) = read_tensors(&bytes).unwrap();
    assert!(is_bridge_format(&tensors));
    assert!(tensors.iter().any(|t| t.name == "blocks.1.attn.q.weight"));
    let im = import_model(&bytes, Some(&text("mlp_ln.json")), None).unwrap();
    assert_eq!(im.config_source, ConfigSource::ConfigJson);
    let c = &im.weights.cfg;
    assert_eq!(
        (c.n_layers, c.n_heads, c.d_model, c.d_head, c.d_mlp, c.act_fn),
        (2, 2, 8, 3, Some(16), Some(ActFn::Gelu))
    );
    assert_eq!(c.normalization_type, Some(Norm::LN));
    assert!(im.notes.is_empty(), "{:?}", im.notes);
    let rel = relative_logit_error(&im.weights, "mlp_ln.logits.json");
    assert!(rel < 1e-4, "relative logit error {rel:e}");
    // the same through load_weights with the config given
    let again = load_weights(&bytes, Some(c)).unwrap();
    assert_eq!(again.data, im.weights.data);
}

#[test]
fn tl4_safetensors_with_metadata_config_imports_alone() {
    // as from a URL or a drop without a config JSON: the config is the metadata's tl_config
    let im = import_model(&fixture("attn.safetensors"), None, None).unwrap();
    assert_eq!(im.config_source, ConfigSource::Metadata);
    assert_eq!((im.weights.cfg.n_heads, im.weights.cfg.d_head), (3, 4));
    assert!(im.weights.cfg.attn_only());
    let rel = relative_logit_error(&im.weights, "attn.logits.json");
    assert!(rel < 1e-4, "relative logit error {rel:e}");
}

#[test]
fn converter_matches_tls_layout_exactly() {
    // TL 4.x's own tensors -> our 3.x layout -> back to 4.x: bit-identical to what TL saved
    let (tensors, _) = read_tensors(&fixture("mlp_ln.pt")).unwrap();
    let cfg =
        ModelConfig::from_tl_json(&serde_json::from_str(&text("mlp_ln.json")).unwrap()).unwrap();
    let back = tl_to_bridge(&bridge_to_tl(&tensors, &cfg).unwrap(), &cfg);
    assert_eq!(back.len(), tensors.len());
    for t in &tensors {
        let b = back.iter().find(|b| b.name == t.name).expect(&t.name);
        assert_eq!((&b.shape, &b.data), (&t.shape, &t.data), "{}", t.name);
    }
    // and one entry checked by hand: W_Q[h, c, d] = q.weight[h·d_head + d, c]
    let w = weights_from_tensors(&tensors, &cfg).unwrap();
    let q = tensors
        .iter()
        .find(|t| t.name == "blocks.1.attn.q.weight")
        .unwrap();
    let wq = w.get("blocks.1.attn.W_Q").unwrap(); // (NH 2, C 8, HS 3)
    let (h, c, d) = (1, 5, 2);
    assert_eq!(wq[(h * 8 + c) * 3 + d], q.data[(h * 3 + d) * 8 + c]);
}

fn edited(f: impl Fn(&mut Vec<NamedTensor>)) -> (Vec<NamedTensor>, ModelConfig) {
    let (mut tensors, _) = read_tensors(&fixture("mlp_ln.pt")).unwrap();
    f(&mut tensors);
    let cfg =
        ModelConfig::from_tl_json(&serde_json::from_str(&text("mlp_ln.json")).unwrap()).unwrap();
    (tensors, cfg)
}

#[test]
fn bridge_errors_name_the_4x_tensor() {
    let (t, cfg) = edited(|t| t.retain(|x| x.name != "blocks.1.mlp.in.weight"));
    match weights_from_tensors(&t, &cfg).unwrap_err() {
        Error::MissingTensor { name, expected } => {
            assert_eq!(
                (name.as_str(), expected),
                ("blocks.1.mlp.in.weight", vec![16, 8])
            )
        }
        e => panic!("{e}"),
    }
    let (t, cfg) = edited(|t| {
        let q = t
            .iter_mut()
            .find(|x| x.name == "blocks.0.attn.q.weight")
            .unwrap();
        q.shape = vec![8, 6]; // transposed
    });
    let msg = weights_from_tensors(&t, &cfg).unwrap_err().to_string();
    assert_eq!(
        msg,
        "weights: tensor `blocks.0.attn.q.weight` has shape [8, 6], expected [6, 8]"
    );
    // a missing bias is zeros, as for 3.x files
    let (t, cfg) = edited(|t| t.retain(|x| x.name != "unembed.bias"));
    let w = weights_from_tensors(&t, &cfg).unwrap();
    assert!(w.get("unembed.b_U").unwrap().iter().all(|&x| x == 0.0));
    // an extra tensor is reported by import_model's notes path
    let (mut t, cfg) = edited(|_| {});
    t.push(NamedTensor {
        name: "blocks.2.attn.q.weight".into(),
        shape: vec![6, 8],
        data: vec![0.0; 48],
    });
    assert_eq!(
        toyformer::io::unexpected_tensors(&t, &cfg),
        vec!["blocks.2.attn.q.weight".to_string()]
    );
}

#[test]
fn bridge_without_any_config_says_to_load_one() {
    let err = import_model(&fixture("mlp_ln.pt"), None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("TransformerLens 4.x"), "{err}");
    assert!(
        err.contains("`blocks.0.attn.q.weight` has shape [6, 8]"),
        "{err}"
    );
    assert!(err.contains("config JSON"), "{err}");
}

#[test]
fn converter_round_trips_and_never_panics() {
    let mut rng = CounterRng::new(17, 0, 0);
    for i in 0..40 {
        let nh = 1 + rng.below(3) as usize;
        let cfg = ModelConfig {
            n_layers: 1 + rng.below(2) as usize,
            n_heads: nh,
            d_model: 2 + rng.below(6) as usize,
            d_head: 1 + rng.below(4) as usize,
            d_mlp: (i % 2 == 0).then_some(3),
            act_fn: (i % 2 == 0).then_some(ActFn::Relu),
            normalization_type: (i % 3 == 0).then_some(Norm::LN),
            n_ctx: 4,
            d_vocab: 5,
            d_vocab_out: 3,
            seed: i,
            train_biases: true,
            positional_embedding_type: Default::default(),
        };
        let w = Weights::init(&cfg).unwrap();
        let tl: Vec<NamedTensor> = w
            .table
            .params
            .iter()
            .map(|p| NamedTensor {
                name: p.name.clone(),
                shape: p.shape.clone(),
                data: w.get(&p.name).unwrap().to_vec(),
            })
            .collect();
        let bridge = tl_to_bridge(&tl, &cfg);
        assert!(is_bridge_format(&bridge));
        assert_eq!(
            weights_from_tensors(&bridge, &cfg).unwrap().data,
            w.data,
            "{cfg:?}"
        );
        // random shape damage: an error or a model, never a panic
        let mut bad = bridge.clone();
        let k = rng.below(bad.len() as u64) as usize;
        bad[k].shape = vec![rng.below(9) as usize; 1 + rng.below(3) as usize];
        let _ = weights_from_tensors(&bad, &cfg);
        let _ = toyformer::io::infer_config(&bad);
    }
}

#[test]
fn python_lines_name_both_versions() {
    let v4 = tl_python(TlVersion::V4, "m.safetensors", "m.json");
    assert!(
        v4.starts_with("# TransformerLens 4.x (pip install \"transformer_lens>=4\")"),
        "{v4}"
    );
    for line in [
        "cfg = TransformerBridgeConfig(**json.load(open(\"m.json\")))",
        "model = TransformerBridge.boot_native(cfg)",
        "model.load_state_dict(convert_tl_checkpoint(load_file(\"m.safetensors\"), cfg), strict=True)",
    ] {
        assert!(v4.contains(line), "{v4}");
    }
    let v3 = tl_python(TlVersion::V3, "m.safetensors", "m.json");
    assert!(v3.starts_with("# TransformerLens 3.x"), "{v3}");
    assert!(
        v3.contains("HookedTransformer(HookedTransformerConfig("),
        "{v3}"
    );
}
