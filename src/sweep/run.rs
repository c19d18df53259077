//! One run of a sweep: train, evaluate along the way, evaluate at the end.

use super::grid::{RunSpec, Settings};
use crate::error::{Error, Result};
use crate::tasks::{Split, TaskSpec};
use crate::train::eval::{evaluate_split, EvalReport};
use crate::train::{Metrics, Trainer};
use serde::{Deserialize, Serialize};

/// Samples per forward pass during evaluation (memory, not results).
const EVAL_CHUNK: usize = 64;

/// One point of a run's learning curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Steps done.
    pub step: u64,
    /// Mean training loss over the steps since the previous point.
    #[serde(with = "super::nan_as_null")]
    pub train_loss: f64,
    /// Algorithm accuracy and loss on the curve samples (eval split).
    #[serde(with = "super::nan_as_null")]
    pub algo_acc: f64,
    #[serde(with = "super::nan_as_null")]
    pub algo_loss: f64,
}

/// Final evaluation figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub samples: usize,
    #[serde(with = "super::nan_as_null")]
    pub loss: f64,
    #[serde(with = "super::nan_as_null")]
    pub algo_loss: f64,
    #[serde(with = "super::nan_as_null")]
    pub token_acc: f64,
    #[serde(with = "super::nan_as_null")]
    pub algo_acc: f64,
    #[serde(with = "super::nan_as_null")]
    pub seq_acc: f64,
}

impl From<&EvalReport> for EvalSummary {
    fn from(r: &EvalReport) -> Self {
        EvalSummary {
            samples: r.samples,
            loss: r.loss,
            algo_loss: r.algo_loss,
            token_acc: r.token_acc,
            algo_acc: r.algo_acc,
            seq_acc: r.seq_acc,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub spec: RunSpec,
    pub n_params: usize,
    /// The task's loss floor (nats per predicted token, training distribution).
    #[serde(with = "super::nan_as_null")]
    pub floor: f64,
    pub steps_done: u64,
    /// Mean training loss over the last 5% of the steps (at least 1); NaN (`null` in
    /// JSON) when no step finished.
    #[serde(with = "super::nan_as_null")]
    pub final_loss: f64,
    /// `final_loss − floor`.
    #[serde(with = "super::nan_as_null")]
    pub excess: f64,
    /// Largest gradient norm of the run and the step where it happened.
    #[serde(with = "super::nan_as_null")]
    pub max_grad_norm: f64,
    pub max_grad_norm_step: u64,
    /// The evaluation on the eval split: held-out combinations when the task has a
    /// split, else fresh samples.
    pub eval: Option<EvalSummary>,
    /// With a split: fresh samples of the training combinations, for the gap.
    pub eval_train_split: Option<EvalSummary>,
    /// First curve step with algorithm accuracy ≥ target, if any.
    pub steps_to_target: Option<u64>,
    pub curve: Vec<CurvePoint>,
    /// Why the run stopped early (e.g. divergence), if it did.
    pub error: Option<String>,
}

/// Trains the run's model from scratch on the calling thread's rayon pool (the sweep
/// runner gives each worker a one-thread pool) and measures it. A run that diverges is
/// reported with `error` set and the figures up to that point, not as an `Err`; `Err` is
/// for a run that cannot start.
pub fn run_one(spec: &RunSpec, s: &Settings) -> Result<RunResult> {
    let task = &spec.task;
    let mut tr = Trainer::from_scratch(task.clone(), &spec.model, spec.train.clone(), s.backend)?;
    let eval_seed = spec.train.seed;
    let training = train_with_curve(&mut tr, spec, s)?;
    let final_loss = final_loss(&tr.history);
    let (max_grad_norm, max_grad_norm_step) = max_grad_norm(&tr.history);
    let floor = task.loss_floor();
    let (eval, eval_train_split) = if training.error.is_none() {
        final_eval(&mut tr, task, eval_seed, s)?
    } else {
        (None, None)
    };
    Ok(RunResult {
        spec: spec.clone(),
        n_params: spec.model.n_params(),
        floor,
        steps_done: tr.step,
        final_loss,
        excess: final_loss - floor,
        max_grad_norm,
        max_grad_norm_step,
        eval,
        eval_train_split,
        steps_to_target: training.steps_to_target,
        curve: training.curve,
        error: training.error,
    })
}

/// What [`train_with_curve`] measured along the way.
struct Training {
    curve: Vec<CurvePoint>,
    steps_to_target: Option<u64>,
    /// The divergence that stopped training early, if any.
    error: Option<String>,
}

/// Trains to the end (or to a divergence, recorded in `error`), adding a curve point every
/// `eval_every` steps and at the end.
fn train_with_curve(tr: &mut Trainer, spec: &RunSpec, s: &Settings) -> Result<Training> {
    let (task, eval_seed) = (&spec.task, spec.train.seed);
    let total = spec.train.steps;
    let every = s.eval_every.unwrap_or((total / 20).max(1));
    let mut out = Training {
        curve: Vec::new(),
        steps_to_target: None,
        error: None,
    };
    let mut since = (0.0f64, 0u64);
    while !tr.done() {
        match tr.step() {
            Ok(m) => {
                since.0 += m.loss as f64;
                since.1 += 1;
            }
            Err(e @ Error::Diverged { .. }) => {
                out.error = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        }
        if every > 0 && (tr.step.is_multiple_of(every) || tr.done()) {
            add_curve_point(tr, task, eval_seed, s, &mut out, since)?;
            since = (0.0, 0);
        }
    }
    Ok(out)
}

/// Evaluates the held-out split for one curve point; `since` is (loss sum, steps) since the
/// previous point.
fn add_curve_point(
    tr: &mut Trainer,
    task: &TaskSpec,
    eval_seed: u64,
    s: &Settings,
    out: &mut Training,
    since: (f64, u64),
) -> Result<()> {
    let r = evaluate_split(
        tr.backend.as_mut(),
        task,
        eval_seed,
        s.curve_samples,
        EVAL_CHUNK,
        Split::HeldOut,
    )?;
    let step = tr.step;
    if out.steps_to_target.is_none() && r.algo_acc >= s.target {
        out.steps_to_target = Some(step);
    }
    let train_loss = if since.1 > 0 {
        since.0 / since.1 as f64
    } else {
        f64::NAN
    };
    out.curve.push(CurvePoint {
        step,
        train_loss,
        algo_acc: r.algo_acc,
        algo_loss: r.algo_loss,
    });
    Ok(())
}

/// Mean training loss over the last twentieth of the steps (at least one); NaN with none.
fn final_loss(h: &[Metrics]) -> f64 {
    let tail = ((h.len() as u64 / 20).max(1) as usize).min(h.len());
    if tail == 0 {
        f64::NAN
    } else {
        h[h.len() - tail..]
            .iter()
            .map(|m| m.loss as f64)
            .sum::<f64>()
            / tail as f64
    }
}

/// The largest gradient norm and the step it was seen at (0, 0 with none above 0).
fn max_grad_norm(h: &[Metrics]) -> (f64, u64) {
    h.iter().fold((0.0f64, 0u64), |(g, st), m| {
        if m.grad_norm as f64 > g {
            (m.grad_norm as f64, m.step)
        } else {
            (g, st)
        }
    })
}

/// The final evaluation: the held-out split, and the training split when the task has a
/// holdout.
fn final_eval(
    tr: &mut Trainer,
    task: &TaskSpec,
    eval_seed: u64,
    s: &Settings,
) -> Result<(Option<EvalSummary>, Option<EvalSummary>)> {
    let held = evaluate_split(
        tr.backend.as_mut(),
        task,
        eval_seed,
        s.eval_samples,
        EVAL_CHUNK,
        Split::HeldOut,
    )?;
    let train = if task.has_holdout() {
        Some(EvalSummary::from(&evaluate_split(
            tr.backend.as_mut(),
            task,
            eval_seed,
            s.eval_samples,
            EVAL_CHUNK,
            Split::Train,
        )?))
    } else {
        None
    };
    Ok((Some(EvalSummary::from(&held)), train))
}
