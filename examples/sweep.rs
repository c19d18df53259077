//! Run a sweep grid (see `toyformer::sweep::grid` for the format) and summarise it.
//!
//! cargo run --release --example sweep -- --grid FILE.json [--threads N] [--json]
//!     [--out results.jsonl [--resume]] [--dry-run] [--links] [--shard k/N]
//! cargo run --release --example sweep -- --grid FILE.json --list [--shard k/N]
//! cargo run --release --example sweep -- --grid FILE.json --run-one ID
//! cargo run --release --example sweep -- --grid FILE.json --aggregate results.jsonl [--json] [--links]
//! cargo run --release --example sweep -- --grid FILE.json --data FILE [--separator C] [--format F]
//!     (a grid whose task is `custom`, on the data file; see the README)
//!
//! Runs go to a pool of N worker threads (default: the machine's cores), each run on its
//! own one-thread rayon pool, so a run's numbers do not depend on N. `--out` writes one
//! JSON line per finished run (`RunResult`), in the order they finish; with `--resume`,
//! runs already in that file with the same spec are read back instead of run again.
//! `--json` prints the per-config summaries as one JSON document on stdout; otherwise a
//! table goes to stdout. Progress goes to stderr. `--links` prints, per config, the page
//! link that opens its first run (`sweep::page_fragment`).
//!
//! For other engines (`pkg-config/ray_sweep.py` drives a Ray cluster with them): `--list` prints
//! the runs as JSON lines with their stable ids (`sweep::ids`); `--run-one ID` runs one and prints
//! its result line (the `--out` format); `--shard k/N` keeps the runs whose index ≡ k (mod N)
//! (for `--list`, `--dry-run` and running); `--aggregate FILE` summarises a results file
//! written by any of them, in any order.
mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use toyformer::sweep::{
    aggregate, find_run, grid::label_text, list_entry, read_results, run_id, run_one,
    ConfigSummary, Grid, RunResult, RunSpec, Shard, Stat,
};
use toyformer::{Error, Result};

fn main() {
    main_with(run)
}

fn run() -> Result<()> {
    let a = Args::parse(&["json", "resume", "dry-run", "links", "list"])?;
    a.check_known(&[
        "grid",
        "threads",
        "out",
        "run-one",
        "shard",
        "aggregate",
        "data",
        "separator",
        "format",
    ])?;
    let path = a
        .str("grid")
        .ok_or_else(|| Error::config("grid", "missing: --grid FILE.json"))?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    let grid = Grid::from_json(&text)?;
    let mut all_runs = grid.expand()?;
    runs_on_data(&a, &mut all_runs)?; // --data FILE for a grid of the custom task
    let modes = [
        a.flag("list"),
        a.flag("dry-run"),
        a.str("run-one").is_some(),
        a.str("aggregate").is_some(),
    ];
    if modes.iter().filter(|&&m| m).count() > 1 {
        return Err(Error::config(
            "list",
            "--list, --dry-run, --run-one and --aggregate are separate modes: give one of them",
        ));
    }
    if let Some(id) = a.str("run-one") {
        return run_single(&a, &all_runs, id, &grid);
    }
    if let Some(file) = a.str("aggregate") {
        return aggregate_file(&a, file, &all_runs, &grid);
    }
    let shard = a.str("shard").map(Shard::parse).transpose()?;
    let runs: Vec<RunSpec> = all_runs
        .iter()
        .filter(|r| shard.is_none_or(|s| s.contains(r.index)))
        .cloned()
        .collect();
    if a.flag("list") {
        for r in &runs {
            println!("{}", serde_json::to_string(&list_entry(r))?);
        }
        return Ok(());
    }
    if a.flag("dry-run") {
        for r in &runs {
            println!(
                "{:>4} cfg {:>3} seed {:>3} | {} | {}",
                r.index,
                r.config_index,
                r.seed,
                r.label_text(),
                serde_json::to_string(&r.task)?
            );
        }
        return Ok(());
    }
    run_grid(&a, &runs, &all_runs, &grid)
}

/// `--run-one ID`: the run with that id (from `--list`), on a one-thread pool like every run of
/// the local runner (so its numbers are the same exactly), its result as one JSON line on stdout.
fn run_single(a: &Args, runs: &[RunSpec], id: &str, grid: &Grid) -> Result<()> {
    for k in ["out", "shard", "threads"] {
        if a.str(k).is_some() {
            return Err(Error::config(
                k,
                "does not go with --run-one (it prints its one result)",
            ));
        }
    }
    let spec = find_run(runs, id)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::Backend(format!("thread pool: {e}")))?;
    let r = pool.install(|| run_one(spec, &grid.settings))?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// `--aggregate FILE`: the summary of a results file (any order, any engine) of this grid.
fn aggregate_file(a: &Args, file: &str, runs: &[RunSpec], grid: &Grid) -> Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Io(format!("{file}: {e}")))?;
    let back = read_results(&text, runs)?;
    if let Some(line) = back.foreign.first() {
        return Err(Error::config(
            "aggregate",
            format!(
                "{file} line {line}: not a run of this grid ({} such lines; was it written for another grid?)",
                back.foreign.len()
            ),
        ));
    }
    let missing: Vec<String> = runs
        .iter()
        .filter(|r| !back.done.contains_key(&r.index))
        .map(run_id)
        .collect();
    eprintln!(
        "aggregate: {} of {} runs in {file}{}{}",
        back.done.len(),
        runs.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (missing: {})", missing.join(" "))
        },
        if back.cut_short {
            " (its last line was cut short and left out)"
        } else {
            ""
        }
    );
    report(a, grid, back.done.into_values().collect())
}

/// Runs `runs` (the grid's, or one shard's), writing `--out` and resuming from it, then reports.
fn run_grid(a: &Args, runs: &[RunSpec], all_runs: &[RunSpec], grid: &Grid) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = a.get_or("threads", cores)?;
    if threads == 0 {
        return Err(Error::config("threads", "must be at least 1"));
    }
    let configs = all_runs.last().map_or(0, |r| r.config_index + 1);
    eprintln!(
        "sweep {:?}: {} runs ({} configs), {} threads",
        grid.settings.name,
        runs.len(),
        configs,
        threads.min(runs.len())
    );
    let mut done: BTreeMap<usize, RunResult> = BTreeMap::new();
    if a.flag("resume") {
        let out = a
            .str("out")
            .ok_or_else(|| Error::config("resume", "needs --out FILE"))?;
        if let Ok(old) = std::fs::read_to_string(out) {
            let back = read_results(&old, all_runs)?;
            let mine = |i: &usize| runs.iter().any(|r| r.index == *i);
            done = back.done.into_iter().filter(|(i, _)| mine(i)).collect();
        }
        eprintln!(
            "resume: {} of {} runs already in {out}",
            done.len(),
            runs.len()
        );
    }
    let mut out_file = match a.str("out") {
        Some(p) => {
            if let Some(dir) = std::path::Path::new(p).parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::File::create(p)?;
            for r in done.values() {
                writeln!(f, "{}", serde_json::to_string(r)?)?;
            }
            Some(f)
        }
        None => None,
    };
    let todo: Vec<RunSpec> = runs
        .iter()
        .filter(|r| !done.contains_key(&r.index))
        .cloned()
        .collect();
    let results = run_pool(todo, grid, threads, |r| {
        if let Some(f) = out_file.as_mut() {
            writeln!(f, "{}", serde_json::to_string(r)?)?;
            f.flush()?;
        }
        Ok(())
    })?;
    done.extend(results.into_iter().map(|r| (r.spec.index, r)));
    report(a, grid, done.into_values().collect())
}

/// The per-config summary (`--json` or a table) and, with `--links`, one page link per config.
fn report(a: &Args, grid: &Grid, all: Vec<RunResult>) -> Result<()> {
    let summary = aggregate(&all);
    if a.flag("json") {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"name": grid.settings.name, "settings": grid.settings, "configs": summary})
            )?
        );
    } else {
        print_table(&summary, grid.settings.target);
    }
    if a.flag("links") {
        // one link per config: its first run (seed) opens in the page
        let mut seen = std::collections::BTreeSet::new();
        for r in all.iter().filter(|r| seen.insert(r.spec.config_index)) {
            println!(
                "{}: {}",
                r.spec.label_text(),
                toyformer::sweep::page_fragment(&r.spec)
            );
        }
    }
    Ok(())
}

/// Runs `todo` on `threads` workers; `on_done` sees each result as it arrives (main
/// thread). A run that cannot start stops the sweep with its error.
fn run_pool(
    todo: Vec<RunSpec>,
    grid: &Grid,
    threads: usize,
    mut on_done: impl FnMut(&RunResult) -> Result<()>,
) -> Result<Vec<RunResult>> {
    let n = todo.len();
    let todo = Arc::new(todo);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Result<RunResult>>();
    let t0 = std::time::Instant::now();
    let mut handles = Vec::new();
    for _ in 0..threads.min(n) {
        let (todo, next, tx, settings) = (
            todo.clone(),
            next.clone(),
            tx.clone(),
            grid.settings.clone(),
        );
        handles.push(std::thread::spawn(move || {
            let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(Error::Backend(format!("thread pool: {e}"))));
                    return;
                }
            };
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= todo.len() {
                    return;
                }
                let r = pool.install(|| run_one(&todo[i], &settings));
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut out = Vec::with_capacity(n);
    for r in rx {
        let r = r?;
        on_done(&r)?;
        let ev = r.eval.as_ref();
        eprintln!(
            "[{}/{n} {:.0}s] run {} seed {} | {} | loss {:.4} (floor {:.4}) | eval algo acc {} | to {:.0}%: {}{}",
            out.len() + 1,
            t0.elapsed().as_secs_f64(),
            r.spec.index,
            r.spec.seed,
            r.spec.label_text(),
            r.final_loss,
            r.floor,
            ev.map_or("-".into(), |e| format!("{:.4}", e.algo_acc)),
            100.0 * grid.settings.target,
            r.steps_to_target.map_or("never".into(), |s| s.to_string()),
            r.error.as_ref().map_or(String::new(), |e| format!(" | {e}")),
        );
        out.push(r);
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(out)
}

fn mmm(s: &Stat, prec: usize) -> String {
    if s.n == 0 {
        return "-".into();
    }
    if s.n == 1 || s.min == s.max {
        return format!("{:.*}", prec, s.mean);
    }
    format!(
        "{:.*} [{:.*}, {:.*}]",
        prec, s.mean, prec, s.min, prec, s.max
    )
}

fn print_table(rows: &[ConfigSummary], target: f64) {
    let head = [
        "config",
        "runs",
        "params",
        "final loss",
        "floor",
        "excess",
        "eval algo acc",
        "eval algo loss",
        &format!("steps to {:.0}%", 100.0 * target),
    ];
    let mut table: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for c in rows {
        let reached = format!(
            "{}/{} {}",
            c.steps_to_target.n,
            c.runs,
            if c.steps_to_target.n > 0 {
                mmm(&c.steps_to_target, 0)
            } else {
                String::new()
            }
        );
        let mut runs = c.runs.to_string();
        if c.failed > 0 {
            runs += &format!(" ({} failed)", c.failed);
        }
        table.push(vec![
            label_text(&c.label),
            runs,
            c.n_params.to_string(),
            mmm(&c.final_loss, 4),
            format!("{:.4}", c.floor),
            mmm(&c.excess, 4),
            mmm(&c.eval_algo_acc, 4),
            mmm(&c.eval_algo_loss, 4),
            reached.trim_end().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|j| {
            table
                .iter()
                .map(|r| r[j].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, r) in table.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            println!(
                "|{}|",
                widths
                    .iter()
                    .map(|&w| "-".repeat(w + 2))
                    .collect::<Vec<_>>()
                    .join("|")
            );
        }
    }
}
