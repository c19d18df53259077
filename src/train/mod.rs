//! Training over a backend trait: the same trainer drives the candle CPU backend and the
//! GPU backend, and the page drives the trainer. Data come from the task's counter-based
//! RNG, so (task, model config, train config) fully determine a run.

pub mod eval;
pub mod schedule;

use crate::backend::{AdamWConfig, Backend, Batch, ChunkOutput, StepStats};
use crate::error::{Error, Result};
use crate::tasks::{Split, TaskSpec};
use serde::{Deserialize, Serialize};

pub use schedule::{LrScheduler, Schedule, ScheduleState};

/// Optimiser and run settings. Defaults are seed 003's: AdamW lr 1e-3, betas (0.9, 0.98),
/// weight decay 0.01, batch 256; gradient clipping at global norm 1.0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch_size: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this value (PyTorch's clip_grad_norm_); 0 = off.
    pub grad_clip: f64,
    /// Seed of the data stream (the model's init seed is `ModelConfig::seed`).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 3000,
            batch_size: 256,
            lr: 1e-3,
            schedule: Schedule::Constant,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            grad_clip: 1.0,
            seed: 0,
        }
    }
}

impl From<&TrainConfig> for AdamWConfig {
    fn from(tc: &TrainConfig) -> Self {
        tc.adamw()
    }
}

impl TrainConfig {
    /// The optimiser's settings of this run.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            grad_clip: self.grad_clip,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, m: String| Err(Error::config(f, m));
        if self.steps > 10_000_000 {
            return bad("steps", format!("{} is more than 10,000,000", self.steps));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return bad(
                "batch_size",
                format!("{} is not in 1..=65536", self.batch_size),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return bad("lr", format!("{} is not in (0, 10]", self.lr));
        }
        if !(self.weight_decay.is_finite() && (0.0..=10.0).contains(&self.weight_decay)) {
            return bad(
                "weight_decay",
                format!("{} is not in [0, 10]", self.weight_decay),
            );
        }
        for (f, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return bad(f, format!("{b} is not in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0 && self.eps < 1.0) {
            return bad("eps", format!("{} is not in (0, 1)", self.eps));
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return bad(
                "grad_clip",
                format!("{} must be ≥ 0 (0 turns clipping off)", self.grad_clip),
            );
        }
        self.schedule.validate(self.steps)
    }
}

/// Metrics of one step from its on-device stats (see [`StepStats`]); `algo_idx` as in [`accuracy`].
pub fn metrics_from_stats(
    step: u64,
    lr: f64,
    s: &StepStats,
    batch: usize,
    algo_idx: &[usize],
) -> Metrics {
    let b = batch.max(1) as f32;
    let total: u32 = s.pos_correct.iter().sum();
    let scored: u32 = s.pos_scored.iter().sum();
    let algo: u32 = algo_idx.iter().map(|&j| s.pos_correct[j]).sum();
    let algo_scored: u32 = algo_idx.iter().map(|&j| s.pos_scored[j]).sum();
    Metrics {
        step,
        loss: s.loss,
        token_acc: total as f32 / scored.max(1) as f32,
        seq_acc: s.seq_correct as f32 / b,
        algo_acc: algo as f32 / algo_scored.max(1) as f32,
        grad_norm: s.grad_norm,
        lr,
        per_pos_acc: (s.pos_correct.iter().zip(&s.pos_scored))
            .map(|(&c, &n)| c as f32 / n.max(1) as f32)
            .collect(),
    }
}

/// Metrics of one training step (the page's charts and the CLI's progress line).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub step: u64,
    pub loss: f32,
    /// Greedy accuracy over the predicted positions of this batch.
    pub token_acc: f32,
    /// Fraction of sequences with every predicted token right.
    pub seq_acc: f32,
    /// Greedy accuracy over the task's algorithm positions (permutations: after the first term).
    pub algo_acc: f32,
    pub grad_norm: f32,
    pub lr: f64,
    /// Greedy accuracy at each predicted position (`TaskSpec::pred_positions` order).
    pub per_pos_acc: Vec<f32>,
}

/// Accuracy figures from (B, P) argmax against targets, restricted for `algo_acc` to the
/// indices (into the P predicted positions) in `algo_idx`: (token, sequence, algorithm,
/// per-position) accuracy, as in [`metrics_from_stats`].
pub fn accuracy(
    argmax: &[u32],
    targets: &[u32],
    p: usize,
    algo_idx: &[usize],
) -> (f32, f32, f32, Vec<f32>) {
    let b = argmax.len() / p.max(1);
    let s = StepStats::count(0.0, 0.0, argmax, targets, p);
    let m = metrics_from_stats(0, 0.0, &s, b, algo_idx);
    (m.token_acc, m.seq_acc, m.algo_acc, m.per_pos_acc)
}

/// Indices into the task's predicted positions (`TaskSpec::pred_positions`) of its algorithm
/// positions (`TaskSpec::algo_positions`): what `algo_acc` and `algo_loss` average over.
pub fn algo_index(task: &TaskSpec) -> Vec<usize> {
    let algo = task.algo_positions();
    task.pred_positions()
        .iter()
        .enumerate()
        .filter(|(_, p)| algo.contains(p))
        .map(|(i, _)| i)
        .collect()
}

/// A run's bookkeeping, whatever computes its steps: the task, the settings, the steps done and
/// their metrics, the learning-rate schedule. [`Trainer`] wraps it around a synchronous
/// [`Backend`]; the browser's WebGPU session (`crate::wasm`) around the asynchronous GPU engine.
pub struct TrainRun {
    pub task: TaskSpec,
    pub train: TrainConfig,
    /// Steps completed so far.
    pub step: u64,
    pub history: Vec<Metrics>,
    /// P, the number of predicted positions.
    n_pred: usize,
    algo_idx: Vec<usize>,
    sched: LrScheduler,
}

impl TrainRun {
    pub fn new(task: TaskSpec, train: TrainConfig) -> Result<Self> {
        task.validate()?;
        train.validate()?;
        let algo_idx = algo_index(&task);
        let n_pred = task.pred_positions().len();
        let sched = LrScheduler::new(train.schedule.clone(), train.lr, train.steps);
        Ok(TrainRun {
            task,
            train,
            step: 0,
            history: Vec::new(),
            n_pred,
            algo_idx,
            sched,
        })
    }

    pub fn done(&self) -> bool {
        self.step >= self.train.steps
    }

    /// The learning rates of the next chunk: up to `n` steps, never past `train.steps`. Only for
    /// schedules that do not depend on the loss (`Schedule::depends_on_loss`), whose rates are
    /// known ahead.
    pub fn chunk_lrs(&self, n: u64) -> Vec<f64> {
        let n = n.min(self.train.steps.saturating_sub(self.step));
        (0..n)
            .map(|i| {
                self.train
                    .schedule
                    .lr(self.train.lr, self.step + i, self.train.steps)
            })
            .collect()
    }

    /// Counts the steps of a chunk trained at `lrs`: their metrics (also appended to `history`),
    /// and the error of the step that failed, if one did (the steps before it are kept).
    pub fn record_chunk(&mut self, out: ChunkOutput, lrs: &[f64]) -> (Vec<Metrics>, Option<Error>) {
        let b = self.train.batch_size;
        let mut ms = Vec::with_capacity(out.steps.len());
        for (s, lr) in out.steps.iter().zip(lrs) {
            ms.push(self.record(s, *lr, b));
        }
        (ms, out.error)
    }

    /// One step's metrics from its stats; advances the step count and the history.
    fn record(&mut self, s: &StepStats, lr: f64, batch: usize) -> Metrics {
        let m = metrics_from_stats(self.step, lr, s, batch, &self.algo_idx);
        self.step += 1;
        self.history.push(m.clone());
        m
    }

    /// The learning-rate schedule's running state (for a checkpoint).
    pub fn schedule_state(&self) -> ScheduleState {
        self.sched.state()
    }

    /// Restores the schedule's running state saved with a checkpoint.
    pub fn set_schedule_state(&mut self, s: &ScheduleState) -> Result<()> {
        self.sched.set_state(s)
    }
}

/// Drives a backend through a run, one step at a time (the page calls `step` from its
/// worker loop; the CLI calls `run`). The run's bookkeeping is its [`TrainRun`], reached through
/// `Deref` (`trainer.step`, `trainer.history`, ...).
pub struct Trainer {
    pub backend: Box<dyn Backend>,
    core: TrainRun,
}

impl std::ops::Deref for Trainer {
    type Target = TrainRun;
    fn deref(&self) -> &TrainRun {
        &self.core
    }
}

impl std::ops::DerefMut for Trainer {
    fn deref_mut(&mut self) -> &mut TrainRun {
        &mut self.core
    }
}

impl Trainer {
    pub fn new(task: TaskSpec, train: TrainConfig, backend: Box<dyn Backend>) -> Result<Self> {
        Ok(Trainer {
            backend,
            core: TrainRun::new(task, train)?,
        })
    }

    /// The backend and the run's bookkeeping at once, for calls that need both.
    pub fn parts(&mut self) -> (&mut dyn Backend, &TrainRun) {
        (self.backend.as_mut(), &self.core)
    }

    /// One training step; returns its metrics (also appended to `history`).
    pub fn step(&mut self) -> Result<Metrics> {
        let r = &mut self.core;
        let b = r.train.batch_size;
        let batch = Batch::of_task(&r.task, r.train.seed, r.step, b, Split::Train);
        let lr = r.sched.lr(r.step);
        let out = self.backend.train_batch(&batch, lr, r.step)?;
        r.sched.observe(out.loss as f64);
        let p = r.n_pred;
        let stats = StepStats::count(out.loss, out.grad_norm, &out.argmax, &batch.targets, p);
        Ok(r.record(&stats, lr, b))
    }

    /// Up to `n` steps (never past `train.steps`) in one [`Backend::train_chunk`]; returns their
    /// metrics (also appended to `history`). If a step fails, the steps before it are kept and the
    /// error is returned.
    pub fn step_many(&mut self, n: u64) -> Result<Vec<Metrics>> {
        if self.train.schedule.depends_on_loss() {
            // each step's rate needs the previous step's loss: one step at a time
            let n = n.min(self.train.steps.saturating_sub(self.step));
            return (0..n).map(|_| self.step()).collect();
        }
        let lrs = self.core.chunk_lrs(n);
        if lrs.is_empty() {
            return Ok(Vec::new());
        }
        let r = &self.core;
        let out =
            self.backend
                .train_chunk(&r.task, r.train.seed, r.step, r.train.batch_size, &lrs)?;
        match self.core.record_chunk(out, &lrs) {
            (_, Some(e)) => Err(e),
            (ms, None) => Ok(ms),
        }
    }

    /// Runs to `train.steps`, calling `progress` after every step.
    pub fn run(&mut self, mut progress: impl FnMut(&Metrics)) -> Result<()> {
        while !self.done() {
            let m = self.step()?;
            progress(&m);
        }
        Ok(())
    }
}

/// The model's vocabulary and context must fit the task.
pub fn check_compatible(task: &TaskSpec, cfg: &crate::model::ModelConfig) -> Result<()> {
    task.validate()?;
    cfg.validate()?;
    if cfg.n_ctx < task.seq_len() {
        return Err(Error::config(
            "n_ctx",
            format!(
                "{} is shorter than the task's sequence length {}",
                cfg.n_ctx,
                task.seq_len()
            ),
        ));
    }
    if cfg.d_vocab != task.d_vocab() {
        return Err(Error::config(
            "d_vocab",
            format!(
                "{} does not match the task's vocabulary size {}",
                cfg.d_vocab,
                task.d_vocab()
            ),
        ));
    }
    if cfg.d_vocab_out != task.d_vocab_out() {
        return Err(Error::config(
            "d_vocab_out",
            format!(
                "{} does not match the task's output vocabulary {}",
                cfg.d_vocab_out,
                task.d_vocab_out()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::accuracy;

    #[test]
    fn accuracy_counts_tokens_sequences_positions_and_algo_subset() {
        // B = 2, P = 3; row 0 all right, row 1 wrong at position 1
        let targets = [1, 2, 3, 4, 5, 6];
        let argmax = [1, 2, 3, 4, 0, 6];
        let (tok, seq, algo, per) = accuracy(&argmax, &targets, 3, &[1, 2]);
        assert!((tok - 5.0 / 6.0).abs() < 1e-6);
        assert!((seq - 0.5).abs() < 1e-6);
        assert!((algo - 0.75).abs() < 1e-6);
        assert_eq!(per, vec![1.0, 0.5, 1.0]);
    }
}
