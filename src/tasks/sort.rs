//! The sorting task of the seed-003 model: `[BOS, a_1..a_n, MID, b_1..b_n]` with
//! `b = sorted(a)`, `a_i` uniform in `0..max_num` (duplicates allowed), BOS = max_num,
//! MID = max_num + 1. T = 2n + 2. The model predicts b_1..b_n from positions MID..b_{n-1}
//! (n + 1 ..= 2n). The answer is a function of the visible input, so the loss floor is 0.

use super::rng::CounterRng;
use super::{parse_numbers, MAX_N_CTX};

/// Largest list length accepted.
pub const MAX_N: usize = 500;
/// Largest `max_num` accepted (keeps d_vocab = max_num + 2 within the model's 65 536).
pub const MAX_MAX_NUM: usize = 65_534;

/// BOS token id.
pub fn bos(max_num: usize) -> u32 {
    max_num as u32
}

/// MID token id.
pub fn mid(max_num: usize) -> u32 {
    max_num as u32 + 1
}

/// T = 2n + 2 (saturating).
pub fn seq_len(n: usize) -> usize {
    n.saturating_mul(2).saturating_add(2)
}

/// Checks n and max_num; the message names the bad parameter.
pub fn validate(n: usize, max_num: usize) -> Result<(), String> {
    if n == 0 {
        return Err("n = 0: the list needs at least 1 element".into());
    }
    if n > MAX_N {
        return Err(format!("n = {n} is too large (at most {MAX_N})"));
    }
    if seq_len(n) > MAX_N_CTX {
        return Err(format!(
            "n = {n} needs {} tokens, more than the {MAX_N_CTX} context limit",
            seq_len(n)
        ));
    }
    if max_num == 0 {
        return Err(
            "max_num = 0: values are drawn from 0..max_num, so it must be at least 1".into(),
        );
    }
    if max_num > MAX_MAX_NUM {
        return Err(format!(
            "max_num = {max_num} is too large (at most {MAX_MAX_NUM})"
        ));
    }
    Ok(())
}

/// Labels: "0".."max_num-1", "BOS", "MID".
pub fn vocab(max_num: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..max_num).map(|i| i.to_string()).collect();
    v.push("BOS".into());
    v.push("MID".into());
    v
}

/// Builds the full sequence from the unsorted list.
pub fn tokens_for(list: &[u32], max_num: usize) -> Vec<u32> {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::with_capacity(seq_len(list.len())); // (T,)
    out.push(bos(max_num));
    out.extend_from_slice(list);
    out.push(mid(max_num));
    out.extend(sorted);
    out
}

/// One sample: n values, each `rng.below(max_num)` in order, then the layout above.
pub fn sample(n: usize, max_num: usize, rng: &mut CounterRng) -> Vec<u32> {
    let list: Vec<u32> = (0..n).map(|_| rng.below(max_num as u64) as u32).collect();
    tokens_for(&list, max_num)
}

/// The positions 1..=n whose value equals the target `tokens[p + 1]`.
/// The caller has checked that p is a prediction position and tokens is long enough.
pub fn answer_sources(n: usize, tokens: &[u32], p: usize) -> Vec<usize> {
    let target = tokens[p + 1];
    (1..=n)
        .filter(|&q| tokens.get(q) == Some(&target))
        .collect()
}

/// `"3 1 4, 1 5"` → `[BOS, 3, 1, 4, 1, 5, MID]`: exactly n numbers below max_num.
pub fn parse_prompt(n: usize, max_num: usize, text: &str) -> Result<Vec<u32>, String> {
    let list = parse_numbers(text, max_num, "value")?;
    if list.len() != n {
        return Err(format!(
            "expected {n} numbers (each 0..={}), got {}",
            max_num - 1,
            list.len()
        ));
    }
    let mut out = Vec::with_capacity(n + 2);
    out.push(bos(max_num));
    out.extend(list);
    out.push(mid(max_num));
    Ok(out)
}

/// The sort task's parameters (the fields of `TaskSpec::Sort`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sort {
    pub n: usize,
    pub max_num: usize,
}

impl super::Task for Sort {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "At MID and at each sorted output the head attends to the unsorted list (a1…an), to the smallest value at or just above the current token, and hardly to the positions after MID.",
            qk: "The token·token panel has its largest values just right of the diagonal: a query holding v prefers keys holding values slightly above v, the next element of the sorted list. The position panels show the columns after MID avoided.",
            ov: "The sorter's OV circuit copies: a bright diagonal on every value token, so attending to v raises the logit of v.",
            scores: "Expect the QK offset above the query, mostly +1, an OV diagonal near 100% and most of the attention from the outputs on the position holding the answer.",
            interventions: "Ablating the sorting head leaves the model guessing; patching after changing one list value restores the clean answer at the head's output of the positions that read that value.",
            timeline: "Watch for the step where the OV copying score and the attention on the answer rise: the loss drops at the same time (a phase change).",
        }
    }
    fn description(&self) -> &'static str {
        "Sort a list of n numbers (the seed-003 sorter's format)."
    }
    fn params(&self) -> Vec<super::ParamRow> {
        vec![
            super::ParamRow::int("n", 1, MAX_N, 10, "list length"),
            super::ParamRow::int("max_num", 1, MAX_MAX_NUM, 50, "values are 0..max_num-1"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        validate(self.n, self.max_num)
    }
    fn seq_len(&self) -> usize {
        seq_len(self.n)
    }
    fn d_vocab(&self) -> usize {
        self.max_num.saturating_add(2)
    }
    fn d_vocab_out(&self) -> usize {
        self.max_num
    }
    fn vocab(&self) -> Vec<String> {
        vocab(self.max_num)
    }
    // logits at MID, b_1..b_{n-1} predict b_1..b_n
    fn pred_positions(&self) -> Vec<usize> {
        (self.n + 1..=2 * self.n).collect()
    }
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        sample(self.n, self.max_num, rng)
    }
    fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        answer_sources(self.n, tokens, p)
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.max_num
    }
    fn position_names(&self) -> Vec<String> {
        std::iter::once("BOS".to_string())
            .chain((1..=self.n).map(|i| format!("a{i}")))
            .chain(std::iter::once("MID".to_string()))
            .chain((1..=self.n).map(|i| format!("b{i}")))
            .collect()
    }
    fn prompt_len(&self) -> usize {
        self.n.saturating_add(2)
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.n)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        Some(tokens_for(prompt.get(1..=self.n)?, self.max_num))
    }
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        parse_prompt(self.n, self.max_num, text)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 1, self.n + 1, " ")
    }
    fn default_model(&self) -> crate::model::ModelConfig {
        crate::model::ModelConfig::sort_ref()
    }
}
