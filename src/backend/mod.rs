//! The backend contract: the [`Backend`] trait every compute backend implements (the fast
//! CPU engine [`crate::cpu`], the GPU [`crate::gpu`], the candle [`crate::reference`]), the
//! data it exchanges with the trainer, the optimiser's settings and saved state. It sits below
//! the backends and the trainer; choosing and building one is [`crate::backends`], above both.

use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamTable, Weights};
use crate::tasks::{Split, TaskSpec};
use serde::{Deserialize, Serialize};

/// Gradients by TransformerLens key, in parameter-table order (for tests against the reference).
pub type NamedGrads<F> = Vec<(String, Vec<F>)>;

/// AdamW's settings (PyTorch's `AdamW` and `clip_grad_norm_`); the learning rate is given
/// per step. Built from a run's settings by `TrainConfig::adamw`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value; 0 = off.
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    /// Seed 003's: betas (0.9, 0.98), eps 1e-8, weight decay 0.01, clipping at 1.0.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: 0.01,
            grad_clip: 1.0,
        }
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

/// One step of a chunk, as reduced on the device: enough for every `train::Metrics` field.
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    pub loss: f32,
    pub grad_norm: f32,
    /// Sequences right at each predicted position (`TaskSpec::pred_positions` order).
    pub pos_correct: Vec<u32>,
    /// Sequences that score each predicted position (B where no target is
    /// [`Batch::IGNORE`]): the denominators of the per-position accuracies.
    pub pos_scored: Vec<u32>,
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

/// One training batch: B sequences of T tokens and the target of every scored position.
/// Most tasks' target at p is the next token `tokens[p + 1]` ([`Batch::next_token`]); others
/// give theirs explicitly (`Task::targets`: the token before, a label).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// (B, T) token ids, row-major.
    pub tokens: Vec<u32>,
    /// (B, P) the target class of each scored position, in `pred_positions` order, or
    /// [`Batch::IGNORE`] where this row leaves the position unscored.
    pub targets: Vec<u32>,
    /// B, the number of sequences.
    pub size: usize,
}

impl Batch {
    /// The target of a position a row leaves unscored (a custom data line that scores fewer
    /// positions than the union the model scores). The loss is the mean over the scored
    /// (row, position) pairs only, and accuracy counts only them; a batch must score at least
    /// one pair ([`Batch::check`]).
    pub const IGNORE: u32 = crate::tasks::UNSCORED;

    /// The number of scored (row, position) pairs: the targets that are not [`Batch::IGNORE`].
    pub fn scored(&self) -> usize {
        scored(&self.targets)
    }

    /// The batch whose targets are the next tokens: `tokens[b, p + 1]` for p in `pred`. The
    /// error (field `tokens`) names a ragged batch or a target past the end of the sequences.
    pub fn next_token(tokens: &[u32], size: usize, pred: &[usize]) -> Result<Batch> {
        if size == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(size) {
            return Err(Error::config(
                "tokens",
                format!("{} tokens do not split into {size} sequences", tokens.len()),
            ));
        }
        let t = tokens.len() / size;
        if let Some(&p) = pred.iter().find(|&&p| p + 1 >= t) {
            return Err(Error::config(
                "tokens",
                format!(
                    "predicted position {p} has its target at {}, past the {t} tokens given",
                    p + 1
                ),
            ));
        }
        let targets = tokens
            .chunks(t)
            .flat_map(|seq| pred.iter().map(move |&p| seq[p + 1]))
            .collect();
        Ok(Batch {
            tokens: tokens.to_vec(),
            targets,
            size,
        })
    }

    /// Training batch `step` of `task` from one side of its split: the rows of
    /// `TaskSpec::batch_split` and their targets from `TaskSpec::targets`.
    pub fn of_task(task: &TaskSpec, seed: u64, step: u64, size: usize, split: Split) -> Batch {
        let tokens = task.batch_split(seed, step, size, split);
        let t = task.seq_len().max(1);
        let targets = tokens
            .chunks(t)
            .flat_map(|seq| task.scored_targets(seq))
            .collect();
        Batch {
            tokens,
            targets,
            size,
        }
    }

    /// Checks the batch against a model scoring `pred` (ascending) positions: the tokens as
    /// [`ModelConfig::check_tokens`] does, every scored position inside the sequences, one
    /// target per scored position of each sequence, every target below d_vocab_out.
    /// Returns T.
    pub fn check(&self, cfg: &ModelConfig, pred: &[usize]) -> Result<usize> {
        let t = cfg.check_tokens(&self.tokens, self.size)?;
        match pred.last() {
            None => {
                return Err(Error::config(
                    "pred_positions",
                    "no positions to score: training needs at least one",
                ))
            }
            Some(&p) if p >= t => {
                return Err(Error::config(
                    "tokens",
                    format!("scored position {p} is past the {t} tokens given"),
                ))
            }
            _ => {}
        }
        if self.targets.len() != self.size * pred.len() {
            return Err(Error::config(
                "targets",
                format!(
                    "{} targets for {} sequences of {} scored positions",
                    self.targets.len(),
                    self.size,
                    pred.len()
                ),
            ));
        }
        if let Some(bad) = self
            .targets
            .iter()
            .find(|&&x| x != Batch::IGNORE && x as usize >= cfg.d_vocab_out)
        {
            return Err(Error::config(
                "targets",
                format!(
                    "target {bad} is outside the output vocabulary (d_vocab_out {})",
                    cfg.d_vocab_out
                ),
            ));
        }
        if self.scored() == 0 {
            return Err(Error::config(
                "targets",
                "every target is unscored (Batch::IGNORE): the batch has nothing to learn from",
            ));
        }
        Ok(t)
    }
}

/// The number of targets that are not [`Batch::IGNORE`].
pub fn scored(targets: &[u32]) -> usize {
    targets.iter().filter(|&&x| x != Batch::IGNORE).count()
}

/// A compute backend: owns the weights and the optimiser state.
pub trait Backend {
    /// "cpu" or "webgpu: <adapter>" etc., for the badge and the CLI's JSON.
    fn name(&self) -> String;
    /// The positions whose logits the loss scores (ascending), as given at construction.
    fn pred_positions(&self) -> &[usize];
    /// One AdamW step on `batch` (its tokens and targets) at learning rate `lr`. If the loss
    /// or the gradient is not finite, returns [`Error::Diverged`] without touching the
    /// weights.
    fn train_batch(&mut self, batch: &Batch, lr: f64, step: u64) -> Result<StepOutput>;
    /// [`Backend::train_batch`] on `tokens` (B, T) with next-token targets
    /// ([`Batch::next_token`]), what the language-model tasks train on.
    fn train_step(
        &mut self,
        tokens: &[u32],
        batch: usize,
        lr: f64,
        step: u64,
    ) -> Result<StepOutput> {
        let b = Batch::next_token(tokens, batch, self.pred_positions())?;
        self.train_batch(&b, lr, step)
    }
    /// `lrs.len()` steps on the task's data stream from `first_step` (step i trains on
    /// `Batch::of_task(task, seed, first_step + i, batch, Split::Train)` at `lrs[i]`). The GPU
    /// backend runs them without a readback per step; this default loops over
    /// [`Backend::train_batch`].
    fn train_chunk(
        &mut self,
        task: &TaskSpec,
        seed: u64,
        first_step: u64,
        batch: usize,
        lrs: &[f64],
    ) -> Result<ChunkOutput> {
        let p = task.pred_positions().len();
        let mut steps = Vec::with_capacity(lrs.len());
        for (i, &lr) in lrs.iter().enumerate() {
            let step = first_step + i as u64;
            let b = Batch::of_task(task, seed, step, batch, Split::Train);
            let out = match self.train_batch(&b, lr, step) {
                Ok(o) => o,
                Err(e) => {
                    return Ok(ChunkOutput {
                        steps,
                        error: Some(e),
                    })
                }
            };
            steps.push(StepStats::count(
                out.loss,
                out.grad_norm,
                &out.argmax,
                &b.targets,
                p,
            ));
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
    /// This backend as `Any`, for a caller that drives a concrete backend's own API as well (the
    /// page's worker pool drives the sharded CPU engine's); `None` for a backend that offers none.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
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

/// Which backend to use (`--backend`, the page's backend setting); built by
/// [`crate::backends::make_backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The hand-written CPU engine ([`crate::cpu::CpuEngine`]).
    Cpu,
    /// The candle reference backend ([`crate::reference::ReferenceBackend`]): slower, the
    /// definition the others are tested against.
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

impl StepStats {
    /// Counts (B, P) argmax against (B, P) targets: sequences right at each of the P predicted
    /// positions, sequences scoring each, and sequences right at all their scored positions
    /// (an unscored position, [`Batch::IGNORE`], is neither right nor wrong).
    pub fn count(loss: f32, grad_norm: f32, argmax: &[u32], targets: &[u32], p: usize) -> Self {
        let mut pos_correct = vec![0u32; p];
        let mut pos_scored = vec![0u32; p];
        let mut seq_correct = 0;
        for (am, tg) in argmax.chunks(p.max(1)).zip(targets.chunks(p.max(1))) {
            let mut all = true;
            for (j, (a, &t)) in am.iter().zip(tg).enumerate() {
                if t == Batch::IGNORE {
                    continue;
                }
                let ok = *a == t;
                pos_correct[j] += ok as u32;
                pos_scored[j] += 1;
                all &= ok;
            }
            seq_correct += all as u32;
        }
        StepStats {
            loss,
            grad_norm,
            pos_correct,
            pos_scored,
            seq_correct,
        }
    }

    /// Sequences scoring each of the P positions of a (B, P) target list.
    pub fn scored_positions(targets: &[u32], p: usize) -> Vec<u32> {
        let mut out = vec![0u32; p];
        for tg in targets.chunks(p.max(1)) {
            for (o, &t) in out.iter_mut().zip(tg) {
                *o += (t != Batch::IGNORE) as u32;
            }
        }
        out
    }
}

impl OptimizerState {
    /// Checks a state against the parameter table it is to be restored into: one moment value
    /// per table value, all finite, the second moments ≥ 0. The error names the tensor.
    pub fn validate(&self, table: &ParamTable) -> Result<()> {
        let n = table.total_len();
        if self.m.len() != n || self.v.len() != n {
            return Err(Error::Weights(format!(
                "optimiser state holds {} and {} values, the model has {n} parameters",
                self.m.len(),
                self.v.len()
            )));
        }
        for p in &table.params {
            let r = p.offset..p.offset + p.len;
            if !self.m[r.clone()].iter().all(|x| x.is_finite()) {
                return Err(Error::Weights(format!(
                    "optimiser state: the first moment of `{}` is not finite",
                    p.name
                )));
            }
            if !self.v[r].iter().all(|&x| x.is_finite() && x >= 0.0) {
                return Err(Error::Weights(format!(
                    "optimiser state: the second moment of `{}` must be finite and ≥ 0",
                    p.name
                )));
            }
        }
        Ok(())
    }
}

/// Every scored position lies inside the context, and scored positions are strictly
/// ascending. (Where a target comes from is the batch's business: [`Batch`].)
pub fn check_pred_positions(cfg: &ModelConfig, pred: &[usize]) -> Result<()> {
    if let Some(&p) = pred.iter().find(|&&p| p >= cfg.n_ctx) {
        return Err(Error::config(
            "n_ctx",
            format!(
                "predicted position {p} is outside the context of {} tokens",
                cfg.n_ctx
            ),
        ));
    }
    if pred.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::config(
            "pred_positions",
            "scored positions must be strictly ascending",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_state_validation_names_what_is_wrong() {
        let table = ParamTable::new(&ModelConfig::sort_ref());
        let n = table.total_len();
        let good = OptimizerState {
            t: 3,
            m: vec![0.5; n],
            v: vec![0.25; n],
        };
        good.validate(&table).unwrap();
        let short = OptimizerState {
            m: vec![0.0; n - 1],
            ..good.clone()
        };
        let e = short.validate(&table).unwrap_err().to_string();
        assert!(e.contains(&format!("{} and {n} values", n - 1)), "{e}");
        // a bad value in the last tensor is named by that tensor
        let last = table.params.last().unwrap();
        let mut nan = good.clone();
        nan.m[last.offset] = f32::NAN;
        let e = nan.validate(&table).unwrap_err().to_string();
        assert!(
            e.contains(&format!("first moment of `{}`", last.name)),
            "{e}"
        );
        let mut neg = good.clone();
        neg.v[last.offset + last.len - 1] = -1e-30;
        let e = neg.validate(&table).unwrap_err().to_string();
        assert!(
            e.contains(&format!("second moment of `{}`", last.name)),
            "{e}"
        );
    }

    #[test]
    fn step_stats_count_positions_and_whole_sequences() {
        // B = 3, P = 2: row 0 all right, row 1 wrong at 0, row 2 wrong at both
        let targets = [1, 2, 3, 4, 5, 6];
        let argmax = [1, 2, 0, 4, 0, 0];
        let s = StepStats::count(0.5, 2.0, &argmax, &targets, 2);
        assert_eq!(s.pos_correct, vec![1, 2]);
        assert_eq!(s.seq_correct, 1);
        assert_eq!((s.loss, s.grad_norm), (0.5, 2.0));
    }
}
