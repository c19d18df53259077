// The Sweep cell: a grid of settings (JSON, the format of src/sweep/grid.rs and of
// `cargo run --example sweep -- --grid FILE.json`) expanded into runs that train in parallel Web
// Workers (sweep.js, one run per worker); a sortable table of the per-config results (mean over
// seeds, [min, max]) and a plot of final loss against the task's floor. Every row opens its
// config's first run (seed) in a new tab. A results file (JSON lines: this cell's download,
// `examples/sweep --out`, pkg-config/ray_sweep.py on a Ray cluster) loads into the same table and plot.
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { aggregate, expandGrid, runLink, runsOnData, runSweep, sortRows } from '../sweep.js';
import { app } from '../app.js';
import { sweepWorkers, trainingCap } from '../cores.js';
import { dataLinkKeys, dataPatch } from './data.js';

/** The grid the cell starts with: n and depth of the permutations task, two seeds each. */
export const EXAMPLE_GRID = `{
  "name": "permutations: n and layers",
  "task": "permutations",
  "n": [3, 4],
  "n_layers": [1, 2],
  "d_model": 32, "d_head": 16,
  "steps": 300, "batch_size": 16, "lr": 0.003,
  "seed": [0, 1]
}`;

const $ = (id) => document.getElementById(id);
const num = (v, d = 4) => (v == null || Number.isNaN(v) ? '–' : Number(v).toFixed(d));
const pct = (v) => (v == null || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(1)}%`);
// A Stat {n, mean, min, max}: the mean, and [min, max] when several runs differ.
const stat = (s, f) => {
  if (!s || s.n === 0 || s.mean == null) return '–';
  return s.n > 1 && s.min !== s.max ? `${f(s.mean)} [${f(s.min)}, ${f(s.max)}]` : f(s.mean);
};
const labelText = (label) => Object.entries(label).map(([k, v]) => `${k}=${v === null ? 'none' : v}`).join(' ') || '–';

/** Table columns: header, the key sortRows sorts by, and the cell text of a summary row. */
const COLUMNS = [
  { title: '#', key: 'config_index', text: (r) => String(r.config_index + 1) },
  { title: 'config', key: 'label_text', text: (r) => r.label_text },
  { title: 'params', key: 'n_params', text: (r) => r.n_params.toLocaleString('en-US') },
  { title: 'final loss', key: 'final_loss.mean', text: (r) => stat(r.final_loss, num) },
  { title: 'floor', key: 'floor', text: (r) => num(r.floor) },
  { title: 'loss − floor', key: 'excess.mean', text: (r) => stat(r.excess, num) },
  { title: 'algorithm acc', key: 'eval_algo_acc.mean', text: (r) => stat(r.eval_algo_acc, pct),
    hint: 'greedy accuracy after the first term on fresh samples (held-out combinations when the task has a split)' },
  { title: 'train-split acc', key: 'train_split_algo_acc.mean', text: (r) => stat(r.train_split_algo_acc, pct),
    hint: 'the same on combinations training draws from (only with a held-out split)',
    shown: (rs) => rs.some((r) => r.train_split_algo_acc?.n > 0) },
  { title: 'steps to target', key: 'steps_to_target.mean',
    text: (r) => (r.steps_to_target.n ? `${stat(r.steps_to_target, (v) => Math.round(v).toString())} (${r.steps_to_target.n}/${r.runs})` : `– (0/${r.runs})`),
    hint: 'first evaluation step with algorithm accuracy at or above the target (runs that reached it / runs)' },
  { title: 'runs', key: 'runs', text: (r) => (r.failed ? `${r.runs} (${r.failed} failed)` : String(r.runs)) },
];

let job = null;
let sweep = null; // {settings, runs}
let results = [];
let rows = []; // summary rows (aggregate), each with label_text and link added
let sortKey = 'config_index';
let ascending = true;
let plot = null;
let started = 0;
let failures = [];
let onData = null; // the data file a custom task's runs train on (dataPatch), or null

/** Wires the cell; `hook` is window.__toyformer (tests read `hook.sweep`). */
export function initSweepCell(hook) {
  $('sweep-grid').value = EXAMPLE_GRID;
  $('btn-sweep-run').onclick = () => start(hook);
  $('btn-sweep-cancel').onclick = () => cancel('cancelled');
  $('btn-sweep-example').onclick = () => { $('sweep-grid').value = EXAMPLE_GRID; };
  $('btn-sweep-download').onclick = download;
  $('btn-sweep-load').onclick = () => pickResults(hook);
  hook.sweep = { state: 'idle', rows: [], results: [], errors: [] };
}

// Sweep workers (cores.js: the budget, less one while a run trains, unless the setting says).
function workerCount() {
  const v = Number($('sweep-grid').closest('.cell').querySelector('[name="sweep_workers"]')?.value);
  return sweepWorkers(Number.isInteger(v) ? v : 0, app.phase === 'training');
}

// Caps the training run's CPU pool to the cores the sweep leaves (cap 0: the sweep is over).
function shareCores(sweepWorkerCount) {
  app.worker?.postMessage({ type: 'workers-cap', cap: sweepWorkerCount ? trainingCap(sweepWorkerCount) : 0 });
}

function setStatus(text) {
  $('sweep-status').textContent = text;
}

function showError(text) {
  $('sweep-grid-error').textContent = text;
  $('sweep-grid-error').hidden = !text;
}

async function start(hook) {
  if (job) return;
  showError('');
  onData = null;
  try {
    sweep = await expandGrid($('sweep-grid').value);
    onData = await customRuns(sweep);
  } catch (e) {
    showError(`grid: ${String(e?.message ?? e)}`);
    hook.sweep = { ...hook.sweep, state: 'error', error: String(e?.message ?? e) };
    return;
  }
  results = [];
  rows = [];
  failures = [];
  started = performance.now();
  const n = sweep.runs.length;
  const workers = Math.min(workerCount(), n);
  shareCores(workers);
  hook.sweep = { state: 'running', rows: [], results: [], errors: [], total: n, workers, data: onData && { name: onData.name, hash: onData.hash } };
  $('btn-sweep-run').disabled = true;
  $('btn-sweep-cancel').disabled = false;
  setStatus(`0 / ${n} runs done · ${workers} worker${workers === 1 ? '' : 's'}${dataNote()}`);
  render(hook);
  job = runSweep(sweep, {
    workers,
    onResult: (r, done, total) => {
      results.push(r);
      setStatus(`${done} / ${total} runs done · ${workers} worker${workers === 1 ? '' : 's'}${failures.length ? ` · ${failures.length} failed` : ''}`);
      update(hook);
    },
    onError: (index, message) => {
      const run = sweep.runs[index];
      failures.push(`run ${index + 1}${run ? ` (${labelText(run.label)}, seed ${run.seed})` : ''}: ${message}`);
      showError(failures.join('\n'));
      hook.sweep.errors = [...failures];
    },
    onDone: () => {
      job = null;
      shareCores(0);
      $('btn-sweep-run').disabled = false;
      $('btn-sweep-cancel').disabled = true;
      const s = ((performance.now() - started) / 1000).toFixed(1);
      setStatus(`${results.length} / ${n} runs done in ${s} s${failures.length ? ` · ${failures.length} failed` : ''}${dataNote()}`);
      update(hook).then(() => { hook.sweep.state = 'done'; });
    },
  });
}

// A custom task's runs train on the Data cell's file (the data the Train cell uses), re-made from it
// with their own split parameters and models sized from it, as `examples/sweep --data FILE` does.
async function customRuns(s) {
  const custom = s.runs.flatMap((r, i) => (r.task.task === 'custom' ? [i] : []));
  const patch = custom.length ? dataPatch() : null;
  if (!patch) return null;
  const made = await runsOnData(custom.map((i) => s.runs[i]), patch);
  custom.forEach((i, k) => { s.runs[i] = made[k]; });
  return patch;
}

// ' · on FILE' for a custom task's sweep, so the status says which data the runs train on.
const dataNote = () => {
  if (onData) return ` · on ${onData.name || 'the data file'}`;
  return sweep?.runs.some((r) => r.task.task === 'custom') ? ' · no data file loaded (Data cell): the built-in example' : '';
};

function cancel(why) {
  if (!job) return;
  job.cancel();
  job = null;
  shareCores(0);
  $('btn-sweep-run').disabled = false;
  $('btn-sweep-cancel').disabled = true;
  setStatus(`${why}: ${results.length} / ${sweep.runs.length} runs done`);
}

// Re-aggregates the finished runs and redraws the table and the plot.
async function update(hook) {
  const summary = await aggregate(results);
  const first = new Map();
  for (const run of sweep.runs) if (!first.has(run.config_index)) first.set(run.config_index, run);
  rows = await Promise.all(summary.map(async (r) => ({
    ...r, label_text: labelText(r.label), link: await rowLink(first.get(r.config_index)),
  })));
  hook.sweep.rows = rows;
  hook.sweep.results = [...results];
  render(hook);
}

// The page link of a run; a custom task's carries its data (packed or its URL) and hash.
async function rowLink(run) {
  const link = await runLink(run);
  return run?.task.task === 'custom' && onData && run.task.hash === onData.hash ? link + dataLinkKeys(onData) : link;
}

// The finished runs as JSON lines (RunResult, as `examples/sweep --out` writes them), so a sweep run in
// the page can be analysed in Python or continued on the command line with --resume.
function download() {
  if (!results.length) return;
  const text = results.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const name = (sweep?.settings?.name || 'sweep').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'sweep';
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/jsonl' }));
  a.download = `toyformer-sweep-${name}.jsonl`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Largest results file the cell reads (about 50 000 runs of a typical grid). */
const MAX_RESULTS_BYTES = 200 * 1024 * 1024;

/**
 * Parses JSON-lines results text: one RunResult a line, any order. A line that is not JSON or has no
 * `spec.index` is an error naming its line number; a last line cut short (no newline, not JSON) is
 * skipped, as a writer stopped mid-line leaves it; a run repeated keeps its first line.
 */
export function parseResultLines(text) {
  const lines = text.split('\n');
  const byIndex = new Map();
  let cutShort = false;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let r;
    try {
      r = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1) { cutShort = true; return; }
      throw new Error(`line ${i + 1} is not JSON (${e.message})`);
    }
    if (!Number.isInteger(r?.spec?.index) || !Number.isInteger(r?.spec?.config_index)) {
      throw new Error(`line ${i + 1} is not a run result (no spec.index / spec.config_index)`);
    }
    if (!byIndex.has(r.spec.index)) byIndex.set(r.spec.index, r);
  });
  if (!byIndex.size) throw new Error('no run results in it');
  return { results: [...byIndex.values()].sort((a, b) => a.spec.index - b.spec.index), cutShort };
}

function pickResults(hook) {
  if (job) return;
  const input = document.createElement('input');
  input.type = 'file';
  input.accept = '.jsonl,.json,.txt';
  input.onchange = () => { if (input.files?.[0]) loadResults(hook, input.files[0]); };
  input.click();
}

// Shows a results file: the Rust aggregation (wasm) reads every line as a RunResult, so a file of
// the wrong shape is refused with serde's message naming the field.
async function loadResults(hook, file) {
  showError('');
  hook.sweep = { ...hook.sweep, state: 'loading' };
  let parsed;
  try {
    if (file.size > MAX_RESULTS_BYTES) throw new Error(`${file.size} bytes is more than the ${MAX_RESULTS_BYTES} this cell reads`);
    parsed = parseResultLines(await file.text());
    await aggregate(parsed.results);
  } catch (e) {
    const msg = `${file.name}: ${String(e?.message ?? e)}`;
    showError(msg);
    hook.sweep = { ...hook.sweep, state: 'error', error: msg };
    return;
  }
  results = parsed.results;
  failures = [];
  sweep = { settings: { name: file.name.replace(/\.jsonl?$/i, '') }, runs: results.map((r) => r.spec) };
  hook.sweep = { state: 'loading', rows: [], results: [], errors: [], total: results.length, file: file.name };
  await update(hook);
  const configs = new Set(results.map((r) => r.spec.config_index)).size;
  setStatus(`${results.length} runs (${configs} configs) loaded from ${file.name}${parsed.cutShort ? ' · its last line was cut short and left out' : ''}`);
  hook.sweep.state = 'loaded';
}

function render(hook) {
  const table = $('sweep-table');
  const head = document.createElement('tr');
  // columns without a value in any row (the train split when no config has one) are left out
  const columns = COLUMNS.filter((c) => !c.shown || c.shown(rows));
  for (const c of columns) {
    const th = document.createElement('th');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'sort';
    b.dataset.key = c.key;
    b.textContent = c.title + (sortKey === c.key ? (ascending ? ' ▲' : ' ▼') : '');
    if (c.hint) b.title = c.hint;
    b.onclick = () => {
      ascending = sortKey === c.key ? !ascending : true;
      sortKey = c.key;
      render(hook);
    };
    th.append(b);
    head.append(th);
  }
  head.append(document.createElement('th'));
  const body = document.createElement('tbody');
  const sorted = sortRows(rows, sortKey, ascending);
  hook.sweep.order = sorted.map((r) => r.config_index);
  for (const r of sorted) {
    const tr = document.createElement('tr');
    tr.dataset.config = String(r.config_index);
    for (const c of columns) {
      const td = document.createElement('td');
      td.textContent = c.text(r);
      tr.append(td);
    }
    const td = document.createElement('td');
    const a = document.createElement('a');
    a.href = r.link; // '#v=1&...': this page with the run's settings
    a.target = '_blank';
    a.rel = 'noopener';
    a.textContent = 'open';
    a.title = 'open this config (its first seed) in a new tab';
    td.append(a);
    tr.append(td);
    body.append(tr);
  }
  const thead = document.createElement('thead');
  thead.append(head);
  table.replaceChildren(thead, body);
  $('sweep-empty').hidden = rows.length > 0;
  $('btn-sweep-download').disabled = results.length === 0;
  drawPlot();
}

// Final loss (mean and range over seeds) and the floor per config, and the algorithm accuracy.
function drawPlot() {
  const byConfig = [...rows].sort((a, b) => a.config_index - b.config_index);
  const x = byConfig.map((r) => r.config_index + 1);
  const v = (f) => byConfig.map((r) => (f(r) == null || Number.isNaN(f(r)) ? null : f(r)));
  const data = [x, v((r) => r.final_loss.mean), v((r) => r.final_loss.min), v((r) => r.final_loss.max),
    v((r) => r.floor), v((r) => r.eval_algo_acc.mean)];
  if (!plot) {
    const dots = (label, stroke, size) => ({ label, stroke, fill: stroke, width: 0, paths: () => null, points: { show: true, size, fill: stroke } });
    plot = new uPlot({
      title: 'final loss per config (dots: mean, min, max over seeds) · floor · algorithm accuracy',
      width: 900, height: 220,
      scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.5, hi + 0.5] }, loss: {}, acc: { range: [0, 1] } },
      axes: [
        { label: 'config #', size: 36, incrs: [1, 2, 5, 10, 20, 50, 100] },
        { scale: 'loss', size: 56, values: (u, vals) => vals.map((t) => (t == null ? '' : +t.toPrecision(2))) },
        { scale: 'acc', side: 1, size: 48, grid: { show: false }, values: (u, vals) => vals.map((t) => `${Math.round(t * 100)}%`) },
      ],
      series: [
        { label: 'config' },
        { ...dots('final loss', '#1f5fa8', 9), scale: 'loss' },
        { ...dots('min', '#8fb0d6', 5), scale: 'loss' },
        { ...dots('max', '#8fb0d6', 5), scale: 'loss' },
        { label: 'floor', stroke: '#b0413e', width: 1.5, dash: [6, 4], scale: 'loss', points: { show: false } },
        { ...dots('algorithm acc', '#5b8c3a', 7), scale: 'acc' },
      ],
      legend: { live: true },
    }, data, $('sweep-plot'));
  } else {
    plot.setData(data);
  }
}
