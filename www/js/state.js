// The one table of tunables. Each row defines a form field (cell, label, type, range), its
// default, and its key in the link: the URL fragment holds every value that differs from its
// default (www/js/link.js encodes and decodes it against this table), so a link reproduces
// the experiment and the view. `default: 'model'` means "the task's default model" (from
// task_info().default_model); `when` says when a row applies (task-specific parameters).
//
// Rows with `cell: 'view'` are view state (which cells are open, selections): hidden fields
// (in `.params[data-cell="view"]`) that the views set, so they travel in the link like the
// rest. Types: int, float, enum, bool, text (at most `max` characters, optional `pattern`).

import { CATALOGUE } from './task-rows.js';
import { currentData, setData } from './data.js';

const isTask = (name) => (s) => s.task === name;
/** Whether task `name` is a finite dataset with a train/test split. */
export const isFiniteTask = (name) => CATALOGUE.some((t) => t.name === name && t.finite);

/** The catalogue tasks' parameter rows (generated from the Rust registry in task-rows.js). */
const CATALOGUE_ROWS = CATALOGUE.flatMap((t) => t.params.map((p) => ({
  key: p.key, cell: 'task', label: p.label, type: p.type, default: p.default, min: p.min, max: p.max,
  hint: p.hint, when: isTask(t.name),
})));

/** @typedef {{key: string, cell: string, label: string, type: 'int'|'float'|'enum'|'bool'|'text',
 *   default: any, min?: number, max?: number, options?: string[], when?: (s: object) => boolean,
 *   hint?: string, pattern?: RegExp, raw?: boolean}} Prop */

/** @type {Prop[]} */
export const PROPS = [
  { key: 'task', cell: 'task', label: 'task', type: 'enum', default: 'sort',
    options: ['sort', 'permutations', 'apply-perm', ...CATALOGUE.map((t) => t.name)] },
  { key: 'sort_n', cell: 'task', label: 'list length n', type: 'int', default: 10, min: 1, max: 500,
    when: isTask('sort') },
  { key: 'max_num', cell: 'task', label: 'values 0..max_num', type: 'int', default: 50, min: 1, max: 65534,
    when: isTask('sort') },
  { key: 'perm_n', cell: 'task', label: 'characters n', type: 'int', default: 4, min: 1, max: 5,
    when: isTask('permutations') },
  { key: 'holdout', cell: 'task', label: 'held-out combinations', type: 'float', default: 0, min: 0, max: 0.9,
    when: isTask('permutations'),
    hint: 'fraction of the C(62, n) character combinations never trained on; Evaluate then reports train and held-out figures' },
  { key: 'split_seed', cell: 'task', label: 'split seed', type: 'int', default: 0, min: 0, max: 2 ** 32 - 1,
    when: (s) => s.task === 'permutations' && s.holdout > 0 },
  { key: 'k', cell: 'task', label: 'list length k', type: 'int', default: 3, min: 1, max: 340,
    when: isTask('apply-perm') },
  { key: 'max_int', cell: 'task', label: 'values 0..max_int', type: 'int', default: 50, min: 1, max: 65533,
    when: isTask('apply-perm') },
  ...CATALOGUE_ROWS,
  // The custom task's file (the Data cell loads it; data.js holds its text).
  { key: 'custom_format', cell: 'task', label: 'data format', type: 'enum', default: 'auto',
    options: ['auto', 'jsonl', 'text'], when: isTask('custom'),
    hint: 'auto: JSON lines when the file starts with {, else text' },
  { key: 'custom_separator', cell: 'task', label: 'separator (text format)', type: 'text', default: '|', min: 1, max: 1,
    raw: true, when: isTask('custom'), hint: 'the one character (a space too) after which the rest of a line is scored' },
  { key: 'data_url', cell: 'task', label: 'data URL', type: 'text', default: '', max: 2048, when: isTask('custom'),
    hint: 'where the data file was fetched from (a link carries it)' },
  { key: 'data_hash', cell: 'task', label: 'data hash', type: 'text', default: '', max: 16,
    when: isTask('custom'), hint: 'the data file\'s hash: a link or a saved run checks the file against it' },

  { key: 'n_layers', cell: 'model', label: 'n_layers', type: 'int', default: 'model', min: 1, max: 8 },
  { key: 'n_heads', cell: 'model', label: 'n_heads', type: 'int', default: 'model', min: 1, max: 64 },
  { key: 'd_model', cell: 'model', label: 'd_model', type: 'int', default: 'model', min: 1, max: 4096 },
  { key: 'd_head', cell: 'model', label: 'd_head', type: 'int', default: 'model', min: 1, max: 4096 },
  { key: 'model_seed', cell: 'model', label: 'init seed', type: 'int', default: 0, min: 0, max: 2 ** 32 - 1 },
  { key: 'ln', cell: 'model', label: 'LayerNorm', type: 'bool', default: 'model' },
  { key: 'mlp', cell: 'model', label: 'MLP', type: 'bool', default: 'model' },
  // mlp's default is the task's model's: a link that leaves it out may still have an MLP, so its
  // d_mlp and act_fn apply unless mlp is known to be off.
  { key: 'd_mlp', cell: 'model', label: 'd_mlp', type: 'int', default: 'model', min: 1, max: 16384,
    when: (s) => s.mlp !== false },
  { key: 'act_fn', cell: 'model', label: 'act_fn', type: 'enum', default: 'model',
    options: ['relu', 'gelu', 'gelu_new', 'solu'], when: (s) => s.mlp !== false },

  { key: 'steps', cell: 'train', label: 'steps', type: 'int', default: 3000, min: 1, max: 10000000 },
  { key: 'batch_size', cell: 'train', label: 'batch size', type: 'int', default: 256, min: 1, max: 65536 },
  { key: 'lr', cell: 'train', label: 'learning rate', type: 'float', default: 1e-3, min: 1e-8, max: 10 },
  { key: 'schedule', cell: 'train', label: 'schedule', type: 'enum', default: 'constant',
    options: ['constant', 'warmup_cosine', 'reduce_on_plateau'],
    hint: 'reduce_on_plateau: PyTorch\'s ReduceLROnPlateau stepped with every batch\'s loss (as seed 000 did); trains on the CPU' },
  { key: 'warmup_steps', cell: 'train', label: 'warm-up steps', type: 'int', default: 100, min: 0,
    max: 10000000, when: (s) => s.schedule === 'warmup_cosine' },
  { key: 'plateau_factor', cell: 'train', label: 'plateau factor', type: 'float', default: 0.1, min: 1e-6, max: 0.999,
    when: (s) => s.schedule === 'reduce_on_plateau' },
  { key: 'plateau_patience', cell: 'train', label: 'plateau patience (steps)', type: 'int', default: 10, min: 0,
    max: 10000000, when: (s) => s.schedule === 'reduce_on_plateau' },
  { key: 'weight_decay', cell: 'train', label: 'weight decay', type: 'float', default: 0.01, min: 0, max: 10 },
  { key: 'beta2', cell: 'train', label: 'Adam β2', type: 'float', default: 0.98, min: 0, max: 0.999999 },
  { key: 'grad_clip', cell: 'train', label: 'grad clip (0 = off)', type: 'float', default: 1.0, min: 0, max: 1e6 },
  { key: 'eval_every', cell: 'train', label: 'train/test curves every (steps, 0 = off)', type: 'int', default: 100, min: 0,
    max: 10000000, when: (s) => isFiniteTask(s.task),
    hint: 'a finite dataset: evaluate the train and test splits (at most 4096 items each) every this many steps and plot both' },
  { key: 'seed', cell: 'train', label: 'data seed', type: 'int', default: 0, min: 0, max: 2 ** 32 - 1 },

  // View state of the analysis cells (www/js/interp/): hidden fields, set by the cells.
  { key: 'view_step', cell: 'view', label: 'timeline step (-1 = latest)', type: 'int', default: -1, min: -1, max: 10000000 },
  { key: 'view_layer', cell: 'view', label: 'layer', type: 'int', default: 0, min: 0, max: 7 },
  { key: 'view_head', cell: 'view', label: 'head', type: 'int', default: 0, min: 0, max: 63 },
  { key: 'view_input', cell: 'view', label: 'attention input', type: 'text', default: '', max: 400 },
  { key: 'view_clean', cell: 'view', label: 'patching: clean input', type: 'text', default: '', max: 400 },
  { key: 'view_corrupt', cell: 'view', label: 'patching: corrupted input', type: 'text', default: '', max: 400 },
  // The Circuit cell (cells/circuit.js): discovery method, metric, ablation, selection, hand toggles.
  { key: 'view_circuit_method', cell: 'view', label: 'circuit: discovery method', type: 'enum', default: 'acdc', options: ['acdc', 'eap', 'eap-ig'] },
  { key: 'view_circuit_metric', cell: 'view', label: 'circuit: metric', type: 'enum', default: 'kl', options: ['kl', 'loss', 'logit_diff'] },
  { key: 'view_circuit_ablation', cell: 'view', label: 'circuit: ablation', type: 'enum', default: 'corrupted', options: ['corrupted', 'mean', 'resample'] },
  { key: 'view_circuit_select', cell: 'view', label: 'circuit: keep edges by', type: 'enum', default: 'threshold', options: ['threshold', 'top_k'] },
  { key: 'view_circuit_threshold', cell: 'view', label: 'circuit: threshold', type: 'float', default: 0.01, min: 0, max: 1e6 },
  { key: 'view_circuit_top_k', cell: 'view', label: 'circuit: top k edges', type: 'int', default: 10, min: 0, max: 100000 },
  { key: 'view_circuit_ig_steps', cell: 'view', label: 'circuit: EAP-IG steps', type: 'int', default: 8, min: 1, max: 256 },
  { key: 'view_circuit_toggles', cell: 'view', label: 'circuit: edges toggled by hand', type: 'text', default: '', max: 2000 },
  { key: 'view_circuit_clean', cell: 'view', label: 'circuit: clean prompts (; between pairs; blank: the task\'s pairs)', type: 'text', default: '', max: 2000 },
  { key: 'view_circuit_corrupt', cell: 'view', label: 'circuit: corrupted prompts (one per clean prompt)', type: 'text', default: '', max: 2000 },
  // The Circuit cell's check of attribution against path patching of every edge: open or not.
  { key: 'view_circuit_agreement', cell: 'view', label: 'circuit: attribution vs path patching open', type: 'bool', default: false },
  // The Circuit cell's neuron view (MLP models): open or not, the MLP's layer, how many top neurons to keep.
  { key: 'view_circuit_neurons', cell: 'view', label: 'circuit: neuron view open', type: 'bool', default: false },
  { key: 'view_circuit_neuron_layer', cell: 'view', label: 'circuit: neuron view MLP layer', type: 'int', default: 0, min: 0, max: 7 },
  { key: 'view_circuit_neuron_k', cell: 'view', label: 'circuit: neuron view, top neurons kept', type: 'int', default: 10, min: 0, max: 65535 },
  { key: 'view_neuron_layer', cell: 'view', label: 'Interventions: MLP layer of the ablated neurons', type: 'int', default: 0, min: 0, max: 7 },
  { key: 'view_ablate_neurons', cell: 'view', label: 'Interventions: ablated neurons (indices)', type: 'text', default: '', max: 400 },
  { key: 'view_neuron', cell: 'view', label: 'Task analyses: neuron heatmap (-1 = the most important)', type: 'int', default: -1, min: -1, max: 65535 },
  // Which analysis cells are open.
  { key: 'open_timeline', cell: 'view', label: 'Timeline cell open', type: 'bool', default: true },
  { key: 'open_attention', cell: 'view', label: 'Attention cell open', type: 'bool', default: true },
  { key: 'open_qk', cell: 'view', label: 'QK cell open', type: 'bool', default: true },
  { key: 'open_ov', cell: 'view', label: 'OV cell open', type: 'bool', default: true },
  { key: 'open_scores', cell: 'view', label: 'Scores cell open', type: 'bool', default: true },
  { key: 'open_interventions', cell: 'view', label: 'Interventions cell open', type: 'bool', default: true },
  { key: 'open_analyses', cell: 'view', label: 'Task analyses cell open', type: 'bool', default: true },
  { key: 'open_circuit', cell: 'view', label: 'Circuit cell open (closed by default: discovery reruns with every snapshot)', type: 'bool', default: false },
  // Which cells are open (view state; share.js keeps them in step with the <details data-open-key>).
  ...['task', 'model', 'train', 'eval', 'weights', 'runs', 'sweep'].map((c) => (
    { key: `open_${c}`, cell: 'view', label: `${c} cell open`, type: 'bool', default: true })),
  { key: 'sweep_workers', cell: 'sweep', label: 'workers (0 = one per core, one left for the page)', type: 'int',
    default: 0, min: 0, max: 64 },
  { key: 'backend', cell: 'train', label: 'backend', type: 'enum', default: 'auto', options: ['auto', 'webgpu', 'cpu'],
    hint: 'auto: WebGPU on a hardware adapter, else the CPU; webgpu: any WebGPU adapter, software fallbacks too; cpu: the CPU (wasm)' },
  { key: 'workers', cell: 'train', label: 'CPU workers (0 = auto: 1, 2, 4, 8 up to the cores, timed on the run\'s first steps, the fastest kept)', type: 'int', default: 0,
    min: 0, max: 8,
    hint: 'CPU training splits each batch over this many Web Workers; the result is bit-identical for any number' },
];

// Rows whose default is read from the task's default model by a rule (an attention-only model
// still gives d_mlp and act_fn the values the MLP fields show when switched on).
const MODEL_KEYS = {
  ln: (m) => m.normalization_type === 'LN',
  mlp: (m) => m.d_mlp != null,
  d_mlp: (m) => m.d_mlp ?? 512,
  act_fn: (m) => m.act_fn ?? 'gelu',
};

/** The default of `p`, given the task's default model (may be null before it is known). */
export function defaultOf(p, defaultModel) {
  if (p.default !== 'model') return p.default;
  if (!defaultModel) return undefined;
  return MODEL_KEYS[p.key] ? MODEL_KEYS[p.key](defaultModel) : defaultModel[p.key];
}

// A decimal number as people type it: no hex, no Infinity, no stray characters.
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// Control characters never belong in a value.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Parses the text of a field (or of a link value). Returns {value} or {error}; total. */
export function parseValue(p, text) {
  const t = String(text).trim();
  if (p.type === 'bool') {
    if (t === 'true' || t === '1' || t === 'on') return { value: true };
    if (t === 'false' || t === '0' || t === 'off') return { value: false };
    return { error: `${p.label}: "${short(t)}" is not true or false` };
  }
  if (p.type === 'enum') {
    return p.options.includes(t) ? { value: t } : { error: `${p.label}: choose one of ${p.options.join(', ')}` };
  }
  if (p.type === 'text') {
    const v = p.raw ? String(text) : t; // raw: spaces are the value (a space separator)
    const n = [...v].length; // characters, not UTF-16 units
    if (p.min === p.max && n !== p.max) return { error: `${p.label}: must be exactly ${p.max} character${p.max > 1 ? 's' : ''} (${n === 0 ? 'it is empty' : `"${short(v)}" has ${n}`})` };
    if (n > p.max) return { error: `${p.label}: at most ${p.max} characters` };
    if (CONTROL.test(v) || (p.pattern && !p.pattern.test(v))) return { error: `${p.label}: "${short(v)}" is not allowed here` };
    return { value: v };
  }
  if (!NUMBER.test(t)) return { error: `${p.label}: "${short(t)}" is not a number` };
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: `${p.label}: "${short(t)}" is not a finite number` };
  if (p.type === 'int' && !Number.isInteger(v)) return { error: `${p.label}: must be a whole number` };
  if (v < p.min) return { error: `${p.label}: must be at least ${p.min}` };
  if (v > p.max) return { error: `${p.label}: must be at most ${p.max}` };
  return { value: v === 0 ? 0 : v }; // never -0
}

/** User text cut to 40 characters for a message (shown with textContent, never as markup). */
export function short(t) {
  const s = String(t).replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** Whether row `p` applies to the values `s`. */
export const applies = (p, s) => !p.when || p.when(s);

/** The task spec JSON object of the values. */
export function taskSpec(s, data = currentData()) {
  const cat = CATALOGUE.find((t) => t.name === s.task);
  if (s.task === 'custom') return customSpec(s, cat, data);
  if (cat) return { task: s.task, ...Object.fromEntries(cat.params.map((p) => [p.param, s[p.key]])) };
  if (s.task === 'permutations') {
    return s.holdout > 0 ? { task: 'permutations', n: s.perm_n, holdout: s.holdout, split_seed: s.split_seed }
      : { task: 'permutations', n: s.perm_n };
  }
  if (s.task === 'apply-perm') return { task: 'apply-perm', k: s.k, max_int: s.max_int };
  return { task: 'sort', n: s.sort_n, max_num: s.max_num };
}

/** The custom task's spec: its parameters, how the file is read, the data and its hash. */
function customSpec(s, cat, data) {
  const spec = { task: 'custom', ...Object.fromEntries(cat.params.map((p) => [p.param, s[p.key]])),
    format: s.custom_format, separator: s.custom_separator ?? '|', name: data?.name ?? '' };
  if (data) spec.data = data.text;
  if (s.data_hash) spec.hash = s.data_hash;
  return spec;
}

/** The model config JSON object: the task's default model with the form's fields. */
export function modelConfig(s, defaultModel) {
  return {
    ...defaultModel,
    n_layers: s.n_layers, n_heads: s.n_heads, d_model: s.d_model, d_head: s.d_head,
    normalization_type: s.ln ? 'LN' : null,
    d_mlp: s.mlp ? s.d_mlp : null,
    act_fn: s.mlp ? s.act_fn : null,
    seed: s.model_seed,
  };
}

/** The train config JSON object. */
export function trainConfig(s) {
  const schedule = {
    warmup_cosine: () => ({ kind: 'warmup_cosine', warmup_steps: s.warmup_steps, min_lr_frac: 0.1 }),
    reduce_on_plateau: () => ({ kind: 'reduce_on_plateau', factor: s.plateau_factor, patience: s.plateau_patience }),
  }[s.schedule]?.() ?? { kind: 'constant' };
  return { steps: s.steps, batch_size: s.batch_size, lr: s.lr, schedule, weight_decay: s.weight_decay,
    beta2: s.beta2, grad_clip: s.grad_clip, seed: s.seed };
}

/** The inverse of taskSpec / modelConfig / trainConfig: form values for a loaded run or model. */
export function valuesFrom(task, model, train) {
  const v = { task: task.task };
  if (task.task === 'sort') Object.assign(v, { sort_n: task.n, max_num: task.max_num });
  if (task.task === 'permutations') {
    v.perm_n = task.n;
    if (task.holdout > 0) Object.assign(v, { holdout: task.holdout, split_seed: task.split_seed ?? 0 });
  }
  if (task.task === 'apply-perm') Object.assign(v, { k: task.k, max_int: task.max_int });
  const cat = CATALOGUE.find((t) => t.name === task.task);
  for (const p of cat?.params ?? []) if (task[p.param] != null) v[p.key] = task[p.param];
  if (task.task === 'custom') {
    Object.assign(v, { custom_format: task.format ?? 'auto', custom_separator: task.separator ?? '|', data_hash: task.hash ?? '' });
    if (task.data != null) setData({ text: task.data, name: task.name, hash: task.hash, url: currentData()?.url });
  }
  Object.assign(v, {
    n_layers: model.n_layers, n_heads: model.n_heads, d_model: model.d_model, d_head: model.d_head,
    model_seed: model.seed, ln: model.normalization_type === 'LN', mlp: model.d_mlp != null,
  });
  if (model.d_mlp != null) Object.assign(v, { d_mlp: model.d_mlp, act_fn: model.act_fn });
  if (train) {
    Object.assign(v, { steps: train.steps, batch_size: train.batch_size, lr: train.lr, schedule: train.schedule.kind,
      weight_decay: train.weight_decay, grad_clip: train.grad_clip, seed: train.seed });
    if (train.schedule.kind === 'warmup_cosine') v.warmup_steps = train.schedule.warmup_steps;
    if (train.schedule.kind === 'reduce_on_plateau') {
      Object.assign(v, { plateau_factor: train.schedule.factor, plateau_patience: train.schedule.patience });
    }
    if (train.beta2 != null) v.beta2 = train.beta2;
  }
  return v;
}
