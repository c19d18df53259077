//! `custom`: a task defined by a data file (issue 14). Two formats, one example per line:
//!
//! - **JSON lines**: `{"tokens": [3, 1, 2, 1, 2, 3], "scored": [2, 3, 4]}`, optionally
//!   `"split": "train" | "test"`, and an optional first line `{"vocab": ["a", "b", ...],
//!   "name": "..."}` giving display labels (otherwise the labels are the numbers).
//! - **Text**: characters are tokens; the first separator (default `|`, settable) ends the
//!   prompt and is no token itself: `> abc| acb bac bca cab cba.`. The vocabulary is the
//!   set of characters seen, sorted by code point.
//!
//! The scored-position convention is the one of every task here: a scored position p
//! means the model predicts `tokens[p + 1]` from position p (text: the characters after the
//! separator are the targets). Examples are padded to the longest (or to `n_ctx` when set)
//! with a pad token (id = number of labels) that is never scored. The dataset is finite:
//! split by `frac_train` and `split_seed` ([`super::finite`]) unless the file marks
//! splits, whose marks are kept. The data travels inside the task (its JSON has the text
//! in `data` and its `hash`), so a saved run, a sweep or a link carries it.
//!
//! Lines may score different positions (text lines of different lengths): the task's
//! `pred_positions` are the union over the file, and a row's targets at the positions its
//! line does not score are `UNSCORED` (the backends' `Batch::IGNORE`), so the loss and the
//! accuracies count each line's own scored positions only.

pub mod decode;

use super::finite::{validate_frac, FiniteSplit};
use super::rng::CounterRng;
use super::task::{attn_only, label, parse_labels, ParamRow, Task, UNSCORED};
use crate::error::DataErrors;
use crate::model::ModelConfig;
pub use decode::{Dataset, Example, Format, Mark, Options};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The label shown for the pad token.
pub const PAD_LABEL: &str = "<pad>";

/// A custom task: the data file's text, how it is read, and the split parameters.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "CustomJson", try_from = "CustomJson")]
pub struct Custom {
    /// The display name (the file's name, or the header's).
    pub name: String,
    /// Fraction of the examples that train (when the file marks no splits).
    pub frac_train: f64,
    /// Seed of the deterministic split.
    pub split_seed: u64,
    /// A hash the data must have (from a saved run or a link); empty: none.
    pub expect_hash: String,
    opt: Options,
    data: Arc<Loaded>,
}

/// The decoded file, shared by every clone of the task.
struct Loaded {
    text: String,
    hash: String,
    result: Result<Dataset, DataErrors>,
    /// Item → example index when the file marks splits (empty otherwise).
    table: Vec<u32>,
    /// An example's tokens (unpadded) → its index, the first line when lines repeat: how
    /// a padded row finds the positions its line scores.
    rows: HashMap<Vec<u32>, u32>,
    split: Option<FiniteSplit>,
    /// What patching's corruption draws from, built on first use.
    inputs: std::sync::OnceLock<Inputs>,
}

/// The tokens each prompt position holds in the data (sorted, distinct), and the data's prompts.
struct Inputs {
    seen: Vec<Vec<u32>>,
    prompts: std::collections::HashSet<Vec<u32>>,
}

/// The JSON form of [`Custom`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    format: Format,
    #[serde(default = "default_separator")]
    separator: String,
    #[serde(default = "default_frac")]
    frac_train: f64,
    #[serde(default)]
    split_seed: u64,
    #[serde(default)]
    n_ctx: usize,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    data: Option<String>,
}

fn default_separator() -> String {
    "|".into()
}
fn default_frac() -> f64 {
    0.8
}

/// The data of the default task (no file given): every 3-letter word over `abcd` and its
/// reversal, `abc|cba`.
pub fn example_text() -> String {
    let mut out = String::new();
    for i in 0..64u32 {
        let w: Vec<char> = [i / 16, i / 4 % 4, i % 4]
            .iter()
            .map(|&d| (b'a' + d as u8) as char)
            .collect();
        let r: String = w.iter().rev().collect();
        out.push_str(&format!("{}|{r}\n", w.iter().collect::<String>()));
    }
    out
}

/// FNV-1a (64 bits) of `bytes` as 16 hex digits: the data's identity in saved runs and links.
pub fn data_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The default task's name.
pub const EXAMPLE_NAME: &str = "example: reverse 3 letters";

impl Default for Custom {
    fn default() -> Self {
        Custom::new(example_text(), EXAMPLE_NAME, Options::default())
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::Auto,
            separator: '|',
            n_ctx: 0,
        }
    }
}

impl Custom {
    /// The task of the file `text` named `name`, read with `opt`; the split is
    /// `frac_train` 0.8, `split_seed` 0. A bad file gives a task whose `validate` lists
    /// its errors (see [`Custom::errors`]).
    pub fn new(text: String, name: &str, opt: Options) -> Self {
        let result = decode::decode(&text, &opt);
        let split = result.as_ref().ok().and_then(marked_split);
        let table = match (&result, &split) {
            (Ok(ds), Some(fs)) => marked_table(ds, fs),
            _ => Vec::new(),
        };
        let rows = match &result {
            Ok(ds) => row_index(&ds.examples),
            _ => HashMap::new(),
        };
        let hash = data_hash(text.as_bytes());
        let name = match &result {
            Ok(ds) if name.is_empty() => ds.name.clone(),
            _ => name.to_string(),
        };
        Custom {
            name,
            frac_train: default_frac(),
            split_seed: 0,
            expect_hash: String::new(),
            opt,
            data: Arc::new(Loaded {
                text,
                hash,
                result,
                table,
                rows,
                split,
                inputs: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The decoded file, or its errors (line numbers and what is wrong).
    pub fn dataset(&self) -> Result<&Dataset, &DataErrors> {
        self.data.result.as_ref()
    }

    /// The file's errors, empty when it decoded.
    pub fn errors(&self) -> DataErrors {
        self.data.result.clone().err().unwrap_or_default()
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.data.text
    }

    /// The data's hash ([`data_hash`] of the text).
    pub fn hash(&self) -> &str {
        &self.data.hash
    }

    /// The hash the data must have: the recorded one, or its own when none was recorded.
    pub fn expected_hash(&self) -> &str {
        match self.expect_hash.as_str() {
            "" => &self.data.hash,
            h => h,
        }
    }

    /// How the file is read.
    pub fn options(&self) -> Options {
        self.opt
    }

    fn examples(&self) -> &[Example] {
        self.dataset().map_or(&[], |d| &d.examples)
    }

    fn n_labels(&self) -> usize {
        self.dataset().map_or(0, |d| d.labels.len())
    }

    /// Whether the file marks splits (then `frac_train`/`split_seed` are not used).
    pub fn marks_splits(&self) -> bool {
        self.data.split.is_some()
    }

    /// The union of the positions the examples score, ascending.
    fn scored_union(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self
            .examples()
            .iter()
            .flat_map(|e| e.scored.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The positions the padded row `tokens` scores: its line's (looked up without the
    /// padding); for a row the data lacks (an edited prompt), every union position whose
    /// target is no padding.
    fn row_scored(&self, tokens: &[u32]) -> Vec<bool> {
        let pad = self.n_labels() as u32;
        let end = tokens.iter().rposition(|&t| t != pad).map_or(0, |i| i + 1);
        let union = self.scored_union();
        match self.data.rows.get(&tokens[..end]) {
            Some(&i) => {
                let e = &self.examples()[i as usize];
                union.iter().map(|p| e.scored.contains(p)).collect()
            }
            None => union.iter().map(|&p| p + 1 < end).collect(),
        }
    }

    /// The tokens seen at each of the first `prompt_len` positions and the data's prompts.
    fn inputs(&self, prompt_len: usize) -> &Inputs {
        self.data.inputs.get_or_init(|| {
            let mut seen = vec![Vec::new(); prompt_len];
            let mut prompts = std::collections::HashSet::new();
            for e in self.examples() {
                for (s, &t) in seen.iter_mut().zip(&e.tokens) {
                    s.push(t);
                }
                prompts.insert(e.tokens[..prompt_len.min(e.tokens.len())].to_vec());
            }
            for s in &mut seen {
                s.sort_unstable();
                s.dedup();
            }
            Inputs { seen, prompts }
        })
    }

    /// Patching's corruption: one prompt token changed to another token seen at that position
    /// in the data. Prompt positions are inputs (no scored position predicts them: the first
    /// scored position ends the prompt). A change giving a prompt of the data (whose answer
    /// the data defines) first, at the middle position if it can, else the other positions in
    /// turn; failing that, any change in the same order. `shift` picks among the choices.
    fn corrupt_input(&self, prompt: &[u32], shift: usize) -> Option<Vec<u32>> {
        if prompt.len() != self.prompt_len() {
            return None;
        }
        let inputs = self.inputs(prompt.len());
        let mid = prompt.len() / 2;
        let order: Vec<usize> = std::iter::once(mid)
            .chain((0..prompt.len()).filter(|&i| i != mid))
            .collect();
        let with = |at: usize, t: u32| {
            let mut p = prompt.to_vec();
            p[at] = t;
            p
        };
        for known in [true, false] {
            for &at in &order {
                let pool: Vec<u32> = (inputs.seen.get(at)?.iter().copied())
                    .filter(|&t| t != prompt[at])
                    .filter(|&t| !known || inputs.prompts.contains(&with(at, t)))
                    .collect();
                if !pool.is_empty() {
                    return Some(with(at, pool[shift % pool.len()]));
                }
            }
        }
        None
    }

    /// Example `i` padded to T with the pad token.
    fn padded(&self, e: &Example) -> Vec<u32> {
        let mut out = e.tokens.clone(); // (T,)
        out.resize(self.seq_len().max(out.len()), self.n_labels() as u32);
        out
    }
}

/// The split a file's marks define: the train lines first, then the test lines.
fn marked_split(ds: &Dataset) -> Option<FiniteSplit> {
    let n = ds.examples.len() as u64;
    let n_train = ds
        .examples
        .iter()
        .filter(|e| e.split == Some(Mark::Train))
        .count() as u64;
    if ds.examples.iter().all(|e| e.split.is_none()) || n_train == 0 || n_train == n {
        return None;
    }
    let fs = FiniteSplit::new(n, n_train as f64 / n as f64, 0);
    (fs.n_train == n_train).then_some(fs)
}

/// Item → example index so that the split `fs` puts exactly the marked lines on each side.
fn marked_table(ds: &Dataset, fs: &FiniteSplit) -> Vec<u32> {
    let side = |m: Mark| {
        ds.examples
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.split == Some(m))
            .map(|(i, _)| i as u32)
    };
    let mut table = vec![0u32; ds.examples.len()];
    for (j, i) in side(Mark::Train).enumerate() {
        table[fs.item_of(false, j as u64) as usize] = i;
    }
    for (j, i) in side(Mark::Test).enumerate() {
        table[fs.item_of(true, j as u64) as usize] = i;
    }
    table
}

impl From<Custom> for CustomJson {
    fn from(c: Custom) -> Self {
        CustomJson {
            name: c.name.clone(),
            format: c.opt.format,
            separator: c.opt.separator.to_string(),
            frac_train: c.frac_train,
            split_seed: c.split_seed,
            n_ctx: c.opt.n_ctx,
            hash: c.data.hash.clone(),
            data: Some(c.data.text.clone()),
        }
    }
}

impl TryFrom<CustomJson> for Custom {
    type Error = String;
    fn try_from(j: CustomJson) -> Result<Self, String> {
        let mut chars = j.separator.chars();
        let separator = match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => {
                return Err(format!(
                    "custom: separator \"{}\" must be one character",
                    super::shorten(&j.separator)
                ))
            }
        };
        let opt = Options {
            format: j.format,
            separator,
            n_ctx: j.n_ctx,
        };
        let mut c = match j.data {
            Some(text) => Custom::new(text, &j.name, opt),
            None if j.name.is_empty() => Custom::new(example_text(), EXAMPLE_NAME, opt),
            None => Custom::new(example_text(), &j.name, opt),
        };
        c.frac_train = j.frac_train;
        c.split_seed = j.split_seed;
        c.expect_hash = j.hash;
        Ok(c)
    }
}

impl std::fmt::Debug for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custom")
            .field("name", &self.name)
            .field("hash", &self.data.hash)
            .field("bytes", &self.data.text.len())
            .field("examples", &self.examples().len())
            .field("opt", &self.opt)
            .field("frac_train", &self.frac_train)
            .field("split_seed", &self.split_seed)
            .finish()
    }
}

impl PartialEq for Custom {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.frac_train == o.frac_train
            && self.split_seed == o.split_seed
            && self.expected_hash() == o.expected_hash()
            && self.opt == o.opt
            && (Arc::ptr_eq(&self.data, &o.data) || self.data.text == o.data.text)
    }
}

mod task_impl;

/// Each example's tokens → its index (the first line when lines repeat).
fn row_index(examples: &[Example]) -> HashMap<Vec<u32>, u32> {
    let mut out = HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        out.entry(e.tokens.clone()).or_insert(i as u32);
    }
    out
}
