// The settings form: builds every cell's fields from the properties table (state.js), reads and
// validates them (the model through the wasm library), shows the Task and Model cells' facts, and
// keeps the link (the URL fragment) in step with the form.
import { task_info, validate_model, task_samples } from '../pkg/toyformer.js';
import * as S from './state.js';
import { app, setPhase } from './app.js';
import { renderSeqs, renderFacts, fmtInt } from './views.js';
import { writeLink } from './share.js';
import { showBackend } from './backend-badge.js';

const $ = (id) => document.getElementById(id);
const CELLS = ['task', 'model', 'train', 'sweep'];

/** Builds one field per property into its cell's `.params`; a change refreshes the page. */
export function buildForms() {
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
      app.touched.add(p.key);
      refresh();
    });
    app.inputs[p.key] = inp;
    if (p.type === 'bool') field.append(inp, name);
    else field.append(name, inp);
    document.querySelector(`.params[data-cell="${p.cell}"]`).append(field);
  }
  // the experiment's settings lock while a model exists; the Sweep cell's own settings never do
  app.on('controls', (p) => {
    const locked = p !== 'idle';
    for (const [k, inp] of Object.entries(app.inputs)) inp.disabled = locked && !k.startsWith('sweep_');
  });
}

export function setInput(p, v) {
  const inp = app.inputs[p.key];
  if (p.type === 'bool') inp.checked = v === true || v === 'true' || v === '1';
  else inp.value = String(v);
}

/** Fills the form from the link's values (marked as set by the user) and the defaults. */
export function fillFromLink(fromUrl) {
  for (const p of S.PROPS) {
    if (fromUrl[p.key] !== undefined) app.touched.add(p.key);
    const d = S.defaultOf(p, null);
    if (fromUrl[p.key] !== undefined || d !== undefined) setInput(p, fromUrl[p.key] ?? d);
  }
}

/** Fills the form with a loaded model's configs (every non-view field they set). */
export function fillFromRun(task, model, train) {
  const vals = S.valuesFrom(task, model, train);
  for (const p of S.PROPS) {
    if (vals[p.key] === undefined || p.cell === 'view') continue;
    setInput(p, vals[p.key]);
    app.touched.add(p.key);
  }
}

// Reads the form: values by key, and error messages by cell.
function readForm() {
  const vals = {};
  const errors = { task: [], model: [], train: [], sweep: [], view: [] };
  for (const p of S.PROPS) {
    const inp = app.inputs[p.key];
    const r = S.parseValue(p, p.type === 'bool' ? String(inp.checked) : inp.value);
    vals[p.key] = r.value;
    inp.closest('.field').classList.toggle('invalid', false);
    if (r.error) vals[p.key] = undefined;
    inp.dataset.error = r.error ?? '';
  }
  for (const p of S.PROPS) {
    const on = S.applies(p, vals);
    app.inputs[p.key].closest('.field').hidden = !on;
    const err = app.inputs[p.key].dataset.error;
    if (on && err) {
      errors[p.cell].push(err);
      app.inputs[p.key].closest('.field').classList.add('invalid');
    }
  }
  return { vals, errors };
}

/** Shows `msgs` (joined) in the error line of `cell`, or hides it when there are none. */
export function showError(cell, msgs) {
  const e = $(`${cell}-error`);
  e.textContent = msgs.join(' · ');
  e.hidden = msgs.length === 0;
}

function refreshTask(vals, errors) {
  if (errors.task.length) return false;
  const spec = S.taskSpec(vals);
  const key = JSON.stringify(spec);
  if (key === app.taskKey) return true;
  try {
    app.info = task_info(key);
  } catch (e) {
    errors.task.push(e.message);
    app.info = null;
    app.taskKey = '';
    return false;
  }
  app.taskKey = key;
  const info = app.info;
  // Model fields the user has not set follow the task's default model.
  for (const p of S.PROPS) if (p.default === 'model' && !app.touched.has(p.key)) setInput(p, S.defaultOf(p, info.default_model));
  const floor = info.loss_floor > 0 ? `${info.loss_floor.toFixed(4)} nats` : '0 (every target is determined by the prompt)';
  renderFacts($('task-facts'), [
    ['sequence length T', String(info.seq_len)],
    ['vocabulary', `${info.d_vocab} in, ${info.d_vocab_out} out`],
    ['scored positions', String(info.pred_positions.length)],
    ['loss floor', floor],
  ]);
  renderSeqs($('task-samples'), task_samples(key, 3, 0));
  $('task-brief').textContent = `${spec.task} · T = ${info.seq_len}`;
  $('try-input').placeholder = { sort: 'e.g. 3 1 4 1 5 9 2 6 5 3', permutations: 'e.g. abcd', 'apply-perm': 'e.g. 7 3 9 | 2 0 1',
    custom: `a prompt of the data (${info.prompt_len} tokens, the file's labels${spec.format === 'jsonl' ? ' separated by spaces' : ''})` }[spec.task];
  return true;
}

function refreshModel(vals, errors) {
  const info = app.info;
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

/** Reads and validates the form, shows its errors and facts, and rewrites the link. */
export function refresh() {
  let { vals, errors } = readForm();
  const taskOk = refreshTask(vals, errors);
  if (taskOk) ({ vals } = readForm()); // model defaults may have changed with the task
  const modelOk = refreshModel(vals, errors);
  for (const c of CELLS) showError(c, errors[c]);
  app.values = vals;
  app.valid = taskOk && modelOk && errors.train.length === 0;
  writeLink(vals, app.info?.default_model);
  const phase = app.phase;
  if (phase === 'idle') $('train-brief').textContent = app.valid ? `${fmtInt(vals.steps)} steps, batch ${vals.batch_size}` : '';
  if (phase === 'idle' || phase === 'loading') showBackend();
  setPhase(phase);
}

/** Rewrites the link for the form's current values. */
export function rewriteLink() {
  writeLink(app.values, app.info?.default_model);
}
