// Wires the page: builds the forms from the property table, validates every value (inline errors block
// training), shows task samples, and talks to the training worker.
import init, { task_info, check_model } from '../pkg/toyformer.js';
import { PROPS, parseProp, configs } from './state.js';
import { Charts } from './plots.js';

const $ = (id) => document.getElementById(id);
const inputs = {};
let info = null;
let charts = null;
let total = 0;
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
window.__toyformer = { metrics: [], completion: null, error: null };

function buildForms() {
  for (const p of PROPS) {
    const label = document.createElement('label');
    label.append(p.label ?? p.key);
    const el = p.type === 'enum' ? document.createElement('select') : document.createElement('input');
    if (p.type === 'enum') for (const o of p.options) el.append(new Option(o, o));
    el.value = String(p.def);
    el.id = `prop-${p.key}`;
    el.addEventListener('change', refresh);
    label.append(el);
    $(`${p.cell}-form`).append(label);
    inputs[p.key] = { p, el, label };
  }
}

function values() {
  const vals = {}, errors = [];
  for (const { p, el, label } of Object.values(inputs)) {
    label.hidden = p.tasks && !p.tasks.includes(inputs.task.el.value);
    const r = parseProp(p, el.value);
    el.classList.toggle('bad', !!r.error);
    if (r.error && !label.hidden) errors.push(r.error); else vals[p.key] = r.value ?? p.def;
  }
  return { vals, errors };
}

function renderTokens(el, labels, predicted) {
  const row = document.createElement('div');
  labels.forEach((t, i) => {
    const s = document.createElement('span');
    s.className = 'tok' + (predicted.has(i) ? ' pred' : '');
    s.textContent = t === ' ' ? '␣' : t;
    row.append(s);
  });
  el.append(row);
}

let lastTask = '';
function refresh() {
  const { vals, errors } = values();
  $('model-error').textContent = '';
  try {
    const { task } = configs(vals, {});
    if (JSON.stringify(task) !== lastTask) {
      info = task_info(JSON.stringify(task), 3);
      lastTask = JSON.stringify(task);
      // a new task brings its default model
      for (const k of ['n_layers', 'n_heads', 'd_model', 'd_head']) inputs[k].el.value = info.default_model[k];
      inputs.ln.el.value = info.default_model.normalization_type ? 'LN' : 'none';
      return refresh();
    }
    $('floor').textContent = info.loss_floor.toFixed(5);
    $('samples').replaceChildren();
    const pred = new Set(info.pred_positions.map((p) => p + 1));
    for (const s of info.samples) renderTokens($('samples'), s, pred);
    if (errors.length) throw new Error(errors.join('; '));
    const { model } = configs(vals, info.default_model);
    const r = check_model(JSON.stringify(task), JSON.stringify(model));
    $('model-info').textContent = `${r.n_params.toLocaleString()} parameters · ${(r.n_params * 16 / 1e6).toFixed(1)} MB with gradients and Adam moments`;
    $('start').disabled = false;
  } catch (e) {
    $('model-error').textContent = String(e.message ?? e);
    $('start').disabled = true;
  }
}

function start() {
  const { vals } = values();
  const cfg = configs(vals, info.default_model);
  total = cfg.train.steps;
  window.__toyformer.metrics = [];
  charts.reset(info.loss_floor);
  worker.postMessage({ cmd: 'start', ...cfg });
  $('pause').disabled = false; $('reset').disabled = false; $('start').disabled = true; $('complete').disabled = false;
  $('pause').textContent = 'Pause';
}

worker.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'progress' && m.metrics.length) {
    window.__toyformer.metrics.push(...m.metrics);
    charts.push(m.metrics);
    const last = m.metrics[m.metrics.length - 1];
    const done = last.step + 1;
    $('progress').value = done / total;
    const eta = (total - done) / Math.max(m.steps_per_s, 1e-9);
    $('status').textContent = `step ${done}/${total} · loss ${last.loss.toFixed(4)} · acc ${last.token_acc.toFixed(3)} · grad norm ${last.grad_norm.toFixed(2)} · ${m.steps_per_s.toFixed(1)} steps/s · ETA ${eta.toFixed(0)} s`;
  } else if (m.type === 'done') {
    $('pause').disabled = true; $('start').disabled = false;
  } else if (m.type === 'completion') {
    window.__toyformer.completion = m;
    $('completion').replaceChildren();
    renderTokens($('completion'), m.tokens, new Set(m.tokens.map((_, i) => i).filter((i) => i >= m.prompt_len)));
  } else if (m.type === 'error') {
    window.__toyformer.error = m.message;
    $('eval-error').textContent = m.message;
  }
};

async function main() {
  await init();
  $('badge').textContent = 'CPU (wasm)';
  if (navigator.gpu) {
    const a = await navigator.gpu.requestAdapter().catch(() => null);
    if (a) $('badge').textContent = 'CPU (wasm) · WebGPU adapter found (GPU training not built yet)';
  }
  buildForms();
  charts = new Charts($('chart-loss'), $('chart-acc'));
  $('start').onclick = start;
  $('pause').onclick = () => {
    const paused = $('pause').textContent === 'Resume';
    worker.postMessage({ cmd: paused ? 'resume' : 'pause' });
    $('pause').textContent = paused ? 'Pause' : 'Resume';
  };
  $('reset').onclick = () => { worker.postMessage({ cmd: 'reset' }); charts.reset(info.loss_floor); $('start').disabled = false; $('pause').disabled = true; };
  $('complete').onclick = () => { $('eval-error').textContent = ''; worker.postMessage({ cmd: 'complete', text: $('prompt').value }); };
  refresh();
}
main().catch((e) => { $('badge').textContent = `failed to start: ${e.message ?? e}`; });
