//! Array indexing (the mech-interp-practice collection's problem): write an element into
//! a list. `[BOS, a_0..a_{n-1}, NL, idx, elt, NL, b_0..b_{n-1}]` with a_i and elt uniform
//! in 0..max_num, idx uniform in 0..n (written as a number token), and b = a with
//! b[idx] = elt. BOS = max_num, NL = max_num + 1; T = 2n + 5 (11 for the default n = 3).
//! The logits at NL, b_0..b_{n-2} (positions n + 4 ..= 2n + 3) predict b_0..b_{n-1};
//! each is a function of the visible input, so the loss floor is 0.

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use super::MAX_N_CTX;
use serde::{Deserialize, Serialize};

/// The array-index task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArrayIndex {
    /// List length.
    pub n: usize,
    /// Values are 0..max_num.
    pub max_num: usize,
}

impl Default for ArrayIndex {
    fn default() -> Self {
        ArrayIndex { n: 3, max_num: 50 }
    }
}

impl ArrayIndex {
    fn bos(&self) -> u32 {
        self.max_num as u32
    }
    fn nl(&self) -> u32 {
        self.max_num as u32 + 1
    }
    /// The whole sequence for list `a`, index `idx` and element `elt`.
    pub fn tokens_for(&self, a: &[u32], idx: u32, elt: u32) -> Vec<u32> {
        let mut out = Vec::with_capacity(2 * a.len() + 5); // (T,)
        out.push(self.bos());
        out.extend_from_slice(a);
        out.extend([self.nl(), idx, elt, self.nl()]);
        out.extend(
            a.iter()
                .enumerate()
                .map(|(i, &v)| if i == idx as usize { elt } else { v }),
        );
        out
    }
}

impl Task for ArrayIndex {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "The position predicting b_j should attend to a_j, except when j = idx, where it should attend to elt. Pick an output position and compare inputs whose idx differs.",
            qk: "Choosing between a_j and elt needs idx: with two layers, look for a first-layer head that moves idx (or whether it equals j) into the residual stream that the copying head's query or keys read (the composition scores in the CLI's circuits report).",
            ov: "The head that fetches a_j or elt copies it: a bright diagonal on the value tokens.",
            scores: "Expect one copying head (OV diagonal near 100%, attention on the answer near 1) carrying most of the DLA, with an earlier head's contribution reaching it through composition.",
            interventions: "Patch a changed idx: the outputs at the old and new index change, and the heads whose patching restores them are the ones that read idx.",
            timeline: "The copy of a_j is learnt first (it is right for n − 1 of the n outputs); the overwrite at idx comes later, with a second drop of the loss.",
        }
    }
    fn description(&self) -> &'static str {
        "Copy a list with the element at a given index replaced."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::int("n", 1, (MAX_N_CTX - 5) / 2, 3, "list length"),
            ParamRow::int("max_num", 1, 65_534, 50, "values are 0..max_num-1"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        if self.n == 0 || self.seq_len() > MAX_N_CTX {
            return Err(format!(
                "n = {} must be 1..={}",
                self.n,
                (MAX_N_CTX - 5) / 2
            ));
        }
        if self.max_num > 65_534 || self.n > self.max_num {
            return Err(format!(
                "max_num = {} must be at least n = {} (indices are written as number tokens) and at most 65534",
                self.max_num, self.n
            ));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.n.saturating_mul(2).saturating_add(5)
    }
    fn d_vocab(&self) -> usize {
        self.max_num.saturating_add(2)
    }
    fn d_vocab_out(&self) -> usize {
        self.max_num
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.max_num).map(|i| i.to_string()).collect();
        v.extend(["BOS", "NL"].map(String::from));
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        (self.n + 4..=2 * self.n + 3).collect()
    }
    /// n draws `rng.below(max_num)`, then idx = `rng.below(n)`, then elt.
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        let m = self.max_num as u64;
        let a: Vec<u32> = (0..self.n).map(|_| rng.below(m) as u32).collect();
        let idx = rng.below(self.n as u64) as u32;
        let elt = rng.below(m) as u32;
        self.tokens_for(&a, idx, elt)
    }
    /// b_j copies elt (position n + 3) when j = idx, else a_j (position 1 + j).
    fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        let j = p - (self.n + 4);
        if tokens[self.n + 2] as usize == j {
            vec![self.n + 3]
        } else {
            vec![1 + j]
        }
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.max_num
    }
    fn position_names(&self) -> Vec<String> {
        let n = self.n;
        std::iter::once("BOS".to_string())
            .chain((0..n).map(|i| format!("a{i}")))
            .chain(["NL", "idx", "elt", "NL"].map(String::from))
            .chain((0..n).map(|i| format!("b{i}")))
            .collect()
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.n)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let n = self.n;
        let a = prompt.get(1..=n)?;
        let (idx, elt) = (*prompt.get(n + 2)?, *prompt.get(n + 3)?);
        let ok = (idx as usize) < n && elt < self.bos() && a.iter().all(|&v| v < self.bos());
        ok.then(|| self.tokens_for(a, idx, elt))
    }
    /// `"7 3 9 | 1 42"` → `[BOS, 7, 3, 9, NL, 1, 42, NL]` (n values, `|`, index and element).
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let (n, m) = (self.n, self.max_num);
        let Some((list, rest)) = text.split_once('|') else {
            return Err(format!(
                "expected {n} values, a '|', then an index and an element (e.g. \"7 3 9 | 1 42\")"
            ));
        };
        let a = super::parse_numbers(list, m, "value")?;
        let ie = super::parse_numbers(rest, m, "number")?;
        if a.len() != n || ie.len() != 2 || ie[0] as usize >= n {
            return Err(format!(
                "expected {n} values (each 0..={}), '|', an index 0..={} and an element",
                m - 1,
                n - 1
            ));
        }
        let mut out = self.tokens_for(&a, ie[0], ie[1]);
        out.truncate(n + 5);
        Ok(out)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        let (n, v) = (self.n, self.vocab());
        format!(
            "{} | {}",
            super::task::join_labels(&v, tokens, 1, n + 1, " "),
            super::task::join_labels(&v, tokens, n + 2, n + 4, " ")
        )
    }
    /// The collection's model: 2 layers, 1 head, attention-only, d_model = d_head = 128,
    /// shortformer positions (W_pos enters every layer's queries and keys, never the
    /// residual stream).
    fn default_model(&self) -> crate::model::ModelConfig {
        let mut m = super::task::attn_only(2, 1, 128, 128);
        m.positional_embedding_type = crate::model::Positions::Shortformer;
        m
    }
}
