//! Algorithmic tasks: vocabularies, deterministic batches, loss masks, loss floors.
//!
//! A task is described by a [`TaskSpec`]. Everything a trainer, an evaluator or the
//! interpretability views need is derived from it: the sequence layout (`seq_len`,
//! `pred_positions`, `targets`), the vocabulary and its display labels, deterministic
//! samples (`sample`, `batch`: pure functions of `(seed, step, index)`), the exact loss a
//! perfect model would reach (`loss_floor`), and the parsing of text a user types into a
//! prompt (`parse_prompt`).
//!
//! The three tasks:
//! - `sort`: `[BOS, a_1..a_n, MID, sorted(a)]` (the seed-003 sorting model's format).
//! - `permutations`: `"> " + every permutation of n distinct characters + "."` (seed 000).
//! - `apply-perm`: `[BOS, a_0..a_{k-1}, MID, idx_0..idx_{k-1}, END, a_{idx_0}..a_{idx_{k-1}}]`.
//!
//! Every spec should pass [`TaskSpec::validate`] before it is sampled from; the other
//! methods never panic on a valid spec, and the sizes (`seq_len`, `d_vocab`) saturate
//! instead of overflowing on an invalid one so that validation can report them.

pub mod apply_perm;
pub mod permutations;
// The counter-based RNG is below both tasks and model (which draws its init from it).
pub use crate::rng;
pub mod sort;

use crate::error::{Error, Result};
use crate::model::ModelConfig;
use rng::CounterRng;
use serde::{Deserialize, Serialize};

/// The longest sequence a task may produce (the model context limit).
pub use crate::model::config::MAX_N_CTX;

fn default_sort_n() -> usize {
    10
}
fn default_fifty() -> usize {
    50
}
fn default_perm_n() -> usize {
    4
}
fn default_k() -> usize {
    3
}
fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}
fn is_zero_u64(x: &u64) -> bool {
    *x == 0
}

/// Which side of a task's held-out split a sample comes from. Only the permutations task
/// has a split (its `holdout` of the character combinations); for every other task, and
/// for permutations with `holdout` 0, both sides are the whole task distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// What training draws from: never a held-out combination.
    Train,
    /// What evaluation draws from: only held-out combinations.
    HeldOut,
}

/// Which task, with its parameters. Serialised as `{"task": "sort", "n": 10, "max_num": 50}`;
/// missing parameters take their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum TaskSpec {
    /// Sort a list of `n` numbers drawn uniformly from `0..max_num` (duplicates allowed).
    Sort {
        #[serde(default = "default_sort_n")]
        n: usize,
        #[serde(default = "default_fifty")]
        max_num: usize,
    },
    /// Write out all `n!` permutations of `n` distinct characters, in itertools order.
    /// `holdout` (default 0) is the fraction of the C(62, n) character combinations kept
    /// out of training, chosen by a hash of the combination and `split_seed` (default 0);
    /// see [`permutations`] for the rule. Both are left out of the JSON when 0.
    Permutations {
        #[serde(default = "default_perm_n")]
        n: usize,
        #[serde(default, skip_serializing_if = "is_zero_f64")]
        holdout: f64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        split_seed: u64,
    },
    /// Apply a permutation of `0..k` to `k` numbers drawn uniformly from `0..max_int`.
    ApplyPerm {
        #[serde(default = "default_k")]
        k: usize,
        #[serde(default = "default_fifty")]
        max_int: usize,
    },
}

/// The task names [`TaskSpec::default_for`] accepts.
pub const TASK_NAMES: [&str; 3] = ["sort", "permutations", "apply-perm"];

impl TaskSpec {
    /// Whether training and evaluation draw from different sides of a held-out split
    /// (permutations with `holdout` > 0).
    pub fn has_split(&self) -> bool {
        matches!(self, TaskSpec::Permutations { holdout, .. } if *holdout > 0.0)
    }
}

impl TaskSpec {
    /// The task with its default parameters: `sort` (n 10, max_num 50), `permutations`
    /// (n 4) or `apply-perm` (k 3, max_int 50).
    pub fn default_for(name: &str) -> Result<TaskSpec> {
        match name {
            "sort" => Ok(TaskSpec::Sort {
                n: default_sort_n(),
                max_num: default_fifty(),
            }),
            "permutations" => Ok(TaskSpec::permutations(default_perm_n())),
            "apply-perm" => Ok(TaskSpec::ApplyPerm {
                k: default_k(),
                max_int: default_fifty(),
            }),
            _ => Err(Error::task(
                shorten(name),
                format!("unknown task (the tasks are {})", TASK_NAMES.join(", ")),
            )),
        }
    }

    /// The permutations task for n characters, without a held-out split.
    pub fn permutations(n: usize) -> TaskSpec {
        TaskSpec::Permutations {
            n,
            holdout: 0.0,
            split_seed: 0,
        }
    }

    /// The task's name, as in [`TASK_NAMES`] and the serialised `task` tag.
    pub fn name(&self) -> &'static str {
        match self {
            TaskSpec::Sort { .. } => "sort",
            TaskSpec::Permutations { .. } => "permutations",
            TaskSpec::ApplyPerm { .. } => "apply-perm",
        }
    }

    /// Checks the parameters; the error names the parameter and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let r = match *self {
            TaskSpec::Sort { n, max_num } => sort::validate(n, max_num),
            TaskSpec::Permutations {
                n,
                holdout,
                split_seed,
            } => permutations::validate(n)
                .and_then(|()| permutations::validate_split(n, holdout, split_seed)),
            TaskSpec::ApplyPerm { k, max_int } => apply_perm::validate(k, max_int),
        };
        r.map_err(|msg| Error::task(self.name(), msg))
    }

    /// T, the length of every sequence of this task.
    pub fn seq_len(&self) -> usize {
        match *self {
            TaskSpec::Sort { n, .. } => sort::seq_len(n),
            TaskSpec::Permutations { n, .. } => permutations::seq_len(n),
            TaskSpec::ApplyPerm { k, .. } => apply_perm::seq_len(k),
        }
    }

    /// Number of input token ids (the embedding rows).
    pub fn d_vocab(&self) -> usize {
        match *self {
            TaskSpec::Sort { max_num, .. } => max_num.saturating_add(2),
            TaskSpec::Permutations { .. } => permutations::VOCAB.len(),
            TaskSpec::ApplyPerm { max_int, .. } => max_int.saturating_add(3),
        }
    }

    /// Number of output classes (the unembedding columns). Every target is below it.
    pub fn d_vocab_out(&self) -> usize {
        match *self {
            TaskSpec::Sort { max_num, .. } => max_num,
            TaskSpec::Permutations { .. } => permutations::VOCAB.len(),
            TaskSpec::ApplyPerm { max_int, .. } => max_int,
        }
    }

    /// The display label of every token id (length `d_vocab`).
    pub fn vocab(&self) -> Vec<String> {
        match *self {
            TaskSpec::Sort { max_num, .. } => sort::vocab(max_num),
            TaskSpec::Permutations { .. } => {
                permutations::VOCAB.chars().map(String::from).collect()
            }
            TaskSpec::ApplyPerm { max_int, .. } => apply_perm::vocab(max_int),
        }
    }

    /// One training sequence (length T), a pure function of `(seed, step, index)`: it is
    /// drawn from `CounterRng::new(seed, step, index)`, so it does not depend on the batch
    /// size or on the order samples are made in. Never from the held-out split.
    pub fn sample(&self, seed: u64, step: u64, index: u64) -> Vec<u32> {
        self.sample_split(seed, step, index, Split::Train)
    }

    /// One sequence from one side of the split (see [`Split`]); the same RNG stream as
    /// [`sample`](Self::sample).
    pub fn sample_split(&self, seed: u64, step: u64, index: u64, split: Split) -> Vec<u32> {
        let mut rng = CounterRng::new(seed, step, index);
        match *self {
            TaskSpec::Sort { n, max_num } => sort::sample(n, max_num, &mut rng),
            TaskSpec::Permutations {
                n,
                holdout,
                split_seed,
            } => permutations::sample_split(
                n,
                holdout,
                split_seed,
                split == Split::HeldOut,
                &mut rng,
            ),
            TaskSpec::ApplyPerm { k, max_int } => apply_perm::sample(k, max_int, &mut rng),
        }
    }

    /// A training batch, (B, T) row-major: row i is `sample(seed, step, i)`.
    pub fn batch(&self, seed: u64, step: u64, batch: usize) -> Vec<u32> {
        self.batch_split(seed, step, batch, Split::Train)
    }

    /// A batch from one side of the split: row i is `sample_split(seed, step, i, split)`.
    pub fn batch_split(&self, seed: u64, step: u64, batch: usize, split: Split) -> Vec<u32> {
        let t = self.seq_len();
        let mut out = Vec::with_capacity(batch * t); // (B, T)
        for i in 0..batch {
            out.extend(self.sample_split(seed, step, i as u64, split));
        }
        out
    }

    /// Whether the task holds part of its inputs out of training (permutations with
    /// `holdout` > 0).
    pub fn has_holdout(&self) -> bool {
        matches!(*self, TaskSpec::Permutations { holdout, .. } if holdout > 0.0)
    }

    /// The positions p whose logits are scored; the target of position p is `tokens[p + 1]`.
    /// Ascending.
    pub fn pred_positions(&self) -> Vec<usize> {
        match *self {
            // logits at MID, b_1..b_{n-1} predict b_1..b_n
            TaskSpec::Sort { n, .. } => (n + 1..=2 * n).collect(),
            // every next token
            TaskSpec::Permutations { n, .. } => {
                (0..permutations::seq_len(n).saturating_sub(1)).collect()
            }
            // logits at END, ans_0..ans_{k-2} predict ans_0..ans_{k-1}
            TaskSpec::ApplyPerm { k, .. } => (2 * k + 2..=3 * k + 1).collect(),
        }
    }

    /// The prediction positions that measure the algorithm ("algorithm accuracy"). For
    /// permutations, the targets after the first term (p + 1 ≥ 2 + n): the first term is
    /// random and cannot be predicted; everything after it can. Other tasks: all of
    /// [`pred_positions`](Self::pred_positions).
    pub fn algo_positions(&self) -> Vec<usize> {
        match *self {
            TaskSpec::Permutations { n, .. } => self
                .pred_positions()
                .into_iter()
                .filter(|&p| p > n)
                .collect(),
            _ => self.pred_positions(),
        }
    }

    /// The targets of one sequence: `tokens[p + 1]` for p in `pred_positions` (in that
    /// order). `tokens` should have length T; positions past its end are skipped.
    pub fn targets(&self, tokens: &[u32]) -> Vec<u32> {
        self.pred_positions()
            .into_iter()
            .filter_map(|p| tokens.get(p + 1).copied())
            .collect()
    }

    /// The exact irreducible mean cross-entropy (nats per predicted token) of a perfect
    /// model on the training distribution: 0 for sort and apply-perm, where every target
    /// is a deterministic function of the visible prefix; see [`permutations::loss_floor`]
    /// for permutations (and [`permutations::loss_floor_split`] with a held-out split).
    pub fn loss_floor(&self) -> f64 {
        match *self {
            TaskSpec::Permutations {
                n,
                holdout,
                split_seed,
            } => permutations::loss_floor_split(n, holdout, split_seed),
            _ => 0.0,
        }
    }

    /// The input positions holding the correct answer for the prediction made at
    /// position p (all ≤ p, so visible to the model there) — where a copying head should
    /// attend ("attention to the answer" in the interpretability views):
    /// - sort: every position 1..=n of the unsorted list whose value equals the target
    ///   (several when the value is duplicated);
    /// - apply-perm: position 1 + idx_i, the value a_{idx_i} the answer copies;
    /// - permutations: the position of the target character in the first term and in the
    ///   previous term (one position when those coincide); empty when the target is a space
    ///   or the period, and inside the first term itself, whose characters are not yet
    ///   visible.
    ///
    /// Empty when p is not a prediction position or `tokens` is too short.
    pub fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        if !self.pred_positions().contains(&p) || tokens.len() <= p + 1 {
            return Vec::new();
        }
        match *self {
            TaskSpec::Sort { n, .. } => sort::answer_sources(n, tokens, p),
            TaskSpec::Permutations { n, .. } => permutations::answer_sources(n, tokens, p),
            TaskSpec::ApplyPerm { k, .. } => apply_perm::answer_sources(k, tokens, p),
        }
    }

    /// The token ids that carry values a model copies (its "value tokens"): sort
    /// 0..max_num, apply-perm 0..max_int, permutations the 62 term characters. Copying
    /// scores and QK argmax summaries are taken over these, leaving out BOS/MID/END,
    /// spaces and the like.
    pub fn value_tokens(&self) -> std::ops::Range<usize> {
        match *self {
            TaskSpec::Sort { max_num, .. } => 0..max_num,
            TaskSpec::ApplyPerm { max_int, .. } => 0..max_int,
            TaskSpec::Permutations { .. } => {
                permutations::FIRST_CHAR as usize..permutations::VOCAB.len()
            }
        }
    }

    /// A short name for every position (length T), for axis labels: sort `BOS a1..an MID
    /// b1..bn`, apply-perm `BOS a0.. MID idx0.. END ans0..`, permutations `>`, `␣`, then
    /// `t{term}.{slot}` for term characters and `␣`/`.` between terms.
    pub fn position_names(&self) -> Vec<String> {
        match *self {
            TaskSpec::Sort { n, .. } => std::iter::once("BOS".to_string())
                .chain((1..=n).map(|i| format!("a{i}")))
                .chain(std::iter::once("MID".to_string()))
                .chain((1..=n).map(|i| format!("b{i}")))
                .collect(),
            TaskSpec::ApplyPerm { k, .. } => std::iter::once("BOS".to_string())
                .chain((0..k).map(|i| format!("a{i}")))
                .chain(std::iter::once("MID".to_string()))
                .chain((0..k).map(|i| format!("idx{i}")))
                .chain(std::iter::once("END".to_string()))
                .chain((0..k).map(|i| format!("ans{i}")))
                .collect(),
            TaskSpec::Permutations { n, .. } => {
                let t = self.seq_len();
                (0..t)
                    .map(|q| match q {
                        0 => ">".to_string(),
                        1 => "␣".to_string(),
                        _ if q == t - 1 => ".".to_string(),
                        _ => {
                            let (term, slot) = ((q - 2) / (n + 1), (q - 2) % (n + 1));
                            if slot == n {
                                "␣".to_string()
                            } else {
                                format!("t{}.{}", term + 1, slot + 1)
                            }
                        }
                    })
                    .collect()
            }
        }
    }

    /// The whole correct sequence (length T) for a prompt of length `prompt_len` (as
    /// [`parse_prompt`](Self::parse_prompt) returns it): the prompt followed by the
    /// task's answer. The error names what is wrong with the prompt.
    pub fn solve(&self, prompt: &[u32]) -> Result<Vec<u32>> {
        self.validate()?;
        let bad = |msg: String| Error::task(self.name(), msg);
        if prompt.len() != self.prompt_len() {
            return Err(bad(format!(
                "a prompt has {} tokens, got {}",
                self.prompt_len(),
                prompt.len()
            )));
        }
        if let Some(t) = prompt.iter().find(|&&t| t as usize >= self.d_vocab()) {
            return Err(bad(format!(
                "token id {t} is outside the vocabulary (size {})",
                self.d_vocab()
            )));
        }
        let seq = match *self {
            TaskSpec::Sort { n, max_num } => sort::tokens_for(&prompt[1..=n], max_num),
            TaskSpec::ApplyPerm { k, max_int } => {
                apply_perm::tokens_for(&prompt[1..=k], &prompt[k + 2..2 * k + 2], max_int)
            }
            TaskSpec::Permutations { .. } => permutations::permutation_tokens(&prompt[2..]),
        };
        if seq.len() != self.seq_len() || seq[..prompt.len()] != *prompt {
            return Err(bad(format!(
                "the prompt {} is not a valid prompt of this task",
                self.format_tokens(prompt)
            )));
        }
        Ok(seq)
    }

    /// How many tokens are given before the model starts answering: sort n + 2
    /// (`[BOS, a.., MID]`), apply-perm 2k + 3 (through END), permutations 2 + n
    /// (`"> "` and the first term).
    pub fn prompt_len(&self) -> usize {
        match *self {
            TaskSpec::Sort { n, .. } => n.saturating_add(2),
            TaskSpec::Permutations { n, .. } => n.saturating_add(2),
            TaskSpec::ApplyPerm { k, .. } => k.saturating_mul(2).saturating_add(3),
        }
    }

    /// Turns typed text into prompt tokens (length `prompt_len`):
    /// - sort: `"3 1 4 1 5 9 2 6 5 3"` (separated by whitespace and/or commas) →
    ///   `[BOS, 3, 1, .., MID]`;
    /// - apply-perm: `"7 3 9 | 2 0 1"` (k values, `|`, a permutation of 0..k) →
    ///   `[BOS, 7, 3, 9, MID, 2, 0, 1, END]`;
    /// - permutations: `"abcd"` or `"> abcd"` (n distinct characters from a-z, A-Z, 0-9,
    ///   kept in the typed order) → `"> abcd"`.
    ///
    /// The error names the offending piece and what was expected. Never panics.
    pub fn parse_prompt(&self, text: &str) -> Result<Vec<u32>> {
        self.validate()?;
        let r = match *self {
            TaskSpec::Sort { n, max_num } => sort::parse_prompt(n, max_num, text),
            TaskSpec::Permutations { n, .. } => permutations::parse_prompt(n, text),
            TaskSpec::ApplyPerm { k, max_int } => apply_perm::parse_prompt(k, max_int, text),
        };
        r.map_err(|msg| Error::task(self.name(), msg))
    }

    /// The text [`parse_prompt`](Self::parse_prompt) reads back into the prompt of `tokens`
    /// (a prompt or a whole sequence): sort `"3 1 4"`, apply-perm `"7 3 9 | 2 0 1"`,
    /// permutations `"abcd"`. Ids outside the vocabulary show as `?<id>`.
    pub fn prompt_text(&self, tokens: &[u32]) -> String {
        let vocab = self.vocab();
        let label = |t: &u32| {
            vocab
                .get(*t as usize)
                .cloned()
                .unwrap_or_else(|| format!("?{t}"))
        };
        let join = |ts: &[u32], sep: &str| ts.iter().map(label).collect::<Vec<_>>().join(sep);
        let get = |a: usize, b: usize| {
            tokens
                .get(a.min(tokens.len())..b.min(tokens.len()))
                .unwrap_or(&[])
        };
        match *self {
            TaskSpec::Sort { n, .. } => join(get(1, n + 1), " "),
            TaskSpec::ApplyPerm { k, .. } => format!(
                "{} | {}",
                join(get(1, k + 1), " "),
                join(get(k + 2, 2 * k + 2), " ")
            ),
            TaskSpec::Permutations { n, .. } => join(get(2, n + 2), ""),
        }
    }

    /// Human-readable tokens: permutations concatenates the characters (`"> abc acb."`);
    /// the others join the labels with spaces (`"BOS 3 1 MID 1 3"`). Ids outside the
    /// vocabulary show as `?<id>`.
    pub fn format_tokens(&self, tokens: &[u32]) -> String {
        let vocab = self.vocab();
        let label = |&t: &u32| {
            vocab
                .get(t as usize)
                .cloned()
                .unwrap_or_else(|| format!("?{t}"))
        };
        let labels: Vec<String> = tokens.iter().map(label).collect();
        match self {
            TaskSpec::Permutations { .. } => labels.concat(),
            _ => labels.join(" "),
        }
    }

    /// The default model for this task (seed 0, frozen biases, n_ctx = T, the task's vocab):
    /// - sort: the seed-003 sorter ([`ModelConfig::sort_ref`]): 1 layer, 1 head,
    ///   d_model = d_head = 128, attention-only, no LayerNorm;
    /// - permutations: the seed-000 model: 1 layer, 1 head, d_model 128, d_head 64,
    ///   attention-only, LayerNorm;
    /// - apply-perm: 1 layer, 1 head, d_model = d_head = 64, attention-only, no LayerNorm.
    pub fn default_model(&self) -> ModelConfig {
        let mut cfg = ModelConfig::sort_ref();
        match self {
            TaskSpec::Sort { .. } => {}
            TaskSpec::Permutations { .. } => {
                cfg.d_model = 128;
                cfg.d_head = 64;
                cfg.normalization_type = Some(crate::model::Norm::LN);
            }
            TaskSpec::ApplyPerm { .. } => {
                cfg.d_model = 64;
                cfg.d_head = 64;
            }
        }
        cfg.n_layers = 1;
        cfg.n_heads = 1;
        cfg.d_mlp = None;
        cfg.act_fn = None;
        cfg.n_ctx = self.seq_len();
        cfg.d_vocab = self.d_vocab();
        cfg.d_vocab_out = self.d_vocab_out();
        cfg.seed = 0;
        cfg.train_biases = false;
        cfg
    }
}

/// ln C(n, k), the natural log of the binomial coefficient. Exact up to the final `ln`
/// whenever C(n, k) fits in a u128 (it is built as an integer); otherwise a sum of logs.
/// `-inf` when k > n (C = 0).
pub fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    let k = k.min(n - k);
    // C(n, i+1) = C(n, i) · (n - i) / (i + 1); the division is exact at every step.
    let mut c: u128 = 1;
    for i in 0..k {
        match c.checked_mul((n - i) as u128) {
            Some(x) => c = x / (i as u128 + 1),
            None => {
                return (0..k)
                    .map(|j| ((n - j) as f64).ln() - ((j + 1) as f64).ln())
                    .sum()
            }
        }
    }
    (c as f64).ln()
}

/// A piece of user input for an error message: quoted, cut to 24 characters.
pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(24).collect();
    if s.chars().nth(24).is_some() {
        out.push('…');
    }
    out
}

/// Parses the numbers of a typed list (separated by whitespace and/or commas), each below
/// `limit`. `what` names the numbers in messages ("value", "index"). Errors name the piece.
pub(crate) fn parse_numbers(
    text: &str,
    limit: usize,
    what: &str,
) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for piece in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
    {
        let shown = shorten(piece);
        if !piece.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "'{shown}' is not a number (expected whole numbers 0..={})",
                limit - 1
            ));
        }
        match piece.parse::<u64>() {
            Ok(v) if v < limit as u64 => out.push(v as u32),
            _ => {
                return Err(format!(
                    "{what} '{shown}' is out of range (must be 0..={})",
                    limit - 1
                ))
            }
        }
    }
    Ok(out)
}
