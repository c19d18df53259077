//! Evaluation on fresh samples and greedy completion, for any backend.

use super::{accuracy, algo_index};
use crate::backend::{Backend, Batch, StepStats};
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
    let mut sums = Sums::new(task);
    let mut chunk = 0u64;
    while sums.n < samples {
        let b = batch.min(samples - sums.n).max(1);
        let tokens = task.batch_split(seed, EVAL_STEP_OFFSET + chunk, b, split);
        sums.score(backend, task, &tokens, b)?;
        chunk += 1;
    }
    Ok(sums.report(task))
}

/// Running sums of [`EvalReport`]'s figures over the sequences scored so far. Accuracies are
/// summed weighted by scored pairs in sequences' worth (scored pairs / P, which is B when
/// every pair is scored), so that a task with unscored targets (`Batch::IGNORE`) averages over
/// its scored pairs only.
struct Sums {
    /// Sequences scored.
    n: usize,
    loss: f64,
    algo_loss: f64,
    tok: f64,
    seq: f64,
    alg: f64,
    /// Per predicted position, accuracy × sequences scoring it.
    per: Vec<f64>,
    /// Per predicted position, the sequences scoring it.
    scored: Vec<f64>,
    algo_idx: Vec<usize>,
}

impl Sums {
    fn new(task: &TaskSpec) -> Self {
        let p = task.pred_positions().len();
        Sums {
            n: 0,
            loss: 0.0,
            algo_loss: 0.0,
            tok: 0.0,
            seq: 0.0,
            alg: 0.0,
            per: vec![0.0; p],
            scored: vec![0.0; p],
            algo_idx: algo_index(task),
        }
    }

    /// Scores `b` sequences `tokens` (B, T) of `task`.
    fn score(
        &mut self,
        backend: &mut dyn Backend,
        task: &TaskSpec,
        tokens: &[u32],
        b: usize,
    ) -> Result<()> {
        let t = task.seq_len();
        let pos = task.pred_positions();
        let p = pos.len();
        let is_algo: Vec<bool> = (0..p).map(|j| self.algo_idx.contains(&j)).collect();
        let logits = backend.logits(tokens, b)?; // (B, T, V)
        let v = logits.len() / (b * t);
        let mut am = Vec::with_capacity(b * p);
        let mut targets = Vec::with_capacity(b * p);
        for i in 0..b {
            let seq_tokens = &tokens[i * t..(i + 1) * t];
            for ((&pp, tg), &a) in pos
                .iter()
                .zip(task.scored_targets(seq_tokens))
                .zip(&is_algo)
            {
                let row = &logits[(i * t + pp) * v..(i * t + pp + 1) * v];
                if tg != Batch::IGNORE {
                    let lp = log_prob(row, tg);
                    self.loss -= lp;
                    if a {
                        self.algo_loss -= lp;
                    }
                }
                am.push(argmax(row));
                targets.push(tg);
            }
        }
        self.add(&am, &targets, b);
        Ok(())
    }

    /// Adds the accuracies of (B, P) argmax against targets.
    fn add(&mut self, am: &[u32], targets: &[u32], b: usize) {
        let p = self.per.len();
        let (a, s, g, pp) = accuracy(am, targets, p, &self.algo_idx);
        let scored = StepStats::scored_positions(targets, p);
        let total: u32 = scored.iter().sum();
        let algo: u32 = self.algo_idx.iter().map(|&j| scored[j]).sum();
        let algo_len = self.algo_idx.len().max(1) as f64;
        self.tok += a as f64 * (total as f64 / p.max(1) as f64);
        self.seq += s as f64 * b as f64;
        self.alg += g as f64 * (algo as f64 / algo_len);
        for ((acc, x), (n, &c)) in self
            .per
            .iter_mut()
            .zip(pp)
            .zip(self.scored.iter_mut().zip(&scored))
        {
            *acc += x as f64 * c as f64;
            *n += c as f64;
        }
        self.n += b;
    }

    fn report(&self, task: &TaskSpec) -> EvalReport {
        let n = self.n.max(1) as f64;
        let p = self.per.len().max(1) as f64;
        let pairs: f64 = self.scored.iter().sum();
        let algo: f64 = self.algo_idx.iter().map(|&j| self.scored[j]).sum();
        let algo_len = self.algo_idx.len().max(1) as f64;
        EvalReport {
            samples: self.n,
            loss: self.loss / pairs.max(1.0),
            algo_loss: self.algo_loss / algo.max(1.0),
            token_acc: self.tok / (pairs / p).max(1.0),
            seq_acc: self.seq / n,
            algo_acc: self.alg / (algo / algo_len).max(1.0),
            per_pos_acc: (self.per.iter().zip(&self.scored))
                .map(|(x, c)| x / c.max(1.0))
                .collect(),
            positions: task.pred_positions(),
        }
    }
}

/// The exact figures of a finite dataset: each side of its split evaluated item by item
/// (every item once, in split order) and the full dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FiniteEval {
    /// The training split (`samples` = the items evaluated).
    pub train: EvalReport,
    /// The test split.
    pub test: EvalReport,
    /// The full dataset: the two sides' figures weighted by the sides' sizes.
    pub full: FullEval,
}

/// The full dataset's figures in a [`FiniteEval`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FullEval {
    /// The dataset's size.
    pub items: u64,
    pub loss: f64,
    pub token_acc: f64,
    pub seq_acc: f64,
}

/// A finite dataset's train, test and full-dataset figures (`None` for a sampled task).
/// Each side is evaluated on its first `max_items` items in split order (all of them when
/// the side is smaller: then the figures are exact; the split order is a fixed shuffle, so
/// a capped side is a fixed random subset), `batch` items per forward pass.
pub fn evaluate_finite(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    max_items: usize,
    batch: usize,
) -> Result<Option<FiniteEval>> {
    let Some(fs) = task.finite() else {
        return Ok(None);
    };
    if max_items == 0 || batch == 0 {
        return Err(Error::config("max_items", "must be at least 1"));
    }
    let mut side = |held_out: bool| -> Result<EvalReport> {
        let n = fs.side_len(held_out).min(max_items as u64) as usize;
        let mut sums = Sums::new(task);
        for start in (0..n).step_by(batch) {
            let b = batch.min(n - start);
            let tokens: Vec<u32> = (start..start + b) // (B, T)
                .flat_map(|j| task.with_task(|t| t.item(fs.item_of(held_out, j as u64))))
                .collect();
            sums.score(backend, task, &tokens, b)?;
        }
        Ok(sums.report(task))
    };
    let train = side(false)?;
    let test = side(true)?;
    let w = fs.n_train as f64 / fs.n_items as f64;
    let mix = |a: f64, b: f64| w * a + (1.0 - w) * b;
    let full = FullEval {
        items: fs.n_items,
        loss: mix(train.loss, test.loss),
        token_acc: mix(train.token_acc, test.token_acc),
        seq_acc: mix(train.seq_acc, test.seq_acc),
    };
    Ok(Some(FiniteEval { train, test, full }))
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
