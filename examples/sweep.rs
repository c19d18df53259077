//! Run a sweep grid (see `toyformer::sweep::grid` for the format) and summarise it.
//!
//! cargo run --release --example sweep -- --grid FILE.json [--threads N] [--json]
//!     [--out results.jsonl [--resume]] [--dry-run] [--links]
//!
//! Runs go to a pool of N worker threads (default: the machine's cores), each run on its
//! own one-thread rayon pool, so a run's numbers do not depend on N. `--out` writes one
//! JSON line per finished run (`RunResult`), in the order they finish; with `--resume`,
//! runs already in that file with the same spec are read back instead of run again.
//! `--json` prints the per-config summaries as one JSON document on stdout; otherwise a
//! table goes to stdout. Progress goes to stderr. `--links` prints, per config, the page
//! link that opens its first run (`sweep::page_fragment`).
mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use toyformer::sweep::{
    aggregate, grid::label_text, run_one, ConfigSummary, Grid, RunResult, RunSpec, Stat,
};
use toyformer::{Error, Result};

fn main() {
    main_with(run)
}

fn run() -> Result<()> {
    let a = Args::parse(&["json", "resume", "dry-run", "links"])?;
    a.check_known(&["grid", "threads", "out"])?;
    let path = a
        .str("grid")
        .ok_or_else(|| Error::config("grid", "missing: --grid FILE.json"))?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    let grid = Grid::from_json(&text)?;
    let runs = grid.expand()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = a.get_or("threads", cores)?;
    if threads == 0 {
        return Err(Error::config("threads", "must be at least 1"));
    }
    let configs = runs.last().map_or(0, |r| r.config_index + 1);
    eprintln!(
        "sweep {:?}: {} runs ({} configs), {} threads",
        grid.settings.name,
        runs.len(),
        configs,
        threads.min(runs.len())
    );
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
    let mut done: BTreeMap<usize, RunResult> = BTreeMap::new();
    if a.flag("resume") {
        let out = a
            .str("out")
            .ok_or_else(|| Error::config("resume", "needs --out FILE"))?;
        if let Ok(old) = std::fs::read_to_string(out) {
            for line in old.lines().filter(|l| !l.trim().is_empty()) {
                let r: RunResult = serde_json::from_str(line)?;
                if runs.get(r.spec.index) == Some(&r.spec) {
                    done.insert(r.spec.index, r);
                }
            }
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
    let results = run_pool(todo, &grid, threads, |r| {
        if let Some(f) = out_file.as_mut() {
            writeln!(f, "{}", serde_json::to_string(r)?)?;
            f.flush()?;
        }
        Ok(())
    })?;
    done.extend(results.into_iter().map(|r| (r.spec.index, r)));
    let all: Vec<RunResult> = done.into_values().collect();
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
