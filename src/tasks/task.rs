//! The [`Task`] trait: everything one task provides. A task is a struct of its parameters
//! (serialised as the task's JSON fields) in its own file, plus one line in the registry
//! (`catalogue!` in `tasks/mod.rs`). [`super::TaskSpec`] dispatches to it.
//!
//! A task is either a *sampler* ([`Task::sample`]: a sequence from a counter RNG, as sort
//! does) or a *finite dataset* ([`Task::finite`] and [`Task::item`]: a fixed list of
//! sequences with a deterministic train/test split, as modular addition does).

use super::finite::FiniteSplit;
use super::rng::CounterRng;
use crate::model::ModelConfig;

/// One parameter of a task, for the page's property rows and the link keys.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ParamRow {
    /// The JSON field (and link key).
    pub name: &'static str,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// The default.
    pub default: f64,
    /// Whether the value is a whole number.
    pub integer: bool,
    /// One line shown next to the field.
    pub help: &'static str,
}

/// What the analysis cells say about one task: the algorithm a trained model is expected to
/// implement and what to look for, one short paragraph per cell (plain text, shown under the
/// cell's task-independent caption). [`AnalysisNotes::GENERIC`] is the default.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct AnalysisNotes {
    /// The Attention cell (attention patterns on one input).
    pub attention: &'static str,
    /// The QK cell (W_E W_QK W_Eᵀ and the position terms).
    pub qk: &'static str,
    /// The OV cell (W_E W_OV W_U).
    pub ov: &'static str,
    /// The Scores cell (per-head scores and direct logit attribution).
    pub scores: &'static str,
    /// The Interventions cell (ablation and activation patching).
    pub interventions: &'static str,
    /// The Timeline cell (the scores against the training step).
    pub timeline: &'static str,
}

impl AnalysisNotes {
    /// The notes of a task that gives none: what to look for in any task.
    pub const GENERIC: AnalysisNotes = AnalysisNotes {
        attention: "Look at the positions whose logits are scored: which earlier positions does each head read, and is it the position holding the answer (outlined)?",
        qk: "A structured token·token panel means the head chooses keys by content; structure in the position panels means it chooses them by position.",
        ov: "A bright diagonal means the head copies the token it attends to; anything else means it writes a function of that token.",
        scores: "Heads with a high attention on the answer and a high OV diagonal copy the answer; the DLA bars say which components write the correct logit.",
        interventions: "Ablate one head at a time: the heads whose removal costs the most accuracy are the ones the algorithm needs.",
        timeline: "Watch for the step where the scores of the heads that matter change: the loss usually drops at the same time.",
    };
}

/// The target of a position a sequence leaves unscored ([`Task::scored_targets`]); the
/// backends' `Batch::IGNORE`.
pub const UNSCORED: u32 = u32::MAX;

/// What one task provides. Every method may assume [`Task::validate`] returned `Ok`, except
/// the sizes (`seq_len`, `d_vocab`, `d_vocab_out`), which saturate so that validation can
/// report them.
pub trait Task {
    /// One sentence for the task menu.
    fn description(&self) -> &'static str;
    /// The task's parameters with ranges and defaults.
    fn params(&self) -> Vec<ParamRow>;
    /// Checks the parameters; the message names the parameter and the allowed range.
    fn validate(&self) -> Result<(), String>;
    /// T, the length of every sequence.
    fn seq_len(&self) -> usize;
    /// Number of input token ids.
    fn d_vocab(&self) -> usize;
    /// Number of output classes; every target is below it.
    fn d_vocab_out(&self) -> usize;
    /// The display label of every token id (length `d_vocab`).
    fn vocab(&self) -> Vec<String>;
    /// The positions p whose logits are scored, ascending.
    fn pred_positions(&self) -> Vec<usize>;
    /// The target class of each scored position of one sequence (length T), in
    /// `pred_positions` order, each below `d_vocab_out`. Default: the next token,
    /// `tokens[p + 1]` (positions whose next token is missing are skipped).
    fn targets(&self, tokens: &[u32]) -> Vec<u32> {
        self.pred_positions()
            .into_iter()
            .filter_map(|p| tokens.get(p + 1).copied())
            .collect()
    }
    /// The targets training and evaluation score: [`Task::targets`] with [`UNSCORED`] at
    /// the positions this sequence leaves unscored (a custom data line scoring fewer
    /// positions than the union in `pred_positions`). Default: every position scored.
    fn scored_targets(&self, tokens: &[u32]) -> Vec<u32> {
        self.targets(tokens)
    }
    /// The position whose token the scored position p predicts, where views show the
    /// model's guess: p + 1 by default; `None` when the target is a label that is no token of
    /// the sequence (the guess is then shown at p).
    fn target_position(&self, p: usize) -> Option<usize> {
        Some(p + 1)
    }
    /// The display label of every output class (length `d_vocab_out`). Default: the input
    /// vocabulary's labels, for tasks whose targets are tokens.
    fn output_vocab(&self) -> Vec<String> {
        let mut v = self.vocab();
        v.truncate(self.d_vocab_out());
        v
    }
    /// The prediction positions that measure the algorithm (default: all of them).
    fn algo_positions(&self) -> Vec<usize> {
        self.pred_positions()
    }
    /// A sampler's sequence (length T) drawn from `rng`; `held_out` picks the side of a
    /// held-out split for tasks that have one. Finite datasets never get this call.
    fn sample(&self, rng: &mut CounterRng, held_out: bool) -> Vec<u32>;
    /// A finite dataset's size and split; `None` for a sampler.
    fn finite(&self) -> Option<FiniteSplit> {
        None
    }
    /// Item i (0 ≤ i < the dataset's size) of a finite dataset.
    fn item(&self, _i: u64) -> Vec<u32> {
        Vec::new()
    }
    /// Whether training and evaluation draw from different sides of a split.
    fn has_split(&self) -> bool {
        self.finite().is_some()
    }
    /// The exact mean cross-entropy of a perfect model on the training distribution
    /// (0 when every target is determined by the visible prefix).
    fn loss_floor(&self) -> f64 {
        0.0
    }
    /// Input positions (≤ p) holding the answer of the prediction at p (p is a prediction
    /// position and `tokens` has length T).
    fn answer_sources(&self, _tokens: &[u32], _p: usize) -> Vec<usize> {
        Vec::new()
    }
    /// The token ids carrying values (copying scores are taken over these).
    fn value_tokens(&self) -> std::ops::Range<usize>;
    /// A short name for every position (length T), for axis labels.
    fn position_names(&self) -> Vec<String>;
    /// How many tokens are given before the model answers.
    fn prompt_len(&self) -> usize {
        self.pred_positions().first().map_or(0, |&p| p + 1)
    }
    /// The whole correct sequence for a prompt of length `prompt_len` whose ids are in the
    /// vocabulary; `None` when the prompt is not one of this task.
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>>;
    /// The span `(start, len)` of prompt positions holding input values: patching's default
    /// corruption replaces the value in its middle by one not in the span. Default: the
    /// whole prompt.
    fn corrupt_span(&self) -> (usize, usize) {
        (0, self.prompt_len())
    }
    /// Patching's corrupted prompt for `prompt` (the `shift`-th of the task's choices), when
    /// the task defines its own corruption; `None`: the default one ([`Task::corrupt_span`]).
    fn corrupt_prompt(&self, _prompt: &[u32], _shift: usize) -> Option<Vec<u32>> {
        None
    }
    /// Typed text → prompt tokens. Default: the prompt's labels separated by spaces.
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        parse_labels(&self.vocab(), self.prompt_len(), text)
    }
    /// The text `parse_prompt` reads back into the prompt of `tokens`.
    fn prompt_text(&self, tokens: &[u32]) -> String {
        let vocab = self.vocab();
        let n = self.prompt_len().min(tokens.len());
        tokens[..n]
            .iter()
            .map(|&t| label(&vocab, t))
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// Human-readable tokens (labels joined by spaces by default).
    fn format_tokens(&self, tokens: &[u32]) -> String {
        let vocab = self.vocab();
        tokens
            .iter()
            .map(|&t| label(&vocab, t))
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// The default model (its n_ctx and vocabularies are set from the task afterwards).
    fn default_model(&self) -> ModelConfig;
    /// What the analysis cells say about this task (default: [`AnalysisNotes::GENERIC`]).
    fn analysis_notes(&self) -> AnalysisNotes {
        AnalysisNotes::GENERIC
    }
}

/// The label of id t, or `?t` outside the vocabulary.
pub(crate) fn label(vocab: &[String], t: u32) -> String {
    vocab
        .get(t as usize)
        .cloned()
        .unwrap_or_else(|| format!("?{t}"))
}

/// Reads `len` labels separated by whitespace and/or commas; the error names the piece.
pub(crate) fn parse_labels(vocab: &[String], len: usize, text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for piece in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
    {
        match vocab.iter().position(|v| v == piece) {
            Some(i) => out.push(i as u32),
            None => {
                return Err(format!(
                    "'{}' is not a token of this task (type the prompt's labels, as the samples show them, separated by spaces)",
                    super::shorten(piece)
                ))
            }
        }
    }
    if out.len() != len {
        return Err(format!(
            "expected {len} tokens in the prompt, got {}",
            out.len()
        ));
    }
    Ok(out)
}

/// The model every catalogue task starts from: attention-only, no LayerNorm, frozen
/// biases, seed 0, `layers` × `heads`, d_model `d_model`, d_head `d_head`.
pub(crate) fn attn_only(layers: usize, heads: usize, d_model: usize, d_head: usize) -> ModelConfig {
    let mut cfg = ModelConfig::sort_ref();
    cfg.n_layers = layers;
    cfg.n_heads = heads;
    cfg.d_model = d_model;
    cfg.d_head = d_head;
    cfg.d_mlp = None;
    cfg.act_fn = None;
    cfg.normalization_type = None;
    cfg.seed = 0;
    cfg.train_biases = false;
    cfg
}

/// The labels of `tokens[a..b]` (clipped to the tokens given) joined by `sep`.
pub(crate) fn join_labels(
    vocab: &[String],
    tokens: &[u32],
    a: usize,
    b: usize,
    sep: &str,
) -> String {
    let n = tokens.len();
    tokens[a.min(n)..b.min(n)]
        .iter()
        .map(|&t| label(vocab, t))
        .collect::<Vec<_>>()
        .join(sep)
}

impl ParamRow {
    /// A whole-number parameter.
    pub fn int(
        name: &'static str,
        min: usize,
        max: usize,
        default: usize,
        help: &'static str,
    ) -> Self {
        ParamRow {
            name,
            min: min as f64,
            max: max as f64,
            default: default as f64,
            integer: true,
            help,
        }
    }
    /// A real-valued parameter.
    pub fn float(name: &'static str, min: f64, max: f64, default: f64, help: &'static str) -> Self {
        ParamRow {
            name,
            min,
            max,
            default,
            integer: false,
            help,
        }
    }
}
