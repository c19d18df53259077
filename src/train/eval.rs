//! Evaluation on fresh samples and greedy completion, for any backend.

use super::{accuracy, algo_index};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tasks::{Split, TaskSpec};
use serde::{Deserialize, Serialize};

/// Fresh evaluation samples come from steps at and above this offset of the data stream,
/// far from any training step.
pub const EVAL_STEP_OFFSET: u64 = 1 << 40;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    pub samples: usize,
    /// Mean cross-entropy over the predicted positions (nats).
    pub loss: f64,
    /// Mean cross-entropy over the algorithm positions only (`TaskSpec::algo_positions`;
    /// for permutations, everything after the first term): 0 for a perfect model.
    pub algo_loss: f64,
    pub token_acc: f64,
    pub seq_acc: f64,
    pub algo_acc: f64,
    /// Accuracy at each predicted position, in `TaskSpec::pred_positions` order.
    pub per_pos_acc: Vec<f64>,
    /// The predicted positions themselves.
    pub positions: Vec<usize>,
}

/// Log-softmax probability of `target` in one row of logits, in f64.
pub fn log_prob(row: &[f32], target: u32) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = row
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    row[target as usize] as f64 - lse
}

/// Index of the largest value (the first one on ties).
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Loss and accuracies of the model on `samples` fresh sequences of `task`, drawn from
/// the data stream of `seed` at steps ≥ [`EVAL_STEP_OFFSET`], from the held-out split
/// (for a task without one, fresh samples of the task distribution).
pub fn evaluate(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    seed: u64,
    samples: usize,
    batch: usize,
) -> Result<EvalReport> {
    evaluate_split(backend, task, seed, samples, batch, Split::HeldOut)
}

/// [`evaluate`] on one side of the split: `Split::Train` gives fresh samples of the
/// training distribution (combinations training may also draw), `Split::HeldOut` only
/// combinations training never draws.
pub fn evaluate_split(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    seed: u64,
    samples: usize,
    batch: usize,
    split: Split,
) -> Result<EvalReport> {
    if samples == 0 {
        return Err(Error::config("samples", "must be at least 1"));
    }
    let t = task.seq_len();
    let pos = task.pred_positions();
    let algo_idx = algo_index(task);
    let p = pos.len();
    let is_algo: Vec<bool> = (0..p).map(|j| algo_idx.contains(&j)).collect();
    let (mut loss, mut algo_loss, mut tok, mut seq, mut alg) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut per = vec![0.0f64; p];
    let mut done = 0;
    let mut chunk = 0u64;
    while done < samples {
        let b = batch.min(samples - done).max(1);
        let tokens = task.batch_split(seed, EVAL_STEP_OFFSET + chunk, b, split);
        let logits = backend.logits(&tokens, b)?; // (B, T, V)
        let v = logits.len() / (b * t);
        let mut am = Vec::with_capacity(b * p);
        let mut targets = Vec::with_capacity(b * p);
        for i in 0..b {
            let seq_tokens = &tokens[i * t..(i + 1) * t];
            for ((&pp, tg), &a) in pos.iter().zip(task.targets(seq_tokens)).zip(&is_algo) {
                let row = &logits[(i * t + pp) * v..(i * t + pp + 1) * v];
                let lp = log_prob(row, tg);
                loss -= lp;
                if a {
                    algo_loss -= lp;
                }
                am.push(argmax(row));
                targets.push(tg);
            }
        }
        let (a, s, g, pp) = accuracy(&am, &targets, p, &algo_idx);
        tok += a as f64 * b as f64;
        seq += s as f64 * b as f64;
        alg += g as f64 * b as f64;
        for (acc, x) in per.iter_mut().zip(pp) {
            *acc += x as f64 * b as f64;
        }
        done += b;
        chunk += 1;
    }
    let n = done as f64;
    Ok(EvalReport {
        samples: done,
        loss: loss / (n * p as f64),
        algo_loss: algo_loss / (n * algo_idx.len().max(1) as f64),
        token_acc: tok / n,
        seq_acc: seq / n,
        algo_acc: alg / n,
        per_pos_acc: per.iter().map(|x| x / n).collect(),
        positions: pos,
    })
}

/// Greedy completion: appends the argmax token until the task's sequence length.
pub fn complete(backend: &mut dyn Backend, task: &TaskSpec, prompt: &[u32]) -> Result<Vec<u32>> {
    let t = task.seq_len();
    if prompt.is_empty() || prompt.len() > t {
        return Err(Error::task(
            task.name(),
            format!("a prompt must hold 1..={t} tokens, got {}", prompt.len()),
        ));
    }
    let d_vocab = task.d_vocab() as u32;
    if let Some(bad) = prompt.iter().find(|&&x| x >= d_vocab) {
        return Err(Error::task(
            task.name(),
            format!("token id {bad} is outside the vocabulary (size {d_vocab})"),
        ));
    }
    let mut seq = prompt.to_vec();
    while seq.len() < t {
        let logits = backend.logits(&seq, 1)?;
        let v = logits.len() / seq.len();
        seq.push(argmax(&logits[(seq.len() - 1) * v..]));
    }
    Ok(seq)
}
