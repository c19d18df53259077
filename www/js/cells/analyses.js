// The Task analyses cell (issue 16): the task's first hypothesis with the numbers for and
// against it, head-type scores on repeated random tokens (with the induction K-composition
// paths of 2-layer models), the Fourier analysis of modular models and the ranked MLP neurons
// of two-operand tasks, all on the selected snapshot (they follow the Timeline slider). Shown
// when the model has an MLP or 2+ layers, or the task is modular; hidden otherwise.
import { el, caption, fmt, heatmapIn } from '../interp/heatmap.js';

const MODULAR = new Set(['mod-add', 'mod-sub']);
const TWO_OPERANDS = new Set(['mod-add', 'mod-sub', 'min-of-two']);

/** Whether the cell applies to `model` (a ModelConfig) on task spec `task`. */
export function analysesApply(model, task) {
  return !!model && (!!model.d_mlp || model.n_layers >= 2 || MODULAR.has(task?.task));
}

/** What the worker computes for the cell: [data key, worker method, args] in order. */
export function analysesCalls(model, task) {
  const calls = [['hypothesis', 'hypothesis', []], ['headTypes', 'head_types', []]];
  if (MODULAR.has(task?.task)) calls.push(['fourier', 'fourier', []]);
  if (model.d_mlp && TWO_OPERANDS.has(task?.task)) calls.push(['neurons', 'neurons', [model.n_layers - 1, 3]]);
  return calls;
}

function table(cls, head, rows) {
  const t = el('table', `scores ${cls}`);
  const tr = el('tr');
  for (const h of head) tr.append(el('th', '', h));
  t.append(tr);
  for (const r of rows) {
    const row = el('tr');
    for (const c of r) row.append(el('td', '', c));
    t.append(row);
  }
  return t;
}

function hypothesis(h) {
  const box = el('div', 'hypothesis');
  box.append(el('p', 'hyp-claim', `${h.claim}: ${h.evidence.every((e) => e.supports) ? 'holds' : 'not (all) supported'}`));
  box.append(table('hyp-table', ['evidence', 'value', 'bar', ''],
    h.evidence.map((e) => [e.label, fmt(e.value), e.bar, e.supports ? 'for' : 'against'])));
  return box;
}

function headTypes(v) {
  const box = el('div', 'head-types');
  box.append(el('h3', '', 'Head types on repeated random tokens'));
  box.append(table('ht-table', ['head', 'previous-token', 'duplicate-token', 'induction'],
    v.scores.map((s) => [`L${s.layer}H${s.head}`, fmt(s.previous_token), fmt(s.duplicate_token), fmt(s.induction)])));
  if (v.paths.length) {
    box.append(table('ht-paths', ['K-composition', 'TL score', 'diagonal of W_E W_QK (W_E W_OV)ᵀ'],
      v.paths.map((p) => [`L0H${p.prev_head} → L1H${p.head}`, fmt(p.k_composition), fmt(p.diagonal_fraction)])));
  }
  return box;
}

function fourier(f) {
  const box = el('div', 'fourier');
  box.append(el('h3', '', `Fourier basis mod ${f.p}`));
  const top = f.embed_norms.map((x, k) => [k, x]).slice(1).sort((a, b) => b[1] - a[1]).slice(0, 8);
  box.append(el('p', 'fourier-key', `key frequencies ${f.key_freqs.join(', ')} · embedding norm² ${fmt(f.embed_fraction)} · `
    + `logit variance ${fmt(f.logit_fraction)} · neurons explained by one frequency ${fmt(f.neuron_single_fraction)}`));
  box.append(el('p', 'fourier-loss', `loss ${f.loss.toExponential(2)} · restricted ${f.restricted_loss.toExponential(2)} · `
    + `excluded (train) ${f.excluded_loss.toExponential(2)} · Gini ${fmt(f.gini)}`));
  box.append(table('fourier-spectrum', ['frequency', 'embedding norm', 'unembedding norm'],
    top.map(([k, x]) => [String(k), fmt(x), fmt(f.unembed_norms[k])])));
  return box;
}

/** Kept snapshots the progress table covers (evenly spaced, first and last included). */
const TABLE_SNAPSHOTS = 16;
const PROGRESS_HEAD = ['step', 'train loss', 'test loss', 'restricted loss', 'excluded loss', 'Gini', 'Σ θ²'];

/** A button that computes the progress measures of every kept snapshot (p² inputs each, so on
 * request) in the analysis worker, and their table. */
function progress(analysis) {
  const box = el('div', 'progress');
  const btn = el('button', 'progress-btn', 'Progress measures over the kept snapshots (16 at most)');
  btn.title = 'restricted loss: logits kept on the key frequencies\' directions only; excluded loss (train split): those removed';
  const out = el('div', 'progress-out');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    out.replaceChildren(el('span', 'muted', 'computing…'));
    try {
      const pts = await analysis.call('progress', [TABLE_SNAPSHOTS]);
      out.replaceChildren(table('progress-table', PROGRESS_HEAD, pts.map((q) => [String(q.step),
        ...[q.train_loss, q.test_loss, q.restricted_loss, q.excluded_loss].map((x) => x.toExponential(2)), fmt(q.gini),
        fmt(q.sum_sq_weights)])));
    } catch (e) {
      out.replaceChildren(el('span', 'error', String(e.message ?? e)));
    } finally {
      btn.disabled = false;
    }
  });
  box.append(btn, out);
  return box;
}

/** Ablates `ids` of MLP `layer` (the Interventions cell's zero/mean choice) on the fresh samples and
 * shows loss and accuracy beside the unablated ones in `out`. */
export async function ablateNeurons(analysis, layer, ids, out) {
  const kind = analysis.ablationKind ?? 'zero';
  out.textContent = 'ablating…';
  try {
    const [base, abl] = [await analysis.call('ablate_neurons', [layer, '[]', kind]),
      await analysis.call('ablate_neurons', [layer, JSON.stringify(ids), kind])];
    out.textContent = `${kind}-ablating ${ids.length} neuron${ids.length === 1 ? '' : 's'} (${ids.map((i) => `n${i}`).join(', ')}): `
      + `loss ${abl.loss.toExponential(2)} · acc ${(abl.acc * 100).toFixed(1)}% (unablated: loss ${base.loss.toExponential(2)} · `
      + `acc ${(base.acc * 100).toFixed(1)}%)`;
    out.dataset.loss = String(abl.loss);
    out.dataset.baseLoss = String(base.loss);
  } catch (e) {
    out.textContent = String(e.message ?? e);
  }
}

/** Draws neuron `neuron`'s activations over the a × b grid (MLP `layer`) in `map`; the data
 * shown goes to the stats (read by tests). */
async function drawNeuron(ctx, map, layer, neuron, note) {
  try {
    const m = await ctx.analysis.call('neuron_heatmap', [layer, neuron]);
    const labels = Array.from({ length: m.rows }, (_, i) => String(i));
    map.set({ ...m, rowLabels: labels, colLabels: labels, title: `MLP${layer} n${neuron}: activation (hook_post) over (a, b)` });
    note.textContent = '';
    ctx.analysis.stats.neuronMap = { layer, neuron, rows: m.rows, cols: m.cols, data: Array.from(m.data) };
  } catch (e) {
    note.textContent = String(e.message ?? e);
  }
}

/** A picker over every neuron of `v` (ranked by importance) and its a × b heatmap; the choice
 * is the view setting view_neuron (-1: the most important). */
function neuronPicker(v, ctx) {
  const box = el('div', 'neuron-picker');
  const sel = el('select', 'neuron-pick');
  sel.setAttribute('aria-label', 'neuron shown as a heatmap');
  for (const s of v.ranked) {
    const o = el('option', '', `n${s.neuron} · importance ${fmt(s.importance)}`);
    o.value = String(s.neuron);
    sel.append(o);
  }
  const want = ctx.view('view_neuron');
  sel.value = String(v.ranked.some((s) => s.neuron === want) ? want : v.ranked[0]?.neuron ?? 0);
  const note = el('p', 'muted', '');
  box.append(el('label', '', 'heatmap of neuron (sorted by importance) '), sel, note);
  const map = heatmapIn(box, { palette: 'diverging', rowAxis: 'a', colAxis: 'b' }, 'neuron');
  sel.addEventListener('change', () => {
    ctx.setView('view_neuron', +sel.value);
    drawNeuron(ctx, map, v.layer, +sel.value, note);
  });
  if (v.ranked.length) drawNeuron(ctx, map, v.layer, +sel.value, note);
  return box;
}

function neurons(v, analysis) {
  const box = el('div', 'neurons');
  box.append(el('h3', '', `Neurons of MLP${v.layer} by importance`));
  const top = v.ranked.slice(0, 10);
  const out = el('p', 'neuron-ablation');
  const t = table('neuron-table', ['neuron', 'importance', 'mean act', 'top inputs (a, b)', ''],
    top.map((s) => [`n${s.neuron}`, fmt(s.importance), fmt(s.mean_act),
      s.top_inputs.map(([a, b, x]) => `(${a}, ${b}) ${fmt(x)}`).join(' · '), '']));
  top.forEach((s, i) => {
    const b = el('button', 'neuron-ablate', 'ablate');
    b.dataset.neuron = String(s.neuron);
    b.onclick = () => ablateNeurons(analysis, v.layer, [s.neuron], out);
    t.rows[i + 1].cells[4].append(b);
  });
  const all = el('button', 'neuron-ablate-top', 'ablate these 10');
  all.onclick = () => ablateNeurons(analysis, v.layer, top.map((s) => s.neuron), out);
  box.append(t, all, out);
  return box;
}

export class AnalysesCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    caption(root, 'The task\'s first hypothesis with the numbers for and against it, head-type scores (TransformerLens definitions), '
      + 'and for modular tasks the Fourier analysis (orthonormal basis; key frequencies: the fewest holding 90% of the embedding\'s '
      + 'non-constant norm²) and the MLP neurons, on the selected snapshot.');
    this.body = el('div');
    root.append(this.body);
  }

  clear() {
    this.body.replaceChildren();
  }

  update(data) {
    const a = data.analyses;
    document.getElementById('cell-analyses').hidden = !a;
    if (!a) return;
    this.body.replaceChildren();
    if (a.hypothesis) this.body.append(hypothesis(a.hypothesis));
    if (a.headTypes) this.body.append(headTypes(a.headTypes));
    if (a.fourier) this.body.append(fourier(a.fourier), progress(this.ctx.analysis));
    if (a.neurons) this.body.append(neurons(a.neurons, this.ctx.analysis), neuronPicker(a.neurons, this.ctx));
    document.getElementById('analyses-brief').textContent = a.hypothesis?.claim ?? '';
  }
}
