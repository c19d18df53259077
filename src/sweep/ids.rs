//! Naming and splitting the runs of a grid, so that any engine (a Ray cluster, a batch
//! scheduler, a shell loop) can drive `examples/sweep` one run at a time: a stable id per
//! run ([`run_id`]), the list of runs as JSON lines ([`list_entry`]), the lookup of one run
//! by id ([`find_run`]) and shards `k/N` ([`Shard`]).

use super::grid::RunSpec;
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// FNV-1a, 64 bits: a hash whose value is fixed by its definition (not by a Rust version
/// or a process's random state, as `std`'s hasher is), so ids stay the same everywhere.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The run's id: `{index}-{hash}`, the hash (8 hex digits) over the run's full spec as JSON.
/// The same grid gives the same ids on every machine and every time; an id names one spec,
/// so a result file from an edited grid cannot be mistaken for this grid's runs.
pub fn run_id(spec: &RunSpec) -> String {
    // RunSpec serialises to JSON infallibly (no maps with non-string keys, no NaN floats
    // that serde_json rejects: it writes them as null), so the fallback is never used.
    let text = serde_json::to_string(spec).unwrap_or_default();
    let h = fnv1a64(text.as_bytes());
    format!("{}-{:08x}", spec.index, (h >> 32) ^ (h & 0xffff_ffff))
}

/// One line of `examples/sweep --list`: `{"id", "index", "config_index", "seed", "label", "spec"}`.
pub fn list_entry(spec: &RunSpec) -> Value {
    json!({
        "id": run_id(spec),
        "index": spec.index,
        "config_index": spec.config_index,
        "seed": spec.seed,
        "label": spec.label,
        "spec": spec,
    })
}

/// The run with this id, or an error naming `run-one` (an unknown id, or one from another grid).
pub fn find_run<'a>(runs: &'a [RunSpec], id: &str) -> Result<&'a RunSpec> {
    let index: Option<usize> = id.split('-').next().and_then(|s| s.parse().ok());
    match index.and_then(|i| runs.get(i)) {
        Some(r) if run_id(r) == id => Ok(r),
        Some(r) => Err(Error::config(
            "run-one",
            format!(
                "{id:?} is not a run of this grid (run {} is {:?}; was the grid edited? list the runs again with --list)",
                r.index,
                run_id(r)
            ),
        )),
        None => Err(Error::config(
            "run-one",
            format!(
                "{id:?} is not a run id of this grid (ids look like \"3-0a1b2c3d\"; {} runs; see --list)",
                runs.len()
            ),
        )),
    }
}

/// Shard `k` of `n`: the runs whose index ≡ k (mod n). Shards 0..n together hold every
/// run exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl Shard {
    /// Parses `k/N` (0 ≤ k < N).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |msg: String| Error::config("shard", msg);
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| bad(format!("{text:?}: expected k/N, e.g. 0/4")))?;
        let num = |s: &str| -> Result<usize> {
            s.trim()
                .parse()
                .map_err(|_| bad(format!("{text:?}: {s:?} is not a whole number")))
        };
        let (k, n) = (num(k)?, num(n)?);
        if n == 0 {
            return Err(bad(format!("{text:?}: N must be at least 1")));
        }
        if k >= n {
            return Err(bad(format!("{text:?}: k must be below N (0..{n})")));
        }
        Ok(Shard { k, n })
    }

    pub fn contains(&self, index: usize) -> bool {
        index % self.n == self.k
    }
}
