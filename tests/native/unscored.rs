//! Unscored targets (`Batch::IGNORE`, issue 14): a row may leave some of the P scored
//! positions unscored. The loss is the mean over the scored pairs only — checked against a
//! plain f64 loop over the reference's logits, and against the plain next-token path on
//! the batch without its unscored row; the CPU engine's loss and gradients match the
//! reference; the sharded engine stays bit-identical for k workers; a batch scoring
//! nothing is an error; accuracy counts only scored pairs.

use crate::gpu_common::assert_close;
use candle_core::DType;
use toyformer::backend::{Backend, Batch, StepStats};
use toyformer::cpu::shard::ShardedCpu;
use toyformer::cpu::CpuEngine;
use toyformer::model::{Norm, Weights};
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::TrainConfig;

fn sort() -> TaskSpec {
    TaskSpec::default_for("sort").unwrap()
}

/// Sort's default model, shrunk, with LayerNorm, seed 5.
fn small(t: &TaskSpec) -> Weights {
    let mut c = t.default_model();
    c.d_model = 16;
    c.d_head = 8;
    c.d_mlp = c.d_mlp.map(|_| 32);
    c.normalization_type = Some(Norm::LN);
    c.seed = 5;
    Weights::init(&c).unwrap()
}

/// Batch `step` of sort with holes: row 0 wholly unscored, and every third target of
/// the other rows.
fn holed(t: &TaskSpec, step: u64, size: usize) -> Batch {
    let mut b = Batch::of_task(t, 4, step, size, Split::Train);
    let p = t.pred_positions().len();
    for (i, x) in b.targets.iter_mut().enumerate() {
        if i < p || i % 3 == 1 {
            *x = Batch::IGNORE;
        }
    }
    b
}

/// Mean cross-entropy over the scored pairs of the reference's logits, by a plain f64 loop.
fn plain_loss(r: &mut ReferenceBackend, t: &TaskSpec, b: &Batch) -> f64 {
    let logits = r.logits(&b.tokens, b.size).unwrap(); // (B, T, V)
    let (len, v, pred) = (t.seq_len(), t.d_vocab_out(), t.pred_positions());
    let (mut total, mut n) = (0.0, 0usize);
    for i in 0..b.size {
        for (j, &p) in pred.iter().enumerate() {
            let tg = b.targets[i * pred.len() + j];
            if tg == Batch::IGNORE {
                continue;
            }
            let row: Vec<f64> = logits[(i * len + p) * v..][..v]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            total += lse - row[tg as usize];
            n += 1;
        }
    }
    total / n as f64
}

#[test]
fn loss_and_gradients_count_only_the_scored_pairs() {
    let t = sort();
    let w = small(&t);
    let tc = TrainConfig::default();
    let pred = t.pred_positions();
    let b = holed(&t, 0, 8);
    let mut r = ReferenceBackend::with_dtype(&w, &tc, pred.clone(), DType::F64).unwrap();
    let (loss_r, grads_r) = r.batch_loss_and_grads(&b).unwrap();
    let plain = plain_loss(&mut r, &t, &b);
    assert!((loss_r - plain).abs() < 1e-6, "{loss_r} vs plain {plain}");
    let mut e = CpuEngine::new(&w, &tc, pred.clone()).unwrap();
    let (loss_e, grads_e) = e.batch_loss_and_grads(&b).unwrap();
    assert!(
        (loss_e as f64 - loss_r).abs() < 1e-5,
        "{loss_e} vs {loss_r}"
    );
    for ((name, ge), (_, gr)) in grads_e.iter().zip(&grads_r) {
        let gr: Vec<f32> = gr.iter().map(|&x| x as f32).collect();
        assert_close(&format!("holed {name}"), ge, &gr, 1e-5, 1e-3);
    }
    // the holes matter: the loss differs from the fully scored batch's
    let full = Batch::of_task(&t, 4, 0, 8, Split::Train);
    let (loss_full, _) = r.batch_loss_and_grads(&full).unwrap();
    assert!((loss_full - loss_r).abs() > 1e-4, "{loss_full} vs {loss_r}");
}

#[test]
fn an_unscored_row_is_the_same_as_leaving_it_out() {
    let t = sort();
    let w = small(&t);
    let tc = TrainConfig::default();
    let pred = t.pred_positions();
    let (p, len) = (pred.len(), t.seq_len());
    let mut b = Batch::of_task(&t, 4, 2, 8, Split::Train);
    b.targets[..p].fill(Batch::IGNORE); // row 0 scores nothing
    let mut e = CpuEngine::new(&w, &tc, pred.clone()).unwrap();
    let (loss, grads) = e.batch_loss_and_grads(&b).unwrap();
    // the plain next-token path on rows 1..8
    let rest = &b.tokens[len..];
    let (loss_rest, grads_rest) = e.loss_and_grads(rest, 7).unwrap();
    assert!((loss - loss_rest).abs() < 1e-6, "{loss} vs {loss_rest}");
    for ((name, g), (_, gr)) in grads.iter().zip(&grads_rest) {
        assert_close(&format!("row left out {name}"), g, gr, 1e-7, 1e-5);
    }
}

fn sharded_run(t: &TaskSpec, w: &Weights, k: usize) -> (Vec<u32>, Vec<u32>) {
    let tc = TrainConfig::default();
    let mut s = ShardedCpu::new(w, &tc, t.pred_positions(), k).unwrap();
    let mut losses = Vec::new();
    for step in 0..8 {
        // 96 sequences in 32-sequence shards; the first shard scores nothing
        let mut b = holed(t, step, 96);
        let p = t.pred_positions().len();
        b.targets[..32 * p].fill(Batch::IGNORE); // the whole first shard unscored
        losses.push(s.train_batch(&b, 3e-3, step).unwrap().loss.to_bits());
    }
    let wts = s
        .weights()
        .unwrap()
        .data
        .iter()
        .map(|x| x.to_bits())
        .collect();
    (losses, wts)
}

#[test]
fn sharded_engine_is_bit_identical_for_k_workers_with_unscored_targets() {
    let t = sort();
    let w = small(&t);
    let one = sharded_run(&t, &w, 1);
    for k in [2, 3] {
        let many = sharded_run(&t, &w, k);
        assert!(one.0 == many.0, "losses differ between k = 1 and k = {k}");
        assert!(one.1 == many.1, "weights differ between k = 1 and k = {k}");
    }
    // and the sharded loss is the plain engine's mean over the scored pairs
    let tc = TrainConfig::default();
    let mut e = CpuEngine::new(&w, &tc, t.pred_positions()).unwrap();
    let mut b = holed(&t, 0, 96);
    b.targets[..32 * t.pred_positions().len()].fill(Batch::IGNORE);
    let (loss, _) = e.batch_loss_and_grads(&b).unwrap();
    let first = f32::from_bits(one.0[0]);
    assert!(
        (first - loss).abs() < 1e-6,
        "sharded {first} vs plain {loss}"
    );
}

#[test]
fn a_batch_scoring_nothing_is_an_error_and_changes_nothing() {
    let t = sort();
    let w = small(&t);
    let tc = TrainConfig::default();
    let pred = t.pred_positions();
    let mut b = Batch::of_task(&t, 4, 0, 8, Split::Train);
    b.targets.fill(Batch::IGNORE);
    let mut backends: Vec<Box<dyn Backend>> = vec![
        Box::new(CpuEngine::new(&w, &tc, pred.clone()).unwrap()),
        Box::new(ReferenceBackend::new(&w, &tc, pred.clone()).unwrap()),
        Box::new(ShardedCpu::new(&w, &tc, pred.clone(), 2).unwrap()),
    ];
    for be in backends.iter_mut() {
        let e = be.train_batch(&b, 3e-3, 0).unwrap_err().to_string();
        assert!(e.contains("targets") && e.contains("unscored"), "{e}");
        assert_eq!(be.weights().unwrap().data, w.data, "{}", be.name());
    }
}

#[test]
fn accuracy_counts_only_the_scored_pairs() {
    let i = Batch::IGNORE;
    // 3 rows, P = 2: row 0 right at its one scored position, row 1 wrong at p1, row 2 all right
    let targets = [i, 5, 1, 2, 3, 4];
    let argmax = [9, 5, 1, 0, 3, 4];
    let s = StepStats::count(0.0, 0.0, &argmax, &targets, 2);
    assert_eq!(s.pos_correct, vec![2, 2]);
    assert_eq!(s.pos_scored, vec![2, 3]);
    assert_eq!(s.seq_correct, 2);
    let m = toyformer::train::metrics_from_stats(0, 0.0, &s, 3, &[1]);
    assert_eq!(m.token_acc, 4.0 / 5.0);
    assert_eq!(m.per_pos_acc, vec![1.0, 2.0 / 3.0]);
    assert_eq!(m.algo_acc, 2.0 / 3.0);
    assert_eq!(m.seq_acc, 2.0 / 3.0);
}

/// Text lines of different lengths (the custom task scores the union with holes).
fn uneven_custom() -> TaskSpec {
    let text = "ab=|ba\nabc=|cba\nbca=|acb\nca=|ac\ncab=|bac\nbb=|bb\n";
    let opt = toyformer::tasks::custom::Options::default();
    TaskSpec::Custom(toyformer::tasks::custom::Custom::new(text.into(), "u", opt))
}

#[test]
fn gpu_unscored_targets_match_the_reference_and_the_cpu_engine() {
    if !crate::gpu_common::gpu_available() {
        return;
    }
    let t = sort();
    let w = small(&t);
    let tc = TrainConfig::default();
    let pred = t.pred_positions();
    let b = holed(&t, 1, 8);
    let r = ReferenceBackend::with_dtype(&w, &tc, pred.clone(), DType::F64).unwrap();
    let (loss_r, grads_r) = r.batch_loss_and_grads(&b).unwrap();
    let mut g = toyformer::gpu::GpuBackend::new(&w, &tc, pred.clone()).unwrap();
    let (loss_g, grads_g) = pollster::block_on(g.runner.batch_loss_and_grads(&b)).unwrap();
    assert!(
        (loss_g as f64 - loss_r).abs() < 1e-5,
        "{loss_g} vs {loss_r}"
    );
    for (name, gr) in &grads_r {
        let p = w.table.get(name).unwrap();
        let gr: Vec<f32> = gr.iter().map(|&x| x as f32).collect();
        assert_close(
            &format!("gpu {name}"),
            &grads_g[p.offset..][..p.len],
            &gr,
            1e-5,
            1e-3,
        );
    }
    // a chunk of the uneven custom task: the same losses and per-position counts as the CPU
    let t = uneven_custom();
    let mut c = t.default_model();
    c.d_model = 16;
    c.d_head = 8;
    let w = Weights::init(&c).unwrap();
    let pred = t.pred_positions();
    let mut e = CpuEngine::new(&w, &tc, pred.clone()).unwrap();
    let mut g = toyformer::gpu::GpuBackend::new(&w, &tc, pred).unwrap();
    let (ce, cg) = (
        e.train_chunk(&t, 3, 0, 6, &[3e-3; 4]).unwrap(),
        g.train_chunk(&t, 3, 0, 6, &[3e-3; 4]).unwrap(),
    );
    assert_eq!(ce.steps.len(), 4);
    for (a, c) in ce.steps.iter().zip(&cg.steps) {
        assert_close("custom chunk loss", &[c.loss], &[a.loss], 1e-5, 1e-4);
        assert_eq!(c.pos_correct, a.pos_correct);
        assert_eq!(c.pos_scored, a.pos_scored);
        assert_eq!(c.seq_correct, a.seq_correct);
    }
    assert!(
        ce.steps[0].pos_scored.iter().any(|&k| k < 6),
        "the batch has holes"
    );
}
