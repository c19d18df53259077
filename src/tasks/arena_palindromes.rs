//! ARENA's monthly algorithmic problem "palindromes" (July 2023), defined as its published
//! `dataset.py` (`PalindromeDataset`) defines it — callummcdougall/ARENA_2.0, path
//! `chapter1_transformers/exercises/monthly_algorithmic_problems/july23_palindromes/dataset.py`,
//! commit 0b55467902a288ddd1f1e8c5109e736524917b78:
//! `[START, a_1..a_N, END]` with N = 2·half_length, START = max_value + 1, END = max_value + 2,
//! every a_i in 0..=max_value (the problem's model: half_length 10, max_value 30, so
//! START = 31, END = 32, T = 22). Half the sequences are palindromes (a random half,
//! then its mirror); the other half take a random first half and, at each position of
//! the mirrored second half, with probability 1/2 a fresh random value instead. The label
//! is 1 when (a_1..a_N) reads the same backwards, else 0 (so a mutated sequence whose
//! replacements happen to mirror is labelled 1), and the logits at END (the last position,
//! the model's `[:, -1]`) classify it: d_vocab = max_value + 3, d_vocab_out = 2. The
//! dataset draws exactly half of each kind and shuffles them; this sampler flips a fair
//! coin per sequence, the same distribution item by item. The label is no token of the
//! sequence: [`Task::targets`] gives it.

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use super::MAX_N_CTX;
use serde::{Deserialize, Serialize};

/// The palindromes task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArenaPalindromes {
    /// Half the number of values (N = 2·half_length).
    pub half_length: usize,
    /// Values are 0..=max_value.
    pub max_value: usize,
}

impl Default for ArenaPalindromes {
    fn default() -> Self {
        ArenaPalindromes {
            half_length: 10,
            max_value: 30,
        }
    }
}

impl ArenaPalindromes {
    fn start(&self) -> u32 {
        self.max_value as u32 + 1
    }
    fn end(&self) -> u32 {
        self.max_value as u32 + 2
    }
    /// Whether `values` (a_1..a_N) reads the same backwards.
    pub fn is_palindrome(values: &[u32]) -> bool {
        values.iter().eq(values.iter().rev())
    }
    fn with_marks(&self, values: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(values.len() + 2); // (T,)
        out.push(self.start());
        out.extend_from_slice(values);
        out.push(self.end());
        out
    }
}

impl Task for ArenaPalindromes {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "Only END is scored. Look for heads that pair each position with its mirror (position i with 2h+1−i) in layer 0, and for END reading the positions where a pair disagrees in layer 1.",
            qk: "The position·position panel should carry an anti-diagonal (mirror pairs); values matter only through whether a pair is equal.",
            ov: "This is a yes/no label task: there is no copying diagonal. The OV maps write evidence for “no” when the attended value differs from its mirror's.",
            scores: "Copying scores do not apply to a label task; read the DLA bars (which heads push “yes”/“no”) and the composition paths from layer 0 into the head that writes the answer.",
            interventions: "Patch one value of a palindrome so it no longer matches its mirror: the answer should flip, and patching the layer-0 head's output at that position restores it.",
            timeline: "Expect the easy cases (many pairs differ) to be learnt first and the near-palindromes (one mismatched pair) last; see when the mirror pattern of layer 0 forms.",
        }
    }
    fn description(&self) -> &'static str {
        "Say whether the list reads the same backwards (ARENA's monthly problem 'palindromes')."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::int(
                "half_length",
                1,
                (MAX_N_CTX - 2) / 2,
                10,
                "half the list length",
            ),
            ParamRow::int("max_value", 1, 65_532, 30, "values are 0..=max_value"),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        let most = (MAX_N_CTX - 2) / 2;
        if self.half_length == 0 || self.half_length > most {
            return Err(format!(
                "half_length = {} must be 1..={most}",
                self.half_length
            ));
        }
        if self.max_value == 0 || self.max_value > 65_532 {
            return Err(format!("max_value = {} must be 1..=65532", self.max_value));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.half_length.saturating_mul(2).saturating_add(2)
    }
    fn d_vocab(&self) -> usize {
        self.max_value.saturating_add(3)
    }
    fn d_vocab_out(&self) -> usize {
        2
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..=self.max_value).map(|i| i.to_string()).collect();
        v.extend(["START", "END"].map(String::from));
        v
    }
    fn output_vocab(&self) -> Vec<String> {
        vec!["no".into(), "yes".into()]
    }
    fn pred_positions(&self) -> Vec<usize> {
        vec![2 * self.half_length + 1]
    }
    /// The label of the sequence: 1 for a palindrome, else 0.
    fn targets(&self, tokens: &[u32]) -> Vec<u32> {
        let n = 2 * self.half_length;
        match tokens.get(1..=n) {
            Some(values) => vec![Self::is_palindrome(values) as u32],
            None => Vec::new(),
        }
    }
    fn target_position(&self, _p: usize) -> Option<usize> {
        None
    }
    /// A coin `rng.below(2)` (0: palindrome), the first half (h draws of a value in
    /// 0..=max_value), then for a mutated one h fresh values and h coins choosing, position
    /// by position of the mirrored half, the fresh value (1) or the mirror (0).
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        let (h, hi) = (self.half_length, self.max_value as u64 + 1);
        let mutated = rng.below(2) == 1;
        let half: Vec<u32> = (0..h).map(|_| rng.below(hi) as u32).collect();
        let mut second: Vec<u32> = half.iter().rev().copied().collect();
        if mutated {
            let fresh: Vec<u32> = (0..h).map(|_| rng.below(hi) as u32).collect();
            for (x, f) in second.iter_mut().zip(fresh) {
                if rng.below(2) == 1 {
                    *x = f;
                }
            }
        }
        let values: Vec<u32> = half.into_iter().chain(second).collect();
        self.with_marks(&values)
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.max_value + 1
    }
    fn position_names(&self) -> Vec<String> {
        std::iter::once("START".to_string())
            .chain((1..=2 * self.half_length).map(|i| format!("a{i}")))
            .chain(std::iter::once("END".to_string()))
            .collect()
    }
    /// The whole sequence is the prompt; the answer is the label at END.
    fn prompt_len(&self) -> usize {
        self.seq_len()
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (1, 2 * self.half_length)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let n = 2 * self.half_length;
        let ok = prompt.first() == Some(&self.start()) && prompt.get(n + 1) == Some(&self.end());
        ok.then(|| prompt.to_vec())
    }
    /// `"3 1 4 4 1 3"` (2·half_length values 0..=max_value) → `[START, 3, 1, .., END]`.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let values = super::parse_numbers(text, self.max_value + 1, "value")?;
        if values.len() != 2 * self.half_length {
            return Err(format!(
                "expected {} numbers (each 0..={}), got {}",
                2 * self.half_length,
                self.max_value,
                values.len()
            ));
        }
        Ok(self.with_marks(&values))
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 1, 2 * self.half_length + 1, " ")
    }
    /// 2 layers, 2 heads, attention-only, d_model 64, d_head 32 (toyformer's choice).
    fn default_model(&self) -> crate::model::ModelConfig {
        super::task::attn_only(2, 2, 64, 32)
    }
}
