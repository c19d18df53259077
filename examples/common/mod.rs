//! Argument parsing shared by the examples (kept dependency-free on purpose).
#![allow(dead_code)]

use std::collections::HashMap;

/// mimalloc for the command-line tools: candle allocates a fresh buffer per op, and glibc
/// returns large ones to the OS each time, so every step page-faults and re-zeroes
/// them. With mimalloc a sort-ref step took ~95 ms instead of ~150 ms here (1 thread,
/// machine busy; see BENCHMARKS.md for side-by-side figures).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use toyformer::model::{ActFn, ModelConfig, Norm};
use toyformer::tasks::TaskSpec;
use toyformer::{Error, Result};

pub struct Args {
    vals: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// `--key value` pairs and bare `--flag`s (those listed in `flags`).
    pub fn parse(flags: &[&str]) -> Result<Self> {
        let mut vals = HashMap::new();
        let mut set = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| Error::config(&a, "expected --key"))?
                .to_string();
            if flags.contains(&key.as_str()) {
                set.push(key);
            } else {
                let v = it
                    .next()
                    .ok_or_else(|| Error::config(&key, "missing value"))?;
                vals.insert(key, v);
            }
        }
        Ok(Args { vals, flags: set })
    }
    pub fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        self.vals.get(k).map(|s| s.as_str())
    }
    pub fn get<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>> {
        match self.vals.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::config(k, format!("cannot parse {v:?}"))),
        }
    }
    pub fn get_or<T: std::str::FromStr>(&self, k: &str, d: T) -> Result<T> {
        Ok(self.get(k)?.unwrap_or(d))
    }
    /// Keys nobody asked for are a mistake: report them.
    pub fn check_known(&self, known: &[&str]) -> Result<()> {
        for k in self.vals.keys() {
            if !known.contains(&k.as_str()) {
                return Err(Error::config(
                    k,
                    format!("unknown option (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

pub const TASK_KEYS: &[&str] = &[
    "task",
    "n",
    "max-num",
    "k",
    "max-int",
    "holdout",
    "split-seed",
];
pub const MODEL_KEYS: &[&str] = &[
    "n-layers",
    "n-heads",
    "d-model",
    "d-head",
    "d-mlp",
    "act-fn",
    "norm",
    "model-seed",
];

/// `--task` with its parameters (`--n`, `--max-num`, `--k`, `--max-int`; permutations
/// also `--holdout`, `--split-seed`).
pub fn task_from(a: &Args) -> Result<TaskSpec> {
    let mut t = TaskSpec::default_for(a.str("task").unwrap_or("sort"))?;
    match &mut t {
        TaskSpec::Sort { n, max_num } => {
            *n = a.get_or("n", *n)?;
            *max_num = a.get_or("max-num", *max_num)?;
        }
        TaskSpec::Permutations {
            n,
            holdout,
            split_seed,
        } => {
            *n = a.get_or("n", *n)?;
            *holdout = a.get_or("holdout", *holdout)?;
            *split_seed = a.get_or("split-seed", *split_seed)?;
        }
        TaskSpec::ApplyPerm { k, max_int } => {
            *k = a.get_or("k", *k)?;
            *max_int = a.get_or("max-int", *max_int)?;
        }
    }
    t.validate()?;
    Ok(t)
}

/// The task's default model with `--n-layers` etc. applied.
pub fn model_from(a: &Args, task: &TaskSpec) -> Result<ModelConfig> {
    let mut c = task.default_model();
    c.n_layers = a.get_or("n-layers", c.n_layers)?;
    c.n_heads = a.get_or("n-heads", c.n_heads)?;
    c.d_model = a.get_or("d-model", c.d_model)?;
    c.d_head = a.get_or("d-head", c.d_head)?;
    c.seed = a.get_or("model-seed", c.seed)?;
    if let Some(m) = a.get::<usize>("d-mlp")? {
        c.d_mlp = Some(m);
        c.act_fn = Some(ActFn::parse(a.str("act-fn").unwrap_or("relu"))?);
    }
    match a.str("norm") {
        None => {}
        Some("none") => c.normalization_type = None,
        Some("LN") | Some("ln") => c.normalization_type = Some(Norm::LN),
        Some(x) => return Err(Error::config("norm", format!("{x:?} is not none or LN"))),
    }
    c.validate()?;
    Ok(c)
}

/// Runs `f`, printing a readable error and exiting with 1 on failure.
pub fn main_with(f: impl FnOnce() -> Result<()>) {
    if let Err(e) = f() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
