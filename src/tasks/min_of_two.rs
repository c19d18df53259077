//! Minimum of two integers (the mech-interp-practice collection's "min of two ints"):
//! `[a, b, =, m]` with a, b in 0..n (`=` = n) and m = min(a, b). The logit at position 2
//! (`=`) predicts m; m is appended as the training target (toyformer scores next tokens),
//! so T = 4 and a model's n_ctx is 4 where the collection's model has 3: the extra
//! position comes after the scored one and changes none of its logits.
//!
//! A finite dataset of all n² pairs, item i = (a, b) = (i / n, i mod n), split by
//! `frac_train` (default 0.8) and `split_seed` (see [`super::finite`]).

use super::finite::{operands, validate_frac, FiniteSplit};
use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use serde::{Deserialize, Serialize};

/// Largest n accepted.
pub const MAX_N: usize = 2000;

/// min(a, b) over all pairs of 0..n.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MinOfTwo {
    /// Values are 0..n.
    pub n: usize,
    /// Fraction of the n² pairs that train.
    pub frac_train: f64,
    /// Seed of the train/test split.
    pub split_seed: u64,
}

impl Default for MinOfTwo {
    fn default() -> Self {
        MinOfTwo {
            n: 200,
            frac_train: 0.8,
            split_seed: 0,
        }
    }
}

impl Task for MinOfTwo {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "At '=' the head should attend to whichever of a and b is smaller, whatever their order. Compare a < b with a > b.",
            qk: "The query is always '=', so read its row of the token·token panel: the score should fall as the key's value grows, so the smaller value wins the softmax.",
            ov: "The head copies what it attends to: a bright diagonal on the value tokens.",
            scores: "Expect attention on the answer near 1 and an OV diagonal near 100%: one head that finds the minimum by its key and copies it.",
            interventions: "Patch the smaller value to a larger one: the answer switches to the other operand, carried by the head's output at '='.",
            timeline: "A finite dataset: the Train cell plots train and test curves; min-of-two generalises as it learns (the test curve follows the train curve).",
        }
    }
    fn description(&self) -> &'static str {
        "The smaller of two numbers, over all n² pairs with a train/test split."
    }
    fn params(&self) -> Vec<ParamRow> {
        let mut rows = vec![ParamRow::int("n", 2, MAX_N, 200, "values are 0..n-1")];
        rows.extend(operands::split_rows(0.8));
        rows
    }
    fn validate(&self) -> Result<(), String> {
        if !(2..=MAX_N).contains(&self.n) {
            return Err(format!("n = {} must be 2..={MAX_N}", self.n));
        }
        validate_frac(self.frac_train)
    }
    fn seq_len(&self) -> usize {
        4
    }
    fn d_vocab(&self) -> usize {
        self.n.saturating_add(1)
    }
    fn d_vocab_out(&self) -> usize {
        self.n
    }
    fn vocab(&self) -> Vec<String> {
        operands::vocab(self.n)
    }
    fn pred_positions(&self) -> Vec<usize> {
        vec![2]
    }
    fn sample(&self, _rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        Vec::new() // a finite dataset: see `item`
    }
    fn finite(&self) -> Option<FiniteSplit> {
        Some(operands::split(self.n, self.frac_train, self.split_seed))
    }
    fn item(&self, i: u64) -> Vec<u32> {
        let (a, b) = operands::pair(self.n, i);
        vec![a, b, self.n as u32, a.min(b)]
    }
    /// The input position holding the minimum (both when a = b).
    fn answer_sources(&self, tokens: &[u32], _p: usize) -> Vec<usize> {
        (0..2).filter(|&q| tokens[q] == tokens[3]).collect()
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.n
    }
    fn position_names(&self) -> Vec<String> {
        ["a", "b", "=", "min"].map(String::from).to_vec()
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (0, 2)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let eq = self.n as u32;
        match *prompt {
            [a, b, e] if e == eq && a < eq && b < eq => Some(vec![a, b, eq, a.min(b)]),
            _ => None,
        }
    }
    /// `"17 42"` (or `"17 42 ="`) → `[17, 42, =]`.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        operands::parse_prompt(self.n, text)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 0, 2, " ")
    }
    /// The collection's model: 1 layer, 1 head, attention-only, d_model = d_head = 32.
    fn default_model(&self) -> crate::model::ModelConfig {
        super::task::attn_only(1, 1, 32, 32)
    }
}
