//! The exported notebook, without Python: valid nbformat 4.5 JSON (the schema's required
//! fields), no outputs, the expected cells in order, byte-deterministic, the embedded weights
//! decode (with an independent base64 decoder) to the exported model, the numbers it embeds
//! are the task's sequences, and bad options are clear errors. Running it is
//! `pkg-config/tl-check.py notebook` (TransformerLens 4.x, not part of make test).

use std::collections::HashSet;
use toyformer::io::load_weights;
use toyformer::model::{ActFn, ModelConfig, Norm, Weights};
use toyformer::notebook::{export_notebook, NotebookOptions};
use toyformer::tasks::TaskSpec;

fn model(ln: bool) -> (Weights, TaskSpec) {
    let task = TaskSpec::Sort { n: 3, max_num: 6 };
    let mut cfg = ModelConfig {
        n_layers: 2,
        n_heads: 2,
        d_model: 8,
        d_head: 4,
        d_mlp: Some(16),
        act_fn: Some(ActFn::GeluNew),
        normalization_type: None,
        n_ctx: task.seq_len(),
        d_vocab: task.d_vocab(),
        d_vocab_out: task.d_vocab_out(),
        seed: 3,
        train_biases: false,
        positional_embedding_type: Default::default(),
    };
    if ln {
        cfg.normalization_type = Some(Norm::LN);
    }
    (Weights::init(&cfg).unwrap(), task)
}

fn opts() -> NotebookOptions {
    NotebookOptions {
        input: "5 0 3".into(),
        samples: 8,
        fresh_samples: 16,
        step: 42,
        ..NotebookOptions::default()
    }
}

fn source(cell: &serde_json::Value) -> String {
    let parts = cell["source"]
        .as_array()
        .expect("source is a list of lines");
    let lines: Vec<&str> = parts
        .iter()
        .map(|l| l.as_str().expect("a line is a string"))
        .collect();
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.ends_with('\n'),
            "every line but the last ends in a newline: {l:?}"
        );
    }
    lines.concat()
}

/// Standard base64 (with padding), written here independently of the crate.
fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let pad = quad.iter().filter(|&&c| c == b'=').count();
        let n = quad
            .iter()
            .map(|&c| if c == b'=' { 0 } else { val(c) as u32 })
            .fold(0u32, |a, v| a << 6 | v);
        out.extend(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

#[test]
fn notebook_is_nbformat_with_the_expected_cells() {
    let (w, task) = model(true);
    let text = export_notebook(&w, &task, &opts()).unwrap();
    let nb: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (nb["nbformat"].as_u64(), nb["nbformat_minor"].as_u64()),
        (Some(4), Some(5))
    );
    assert_eq!(nb["metadata"]["kernelspec"]["language"], "python");
    let cells = nb["cells"].as_array().unwrap();
    let mut ids = HashSet::new();
    let mut headings = Vec::new();
    for c in cells {
        let id = c["id"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "cell ids are unique");
        assert!(!id.is_empty() && id.len() <= 64);
        assert!(id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert!(c["metadata"].is_object());
        match c["cell_type"].as_str().unwrap() {
            "code" => {
                assert_eq!(c["outputs"], serde_json::json!([]), "no outputs");
                assert!(c["execution_count"].is_null());
            }
            "markdown" => {
                assert!(c.get("outputs").is_none());
                headings.push(source(c).lines().next().unwrap().to_string());
            }
            other => panic!("cell type {other}"),
        }
    }
    assert_eq!(
        headings,
        [
            "# toyformer analysis in TransformerLens",
            "## The weights",
            "## The task: sort",
            "## Accuracy",
            "## Attention patterns",
            "## Processed weights",
            "## Full QK and OV circuits",
            "## Attention to the answer",
            "## Direct logit attribution",
            "## Composition",
            "## Not reproduced here",
        ]
    );
    let code: String = cells
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(source)
        .collect();
    for needle in [
        "TransformerBridge.boot_native(cfg)",
        "convert_tl_checkpoint(state_dict, cfg), strict=True",
        "def make_batch(rng, batch):",
        "def answer_sources(tokens, p):",
        "hook_pattern",
        "torch.linalg.eigvals",
        "check(\"DLA total",
        "all_composition_scores(kind)",
    ] {
        assert!(code.contains(needle), "{needle}");
    }
    assert!(text.contains("trained on **sort** for 42 steps"));
}

#[test]
fn notebook_embeds_the_model_and_the_pages_sequences() {
    let (w, task) = model(false);
    let text = export_notebook(&w, &task, &opts()).unwrap();
    assert_eq!(
        text,
        export_notebook(&w, &task, &opts()).unwrap(),
        "byte-deterministic"
    );
    let nb: serde_json::Value = serde_json::from_str(&text).unwrap();
    let code: String = nb["cells"].as_array().unwrap().iter().map(source).collect();
    let start = code.find("WEIGHTS = \"").unwrap() + "WEIGHTS = \"".len();
    let b64 = &code[start..start + code[start..].find('"').unwrap()];
    assert_eq!(load_weights(&b64decode(b64), None).unwrap(), w);

    let at =
        code.find("TOYFORMER = json.loads(r'''").unwrap() + "TOYFORMER = json.loads(r'''".len();
    let nums: serde_json::Value =
        serde_json::from_str(&code[at..at + code[at..].find("'''").unwrap()]).unwrap();
    // the input "5 0 3" is [BOS, 5, 0, 3, MID, 0, 3, 5]
    assert_eq!(
        nums["input_tokens"],
        serde_json::json!([6, 5, 0, 3, 7, 0, 3, 5])
    );
    let rows: Vec<Vec<u32>> = serde_json::from_value(nums["analysis_tokens"].clone()).unwrap();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        // each row is a sorted copy of its list, between BOS and MID
        let mut list = r[1..4].to_vec();
        list.sort_unstable();
        assert_eq!((r[0], r[4], &r[5..]), (6, 7, &list[..]));
    }
    let heads = nums["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 4);
    for kind in ["q", "k", "v"] {
        // [L][NH][L][NH] = 2·2·2·2, zero unless the second head is in a later layer
        let c = nums["composition"][kind].as_array().unwrap();
        assert_eq!(c.len(), 16);
        assert!(
            c[2].as_f64().unwrap() > 0.0 && c[1].as_f64() == Some(0.0),
            "{kind}: {c:?}"
        );
    }
    let dla = nums["dla"].as_object().unwrap();
    let sum: f64 = dla.values().map(|v| v.as_f64().unwrap()).sum();
    let logit = nums["dla_logit"].as_f64().unwrap();
    assert!(
        (sum - logit).abs() < 1e-3 * logit.abs().max(1.0),
        "{sum} vs {logit}"
    );
}

#[test]
fn weights_beside_and_bad_options() {
    let (w, task) = model(false);
    let o = NotebookOptions {
        weights_file: Some("m \"x\".safetensors".into()),
        ..opts()
    };
    let text = export_notebook(&w, &task, &o).unwrap();
    assert!(!text.contains("WEIGHTS = "));
    // the Python string literal is JSON-escaped inside the JSON notebook
    assert!(
        text.contains(r#"load_file(\"m \\\"x\\\".safetensors\")"#),
        "{text}"
    );

    let bad_input = NotebookOptions {
        input: "1 2".into(),
        ..opts()
    };
    let msg = export_notebook(&w, &task, &bad_input)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("expected 3 numbers"), "{msg}");
    let other = TaskSpec::Sort { n: 5, max_num: 6 };
    assert!(export_notebook(&w, &other, &opts()).is_err());
    let none = NotebookOptions {
        fresh_samples: 0,
        ..opts()
    };
    assert!(export_notebook(&w, &task, &none)
        .unwrap_err()
        .to_string()
        .contains("fresh_samples"));
}
