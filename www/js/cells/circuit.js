// The Circuit cell: finds the circuit of the selected snapshot (ACDC, or EAP / EAP-IG top-k or
// threshold) on clean/corrupted pairs — the task's (its default corruption) or typed ones
// (prompts as the samples show them, `;` between pairs; a bad one shows its error and changes
// nothing: the link keeps the last pairs that worked) — draws the graph
// (nodes by layer; edge width = |score|, colour = sign; hover for values), lets the user click
// edges (or a node: all its edges) into or out of the circuit, and shows its faithfulness.
// Every choice, the hand toggles included, is a view property (state.js), so the link
// reopens the same circuit. The work runs in the analysis worker (src/wasm/circuit.rs).
import { el, caption } from '../interp/heatmap.js';
import { CircuitAgreement } from './circuit-agreement.js';
import { CircuitNeurons } from './circuit-neurons.js';

const SVG = 'http://www.w3.org/2000/svg';
/** "KL recovered x · " — nothing when the metric is the loss or the logit difference, already on the line. */
const metricRecovered = (f) => (['loss', 'logit_diff'].includes(f.metric) ? '' : `${f.metric} recovered ${pct(f.metric_recovered)} · `);

const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
const num = (x) => (Number.isFinite(x) ? x.toFixed(4) : '–');

function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent?.append(e);
  return e;
}

/** The controls: [view key, label, kind ('select' with options | 'number' with step)]. */
const CONTROLS = [
  ['view_circuit_method', 'method', ['acdc', 'eap', 'eap-ig']],
  ['view_circuit_metric', 'metric', ['kl', 'loss', 'logit_diff']],
  ['view_circuit_ablation', 'ablation', ['corrupted', 'mean', 'resample']],
  ['view_circuit_select', 'keep by', ['threshold', 'top_k']],
  ['view_circuit_threshold', 'threshold', 'any'],
  ['view_circuit_top_k', 'top k', '1'],
  ['view_circuit_ig_steps', 'EAP-IG steps', '1'],
];

export class CircuitCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    caption(root, 'Which edges of the model (sender → receiver through the residual stream; a head reads its query, key and value '
      + 'inputs separately) compute the task? ACDC removes, latest first, every edge whose removal changes the metric by less than the '
      + 'threshold; EAP / EAP-IG keep the edges with the largest attribution (gradient × activation difference, EAP-IG averaged over '
      + 'k steps). Ablated edges carry the corrupted run\'s value (the task changes one value of the prompt), the batch mean, or another '
      + 'input\'s. Click an edge, or a node for all its edges, to move it in or out of the circuit.');
    const controls = el('div', 'controls circuit-controls');
    this.inputs = {};
    for (const [key, label, kind] of CONTROLS) controls.append(this.control(key, label, kind));
    root.append(controls, this.pairsForm());
    this.error = el('p', 'error');
    this.error.hidden = true;
    this.faith = el('p', 'circuit-faith');
    this.faith.id = 'circuit-faith';
    this.graph = el('div', 'circuit-graph');
    this.hover = el('p', 'muted circuit-hover', 'Hover an edge or node for its values.');
    root.append(this.error, this.faith, this.graph, this.hover);
    this.agreement = new CircuitAgreement(root, ctx); // attribution against patching, every edge
    this.neurons = new CircuitNeurons(root, ctx); // MLP models: one MLP's neurons ranked, top k kept
    this.last = null;
  }

  agreementOpen() {
    return this.agreement.open();
  }

  neuronsOpen() {
    return this.neurons.open();
  }

  neuronOptions() {
    return this.neurons.options();
  }

  control(key, label, kind) {
    const f = el('label', 'field');
    const i = el(Array.isArray(kind) ? 'select' : 'input');
    if (Array.isArray(kind)) for (const o of kind) i.append(new Option(o, o));
    else {
      i.type = 'number';
      i.step = kind;
    }
    i.name = `circuit-${key}`;
    i.value = String(this.ctx.view(key));
    i.onchange = () => {
      this.ctx.setView(key, i.value);
      this.ctx.setView('view_circuit_toggles', ''); // hand edits belong to the circuit they edited
      this.ctx.recompute(['circuit']);
    };
    this.inputs[key] = i;
    f.append(el('span', '', label), i);
    return f;
  }

  /** The typed clean/corrupted prompts: Use (the typed pairs) and Task pairs (blank: the defaults). */
  pairsForm() {
    const form = el('form', 'controls circuit-pairs');
    const mk = (name, label) => {
      const f = el('label', 'field');
      const i = el('input');
      i.name = name;
      i.size = 36;
      i.autocomplete = 'off';
      i.spellcheck = false;
      f.append(el('span', '', label), i);
      form.append(f);
      return i;
    };
    this.clean = mk('circuit-clean', 'clean prompts');
    this.corrupt = mk('circuit-corrupt', 'corrupted prompts');
    this.clean.value = this.ctx.view('view_circuit_clean');
    this.corrupt.value = this.ctx.view('view_circuit_corrupt');
    const use = el('button', 'primary', 'Use pairs');
    use.type = 'submit';
    const reset = el('button', '', 'Task pairs');
    reset.type = 'button';
    reset.name = 'circuit-task-pairs';
    form.onsubmit = (e) => {
      e.preventDefault();
      this.usePairs(this.clean.value.trim(), this.corrupt.value.trim());
    };
    reset.onclick = () => {
      this.clean.value = this.corrupt.value = '';
      this.usePairs('', '');
    };
    this.pairsNote = el('p', 'muted circuit-pairs-note');
    form.append(use, reset, this.pairsNote);
    return form;
  }

  /** Recomputes on pairs `clean`/`corrupt` (blank: the task's); until the result is in, the pairs
   * before are kept to go back to if the worker refuses these. */
  usePairs(clean, corrupt) {
    const v = this.ctx.view;
    this.pending = { clean: v('view_circuit_clean'), corrupt: v('view_circuit_corrupt'), toggles: v('view_circuit_toggles') };
    this.ctx.setView('view_circuit_clean', clean);
    this.ctx.setView('view_circuit_corrupt', corrupt);
    this.ctx.setView('view_circuit_toggles', ''); // hand edits belong to the circuit they edited
    this.ctx.recompute(['circuit']);
  }

  /** The options the worker's `circuit` call reads. */
  options() {
    const v = this.ctx.view;
    return {
      method: v('view_circuit_method'), metric: v('view_circuit_metric'), ablation: v('view_circuit_ablation'),
      select: v('view_circuit_select'), threshold: v('view_circuit_threshold'), top_k: v('view_circuit_top_k'),
      ig_steps: v('view_circuit_ig_steps'), samples: 16, seed: 0, // 16 pairs: the other cells' SAMPLES (analysis.js)
      clean: v('view_circuit_clean'), corrupted: v('view_circuit_corrupt'),
    };
  }

  /** The edges toggled by hand (indices), from the view property. */
  toggles() {
    return String(this.ctx.view('view_circuit_toggles')).split(/[\s,]+/).filter((x) => /^\d+$/.test(x)).map(Number);
  }

  /** Flips edges `es` (toggling twice cancels) and recomputes the faithfulness. */
  flip(es) {
    const t = new Set(this.toggles());
    for (const e of es) {
      if (t.has(e)) t.delete(e);
      else t.add(e);
    }
    this.ctx.setView('view_circuit_toggles', [...t].sort((a, b) => a - b).join(','));
    this.ctx.recompute(['circuit']);
  }

  clear() {
    this.graph.replaceChildren();
    this.faith.textContent = '';
    this.last = null;
  }

  update(data) {
    for (const [key, i] of Object.entries(this.inputs)) if (document.activeElement !== i) i.value = String(this.ctx.view(key));
    const c = data.circuit;
    if (!c) {
      // refused pairs change nothing: the view (and so the link) goes back to the pairs before;
      // the typed text stays in the inputs to be corrected, the last circuit stays drawn
      if (this.pending && data.error) {
        for (const [k, x] of [['view_circuit_clean', 'clean'], ['view_circuit_corrupt', 'corrupt'], ['view_circuit_toggles', 'toggles']]) {
          this.ctx.setView(k, this.pending[x]);
        }
      }
      this.pending = null;
      this.error.textContent = data.error ?? '';
      this.error.hidden = !data.error;
      this.error.dataset.count = String(Number(this.error.dataset.count ?? 0) + 1); // errors shown (for tests)
      return;
    }
    this.pending = null;
    this.error.hidden = true;
    this.last = c;
    this.showPairs(c.inputs);
    this.showFaith(c);
    this.draw(c);
    this.agreement.update(data.circuitAgreement);
    this.neurons.update(data.circuitNeurons);
  }

  /** Which pairs the circuit was found on; the task's first pairs as the inputs' placeholders. */
  showPairs(p) {
    for (const [i, key] of [[this.clean, 'view_circuit_clean'], [this.corrupt, 'view_circuit_corrupt']]) {
      if (document.activeElement !== i) i.value = this.ctx.view(key);
    }
    if (!p.typed) {
      this.clean.placeholder = p.clean;
      this.corrupt.placeholder = p.corrupted;
    }
    this.pairsNote.textContent = p.typed
      ? `On ${p.pairs} typed pair${p.pairs === 1 ? '' : 's'}.`
      : `On ${p.pairs} pairs of the task (its corruption changes one value of the prompt); type prompts as the samples show `
        + 'them, several pairs separated by ";".';
    this.pairsNote.dataset.typed = String(p.typed);
  }

  showFaith(c) {
    const f = c.faithfulness;
    this.faith.textContent = `Circuit: ${f.edges} of ${f.total_edges} edges · loss recovered ${pct(f.loss_recovered)} · `
      + `logit difference recovered ${pct(f.logit_diff_recovered)} · ${metricRecovered(f)}accuracy `
      + `${pct(f.circuit.acc)} (full model ${pct(f.full.acc)}, everything ablated ${pct(f.empty.acc)}). Complement: loss recovered `
      + `${pct(f.complement_loss_recovered)}, accuracy ${pct(f.complement.acc)}.`;
    this.faith.dataset.lossRecovered = String(f.loss_recovered);
    this.faith.dataset.edges = String(f.edges);
    // for scripts (tests/browser/circuit-catalogue.mjs): a count of results shown, and what was shown
    this.runs = (this.runs ?? 0) + 1;
    this.faith.dataset.run = String(this.runs);
    this.faith.dataset.result = JSON.stringify({ method: c.discovery.method, select: c.discovery.select, runs: c.discovery.runs,
      edges: c.graph.edges.filter((e, i) => c.edges[i] === 1).map((e) => e.name), faithfulness: f });
    document.getElementById('circuit-brief').textContent = `${f.edges} edges, loss recovered ${pct(f.loss_recovered)}`;
  }

  /** Node positions: x by column, y by order within the column; receivers' ports offset. */
  layout(g) {
    const cols = Math.max(...g.nodes.map((n) => n.column)) + 1;
    const per = new Map();
    for (const n of g.nodes) per.set(n.column, (per.get(n.column) ?? 0) + 1);
    const tall = Math.max(...per.values());
    const W = 150 * cols + 40;
    const H = 56 * tall + 40;
    const seen = new Map();
    const pos = g.nodes.map((n) => {
      const i = seen.get(n.column) ?? 0;
      seen.set(n.column, i + 1);
      const k = per.get(n.column);
      return { x: 40 + n.column * 150, y: 20 + ((i + 0.5) * (H - 40)) / k };
    });
    return { W, H, pos };
  }

  draw(c) {
    const g = c.graph;
    const { W, H, pos } = this.layout(g);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'circuit-svg', role: 'img' });
    const scores = c.discovery.scores;
    const max = Math.max(1e-12, ...scores.map(Math.abs));
    const portDy = { q: -8, k: 0, v: 8, in: 0 };
    g.edges.forEach((e, i) => this.drawEdge(root, c, e, i, pos, portDy, max));
    g.nodes.forEach((n, i) => this.drawNode(root, c, n, i, pos[i]));
    this.graph.replaceChildren(root);
  }

  drawEdge(root, c, e, i, pos, portDy, max) {
    const g = c.graph;
    const a = pos[g.senders[e.sender]];
    const rc = g.receivers[e.receiver];
    const b = pos[rc.node];
    const s = c.discovery.scores[i];
    const on = c.edges[i] === 1;
    const w = on ? 1 + 6 * Math.sqrt(Math.abs(s) / max) : 1;
    const y2 = b.y + portDy[rc.port];
    const mx = (a.x + b.x) / 2;
    const path = svg('path', {
      d: `M ${a.x + 22} ${a.y} C ${mx} ${a.y}, ${mx} ${y2}, ${b.x - 22} ${y2}`, fill: 'none',
      stroke: on ? (s >= 0 ? '#2b6cb0' : '#c53030') : '#c8c8c8', 'stroke-width': w.toFixed(2),
      'stroke-opacity': on ? 0.85 : 0.35, 'stroke-dasharray': on ? 'none' : '3 3', class: 'circuit-edge',
      'data-edge': i, 'data-in': on ? 1 : 0,
    }, root);
    const text = `${e.name}: score ${num(s)} (${on ? 'in the circuit' : 'ablated'}; click to ${on ? 'remove' : 'add'})`;
    svg('title', {}, path).textContent = text;
    path.addEventListener('mouseenter', () => { this.hover.textContent = text; });
    path.addEventListener('click', () => this.flip([i]));
  }

  drawNode(root, c, n, i, p) {
    const g = c.graph;
    const mine = g.edges.map((e, j) => [e, j]).filter(([e]) => g.senders[e.sender] === i || g.receivers[e.receiver].node === i);
    const inCircuit = mine.filter(([, j]) => c.edges[j] === 1).map(([, j]) => j);
    const grp = svg('g', { class: 'circuit-node', 'data-node': n.name }, root);
    svg('rect', { x: p.x - 22, y: p.y - 13, width: 44, height: 26, rx: 5, fill: inCircuit.length ? '#fefcbf' : '#f2f2f2', stroke: '#555' }, grp);
    const t = svg('text', { x: p.x, y: p.y + 4, 'text-anchor': 'middle', 'font-size': 9 }, grp);
    t.textContent = n.name.replace('pos_embed', 'pos').replace('logits', 'out');
    const text = `${n.name}: ${inCircuit.length} of ${mine.length} edges in the circuit (click: ${inCircuit.length ? 'remove them all' : 'add them all'})`;
    svg('title', {}, grp).textContent = text;
    grp.addEventListener('mouseenter', () => { this.hover.textContent = text; });
    grp.addEventListener('click', () => this.flip(inCircuit.length ? inCircuit : mine.map(([, j]) => j)));
  }
}
