//! Explicit targets (the backend contract's `Batch`): a next-token task's batch holds exactly
//! `tokens[p + 1]`; bad batches are errors naming the field; and for tasks whose targets are
//! not next tokens (previous-token: the token before; arena-palindromes: a label at END)
//! the loss equals a plain loop over the reference's logits, and the reference, the CPU
//! engine and the GPU (lavapipe here) agree on the loss, every gradient and AdamW steps.

use crate::gpu_common::{assert_close, gpu_available};
use candle_core::DType;
use toyformer::backend::{Backend, Batch};
use toyformer::cpu::CpuEngine;
use toyformer::gpu::GpuBackend;
use toyformer::model::{ModelConfig, Positions, Weights};
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::TrainConfig;

fn task(json: &str) -> TaskSpec {
    serde_json::from_str(json).unwrap()
}

fn prev() -> TaskSpec {
    task(r#"{"task":"previous-token","n":6,"max_num":9}"#)
}

fn pal() -> TaskSpec {
    task(r#"{"task":"arena-palindromes","half_length":3,"max_value":5}"#)
}

/// A 2-layer, 2-head attention-only model of `t`'s sizes with LayerNorm, seed 5.
fn model(t: &TaskSpec, positions: Positions) -> Weights {
    let mut c = t.default_model();
    c.n_layers = 2;
    c.n_heads = 2;
    c.d_model = 16;
    c.d_head = 8;
    c.normalization_type = Some(toyformer::model::Norm::LN);
    c.seed = 5;
    c.positional_embedding_type = positions;
    c.n_ctx = t.seq_len();
    c.d_vocab = t.d_vocab();
    c.d_vocab_out = t.d_vocab_out();
    Weights::init(&c).unwrap()
}

fn field(e: toyformer::Error) -> String {
    match e {
        toyformer::Error::Config { field, .. } => field.to_string(),
        other => panic!("expected a config error, got {other}"),
    }
}

#[test]
fn next_token_batches_hold_the_next_tokens() {
    let t = TaskSpec::Sort { n: 4, max_num: 7 };
    let pred = t.pred_positions();
    let b = Batch::of_task(&t, 3, 2, 5, Split::Train);
    let len = t.seq_len();
    let mut want = Vec::new();
    for i in 0..5 {
        for &p in &pred {
            want.push(b.tokens[i * len + p + 1]);
        }
    }
    assert_eq!(b.targets, want);
    assert_eq!(b.tokens, t.batch(3, 2, 5));
    assert_eq!(Batch::next_token(&b.tokens, 5, &pred).unwrap(), b);
    // a target past the sequences, a ragged batch
    assert_eq!(
        field(Batch::next_token(&b.tokens[..len], 1, &[len - 1]).unwrap_err()),
        "tokens"
    );
    assert_eq!(
        field(Batch::next_token(&b.tokens[..7], 2, &pred).unwrap_err()),
        "tokens"
    );
}

#[test]
fn bad_targets_are_errors() {
    let t = prev();
    let w = model(&t, Positions::Off);
    let mut e = CpuEngine::new(&w, &TrainConfig::default(), t.pred_positions()).unwrap();
    let good = Batch::of_task(&t, 1, 0, 3, Split::Train);
    assert_eq!(good.targets.len(), 3 * 6);
    let mut short = good.clone();
    short.targets.pop();
    assert_eq!(
        field(e.train_batch(&short, 1e-3, 0).unwrap_err()),
        "targets"
    );
    let mut big = good.clone();
    big.targets[4] = t.d_vocab_out() as u32;
    assert_eq!(field(e.train_batch(&big, 1e-3, 0).unwrap_err()), "targets");
    let mut r = ReferenceBackend::new(&w, &TrainConfig::default(), t.pred_positions()).unwrap();
    assert_eq!(field(r.train_batch(&big, 1e-3, 0).unwrap_err()), "targets");
    // the next-token convenience refuses position 6 (its next token is past T = 7)
    assert_eq!(
        field(e.train_step(&good.tokens, 3, 1e-3, 0).unwrap_err()),
        "tokens"
    );
    // the weights are untouched by the refusals
    assert_eq!(e.weights().unwrap().data, w.data);
}

/// Mean cross-entropy of the reference's logits at the scored positions against the
/// batch's targets, by a plain loop in f64.
fn plain_loss(r: &mut ReferenceBackend, t: &TaskSpec, b: &Batch) -> f64 {
    let logits = r.logits(&b.tokens, b.size).unwrap(); // (B, T, V)
    let (len, v, pred) = (t.seq_len(), t.d_vocab_out(), t.pred_positions());
    let mut total = 0.0;
    for i in 0..b.size {
        for (j, &p) in pred.iter().enumerate() {
            let row: Vec<f64> = logits[(i * len + p) * v..][..v]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            total += lse - row[b.targets[i * pred.len() + j] as usize];
        }
    }
    total / (b.size * pred.len()) as f64
}

fn cpu_matches_reference(t: &TaskSpec, positions: Positions) {
    let w = model(t, positions);
    let tc = TrainConfig::default();
    let pred = t.pred_positions();
    let b = Batch::of_task(t, 4, 0, 8, Split::Train);
    let mut r = ReferenceBackend::with_dtype(&w, &tc, pred.clone(), DType::F64).unwrap();
    let (loss_r, grads_r) = r.batch_loss_and_grads(&b).unwrap();
    let plain = plain_loss(&mut r, t, &b);
    assert!(
        (loss_r - plain).abs() < 1e-5,
        "{}: {loss_r} vs plain {plain}",
        t.name()
    );
    let mut e = CpuEngine::new(&w, &tc, pred.clone()).unwrap();
    let (loss_e, grads_e) = e.batch_loss_and_grads(&b).unwrap();
    assert!((loss_e as f64 - loss_r).abs() < 1e-5, "{}: loss", t.name());
    assert_eq!(grads_e.len(), grads_r.len());
    for ((name, ge), (_, gr)) in grads_e.iter().zip(&grads_r) {
        let gr: Vec<f32> = gr.iter().map(|&x| x as f32).collect();
        assert_close(&format!("{} {name}", t.name()), ge, &gr, 1e-5, 1e-3);
    }
    // five AdamW steps on the task's stream: the same losses
    let mut r = ReferenceBackend::new(&w, &tc, pred.clone()).unwrap();
    for s in 0..5 {
        let b = Batch::of_task(t, 4, s, 8, Split::Train);
        let (a, c) = (
            e.train_batch(&b, 3e-3, s).unwrap(),
            r.train_batch(&b, 3e-3, s).unwrap(),
        );
        assert_close(
            &format!("{} step {s}", t.name()),
            &[a.loss],
            &[c.loss],
            1e-5,
            1e-4,
        );
        assert_eq!(a.argmax.len(), b.targets.len());
    }
}

#[test]
fn previous_token_cpu_engine_matches_the_reference() {
    cpu_matches_reference(&prev(), Positions::Off);
    cpu_matches_reference(&prev(), Positions::Standard);
}

#[test]
fn palindrome_labels_cpu_engine_matches_the_reference() {
    cpu_matches_reference(&pal(), Positions::Standard);
}

fn gpu_matches_cpu(t: &TaskSpec) {
    let w = model(t, Positions::Standard);
    let tc = TrainConfig::default();
    let pred = t.pred_positions();
    let mut e = CpuEngine::new(&w, &tc, pred.clone()).unwrap();
    let mut g = GpuBackend::new(&w, &tc, pred).unwrap();
    let b = Batch::of_task(t, 6, 0, 8, Split::Train);
    let (loss_e, grads_e) = e.batch_loss_and_grads(&b).unwrap();
    let (loss_g, grads_g) = pollster::block_on(g.runner.batch_loss_and_grads(&b)).unwrap();
    assert_close(
        &format!("{} loss", t.name()),
        &[loss_g],
        &[loss_e],
        1e-6,
        1e-5,
    );
    let scale = grads_e
        .iter()
        .flat_map(|(_, x)| x.iter())
        .fold(0.0f32, |a, x| a.max(x.abs()));
    for (name, ge) in &grads_e {
        let p = w.table.get(name).unwrap();
        let gg = &grads_g[p.offset..p.offset + p.len];
        assert_close(&format!("{} {name}", t.name()), gg, ge, 2e-6 * scale, 1e-4);
    }
    // five steps, and a chunk of the task's stream from where they end
    for s in 0..5 {
        let b = Batch::of_task(t, 6, s, 8, Split::Train);
        let (a, c) = (
            e.train_batch(&b, 3e-3, s).unwrap(),
            g.train_batch(&b, 3e-3, s).unwrap(),
        );
        assert_close(
            &format!("{} step {s}", t.name()),
            &[c.loss],
            &[a.loss],
            1e-5,
            1e-4,
        );
        assert_eq!(c.argmax, a.argmax, "{} step {s} argmax", t.name());
    }
    let (ce, cg) = (
        e.train_chunk(t, 6, 5, 8, &[3e-3; 3]).unwrap(),
        g.train_chunk(t, 6, 5, 8, &[3e-3; 3]).unwrap(),
    );
    for (a, c) in ce.steps.iter().zip(&cg.steps) {
        assert_close(
            &format!("{} chunk", t.name()),
            &[c.loss],
            &[a.loss],
            1e-5,
            1e-4,
        );
        assert_eq!(c.pos_correct, a.pos_correct);
    }
}

#[test]
fn gpu_explicit_targets_match_the_cpu_engine() {
    if !gpu_available() {
        return;
    }
    gpu_matches_cpu(&prev());
    gpu_matches_cpu(&pal());
}

#[test]
fn previous_token_default_model_is_what_the_issue_gives() {
    let t = TaskSpec::default_for("previous-token").unwrap();
    let m: ModelConfig = t.default_model();
    assert_eq!(m.positional_embedding_type, Positions::Off);
    assert_eq!((m.d_vocab, m.d_vocab_out, m.n_ctx), (101, 101, 10));
}

#[test]
fn notebook_numbers_and_table_carry_the_targets() {
    let t = prev();
    let w = model(&t, Positions::Off);
    let n = toyformer::notebook::numbers::page_numbers(&w, &t, "", 8, 8, 1).unwrap();
    assert_eq!(n.analysis_targets.len(), n.analysis_tokens.len());
    for (row, tg) in n.analysis_tokens.iter().zip(&n.analysis_targets) {
        // previous-token: position p's target is the token at p − 1, for p = 1..=6
        assert_eq!(tg[..], row[..6]);
    }
    let py = toyformer::notebook::tasks::task_python(&pal());
    assert!(
        py.contains("TARGETS = {") && py.contains("def targets(tokens)"),
        "{py}"
    );
}
