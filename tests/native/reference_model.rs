//! Golden tests on a model trained by someone else: the seed-003 sorter from
//! ../shared/reference-models, whose logits were computed in float64 by an independent
//! implementation. Both file formats must load and reproduce them, and the model must
//! sort fresh samples of our sort task (proving the token ids match).

use toyformer::backend::Backend;
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::TaskSpec;
use toyformer::train::eval;

fn shared(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../shared/reference-models/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("cannot read {p}: {e} (CI must have ../shared beside the repo)"))
}

fn reference_logits() -> (Vec<u32>, Vec<f64>) {
    let v: serde_json::Value = serde_json::from_slice(&shared("sort_logits_example.json")).unwrap();
    let tokens = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let logits = v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    (tokens, logits)
}

#[test]
fn reference_logits_from_pt_and_safetensors() {
    let (tokens, want) = reference_logits();
    for file in [
        "sort_fixed_len_list_model.pt",
        "sort_fixed_len_list_model.safetensors",
    ] {
        let w = toyformer::io::load_weights(&shared(file), None).unwrap();
        let mut b = ReferenceBackend::for_inference(&w).unwrap();
        let got = b.logits(&tokens, 1).unwrap();
        // Logits reach ±2000; float32 against the float64 reference differs by ~1e-3.
        toyformer::compare::assert_close(file, &got, &want, 1e-2, 1e-4);
        // The CPU engine (hand-written kernels) against the same independent reference.
        let mut e =
            toyformer::cpu::CpuEngine::new(&w, toyformer::backend::AdamWConfig::default(), vec![])
                .unwrap();
        let got = e.logits(&tokens, 1).unwrap();
        toyformer::compare::assert_close(&format!("{file} (CPU engine)"), &got, &want, 1e-2, 1e-4);
    }
}

#[test]
fn reference_model_sorts_fresh_samples() {
    let w = toyformer::io::load_weights(&shared("sort_fixed_len_list_model.pt"), None).unwrap();
    let mut b = ReferenceBackend::for_inference(&w).unwrap();
    let task = TaskSpec::default_for("sort").unwrap();
    let rep = eval::evaluate(&mut b, &task, 0, 10_000, 1000).unwrap();
    eprintln!("reference model on 10k fresh samples: {rep:?}");
    assert!(rep.token_acc > 0.99, "token accuracy {}", rep.token_acc);
    assert!(rep.loss < 0.1, "loss {}", rep.loss);
    // greedy completion of a typed list
    let prompt = task.parse_prompt("42 17 26 14 26 35 20 24 0 13").unwrap();
    let out = eval::complete(&mut b, &task, &prompt).unwrap();
    assert_eq!(&out[12..], &[0, 13, 14, 17, 20, 24, 26, 26, 35, 42]);
}

#[test]
fn cache_has_tl_hook_names_and_valid_patterns() {
    use toyformer::reference::forward::CacheHooks;
    let (tokens, _) = reference_logits();
    let w = toyformer::io::load_weights(&shared("sort_fixed_len_list_model.safetensors"), None)
        .unwrap();
    let b = ReferenceBackend::for_inference(&w).unwrap();
    let mut h = CacheHooks::default();
    b.run_with_hooks(&tokens, 1, &mut h).unwrap();
    for k in [
        "hook_embed",
        "hook_pos_embed",
        "blocks.0.hook_resid_pre",
        "blocks.0.attn.hook_q",
        "blocks.0.attn.hook_pattern",
        "blocks.0.attn.hook_z",
        "blocks.0.attn.hook_result",
        "blocks.0.hook_attn_out",
        "blocks.0.hook_resid_post",
    ] {
        assert!(
            h.cache.contains_key(k),
            "missing {k}; have {:?}",
            h.cache.keys().collect::<Vec<_>>()
        );
    }
    let pat = h.cache["blocks.0.attn.hook_pattern"]
        .to_vec3::<f32>()
        .unwrap_or_else(|_| {
            h.cache["blocks.0.attn.hook_pattern"]
                .squeeze(0)
                .unwrap()
                .to_vec3::<f32>()
                .unwrap()
        });
    let pat = &pat[0]; // head 0: (T, T)
    for (q, row) in pat.iter().enumerate() {
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "row {q} sums to {s}");
        assert!(
            row[q + 1..].iter().all(|&x| x == 0.0),
            "row {q} attends to the future"
        );
    }
    // hook_result summed over heads + b_O equals hook_attn_out
    let r = h.cache["blocks.0.attn.hook_result"].sum(2).unwrap();
    let a = &h.cache["blocks.0.hook_attn_out"];
    let d = (r - a)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-3, "result sum differs from attn_out by {d}");
}
