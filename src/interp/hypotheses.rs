//! Each task's first hypothesis — what the tutorials say a trained model does — with the
//! numbers for and against it, keyed by task name (a task without its own falls back to
//! "a head attends to the answer and copies it").
//!
//! Every piece of evidence is a number, the bar it is compared with, and whether it clears
//! it. "Best head" is the head with the largest value of that number. Definitions:
//! - OV copies: diagonal fraction of the head's full OV circuit on the value tokens
//!   ([`super::report::HeadReport::ov_diagonal_fraction`]), bar 0.9.
//! - attention to the answer: mean attention of the predicted positions on the positions
//!   holding the answer ([`super::scores::attention_mass`]), bar 0.5 (sort) / 0.8 (min).
//! - QK +1 (sort): fraction of value tokens whose QK argmax key is 1..3 above the query,
//!   bar 0.5.
//! - even attention (majority): at END, the entropy of the attention over the list
//!   positions 1..=n (renormalised) divided by ln n, averaged over samples, bar 0.9; and
//!   the attention mass on the list, bar 0.9.
//! - previous-token task: the last layer's attention of the predicted position p on p − 1,
//!   bar 0.8; for 2+ layers, layer 0's attention on position 0 (BOS), bar 0.5.
//! - induction: the best previous-token score among layer-0 heads and induction score among
//!   layer-1 heads ([`super::head_types`]), bar 0.8 each; the best K-composition path's
//!   diagonal fraction, bar 0.9.
//! - modular: the number of key frequencies (bar ≤ 8), the fraction of the embedding's norm²
//!   and of the logits' variance they explain (bar 0.9), and the fraction of neurons
//!   explained by one frequency (bar 0.8; with an MLP) ([`super::fourier`]).

use super::cache::ActivationCache;
use super::report::ModelReport;
use crate::error::Result;
use crate::model::Weights;
use crate::tasks::TaskSpec;
use serde::Serialize;

/// One number for or against a hypothesis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub label: String,
    pub value: f64,
    /// the bar, as text (`≥ 0.9`, `≤ 8`)
    pub bar: String,
    /// whether the value clears the bar
    pub supports: bool,
}

/// A task's first hypothesis and its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hypothesis {
    pub task: String,
    pub claim: String,
    pub evidence: Vec<Evidence>,
}

impl Hypothesis {
    /// Whether every piece of evidence supports the claim.
    pub fn holds(&self) -> bool {
        self.evidence.iter().all(|e| e.supports)
    }
}

fn at_least(label: impl Into<String>, value: f64, bar: f64) -> Evidence {
    Evidence {
        label: label.into(),
        value,
        bar: format!("≥ {bar}"),
        supports: value >= bar,
    }
}

fn best(rep: &ModelReport, f: impl Fn(&super::report::HeadReport) -> f64) -> (String, f64) {
    rep.heads
        .iter()
        .map(|h| (format!("L{}H{}", h.layer, h.head), f(h)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("none".into(), 0.0))
}

/// The hypothesis of `task` for `w` (raw weights), from the model's report `rep` and a
/// cache of task samples `cache` run with the (processed) model.
pub fn hypothesis(
    w: &Weights,
    task: &TaskSpec,
    rep: &ModelReport,
    cache: &ActivationCache,
) -> Result<Hypothesis> {
    let (claim, evidence) = match task.name() {
        "sort" => sort(rep),
        "majority" => majority(task, rep, cache)?,
        "min-of-two" => min_of_two(rep),
        "previous-token" => previous_token(task, cache)?,
        "induction" => induction(w, task)?,
        "mod-add" | "mod-sub" => modular(w, task)?,
        _ => generic(rep),
    };
    Ok(Hypothesis {
        task: task.name().to_string(),
        claim: claim.to_string(),
        evidence,
    })
}

fn sort(rep: &ModelReport) -> (&'static str, Vec<Evidence>) {
    let (h, ov) = best(rep, |h| h.ov_diagonal_fraction);
    let (q, qk) = best(rep, |h| h.qk_token_argmax.frac_slightly_above);
    let (a, att) = best(rep, |h| h.attention_to_answer);
    let claim = "a head copies (OV) the smallest list value above the current one (QK +1)";
    (
        claim,
        vec![
            at_least(format!("OV copies ({h})"), ov, 0.9),
            at_least(format!("QK argmax 1..3 above the query ({q})"), qk, 0.5),
            at_least(format!("attention to the answer ({a})"), att, 0.5),
        ],
    )
}

fn min_of_two(rep: &ModelReport) -> (&'static str, Vec<Evidence>) {
    let (a, att) = best(rep, |h| h.attention_to_answer);
    let (h, ov) = best(rep, |h| h.ov_diagonal_fraction);
    (
        "`=` attends to the smaller operand and the OV circuit copies it",
        vec![
            at_least(format!("attention to the smaller operand ({a})"), att, 0.8),
            at_least(format!("OV copies ({h})"), ov, 0.9),
        ],
    )
}

fn generic(rep: &ModelReport) -> (&'static str, Vec<Evidence>) {
    let (a, att) = best(rep, |h| h.attention_to_answer);
    let (h, ov) = best(rep, |h| h.ov_diagonal_fraction);
    (
        "a head attends to the answer's position and copies it",
        vec![
            at_least(format!("attention to the answer ({a})"), att, 0.5),
            at_least(format!("OV copies ({h})"), ov, 0.9),
        ],
    )
}

/// Mean over samples and predicted positions p of f(attention row of p, p) for head (l, h).
fn mean_at_preds(
    task: &TaskSpec,
    cache: &ActivationCache,
    l: usize,
    h: usize,
    f: impl Fn(&[f32], usize) -> f64,
) -> Result<f64> {
    let pat = cache.get(&super::act_name("pattern", l))?; // (B, NH, T, T)
    let (nh, t) = (pat.shape[1], cache.seq_len);
    let preds = task.pred_positions();
    let mut sum = 0.0;
    for b in 0..cache.batch {
        for &p in &preds {
            sum += f(&pat.data[((b * nh + h) * t + p) * t..][..t], p);
        }
    }
    Ok(sum / (cache.batch * preds.len()).max(1) as f64)
}

/// The largest value over the heads of layer `l` of [`mean_at_preds`].
fn best_in_layer(
    task: &TaskSpec,
    cache: &ActivationCache,
    l: usize,
    f: impl Fn(&[f32], usize) -> f64 + Copy,
) -> Result<(String, f64)> {
    let nh = cache.get(&super::act_name("pattern", l))?.shape[1];
    let mut out = ("none".to_string(), f64::NEG_INFINITY);
    for h in 0..nh {
        let v = mean_at_preds(task, cache, l, h, f)?;
        if v > out.1 {
            out = (format!("L{l}H{h}"), v);
        }
    }
    Ok(out)
}

fn majority(
    task: &TaskSpec,
    rep: &ModelReport,
    cache: &ActivationCache,
) -> Result<(&'static str, Vec<Evidence>)> {
    let n = task.prompt_len().saturating_sub(2).max(1); // [BOS, x_1..x_n, END]
    let mass = |row: &[f32], _p: usize| row[1..=n].iter().map(|&x| x as f64).sum::<f64>();
    let evenness = move |row: &[f32], _p: usize| {
        let m: f64 = row[1..=n].iter().map(|&x| x as f64).sum();
        let ent: f64 = row[1..=n]
            .iter()
            .map(|&x| x as f64 / m.max(1e-30))
            .filter(|&q| q > 0.0)
            .map(|q| -q * q.ln())
            .sum();
        if n > 1 {
            ent / (n as f64).ln()
        } else {
            1.0
        }
    };
    let last = rep.model.n_layers - 1;
    let (hm, m) = best_in_layer(task, cache, last, mass)?;
    let (he, e) = best_in_layer(task, cache, last, evenness)?;
    let (h, ov) = best(rep, |h| h.ov_diagonal_fraction);
    Ok((
        "END attends evenly to the list and the OV circuit copies: the majority value gets the most",
        vec![
            at_least(format!("END's attention on the list ({hm})"), m, 0.9),
            at_least(format!("evenness of that attention, entropy / ln n ({he})"), e, 0.9),
            at_least(format!("OV copies ({h})"), ov, 0.9),
        ],
    ))
}

fn previous_token(
    task: &TaskSpec,
    cache: &ActivationCache,
) -> Result<(&'static str, Vec<Evidence>)> {
    let mut l = 0;
    while cache.has(&super::act_name("pattern", l + 1)) {
        l += 1;
    }
    let prev = |row: &[f32], p: usize| if p > 0 { row[p - 1] as f64 } else { 0.0 };
    let (hp, vp) = best_in_layer(task, cache, l, prev)?;
    let mut ev = vec![at_least(
        format!("attention on position − 1 ({hp})"),
        vp,
        0.8,
    )];
    if l > 0 {
        let (hb, vb) = best_in_layer(task, cache, 0, |row, _| row[0] as f64)?;
        ev.push(at_least(
            format!("layer 0 attention on BOS ({hb})"),
            vb,
            0.5,
        ));
    }
    Ok((
        "the last layer attends to position − 1, built from layer 0's attention to BOS",
        ev,
    ))
}

fn induction(w: &Weights, task: &TaskSpec) -> Result<(&'static str, Vec<Evidence>)> {
    use super::head_types as ht;
    let ids = task.value_tokens();
    let scores = ht::head_type_scores(w, ids.clone(), ht::task_prefix(task), 64, 0)?;
    let top = |l: usize, f: fn(&ht::HeadTypeScore) -> f64| {
        scores
            .iter()
            .filter(|s| s.layer == l)
            .map(|s| (format!("L{}H{}", s.layer, s.head), f(s)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("none".into(), 0.0))
    };
    let (hp, vp) = top(0, |s| s.previous_token);
    let (hi, vi) = top(1, |s| s.induction);
    let paths = ht::induction_paths(&super::process::process_weights(w)?, ids)?;
    let kd = paths
        .iter()
        .map(|p| p.diagonal_fraction)
        .fold(0.0, f64::max);
    Ok((
        "a layer-0 previous-token head K-composes with a layer-1 induction head",
        vec![
            at_least(format!("previous-token score ({hp})"), vp, 0.8),
            at_least(format!("induction score ({hi})"), vi, 0.8),
            at_least("K-composition diagonal fraction (best pair)", kd, 0.9),
        ],
    ))
}

fn modular(w: &Weights, task: &TaskSpec) -> Result<(&'static str, Vec<Evidence>)> {
    let r = super::fourier::fourier_report(w, task)?;
    let k = r.key_freqs.len() as f64;
    let mut ev = vec![
        Evidence {
            label: format!("number of key frequencies {:?}", r.key_freqs),
            value: k,
            bar: "≤ 8".into(),
            supports: (1.0..=8.0).contains(&k),
        },
        at_least("embedding norm² they hold", r.embed_fraction, 0.9),
        at_least("logit variance they explain", r.logit_fraction, 0.9),
    ];
    if !r.neurons.is_empty() {
        ev.push(at_least(
            "neurons explained by one frequency",
            r.neuron_single_fraction,
            0.8,
        ));
    }
    Ok((
        "the model computes the answer from a few key Fourier frequencies",
        ev,
    ))
}

/// The hypothesis as printed lines.
pub fn hypothesis_lines(h: &Hypothesis) -> Vec<String> {
    let mut out = vec![format!(
        "hypothesis ({}): {} — {}",
        h.task,
        h.claim,
        if h.holds() {
            "holds"
        } else {
            "not (all) supported"
        }
    )];
    for e in &h.evidence {
        out.push(format!(
            "  {} {:.4} (bar {}) {}",
            e.label,
            e.value,
            e.bar,
            if e.supports { "for" } else { "against" }
        ));
    }
    out
}
