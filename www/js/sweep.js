// Sweeps in the browser, one run per Web Worker (the Sweep cell, cells/sweep.js, drives it).
//
// The grid format, its expansion, each run and the per-config aggregation are the Rust library's
// (src/sweep, bound in src/wasm/sweep.rs), the same code as `cargo run --example sweep`, so a sweep
// gives the same numbers in the page and on the command line.
//
// Main thread:
//   const sweep = await expandGrid(gridText);          // {settings, runs} or throws naming the bad key
//   const job = runSweep(sweep, { workers, onResult, onError, onDone });   // job.cancel()
//   aggregate(results)                                   // [{config_index, label, final_loss: {n, mean, min, max}, ...}]
//   runsOnData(runs, data)                               // a custom task's runs re-made on a data file
//   runLink(run)                                         // '#v=1&task=permutations&perm_n=4&...' opens that run
//   sortRows(rows, key, ascending)                       // for the sortable results table
// Worker: this same module started with `new Worker(url, {type: 'module'})`: it answers
//   {type: 'run', index, run, settings} with {type: 'result', index, result} or {type: 'error', index, message}.
import init, { sweep_aggregate, sweep_expand, sweep_link, sweep_on_data, sweep_run } from '../pkg/toyformer.js';

const IN_WORKER = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;

if (IN_WORKER) {
  const ready = init();
  self.onmessage = async (e) => {
    const { index, run, settings } = e.data;
    try {
      await ready;
      const result = sweep_run(JSON.stringify(run), JSON.stringify(settings));
      self.postMessage({ type: 'result', index, result });
    } catch (err) {
      self.postMessage({ type: 'error', index, message: String(err?.message ?? err) });
    }
  };
}

let mainReady = null;
const ensureInit = () => (mainReady ??= init());

/** How many workers to start: one per core, one core left to the page, at most 8. */
export function defaultWorkers() {
  const cores = (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 2;
  return Math.max(1, Math.min(cores - 1, 8));
}

/** Parses and expands a grid (JSON text); throws the library's error, which names the bad key. */
export async function expandGrid(gridText) {
  await ensureInit();
  return sweep_expand(gridText);
}

/**
 * Runs every run of an expanded sweep, `workers` at a time, each in its own worker (one wasm
 * instance each; a run is single-threaded, so results do not depend on the worker count).
 * Callbacks: onResult(result, doneCount, total), onError(index, message), onDone(results in run order).
 */
export function runSweep(sweep, { workers = defaultWorkers(), onResult = () => {}, onError = () => {}, onDone = () => {} } = {}) {
  const { runs, settings } = sweep;
  const results = new Array(runs.length).fill(null);
  let next = 0;
  let finished = 0;
  let cancelled = false;
  const pool = new Set();
  const url = new URL(import.meta.url);
  const settle = () => {
    finished += 1;
    if (finished === runs.length && !cancelled) onDone(results);
  };
  // One worker; it takes the next run whenever it finishes one. A worker that dies (out of
  // memory, a crash) reports its run as failed and is replaced, so the sweep always ends.
  const start = () => {
    const w = new Worker(url, { type: 'module' });
    let current = -1;
    pool.add(w);
    const feed = () => {
      if (cancelled || next >= runs.length) {
        pool.delete(w);
        w.terminate();
        return;
      }
      current = next++;
      w.postMessage({ type: 'run', index: current, run: runs[current], settings });
    };
    w.onmessage = (e) => {
      const m = e.data;
      if (m.index !== current) return;
      current = -1;
      if (m.type === 'result') {
        results[m.index] = m.result;
        onResult(m.result, finished + 1, runs.length);
      } else {
        onError(m.index, m.message);
      }
      settle();
      feed();
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      pool.delete(w);
      w.terminate();
      if (cancelled) return;
      if (current >= 0) {
        onError(current, `its worker stopped: ${e.message || 'out of memory or a crash'}`);
        current = -1;
        settle();
      }
      if (next < runs.length) start();
    };
    feed();
  };
  for (let i = 0; i < Math.min(Math.max(1, workers), runs.length); i++) start();
  if (runs.length === 0) onDone(results);
  return {
    cancel() {
      cancelled = true;
      for (const w of pool) w.terminate();
      pool.clear();
    },
  };
}

/**
 * A custom task's runs re-made on a data file (`data`: {data, name, format, separator, hash}), each
 * run's split parameters kept and its model sized from the data: `examples/sweep --data FILE`.
 */
export async function runsOnData(runs, data) {
  await ensureInit();
  return sweep_on_data(JSON.stringify(runs), JSON.stringify(data));
}

/** Per-config mean/min/max over seeds of the finished results (nulls are skipped). */
export async function aggregate(results) {
  await ensureInit();
  return sweep_aggregate(JSON.stringify(results.filter((r) => r)));
}

/** The page fragment (`#v=1&...`, the keys of state.js) that opens one run. */
export async function runLink(run) {
  await ensureInit();
  return sweep_link(JSON.stringify(run));
}

/** Sorts summary rows by a dotted key ('eval_algo_acc.mean', 'label.n'); missing values last. */
export function sortRows(rows, key, ascending = true) {
  const get = (r) => key.split('.').reduce((o, k) => (o == null ? undefined : o[k]), r);
  return [...rows].sort((a, b) => {
    const x = get(a);
    const y = get(b);
    if (x == null || Number.isNaN(x)) return 1;
    if (y == null || Number.isNaN(y)) return -1;
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return ascending ? c : -c;
  });
}
