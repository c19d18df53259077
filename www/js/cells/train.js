// The Train cell: starting, pausing, resuming and resetting the run in the training worker, its
// progress line and charts, loading a model as a paused run, and exporting its weights.
import * as S from '../state.js';
import { app, hook, setPhase, emit, request } from '../app.js';
import { Charts } from '../plots.js';
import { analysis } from '../interp/analysis.js';
import { fmtInt } from '../views.js';
import { fillFromRun, refresh, showError } from '../form.js';
import { evaluate, clearEvaluation } from './evaluate.js';

const $ = (id) => document.getElementById(id);

/** Fresh charts (and test-hook rows) for a run, a loaded one's with its curves' `rows`. A finite
 * dataset's charts also plot the train and test splits' curves (onSplitEval). */
function newCharts(rows = null) {
  app.charts?.destroy();
  app.charts = new Charts($('charts'), app.info.loss_floor, { splits: S.isFiniteTask(app.values.task) });
  if (rows) app.charts.push(rows);
  hook.rows = [...(rows ?? [])];
  hook.splits = [];
  clearEvaluation();
}

/** How often the worker evaluates a finite dataset's splits for the curves (0: a sampled task). */
const evalEvery = () => (S.isFiniteTask(app.values.task) ? app.values.eval_every ?? 0 : 0);

/** Starts training with the form's settings (when valid and no model exists). */
export function start() {
  if (!app.valid || app.phase !== 'idle') return;
  newCharts();
  app.runInfo = { task: app.values.task, total: app.values.steps, started: performance.now() };
  const run = runSpec();
  app.worker.postMessage({
    type: 'start', ...run, backend: app.values.backend, evalEvery: evalEvery(), workers: app.values.workers,
  });
  analysis.onStart(run.task, run.model);
  setPhase('training');
  emit('start', run);
}

/** The task, model and train configs of the form's values. */
export function runSpec() {
  const v = app.values;
  return { task: S.taskSpec(v), model: S.modelConfig(v, app.info.default_model), train: S.trainConfig(v) };
}

/** Starts training from scratch with the form's settings, dropping any model first. */
export function replay() {
  if (app.phase === 'idle') return start();
  app.afterReset = start;
  app.worker.postMessage({ type: 'reset' });
}

// Loading a model (an import, a link's weights, a saved run): the worker builds the session
// and replies 'loaded' with its {task, model, train, step}; the page shows it as a paused
// run whose curves are `rows` (empty for a model that comes without its history).
export async function load(msg, rows = [], transfer = []) {
  emit('load-start', msg.kind);
  let m;
  try {
    m = await request(msg, transfer);
  } catch (e) {
    emit('load-failed', e);
    throw e;
  }
  const { task, model, train, step } = m.info;
  fillFromRun(task, model, train);
  setPhase('paused'); // the form is locked before refresh reads it
  refresh();
  newCharts(rows);
  app.worker.postMessage({ type: 'eval-every', every: evalEvery() }); // curves from the next point on
  app.runInfo = { task: task.task, total: train.steps };
  $('progress').value = Math.min(step / train.steps, 1);
  $('progress-text').textContent = `step ${fmtInt(step)} / ${fmtInt(train.steps)} · loaded${step < train.steps ? ' · Resume trains on' : ''}`;
  setPhase(step >= train.steps ? 'done' : 'paused');
  evaluate();
  analysis.onLoaded(task, model); // the worker posts the loaded weights as a snapshot next
  emit('loaded', { ...m, kind: msg.kind, source: msg.source });
  return m;
}

function fmtTime(s) {
  if (!Number.isFinite(s)) return '–';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

/** Metrics rows from the worker: the charts, the progress line and the cell's summary. */
export function onMetrics({ rows, last, total }) {
  hook.rows.push(...rows);
  app.charts.push(rows);
  analysis.onMetrics(rows);
  $('progress').value = last.step / total;
  const eta = (total - last.step) / last.steps_per_s;
  $('progress-text').textContent = `step ${fmtInt(last.step)} / ${fmtInt(total)} · ${last.steps_per_s.toFixed(1)} steps/s · ETA ${fmtTime(eta)}`;
  $('train-brief').textContent = `step ${fmtInt(last.step)} / ${fmtInt(total)} · loss ${last.loss.toFixed(4)} · token acc ${(last.token_acc * 100).toFixed(1)}%`;
}

/** A finite dataset's train/test figures at one step ({step, train, test, full}): the curves. */
export function onSplitEval(point) {
  hook.splits.push(point);
  app.charts.pushSplit(point);
}

export function onPaused() {
  setPhase('paused');
  evaluate();
}

export function onDone() {
  setPhase('done');
  $('progress-text').textContent += ' · done';
  evaluate();
  analysis.onDone();
}

/** The worker dropped its model: the form unlocks, and a replay waiting for this starts. */
export function onReset() {
  setPhase('idle');
  refresh();
  analysis.onReset();
  const then = app.afterReset;
  app.afterReset = null;
  then?.();
}

/** A training failure (at the start, or during a run). */
export function onTrainError(message, during) {
  showError('train', [message]);
  if (during === 'start') setPhase('idle');
  else if (app.phase === 'training') setPhase('paused');
}

/** The exported weights, downloaded as a .safetensors file. */
export function download({ bytes, steps }) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: `toyformer-${app.runInfo.task}-step${steps}.safetensors` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function initTrainCell() {
  const post = (type) => app.worker.postMessage({ type });
  $('btn-start').onclick = start;
  $('btn-pause').onclick = () => post('pause');
  $('btn-resume').onclick = () => { post('resume'); setPhase('training'); };
  $('btn-reset').onclick = () => post('reset');
  $('btn-export').onclick = () => post('export');
  addEventListener('resize', () => app.charts?.resize());
  app.on('controls', (p) => {
    const live = app.hasModel();
    $('btn-start').disabled = p !== 'idle' || !app.valid;
    $('btn-pause').disabled = p !== 'training';
    $('btn-resume').disabled = p !== 'paused';
    $('btn-reset').disabled = !live;
    $('btn-export').disabled = !live || p === 'training';
  });
}
