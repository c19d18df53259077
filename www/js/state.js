// The one table of tunables. Each row defines a form field (cell, label, type, range), its
// default, and its URL key: the URL holds every value that differs from its default, so a
// link reproduces the view. `default: 'model'` means "the task's default model" (from
// task_info().default_model); `when` says when a row applies (task-specific parameters).

const isTask = (name) => (s) => s.task === name;

/** @typedef {{key: string, cell: string, label: string, type: 'int'|'float'|'enum'|'bool',
 *   default: any, min?: number, max?: number, options?: string[], when?: (s: object) => boolean,
 *   hint?: string}} Prop */

/** @type {Prop[]} */
export const PROPS = [
  { key: 'task', cell: 'task', label: 'task', type: 'enum', default: 'sort',
    options: ['sort', 'permutations', 'apply-perm'] },
  { key: 'sort_n', cell: 'task', label: 'list length n', type: 'int', default: 10, min: 1, max: 500,
    when: isTask('sort') },
  { key: 'max_num', cell: 'task', label: 'values 0..max_num', type: 'int', default: 50, min: 1, max: 65534,
    when: isTask('sort') },
  { key: 'perm_n', cell: 'task', label: 'characters n', type: 'int', default: 4, min: 1, max: 5,
    when: isTask('permutations') },
  { key: 'k', cell: 'task', label: 'list length k', type: 'int', default: 3, min: 1, max: 340,
    when: isTask('apply-perm') },
  { key: 'max_int', cell: 'task', label: 'values 0..max_int', type: 'int', default: 50, min: 1, max: 65533,
    when: isTask('apply-perm') },

  { key: 'n_layers', cell: 'model', label: 'n_layers', type: 'int', default: 'model', min: 1, max: 8 },
  { key: 'n_heads', cell: 'model', label: 'n_heads', type: 'int', default: 'model', min: 1, max: 64 },
  { key: 'd_model', cell: 'model', label: 'd_model', type: 'int', default: 'model', min: 1, max: 4096 },
  { key: 'd_head', cell: 'model', label: 'd_head', type: 'int', default: 'model', min: 1, max: 4096 },
  { key: 'model_seed', cell: 'model', label: 'init seed', type: 'int', default: 0, min: 0, max: 2 ** 32 - 1 },
  { key: 'ln', cell: 'model', label: 'LayerNorm', type: 'bool', default: 'model' },
  { key: 'mlp', cell: 'model', label: 'MLP', type: 'bool', default: false },
  { key: 'd_mlp', cell: 'model', label: 'd_mlp', type: 'int', default: 512, min: 1, max: 16384,
    when: (s) => s.mlp },
  { key: 'act_fn', cell: 'model', label: 'act_fn', type: 'enum', default: 'gelu',
    options: ['relu', 'gelu', 'gelu_new', 'solu'], when: (s) => s.mlp },

  { key: 'steps', cell: 'train', label: 'steps', type: 'int', default: 3000, min: 1, max: 10000000 },
  { key: 'batch_size', cell: 'train', label: 'batch size', type: 'int', default: 256, min: 1, max: 65536 },
  { key: 'lr', cell: 'train', label: 'learning rate', type: 'float', default: 1e-3, min: 1e-8, max: 10 },
  { key: 'schedule', cell: 'train', label: 'schedule', type: 'enum', default: 'constant',
    options: ['constant', 'warmup_cosine'] },
  { key: 'warmup_steps', cell: 'train', label: 'warm-up steps', type: 'int', default: 100, min: 0,
    max: 10000000, when: (s) => s.schedule === 'warmup_cosine' },
  { key: 'weight_decay', cell: 'train', label: 'weight decay', type: 'float', default: 0.01, min: 0, max: 10 },
  { key: 'grad_clip', cell: 'train', label: 'grad clip (0 = off)', type: 'float', default: 1.0, min: 0, max: 1e6 },
  { key: 'seed', cell: 'train', label: 'data seed', type: 'int', default: 0, min: 0, max: 2 ** 32 - 1 },
  { key: 'backend', cell: 'train', label: 'backend', type: 'enum', default: 'auto', options: ['auto', 'webgpu', 'cpu'],
    hint: 'auto: WebGPU on a hardware adapter, else the CPU; webgpu: any WebGPU adapter, software fallbacks too; cpu: the CPU (wasm)' },
];

const MODEL_KEYS = { ln: (m) => m.normalization_type === 'LN' };

/** The default of `p`, given the task's default model (may be null before it is known). */
export function defaultOf(p, defaultModel) {
  if (p.default !== 'model') return p.default;
  if (!defaultModel) return undefined;
  return MODEL_KEYS[p.key] ? MODEL_KEYS[p.key](defaultModel) : defaultModel[p.key];
}

/** Parses the text of a field. Returns {value} or {error}. */
export function parseValue(p, text) {
  const t = String(text).trim();
  if (p.type === 'bool') return { value: t === 'true' || t === '1' || t === 'on' };
  if (p.type === 'enum') {
    return p.options.includes(t) ? { value: t } : { error: `${p.label}: choose one of ${p.options.join(', ')}` };
  }
  const v = Number(t);
  if (t === '' || !Number.isFinite(v)) return { error: `${p.label}: "${t}" is not a number` };
  if (p.type === 'int' && !Number.isInteger(v)) return { error: `${p.label}: must be a whole number` };
  if (v < p.min) return { error: `${p.label}: must be at least ${p.min}` };
  if (v > p.max) return { error: `${p.label}: must be at most ${p.max}` };
  return { value: v };
}

/** Whether row `p` applies to the values `s`. */
export const applies = (p, s) => !p.when || p.when(s);

/** The values in the URL's query string, as raw text by key (unknown keys ignored). */
export function readUrl(search = location.search) {
  const q = new URLSearchParams(search);
  const out = {};
  for (const p of PROPS) if (q.has(p.key)) out[p.key] = q.get(p.key);
  return out;
}

/** Writes the values that differ from their defaults into the URL (no history entry). */
export function writeUrl(values, defaultModel) {
  const q = new URLSearchParams();
  for (const p of PROPS) {
    const v = values[p.key];
    if (v !== undefined && applies(p, values) && String(v) !== String(defaultOf(p, defaultModel))) {
      q.set(p.key, String(v));
    }
  }
  const s = q.toString();
  history.replaceState(null, '', s ? `?${s}` : location.pathname);
}

/** The task spec JSON object of the values. */
export function taskSpec(s) {
  if (s.task === 'permutations') return { task: 'permutations', n: s.perm_n };
  if (s.task === 'apply-perm') return { task: 'apply-perm', k: s.k, max_int: s.max_int };
  return { task: 'sort', n: s.sort_n, max_num: s.max_num };
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
  const schedule = s.schedule === 'warmup_cosine'
    ? { kind: 'warmup_cosine', warmup_steps: s.warmup_steps, min_lr_frac: 0.1 }
    : { kind: 'constant' };
  return { steps: s.steps, batch_size: s.batch_size, lr: s.lr, schedule, weight_decay: s.weight_decay,
    grad_clip: s.grad_clip, seed: s.seed };
}
