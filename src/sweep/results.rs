//! Reading a JSON-lines results file (one [`RunResult`] a line, as `examples/sweep --out`,
//! `--run-one` and `pkg-config/ray_sweep.py` write it) back against the grid's runs: for
//! `--resume` and `--aggregate`.

use super::grid::RunSpec;
use super::run::RunResult;
use crate::error::{Error, Result};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// The results of a file that belong to the grid, by run index.
#[derive(Debug, Default)]
pub struct ReadBack {
    pub done: BTreeMap<usize, RunResult>,
    /// 1-based line numbers of results whose spec is not the grid's run of that index (another
    /// grid's, or an edited grid's).
    pub foreign: Vec<usize>,
    /// Lines repeating a run already read (the first one is kept).
    pub repeated: usize,
    /// The last line was cut short (no newline, not valid JSON: a writer stopped mid-line) and
    /// was left out.
    pub cut_short: bool,
}

/// Reads `text` (the file's content). A line that is not a result is an error naming its
/// number, except a last line without its newline that does not parse, which an interrupted
/// writer leaves; it is skipped and reported in `cut_short`.
pub fn read_results(text: &str, runs: &[RunSpec]) -> Result<ReadBack> {
    let mut out = ReadBack::default();
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: RunResult = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) if i + 1 == lines.len() => {
                out.cut_short = true;
                continue;
            }
            Err(e) => {
                return Err(Error::Json(format!(
                    "results line {}: not a run result: {e}",
                    i + 1
                )))
            }
        };
        if runs.get(r.spec.index) != Some(&r.spec) {
            out.foreign.push(i + 1);
            continue;
        }
        match out.done.entry(r.spec.index) {
            Entry::Vacant(slot) => {
                slot.insert(r);
            }
            Entry::Occupied(_) => out.repeated += 1,
        }
    }
    Ok(out)
}
