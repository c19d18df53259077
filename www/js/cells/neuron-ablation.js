// Neuron ablation inside the Interventions cell (issue 16): neurons of one MLP layer, typed as
// indices (the Task analyses cell lists them by importance), ablated at hook_post with the
// cell's zero/mean choice; loss and accuracy on the fresh samples beside the unablated ones
// (analyses.js ablateNeurons, the analysis worker's ablate_neurons). The layer and the indices
// are view settings (view_neuron_layer, view_ablate_neurons in state.js), so they are in the link.
import { el } from '../interp/heatmap.js';
import { ablateNeurons } from './analyses.js';

/** The indices in `text` ("3, 17 40"), or an error naming what is wrong. */
export function parseNeurons(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const bad = parts.find((p) => !/^\d+$/.test(p));
  if (bad !== undefined) return { error: `"${bad}" is not a neuron index (a whole number ≥ 0)` };
  return { ids: [...new Set(parts.map(Number))] };
}

export class NeuronAblation {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.box = el('div', 'neuron-ablation-box');
    this.box.hidden = true;
    this.box.append(el('h3', '', 'Ablate MLP neurons'));
    const form = el('form', 'controls');
    this.layer = el('select', 'na-layer');
    this.layer.setAttribute('aria-label', 'MLP layer');
    this.ids = el('input', 'na-ids');
    this.ids.type = 'text';
    this.ids.placeholder = 'neuron indices, e.g. 32, 148';
    this.ids.setAttribute('aria-label', 'neurons to ablate');
    this.ids.value = ctx.view('view_ablate_neurons');
    const go = el('button', 'primary', 'Ablate neurons');
    go.type = 'submit';
    form.append(el('span', 'muted', 'MLP layer'), this.layer, this.ids, go);
    this.out = el('p', 'na-result');
    form.onsubmit = (e) => {
      e.preventDefault();
      this.run();
    };
    this.box.append(form, this.out);
    root.append(this.box);
  }

  /** Shows the section for models with an MLP, with one layer choice per layer. */
  show(model) {
    this.box.hidden = !model?.d_mlp;
    if (this.box.hidden || this.layer.options.length === model.n_layers) return;
    this.layer.replaceChildren(...Array.from({ length: model.n_layers }, (_, l) => {
      const o = el('option', '', `MLP${l}`);
      o.value = String(l);
      return o;
    }));
    this.layer.value = String(Math.min(this.ctx.view('view_neuron_layer'), model.n_layers - 1));
  }

  run() {
    const p = parseNeurons(this.ids.value);
    if (p.error) {
      this.out.textContent = p.error;
      return;
    }
    this.ctx.setView('view_neuron_layer', +this.layer.value);
    this.ctx.setView('view_ablate_neurons', p.ids.join(','));
    ablateNeurons(this.ctx.analysis, +this.layer.value, p.ids, this.out);
  }
}
