// The page controller: builds the forms from the properties table, validates them through
// the wasm library, drives the training worker and renders what it reports.
import init, { task_info, validate_model, task_samples } from '../pkg/toyformer.js';
import * as S from './state.js';
import { Charts } from './plots.js';
import { renderSeqs, renderBars, renderFacts } from './views.js';
import { analysis } from './interp/analysis.js';
import { readLink, writeLink, initShare, openLink } from './share.js';
import { initRuns, restoreActiveRun, saveActiveRun } from './cells/runs.js';
import { initWeights } from './cells/weights.js';
import { renderPresets } from './presets.js';
import { initSweepCell } from './cells/sweep.js';

const $ = (id) => document.getElementById(id);
const CELLS = ['task', 'model', 'train', 'sweep'];
const EVAL_SAMPLES = 1000;
const SHOWN = 5; // sample predictions shown (2 for long sequences)

const inputs = {}; // key → <input>/<select>
const touched = new Set(); // keys set by the URL or the user (task changes keep them)
let info = null; // task_info of the current task
let taskKey = ''; // JSON of the current task spec
let values = {};
let valid = false;
let phase = 'loading'; // loading | idle | training | paused | done
let worker = null;
let charts = null;
let runInfo = null; // {task, total} of the run in the worker
let link = null; // the decoded URL fragment the page was opened with
let afterReset = null; // what to do once the worker has reset (a replay)
const requests = new Map(); // req → {resolve, reject}: worker replies to app.request
let reqSeq = 0;
const listeners = {}; // event → [fn]: 'phase', 'start', 'load-start', 'load-failed', 'loaded', 'snapshots', 'worker'
let gpuName = null; // the WebGPU adapter's name, once detected (null: none)
let gpuFallback = false; // whether it is a software fallback adapter (auto does not use those)

// Test hook: read-only view of what the page shows.
const hook = (window.__toyformer = { phase, rows: [], lastEval: null, lastCompletion: null, chartPoints: () => charts?.length ?? 0 });

function setPhase(p) {
  const changed = p !== phase;
  phase = hook.phase = p;
  if (changed) emit('phase', p);
  const live = p !== 'idle' && p !== 'loading';
  // the experiment's settings lock while a model exists; the Sweep cell's own settings never do
  for (const [k, inp] of Object.entries(inputs)) inp.disabled = (live || p === 'loading') && !k.startsWith('sweep_');
  $('btn-start').disabled = p !== 'idle' || !valid;
  $('btn-pause').disabled = p !== 'training';
  $('btn-resume').disabled = p !== 'paused';
  $('btn-reset').disabled = !live;
  $('btn-export').disabled = !live || p === 'training';
  $('btn-eval').disabled = !live;
  $('try-input').disabled = $('btn-complete').disabled = !live;
}

function buildForms() {
  for (const p of S.PROPS) {
    const field = document.createElement('label');
    field.className = `field field-${p.type}`;
    field.dataset.key = p.key;
    const name = document.createElement('span');
    name.textContent = p.label;
    let inp;
    if (p.type === 'enum') {
      inp = document.createElement('select');
      for (const o of p.options) inp.append(new Option(o, o));
    } else {
      inp = document.createElement('input');
      inp.type = p.type === 'bool' ? 'checkbox' : 'text';
      if (p.type !== 'bool') inp.inputMode = p.type === 'int' ? 'numeric' : 'decimal';
    }
    inp.name = p.key;
    inp.addEventListener(p.type === 'bool' || p.type === 'enum' ? 'change' : 'input', () => {
      touched.add(p.key);
      refresh();
    });
    inputs[p.key] = inp;
    if (p.type === 'bool') field.append(inp, name);
    else field.append(name, inp);
    document.querySelector(`.params[data-cell="${p.cell}"]`).append(field);
  }
}

function setInput(p, v) {
  const inp = inputs[p.key];
  if (p.type === 'bool') inp.checked = v === true || v === 'true' || v === '1';
  else inp.value = String(v);
}

// Reads the form: values by key, and error messages by cell.
function readForm() {
  const vals = {};
  const errors = { task: [], model: [], train: [], sweep: [], view: [] };
  for (const p of S.PROPS) {
    const inp = inputs[p.key];
    const r = S.parseValue(p, p.type === 'bool' ? String(inp.checked) : inp.value);
    vals[p.key] = r.value;
    inp.closest('.field').classList.toggle('invalid', false);
    if (r.error) vals[p.key] = undefined;
    inp.dataset.error = r.error ?? '';
  }
  for (const p of S.PROPS) {
    const on = S.applies(p, vals);
    inputs[p.key].closest('.field').hidden = !on;
    const err = inputs[p.key].dataset.error;
    if (on && err) {
      errors[p.cell].push(err);
      inputs[p.key].closest('.field').classList.add('invalid');
    }
  }
  return { vals, errors };
}

function showError(cell, msgs) {
  const e = $(`${cell}-error`);
  e.textContent = msgs.join(' · ');
  e.hidden = msgs.length === 0;
}

function fmtInt(n) {
  return n.toLocaleString('en-US');
}

function refreshTask(vals, errors) {
  if (errors.task.length) return false;
  const spec = S.taskSpec(vals);
  const key = JSON.stringify(spec);
  if (key === taskKey) return true;
  try {
    info = task_info(key);
  } catch (e) {
    errors.task.push(e.message);
    info = null;
    taskKey = '';
    return false;
  }
  taskKey = key;
  // Model fields the user has not set follow the task's default model.
  for (const p of S.PROPS) if (p.default === 'model' && !touched.has(p.key)) setInput(p, S.defaultOf(p, info.default_model));
  const floor = info.loss_floor > 0 ? `${info.loss_floor.toFixed(4)} nats` : '0 (every target is determined by the prompt)';
  renderFacts($('task-facts'), [
    ['sequence length T', String(info.seq_len)],
    ['vocabulary', `${info.d_vocab} in, ${info.d_vocab_out} out`],
    ['scored positions', String(info.pred_positions.length)],
    ['loss floor', floor],
  ]);
  renderSeqs($('task-samples'), task_samples(key, 3, 0));
  $('task-brief').textContent = `${spec.task} · T = ${info.seq_len}`;
  $('try-input').placeholder = { sort: 'e.g. 3 1 4 1 5 9 2 6 5 3', permutations: 'e.g. abcd', 'apply-perm': 'e.g. 7 3 9 | 2 0 1' }[spec.task];
  return true;
}

function refreshModel(vals, errors) {
  const r = info && !errors.model.length ? validate_model(JSON.stringify(S.modelConfig(vals, info.default_model))) : null;
  if (!r?.ok) {
    if (r) errors.model.push(r.error);
    $('model-brief').textContent = 'invalid';
    $('model-facts').replaceChildren();
    return false;
  }
  renderFacts($('model-facts'), [
    ['parameters', fmtInt(r.n_params)],
    ['n_ctx', String(info.seq_len)],
    ['architecture', `${vals.n_layers} layer${vals.n_layers > 1 ? 's' : ''}, ${vals.n_heads} head${vals.n_heads > 1 ? 's' : ''}, ${vals.mlp ? `MLP ${vals.act_fn}` : 'attention-only'}${vals.ln ? ', LayerNorm' : ''}`],
  ]);
  $('model-brief').textContent = `${vals.n_layers}L ${vals.n_heads}H d_model ${vals.d_model} · ${fmtInt(r.n_params)} params`;
  return true;
}

function refresh() {
  let { vals, errors } = readForm();
  const taskOk = refreshTask(vals, errors);
  if (taskOk) ({ vals } = readForm()); // model defaults may have changed with the task
  const modelOk = refreshModel(vals, errors);
  for (const c of CELLS) showError(c, errors[c]);
  values = vals;
  valid = taskOk && modelOk && errors.train.length === 0;
  writeLink(vals, info?.default_model);
  if (phase === 'idle') $('train-brief').textContent = valid ? `${fmtInt(vals.steps)} steps, batch ${vals.batch_size}` : '';
  if (phase === 'idle' || phase === 'loading') showBackend();
  setPhase(phase);
}

function start() {
  if (!valid || phase !== 'idle') return;
  charts?.destroy();
  charts = new Charts($('charts'), info.loss_floor);
  hook.rows = [];
  hook.lastEval = hook.lastCompletion = null;
  runInfo = { task: values.task, total: values.steps, started: performance.now() };
  const run = runSpec();
  worker.postMessage({ type: 'start', ...run, backend: values.backend });
  analysis.onStart(run.task, run.model);
  setPhase('training');
  emit('start', run);
}

/** The task, model and train configs of the form's values. */
function runSpec() {
  return { task: S.taskSpec(values), model: S.modelConfig(values, info.default_model), train: S.trainConfig(values) };
}

/** Starts training from scratch with the form's settings, dropping any model first. */
function replay() {
  if (phase === 'idle') return start();
  afterReset = start;
  worker.postMessage({ type: 'reset' });
}

// Loading a model (an import, a link's weights, a saved run): the worker builds the session
// and replies 'loaded' with its {task, model, train, step}; the page shows it as a paused
// run whose curves are `rows` (empty for a model that comes without its history).
async function load(msg, rows = [], transfer = []) {
  emit('load-start', msg.kind);
  let m;
  try {
    m = await request(msg, transfer);
  } catch (e) {
    emit('load-failed', e);
    throw e;
  }
  const { task, model, train, step } = m.info;
  const vals = S.valuesFrom(task, model, train);
  for (const p of S.PROPS) {
    if (vals[p.key] === undefined || p.cell === 'view') continue;
    setInput(p, vals[p.key]);
    touched.add(p.key);
  }
  setPhase('paused'); // the form is locked before refresh reads it
  refresh();
  charts?.destroy();
  charts = new Charts($('charts'), info.loss_floor);
  charts.push(rows);
  hook.rows = [...rows];
  hook.lastEval = hook.lastCompletion = null;
  runInfo = { task: task.task, total: train.steps };
  $('progress').value = Math.min(step / train.steps, 1);
  $('progress-text').textContent = `step ${fmtInt(step)} / ${fmtInt(train.steps)} · loaded${step < train.steps ? ' · Resume trains on' : ''}`;
  setPhase(step >= train.steps ? 'done' : 'paused');
  evaluate();
  analysis.onLoaded(task, model); // the worker posts the loaded weights as a snapshot next
  emit('loaded', { ...m, kind: msg.kind, source: msg.source });
  return m;
}

/** Sends `msg` to the worker with a fresh `req` id; resolves with its reply, rejects with its error. */
function request(msg, transfer = []) {
  const req = ++reqSeq;
  return new Promise((resolve, reject) => {
    requests.set(req, { resolve, reject });
    worker.postMessage({ ...msg, req }, transfer);
  });
}

function emit(event, arg) {
  for (const fn of listeners[event] ?? []) fn(arg);
}

function fmtTime(s) {
  if (!Number.isFinite(s)) return '–';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

function onMetrics({ rows, last, total }) {
  hook.rows.push(...rows);
  charts.push(rows);
  analysis.onMetrics(rows);
  $('progress').value = last.step / total;
  const eta = (total - last.step) / last.steps_per_s;
  $('progress-text').textContent = `step ${fmtInt(last.step)} / ${fmtInt(total)} · ${last.steps_per_s.toFixed(1)} steps/s · ETA ${fmtTime(eta)}`;
  $('train-brief').textContent = `step ${fmtInt(last.step)} / ${fmtInt(total)} · loss ${last.loss.toFixed(4)} · token acc ${(last.token_acc * 100).toFixed(1)}%`;
}

function evaluate() {
  $('eval-note').textContent = 'Evaluating…';
  worker.postMessage({ type: 'evaluate', samples: EVAL_SAMPLES, shown: info.seq_len > 40 ? 2 : SHOWN });
}

function onEvaluated({ report, samples, step }) {
  hook.lastEval = report;
  const pct = (x) => `${(x * 100).toFixed(2)}%`;
  // With a held-out split (permutations holdout > 0) the report is on unseen combinations and
  // `report.train` on the combinations training draws from: both, side by side.
  const tr = report.train;
  const both = (f) => (tr ? `${f(report)} held-out · ${f(tr)} train` : f(report));
  renderFacts($('eval-facts'), [
    ['loss', both((r) => `${r.loss.toFixed(4)} nats`)],
    ['algorithm loss', both((r) => `${r.algo_loss.toFixed(4)} nats`)],
    ['token accuracy', both((r) => pct(r.token_acc))],
    ['sequence accuracy', both((r) => pct(r.seq_acc))],
    ['algorithm accuracy', both((r) => pct(r.algo_acc))],
  ]);
  renderBars($('eval-perpos'), report.positions, report.per_pos_acc);
  renderSeqs($('eval-samples'), samples);
  const steps = step ?? hook.rows.length; // a loaded model's step count need not match its curve
  $('eval-note').textContent = tr
    ? `${fmtInt(report.samples)} fresh samples of each side of the split (held-out: character combinations never trained on), after ${fmtInt(steps)} steps`
    : `${fmtInt(report.samples)} fresh samples, after ${fmtInt(steps)} steps`;
  $('eval-brief').textContent = `token acc ${pct(report.token_acc)} · seq acc ${pct(report.seq_acc)}`;
}

function onCompleted(result) {
  hook.lastCompletion = result;
  $('try-error').hidden = true;
  const predicted = result.tokens.map((_, i) => i >= result.prompt_len);
  renderSeqs($('try-output'), [{ tokens: result.tokens, predicted }], { promptLen: result.prompt_len });
}

function onError({ message, during, req }) {
  if (requests.has(req)) {
    requests.get(req).reject(new Error(message));
    requests.delete(req);
    return;
  }
  if (during === 'complete') {
    $('try-error').textContent = message;
    $('try-error').hidden = false;
    return;
  }
  showError('train', [message]);
  if (during === 'start') setPhase('idle');
  else if (phase === 'training') setPhase('paused');
}

function download({ bytes, steps }) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: `toyformer-${runInfo.task}-step${steps}.safetensors` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function onWorker(e) {
  const m = e.data;
  if (m.type !== 'error' && requests.has(m.req)) {
    requests.get(m.req).resolve(m);
    requests.delete(m.req);
    return;
  }
  switch (m.type) {
    case 'ready': setPhase('idle'); refresh(); $('load-status').hidden = true; afterReady(); break;
    case 'metrics': onMetrics(m); break;
    case 'paused': setPhase('paused'); evaluate(); break;
    case 'done': setPhase('done'); $('progress-text').textContent += ' · done'; evaluate(); analysis.onDone(); break;
    case 'reset': {
      setPhase('idle');
      refresh();
      analysis.onReset();
      const then = afterReset;
      afterReset = null;
      then?.();
      break;
    }
    case 'snapshot': analysis.onSnapshot(m); break;
    case 'evaluated': onEvaluated(m); break;
    case 'completed': onCompleted(m.result); break;
    case 'exported': download(m); break;
    case 'error': onError(m); break;
    case 'backend':
      $('backend-badge').textContent = m.label;
      $('backend-note').textContent = m.gpu ? 'training on the GPU' : m.reason;
      break;
    default: emit('worker', m);
  }
}

// The backend the next run will use, before the worker confirms it ('backend' message).
function showBackend() {
  const badge = $('backend-badge');
  const note = $('backend-note');
  if (values.backend === 'cpu') {
    badge.textContent = 'CPU (wasm)';
    note.textContent = gpuName ? `forced by the backend switch (WebGPU adapter: ${gpuName})` : 'forced by the backend switch';
  } else if (gpuName && (values.backend === 'webgpu' || !gpuFallback)) {
    badge.textContent = `WebGPU (${gpuName})`;
    note.textContent = gpuFallback ? 'software fallback adapter, chosen by the backend switch' : 'WebGPU adapter found';
  } else if (gpuName) {
    badge.textContent = 'CPU (wasm)';
    note.textContent = `WebGPU adapter ${gpuName} is a software fallback, slower than the CPU: choose backend webgpu to use it`;
  } else {
    badge.textContent = 'CPU (wasm)';
    note.textContent = 'no WebGPU adapter: training runs on the CPU';
  }
}

// Once the worker is up: a run that was training in this tab before a reload comes back;
// otherwise the link the page was opened with is shown (and its model loaded, if it has one).
async function afterReady() {
  if (!(await restoreActiveRun())) await openLink(link);
  hook.ready = true;
}

// What the share, runs and weights modules may use.
const app = {
  get phase() { return phase; },
  get values() { return values; },
  get info() { return info; },
  get rows() { return hook.rows; },
  get runInfo() { return runInfo; },
  hook, request, load, replay, start, runSpec, emit,
  hasModel() { return phase !== 'idle' && phase !== 'loading'; },
  on(event, fn) { (listeners[event] ??= []).push(fn); },
  writeLink() { writeLink(values, info?.default_model); },
};

async function detectGpu() {
  try {
    const a = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
    const i = a?.info ?? {};
    gpuName = a ? (i.description || [i.vendor, i.architecture, i.device].filter(Boolean).join(' ') || 'unnamed adapter') : null;
    gpuFallback = Boolean(i.isFallbackAdapter ?? a?.isFallbackAdapter);
  } catch {
    gpuName = null;
  }
  if (phase === 'idle' || phase === 'loading') showBackend();
}

function wire() {
  $('btn-start').onclick = start;
  $('btn-pause').onclick = () => worker.postMessage({ type: 'pause' });
  $('btn-resume').onclick = () => { worker.postMessage({ type: 'resume' }); setPhase('training'); };
  $('btn-reset').onclick = () => worker.postMessage({ type: 'reset' });
  $('btn-export').onclick = () => worker.postMessage({ type: 'export' });
  $('btn-eval').onclick = evaluate;
  $('try-form').onsubmit = (e) => {
    e.preventDefault();
    worker.postMessage({ type: 'complete', text: $('try-input').value });
  };
  addEventListener('resize', () => charts?.resize());
}

async function main() {
  buildForms();
  link = readLink();
  const fromUrl = link.values;
  for (const p of S.PROPS) {
    if (fromUrl[p.key] !== undefined) touched.add(p.key);
    const d = S.defaultOf(p, null);
    if (fromUrl[p.key] !== undefined || d !== undefined) setInput(p, fromUrl[p.key] ?? d);
  }
  wire();
  analysis.mount();
  renderPresets($('presets'), { training: () => phase === 'training', save: saveActiveRun });
  initSweepCell(hook);
  initShare(app);
  initRuns(app);
  initWeights(app);
  await detectGpu();
  setPhase('loading');
  try {
    await init();
  } catch (err) {
    $('load-status').textContent = `Could not load the WebAssembly module: ${err.message}. Run \`make wasm\` and reload.`;
    throw err;
  }
  $('load-status').textContent = 'Starting the training worker…';
  worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = onWorker;
  hook.post = (msg) => worker.postMessage(msg); // tests: messages the page itself never sends
  worker.onerror = (e) => { $('load-status').hidden = false; $('load-status').textContent = `Worker failed: ${e.message}`; };
  refresh();
}

main();
