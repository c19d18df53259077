//! Training with every step recorded (loss, gradient norm, learning rate) and a fixed
//! probe set evaluated along the way, then the loss spikes and what they coincide with.

use serde::Serialize;
use toyformer::backend::BackendKind;
use toyformer::model::ModelConfig;
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::eval::{log_prob, EVAL_STEP_OFFSET};
use toyformer::train::{TrainConfig, Trainer};
use toyformer::{Error, Result};

#[derive(Clone, Debug, Serialize)]
pub struct StepRec {
    pub step: u64,
    /// training batch loss (before the update), all predicted positions
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    /// on the fixed probe set, after this step's update (NaN when not probed)
    pub probe_first_term_loss: f64,
    pub probe_algo_loss: f64,
}

/// Mean loss of the probe set at the first-term positions (p = 1..=n) and at the algorithm
/// positions, from logits (B, T, V).
fn probe_losses(task: &TaskSpec, tokens: &[u32], logits: &[f32], b: usize) -> (f64, f64) {
    let n = match *task {
        TaskSpec::Permutations { n, .. } => n,
        _ => 0,
    };
    let t = task.seq_len();
    let v = logits.len() / (b * t);
    let algo = task.algo_positions();
    let (mut first, mut nf, mut al, mut na) = (0.0, 0usize, 0.0, 0usize);
    for i in 0..b {
        for p in task.pred_positions() {
            let lp = -log_prob(
                &logits[(i * t + p) * v..(i * t + p + 1) * v],
                tokens[i * t + p + 1],
            );
            if (1..=n).contains(&p) {
                first += lp;
                nf += 1;
            } else if algo.contains(&p) {
                al += lp;
                na += 1;
            }
        }
    }
    (first / nf.max(1) as f64, al / na.max(1) as f64)
}

/// Trains from scratch, recording every step; the probe (held-out split when the task has
/// one) is evaluated every `probe_every` steps (0 = never). Returns the records and the
/// trainer (for its final weights); stops early, with what it has, if training diverges.
/// The largest per-token losses of one training batch, with the weights the step sees
/// (before its update): (sequence index, position p, target, argmax, loss, first term).
#[derive(Clone, Debug, Serialize)]
pub struct Inspected {
    pub step: u64,
    pub batch_loss: f64,
    /// (sequence, p, target char, predicted char, loss, the sequence's first term)
    pub worst: Vec<(usize, usize, String, String, f64, String)>,
    /// each sequence's share of the batch's summed loss
    pub per_sequence_share: Vec<f64>,
}

fn inspect(tr: &mut Trainer, step: u64) -> Result<Inspected> {
    let (task, tc) = (tr.task.clone(), tr.train.clone());
    let b = tc.batch_size;
    let t = task.seq_len();
    let tokens = task.batch(tc.seed, step, b);
    let logits = tr.backend.logits(&tokens, b)?;
    let v = logits.len() / (b * t);
    let vocab = task.vocab();
    let n = match task {
        TaskSpec::Permutations { n, .. } => n,
        _ => 0,
    };
    let mut all = Vec::new();
    let mut per_seq = vec![0.0f64; b];
    for i in 0..b {
        for p in task.pred_positions() {
            let row = &logits[(i * t + p) * v..(i * t + p + 1) * v];
            let tg = tokens[i * t + p + 1];
            let l = -log_prob(row, tg);
            per_seq[i] += l;
            all.push((i, p, tg, toyformer::train::eval::argmax(row), l));
        }
    }
    let total: f64 = per_seq.iter().sum();
    all.sort_by(|x, y| y.4.total_cmp(&x.4));
    let first = |i: usize| {
        tokens[i * t + 2..i * t + 2 + n]
            .iter()
            .map(|&c| vocab[c as usize].clone())
            .collect::<String>()
    };
    Ok(Inspected {
        step,
        batch_loss: total / (b * task.pred_positions().len()) as f64,
        worst: all
            .iter()
            .take(6)
            .map(|&(i, p, tg, am, l)| {
                (
                    i,
                    p,
                    vocab[tg as usize].clone(),
                    vocab[am as usize].clone(),
                    l,
                    first(i),
                )
            })
            .collect(),
        per_sequence_share: per_seq.iter().map(|x| x / total).collect(),
    })
}

/// Step records, the trainer, why it stopped early (if it did), and the inspected steps.
pub type Inspection = (Vec<StepRec>, Trainer, Option<String>, Vec<Inspected>);

pub fn train_recorded(
    task: &TaskSpec,
    model: &ModelConfig,
    tc: &TrainConfig,
    probe_every: u64,
    probe_samples: usize,
) -> Result<(Vec<StepRec>, Trainer, Option<String>)> {
    train_inspected(task, model, tc, probe_every, probe_samples, &[]).map(|(r, t, s, _)| (r, t, s))
}

/// [`train_recorded`], also inspecting the batches of the steps in `inspect_steps`.
pub fn train_inspected(
    task: &TaskSpec,
    model: &ModelConfig,
    tc: &TrainConfig,
    probe_every: u64,
    probe_samples: usize,
    inspect_steps: &[u64],
) -> Result<Inspection> {
    let mut inspected = Vec::new();
    let mut tr = Trainer::from_scratch(task.clone(), model, tc.clone(), BackendKind::Cpu)?;
    let probe = task.batch_split(tc.seed, EVAL_STEP_OFFSET + 7, probe_samples, Split::HeldOut);
    let mut recs = Vec::new();
    let mut stopped = None;
    while !tr.done() {
        if inspect_steps.contains(&tr.step) {
            let s = tr.step;
            inspected.push(inspect(&mut tr, s)?);
        }
        let m = match tr.step() {
            Ok(m) => m,
            Err(e @ Error::Diverged { .. }) => {
                stopped = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        let (mut pf, mut pa) = (f64::NAN, f64::NAN);
        if probe_every > 0 && (m.step % probe_every == 0 || tr.done()) {
            let logits = tr.backend.logits(&probe, probe_samples)?;
            (pf, pa) = probe_losses(task, &probe, &logits, probe_samples);
        }
        recs.push(StepRec {
            step: m.step,
            loss: m.loss as f64,
            grad_norm: m.grad_norm as f64,
            lr: m.lr,
            probe_first_term_loss: pf,
            probe_algo_loss: pa,
        });
    }
    Ok((recs, tr, stopped, inspected))
}

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        0.5 * (v[k / 2 - 1] + v[k / 2])
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Spike {
    pub step: u64,
    pub loss: f64,
    /// median loss of the previous `window` steps
    pub baseline: f64,
    pub grad_norm: f64,
    /// grad norm over the median grad norm of the previous `window` steps
    pub grad_ratio: f64,
    pub lr: f64,
    /// steps since the last learning-rate cut (None: no cut yet)
    pub since_lr_cut: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpikeReport {
    pub window: usize,
    pub rel: f64,
    pub min_step: u64,
    pub steps_checked: usize,
    pub spikes: Vec<Spike>,
    /// steps where the learning rate fell, and the rate after
    pub lr_cuts: Vec<(u64, f64)>,
    /// Pearson correlation over checked steps of ln(loss / baseline) and
    /// ln(grad_norm / grad baseline)
    pub corr_loss_grad: f64,
    /// fraction of spikes, and of all checked steps, with grad_ratio > 2
    pub spikes_grad_over_2: f64,
    pub all_grad_over_2: f64,
    /// spikes in the probe's algorithm loss (fixed data: the model itself got worse),
    /// same rule, over probed steps
    pub probe_algo_spikes: Vec<u64>,
    /// training-loss spikes within 2 steps of a probe spike
    pub train_spikes_with_probe_spike: usize,
}

/// A step t ≥ max(window, min_step) is a spike when loss_t > (1 + rel) · median(previous
/// `window` losses).
pub fn find_spikes(recs: &[StepRec], window: usize, rel: f64, min_step: u64) -> SpikeReport {
    let mut lr_cuts = Vec::new();
    for w in recs.windows(2) {
        if w[1].lr < w[0].lr {
            lr_cuts.push((w[1].step, w[1].lr));
        }
    }
    let mut spikes = Vec::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut all_over = 0usize;
    let start = window.max(min_step as usize);
    for t in start..recs.len() {
        let prev = &recs[t - window..t];
        let base = median(&prev.iter().map(|r| r.loss).collect::<Vec<_>>());
        let gbase = median(&prev.iter().map(|r| r.grad_norm).collect::<Vec<_>>());
        let r = &recs[t];
        let ratio = r.grad_norm / gbase;
        xs.push((r.loss / base).ln());
        ys.push(ratio.ln());
        all_over += (ratio > 2.0) as usize;
        if r.loss > (1.0 + rel) * base {
            spikes.push(Spike {
                step: r.step,
                loss: r.loss,
                baseline: base,
                grad_norm: r.grad_norm,
                grad_ratio: ratio,
                lr: r.lr,
                since_lr_cut: lr_cuts
                    .iter()
                    .rev()
                    .find(|c| c.0 <= r.step)
                    .map(|c| r.step - c.0),
            });
        }
    }
    // probe spikes on the probed steps only
    let probed: Vec<&StepRec> = recs
        .iter()
        .filter(|r| r.probe_algo_loss.is_finite())
        .collect();
    let mut probe_algo_spikes = Vec::new();
    for t in start.min(probed.len())..probed.len() {
        if t < window {
            continue;
        }
        let base = median(
            &probed[t - window..t]
                .iter()
                .map(|r| r.probe_algo_loss)
                .collect::<Vec<_>>(),
        );
        if probed[t].probe_algo_loss > (1.0 + rel) * base && probed[t].step >= min_step {
            probe_algo_spikes.push(probed[t].step);
        }
    }
    let with_probe = spikes
        .iter()
        .filter(|s| probe_algo_spikes.iter().any(|&p| p.abs_diff(s.step) <= 2))
        .count();
    let k = spikes.len().max(1) as f64;
    SpikeReport {
        window,
        rel,
        min_step,
        steps_checked: xs.len(),
        spikes_grad_over_2: spikes.iter().filter(|s| s.grad_ratio > 2.0).count() as f64 / k,
        all_grad_over_2: all_over as f64 / xs.len().max(1) as f64,
        corr_loss_grad: pearson(&xs, &ys),
        spikes,
        lr_cuts,
        probe_algo_spikes,
        train_spikes_with_probe_spike: with_probe,
    }
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}
