//! The decoder of a custom task's data file: JSON lines or text (see [`super`] for both
//! formats). It never panics; every problem is recorded with its line number in
//! [`DataErrors`] (the first [`DataErrors::KEPT`] kept, every affected line counted).

use crate::error::DataErrors;
use crate::model::config::MAX_N_CTX;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest data file accepted, in bytes.
pub const MAX_BYTES: usize = 16 << 20;
/// The most examples (non-blank lines) a file may have.
pub const MAX_LINES: usize = 200_000;
/// The most tokens all examples together may have.
pub const MAX_TOKENS: usize = 4_000_000;
/// The most display labels (token ids) a file may use; one more id is the pad token.
pub const MAX_LABELS: usize = 65_535;

/// How a file is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON lines when the first non-blank character is `{`, text otherwise.
    #[default]
    Auto,
    /// One JSON object per line.
    Jsonl,
    /// One example per line, characters as tokens, a separator before the scored part.
    Text,
}

/// Which side of the split a file puts a line on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Train,
    Test,
}

/// One example: its tokens (no padding), the positions p whose next token is scored
/// (ascending), the file's split mark and the line it came from (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub line: usize,
    pub tokens: Vec<u32>,
    pub scored: Vec<usize>,
    pub split: Option<Mark>,
}

/// A decoded file.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The header's name (JSON lines), or empty.
    pub name: String,
    /// The format the file was read as (never `Auto`).
    pub format: Format,
    /// The display label of every token id (the pad token, id `labels.len()`, is not here).
    pub labels: Vec<String>,
    pub examples: Vec<Example>,
    /// The longest example's length.
    pub longest: usize,
}

/// How to read a file: its format, the text format's separator and the longest line
/// accepted (0: the model context limit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    pub format: Format,
    pub separator: char,
    pub n_ctx: usize,
}

/// Decodes `text`. Errors name the line and what is wrong.
pub fn decode(text: &str, opt: &Options) -> Result<Dataset, DataErrors> {
    let mut errs = DataErrors::default();
    if text.len() > MAX_BYTES {
        errs.push(
            0,
            format!(
                "the file has {} bytes, more than the limit of {MAX_BYTES} bytes",
                text.len()
            ),
        );
        return Err(errs);
    }
    let format = match opt.format {
        Format::Auto if text.trim_start().starts_with('{') => Format::Jsonl,
        Format::Auto => Format::Text,
        f => f,
    };
    let limit = if opt.n_ctx == 0 { MAX_N_CTX } else { opt.n_ctx };
    let mut counts = Counts::default();
    let ds = match format {
        Format::Jsonl => jsonl(text, limit, &mut counts, &mut errs),
        _ => text_format(text, opt.separator, limit, &mut counts, &mut errs),
    };
    if errs.is_empty() && ds.examples.is_empty() {
        errs.push(0, "the file is empty: it has no example lines");
    }
    if errs.is_empty() {
        check_marks(&ds.examples, &mut errs);
    }
    if errs.is_empty() {
        Ok(ds)
    } else {
        Err(errs)
    }
}

/// Running totals against the size limits.
#[derive(Default)]
struct Counts {
    lines: usize,
    tokens: usize,
    over: bool,
}

impl Counts {
    /// Adds one example of `len` tokens at line `n`; false (with the error) past a limit.
    fn add(&mut self, n: usize, len: usize, errs: &mut DataErrors) -> bool {
        self.lines += 1;
        self.tokens += len;
        if self.lines > MAX_LINES {
            errs.push(
                n,
                format!("more than {MAX_LINES} example lines (the limit on lines)"),
            );
        } else if self.tokens > MAX_TOKENS {
            errs.push(
                n,
                format!("more than {MAX_TOKENS} tokens in all (the limit on tokens)"),
            );
        } else {
            return true;
        }
        self.over = true;
        false
    }
}

/// The lines of `text` with their numbers (from 1), a trailing `\r` removed.
fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

/// Either every example is marked or none; both sides non-empty when marked.
fn check_marks(examples: &[Example], errs: &mut DataErrors) {
    let marked = examples.iter().filter(|e| e.split.is_some()).count();
    if marked == 0 {
        return;
    }
    for e in examples.iter().filter(|e| e.split.is_none()).take(50) {
        errs.push(
            e.line,
            "the file marks splits on other lines but this line has no \"split\"",
        );
    }
    for (side, mark) in [("train", Mark::Train), ("test", Mark::Test)] {
        if errs.is_empty() && !examples.iter().any(|e| e.split == Some(mark)) {
            errs.push(
                0,
                format!("the file marks splits but no line is \"{side}\" (both sides need one)"),
            );
        }
    }
}

// ---------------------------------------------------------------- text

/// The text format: characters are tokens; the first `sep` splits the line into a prompt
/// and a scored part (the separator itself is no token). Labels: the characters seen,
/// sorted by code point.
fn text_format(
    text: &str,
    sep: char,
    limit: usize,
    counts: &mut Counts,
    errs: &mut DataErrors,
) -> Dataset {
    let mut rows: Vec<(usize, Vec<char>, usize)> = Vec::new(); // (line, chars, prompt length)
    if sep.is_control() {
        errs.push(0, format!("the separator {sep:?} is a control character (choose a printable one, default '|')"));
        counts.over = true;
    }
    for (n, line) in numbered(text) {
        if line.is_empty() || counts.over {
            continue;
        }
        if let Some(row) = text_line(n, line, sep, limit, errs) {
            if counts.add(n, row.0.len(), errs) {
                rows.push((n, row.0, row.1));
            }
        }
    }
    let mut chars: Vec<char> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
    chars.sort_unstable();
    chars.dedup();
    let id = |c: &char| chars.binary_search(c).unwrap_or(0) as u32;
    let examples: Vec<Example> = rows
        .iter()
        .map(|(n, cs, k)| Example {
            line: *n,
            tokens: cs.iter().map(id).collect(),
            scored: (k - 1..cs.len() - 1).collect(),
            split: None,
        })
        .collect();
    Dataset {
        name: String::new(),
        format: Format::Text,
        labels: chars.iter().map(|c| c.to_string()).collect(),
        longest: examples.iter().map(|e| e.tokens.len()).max().unwrap_or(0),
        examples,
    }
}

/// One text line: its characters without the separator and the prompt's length (≥ 1,
/// and shorter than the line), or `None` with the line's errors recorded.
fn text_line(
    n: usize,
    line: &str,
    sep: char,
    limit: usize,
    errs: &mut DataErrors,
) -> Option<(Vec<char>, usize)> {
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        errs.push(
            n,
            format!(
                "the character {:?} (U+{:04X}) cannot be a token of the text format (control characters are refused)",
                c, c as u32
            ),
        );
        return None;
    }
    let Some((prompt, answer)) = line.split_once(sep) else {
        errs.push(
            n,
            format!("no separator '{sep}' in the line (it marks where the scored part begins)"),
        );
        return None;
    };
    let chars: Vec<char> = prompt.chars().chain(answer.chars()).collect();
    let k = prompt.chars().count();
    if k == 0 {
        errs.push(n, format!("nothing before the separator '{sep}': the first scored token needs at least one token before it"));
    } else if answer.is_empty() {
        errs.push(
            n,
            format!("nothing after the separator '{sep}': the line scores no token"),
        );
    } else if chars.len() > limit {
        errs.push(
            n,
            format!(
                "the line has {} tokens, more than the limit of {limit} (n_ctx)",
                chars.len()
            ),
        );
    } else {
        return Some((chars, k));
    }
    None
}

// ---------------------------------------------------------------- JSON lines

/// The JSON lines format: an optional header `{"vocab": [...], "name": "..."}` on the
/// first non-blank line, then `{"tokens": [...], "scored": [...], "split": ...}` per line.
fn jsonl(text: &str, limit: usize, counts: &mut Counts, errs: &mut DataErrors) -> Dataset {
    let mut ds = Dataset {
        name: String::new(),
        format: Format::Jsonl,
        labels: Vec::new(),
        examples: Vec::new(),
        longest: 0,
    };
    let mut vocab: Option<usize> = None;
    let mut first = true;
    let mut max_token = 0u32;
    for (n, line) in numbered(text) {
        if line.trim().is_empty() || counts.over {
            continue;
        }
        let obj = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                errs.push(
                    n,
                    "not a JSON object (each line is {\"tokens\": [...], \"scored\": [...]})",
                );
                first = false;
                continue;
            }
            Err(e) => {
                errs.push(n, format!("not JSON: {e}"));
                first = false;
                continue;
            }
        };
        if std::mem::take(&mut first) && !obj.contains_key("tokens") {
            header(n, &obj, &mut ds, errs);
            vocab = (!ds.labels.is_empty()).then_some(ds.labels.len());
            continue;
        }
        if let Some(e) = example(n, &obj, vocab, limit, errs) {
            if counts.add(n, e.tokens.len(), errs) {
                max_token = e.tokens.iter().copied().fold(max_token, u32::max);
                ds.longest = ds.longest.max(e.tokens.len());
                ds.examples.push(e);
            }
        }
    }
    if vocab.is_none() && !ds.examples.is_empty() {
        ds.labels = (0..=max_token).map(|t| t.to_string()).collect();
    }
    ds
}

/// The header line: `vocab` (an array of distinct strings) and `name` (a string).
fn header(n: usize, obj: &Map<String, Value>, ds: &mut Dataset, errs: &mut DataErrors) {
    for (key, v) in obj {
        match (key.as_str(), v) {
            ("name", Value::String(s)) => ds.name = s.chars().take(200).collect(),
            ("vocab", Value::Array(items)) => ds.labels = vocab_labels(n, items, errs),
            ("name" | "vocab", _) => errs.push(
                n,
                format!("the header's \"{key}\" must be a {}", if key == "name" { "string" } else { "list of strings" }),
            ),
            _ => errs.push(
                n,
                format!("unknown field \"{}\" in the header (it takes \"vocab\" and \"name\"; an example line needs \"tokens\")", super::super::shorten(key)),
            ),
        }
    }
}

/// The header's labels: strings, distinct, at most [`MAX_LABELS`].
fn vocab_labels(n: usize, items: &[Value], errs: &mut DataErrors) -> Vec<String> {
    if items.is_empty() || items.len() > MAX_LABELS {
        errs.push(
            n,
            format!(
                "the header's \"vocab\" has {} labels (1 to {MAX_LABELS} allowed)",
                items.len()
            ),
        );
        return Vec::new();
    }
    let mut labels = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        match v.as_str() {
            Some(s) if !labels.iter().any(|l: &String| l == s) => labels.push(s.to_string()),
            Some(s) => {
                errs.push(
                    n,
                    format!(
                        "the header's vocab repeats the label \"{}\" (at index {i})",
                        super::super::shorten(s)
                    ),
                );
                return Vec::new();
            }
            None => {
                errs.push(n, format!("the header's vocab entry {i} is not a string"));
                return Vec::new();
            }
        }
    }
    labels
}

/// One example line; `None` with its errors recorded.
fn example(
    n: usize,
    obj: &Map<String, Value>,
    vocab: Option<usize>,
    limit: usize,
    errs: &mut DataErrors,
) -> Option<Example> {
    let before = errs.lines_affected;
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "tokens" | "scored" | "split"))
    {
        errs.push(
            n,
            format!(
                "unknown field \"{}\" (a line takes \"tokens\", \"scored\" and \"split\")",
                super::super::shorten(key)
            ),
        );
    }
    let tokens = tokens_of(n, obj.get("tokens"), vocab, limit, errs);
    let scored = tokens
        .as_ref()
        .and_then(|t| scored_of(n, obj.get("scored"), t.len(), errs));
    let split = split_of(n, obj.get("split"), errs);
    if errs.lines_affected != before {
        return None;
    }
    Some(Example {
        line: n,
        tokens: tokens?,
        scored: scored?,
        split: split?,
    })
}

/// `tokens`: a non-empty list of whole numbers below the vocabulary, at most `limit` long.
fn tokens_of(
    n: usize,
    v: Option<&Value>,
    vocab: Option<usize>,
    limit: usize,
    errs: &mut DataErrors,
) -> Option<Vec<u32>> {
    let Some(Value::Array(items)) = v else {
        errs.push(n, "\"tokens\" is missing or not a list");
        return None;
    };
    if items.is_empty() || items.len() > limit {
        errs.push(
            n,
            format!(
                "the line has {} tokens (1 to {limit}, the limit n_ctx, allowed)",
                items.len()
            ),
        );
        return None;
    }
    let top = vocab.unwrap_or(MAX_LABELS);
    let mut out = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        match t.as_u64() {
            Some(x) if x < top as u64 => out.push(x as u32),
            Some(x) => {
                errs.push(n, format!("token {x} (at index {i}) is out of range: the vocabulary has {top} tokens, ids 0..={}", top - 1));
                return None;
            }
            None => {
                errs.push(
                    n,
                    format!(
                        "token {} (at index {i}) is not a whole number ≥ 0",
                        super::super::shorten(&t.to_string())
                    ),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// `scored`: a non-empty list of distinct positions p with p + 1 inside the sequence.
fn scored_of(n: usize, v: Option<&Value>, len: usize, errs: &mut DataErrors) -> Option<Vec<usize>> {
    let Some(Value::Array(items)) = v else {
        errs.push(n, "\"scored\" is missing or not a list (the positions p whose next token tokens[p+1] the loss scores)");
        return None;
    };
    if items.is_empty() {
        errs.push(n, "\"scored\" is empty: the line scores no position");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for p in items {
        let Some(p) = p.as_u64() else {
            errs.push(
                n,
                format!(
                    "scored position {} is not a whole number ≥ 0",
                    super::super::shorten(&p.to_string())
                ),
            );
            return None;
        };
        if p >= len as u64 {
            errs.push(
                n,
                format!(
                    "scored position {p} is outside the sequence (positions 0..={})",
                    len - 1
                ),
            );
            return None;
        }
        if p + 1 == len as u64 {
            errs.push(n, format!("scored position {p} points at padding: its target tokens[{}] is past the line's last token (a position p scores tokens[p+1])", p + 1));
            return None;
        }
        out.push(p as usize);
    }
    out.sort_unstable();
    if let Some(w) = out.windows(2).find(|w| w[0] == w[1]) {
        errs.push(n, format!("scored position {} is listed twice", w[0]));
        return None;
    }
    Some(out)
}

/// `split`: absent, `"train"` or `"test"`. `Some(mark)` unless invalid.
fn split_of(n: usize, v: Option<&Value>, errs: &mut DataErrors) -> Option<Option<Mark>> {
    match v.map(|v| v.as_str()) {
        None => Some(None),
        Some(Some("train")) => Some(Some(Mark::Train)),
        Some(Some("test")) => Some(Some(Mark::Test)),
        Some(_) => {
            errs.push(n, "\"split\" must be \"train\" or \"test\"");
            None
        }
    }
}
