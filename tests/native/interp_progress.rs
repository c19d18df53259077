//! Grokking's progress measures (interp::progress) on the shared modular-subtraction model
//! and a fresh initialisation of its config: losses against the backend's logits and a
//! loop, the sum of squared weights against a loop, the curve's key frequencies.
use crate::common;

use toyformer::backend::Backend;
use toyformer::interp::progress;
use toyformer::tasks::TaskSpec;

#[test]
fn progress_on_the_shared_model_and_an_initialisation() {
    let task = TaskSpec::default_for("mod-sub").unwrap();
    let w =
        toyformer::io::load_weights(&common::shared("modular_subtraction_model.pt"), None).unwrap();
    let w = task.fit_context(w).unwrap();
    let mut init_cfg = w.cfg.clone();
    init_cfg.seed = 5;
    let init = toyformer::model::Weights::init(&init_cfg).unwrap();
    let curve =
        progress::progress_curve(&[(0, init.clone()), (100, w.clone())], &task, None).unwrap();
    assert_eq!(curve.len(), 2);
    assert_eq!((curve[0].step, curve[1].step), (0, 100));
    assert_eq!(
        progress::key_freqs_of(&w, &task).unwrap(),
        vec![11, 17, 37, 44]
    );
    // losses by the backend on every pair and a loop over the split
    let p = 113;
    let split = task.finite().unwrap();
    let mut b = toyformer::reference::ReferenceBackend::for_inference(&init).unwrap();
    let tokens: Vec<u32> = (0..p * p)
        .flat_map(|i| [(i / p) as u32, (i % p) as u32, p as u32, 0])
        .collect();
    let logits = b.logits(&tokens, p * p).unwrap();
    let ce = |i: usize| {
        let l: Vec<f64> = logits[(i * 4 + 2) * p..(i * 4 + 3) * p]
            .iter()
            .map(|&x| x as f64)
            .collect();
        let m = l.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + l.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        lse - l[(i / p + p - i % p) % p]
    };
    let mut is_train = vec![false; p * p];
    for j in 0..split.n_train {
        is_train[split.item_of(false, j) as usize] = true;
    }
    let train: f64 =
        (0..p * p).filter(|&i| is_train[i]).map(ce).sum::<f64>() / split.n_train as f64;
    let test: f64 =
        (0..p * p).filter(|&i| !is_train[i]).map(ce).sum::<f64>() / split.n_test() as f64;
    assert!(
        (curve[0].train_loss - train).abs() < 1e-4,
        "{} {train}",
        curve[0].train_loss
    );
    assert!(
        (curve[0].test_loss - test).abs() < 1e-4,
        "{} {test}",
        curve[0].test_loss
    );
    let ssw: f64 = init.data.iter().map(|&x| (x as f64).powi(2)).sum();
    assert!((curve[0].sum_sq_weights - ssw).abs() < 1e-6 * ssw);
    // the trained model: generalises, its circuit alone does the task, removing it breaks
    // it, and its embedding is sparser in frequency than an initialisation's
    let end = &curve[1];
    assert!(
        end.test_loss < 0.01 && end.restricted_loss < 0.01,
        "{end:?}"
    );
    assert!(end.excluded_loss > 1.0, "{end:?}");
    assert!(end.gini > curve[0].gini + 0.3, "{curve:?}");
    assert!(progress::progress_point(&w, 0, &task, &[0]).is_err());
    assert!(
        progress::progress_point(&w, 0, &TaskSpec::default_for("sort").unwrap(), &[1]).is_err()
    );
}
