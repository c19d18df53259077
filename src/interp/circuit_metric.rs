//! What circuit analyses run on and measure: a batch of clean/corrupted pairs, the
//! replacement values of ablated edges, and the metrics.
//!
//! - **Pairs**: clean task sequences and, for each, the corrupted one: the task's
//!   corruption ([`TaskSpec::corrupt_span`]: the value in the middle of the span replaced by
//!   one not in it), answered correctly.
//! - **Ablation** of an edge replaces what it carries by the sender's output in the
//!   corrupted run (patching, the default), by its mean over the clean batch (per
//!   position), or by its output on another clean input of the batch (resample: row i
//!   takes row i + 1's).
//! - **Metrics** over the scored positions, against the clean targets: `loss` (mean
//!   cross-entropy), `logit_diff` (mean of logit[clean answer] − logit[corrupted answer]
//!   over the positions whose answers differ), `kl` (mean KL(full model on clean ‖ this
//!   run)). Discovery minimises the *badness*: loss, KL, or −logit_diff.

use super::graph::{Circuit, GraphOptions};
use super::graph_fast::{pair_runs, FastSetup};
use super::graph_forward::{GraphModel, GraphRun};
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::forward::log_softmax_forward;
use crate::tasks::TaskSpec;
use candle_core::{DType, Device, Tensor, D};
use serde::Serialize;
use std::cell::OnceCell;

/// The metric a circuit analysis scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitMetric {
    LogitDiff,
    Loss,
    Kl,
}

impl CircuitMetric {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "logit_diff" | "logit-diff" => Ok(Self::LogitDiff),
            "loss" => Ok(Self::Loss),
            "kl" => Ok(Self::Kl),
            _ => Err(Error::config(
                "metric",
                format!("'{s}' is not a metric (logit-diff, loss, kl)"),
            )),
        }
    }
    /// The badness of a metric value (lower is better): −logit diff, loss, KL.
    pub fn badness(self, v: f64) -> f64 {
        if self == Self::LogitDiff {
            -v
        } else {
            v
        }
    }
}

/// What an ablated edge carries instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeAblation {
    Corrupted,
    Mean,
    Resample,
}

impl EdgeAblation {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "corrupted" | "patch" => Ok(Self::Corrupted),
            "mean" => Ok(Self::Mean),
            "resample" => Ok(Self::Resample),
            _ => Err(Error::config(
                "ablation",
                format!("'{s}' is not an ablation (corrupted, mean, resample)"),
            )),
        }
    }
}

/// Clean sequences and their corrupted counterparts, (B, T) each.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pairs {
    pub clean: Vec<u32>,
    pub corrupted: Vec<u32>,
    pub batch: usize,
}

/// `clean` with the value in the middle of the task's corrupt span replaced by the value
/// `shift` steps round the value range from it (skipping values in the span), answered.
/// When the task rejects every such prompt (majority: the majority must stay one), the
/// other positions of the span are tried in turn.
pub fn corrupt(task: &TaskSpec, clean: &[u32], shift: usize) -> Result<Vec<u32>> {
    let ids = task.value_tokens();
    let (start, len) = task.corrupt_span();
    let pl = task.prompt_len();
    if clean.len() < pl || start + len > pl || len == 0 || ids.len() < 2 {
        return Err(Error::task(
            task.name(),
            "this task has no corruption to patch",
        ));
    }
    if let Some(p) = task.corrupt_prompt(&clean[..pl], shift) {
        return task.solve(&p); // the task's own corruption (custom data)
    }
    let mid = start + len / 2;
    let order = std::iter::once(mid).chain((start..start + len).filter(|&i| i != mid));
    let span = ids.len();
    for at in order {
        let prompt = &clean[..pl];
        let old = (prompt[at] as usize).clamp(ids.start, ids.end - 1);
        for d in 0..span - 1 {
            let v = ids.start + (old - ids.start + shift.max(1) + d) % span;
            if v == old || prompt[start..start + len].contains(&(v as u32)) {
                continue;
            }
            let mut p = prompt.to_vec();
            p[at] = v as u32;
            if let Ok(seq) = task.solve(&p) {
                return Ok(seq);
            }
        }
    }
    Err(Error::task(
        task.name(),
        "no value of the corrupt span can be replaced to give a valid prompt",
    ))
}

/// `n` fresh samples (seed `seed`, the analysis step) and their corruptions.
pub fn default_pairs(task: &TaskSpec, n: usize, seed: u64) -> Result<Pairs> {
    if n == 0 || n > 4096 {
        return Err(Error::config("samples", format!("{n} is not in 1..=4096")));
    }
    let t = task.seq_len();
    let clean = task.batch(seed, super::ANALYSIS_STEP, n);
    let mut corrupted = Vec::with_capacity(clean.len());
    for (i, row) in clean.chunks(t).enumerate() {
        let span = task.value_tokens().len().max(2);
        corrupted.extend(corrupt(task, row, 1 + (i * 7) % (span - 1))?);
    }
    Ok(Pairs {
        clean,
        corrupted,
        batch: n,
    })
}

/// Every metric of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Eval {
    pub loss: f64,
    /// NaN when no scored position's answer differs between clean and corrupted
    pub logit_diff: f64,
    pub kl: f64,
    pub acc: f64,
}

impl Eval {
    pub fn get(&self, m: CircuitMetric) -> f64 {
        match m {
            CircuitMetric::LogitDiff => self.logit_diff,
            CircuitMetric::Loss => self.loss,
            CircuitMetric::Kl => self.kl,
        }
    }
}

/// The model, the pairs, the replacement values and the metric: everything the methods
/// share.
pub struct CircuitSetup {
    pub model: GraphModel,
    pub pairs: Pairs,
    pub metric: CircuitMetric,
    pub ablation: EdgeAblation,
    /// per sender (B, T, C): outputs in the clean and the corrupted run
    pub clean_outs: Vec<Tensor>,
    pub corrupted_outs: Vec<Tensor>,
    /// per sender (B, T, C): what an ablated edge carries
    pub alt: Vec<Tensor>,
    /// (B, P) clean and corrupted targets
    targets: Tensor,
    wrong: Tensor,
    targets_vec: Vec<u32>,
    /// (B, P) 1/n on the n positions whose answers differ, else 0
    diff_weight: Tensor,
    n_diff: usize,
    /// (B, P, V) the full model's log-probabilities on the clean inputs
    ref_logp: Tensor,
    /// the full model on the clean inputs
    pub full: Eval,
    /// every edge ablated, computed on first use (it never changes)
    empty: OnceCell<Eval>,
    /// the hand-written f32 path (F32 and the node-level graph), else None: candle
    pub fast: Option<FastSetup>,
}

/// (B, P) targets of every row of `seqs` (B, T), via the task's targets.
fn targets_of(task: &TaskSpec, seqs: &[u32], batch: usize, p: usize) -> Result<Vec<u32>> {
    let t = seqs.len() / batch.max(1);
    let mut out = Vec::with_capacity(batch * p);
    for row in seqs.chunks(t) {
        let tg = task.targets(row);
        if tg.len() != p {
            return Err(Error::task(
                task.name(),
                format!("a sequence has {} targets, expected {p}", tg.len()),
            ));
        }
        out.extend(tg);
    }
    Ok(out)
}

/// Per-position mean over the batch, broadcast back: (B, T, C) → (B, T, C).
fn batch_mean(x: &Tensor) -> Result<Tensor> {
    Ok(x.mean_keepdim(0)?.broadcast_as(x.dims())?.contiguous()?)
}

/// Rows rolled by one: row i becomes row i + 1 (mod B).
fn roll_rows(x: &Tensor) -> Result<Tensor> {
    let b = x.dim(0)?;
    Ok(Tensor::cat(
        &[x.narrow(0, 1, b - 1)?, x.narrow(0, 0, 1)?],
        0,
    )?)
}

impl CircuitSetup {
    /// Runs the clean and corrupted inputs of `pairs` through `w` and prepares the metric.
    pub fn new(
        w: &Weights,
        task: &TaskSpec,
        pairs: Pairs,
        metric: CircuitMetric,
        ablation: EdgeAblation,
        dtype: DType,
    ) -> Result<Self> {
        Self::with_graph(
            w,
            task,
            pairs,
            metric,
            ablation,
            dtype,
            GraphOptions::default(),
        )
    }

    /// [`new`](Self::new) on the graph `graph` asks for (e.g. every MLP neuron a node).
    pub fn with_graph(
        w: &Weights,
        task: &TaskSpec,
        pairs: Pairs,
        metric: CircuitMetric,
        ablation: EdgeAblation,
        dtype: DType,
        graph: GraphOptions,
    ) -> Result<Self> {
        crate::train::check_compatible(task, &w.cfg)?;
        let (b, t) = (pairs.batch, task.seq_len());
        if b == 0 || pairs.clean.len() != b * t || pairs.corrupted.len() != b * t {
            return Err(Error::config(
                "inputs",
                format!("clean and corrupted inputs must be {b} sequences of {t} tokens"),
            ));
        }
        if ablation == EdgeAblation::Resample && b < 2 {
            return Err(Error::config(
                "ablation",
                "resample ablation needs 2+ clean inputs",
            ));
        }
        let preds = task.pred_positions();
        let model = GraphModel::with_options(w, &preds, dtype, graph)?;
        let p = preds.len();
        let tv = targets_of(task, &pairs.clean, b, p)?;
        let wv = targets_of(task, &pairs.corrupted, b, p)?;
        let n_diff = tv.iter().zip(&wv).filter(|(a, b)| a != b).count();
        if metric == CircuitMetric::LogitDiff && n_diff == 0 {
            return Err(Error::config(
                "metric",
                "logit difference needs pairs whose answers differ, but no clean and corrupted answer differs \
                 at any scored position (this task's corruption can leave the answer as it is, as majority's does): \
                 choose the KL or loss metric (with resample ablation, which compares different clean inputs), \
                 or type pairs whose answers differ",
            ));
        }
        let dw: Vec<f64> = tv
            .iter()
            .zip(&wv)
            .map(|(a, b)| if a != b { 1.0 / n_diff as f64 } else { 0.0 })
            .collect();
        let (clean, corr, fast) =
            pair_runs(&model, w, &preds, (&pairs.clean, &pairs.corrupted, b))?;
        let alt = match ablation {
            EdgeAblation::Corrupted => corr.outs.clone(),
            EdgeAblation::Mean => clean.outs.iter().map(batch_mean).collect::<Result<_>>()?,
            EdgeAblation::Resample => clean.outs.iter().map(roll_rows).collect::<Result<_>>()?,
        };
        let fast = fast
            .map(|f| FastSetup::new(f, &pairs.clean, &alt))
            .transpose()?;
        let dev = &Device::Cpu;
        let mut s = CircuitSetup {
            fast,
            ref_logp: log_softmax_forward(&clean.logits)?.detach(),
            model,
            metric,
            ablation,
            clean_outs: clean.outs,
            corrupted_outs: corr.outs,
            alt,
            targets: Tensor::from_slice(&tv, (b, p), dev)?,
            wrong: Tensor::from_slice(&wv, (b, p), dev)?,
            targets_vec: tv,
            diff_weight: Tensor::from_vec(dw, (b, p), dev)?.to_dtype(dtype)?,
            n_diff,
            full: Eval::default(), // set below
            empty: OnceCell::new(),
            pairs,
        };
        s.full = s.eval(&clean.logits)?;
        if ablation == EdgeAblation::Corrupted {
            // every edge carrying the corrupted run's output is the corrupted run
            let _ = s.empty.set(s.eval(&corr.logits)?);
        }
        Ok(s)
    }

    /// The logits (B, P, V) of the clean inputs with edge mask `mask` (R, S), ablated
    /// edges carrying `alt`.
    pub fn logits(&self, mask: &Tensor) -> Result<Tensor> {
        if let (Some(f), false) = (&self.fast, mask.track_op()) {
            return f.logits(mask);
        }
        Ok(self.run(mask)?.logits)
    }

    /// The run of the clean inputs with edge mask `mask` (R, S), ablated edges carrying `alt`.
    pub fn run(&self, mask: &Tensor) -> Result<GraphRun> {
        let b = self.pairs.batch;
        self.model.run(&self.pairs.clean, b, mask, Some(&self.alt))
    }

    /// `prev` (a [`run`](Self::run)) rerun with `mask`, which differs from prev's mask only
    /// in receiver rows ≥ r (see [`GraphModel::rerun_from`]).
    pub fn rerun_from(&self, prev: &GraphRun, r: usize, mask: &Tensor) -> Result<GraphRun> {
        self.model.rerun_from(prev, r, mask, Some(&self.alt))
    }

    /// The [`Eval`] with every edge ablated (computed once).
    pub fn empty(&self) -> Result<Eval> {
        if let Some(e) = self.empty.get() {
            return Ok(*e);
        }
        let e = self.eval(&self.logits(&self.model.mask(&Circuit::empty(&self.model.graph))?)?)?;
        Ok(*self.empty.get_or_init(|| e))
    }

    /// The chosen metric of logits (B, P, V), as a scalar tensor (differentiable).
    pub fn value(&self, logits: &Tensor) -> Result<Tensor> {
        self.value_of(self.metric, logits)
    }

    fn value_of(&self, m: CircuitMetric, logits: &Tensor) -> Result<Tensor> {
        let lp = log_softmax_forward(logits)?; // (B, P, V)
        let pick = |ids: &Tensor| -> Result<Tensor> {
            Ok(logits
                .gather(&ids.unsqueeze(D::Minus1)?, D::Minus1)?
                .squeeze(D::Minus1)?)
        };
        Ok(match m {
            CircuitMetric::Loss => lp
                .gather(&self.targets.unsqueeze(D::Minus1)?, D::Minus1)?
                .mean_all()?
                .neg()?,
            CircuitMetric::LogitDiff => {
                ((pick(&self.targets)? - pick(&self.wrong)?)? * &self.diff_weight)?.sum_all()?
            }
            CircuitMetric::Kl => {
                let p = self.ref_logp.exp()?;
                let kl = (p * (&self.ref_logp - &lp)?)?.sum(D::Minus1)?; // (B, P)
                kl.mean_all()?
            }
        })
    }

    /// Every metric and the greedy accuracy of logits (B, P, V).
    pub fn eval(&self, logits: &Tensor) -> Result<Eval> {
        let scalar = |m| -> Result<f64> {
            Ok(self
                .value_of(m, logits)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?)
        };
        let am: Vec<u32> = logits.argmax(D::Minus1)?.flatten_all()?.to_vec1()?;
        let ok = am
            .iter()
            .zip(&self.targets_vec)
            .filter(|(a, b)| a == b)
            .count();
        Ok(Eval {
            loss: scalar(CircuitMetric::Loss)?,
            logit_diff: if self.n_diff == 0 {
                f64::NAN
            } else {
                scalar(CircuitMetric::LogitDiff)?
            },
            kl: scalar(CircuitMetric::Kl)?,
            acc: ok as f64 / am.len().max(1) as f64,
        })
    }

    /// The chosen metric with edge mask `mask`.
    pub fn metric_at(&self, mask: &Tensor) -> Result<f64> {
        self.metric_of(&self.logits(mask)?)
    }

    /// The chosen metric of logits (B, P, V) as a number.
    pub fn metric_of(&self, logits: &Tensor) -> Result<f64> {
        let v = self.value(logits)?;
        Ok(v.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }
}
