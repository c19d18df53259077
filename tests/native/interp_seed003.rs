//! The analyses on a model trained by someone else: the seed-003 sorter
//! (../shared/reference-models). Its tutorial's reading: the OV circuit copies, the QK
//! circuit prefers key tokens slightly above the query token, and positions after MID are
//! avoided (attention goes to the unsorted list).
use crate::common;

use toyformer::interp::circuits::{
    self, diagonal_fraction, eigen_copying_score, full_ov, full_qk, token_block, Embed,
};
use toyformer::interp::report::model_report;
use toyformer::interp::run_with_cache;
use toyformer::interp::scores::argmax_offsets;
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::TaskSpec;

#[test]
fn ov_circuit_copies_every_value_token() {
    let w = common::seed003();
    let ov = full_ov(&w, 0, 0, Embed::Token).unwrap();
    assert_eq!((ov.rows, ov.cols), (52, 50));
    let block = token_block(&ov, 0..50).unwrap();
    let diag = diagonal_fraction(&block);
    let eig = eigen_copying_score(&block).unwrap();
    eprintln!("seed-003 OV: diagonal fraction {diag}, eigenvalue copying score {eig:.4}");
    assert_eq!(
        diag, 1.0,
        "the tutorial's claim: every row's argmax on the diagonal"
    );
    assert!(eig > 0.9, "eigenvalue copying score {eig}");
    assert_eq!(
        circuits::diagonal_fraction(&ov),
        1.0,
        "the square part is the same block"
    );
}

#[test]
fn qk_prefers_key_tokens_slightly_above_the_query() {
    let w = common::seed003();
    let qk = full_qk(&w, 0, 0, Embed::Token, Embed::Token).unwrap();
    let s = argmax_offsets(&qk, 0..50).unwrap();
    eprintln!(
        "seed-003 QK tok·tok argmax offsets: {:?}; mean {:.2}, median {}, above {:.2}",
        s.histogram, s.mean, s.median, s.frac_above
    );
    // Measured: 49 of 50 query tokens put their argmax above themselves, 31 of them at +1.
    assert!(s.frac_above >= 0.9, "fraction above {}", s.frac_above);
    assert!(s.frac_below == 0.0);
    let mode = s.histogram.iter().max_by_key(|(_, n)| *n).unwrap().0;
    assert_eq!(
        mode, 1,
        "the most common preferred key is the query token + 1"
    );
    assert!(
        (1.0..=3.0).contains(&s.median),
        "median offset {}",
        s.median
    );
    assert!(
        s.frac_slightly_above >= 0.75,
        "offset 1..=3 for {}",
        s.frac_slightly_above
    );
    // The mean (row-centred) score profile: keys just above score higher than keys just below.
    let at = |d: i64| {
        s.mean_score_by_offset
            .iter()
            .find(|(o, _)| *o == d)
            .unwrap()
            .1
    };
    for d in 1..=3 {
        assert!(
            at(d) > at(-d),
            "offset +{d} ({}) vs −{d} ({})",
            at(d),
            at(-d)
        );
    }
}

#[test]
fn attention_at_prediction_positions_goes_to_the_unsorted_list() {
    let w = common::seed003();
    let task = TaskSpec::default_for("sort").unwrap();
    let tokens = task.batch(0, toyformer::interp::ANALYSIS_STEP, 500);
    let cache =
        run_with_cache(&ReferenceBackend::for_inference(&w).unwrap(), &tokens, 500).unwrap();
    let (mut list, mut after_mid, mut argmax_in_list, mut rows) = (0.0, 0.0, 0, 0);
    for b in 0..500 {
        let p = cache.pattern(b, 0, 0).unwrap();
        for q in task.pred_positions() {
            let row = p.row(q);
            list += row[1..=10].iter().map(|&x| x as f64).sum::<f64>();
            after_mid += row[12..].iter().map(|&x| x as f64).sum::<f64>();
            let am = (0..22).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            argmax_in_list += (1..=10).contains(&am) as usize;
            rows += 1;
        }
    }
    let (list, after_mid, am) = (
        list / rows as f64,
        after_mid / rows as f64,
        argmax_in_list as f64 / rows as f64,
    );
    eprintln!("seed-003 at predicted positions: {list:.3} of attention on a1..a10, {after_mid:.3} after MID, argmax in the list for {am:.3}");
    // Measured on these 500 samples: 0.845 on the list, 0.007 after MID, argmax in the list
    // for 0.778 of the rows (the rest on BOS or MID, which carry no value).
    assert!(list > 0.6, "mean attention on the unsorted list {list}");
    assert!(
        after_mid < 0.05,
        "positions after MID are avoided: {after_mid}"
    );
    assert!(am > 0.7, "argmax attention position in the list for {am}");

    // The report says the same, and the answer position gets more than its share.
    let r = model_report(&w, &task, 500, 0).unwrap();
    let h = &r.heads[0];
    assert!((h.attention_to_prompt - (1.0 - after_mid)).abs() < 1e-4);
    assert!(
        h.attention_to_answer > 2.0 * list / 10.0,
        "answer {} vs a list position's average {}",
        h.attention_to_answer,
        list / 10.0
    );
    assert!(r.eval.acc > 0.99);
    assert!(
        r.dla.get("embed → L0H0").unwrap() > 0.8 * r.dla.logit,
        "the logit comes through the head from the token embeddings"
    );
}
