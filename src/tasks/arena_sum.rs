//! ARENA's monthly algorithmic problem "sum of two numbers", defined as its published
//! `dataset.py` (`SumDataset`) defines it: `[a_1..a_n, +, b_1..b_n, =, c_1..c_n]` over the
//! vocabulary `0`..`9`, `+` (10), `=` (11). The digits of a and b are uniform in 0..9
//! except their first (most significant) digit, uniform in 0..4, so that c = a + b has
//! n digits too; c is written most significant digit first. T = 3n + 2. The logits at
//! `=` and c_1..c_{n-1} (positions 2n + 1 ..= 3n) predict c_1..c_n; the loss floor is 0.

use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use serde::{Deserialize, Serialize};

/// Largest number of digits accepted (a + b must fit in a u64).
pub const MAX_DIGITS: usize = 18;
const PLUS: u32 = 10;
const EQUALS: u32 = 11;

/// The sum task's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArenaSum {
    /// Digits per number.
    pub num_digits: usize,
}

impl Default for ArenaSum {
    fn default() -> Self {
        ArenaSum { num_digits: 4 }
    }
}

/// The number a list of decimal digits (most significant first) writes.
fn value(digits: &[u32]) -> u64 {
    digits.iter().fold(0, |v, &d| v * 10 + d as u64)
}

impl ArenaSum {
    /// The whole sequence for the digits of a and b (each `num_digits` long).
    pub fn tokens_for(&self, a: &[u32], b: &[u32]) -> Vec<u32> {
        let n = self.num_digits;
        let sum = value(a) + value(b);
        let mut out = Vec::with_capacity(3 * n + 2); // (T,)
        out.extend_from_slice(a);
        out.push(PLUS);
        out.extend_from_slice(b);
        out.push(EQUALS);
        out.extend(
            (0..n)
                .rev()
                .map(|i| (sum / 10u64.pow(i as u32) % 10) as u32),
        );
        out
    }
    fn number(&self, rng: &mut CounterRng) -> Vec<u32> {
        (0..self.num_digits)
            .map(|i| rng.below(if i == 0 { 5 } else { 10 }) as u32)
            .collect()
    }
}

impl Task for ArenaSum {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "The position predicting c_i needs a_i and b_i and whether the lower digits carry: look for heads attending to the two digits of the same place, and to the next place.",
            qk: "Which digits to read is a matter of position: the position panels carry the rule, the token·token panel little.",
            ov: "The answer is (a_i + b_i + carry) mod 10, not a copy: do not expect a copying diagonal; the MLP (when the model has one) computes the sum.",
            scores: "Expect low OV diagonals and a large share of the DLA written by the MLP; the heads' job is to move digits.",
            interventions: "Patch one digit of a: the answer's digit at that place changes, and the one above it when the carry changes.",
            timeline: "Digits without a carry are learnt first; the carry comes later, with a second drop of the loss.",
        }
    }
    fn description(&self) -> &'static str {
        "Add two n-digit numbers (ARENA's monthly problem 'sum')."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![ParamRow::int(
            "num_digits",
            1,
            MAX_DIGITS,
            4,
            "digits per number",
        )]
    }
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_DIGITS).contains(&self.num_digits) {
            return Err(format!(
                "num_digits = {} must be 1..={MAX_DIGITS}",
                self.num_digits
            ));
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        self.num_digits.saturating_mul(3).saturating_add(2)
    }
    fn d_vocab(&self) -> usize {
        12
    }
    fn d_vocab_out(&self) -> usize {
        10
    }
    fn vocab(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        v.extend(["+", "="].map(String::from));
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        let n = self.num_digits;
        (2 * n + 1..=3 * n).collect()
    }
    /// a's digits then b's, each first digit `rng.below(5)`, the others `rng.below(10)`.
    fn sample(&self, rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        let a = self.number(rng);
        let b = self.number(rng);
        self.tokens_for(&a, &b)
    }
    /// The digits of a and b in the same place as the target digit.
    fn answer_sources(&self, _tokens: &[u32], p: usize) -> Vec<usize> {
        let i = p - (2 * self.num_digits + 1); // place of the target, 0 = most significant
        vec![i, self.num_digits + 1 + i]
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..10
    }
    fn position_names(&self) -> Vec<String> {
        let n = self.num_digits;
        (1..=n)
            .map(|i| format!("a{i}"))
            .chain(std::iter::once("+".to_string()))
            .chain((1..=n).map(|i| format!("b{i}")))
            .chain(std::iter::once("=".to_string()))
            .chain((1..=n).map(|i| format!("c{i}")))
            .collect()
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (0, self.num_digits)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let n = self.num_digits;
        let (a, b) = (prompt.get(..n)?, prompt.get(n + 1..2 * n + 1)?);
        let digits_ok = a.iter().chain(b).all(|&d| d < 10) && a[0] < 5 && b[0] < 5;
        let ok = digits_ok && prompt[n] == PLUS && prompt.get(2 * n + 1) == Some(&EQUALS);
        ok.then(|| self.tokens_for(a, b))
    }
    /// `"1234 + 4321"` → the digits, `+`, the digits, `=` (first digits 0..4).
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let n = self.num_digits;
        let text = text.trim().trim_end_matches('=');
        let parts: Vec<&str> = text.split('+').map(str::trim).collect();
        let digits = |s: &str| -> Option<Vec<u32>> {
            let d: Vec<u32> = s.chars().map(|c| c.to_digit(10)).collect::<Option<_>>()?;
            (d.len() == n && d[0] < 5).then_some(d)
        };
        match parts[..] {
            [a, b] => match (digits(a), digits(b)) {
                (Some(a), Some(b)) => {
                    let mut out = self.tokens_for(&a, &b);
                    out.truncate(2 * n + 2);
                    Ok(out)
                }
                _ => Err(format!(
                    "each number has exactly {n} digits, the first 0..4 (e.g. \"{} + {}\")",
                    "1".repeat(n),
                    "2".repeat(n)
                )),
            },
            _ => Err("expected two numbers joined by '+' (e.g. \"1234 + 4321\")".into()),
        }
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        let (n, v) = (self.num_digits, self.vocab());
        format!(
            "{} + {}",
            super::task::join_labels(&v, tokens, 0, n, ""),
            super::task::join_labels(&v, tokens, n + 1, 2 * n + 1, "")
        )
    }
    /// 2 layers, 2 heads, d_model 64, d_head 32, MLP 256 ReLU (the carry needs a
    /// nonlinearity: a 2-digit attention-only model stalled at 0.78 token accuracy).
    fn default_model(&self) -> crate::model::ModelConfig {
        let mut cfg = super::task::attn_only(2, 2, 64, 32);
        cfg.d_mlp = Some(256);
        cfg.act_fn = Some(crate::model::ActFn::Relu);
        cfg
    }
}
