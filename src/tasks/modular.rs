//! Modular arithmetic, the grokking set-up (Power et al. 2022; Nanda et al. 2023):
//! `[a, b, =, c]` with a, b in 0..p, `=` = p and c = (a + b) mod p (`mod-add`) or
//! (a − b) mod p (`mod-sub`). The logit at position 2 (`=`) predicts c; c is appended as
//! the training target (toyformer scores next tokens), so T = 4 and a model's n_ctx is 4
//! where the collection's models have 3: the extra position comes after every scored one
//! and changes none of their logits.
//!
//! A finite dataset of all p² pairs, item i = (a, b) = (i / p, i mod p), split by
//! `frac_train` (default 0.3) and `split_seed` (see [`super::finite`]).

use super::finite::{operands, validate_frac, FiniteSplit};
use super::rng::CounterRng;
use super::task::{ParamRow, Task};
use serde::{Deserialize, Serialize};

/// Largest modulus accepted (p² pairs are enumerated, p + 1 token ids).
pub const MAX_P: usize = 2003;

/// The operation of a [`Modular`] task.
pub trait Op: Copy + std::fmt::Debug + PartialEq {
    /// Whether the task subtracts (otherwise it adds).
    const SUB: bool;
}

/// Addition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Add;
impl Op for Add {
    const SUB: bool = false;
}

/// Subtraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sub;
impl Op for Sub {
    const SUB: bool = true;
}

/// `mod-add` or `mod-sub` modulo `p`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct Modular<O: Op> {
    /// The modulus.
    pub p: usize,
    /// Fraction of the p² pairs that train.
    pub frac_train: f64,
    /// Seed of the train/test split.
    pub split_seed: u64,
    #[serde(skip)]
    op: std::marker::PhantomData<O>,
}

/// (a + b) mod p.
pub type ModAdd = Modular<Add>;
/// (a − b) mod p.
pub type ModSub = Modular<Sub>;

impl<O: Op> Default for Modular<O> {
    fn default() -> Self {
        Modular {
            p: 113,
            frac_train: 0.3,
            split_seed: 0,
            op: std::marker::PhantomData,
        }
    }
}

impl<O: Op> Modular<O> {
    /// The answer for a and b.
    pub fn answer(&self, a: u32, b: u32) -> u32 {
        let p = self.p as u64;
        let (a, b) = (a as u64 % p, b as u64 % p);
        (if O::SUB { (a + p - b) % p } else { (a + b) % p }) as u32
    }
    fn equals(&self) -> u32 {
        self.p as u32
    }
}

impl<O: Op> Task for Modular<O> {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        let add = super::task::AnalysisNotes {
            attention: "At '=' the attention splits between a and b (roughly half each): the head moves both operands to the last position, where the MLP combines them.",
            qk: "The query is always '='; the interesting structure is not in QK: the head's keys need only make the two operands get comparable weight.",
            ov: "Not a copying circuit (the OV diagonal is near chance, 1/p): the embeddings and the OV circuit carry a few Fourier frequencies cos(wa), sin(wa) with w = 2πk/p (Nanda et al. 2023).",
            scores: "Expect low OV diagonals and most of the DLA from the MLP, which forms cos(w(a+b)) and sin(w(a+b)) from products of the operands' waves.",
            interventions: "Ablating a head breaks the answer (the MLP needs both operands); patching changes one operand and moves the answer by the same amount.",
            timeline: "Grokking: the Train cell plots train and test curves; train accuracy reaches 1 early by memorising, and test accuracy rises much later as weight decay shrinks the memorising weights.",
        };
        let sub = super::task::AnalysisNotes {
            attention: "At '=' (for a − b the order matters) the attention splits between a and b (roughly half each): the head moves both operands to the last position, where the MLP combines them.",
            qk: "The query is always '='; the interesting structure is not in QK: the head's keys need only make the two operands get comparable weight.",
            ov: "Not a copying circuit (the OV diagonal is near chance, 1/p): the embeddings and the OV circuit carry a few Fourier frequencies cos(wa), sin(wa) with w = 2πk/p (Nanda et al. 2023).",
            scores: "Expect low OV diagonals and most of the DLA from the MLP, which forms cos(w(a−b)) and sin(w(a−b)) from products of the operands' waves.",
            interventions: "Ablating a head breaks the answer (the MLP needs both operands); patching changes one operand and moves the answer by the same amount.",
            timeline: "Grokking: the Train cell plots train and test curves; train accuracy reaches 1 early by memorising, and test accuracy rises much later as weight decay shrinks the memorising weights.",
        };
        if O::SUB {
            sub
        } else {
            add
        }
    }
    fn description(&self) -> &'static str {
        if O::SUB {
            "(a − b) mod p over all p² pairs, a train/test split: the grokking set-up."
        } else {
            "(a + b) mod p over all p² pairs, a train/test split: the grokking set-up."
        }
    }
    fn params(&self) -> Vec<ParamRow> {
        let mut rows = vec![ParamRow::int("p", 2, MAX_P, 113, "the modulus")];
        rows.extend(operands::split_rows(0.3));
        rows
    }
    fn validate(&self) -> Result<(), String> {
        if !(2..=MAX_P).contains(&self.p) {
            return Err(format!("p = {} must be 2..={MAX_P}", self.p));
        }
        validate_frac(self.frac_train)
    }
    fn seq_len(&self) -> usize {
        4
    }
    fn d_vocab(&self) -> usize {
        self.p.saturating_add(1)
    }
    fn d_vocab_out(&self) -> usize {
        self.p
    }
    fn vocab(&self) -> Vec<String> {
        operands::vocab(self.p)
    }
    fn pred_positions(&self) -> Vec<usize> {
        vec![2]
    }
    fn sample(&self, _rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        Vec::new() // a finite dataset: see `item`
    }
    fn finite(&self) -> Option<FiniteSplit> {
        Some(operands::split(self.p, self.frac_train, self.split_seed))
    }
    fn item(&self, i: u64) -> Vec<u32> {
        let (a, b) = operands::pair(self.p, i);
        vec![a, b, self.equals(), self.answer(a, b)]
    }
    fn answer_sources(&self, _tokens: &[u32], _p: usize) -> Vec<usize> {
        vec![0, 1]
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.p
    }
    fn position_names(&self) -> Vec<String> {
        ["a", "b", "=", "c"].map(String::from).to_vec()
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (0, 2)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        match *prompt {
            [a, b, eq] if eq == self.equals() && a != eq && b != eq => {
                Some(vec![a, b, eq, self.answer(a, b)])
            }
            _ => None,
        }
    }
    /// `"17 42"` (or `"17 42 ="`) → `[17, 42, =]`.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        operands::parse_prompt(self.p, text)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 0, 2, " ")
    }
    /// 1 layer, 2 heads, d_model 128, d_head 64, MLP 512 ReLU (Nanda et al.'s model).
    fn default_model(&self) -> crate::model::ModelConfig {
        let mut cfg = super::task::attn_only(1, 2, 128, 64);
        cfg.d_mlp = Some(512);
        cfg.act_fn = Some(crate::model::ActFn::Relu);
        cfg
    }
}
