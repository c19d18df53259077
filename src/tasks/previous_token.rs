//! Previous token (the mech-interp-practice collection's "rederive positions"):
//! `[BOS, x_1..x_n]` with BOS = max_num (default n = 9, max_num = 100) and every x_i uniform
//! over 0..=max_num, which includes the BOS id, as the collection's generator draws them.
//! The logits at positions 1..=n predict the token one position earlier (position 1
//! predicts BOS), so the targets are not next tokens: [`Task::targets`] gives them. The
//! collection's model has no positional embeddings (`positional_embedding_type` off): it
//! must rederive positions from causal attention (attending to BOS is the only anchor).
//! d_vocab = d_vocab_out = max_num + 1; T = n + 1; the loss floor is 0.

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use super::MAX_N_CTX;
use crate::model::Positions;
use serde::{Deserialize, Serialize};

/// The previous-token task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreviousToken {
    /// Tokens after BOS.
    pub n: usize,
    /// BOS's id; the tokens are uniform over 0..=max_num.
    pub max_num: usize,
}

impl Default for PreviousToken {
    fn default() -> Self {
        PreviousToken { n: 9, max_num: 100 }
    }
}

impl PreviousToken {
    fn bos(&self) -> u32 {
        self.max_num as u32
    }
}

impl Task for PreviousToken {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "Each scored position reads the token one place back. With positions off the model must first find where it is: layer 0 attends to BOS (whose share shrinks as the position grows), and layer 1 uses that to attend to position −1.",
            qk: "There is no position panel to read (positions are off): the token·token panel should be flat, and any preference for position −1 must come through layer 0's output (K-composition).",
            ov: "The layer-1 head copies what it attends to: a bright diagonal over the whole vocabulary (BOS included).",
            scores: "Expect layer-1 attention on position −1 well above uniform, a copying OV, and layer-0 attention on BOS; the Task analyses cell checks exactly this hypothesis.",
            interventions: "Ablate the layer-0 head: layer 1 loses its sense of position and accuracy falls most at late positions, which are far from BOS.",
            timeline: "Watch layer 0's attention on BOS form before layer 1's attention on position −1 sharpens; the later positions learn last.",
        }
    }
    fn description(&self) -> &'static str {
        "Name the token one position earlier, with no positional embeddings (rederive positions)."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::int("n", 1, MAX_N_CTX - 1, 9, "tokens after BOS"),
            ParamRow::int(
                "max_num",
                1,
                65_534,
                100,
                "BOS's id; tokens are 0..=max_num",
            ),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        if self.n == 0 || self.n + 1 > MAX_N_CTX {
            return Err(format!("n = {} must be 1..={}", self.n, MAX_N_CTX - 1));
        }
        if self.max_num == 0 || self.max_num > 65_534 {
            return Err(format!("max_num = {} must be 1..=65534", self.max_num));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.n.saturating_add(1)
    }
    fn d_vocab(&self) -> usize {
        self.max_num.saturating_add(1)
    }
    fn d_vocab_out(&self) -> usize {
        self.max_num.saturating_add(1)
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.max_num).map(|i| i.to_string()).collect();
        v.push("BOS".into());
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        (1..=self.n).collect()
    }
    /// The token before each scored position: `tokens[p - 1]`.
    fn targets(&self, tokens: &[u32]) -> Vec<u32> {
        self.pred_positions()
            .into_iter()
            .filter_map(|p| tokens.get(p).and(tokens.get(p - 1)).copied())
            .collect()
    }
    fn target_position(&self, p: usize) -> Option<usize> {
        p.checked_sub(1)
    }
    /// n draws `rng.below(max_num + 1)` after BOS.
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        std::iter::once(self.bos())
            .chain((0..self.n).map(|_| rng.below(self.max_num as u64 + 1) as u32))
            .collect()
    }
    fn answer_sources(&self, _tokens: &[u32], p: usize) -> Vec<usize> {
        vec![p - 1]
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.max_num
    }
    fn position_names(&self) -> Vec<String> {
        std::iter::once("BOS".to_string())
            .chain((1..=self.n).map(|i| format!("x{i}")))
            .collect()
    }
    /// The whole sequence is the prompt: every scored position's target is already in it.
    fn prompt_len(&self) -> usize {
        self.n + 1
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, self.n)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        (prompt.first() == Some(&self.bos())).then(|| prompt.to_vec())
    }
    /// `"3 7 100 42 …"` (n numbers 0..=max_num; max_num is BOS's id) → `[BOS, 3, 7, ..]`.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let list = super::parse_numbers(text, self.max_num + 1, "value")?;
        if list.len() != self.n {
            return Err(format!(
                "expected {} numbers (each 0..={}), got {}",
                self.n,
                self.max_num,
                list.len()
            ));
        }
        Ok(std::iter::once(self.bos()).chain(list).collect())
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        let n = tokens.len().min(self.n + 1);
        tokens[1.min(n)..n]
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// The collection's model: 2 layers, 1 head, attention-only, d_model = d_head = 128,
    /// positional embeddings off.
    fn default_model(&self) -> crate::model::ModelConfig {
        let mut cfg = super::task::attn_only(2, 1, 128, 128);
        cfg.positional_embedding_type = Positions::Off;
        cfg
    }
}
