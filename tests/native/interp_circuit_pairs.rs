//! Typed clean/corrupted pairs for circuit analyses (src/interp/circuit_pairs.rs): the typed
//! text becomes the sequences a plain construction from the vocabulary gives; every kind of bad
//! text is an error naming the input and what is wrong; and the logit-difference metric on
//! pairs whose answers never differ explains what to choose instead.

use candle_core::DType;
use toyformer::interp::circuit_metric::{
    default_pairs, CircuitMetric, CircuitSetup, EdgeAblation, Pairs,
};
use toyformer::interp::circuit_pairs::{pairs_or, pairs_text, typed_pairs};
use toyformer::model::Weights;
use toyformer::tasks::TaskSpec;

fn sort5() -> TaskSpec {
    TaskSpec::Sort { n: 5, max_num: 10 }
}

/// `[BOS, xs.., MID, sorted(xs)]` by looking the labels up in the vocabulary.
fn sort_sequence(task: &TaskSpec, xs: &[u32]) -> Vec<u32> {
    let vocab = task.vocab();
    let id = |label: &str| vocab.iter().position(|v| v == label).unwrap() as u32;
    let mut sorted = xs.to_vec();
    sorted.sort();
    let mut seq = vec![id("BOS")];
    seq.extend(xs.iter().map(|x| id(&x.to_string())));
    seq.push(id("MID"));
    seq.extend(sorted.iter().map(|x| id(&x.to_string())));
    seq
}

fn err(r: toyformer::error::Result<Pairs>) -> String {
    r.expect_err("an error").to_string()
}

#[test]
fn typed_pairs_are_the_sequences_of_the_typed_prompts() {
    let t = sort5();
    let p = typed_pairs(&t, "3 1 4 1 5", "3, 1, 9, 1, 5").unwrap();
    assert_eq!(p.batch, 1);
    assert_eq!(p.clean, sort_sequence(&t, &[3, 1, 4, 1, 5]));
    assert_eq!(p.corrupted, sort_sequence(&t, &[3, 1, 9, 1, 5]));
    // two pairs: `;` or a new line between them, blanks ignored
    let p = typed_pairs(&t, "3 1 4 1 5; 0 2 2 7 9\n", "3 1 9 1 5 ;\n 0 2 8 7 9").unwrap();
    assert_eq!(p.batch, 2);
    let mut clean = sort_sequence(&t, &[3, 1, 4, 1, 5]);
    clean.extend(sort_sequence(&t, &[0, 2, 2, 7, 9]));
    let mut corrupted = sort_sequence(&t, &[3, 1, 9, 1, 5]);
    corrupted.extend(sort_sequence(&t, &[0, 2, 8, 7, 9]));
    assert_eq!((p.clean, p.corrupted), (clean, corrupted));
}

#[test]
fn blank_inputs_give_the_default_pairs_and_the_texts_read_back() {
    let t = sort5();
    let d = default_pairs(&t, 4, 0).unwrap();
    let p = pairs_or(&t, " ", "", || default_pairs(&t, 4, 0)).unwrap();
    assert_eq!(p, d);
    // the shown texts of the default pairs, typed back, are the same pairs
    let (c, k) = pairs_text(&t, &d, 4);
    assert_eq!(c.matches("; ").count(), 3);
    assert_eq!(typed_pairs(&t, &c, &k).unwrap(), d);
    // typed text wins over the default
    let p = pairs_or(&t, "3 1 4 1 5", "3 1 9 1 5", || panic!("not asked for")).unwrap();
    assert_eq!(p.batch, 1);
}

#[test]
fn bad_typed_text_is_an_error_naming_what_is_wrong() {
    let t = sort5();
    let e = err(typed_pairs(&t, "3 1 x 1 5", "3 1 9 1 5"));
    assert!(e.contains("clean prompt") && e.contains("'x'"), "{e}");
    let e = err(typed_pairs(&t, "3 1 4 1 5", "3 1 99 1 5"));
    assert!(e.contains("corrupted prompt") && e.contains("99"), "{e}");
    let e = err(typed_pairs(&t, "3 1 4 1 5", "3 1 9 1"));
    assert!(
        e.contains("corrupted prompt") && e.contains("expected 5") && e.contains("got 4"),
        "{e}"
    );
    let e = err(typed_pairs(&t, "3 1 4", "3 1 9 1 5"));
    assert!(
        e.contains("clean prompt") && e.contains("expected 5") && e.contains("got 3"),
        "{e}"
    );
    let e = err(typed_pairs(&t, "3 1 4 1 5; 0 2 2 7 9", "3 1 9 1 5"));
    assert!(e.contains("2 clean prompts but 1 corrupted"), "{e}");
    let e = err(typed_pairs(
        &t,
        "3 1 4 1 5; 0 2 2 7 9",
        "3 1 9 1 5; 0 2 x 7 9",
    ));
    assert!(e.contains("corrupted prompt 2") && e.contains("'x'"), "{e}");
    let e = err(typed_pairs(&t, "3 1 4 1 5", "  "));
    assert!(e.contains("type a corrupted prompt"), "{e}");
    let e = err(pairs_or(&t, "", "3 1 4 1 5", || panic!("not asked for")));
    assert!(e.contains("type a clean prompt"), "{e}");
    // never panics on odd text
    for s in [
        "",
        ";;;",
        "\u{0}",
        "BOS MID",
        "3 1 4 1 5 6",
        "-1 0 0 0 0",
        "ééé",
    ] {
        let _ = typed_pairs(&t, s, s);
    }
}

#[test]
fn logit_diff_without_differing_answers_says_what_to_choose() {
    // majority's default corruption keeps the majority element: no answer differs
    let t = TaskSpec::default_for("majority").unwrap();
    let w = Weights::init(&t.default_model()).unwrap();
    let pairs = default_pairs(&t, 8, 0).unwrap();
    let ok = CircuitSetup::new(
        &w,
        &t,
        pairs.clone(),
        CircuitMetric::Kl,
        EdgeAblation::Corrupted,
        DType::F32,
    );
    assert!(ok.is_ok());
    let e = CircuitSetup::new(
        &w,
        &t,
        pairs,
        CircuitMetric::LogitDiff,
        EdgeAblation::Corrupted,
        DType::F32,
    )
    .err()
    .expect("an error")
    .to_string();
    for word in [
        "no clean and corrupted answer differs",
        "KL",
        "loss",
        "resample",
        "pairs whose answers differ",
    ] {
        assert!(e.contains(word), "{e}");
    }
}
