//! Clean/corrupted pairs typed by the user (the Circuit cell's inputs), read with the task's
//! own prompt parsing ([`TaskSpec::parse_prompt`], as the page's other typed inputs are) and
//! answered with [`TaskSpec::solve`].
//!
//! Several pairs are separated by `;` (or new lines) in both texts: the i-th clean prompt is
//! paired with the i-th corrupted one. Every error names the input (clean or corrupted),
//! the pair and what is wrong with it.

use super::circuit_metric::Pairs;
use crate::error::{Error, Result};
use crate::tasks::TaskSpec;

/// The most pairs that may be typed.
pub const MAX_TYPED_PAIRS: usize = 256;

/// The prompts of `text`, split at `;` and new lines (empty pieces dropped).
fn pieces(text: &str) -> Vec<&str> {
    text.split([';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The pair number `i` (from 1) in an error's wording: "" when there is one pair.
fn which(i: usize, n: usize) -> String {
    if n == 1 {
        String::new()
    } else {
        format!(" {}", i + 1)
    }
}

/// The whole sequence (length T) of one typed prompt; the error names `input` and the pair.
fn sequence(task: &TaskSpec, input: &str, i: usize, n: usize, text: &str) -> Result<Vec<u32>> {
    let at = format!("{input} prompt{}", which(i, n));
    let prompt = task
        .parse_prompt(text)
        .map_err(|e| Error::config(&at, format!("'{text}': {}", reason(e))))?;
    task.solve(&prompt)
        .map_err(|e| Error::config(&at, format!("'{text}': {}", reason(e))))
}

/// The message of a task error, without the task's name (the page names the task).
fn reason(e: Error) -> String {
    match e {
        Error::Task { msg, .. } => msg,
        e => e.to_string(),
    }
}

/// The pairs typed as `clean` and `corrupted` (see the module doc). Errors when either is
/// empty, the counts differ, a prompt is not one of the task's, or a corrupted prompt is
/// not as long as its clean one.
pub fn typed_pairs(task: &TaskSpec, clean: &str, corrupted: &str) -> Result<Pairs> {
    let (c, k) = (pieces(clean), pieces(corrupted));
    if c.is_empty() || k.is_empty() {
        let missing = if c.is_empty() { "clean" } else { "corrupted" };
        return Err(Error::config(
            "circuit inputs",
            format!("type a {missing} prompt too (or clear both for the task's default pairs)"),
        ));
    }
    if c.len() != k.len() {
        return Err(Error::config(
            "circuit inputs",
            format!(
                "{} clean prompts but {} corrupted ones: type one corrupted prompt per clean prompt, separated by ';'",
                c.len(),
                k.len()
            ),
        ));
    }
    if c.len() > MAX_TYPED_PAIRS {
        return Err(Error::config(
            "circuit inputs",
            format!("{} pairs; at most {MAX_TYPED_PAIRS} may be typed", c.len()),
        ));
    }
    let n = c.len();
    let mut pairs = Pairs {
        clean: Vec::new(),
        corrupted: Vec::new(),
        batch: n,
    };
    for (i, (ct, kt)) in c.iter().zip(&k).enumerate() {
        let cs = sequence(task, "clean", i, n, ct)?;
        let ks = sequence(task, "corrupted", i, n, kt)?;
        if cs.len() != ks.len() {
            return Err(Error::config(
                format!("corrupted prompt{}", which(i, n)),
                format!(
                    "'{kt}' makes {} tokens but the clean prompt '{ct}' makes {}: both must be as long",
                    ks.len(),
                    cs.len()
                ),
            ));
        }
        pairs.clean.extend(cs);
        pairs.corrupted.extend(ks);
    }
    Ok(pairs)
}

/// The typed pairs, or `default` when both texts are blank.
pub fn pairs_or(
    task: &TaskSpec,
    clean: &str,
    corrupted: &str,
    default: impl FnOnce() -> Result<Pairs>,
) -> Result<Pairs> {
    if clean.trim().is_empty() && corrupted.trim().is_empty() {
        default()
    } else {
        typed_pairs(task, clean, corrupted)
    }
}

/// The prompt texts of `pairs` (first `max`), as [`typed_pairs`] reads them back: `(clean,
/// corrupted)`, pairs joined by `"; "`.
pub fn pairs_text(task: &TaskSpec, pairs: &Pairs, max: usize) -> (String, String) {
    let t = task.seq_len().max(1);
    let text = |seqs: &[u32]| {
        seqs.chunks(t)
            .take(max)
            .map(|s| task.prompt_text(s))
            .collect::<Vec<_>>()
            .join("; ")
    };
    (text(&pairs.clean), text(&pairs.corrupted))
}
