//! Reverse a list: `[BOS, a_1..a_n, MID, a_n..a_1]` with a_i uniform in 0..max_num,
//! BOS = max_num, MID = max_num + 1; T = 2n + 2. The logits at MID and the reversed
//! list's first n − 1 tokens (positions n + 1 ..= 2n) predict it; the loss floor is 0.

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use super::MAX_N_CTX;
use serde::{Deserialize, Serialize};

/// The reverse task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reverse {
    /// List length.
    pub n: usize,
    /// Values are 0..max_num.
    pub max_num: usize,
}

impl Default for Reverse {
    fn default() -> Self {
        Reverse { n: 6, max_num: 50 }
    }
}

impl Reverse {
    fn tokens_for(&self, a: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(2 * a.len() + 2); // (T,)
        out.push(self.max_num as u32);
        out.extend_from_slice(a);
        out.push(self.max_num as u32 + 1);
        out.extend(a.iter().rev());
        out
    }
}

impl Task for Reverse {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "The position predicting the i-th output reads a_{n-i+1}, the mirrored input: the pattern from the outputs onto the list is an anti-diagonal, chosen by position, not by value.",
            qk: "The position·position panel carries the rule (each output position prefers its mirror in the list); the token·token panel should be nearly flat.",
            ov: "The head copies what it attends to: a bright diagonal on the value tokens.",
            scores: "Expect attention on the answer near 1, an OV diagonal near 100%, and a QK offset without structure (values do not matter).",
            interventions: "Patch one list value: only the one output that mirrors it changes, restored by the head's output at that position.",
            timeline: "Watch the attention on the answer rise as the position pattern sharpens; the loss falls with it.",
        }
    }
    fn description(&self) -> &'static str {
        "Write a list backwards."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::int("n", 1, (MAX_N_CTX - 2) / 2, 6, "list length"),
            ParamRow::int("max_num", 1, 65_534, 50, "values are 0..max_num-1"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        if self.n == 0 || self.seq_len() > MAX_N_CTX {
            return Err(format!(
                "n = {} must be 1..={}",
                self.n,
                (MAX_N_CTX - 2) / 2
            ));
        }
        if self.max_num == 0 || self.max_num > 65_534 {
            return Err(format!("max_num = {} must be 1..=65534", self.max_num));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.n.saturating_mul(2).saturating_add(2)
    }
    fn d_vocab(&self) -> usize {
        self.max_num.saturating_add(2)
    }
    fn d_vocab_out(&self) -> usize {
        self.max_num
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.max_num).map(|i| i.to_string()).collect();
        v.extend(["BOS", "MID"].map(String::from));
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        (self.n + 1..=2 * self.n).collect()
    }
    /// n draws `rng.below(max_num)`.
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        let a: Vec<u32> = (0..self.n)
            .map(|_| rng.below(self.max_num as u64) as u32)
            .collect();
        self.tokens_for(&a)
    }
    /// The mirrored position: the target b_j = a_{n+1-j} sits at n + 1 − j.
    fn answer_sources(&self, _tokens: &[u32], p: usize) -> Vec<usize> {
        vec![2 * self.n + 1 - p]
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
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.n)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let a = prompt.get(1..=self.n)?;
        let ok = a.iter().all(|&v| (v as usize) < self.max_num)
            && prompt[0] == self.max_num as u32
            && prompt.get(self.n + 1) == Some(&(self.max_num as u32 + 1));
        ok.then(|| self.tokens_for(a))
    }
    /// `"3 1 4"` → `[BOS, 3, 1, 4, MID]`.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let a = super::parse_numbers(text, self.max_num, "value")?;
        if a.len() != self.n {
            return Err(format!(
                "expected {} numbers (each 0..={}), got {}",
                self.n,
                self.max_num - 1,
                a.len()
            ));
        }
        let mut out = self.tokens_for(&a);
        out.truncate(self.n + 2);
        Ok(out)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 1, self.n + 1, " ")
    }
    /// 1 layer, 1 head, attention-only, d_model = d_head = 64.
    fn default_model(&self) -> crate::model::ModelConfig {
        super::task::attn_only(1, 1, 64, 64)
    }
}
