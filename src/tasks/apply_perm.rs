//! Apply a permutation: `[BOS, a_0..a_{k-1}, MID, idx_0..idx_{k-1}, END, ans_0..ans_{k-1}]`
//! with `ans_i = a_{idx_i}`, `a_i` uniform in `0..max_int`, idx a uniformly random
//! permutation of 0..k. Indices are written as number tokens 0..k (so k ≤ max_int).
//! END = max_int, MID = max_int + 1, BOS = max_int + 2; T = 3k + 3.
//!
//! Positions: BOS 0, a_i at 1 + i, MID k + 1, idx_i at k + 2 + i, END 2k + 2, ans_i at
//! 2k + 3 + i. The answers are predicted from END, ans_0..ans_{k-2} (2k + 2 ..= 3k + 1);
//! each is a function of the visible input, so the loss floor is 0.

use super::rng::CounterRng;
use super::{parse_numbers, shorten, MAX_N_CTX};

/// Largest `max_int` accepted (keeps d_vocab = max_int + 3 within the model's 65 536).
pub const MAX_MAX_INT: usize = 65_533;

/// END token id.
pub fn end(max_int: usize) -> u32 {
    max_int as u32
}

/// MID token id.
pub fn mid(max_int: usize) -> u32 {
    max_int as u32 + 1
}

/// BOS token id.
pub fn bos(max_int: usize) -> u32 {
    max_int as u32 + 2
}

/// T = 3k + 3 (saturating).
pub fn seq_len(k: usize) -> usize {
    k.saturating_mul(3).saturating_add(3)
}

/// Checks k and max_int; the message names the bad parameter.
pub fn validate(k: usize, max_int: usize) -> Result<(), String> {
    if k == 0 {
        return Err("k = 0: the list needs at least 1 element".into());
    }
    if seq_len(k) > MAX_N_CTX {
        return Err(format!(
            "k = {k} needs {} tokens (3k + 3), more than the {MAX_N_CTX} context limit (k must be at most {})",
            seq_len(k),
            (MAX_N_CTX - 3) / 3
        ));
    }
    if max_int == 0 {
        return Err(
            "max_int = 0: values are drawn from 0..max_int, so it must be at least 1".into(),
        );
    }
    if max_int > MAX_MAX_INT {
        return Err(format!(
            "max_int = {max_int} is too large (at most {MAX_MAX_INT})"
        ));
    }
    if k > max_int {
        return Err(format!(
            "k = {k} is larger than max_int = {max_int}: the indices 0..{k} are written as number tokens, which stop at {}",
            max_int - 1
        ));
    }
    Ok(())
}

/// Labels: "0".."max_int-1", "END", "MID", "BOS".
pub fn vocab(max_int: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..max_int).map(|i| i.to_string()).collect();
    v.extend(["END", "MID", "BOS"].map(String::from));
    v
}

/// The prompt `[BOS, a.., MID, idx.., END]` (length 2k + 3) for values and indices.
fn prompt_tokens(values: &[u32], idx: &[u32], max_int: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(seq_len(values.len())); // (T,)
    out.push(bos(max_int));
    out.extend_from_slice(values);
    out.push(mid(max_int));
    out.extend_from_slice(idx);
    out.push(end(max_int));
    out
}

/// The whole sequence for values `a` and a permutation `idx` of 0..k (both length k).
/// Indices out of range give no answer token for that slot, so a malformed `idx` yields a
/// shorter sequence rather than a panic.
pub fn tokens_for(values: &[u32], idx: &[u32], max_int: usize) -> Vec<u32> {
    let mut out = prompt_tokens(values, idx, max_int);
    out.extend(idx.iter().filter_map(|&i| values.get(i as usize).copied()));
    out
}

/// One sample: k values (`rng.below(max_int)` each, in order), then `rng.permutation(k)`.
pub fn sample(k: usize, max_int: usize, rng: &mut CounterRng) -> Vec<u32> {
    let values: Vec<u32> = (0..k).map(|_| rng.below(max_int as u64) as u32).collect();
    let idx: Vec<u32> = rng.permutation(k).into_iter().map(|i| i as u32).collect();
    tokens_for(&values, &idx, max_int)
}

/// Position 1 + idx_i for the prediction of ans_i at p = 2k + 2 + i.
/// The caller has checked that p is a prediction position and tokens is long enough.
pub fn answer_sources(k: usize, tokens: &[u32], p: usize) -> Vec<usize> {
    let i = p - (2 * k + 2);
    match tokens.get(k + 2 + i) {
        Some(&j) if (j as usize) < k => vec![1 + j as usize],
        _ => Vec::new(),
    }
}

/// `"7 3 9 | 2 0 1"` → `[BOS, 7, 3, 9, MID, 2, 0, 1, END]`: k values below max_int, a
/// `|`, then a permutation of 0..k. Numbers are separated by whitespace and/or commas.
pub fn parse_prompt(k: usize, max_int: usize, text: &str) -> Result<Vec<u32>, String> {
    let example = "e.g. \"7 3 9 | 2 0 1\"";
    let parts: Vec<&str> = text.split('|').collect();
    if parts.len() != 2 {
        return Err(format!(
            "expected {k} values, one '|', then a permutation of 0..={} ({example}); found {} '|' in '{}'",
            k - 1,
            parts.len() - 1,
            shorten(text.trim())
        ));
    }
    let values = parse_numbers(parts[0], max_int, "value")?;
    if values.len() != k {
        return Err(format!(
            "expected {k} values (each 0..={}) before the '|', got {}",
            max_int - 1,
            values.len()
        ));
    }
    let idx = parse_numbers(parts[1], k, "index")?;
    if idx.len() != k {
        return Err(format!(
            "expected {k} indices after the '|' (a permutation of 0..={}), got {}",
            k - 1,
            idx.len()
        ));
    }
    let mut seen = vec![false; k];
    for &i in &idx {
        if std::mem::replace(&mut seen[i as usize], true) {
            return Err(format!(
                "index {i} appears twice (the indices must be a permutation of 0..={})",
                k - 1
            ));
        }
    }
    Ok(prompt_tokens(&values, &idx, max_int))
}

/// The apply-perm task's parameters (the fields of `TaskSpec::ApplyPerm`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ApplyPerm {
    pub k: usize,
    pub max_int: usize,
}

impl super::Task for ApplyPerm {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "The position predicting ans_i must find idx_i (at a fixed offset) and then the value a_{idx_i}: look for attention on the list position the index names.",
            qk: "The value is chosen by position: the token·token panel of the value tokens is flat, the relevant structure sits in the position panels (and, with two layers, in what an earlier head writes).",
            ov: "The head that fetches a_{idx_i} copies it: a bright diagonal on the value tokens.",
            scores: "The attention on the answer is the fraction of attention on a_{idx_i}; a copying head with a high value is the one that applies the permutation.",
            interventions: "Patch a changed index: the answer moves to another list element; the heads whose patching restores it read the index.",
            timeline: "Look for the step where attention on the answer rises: before it the model can only guess a value from the list.",
        }
    }
    fn description(&self) -> &'static str {
        "Apply a permutation of 0..k to k numbers."
    }
    fn params(&self) -> Vec<super::ParamRow> {
        vec![
            super::ParamRow::int("k", 1, (MAX_N_CTX - 3) / 3, 3, "list length"),
            super::ParamRow::int("max_int", 1, MAX_MAX_INT, 50, "values are 0..max_int-1"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        validate(self.k, self.max_int)
    }
    fn seq_len(&self) -> usize {
        seq_len(self.k)
    }
    fn d_vocab(&self) -> usize {
        self.max_int.saturating_add(3)
    }
    fn d_vocab_out(&self) -> usize {
        self.max_int
    }
    fn vocab(&self) -> Vec<String> {
        vocab(self.max_int)
    }
    // logits at END, ans_0..ans_{k-2} predict ans_0..ans_{k-1}
    fn pred_positions(&self) -> Vec<usize> {
        (2 * self.k + 2..=3 * self.k + 1).collect()
    }
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        sample(self.k, self.max_int, rng)
    }
    fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        answer_sources(self.k, tokens, p)
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.max_int
    }
    fn position_names(&self) -> Vec<String> {
        let k = self.k;
        std::iter::once("BOS".to_string())
            .chain((0..k).map(|i| format!("a{i}")))
            .chain(std::iter::once("MID".to_string()))
            .chain((0..k).map(|i| format!("idx{i}")))
            .chain(std::iter::once("END".to_string()))
            .chain((0..k).map(|i| format!("ans{i}")))
            .collect()
    }
    fn prompt_len(&self) -> usize {
        self.k.saturating_mul(2).saturating_add(3)
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.k)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let k = self.k;
        Some(tokens_for(
            prompt.get(1..=k)?,
            prompt.get(k + 2..2 * k + 2)?,
            self.max_int,
        ))
    }
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        parse_prompt(self.k, self.max_int, text)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        let (k, v) = (self.k, self.vocab());
        format!(
            "{} | {}",
            super::task::join_labels(&v, tokens, 1, k + 1, " "),
            super::task::join_labels(&v, tokens, k + 2, 2 * k + 2, " ")
        )
    }
    fn default_model(&self) -> crate::model::ModelConfig {
        super::task::attn_only(1, 1, 64, 64)
    }
}
