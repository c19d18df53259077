//! Majority element (the mech-interp-practice collection's problem):
//! `[BOS, x_1..x_n, END, m]` with BOS = max_num + 1, END = max_num. The x_i are uniform
//! in 0..max_num, then `k` (default 6 of n = 10) distinct uniformly random positions are
//! overwritten with m (uniform in 0..max_num), so m is a strict majority (k > n / 2). The
//! logit at END (position n + 1) predicts m; m is appended as the training target
//! (toyformer scores next tokens), so T = n + 3 and a model's n_ctx is one more than the
//! collection's: the extra position comes after the scored one and changes none of its
//! logits. d_vocab = d_vocab_out = max_num + 2 (the collection's model predicts over the
//! whole vocabulary).

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use super::MAX_N_CTX;
use serde::{Deserialize, Serialize};

/// The majority-element task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Majority {
    /// List length.
    pub n: usize,
    /// How many positions hold the majority element.
    pub k: usize,
    /// Values are 0..max_num.
    pub max_num: usize,
}

impl Default for Majority {
    fn default() -> Self {
        Majority {
            n: 10,
            k: 6,
            max_num: 50,
        }
    }
}

impl Majority {
    fn end(&self) -> u32 {
        self.max_num as u32
    }
    fn bos(&self) -> u32 {
        self.max_num as u32 + 1
    }
    /// The strict majority of the list (a value appearing more than n / 2 times), if any.
    pub fn majority_of(list: &[u32]) -> Option<u32> {
        list.iter()
            .copied()
            .find(|&v| 2 * list.iter().filter(|&&x| x == v).count() > list.len())
    }
    fn with_answer(&self, list: &[u32], m: u32) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.n + 3); // (T,)
        out.push(self.bos());
        out.extend_from_slice(list);
        out.push(self.end());
        out.push(m);
        out
    }
}

impl Task for Majority {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "At END the head can spread its attention evenly over the list: the majority element, on k of the n positions, then gets k/n of it. Look at END's row.",
            qk: "With a fixed query (END), the token·token panel matters only through END's row; a flat row over the value tokens means even attention, a raised diagonal means the head prefers repeated tokens.",
            ov: "The OV circuit copies (a bright diagonal): averaging the copies of every list element makes the most frequent one the largest logit.",
            scores: "Attention on the answer near k/n means an even average; above k/n the head also prefers the repeated token. The OV diagonal should be near 100%.",
            interventions: "Patching changes one list value; with k > n/2 copies of m the answer rarely changes, so expect small patching effects except where a copy of m is overwritten.",
            timeline: "The OV copying score rises with the accuracy; the attention pattern hardly needs to change.",
        }
    }
    fn description(&self) -> &'static str {
        "Name the element that fills k of the n positions (a strict majority)."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::int("n", 1, MAX_N_CTX - 3, 10, "list length"),
            ParamRow::int(
                "k",
                1,
                MAX_N_CTX - 3,
                6,
                "copies of the majority element (> n/2)",
            ),
            ParamRow::int("max_num", 1, 65_533, 50, "values are 0..max_num-1"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        if self.n == 0 || self.n + 3 > MAX_N_CTX {
            return Err(format!("n = {} must be 1..={}", self.n, MAX_N_CTX - 3));
        }
        if 2 * self.k <= self.n || self.k > self.n {
            return Err(format!(
                "k = {} must be more than n / 2 and at most n = {} (the majority element fills k positions)",
                self.k, self.n
            ));
        }
        if self.max_num == 0 || self.max_num > 65_533 {
            return Err(format!("max_num = {} must be 1..=65533", self.max_num));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.n.saturating_add(3)
    }
    fn d_vocab(&self) -> usize {
        self.max_num.saturating_add(2)
    }
    fn d_vocab_out(&self) -> usize {
        self.max_num.saturating_add(2)
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.max_num).map(|i| i.to_string()).collect();
        v.extend(["END", "BOS"].map(String::from));
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        vec![self.n + 1]
    }
    /// n draws `rng.below(max_num)`, then m = `rng.below(max_num)`, then the k positions
    /// `rng.combination(n, k)`.
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        let mut list: Vec<u32> = (0..self.n)
            .map(|_| rng.below(self.max_num as u64) as u32)
            .collect();
        let m = rng.below(self.max_num as u64) as u32;
        for q in rng.combination(self.n, self.k) {
            list[q] = m;
        }
        self.with_answer(&list, m)
    }
    fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        (1..=self.n)
            .filter(|&q| tokens[q] == tokens[p + 1])
            .collect()
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.max_num
    }
    fn position_names(&self) -> Vec<String> {
        std::iter::once("BOS".to_string())
            .chain((1..=self.n).map(|i| format!("x{i}")))
            .chain(["END", "m"].map(String::from))
            .collect()
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.n)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let list = prompt.get(1..=self.n)?;
        let ok = prompt[0] == self.bos() && prompt.get(self.n + 1) == Some(&self.end());
        let m = Self::majority_of(list).filter(|&m| m < self.end())?;
        ok.then(|| self.with_answer(list, m))
    }
    /// `"3 7 3 3 1 3 3 9 3 2"` → `[BOS, 3, 7, .., END]` (n numbers with a strict majority).
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let list = super::parse_numbers(text, self.max_num, "value")?;
        if list.len() != self.n {
            return Err(format!(
                "expected {} numbers (each 0..={}), got {}",
                self.n,
                self.max_num - 1,
                list.len()
            ));
        }
        if Self::majority_of(&list).is_none() {
            return Err("no number fills more than half of the list".into());
        }
        let mut out = self.with_answer(&list, 0);
        out.pop();
        Ok(out)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 1, self.n + 1, " ")
    }
    /// The collection's model: 1 layer, 1 head, attention-only, d_model = d_head = 64.
    fn default_model(&self) -> crate::model::ModelConfig {
        super::task::attn_only(1, 1, 64, 64)
    }
}
