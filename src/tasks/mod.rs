//! Algorithmic tasks: vocabularies, deterministic batches, loss masks, loss floors.
//!
//! A task is described by a [`TaskSpec`]. Everything a trainer, an evaluator or the
//! interpretability views need is derived from it: the sequence layout (`seq_len`,
//! `pred_positions`, `targets`), the vocabulary and its display labels, deterministic
//! samples (`sample`, `batch`: pure functions of `(seed, step, index)`), the exact loss a
//! perfect model would reach (`loss_floor`), and the parsing of text a user types into a
//! prompt (`parse_prompt`).
//!
//! Each task is one file implementing [`Task`] (see [`task`]) and one line in the
//! registry (`catalogue!` below), which defines [`TaskSpec`] and [`TASK_NAMES`]. The
//! original three keep their struct variants and JSON:
//! - `sort`: `[BOS, a_1..a_n, MID, sorted(a)]` (the seed-003 sorting model's format).
//! - `permutations`: `"> " + every permutation of n distinct characters + "."` (seed 000).
//! - `apply-perm`: `[BOS, a_0..a_{k-1}, MID, idx_0..idx_{k-1}, END, a_{idx_0}..a_{idx_{k-1}}]`.
//!
//! The catalogue adds `array-index`, `majority`, `min-of-two`, `mod-sub`, `mod-add`,
//! `induction`, `reverse`, `arena-sum`, `previous-token` and `arena-palindromes` (each
//! file's doc gives its layout). A task is a sampler or a finite dataset with a train/test
//! split ([`finite`]). The target of a scored position is the next token unless the task
//! says otherwise (`Task::targets`: previous-token's is the token before, arena-palindromes'
//! a label); the backends train on batches that carry the targets (`backend::Batch`).
//!
//! Every spec should pass [`TaskSpec::validate`] before it is sampled from; the other
//! methods never panic on a valid spec, and the sizes (`seq_len`, `d_vocab`) saturate
//! instead of overflowing on an invalid one so that validation can report them.

pub mod apply_perm;
pub mod finite;
pub mod permutations;
// The counter-based RNG is below both tasks and model (which draws its init from it).
pub use crate::rng;
pub mod sort;
pub mod task;

use crate::error::{Error, Result};
use crate::model::ModelConfig;
use finite::FiniteSplit;
use rng::CounterRng;
use serde::{Deserialize, Serialize};
pub use task::{ParamRow, Task, UNSCORED};

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

/// Which side of a task's split a sample comes from. The permutations task has a
/// held-out split (its `holdout` of the character combinations) and every finite dataset
/// a train/test split; for every other task, and for permutations with `holdout` 0, both
/// sides are the whole task distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// What training draws from: never a held-out combination or test item.
    Train,
    /// What evaluation draws from: only held-out combinations (test items).
    HeldOut,
}

/// The registry: one line per catalogue file, `file: Type = "name";` (a file holding
/// several tasks lists them, `file: A = "a", B = "b";`). It declares the module `file`
/// (`src/tasks/file.rs`) and defines [`TaskSpec`] (the three original tasks as struct
/// variants, whose JSON and Rust forms are kept as they were, then one newtype variant
/// `Type(file::Type)` per task here), the list of names and the dispatch to the [`Task`]
/// each variant holds. A new task is its file plus one line here.
macro_rules! catalogue {
    ($($module:ident: $($variant:ident = $name:literal),+;)*) => {
        $(pub mod $module;)*

        /// Which task, with its parameters. Serialised as `{"task": "sort", "n": 10,
        /// "max_num": 50}`; missing parameters take their defaults.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "task", rename_all = "kebab-case")]
        pub enum TaskSpec {
            /// Sort a list of `n` numbers drawn uniformly from `0..max_num` (duplicates
            /// allowed).
            Sort {
                #[serde(default = "default_sort_n")]
                n: usize,
                #[serde(default = "default_fifty")]
                max_num: usize,
            },
            /// Write out all `n!` permutations of `n` distinct characters, in itertools
            /// order. `holdout` (default 0) is the fraction of the C(62, n) character
            /// combinations kept out of training, chosen by a hash of the combination and
            /// `split_seed` (default 0); see [`permutations`] for the rule. Both are left
            /// out of the JSON when 0.
            Permutations {
                #[serde(default = "default_perm_n")]
                n: usize,
                #[serde(default, skip_serializing_if = "is_zero_f64")]
                holdout: f64,
                #[serde(default, skip_serializing_if = "is_zero_u64")]
                split_seed: u64,
            },
            /// Apply a permutation of `0..k` to `k` numbers drawn uniformly from
            /// `0..max_int`.
            ApplyPerm {
                #[serde(default = "default_k")]
                k: usize,
                #[serde(default = "default_fifty")]
                max_int: usize,
            },
            $($(
                #[doc = concat!("The `", $name, "` task (see its file).")]
                #[serde(rename = $name)]
                $variant($module::$variant),
            )+)*
        }

        /// Every task name [`TaskSpec::default_for`] accepts, in menu order.
        pub const TASK_NAMES: &[&str] = &["sort", "permutations", "apply-perm", $($($name,)+)*];

        impl TaskSpec {
            /// A catalogue task with its default parameters, by name.
            fn catalogue_default(name: &str) -> Option<TaskSpec> {
                match name {
                    $($($name => Some(TaskSpec::$variant(<$module::$variant>::default())),)+)*
                    _ => None,
                }
            }

            /// The task's name, as in [`TASK_NAMES`] and the serialised `task` tag.
            pub fn name(&self) -> &'static str {
                match self {
                    TaskSpec::Sort { .. } => "sort",
                    TaskSpec::Permutations { .. } => "permutations",
                    TaskSpec::ApplyPerm { .. } => "apply-perm",
                    $($(TaskSpec::$variant(_) => $name,)+)*
                }
            }

            /// Runs `f` on the [`Task`] this spec describes.
            pub fn with_task<R>(&self, f: impl FnOnce(&dyn Task) -> R) -> R {
                match *self {
                    TaskSpec::Sort { n, max_num } => f(&sort::Sort { n, max_num }),
                    TaskSpec::Permutations { n, holdout, split_seed } => {
                        f(&permutations::Permutations { n, holdout, split_seed })
                    }
                    TaskSpec::ApplyPerm { k, max_int } => f(&apply_perm::ApplyPerm { k, max_int }),
                    $($(TaskSpec::$variant(ref t) => f(t),)+)*
                }
            }
        }
    };
}

catalogue! {
    array_index: ArrayIndex = "array-index";
    majority: Majority = "majority";
    min_of_two: MinOfTwo = "min-of-two";
    modular: ModSub = "mod-sub", ModAdd = "mod-add";
    induction: Induction = "induction";
    reverse: Reverse = "reverse";
    arena_sum: ArenaSum = "arena-sum";
    previous_token: PreviousToken = "previous-token";
    arena_palindromes: ArenaPalindromes = "arena-palindromes";
    custom: Custom = "custom";
}

impl TaskSpec {
    /// The task with its default parameters: `sort` (n 10, max_num 50), `permutations`
    /// (n 4), `apply-perm` (k 3, max_int 50), or a catalogue task's defaults.
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
            _ => TaskSpec::catalogue_default(name).ok_or_else(|| {
                Error::task(
                    shorten(name),
                    format!("unknown task (the tasks are {})", TASK_NAMES.join(", ")),
                )
            }),
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

    /// One sentence describing the task.
    pub fn description(&self) -> &'static str {
        self.with_task(|t| t.description())
    }

    /// The task's parameters with ranges and defaults.
    pub fn params(&self) -> Vec<ParamRow> {
        self.with_task(|t| t.params())
    }

    /// Whether training and evaluation draw from different sides of a split
    /// (permutations with `holdout` > 0; every finite dataset).
    pub fn has_split(&self) -> bool {
        self.with_task(|t| t.has_split())
    }

    /// The same as [`has_split`](Self::has_split).
    pub fn has_holdout(&self) -> bool {
        self.has_split()
    }

    /// A finite dataset's size and split; `None` for a sampled task.
    pub fn finite(&self) -> Option<FiniteSplit> {
        self.with_task(|t| t.finite())
    }

    /// Checks the parameters; the error names the parameter and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let r = self.with_task(|t| t.validate());
        r.map_err(|msg| Error::task(self.name(), msg))
    }

    /// T, the length of every sequence of this task.
    pub fn seq_len(&self) -> usize {
        self.with_task(|t| t.seq_len())
    }

    /// Number of input token ids (the embedding rows).
    pub fn d_vocab(&self) -> usize {
        self.with_task(|t| t.d_vocab())
    }

    /// Number of output classes (the unembedding columns). Every target is below it.
    pub fn d_vocab_out(&self) -> usize {
        self.with_task(|t| t.d_vocab_out())
    }

    /// The display label of every token id (length `d_vocab`).
    pub fn vocab(&self) -> Vec<String> {
        self.with_task(|t| t.vocab())
    }

    /// One training sequence (length T), a pure function of `(seed, step, index)`: it is
    /// drawn from `CounterRng::new(seed, step, index)`, so it does not depend on the batch
    /// size or on the order samples are made in. Never from the held-out split.
    pub fn sample(&self, seed: u64, step: u64, index: u64) -> Vec<u32> {
        self.sample_split(seed, step, index, Split::Train)
    }

    /// One sequence from one side of the split (see [`Split`]); the same RNG stream as
    /// [`sample`](Self::sample). A finite dataset gives a uniformly random item of that
    /// side.
    pub fn sample_split(&self, seed: u64, step: u64, index: u64, split: Split) -> Vec<u32> {
        let mut rng = CounterRng::new(seed, step, index);
        let held_out = split == Split::HeldOut;
        self.with_task(|t| match t.finite() {
            Some(fs) => {
                let j = rng.below(fs.side_len(held_out));
                t.item(fs.item_of(held_out, j))
            }
            None => t.sample(&mut rng, held_out),
        })
    }

    /// A training batch, (B, T) row-major: row i is `sample(seed, step, i)`, except for a
    /// finite dataset whose training side has exactly B items (full-batch training): then
    /// row i is training item i, every one of them once.
    pub fn batch(&self, seed: u64, step: u64, batch: usize) -> Vec<u32> {
        self.batch_split(seed, step, batch, Split::Train)
    }

    /// A batch from one side of the split: row i is `sample_split(seed, step, i, split)`,
    /// or, when B equals the size of that side of a finite dataset, the whole side in
    /// split order.
    pub fn batch_split(&self, seed: u64, step: u64, batch: usize, split: Split) -> Vec<u32> {
        let held_out = split == Split::HeldOut;
        if let Some(fs) = self
            .finite()
            .filter(|fs| fs.side_len(held_out) == batch as u64)
        {
            return self.with_task(|t| {
                (0..batch as u64)
                    .flat_map(|j| t.item(fs.item_of(held_out, j)))
                    .collect()
            });
        }
        let t = self.seq_len();
        let mut out = Vec::with_capacity(batch * t); // (B, T)
        for i in 0..batch {
            out.extend(self.sample_split(seed, step, i as u64, split));
        }
        out
    }

    /// The positions p whose logits are scored, ascending; [`targets`](Self::targets) gives
    /// their targets.
    pub fn pred_positions(&self) -> Vec<usize> {
        self.with_task(|t| t.pred_positions())
    }

    /// The prediction positions that measure the algorithm ("algorithm accuracy"). For
    /// permutations, the targets after the first term (p + 1 ≥ 2 + n): the first term is
    /// random and cannot be predicted; everything after it can. Other tasks: all of
    /// [`pred_positions`](Self::pred_positions).
    pub fn algo_positions(&self) -> Vec<usize> {
        self.with_task(|t| t.algo_positions())
    }

    /// The targets of one sequence, in `pred_positions` order: the next token `tokens[p + 1]`
    /// for every task but those that say otherwise (`previous-token`: the token before;
    /// `arena-palindromes`: a label). `tokens` should have length T; a next-token target
    /// past its end is skipped.
    pub fn targets(&self, tokens: &[u32]) -> Vec<u32> {
        self.with_task(|t| t.targets(tokens))
    }

    /// The targets training and evaluation score: [`TaskSpec::targets`] with
    /// [`task::UNSCORED`] where this sequence leaves a position unscored (custom data whose
    /// lines score different positions); equal to `targets` for every other task.
    pub fn scored_targets(&self, tokens: &[u32]) -> Vec<u32> {
        self.with_task(|t| t.scored_targets(tokens))
    }

    /// Where views show the guess of scored position p: the position of the token it
    /// predicts (p + 1 for next-token tasks, p − 1 for `previous-token`), or p itself when
    /// the target is a label (`arena-palindromes`).
    pub fn shown_at(&self, p: usize) -> usize {
        self.with_task(|t| t.target_position(p)).unwrap_or(p)
    }

    /// The display label of every output class (length `d_vocab_out`).
    pub fn output_vocab(&self) -> Vec<String> {
        self.with_task(|t| t.output_vocab())
    }

    /// The exact irreducible mean cross-entropy (nats per predicted token) of a perfect
    /// model on the training distribution: 0 when every target is a deterministic
    /// function of the visible prefix; see [`permutations::loss_floor`] for permutations
    /// (and [`permutations::loss_floor_split`] with a held-out split).
    pub fn loss_floor(&self) -> f64 {
        self.with_task(|t| t.loss_floor())
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
    ///   visible;
    /// - catalogue tasks: see each task's file.
    ///
    /// Empty when p is not a prediction position or `tokens` is too short.
    pub fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        let short = tokens.len() <= p + 1 && tokens.len() < self.seq_len();
        if !self.pred_positions().contains(&p) || short {
            return Vec::new();
        }
        self.with_task(|t| t.answer_sources(tokens, p))
    }

    /// The token ids that carry values a model copies (its "value tokens"): sort
    /// 0..max_num, apply-perm 0..max_int, permutations the 62 term characters. Copying
    /// scores and QK argmax summaries are taken over these, leaving out BOS/MID/END,
    /// spaces and the like.
    pub fn value_tokens(&self) -> std::ops::Range<usize> {
        self.with_task(|t| t.value_tokens())
    }

    /// The value tokens that are also output classes, over which OV copying scores are
    /// taken: [`value_tokens`](Self::value_tokens) for tasks whose targets are tokens,
    /// empty for a task whose targets are labels (`arena-palindromes`).
    pub fn copy_tokens(&self) -> std::ops::Range<usize> {
        let ids = self.value_tokens();
        let labels = self
            .pred_positions()
            .first()
            .is_some_and(|&p| self.with_task(|t| t.target_position(p)).is_none());
        if labels {
            ids.start..ids.start
        } else {
            ids.start..ids.end.min(self.d_vocab_out())
        }
    }

    /// A short name for every position (length T), for axis labels: sort `BOS a1..an MID
    /// b1..bn`, apply-perm `BOS a0.. MID idx0.. END ans0..`, permutations `>`, `␣`, then
    /// `t{term}.{slot}` for term characters and `␣`/`.` between terms.
    pub fn position_names(&self) -> Vec<String> {
        self.with_task(|t| t.position_names())
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
        match self.with_task(|t| t.solve(prompt)) {
            Some(seq) if seq.len() == self.seq_len() && seq[..prompt.len()] == *prompt => Ok(seq),
            _ => Err(bad(format!(
                "the prompt {} is not a valid prompt of this task",
                self.format_tokens(prompt)
            ))),
        }
    }

    /// How many positions a model must see to score this task: the last prediction
    /// position + 1. A task that appends its answer as the last target (majority,
    /// min-of-two, mod-add, mod-sub) needs one position less than its T, so the
    /// collection's models (n_ctx 12, 3, 3) fit it; see [`TaskSpec::fit_context`].
    pub fn input_len(&self) -> usize {
        self.pred_positions().last().map_or(0, |&p| p + 1)
    }

    /// `w` with the context this task's sequences need: unchanged when its n_ctx is at
    /// least T; when it is shorter but covers [`input_len`](Self::input_len), W_pos is
    /// extended with zero rows up to T. Causal attention makes the logits at every
    /// position below the old n_ctx exactly those of the original model, and every scored
    /// position is below it, so evaluation is that of the original model. Otherwise
    /// `w` is returned unchanged (the compatibility check names the shortfall).
    pub fn fit_context(&self, w: crate::model::Weights) -> Result<crate::model::Weights> {
        let t = self.seq_len();
        if w.cfg.n_ctx >= t || w.cfg.n_ctx < self.input_len() {
            return Ok(w);
        }
        let mut cfg = w.cfg.clone();
        cfg.n_ctx = t;
        let mut out = crate::model::Weights::zeros(&cfg)?;
        for p in &w.table.params {
            let src = &w.data[p.offset..p.offset + p.len];
            // W_pos (n_ctx, C) grows by rows: the old rows are its first p.len values
            out.get_mut(&p.name)?[..p.len].copy_from_slice(src);
        }
        Ok(out)
    }

    /// The prompt span `(start, len)` whose middle value patching's default corruption
    /// replaces (sort `(1, n)`, apply-perm `(1, k)`, permutations `(2, n)`).
    pub fn corrupt_span(&self) -> (usize, usize) {
        self.with_task(|t| t.corrupt_span())
    }

    /// How many tokens are given before the model starts answering: sort n + 2
    /// (`[BOS, a.., MID]`), apply-perm 2k + 3 (through END), permutations 2 + n
    /// (`"> "` and the first term).
    pub fn prompt_len(&self) -> usize {
        self.with_task(|t| t.prompt_len())
    }

    /// The task's own corruption of a prompt for patching, if it has one ([`Task::corrupt_prompt`]).
    pub fn corrupt_prompt(&self, prompt: &[u32], shift: usize) -> Option<Vec<u32>> {
        self.with_task(|t| t.corrupt_prompt(prompt, shift))
    }

    /// Turns typed text into prompt tokens (length `prompt_len`):
    /// - sort: `"3 1 4 1 5 9 2 6 5 3"` (separated by whitespace and/or commas) →
    ///   `[BOS, 3, 1, .., MID]`;
    /// - apply-perm: `"7 3 9 | 2 0 1"` (k values, `|`, a permutation of 0..k) →
    ///   `[BOS, 7, 3, 9, MID, 2, 0, 1, END]`;
    /// - permutations: `"abcd"` or `"> abcd"` (n distinct characters from a-z, A-Z, 0-9,
    ///   kept in the typed order) → `"> abcd"`;
    /// - catalogue tasks: see each task's file (by default the prompt's labels).
    ///
    /// The error names the offending piece and what was expected. Never panics.
    pub fn parse_prompt(&self, text: &str) -> Result<Vec<u32>> {
        self.validate()?;
        let r = self.with_task(|t| t.parse_prompt(text));
        r.map_err(|msg| Error::task(self.name(), msg))
    }

    /// The text [`parse_prompt`](Self::parse_prompt) reads back into the prompt of `tokens`
    /// (a prompt or a whole sequence): sort `"3 1 4"`, apply-perm `"7 3 9 | 2 0 1"`,
    /// permutations `"abcd"`. Ids outside the vocabulary show as `?<id>`.
    pub fn prompt_text(&self, tokens: &[u32]) -> String {
        self.with_task(|t| t.prompt_text(tokens))
    }

    /// Human-readable tokens: permutations concatenates the characters (`"> abc acb."`);
    /// the others join the labels with spaces (`"BOS 3 1 MID 1 3"`). Ids outside the
    /// vocabulary show as `?<id>`.
    pub fn format_tokens(&self, tokens: &[u32]) -> String {
        self.with_task(|t| t.format_tokens(tokens))
    }

    /// The default model for this task (n_ctx = T, the task's vocab):
    /// - sort: the seed-003 sorter ([`ModelConfig::sort_ref`]): 1 layer, 1 head,
    ///   d_model = d_head = 128, attention-only, no LayerNorm;
    /// - permutations: the seed-000 model: 1 layer, 1 head, d_model 128, d_head 64,
    ///   attention-only, LayerNorm;
    /// - apply-perm: 1 layer, 1 head, d_model = d_head = 64, attention-only, no LayerNorm;
    /// - catalogue tasks: see each task's file.
    pub fn default_model(&self) -> ModelConfig {
        let mut cfg = self.with_task(|t| t.default_model());
        cfg.n_ctx = self.seq_len();
        cfg.d_vocab = self.d_vocab();
        cfg.d_vocab_out = self.d_vocab_out();
        cfg
    }
}

/// The page's property key (and link key) of a task's parameter: `<task>_<param>` with
/// `-` written `_` (`mod_add_frac_train`); the original three keep the keys their links
/// have always had (`sort_n`, `max_num`, `perm_n`, `holdout`, `split_seed`, `k`, `max_int`).
pub fn page_key(task: &str, param: &str) -> String {
    match (task, param) {
        ("sort", "n") => "sort_n".into(),
        ("permutations", "n") => "perm_n".into(),
        ("sort" | "permutations" | "apply-perm", _) => param.into(),
        _ => format!("{}_{param}", task.replace('-', "_")),
    }
}

/// The page's table of catalogue tasks, `www/js/task-rows.js`: every registered task but
/// the original three (whose rows are written by hand in `www/js/state.js`) with its
/// description, whether it is finite, and its parameter rows (property key, JSON name,
/// type, default, range, hint). Not kept in git: `make wasm` writes it from the wasm build
/// (`pkg-config/task-rows.mjs` calls the binding `task_rows_js`), so adding a task is its file
/// plus its registry line; `examples/task_rows` prints the same text natively.
pub fn page_rows_js() -> String {
    let tasks: Vec<serde_json::Value> = TASK_NAMES[3..]
        .iter()
        .filter_map(|n| TaskSpec::default_for(n).ok())
        .map(|t| {
            let params: Vec<serde_json::Value> = t
                .params()
                .into_iter()
                .map(|r| {
                    serde_json::json!({
                        "key": page_key(t.name(), r.name), "param": r.name, "label": r.name,
                        "type": if r.integer { "int" } else { "float" },
                        "default": r.default, "min": r.min, "max": r.max, "hint": r.help,
                    })
                })
                .collect();
            serde_json::json!({
                "name": t.name(), "description": t.description(),
                "finite": t.finite().is_some(), "params": params,
            })
        })
        .collect();
    // Every task's analysis-cell notes (the original three too), by name.
    let notes: serde_json::Map<String, serde_json::Value> = TASK_NAMES
        .iter()
        .filter_map(|n| TaskSpec::default_for(n).ok())
        .map(|t| {
            let v = serde_json::to_value(t.with_task(|x| x.analysis_notes()));
            (t.name().to_string(), v.unwrap_or_default())
        })
        .collect();
    format!(
        "// Generated from the Rust task registry (src/tasks/mod.rs) by `make wasm`\n\
         // (pkg-config/task-rows.mjs); not kept in git. Do not edit by hand.\n\
         export const CATALOGUE = {};\n\n\
         // What the analysis cells say about each task (Task::analysis_notes).\n\
         export const NOTES = {};\n",
        serde_json::to_string_pretty(&tasks).unwrap_or_default(),
        serde_json::to_string_pretty(&notes).unwrap_or_default()
    )
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
