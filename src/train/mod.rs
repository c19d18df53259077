//! Training over a backend trait: the same trainer drives the candle CPU backend and the
//! GPU backend, and the page drives the trainer. Data come from the task's counter-based
//! RNG, so (task, model config, train config) fully determine a run.

pub mod eval;
pub mod schedule;

use crate::error::{Error, Result};
use crate::model::Weights;
use crate::tasks::TaskSpec;
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

impl TrainConfig {
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

/// What one optimisation step reports.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// Mean cross-entropy over the batch's predicted positions (before the update).
    pub loss: f32,
    /// Global L2 norm of the gradient of the trainable parameters, before clipping.
    pub grad_norm: f32,
    /// (B, P) argmax of the logits at the predicted positions.
    pub argmax: Vec<u32>,
}

/// One step of a chunk, as reduced on the device: enough for every [`Metrics`] field.
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    pub loss: f32,
    pub grad_norm: f32,
    /// Sequences right at each predicted position (`TaskSpec::pred_positions` order).
    pub pos_correct: Vec<u32>,
    /// Sequences with every predicted token right.
    pub seq_correct: u32,
}

/// What [`Backend::train_chunk`] did: the steps that completed and, if one failed (divergence,
/// device loss), its error.
#[derive(Debug)]
pub struct ChunkOutput {
    pub steps: Vec<StepStats>,
    pub error: Option<Error>,
}

/// A compute backend: owns the weights and the optimiser state.
pub trait Backend {
    /// "cpu" or "webgpu: <adapter>" etc., for the badge and the CLI's JSON.
    fn name(&self) -> String;
    /// One AdamW step on `tokens` (B, T) at learning rate `lr`. If the loss or the gradient
    /// is not finite, returns [`Error::Diverged`] without touching the weights.
    fn train_step(
        &mut self,
        tokens: &[u32],
        batch: usize,
        lr: f64,
        step: u64,
    ) -> Result<StepOutput>;
    /// `lrs.len()` steps on the task's data stream from `first_step` (step i trains on
    /// `task.batch(seed, first_step + i, batch)` at `lrs[i]`). The GPU backend runs them without a
    /// readback per step; this default loops over [`Backend::train_step`].
    fn train_chunk(
        &mut self,
        task: &TaskSpec,
        seed: u64,
        first_step: u64,
        batch: usize,
        lrs: &[f64],
    ) -> Result<ChunkOutput> {
        let t = task.seq_len();
        let p = task.pred_positions().len();
        let mut steps = Vec::with_capacity(lrs.len());
        for (i, &lr) in lrs.iter().enumerate() {
            let step = first_step + i as u64;
            let tokens = task.batch(seed, step, batch);
            let out = match self.train_step(&tokens, batch, lr, step) {
                Ok(o) => o,
                Err(e) => {
                    return Ok(ChunkOutput {
                        steps,
                        error: Some(e),
                    })
                }
            };
            let mut pos_correct = vec![0u32; p];
            let mut seq_correct = 0;
            for b in 0..batch {
                let targets = task.targets(&tokens[b * t..(b + 1) * t]);
                let mut all = true;
                for (j, tg) in targets.iter().enumerate() {
                    let ok = out.argmax[b * p + j] == *tg;
                    pos_correct[j] += ok as u32;
                    all &= ok;
                }
                seq_correct += all as u32;
            }
            steps.push(StepStats {
                loss: out.loss,
                grad_norm: out.grad_norm,
                pos_correct,
                seq_correct,
            });
        }
        Ok(ChunkOutput { steps, error: None })
    }
    /// Logits (B, T, V) for `tokens` (B, T); T may be shorter than n_ctx.
    fn logits(&mut self, tokens: &[u32], batch: usize) -> Result<Vec<f32>>;
    /// A host copy of the current weights.
    fn weights(&self) -> Result<Weights>;
    /// Replace the weights (the optimiser state is reset).
    fn set_weights(&mut self, w: &Weights) -> Result<()>;
    /// The optimiser's state, so that a saved run can continue exactly. Backends that cannot
    /// export it say so.
    fn optimizer_state(&self) -> Result<OptimizerState> {
        Err(Error::Backend(format!(
            "the {} backend cannot export its optimiser state",
            self.name()
        )))
    }
    /// Restores a state from [`Backend::optimizer_state`] (after [`Backend::set_weights`]).
    fn set_optimizer_state(&mut self, _state: &OptimizerState) -> Result<()> {
        Err(Error::Backend(format!(
            "the {} backend cannot restore an optimiser state",
            self.name()
        )))
    }
}

/// AdamW's state in the parameter table's layout: the step count `t` of the bias
/// corrections and the two moments as flat buffers (total_len,), zeros for frozen tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    pub t: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// Which backend to use (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The hand-written CPU engine (`cpu::engine::CpuEngine`).
    Cpu,
    /// The candle reference backend (`cpu::CpuBackend`): slower, the definition the
    /// others are tested against.
    Reference,
    Gpu,
    Auto,
}

impl BackendKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendKind::Cpu),
            "reference" => Ok(BackendKind::Reference),
            "gpu" => Ok(BackendKind::Gpu),
            "auto" => Ok(BackendKind::Auto),
            _ => Err(Error::config(
                "backend",
                format!("unknown backend {s:?} (use cpu, reference, gpu or auto)"),
            )),
        }
    }
}

/// Builds a backend for these weights. `Gpu` takes any adapter (a software one such as lavapipe
/// too); `Auto` takes a hardware GPU when there is one, else the CPU. In the browser the GPU is
/// driven asynchronously (`gpu::GpuRunner`), so there `Gpu` is refused here.
pub fn make_backend(
    kind: BackendKind,
    w: &Weights,
    tc: &TrainConfig,
    task: &TaskSpec,
) -> Result<Box<dyn Backend>> {
    let cpu = || -> Result<Box<dyn Backend>> {
        Ok(Box::new(crate::cpu::engine::CpuEngine::new(
            w,
            tc,
            task.pred_positions(),
        )?))
    };
    if kind == BackendKind::Reference {
        return Ok(Box::new(crate::cpu::CpuBackend::new(
            w,
            tc,
            task.pred_positions(),
        )?));
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use crate::gpu::{AdapterChoice, GpuBackend};
        match kind {
            BackendKind::Cpu | BackendKind::Reference => cpu(),
            BackendKind::Gpu => {
                let mut g = GpuBackend::new(w, tc, task.pred_positions())?;
                g.runner.prepare(tc.batch_size, task.seq_len())?;
                Ok(Box::new(g))
            }
            // a hardware GPU that can hold this config, else the CPU (which reports a bad config itself)
            BackendKind::Auto => {
                let gpu =
                    GpuBackend::with_choice(w, tc, task.pred_positions(), AdapterChoice::Hardware)
                        .and_then(|mut g| {
                            g.runner.prepare(tc.batch_size, task.seq_len()).map(|_| g)
                        });
                match gpu {
                    Ok(g) => Ok(Box::new(g)),
                    Err(_) => cpu(),
                }
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    match kind {
        BackendKind::Cpu | BackendKind::Reference | BackendKind::Auto => cpu(),
        BackendKind::Gpu => Err(Error::Backend(
            "in the browser the GPU backend runs asynchronously: use the GPU session".into(),
        )),
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
    let p = s.pos_correct.len();
    let b = batch.max(1) as f32;
    let total: u32 = s.pos_correct.iter().sum();
    let algo: u32 = algo_idx.iter().map(|&j| s.pos_correct[j]).sum();
    Metrics {
        step,
        loss: s.loss,
        token_acc: total as f32 / (b * p.max(1) as f32),
        seq_acc: s.seq_correct as f32 / b,
        algo_acc: algo as f32 / (b * algo_idx.len().max(1) as f32),
        grad_norm: s.grad_norm,
        lr,
        per_pos_acc: s.pos_correct.iter().map(|&c| c as f32 / b).collect(),
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
/// indices (into the P predicted positions) in `algo_idx`.
pub fn accuracy(
    argmax: &[u32],
    targets: &[u32],
    p: usize,
    algo_idx: &[usize],
) -> (f32, f32, f32, Vec<f32>) {
    let b = argmax.len() / p.max(1);
    let mut per_pos = vec![0u32; p];
    let mut seq_ok = 0u32;
    let mut algo_ok = 0u32;
    for i in 0..b {
        let mut all = true;
        for j in 0..p {
            let ok = argmax[i * p + j] == targets[i * p + j];
            per_pos[j] += ok as u32;
            all &= ok;
        }
        seq_ok += all as u32;
        algo_ok += algo_idx
            .iter()
            .filter(|&&j| argmax[i * p + j] == targets[i * p + j])
            .count() as u32;
    }
    let tok = per_pos.iter().sum::<u32>() as f32 / (b * p).max(1) as f32;
    let per_pos: Vec<f32> = per_pos
        .iter()
        .map(|&c| c as f32 / b.max(1) as f32)
        .collect();
    let algo = algo_ok as f32 / (b * algo_idx.len()).max(1) as f32;
    (tok, seq_ok as f32 / b.max(1) as f32, algo, per_pos)
}

/// Drives a backend through a run, one step at a time (the page calls `step` from its
/// worker loop; the CLI calls `run`).
pub struct Trainer {
    pub task: TaskSpec,
    pub train: TrainConfig,
    pub backend: Box<dyn Backend>,
    /// Steps completed so far.
    pub step: u64,
    pub history: Vec<Metrics>,
    pred_positions: Vec<usize>,
    algo_idx: Vec<usize>,
    sched: LrScheduler,
}

impl Trainer {
    pub fn new(task: TaskSpec, train: TrainConfig, backend: Box<dyn Backend>) -> Result<Self> {
        task.validate()?;
        train.validate()?;
        let pred_positions = task.pred_positions();
        let algo = task.algo_positions();
        let algo_idx = pred_positions
            .iter()
            .enumerate()
            .filter(|(_, p)| algo.contains(p))
            .map(|(i, _)| i)
            .collect();
        let sched = LrScheduler::new(train.schedule.clone(), train.lr, train.steps);
        Ok(Trainer {
            task,
            train,
            backend,
            step: 0,
            history: Vec::new(),
            pred_positions,
            algo_idx,
            sched,
        })
    }

    /// Fresh weights from `cfg.seed` on the chosen backend.
    pub fn from_scratch(
        task: TaskSpec,
        model: &crate::model::ModelConfig,
        train: TrainConfig,
        kind: BackendKind,
    ) -> Result<Self> {
        check_compatible(&task, model)?;
        let w = Weights::init(model)?;
        let backend = make_backend(kind, &w, &train, &task)?;
        Self::new(task, train, backend)
    }

    /// Continues a run from saved weights at step `step` (the data stream and the LR
    /// schedule carry on from there). With the optimiser state of that step the run goes on
    /// exactly as if it had never stopped; without it AdamW starts again from zero moments.
    pub fn resume(
        task: TaskSpec,
        w: &Weights,
        train: TrainConfig,
        kind: BackendKind,
        step: u64,
        opt: Option<&OptimizerState>,
    ) -> Result<Self> {
        check_compatible(&task, &w.cfg)?;
        let mut backend = make_backend(kind, w, &train, &task)?;
        if let Some(s) = opt {
            backend.set_optimizer_state(s)?;
        }
        let mut t = Self::new(task, train, backend)?;
        t.step = step;
        Ok(t)
    }

    pub fn done(&self) -> bool {
        self.step >= self.train.steps
    }

    /// One training step; returns its metrics (also appended to `history`).
    pub fn step(&mut self) -> Result<Metrics> {
        let b = self.train.batch_size;
        let tokens = self.task.batch(self.train.seed, self.step, b);
        let lr = self.sched.lr(self.step);
        let out = self.backend.train_step(&tokens, b, lr, self.step)?;
        self.sched.observe(out.loss as f64);
        let t = self.task.seq_len();
        let p = self.pred_positions.len();
        let mut targets = Vec::with_capacity(b * p);
        for i in 0..b {
            targets.extend(self.task.targets(&tokens[i * t..(i + 1) * t]));
        }
        let (token_acc, seq_acc, algo_acc, per_pos_acc) =
            accuracy(&out.argmax, &targets, p, &self.algo_idx);
        let m = Metrics {
            step: self.step,
            loss: out.loss,
            token_acc,
            seq_acc,
            algo_acc,
            grad_norm: out.grad_norm,
            lr,
            per_pos_acc,
        };
        self.step += 1;
        self.history.push(m.clone());
        Ok(m)
    }

    /// Up to `n` steps (never past `train.steps`) in one [`Backend::train_chunk`]; returns their
    /// metrics (also appended to `history`). If a step fails, the steps before it are kept and the
    /// error is returned.
    pub fn step_many(&mut self, n: u64) -> Result<Vec<Metrics>> {
        let n = n.min(self.train.steps.saturating_sub(self.step));
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.train.schedule.depends_on_loss() {
            // each step's rate needs the previous step's loss: one step at a time
            let mut ms = Vec::with_capacity(n as usize);
            for _ in 0..n {
                ms.push(self.step()?);
            }
            return Ok(ms);
        }
        let b = self.train.batch_size;
        let lrs: Vec<f64> = (0..n)
            .map(|i| {
                self.train
                    .schedule
                    .lr(self.train.lr, self.step + i, self.train.steps)
            })
            .collect();
        let out = self
            .backend
            .train_chunk(&self.task, self.train.seed, self.step, b, &lrs)?;
        let mut ms = Vec::with_capacity(out.steps.len());
        for (s, lr) in out.steps.iter().zip(&lrs) {
            let m = metrics_from_stats(self.step, *lr, s, b, &self.algo_idx);
            self.step += 1;
            self.history.push(m.clone());
            ms.push(m);
        }
        match out.error {
            Some(e) => Err(e),
            None => Ok(ms),
        }
    }

    /// The learning-rate schedule's running state (for a checkpoint).
    pub fn schedule_state(&self) -> ScheduleState {
        self.sched.state()
    }

    /// Restores the schedule's running state saved with a checkpoint.
    pub fn set_schedule_state(&mut self, s: &ScheduleState) -> Result<()> {
        self.sched.set_state(s)
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
