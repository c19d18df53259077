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

/// `--task` and every registered task's parameters (`--max-num` sets `max_num`).
pub const TASK_KEYS: &[&str] = &[
    "task",
    "n",
    "max-num",
    "k",
    "max-int",
    "holdout",
    "split-seed",
    "p",
    "frac-train",
    "n-tokens",
    "num-digits",
    "n-ctx",
    "data",
    "separator",
    "format",
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

/// `--task NAME` (any registered task) with its parameters as `--name value`, the
/// parameter's JSON name with `-` for `_` (`--n`, `--max-num`, `--frac-train`, ...).
/// Options of parameters the chosen task does not have are ignored.
pub fn task_from(a: &Args) -> Result<TaskSpec> {
    let t = TaskSpec::default_for(a.str("task").unwrap_or("sort"))?;
    let mut json = serde_json::to_value(&t).map_err(|e| Error::config("task", e.to_string()))?;
    for row in t.params() {
        let key = row.name.replace('_', "-");
        if let Some(v) = a.get::<f64>(&key)? {
            let integral = v.fract() == 0.0 && v >= 0.0;
            if row.integer && !integral {
                return Err(Error::config(&key, format!("{v} is not a whole number")));
            }
            json[row.name] = if row.integer {
                serde_json::json!(v as u64)
            } else {
                serde_json::json!(v)
            };
        }
    }
    custom_data(a, &mut json)?;
    let t: TaskSpec =
        serde_json::from_value(json).map_err(|e| Error::config("task", e.to_string()))?;
    t.validate()?;
    Ok(t)
}

/// `--task custom`: the data file `--data FILE` (its name becomes the task's), `--separator
/// C` (text format, default `|`) and `--format auto|jsonl|text` go into the task's JSON.
pub fn custom_data(a: &Args, json: &mut serde_json::Value) -> Result<()> {
    let custom = json["task"] == "custom";
    let Some(path) = a.str("data") else {
        if custom {
            return Err(Error::config(
                "data",
                "--task custom needs --data FILE (JSON lines or text; see the README)",
            ));
        }
        return Ok(());
    };
    if !custom {
        return Err(Error::config("data", "--data FILE is for --task custom"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    let name = std::path::Path::new(path)
        .file_name()
        .map_or(path.to_string(), |n| n.to_string_lossy().into_owned());
    json["data"] = text.into();
    json["name"] = name.into();
    if let Some(obj) = json.as_object_mut() {
        obj.remove("hash"); // the default data's
    }
    for key in ["separator", "format"] {
        if let Some(v) = a.str(key) {
            json[key] = v.into();
        }
    }
    Ok(())
}

/// A custom task's sweep runs on the data of `--data FILE`: each run's task is re-made
/// from the file with the run's split parameters, and its model's n_ctx and vocabularies
/// follow the data (`toyformer::sweep::runs_on_data`, as the page's Sweep cell does); a
/// grid of another task is an error.
pub fn runs_on_data(a: &Args, runs: &mut [toyformer::sweep::RunSpec]) -> Result<()> {
    if a.str("data").is_none() {
        return Ok(());
    }
    let mut json = serde_json::json!({"task": "custom"});
    custom_data(a, &mut json)?;
    let mut patch = json.as_object().cloned().unwrap_or_default();
    patch.remove("task");
    toyformer::sweep::runs_on_data(runs, &patch)
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

/// A finite dataset's exact accuracies: its whole train split, its whole test split and the
/// full dataset (their item-weighted mean) as `(name, loss, token_acc)`; empty for a
/// sampled task. Each split is evaluated as one batch, every item once.
pub fn finite_reports(
    backend: &mut dyn toyformer::backend::Backend,
    task: &TaskSpec,
) -> Result<Vec<(&'static str, f64, f64)>> {
    use toyformer::tasks::Split;
    let Some(fs) = task.finite() else {
        return Ok(Vec::new());
    };
    let side = |b: &mut dyn toyformer::backend::Backend, split, n: u64| {
        let n = n as usize;
        toyformer::train::eval::evaluate_split(b, task, 0, n, n, split)
    };
    let train = side(backend, Split::Train, fs.n_train)?;
    let test = side(backend, Split::HeldOut, fs.n_test())?;
    let w = fs.n_train as f64 / fs.n_items as f64;
    let mix = |a: f64, b: f64| w * a + (1.0 - w) * b;
    Ok(vec![
        ("train", train.loss, train.token_acc),
        ("test", test.loss, test.token_acc),
        (
            "full",
            mix(train.loss, test.loss),
            mix(train.token_acc, test.token_acc),
        ),
    ])
}
