// The one typed table of tunables: each property's cell, type, default and range. The forms are built
// from it and every value is checked against it (it will also define the URL state).
export const PROPS = [
  { key: 'task', cell: 'task', type: 'enum', options: ['sort', 'permutations', 'apply-perm'], def: 'sort' },
  { key: 'n', cell: 'task', type: 'int', def: 10, min: 1, max: 500, tasks: ['sort', 'permutations'] },
  { key: 'max_num', cell: 'task', type: 'int', def: 50, min: 1, max: 1000, tasks: ['sort'] },
  { key: 'k', cell: 'task', type: 'int', def: 3, min: 1, max: 300, tasks: ['apply-perm'] },
  { key: 'max_int', cell: 'task', type: 'int', def: 50, min: 1, max: 1000, tasks: ['apply-perm'] },
  { key: 'n_layers', cell: 'model', type: 'int', def: 1, min: 1, max: 8 },
  { key: 'n_heads', cell: 'model', type: 'int', def: 1, min: 1, max: 64 },
  { key: 'd_model', cell: 'model', type: 'int', def: 128, min: 1, max: 4096 },
  { key: 'd_head', cell: 'model', type: 'int', def: 128, min: 1, max: 4096 },
  { key: 'ln', cell: 'model', type: 'enum', options: ['none', 'LN'], def: 'none' },
  { key: 'd_mlp', cell: 'model', type: 'int', def: 0, min: 0, max: 16384, label: 'd_mlp (0 = attn-only)' },
  { key: 'act_fn', cell: 'model', type: 'enum', options: ['relu', 'gelu', 'gelu_new', 'solu'], def: 'relu' },
  { key: 'steps', cell: 'train', type: 'int', def: 3000, min: 1, max: 1000000 },
  { key: 'batch_size', cell: 'train', type: 'int', def: 256, min: 1, max: 65536 },
  { key: 'lr', cell: 'train', type: 'float', def: 1e-3, min: 1e-7, max: 10 },
  { key: 'weight_decay', cell: 'train', type: 'float', def: 0.01, min: 0, max: 10 },
  { key: 'grad_clip', cell: 'train', type: 'float', def: 1.0, min: 0, max: 1000 },
  { key: 'seed', cell: 'train', type: 'int', def: 0, min: 0, max: 2 ** 31 },
];

// Parses one raw string for a property: { value } or { error } naming the key.
export function parseProp(p, raw) {
  if (p.type === 'enum') return p.options.includes(raw) ? { value: raw } : { error: `${p.key}: choose one of ${p.options.join(', ')}` };
  const v = p.type === 'int' ? Number(raw) : parseFloat(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || (p.type === 'int' && !Number.isInteger(v))) return { error: `${p.key}: "${raw}" is not a${p.type === 'int' ? 'n integer' : ' number'}` };
  if (v < p.min || v > p.max) return { error: `${p.key}: ${v} is outside ${p.min}…${p.max}` };
  return { value: v };
}

// The three JSON configs the wasm API takes, from validated values.
export function configs(vals, defaultModel) {
  const t = vals.task;
  const task = t === 'sort' ? { task: 'sort', n: vals.n, max_num: vals.max_num }
    : t === 'permutations' ? { task: 'permutations', n: vals.n } : { task: 'apply-perm', k: vals.k, max_int: vals.max_int };
  const model = { ...defaultModel, n_layers: vals.n_layers, n_heads: vals.n_heads, d_model: vals.d_model, d_head: vals.d_head,
    normalization_type: vals.ln === 'LN' ? 'LN' : null, d_mlp: vals.d_mlp > 0 ? vals.d_mlp : null, act_fn: vals.d_mlp > 0 ? vals.act_fn : null };
  const train = { steps: vals.steps, batch_size: vals.batch_size, lr: vals.lr, weight_decay: vals.weight_decay, grad_clip: vals.grad_clip, seed: vals.seed };
  return { task, model, train };
}
