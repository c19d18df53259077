// Autosave and the Runs cell. Every experiment (a training run, an imported model) is a run
// in IndexedDB (store.js): its configs, its metrics history, a checkpoint (weights and AdamW
// state) and its timeline snapshots (when a module provides app.snapshots), saved every
// AUTOSAVE_MS while it trains and whenever it pauses or ends. A reload of the tab restores the
// run it was showing, exactly (training resumes bit-identically); the Runs cell lists every
// saved run to reopen, compare, rename or delete. Storage errors (a full quota above all) are
// shown, never swallowed.
import * as store from '../store.js';
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { isReturn } from '../share.js';

const AUTOSAVE_MS = 2000;
// A save never takes more than 1/10 of the time: big models are saved less often than every 2 s.
const MAX_SAVE_SHARE = 0.1;
const ACTIVE = 'toyformer.activeRun'; // sessionStorage: the run this tab shows (survives a reload)
const $ = (id) => document.getElementById(id);
let app = null;
let run = null; // the record of the run the page shows, or null
let timer = null;
let chain = 0; // the autosave timer chain that is current (a phase change starts a new one)
let lastSaveMs = 0; // how long the last save took
let asked = false; // persistent storage requested
let lastPhase = 'loading';
let compareChart = null;
const compared = []; // ids of the (at most two) runs checked for comparison

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function taskLabel(t) {
  if (t.task === 'custom') return `custom: ${t.name || 'data'} (${(t.data ?? '').split('\n').filter((l) => l.trim()).length} lines, ${(t.data ?? '').length.toLocaleString('en-US')} chars)`;
  return { sort: `sort n=${t.n}`, permutations: `permutations n=${t.n}`, 'apply-perm': `apply-perm k=${t.k}` }[t.task] ?? t.task;
}

function newRun({ task, model, train }, source) {
  const name = `${taskLabel(task)} · ${model.n_layers}L${model.n_heads}H d${model.d_model} · seed ${train.seed}/${model.seed}`;
  return { id: store.newId(), name, created: Date.now(), status: 'training', source, task, model, train, steps_done: 0 };
}

function showStoreError(e) {
  const s = $('autosave-status');
  s.textContent = e.quota ? `Autosave is off: ${e.message} Training continues, but unsaved.` : `Autosave failed: ${e.message}`;
  s.hidden = false;
  app.hook.saveError = e.message;
}

let saving = null;
let again = false;
/** Saves the current run (record, metrics, checkpoint). One save at a time (a request
 * meanwhile runs after it); a run replaced meanwhile is not written. */
async function save() {
  if (!run) return;
  if (saving) {
    again = true;
    return saving;
  }
  const r = run;
  const t0 = performance.now();
  saving = (async () => {
    try {
      if (!asked) {
        asked = true;
        navigator.storage?.persist?.().catch(() => {}); // ask the browser not to evict the runs
      }
      const { ckpt } = await app.request({ type: 'checkpoint' });
      if (run !== r) return;
      const rows = app.rows.filter((x) => x.step < ckpt.step);
      // Final figures: means over the last (up to) 20 training batches, less noisy than one batch.
      const tail = rows.slice(-20);
      const mean = (k) => (tail.length ? tail.reduce((a, x) => a + x[k], 0) / tail.length : null);
      Object.assign(r, {
        steps_done: ckpt.step, status: app.phase === 'training' ? 'training' : app.phase,
        final_loss: mean('loss') ?? r.final_loss ?? null, final_token_acc: mean('token_acc') ?? r.final_token_acc ?? null,
      });
      // Timeline snapshots come from whoever keeps them (the analysis cells register
      // app.snapshots = () => [{step, weights: Float32Array, ...}]); restored with the 'snapshots' event.
      const snapshots = app.snapshots?.().filter((x) => x.step <= ckpt.step) ?? [];
      // A finite dataset's train/test curve points (the Train cell's eval_every curves).
      const splits = (app.hook.splits ?? []).filter((x) => x.step <= ckpt.step);
      await store.saveRun(r, { rows, ckpt, snapshots, splits });
      app.hook.lastSave = { id: r.id, step: ckpt.step, rows: rows.length, at: Date.now() };
      $('autosave-status').hidden = true;
      app.hook.saveError = null;
      $('autosave-info').textContent = `Autosaved “${r.name}” at step ${ckpt.step.toLocaleString('en-US')} (${new Date().toLocaleTimeString()}).`;
      if (!document.activeElement?.closest('#runs-table')) await renderRuns();
    } catch (e) {
      if (e.message.includes('there is no model')) return; // reset meanwhile
      showStoreError(e.store ? e : new Error(`saving the run failed: ${e.message}`));
    }
  })();
  try {
    await saving;
  } finally {
    saving = null;
    lastSaveMs = performance.now() - t0;
    if (again) {
      again = false;
      save();
    }
  }
}

/** Saves the run the page shows now (before the page replaces it); resolves false when saving
 * failed (the Runs cell shows why). */
export async function saveActiveRun() {
  await save();
  return !app.hook.saveError;
}

/** The next autosave while training: every AUTOSAVE_MS, or less often when saving is slow. */
function scheduleSave(gen = ++chain) {
  timer = setTimeout(async () => {
    await save();
    if (gen === chain && lastPhase === 'training') scheduleSave(gen);
  }, Math.max(AUTOSAVE_MS, lastSaveMs / MAX_SAVE_SHARE));
}

function onPhase(p) {
  const prev = lastPhase;
  lastPhase = p;
  clearTimeout(timer);
  timer = null;
  chain++;
  if (p === 'training') scheduleSave();
  if (p === 'paused' || p === 'done') save();
  if (p === 'idle' && prev !== 'loading' && prev !== 'idle') {
    // Reset: the run stays in the store; this tab no longer shows it.
    run = null;
    sessionStorage.removeItem(ACTIVE);
  }
  for (const b of document.querySelectorAll('#runs-table .open')) b.disabled = p === 'training';
}

function adopt(r) {
  run = r;
  sessionStorage.setItem(ACTIVE, r.id);
}

/** Puts a saved run's train/test curve points back on the Train cell's charts (app.load gave
 * it fresh ones); the worker adds the points after the checkpoint's step. */
function restoreSplits(points) {
  for (const p of points) {
    app.hook.splits.push(p);
    app.charts.pushSplit(p);
  }
}

/** Loads a saved run into the page (weights, optimiser state, curves) as a paused run. */
async function openRun(id, how) {
  const saved = await store.loadRun(id);
  if (!saved?.ckpt) throw new Error('this run has no saved checkpoint');
  run = null;
  await app.load({ type: 'load', kind: 'checkpoint', ckpt: saved.ckpt, train: saved.run.train, source: saved.run.name }, saved.rows);
  adopt(saved.run);
  app.emit('snapshots', saved.snapshots);
  restoreSplits(saved.splits);
  const when = new Date(saved.run.updated).toLocaleString();
  $('autosave-info').textContent = `${how} “${saved.run.name}” at step ${saved.ckpt.step.toLocaleString('en-US')} (saved ${when}). Resume continues exactly where it stopped.`;
  app.hook.restored = { id, step: saved.ckpt.step, rows: saved.rows.length };
}

/** After a reload: reopens the run this tab was showing (not when the tab opens another
 * link: that link wins). Resolves true when it did. */
export async function restoreActiveRun() {
  const id = sessionStorage.getItem(ACTIVE);
  await renderRuns();
  if (!id) return false;
  if (!isReturn()) {
    // this tab now shows another link: a later reload returns to that, not to the old run
    sessionStorage.removeItem(ACTIVE);
    return false;
  }
  try {
    await openRun(id, 'Restored');
    $('cell-runs').open = true;
    return true;
  } catch (e) {
    sessionStorage.removeItem(ACTIVE);
    showStoreError(e.store ? e : new Error(`restoring the last run failed: ${e.message}`));
    return false;
  }
}

const fmt = (x, d = 4) => (x == null ? '–' : Number(x).toFixed(d));
const pct = (x) => (x == null ? '–' : `${(x * 100).toFixed(1)}%`);

async function renderRuns() {
  let runs;
  try {
    runs = await store.listRuns();
  } catch (e) {
    showStoreError(e);
    return;
  }
  app.hook.runs = runs.map((r) => ({ id: r.id, name: r.name, steps_done: r.steps_done, status: r.status }));
  const body = $('runs-table').tBodies[0];
  body.replaceChildren(...runs.map(row));
  $('runs-empty').hidden = runs.length > 0;
  $('runs-table').hidden = runs.length === 0;
  $('runs-brief').textContent = runs.length ? `${runs.length} saved` : '';
}

function row(r) {
  const tr = el('tr');
  tr.dataset.id = r.id;
  if (run?.id === r.id) tr.classList.add('current');
  const pick = el('input', { type: 'checkbox', className: 'compare', checked: compared.includes(r.id), title: 'compare loss curves (pick two)' });
  pick.onchange = () => toggleCompare(r.id, pick.checked);
  const name = el('input', { type: 'text', className: 'run-name', value: r.name, spellcheck: false, title: 'rename: edit and press Enter' });
  name.onchange = async () => {
    const v = name.value.trim().slice(0, 120) || r.name;
    try {
      await store.renameRun(r.id, v);
      if (run?.id === r.id) run.name = v;
    } catch (e) {
      showStoreError(e);
    }
    await renderRuns();
    if (compared.includes(r.id)) drawCompare();
  };
  name.onkeydown = (e) => { if (e.key === 'Enter') name.blur(); };
  const open = el('button', { className: 'open', textContent: 'Open', disabled: app.phase === 'training', title: 'load this run: weights, curves and settings' });
  open.onclick = async () => {
    try {
      await openRun(r.id, 'Opened');
    } catch (e) {
      showStoreError(e.store ? e : new Error(`opening the run failed: ${e.message}`));
    }
  };
  const del = el('button', { className: 'delete', textContent: 'Delete' });
  del.onclick = async () => {
    if (!del.classList.contains('confirm')) {
      del.classList.add('confirm');
      del.textContent = 'Really delete?';
      setTimeout(() => { del.classList.remove('confirm'); del.textContent = 'Delete'; }, 4000);
      return;
    }
    try {
      await store.deleteRun(r.id);
      if (run?.id === r.id) { run = null; sessionStorage.removeItem(ACTIVE); }
      toggleCompare(r.id, false);
    } catch (e) {
      showStoreError(e);
    }
    renderRuns();
  };
  const steps = `${Number(r.steps_done).toLocaleString('en-US')} / ${Number(r.train.steps).toLocaleString('en-US')}`;
  tr.append(el('td', {}, pick), el('td', {}, name), el('td', { textContent: taskLabel(r.task) }), el('td', { className: 'num-cell', textContent: steps }),
    el('td', { className: 'num-cell', textContent: fmt(r.final_loss) }), el('td', { className: 'num-cell', textContent: pct(r.final_token_acc) }),
    el('td', { className: 'muted', textContent: `${r.status}${r.source ? ` · ${r.source}` : ''}` }), el('td', {}, open, ' ', del));
  return tr;
}

function toggleCompare(id, on) {
  const i = compared.indexOf(id);
  if (on && i < 0) compared.push(id);
  if (!on && i >= 0) compared.splice(i, 1);
  while (compared.length > 2) compared.shift();
  for (const c of document.querySelectorAll('#runs-table .compare')) c.checked = compared.includes(c.closest('tr').dataset.id);
  drawCompare();
}

const COLORS = ['#1f5fa8', '#c2572b'];

async function drawCompare() {
  compareChart?.destroy();
  compareChart = null;
  const box = $('runs-compare');
  box.replaceChildren();
  app.hook.compared = null;
  if (compared.length !== 2) {
    box.append(el('p', { className: 'muted', textContent: 'Tick two runs to compare their loss curves.' }));
    return;
  }
  const [runs, metrics] = await Promise.all([store.listRuns(), Promise.all(compared.map((id) => store.loadMetrics(id)))]);
  const names = compared.map((id) => runs.find((r) => r.id === id)?.name ?? id);
  // One x axis (step, from 1) for both; a run that stopped earlier has gaps after its end.
  const n = Math.max(...metrics.map((m) => m?.step.length ?? 0));
  const x = Array.from({ length: n }, (_, i) => i + 1);
  const ys = metrics.map((m) => x.map((_, i) => (m && i < m.loss.length && m.loss[i] > 0 ? m.loss[i] : null)));
  app.hook.compared = { names, points: ys.map((y) => y.filter((v) => v !== null).length) };
  const opts = {
    title: 'loss (nats, log scale)', width: Math.max(300, box.clientWidth - 8), height: 220,
    scales: { x: { time: false }, y: { distr: 3 } },
    axes: [{ label: 'step' }, { size: 54 }],
    series: [{ label: 'step' }, ...names.map((label, i) => ({ label, stroke: COLORS[i], width: 1.5, points: { show: false } }))],
  };
  compareChart = new uPlot(opts, [x, ...ys], box);
}

export function initRuns(a) {
  app = a;
  app.on('phase', onPhase);
  let before = null; // the run shown while another loads (kept if the load fails)
  app.on('load-start', () => { before = run; run = null; });
  app.on('load-failed', () => { run = before; });
  app.on('start', (spec) => {
    adopt(newRun(spec, 'trained here'));
    save();
  });
  app.on('loaded', (m) => {
    if (m.kind === 'checkpoint') return; // openRun adopts the saved record
    const { task, model, train } = m.info;
    adopt(newRun({ task, model, train }, m.source ?? m.kind));
    save();
  });
  drawCompare();
}
