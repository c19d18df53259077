// The Circuit cell's neuron view (models with MLPs): one MLP's neurons ranked by EAP-IG (each
// neuron's score = the summed attribution of its outgoing edges on the graph where every neuron
// is a sender), the top ones listed, and the faithfulness of keeping only the top k neurons of
// that MLP (every other edge of the model kept) and of ablating only them. Thousands of neuron
// edges are not drawn. Open/closed, the layer and k are view properties (state.js), so in the
// link. The work runs in the analysis worker (Interp::circuit_neurons, src/wasm/circuit.rs).
import { el } from '../interp/heatmap.js';

const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');

export class CircuitNeurons {
  /** Appends the view (a closed <details> unless the link opens it) to `root`. */
  constructor(root, ctx) {
    this.ctx = ctx;
    this.box = el('details', 'circuit-neurons');
    this.box.id = 'circuit-neurons';
    this.box.open = Boolean(ctx.view('view_circuit_neurons'));
    this.box.append(el('summary', '', 'Neurons of one MLP'));
    this.box.ontoggle = () => {
      if (Boolean(this.ctx.view('view_circuit_neurons')) === this.box.open) return;
      this.ctx.setView('view_circuit_neurons', this.box.open);
      if (this.box.open) this.ctx.recompute(['circuit']);
    };
    const controls = el('div', 'controls');
    this.layer = this.field(controls, 'select', 'view_circuit_neuron_layer', 'MLP layer');
    this.k = this.field(controls, 'input', 'view_circuit_neuron_k', 'keep top k neurons');
    this.k.type = 'number';
    this.k.min = '0';
    this.k.step = '1';
    this.note = el('p', 'muted circuit-neurons-note');
    this.faith = el('p', 'circuit-neurons-faith');
    this.list = el('ol', 'circuit-neurons-list');
    this.box.append(controls, this.note, this.faith, this.list);
    root.append(this.box);
  }

  field(parent, tag, key, label) {
    const f = el('label', 'field');
    const i = el(tag);
    i.name = `circuit-${key}`;
    i.onchange = () => {
      this.ctx.setView(key, i.value);
      this.ctx.recompute(['circuit']);
    };
    f.append(el('span', '', label), i);
    parent.append(f);
    return i;
  }

  /** Whether the worker should compute the view. */
  open() {
    return Boolean(this.ctx.view('view_circuit_neurons'));
  }

  /** What the worker's `circuit_neurons` call reads besides the cell's options. */
  options() {
    return { layer: this.ctx.view('view_circuit_neuron_layer'), k: this.ctx.view('view_circuit_neuron_k'), top: 20 };
  }

  /** Shows the worker's answer `n` (null: not computed; {error}; {neurons: false}: attention-only). */
  update(n) {
    if (!n) return;
    this.box.dataset.error = '';
    if (n.error) {
      this.note.textContent = n.error;
      this.box.dataset.error = n.error;
      return;
    }
    if (!n.neurons) {
      this.note.textContent = 'This model is attention-only: it has no MLP neurons to rank.';
      this.faith.textContent = '';
      this.list.replaceChildren();
      this.box.dataset.neurons = 'false';
      return;
    }
    this.showControls(n);
    this.showFaith(n);
    this.list.replaceChildren(...n.top.map((t) => {
      const li = el('li', '', `N${t.neuron}: ${t.score.toFixed(4)}`);
      li.dataset.neuron = String(t.neuron);
      li.dataset.score = String(t.score);
      return li;
    }));
  }

  showControls(n) {
    if (this.layer.options.length !== n.n_layers) {
      this.layer.replaceChildren(...Array.from({ length: n.n_layers }, (_, l) => new Option(`MLP${l}`, String(l))));
    }
    this.layer.value = String(n.layer);
    this.k.max = String(n.d_mlp);
    if (document.activeElement !== this.k) this.k.value = String(n.k);
    this.note.textContent = `MLP${n.layer}'s ${n.d_mlp} neurons ranked by EAP-IG (the summed attribution of each neuron's outgoing `
      + `edges: the estimated change of the metric when it is ablated); the top ${n.top.length} listed.`;
  }

  showFaith(n) {
    const { keep: f, ablate: a } = n;
    this.faith.textContent = `Keeping only the top ${n.k} of MLP${n.layer}'s ${n.d_mlp} neurons (the rest ablated, every other edge `
      + `kept): loss recovered ${pct(f.loss_recovered)} · ${f.metric === 'loss' ? '' : `${f.metric} recovered ${pct(f.metric_recovered)} · `}accuracy `
      + `${pct(f.circuit.acc)} (full model ${pct(f.full.acc)}, everything ablated ${pct(f.empty.acc)}). Ablating only them: loss `
      + `recovered ${pct(a.loss_recovered)}, accuracy ${pct(a.circuit.acc)}.`;
    Object.assign(this.box.dataset, {
      neurons: 'true', layer: String(n.layer), dMlp: String(n.d_mlp), k: String(n.k),
      keepLoss: String(f.loss_recovered), ablateLoss: String(a.loss_recovered), keepAcc: String(f.circuit.acc),
    });
    this.runs = (this.runs ?? 0) + 1;
    this.box.dataset.run = String(this.runs);
  }
}
