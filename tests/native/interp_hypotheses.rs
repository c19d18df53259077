//! Task hypotheses (interp::hypotheses) on the shared collection models: the claims hold
//! for the models the README describes, and the attention evidence equals loops over the
//! plain-loop forward's patterns.
use crate::common;

use toyformer::interp::hypotheses;
use toyformer::interp::report::model_report_from;
use toyformer::tasks::TaskSpec;

fn run(
    file: &str,
    task: &str,
    samples: usize,
) -> (hypotheses::Hypothesis, Vec<u32>, toyformer::model::Weights) {
    let task = TaskSpec::default_for(task).unwrap();
    let w = toyformer::io::load_weights(&common::shared(file), None).unwrap();
    let w = task.fit_context(w).unwrap();
    let tokens = task.batch(0, toyformer::interp::ANALYSIS_STEP, samples);
    let cache = toyformer::interp::run_with_cache_weights(&w, &tokens, samples).unwrap();
    let rep = model_report_from(&w, &task, &cache).unwrap();
    (
        hypotheses::hypothesis(&w, &task, &rep, &cache).unwrap(),
        tokens,
        w,
    )
}

#[test]
fn majority_model_attends_evenly_and_copies() {
    let (h, tokens, w) = run("majority_element_model.pt", "majority", 40);
    assert!(h.holds(), "{h:?}");
    let (t, n, p) = (13, 10, 11);
    let (mut mass, mut even) = (0.0, 0.0);
    for seq in tokens.chunks(t) {
        let row = &common::forward(&w, seq).pattern[0][0][p];
        let m: f64 = (1..=n).map(|j| row[j]).sum();
        let ent: f64 = (1..=n).map(|j| row[j] / m).map(|q| -q * q.ln()).sum();
        mass += m / 40.0;
        even += ent / (n as f64).ln() / 40.0;
    }
    assert!((h.evidence[0].value - mass).abs() < 1e-4, "{h:?} {mass}");
    assert!((h.evidence[1].value - even).abs() < 1e-4, "{h:?} {even}");
}

#[test]
fn min_model_attends_to_the_smaller_operand() {
    let (h, tokens, w) = run("min_int_model.pt", "min-of-two", 40);
    assert!(h.holds(), "{h:?}");
    let mut att = 0.0;
    let mut count = 0;
    for seq in tokens.chunks(4) {
        let row = &common::forward(&w, &seq[..3]).pattern[0][0][2];
        let m = seq[0].min(seq[1]);
        let s: f64 = (0..2).filter(|&j| seq[j] == m).map(|j| row[j]).sum();
        att += s;
        count += 1;
    }
    assert!(
        (h.evidence[0].value - att / count as f64).abs() < 1e-4,
        "{h:?}"
    );
}

#[test]
fn modular_model_uses_key_frequencies() {
    let (h, _, _) = run("modular_subtraction_model.pt", "mod-sub", 8);
    assert!(h.holds(), "{h:?}");
    assert_eq!(h.evidence[0].value, 4.0);
    let lines = hypotheses::hypothesis_lines(&h).join("\n");
    assert!(
        lines.contains("[11, 17, 37, 44]") && lines.contains("holds"),
        "{lines}"
    );
}
