//! Summaries read off circuits and attention patterns.
//!
//! - [`argmax_offsets`]: for a full QK circuit over the task's value tokens, which key token
//!   each query token prefers, as an offset key − query ("attends to dest + k"). The
//!   seed-003 sorter's token·token circuit prefers keys slightly above the query: the next
//!   element of a sorted list is the smallest value at or above the current one.
//! - [`attention_mass`]: how much attention the prediction positions put on the
//!   position(s) holding the correct answer ([`TaskSpec::answer_sources`]) and on the
//!   prompt, averaged over fresh samples and predicted positions.

use super::cache::ActivationCache;
use super::mat::Mat;
use crate::error::{Error, Result};
use crate::tasks::TaskSpec;
use serde::Serialize;
use std::ops::Range;

/// Where each query row of a token-token circuit puts its maximum, as key − query offsets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OffsetSummary {
    /// argmax key − query for every query token of the range, in order.
    pub offsets: Vec<i64>,
    /// (offset, how many query tokens) for every offset that occurs, ascending.
    pub histogram: Vec<(i64, usize)>,
    pub mean: f64,
    pub median: f64,
    /// fractions of query tokens whose argmax key is above / equal to / below the query
    pub frac_above: f64,
    pub frac_equal: f64,
    pub frac_below: f64,
    /// fraction with argmax offset in 1..=3 ("slightly above")
    pub frac_slightly_above: f64,
    /// (offset d, mean over query tokens i with i + d in range of (m[i, i+d] − mean of row
    /// i)): the average score profile around the diagonal; rows are centred because
    /// softmax ignores a constant per query.
    pub mean_score_by_offset: Vec<(i64, f64)>,
}

/// [`OffsetSummary`] of the block `ids` × `ids` of a (query token, key token) circuit.
pub fn argmax_offsets(m: &Mat, ids: Range<usize>) -> Result<OffsetSummary> {
    if ids.is_empty() || ids.end > m.rows || ids.end > m.cols {
        return Err(Error::config(
            "tokens",
            format!(
                "token range {ids:?} does not fit a {}x{} circuit",
                m.rows, m.cols
            ),
        ));
    }
    let n = ids.len();
    let block = m.sub(ids.clone(), ids);
    let offsets: Vec<i64> = block
        .row_argmax()
        .iter()
        .enumerate()
        .map(|(i, &j)| j as i64 - i as i64)
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    let mut histogram: Vec<(i64, usize)> = Vec::new();
    for &o in &sorted {
        match histogram.last_mut() {
            Some((v, c)) if *v == o => *c += 1,
            _ => histogram.push((o, 1)),
        }
    }
    let frac =
        |f: &dyn Fn(i64) -> bool| offsets.iter().filter(|&&o| f(o)).count() as f64 / n as f64;
    let median = if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    };
    let row_mean: Vec<f64> = (0..n)
        .map(|i| block.row(i).iter().map(|&x| x as f64).sum::<f64>() / n as f64)
        .collect();
    let mean_score_by_offset = (-(n as i64 - 1)..n as i64)
        .map(|d| {
            let rows: Vec<usize> = (0..n)
                .filter(|&i| (0..n as i64).contains(&(i as i64 + d)))
                .collect();
            let s: f64 = rows
                .iter()
                .map(|&i| block.at(i, (i as i64 + d) as usize) as f64 - row_mean[i])
                .sum();
            (d, s / rows.len() as f64)
        })
        .collect();
    Ok(OffsetSummary {
        mean: offsets.iter().sum::<i64>() as f64 / n as f64,
        median,
        frac_above: frac(&|o| o > 0),
        frac_equal: frac(&|o| o == 0),
        frac_below: frac(&|o| o < 0),
        frac_slightly_above: frac(&|o| (1..=3).contains(&o)),
        histogram,
        offsets,
        mean_score_by_offset,
    })
}

/// Mean attention of one head at the predicted positions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionMass {
    pub layer: usize,
    pub head: usize,
    /// mean over (sample, predicted position with a non-empty answer source set) of
    /// Σ_{s ∈ answer_sources(p)} pattern[p, s]
    pub answer: f64,
    /// mean over (sample, predicted position) of the attention on the prompt (positions
    /// < prompt_len; for sort BOS, the unsorted list and MID)
    pub prompt: f64,
    /// how many (sample, position) pairs `answer` averages over
    pub answer_count: usize,
}

/// [`AttentionMass`] of every head, from a cache of task sequences (B, T).
pub fn attention_mass(task: &TaskSpec, cache: &ActivationCache) -> Result<Vec<AttentionMass>> {
    let t = cache.seq_len;
    if t != task.seq_len() {
        return Err(Error::config(
            "tokens",
            format!(
                "the cache holds sequences of {t} tokens, the task's are {}",
                task.seq_len()
            ),
        ));
    }
    let preds = task.pred_positions();
    let prompt_len = task.prompt_len();
    let sources: Vec<Vec<Vec<usize>>> = (0..cache.batch)
        .map(|b| {
            preds
                .iter()
                .map(|&p| task.answer_sources(&cache.tokens[b * t..(b + 1) * t], p))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let mut l = 0;
    while cache.has(&super::act_name("pattern", l)) {
        let pat = cache.get(&super::act_name("pattern", l))?; // (B, NH, T, T)
        let nh = pat.shape[1];
        for h in 0..nh {
            let (mut ans, mut n_ans, mut prompt) = (0.0f64, 0usize, 0.0f64);
            for (b, srcs) in sources.iter().enumerate() {
                for (&p, src) in preds.iter().zip(srcs) {
                    let row = &pat.data[((b * nh + h) * t + p) * t..][..t];
                    prompt += row[..prompt_len.min(t)]
                        .iter()
                        .map(|&x| x as f64)
                        .sum::<f64>();
                    if !src.is_empty() {
                        ans += src.iter().map(|&s| row[s] as f64).sum::<f64>();
                        n_ans += 1;
                    }
                }
            }
            let n = (cache.batch * preds.len()).max(1) as f64;
            out.push(AttentionMass {
                layer: l,
                head: h,
                answer: ans / n_ans.max(1) as f64,
                prompt: prompt / n,
                answer_count: n_ans,
            });
        }
        l += 1;
    }
    Ok(out)
}
