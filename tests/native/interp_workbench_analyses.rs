//! The page's entry points to issue 16's analyses (Workbench methods) give what the
//! analyses give on the snapshot's weights, and neuron ablation on the workbench's samples
//! equals evaluation of the model with those neurons' W_out rows zeroed.

use toyformer::interp::intervene::{outcome, Ablation};
use toyformer::interp::workbench::{Workbench, WorkbenchOptions};
use toyformer::interp::{fourier, head_types, neurons, progress};
use toyformer::tasks::TaskSpec;

#[test]
fn workbench_analyses_match_the_functions() {
    let mut v = serde_json::to_value(TaskSpec::default_for("mod-add").unwrap()).unwrap();
    v["p"] = serde_json::json!(7);
    let task: TaskSpec = serde_json::from_value(v).unwrap();
    let mut cfg = task.default_model();
    cfg.d_model = 16;
    cfg.d_head = 8;
    cfg.d_mlp = Some(10);
    let (w0, mut w1) = (toyformer::model::Weights::init(&cfg).unwrap(), {
        let mut c = cfg.clone();
        c.seed = 9;
        toyformer::model::Weights::init(&c).unwrap()
    });
    let opts = WorkbenchOptions {
        samples: 16,
        ..Default::default()
    };
    let mut wb = Workbench::new(task.clone(), cfg.clone(), opts).unwrap();
    wb.add_snapshot(0, w0.data.clone(), true).unwrap();
    wb.add_snapshot(10, w1.data.clone(), true).unwrap();
    wb.select(Some(10)).unwrap();
    let f = wb.fourier().unwrap();
    assert_eq!(
        f.key_freqs,
        fourier::fourier_report(&w1, &task).unwrap().key_freqs
    );
    let h = wb.head_types().unwrap();
    let direct = head_types::head_type_scores(
        &w1,
        0..7,
        None,
        toyformer::interp::workbench_analyses::HEAD_TYPE_BATCH,
        0,
    )
    .unwrap();
    assert_eq!((h.step, &h.scores), (10, &direct));
    let n = wb.neurons(0, 2).unwrap();
    assert_eq!(n.ranked.len(), 10);
    let heat = wb.neuron_heatmap(0, n.ranked[0].neuron).unwrap();
    let (a, b, x) = n.ranked[0].top_inputs[0];
    assert_eq!(heat.at(a, b), x);
    let curve = wb.progress(0).unwrap();
    let want = progress::progress_curve(&[(0, w0.clone()), (10, w1.clone())], &task, None).unwrap();
    assert_eq!(curve, want);
    assert_eq!(wb.head_type_curve(0).unwrap().len(), 2);
    // one snapshot asked for: the last, with the same key frequencies
    assert_eq!(wb.progress(1).unwrap(), want[1..]);
    assert_eq!(wb.head_type_curve(1).unwrap()[0].0, 10);
    let hyp = wb.hypothesis().unwrap();
    assert_eq!(hyp.task, "mod-add");
    // neuron ablation against zeroed W_out rows
    let got = wb.ablate_neurons(0, &[1, 4], Ablation::Zero).unwrap();
    let c = cfg.d_model;
    for i in [1, 4] {
        w1.get_mut("blocks.0.mlp.W_out").unwrap()[i * c..(i + 1) * c].fill(0.0);
    }
    let tokens = task.batch(0, toyformer::interp::ANALYSIS_STEP, 16);
    let cache = toyformer::interp::run_with_cache_weights(&w1, &tokens, 16).unwrap();
    let want = outcome(&task, &cache);
    assert!(
        (got.loss - want.loss).abs() < 1e-5 && got.acc == want.acc,
        "{got:?} {want:?}"
    );
    assert!(wb.ablate_neurons(0, &[10], Ablation::Zero).is_err());
    let _ = neurons::two_operands(&task).unwrap();
}

#[test]
fn subsample_is_evenly_spaced() {
    use toyformer::interp::workbench_analyses::subsample;
    let steps: Vec<u64> = (0..64).map(|i| 100 * i).collect();
    assert_eq!(subsample(&steps, 0), steps);
    assert_eq!(subsample(&steps[..5], 8), steps[..5]);
    assert_eq!(subsample(&steps, 1), vec![6300]);
    let got = subsample(&steps, 8);
    assert_eq!(got.len(), 8);
    assert_eq!((got[0], got[7]), (0, 6300));
    for (i, s) in got.iter().enumerate() {
        // index i·63/7 = 9i exactly
        assert_eq!(*s, 900 * i as u64);
    }
    let got = subsample(&steps, 5); // 63/4 = 15.75 per step: 0, 16, 32, 47, 63 (rounded)
    assert_eq!(got, vec![0, 1600, 3200, 4700, 6300]);
}
