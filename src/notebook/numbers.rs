//! The numbers the page shows for a model, computed with [`crate::interp`] exactly as the
//! page computes them, to be printed in the notebook next to the ones Python recomputes.

use crate::error::{Error, Result};
use crate::interp::intervene::outcome;
use crate::interp::report::{model_report, CompositionReport};
use crate::interp::{run_with_cache_weights, ANALYSIS_STEP};
use crate::model::Weights;
use crate::tasks::TaskSpec;
use serde::Serialize;
use std::collections::BTreeMap;

/// One head's scores (the page's Scores table).
#[derive(Clone, Debug, Serialize)]
pub struct HeadNumbers {
    pub layer: usize,
    pub head: usize,
    pub ov_diagonal_fraction: f64,
    pub ov_eigen_copying: f64,
    pub qk_mean_offset: f64,
    pub qk_frac_slightly_above: f64,
    pub attention_to_answer: f64,
    pub attention_to_prompt: f64,
}

/// Everything the notebook compares against.
#[derive(Clone, Debug, Serialize)]
pub struct PageNumbers {
    /// (samples, T) the fresh samples the page's analyses average over
    pub analysis_tokens: Vec<Vec<u32>>,
    /// (samples, P) their targets (`TaskSpec::targets`)
    pub analysis_targets: Vec<Vec<u32>>,
    /// token accuracy and loss on them
    pub accuracy: f64,
    pub loss: f64,
    /// sequences of a second fresh batch, and the accuracy on it (the notebook draws its own)
    pub fresh_samples: usize,
    pub fresh_accuracy: f64,
    /// (T,) the page's input for the attention patterns
    pub input_tokens: Vec<u32>,
    /// predicted positions of the input whose argmax is the next token
    pub input_correct: usize,
    /// [L][NH] mean attention on the answer source(s) at the input's predicted positions
    pub input_answer_attention: Vec<Vec<f64>>,
    pub heads: Vec<HeadNumbers>,
    /// DLA per component (label -> mean contribution to the correct logit)
    pub dla: BTreeMap<String, f64>,
    pub dla_logit: f64,
    /// TL composition scores (2+ layers), [L][NH][L][NH] flattened per kind
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composition: Option<CompositionReport>,
}

/// The page's input sequence: the first fresh sample for empty text, else the typed prompt
/// answered correctly (as the attention view does).
pub fn input_sequence(task: &TaskSpec, text: &str, seed: u64) -> Result<Vec<u32>> {
    if text.trim().is_empty() {
        return Ok(task.sample(seed, ANALYSIS_STEP, 0));
    }
    task.solve(&task.parse_prompt(text)?)
}

/// [L][NH] mean over predicted positions with an answer source of the attention on it.
fn answer_attention(w: &Weights, task: &TaskSpec, seq: &[u32]) -> Result<(usize, Vec<Vec<f64>>)> {
    let cache = run_with_cache_weights(w, seq, 1)?;
    let v = w.cfg.d_vocab_out;
    let preds = task.pred_positions();
    let correct = preds
        .iter()
        .zip(task.targets(seq))
        .filter(|&(&p, tg)| {
            crate::train::eval::argmax(&cache.logits.data[p * v..(p + 1) * v]) == tg
        })
        .count();
    let mut out = Vec::new();
    for l in 0..w.cfg.n_layers {
        let mut row = Vec::new();
        for h in 0..w.cfg.n_heads {
            let pat = cache.pattern(0, l, h)?; // (T, T)
            let vals: Vec<f64> = preds
                .iter()
                .map(|&p| (p, task.answer_sources(seq, p)))
                .filter(|(_, s)| !s.is_empty())
                .map(|(p, s)| s.iter().map(|&k| pat.at(p, k) as f64).sum())
                .collect();
            row.push(vals.iter().sum::<f64>() / vals.len().max(1) as f64);
        }
        out.push(row);
    }
    Ok((correct, out))
}

/// Token accuracy on `samples` sequences of the data stream at `step`, run in chunks.
fn fresh_accuracy(w: &Weights, task: &TaskSpec, seed: u64, samples: usize) -> Result<f64> {
    const CHUNK: usize = 16;
    let (mut sum, mut done) = (0.0, 0);
    while done < samples {
        let b = CHUNK.min(samples - done);
        let tokens: Vec<u32> = (0..b)
            .flat_map(|i| task.sample(seed, ANALYSIS_STEP + 1, (done + i) as u64))
            .collect();
        sum += outcome(task, &run_with_cache_weights(w, &tokens, b)?).acc * b as f64;
        done += b;
    }
    Ok(sum / samples.max(1) as f64)
}

/// The page's numbers for `w` on `task`: the report over `samples` fresh sequences of
/// `seed` (what the page's cells show), the input's attention, and the accuracy on
/// `fresh` more sequences.
pub fn page_numbers(
    w: &Weights,
    task: &TaskSpec,
    input: &str,
    samples: usize,
    fresh: usize,
    seed: u64,
) -> Result<PageNumbers> {
    if fresh == 0 {
        return Err(Error::config("fresh_samples", "must be at least 1"));
    }
    let rep = model_report(w, task, samples, seed)?;
    let t = task.seq_len();
    let tokens = task.batch(seed, ANALYSIS_STEP, rep.samples);
    let seq = input_sequence(task, input, seed)?;
    let (input_correct, input_answer_attention) = answer_attention(w, task, &seq)?;
    let heads = rep
        .heads
        .iter()
        .map(|h| HeadNumbers {
            layer: h.layer,
            head: h.head,
            ov_diagonal_fraction: h.ov_diagonal_fraction,
            ov_eigen_copying: h.ov_eigen_copying,
            qk_mean_offset: h.qk_token_argmax.mean,
            qk_frac_slightly_above: h.qk_token_argmax.frac_slightly_above,
            attention_to_answer: h.attention_to_answer,
            attention_to_prompt: h.attention_to_prompt,
        })
        .collect();
    Ok(PageNumbers {
        analysis_tokens: tokens.chunks(t).map(<[u32]>::to_vec).collect(),
        analysis_targets: tokens.chunks(t).map(|r| task.targets(r)).collect(),
        accuracy: rep.eval.acc,
        loss: rep.eval.loss,
        fresh_samples: fresh,
        fresh_accuracy: fresh_accuracy(w, task, seed, fresh)?,
        input_tokens: seq,
        input_correct,
        input_answer_attention,
        heads,
        dla: rep
            .dla
            .components
            .iter()
            .map(|a| (a.label.clone(), a.mean))
            .collect(),
        dla_logit: rep.dla.logit,
        composition: rep.composition,
    })
}
