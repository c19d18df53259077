//! Induction on repeated random tokens, the model every interpretability course starts
//! with: `[BOS, r_1..r_k, r_1..r_k]` with BOS = n_tokens and the r_i distinct tokens drawn
//! uniformly from 0..n_tokens (distinct, so that each next token of the repeat is
//! determined by the one before it: the loss floor is 0). T = 2k + 1. The repeat is
//! scored where it can be predicted: the logits at r_1..r_{k-1} of the second half
//! (positions k + 1 ..= 2k − 1) predict r_2..r_k.

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use super::MAX_N_CTX;
use serde::{Deserialize, Serialize};

/// The induction task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Induction {
    /// Length of the random half.
    pub k: usize,
    /// Random tokens are 0..n_tokens.
    pub n_tokens: usize,
}

impl Default for Induction {
    fn default() -> Self {
        Induction {
            k: 10,
            n_tokens: 50,
        }
    }
}

impl Induction {
    fn tokens_for(&self, r: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(2 * r.len() + 1); // (T,)
        out.push(self.n_tokens as u32);
        out.extend_from_slice(r);
        out.extend_from_slice(r);
        out
    }
}

impl Task for Induction {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "Two heads in sequence: a previous-token head (layer 0) attends from each position to the one before it, and an induction head (layer 1) attends from r_i in the repeat to the token after r_i's first occurrence.",
            qk: "The induction head's keys are chosen by what the previous-token head wrote (K-composition), not by the embeddings: its token·token panel through the embeddings alone is weak.",
            ov: "The induction head copies the token it attends to: a bright diagonal.",
            scores: "Expect a layer-1 head with attention on the answer near 1 and an OV diagonal near 100%, carrying most of the DLA, and a layer-0 head whose attention sits one position back.",
            interventions: "Ablating the previous-token head breaks the induction head too: the loss rises as much as when the induction head itself is removed.",
            timeline: "Induction heads form in a phase change: the loss on the repeat drops suddenly when the attention on the answer jumps.",
        }
    }
    fn description(&self) -> &'static str {
        "Continue a repeated sequence of random tokens (induction heads)."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::int("k", 2, (MAX_N_CTX - 1) / 2, 10, "length of the random half"),
            ParamRow::int("n_tokens", 2, 65_535, 50, "random tokens are 0..n_tokens-1"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        if self.k < 2 || self.seq_len() > MAX_N_CTX {
            return Err(format!(
                "k = {} must be 2..={}",
                self.k,
                (MAX_N_CTX - 1) / 2
            ));
        }
        if self.n_tokens < self.k || self.n_tokens > 65_535 {
            return Err(format!(
                "n_tokens = {} must be at least k = {} (the k tokens are distinct) and at most 65535",
                self.n_tokens, self.k
            ));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.k.saturating_mul(2).saturating_add(1)
    }
    fn d_vocab(&self) -> usize {
        self.n_tokens.saturating_add(1)
    }
    fn d_vocab_out(&self) -> usize {
        self.n_tokens
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.n_tokens).map(|i| i.to_string()).collect();
        v.push("BOS".into());
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        (self.k + 1..2 * self.k).collect()
    }
    /// `rng.permutation(n_tokens)`'s first k entries.
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        let r: Vec<u32> = rng.permutation(self.n_tokens)[..self.k]
            .iter()
            .map(|&t| t as u32)
            .collect();
        self.tokens_for(&r)
    }
    /// The first-half position of the target (one after the earlier copy of the current
    /// token): what an induction head attends to.
    fn answer_sources(&self, _tokens: &[u32], p: usize) -> Vec<usize> {
        vec![p + 1 - self.k]
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.n_tokens
    }
    fn position_names(&self) -> Vec<String> {
        std::iter::once("BOS".to_string())
            .chain((1..=self.k).map(|i| format!("r{i}")))
            .chain((1..=self.k).map(|i| format!("r{i}'")))
            .collect()
    }
    /// The prompt is BOS, the random half and its first token again.
    fn prompt_len(&self) -> usize {
        self.k.saturating_add(2)
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.k)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let r = prompt.get(1..=self.k)?;
        let mut seen = vec![false; self.n_tokens];
        for &t in r {
            if std::mem::replace(seen.get_mut(t as usize)?, true) {
                return None;
            }
        }
        let ok = prompt[0] == self.n_tokens as u32 && prompt.get(self.k + 1) == Some(&r[0]);
        ok.then(|| self.tokens_for(r))
    }
    /// `"4 17 9 .."` (k distinct tokens) → `[BOS, 4, 17, 9, .., 4]`.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let r = super::parse_numbers(text, self.n_tokens, "token")?;
        if r.len() != self.k {
            return Err(format!("expected {} tokens, got {}", self.k, r.len()));
        }
        let mut out = self.tokens_for(&r);
        out.truncate(self.k + 2);
        if self.solve(&out).is_none() {
            return Err("the tokens must be distinct".into());
        }
        Ok(out)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 1, self.k + 1, " ")
    }
    /// 2 layers, 2 heads, attention-only, d_model 64, d_head 32.
    fn default_model(&self) -> crate::model::ModelConfig {
        super::task::attn_only(2, 2, 64, 32)
    }
}
