// The Interventions cell: click heads to ablate them (zero or mean) and see the loss and
// accuracy on fresh samples change at once; activation patching from a clean into a
// corrupted input, as layer × position and head heatmaps of how much of the clean loss each
// patch restores. Both run the model with activations replaced at TL hook points.
import { heatmapIn, el, caption, fmt } from '../interp/heatmap.js';
import { taskNote } from './task-notes.js';
import { NeuronAblation } from './neuron-ablation.js';

const pct = (x) => `${(x * 100).toFixed(1)}%`;

export class InterventionsCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.root = root;
    root.append(el('h3', 'first', 'Ablate heads'));
    caption(root, 'Click heads to remove them from the model (zero ablation: the head\'s z is set to 0; mean ablation: replaced by its mean over '
      + 'other fresh samples, so only what depends on this input is lost). The numbers are loss and accuracy on the fresh samples.');
    taskNote(root, 'interventions');
    const controls = el('div', 'controls');
    this.heads = el('span', 'abl-heads');
    const kind = el('span', 'abl-kind');
    for (const k of ['zero', 'mean']) {
      const lab = el('label');
      const r = el('input');
      r.type = 'radio';
      r.name = 'abl-kind';
      r.value = k;
      r.checked = k === 'zero';
      r.onchange = () => {
        ctx.analysis.ablationKind = k;
        ctx.recompute(['ablation']);
      };
      lab.append(r, el('span', '', ` ${k}`));
      kind.append(lab);
    }
    controls.append(el('span', 'muted', 'heads'), this.heads, el('span', 'muted', 'ablation'), kind);
    root.append(controls);
    this.result = el('p', 'abl-result');
    this.result.id = 'ablation-result';
    root.append(this.result);
    this.table = el('div');
    root.append(this.table);
    this.neurons = new NeuronAblation(root, ctx);

    root.append(el('h3', '', 'Activation patching'));
    caption(root, 'Run the corrupted input, but copy one activation from the clean run, and score the result on the clean answers. '
      + 'A cell near 1 means that activation alone carries what distinguishes the two inputs (1 = the clean loss is fully restored, '
      + '0 = no change). By default the corrupted input changes one value of the clean prompt.');
    const form = el('form', 'patch-form');
    const mk = (id, label) => {
      const f = el('label', 'field');
      const i = el('input');
      i.type = 'text';
      i.id = id;
      i.autocomplete = 'off';
      i.spellcheck = false;
      f.append(el('span', '', label), i);
      form.append(f);
      return i;
    };
    this.clean = mk('patch-clean', 'clean input');
    this.corrupt = mk('patch-corrupt', 'corrupted input');
    const go = el('button', 'primary', 'Patch');
    go.type = 'submit';
    const reset = el('button', '', 'Defaults');
    reset.type = 'button';
    form.append(go, reset);
    form.onsubmit = (e) => {
      e.preventDefault();
      ctx.setView('view_clean', this.clean.value.trim());
      ctx.setView('view_corrupt', this.corrupt.value.trim());
      ctx.recompute(['patching']);
    };
    reset.onclick = () => {
      ctx.setView('view_clean', '');
      ctx.setView('view_corrupt', '');
      ctx.recompute(['patching']);
    };
    root.append(form);
    this.patchError = el('p', 'error');
    this.patchError.hidden = true;
    this.patchSummary = el('p', 'patch-summary');
    this.grid = el('div', 'hm-grid patch-grid');
    root.append(this.patchError, this.patchSummary, this.grid);
    this.maps = null;
  }

  clear() {
    this.result.textContent = '';
    this.table.replaceChildren();
    this.grid.replaceChildren();
    this.patchSummary.textContent = '';
    this.maps = null;
  }

  update(data, an) {
    if (data.ablation) this.renderAblation(data, an);
    if (data.patchInputs) this.renderPatching(data, an);
  }

  renderAblation(data, an) {
    const m = an.model;
    this.neurons.show(m);
    this.heads.replaceChildren();
    for (let l = 0; l < m.n_layers; l++) {
      for (let h = 0; h < m.n_heads; h++) {
        const key = `${l},${h}`;
        const b = el('button', an.ablated.has(key) ? 'ablated' : '', `L${l}H${h}`);
        b.dataset.head = `L${l}H${h}`;
        b.title = an.ablated.has(key) ? 'ablated: click to restore' : 'click to ablate';
        b.onclick = () => {
          if (an.ablated.has(key)) an.ablated.delete(key);
          else an.ablated.add(key);
          this.ctx.recompute(['ablation']);
        };
        this.heads.append(b);
      }
    }
    const a = data.ablation;
    const names = a.heads.map(([l, h]) => `L${l}H${h}`).join(', ');
    this.result.textContent = a.heads.length
      ? `${a.kind}-ablating ${names}: accuracy ${pct(a.baseline.acc)} → ${pct(a.ablated.acc)} (${a.ablated.acc >= a.baseline.acc ? '+' : ''}${((a.ablated.acc - a.baseline.acc) * 100).toFixed(1)} points), `
        + `loss ${fmt(a.baseline.loss)} → ${fmt(a.ablated.loss)} (${a.samples} fresh samples)`
      : `No head ablated: accuracy ${pct(a.baseline.acc)}, loss ${fmt(a.baseline.loss)} on ${a.samples} fresh samples. Click a head.`;
    this.result.dataset.acc = String(a.ablated.acc);
    document.getElementById('interventions-brief').textContent = a.heads.length ? `${names} ${a.kind}-ablated: acc ${pct(a.ablated.acc)}` : `acc ${pct(a.baseline.acc)}`;
    const t = data.table;
    if (t) {
      const tbl = el('table', 'scores');
      const hr = el('tr');
      for (const h of ['head alone', 'zero: loss', 'zero: accuracy', 'mean: loss', 'mean: accuracy']) hr.append(el('th', '', h));
      tbl.append(hr);
      for (const h of t.heads) {
        const tr = el('tr');
        for (const c of [`L${h.layer}H${h.head}`, fmt(h.zero.loss), pct(h.zero.acc), fmt(h.mean.loss), pct(h.mean.acc)]) tr.append(el('td', '', c));
        tbl.append(tr);
      }
      this.table.replaceChildren(tbl);
    }
  }

  renderPatching(data, an) {
    const { clean, corrupted } = data.patchInputs;
    if (document.activeElement !== this.clean) this.clean.value = clean;
    if (document.activeElement !== this.corrupt) this.corrupt.value = corrupted;
    if (data.patchError) {
      this.patchError.textContent = data.patchError;
      this.patchError.hidden = false;
      this.grid.hidden = true; // no stale heatmaps from another input or snapshot
      this.patchSummary.textContent = '';
      return;
    }
    this.patchError.hidden = true;
    this.grid.hidden = false;
    const p = data.patching;
    if (!p) return;
    const gap = p.corrupted.loss - p.clean.loss;
    const rec = (o) => (Math.abs(gap) > 1e-9 ? (p.corrupted.loss - o.loss) / gap : 0);
    this.patchSummary.textContent = `On the clean answers: clean run loss ${fmt(p.clean.loss)} (accuracy ${pct(p.clean.acc)}), corrupted run loss `
      + `${fmt(p.corrupted.loss)} (accuracy ${pct(p.corrupted.acc)}). Cells: fraction of that loss gap each patch closes.`
      + (Math.abs(gap) < 1e-6 ? ' The two inputs give the same loss: there is nothing to restore.' : '');
    const T = p.seq_len;
    const pos = this.positionLabels(an, data, T);
    const layers = [...Array(p.n_layers).keys()].map((l) => `layer ${l}`);
    const heads = [];
    for (let l = 0; l < p.n_layers; l++) for (let h = 0; h < p.n_heads; h++) heads.push(`L${l}H${h}`);
    const panels = [
      { title: 'residual stream (resid_pre) · layer × position', rows: p.n_layers, cols: T, data: p.resid_pre.map(rec), rowLabels: layers, colLabels: pos, ra: 'layer', ca: 'position' },
      { title: 'head output (z, all positions) · head', rows: p.n_layers * p.n_heads, cols: 1, data: p.head_out.map(rec), rowLabels: heads, colLabels: ['all'], ra: 'head', ca: 'positions' },
      { title: 'head output (z) · head × position', rows: p.n_layers * p.n_heads, cols: T, data: p.head_out_by_pos.map(rec), rowLabels: heads, colLabels: pos, ra: 'head', ca: 'position' },
    ];
    if (!this.maps) {
      this.grid.replaceChildren();
      this.maps = panels.map((pn, i) => heatmapIn(this.grid, { palette: 'diverging', cell: 14, rowAxis: pn.ra, colAxis: pn.ca }, ['resid', 'head', 'head_pos'][i]));
    }
    panels.forEach((pn, i) => this.maps[i].set({ ...pn, max: 1 }));
  }

  positionLabels(an, data, T) {
    const names = data.attention?.positions ?? this.lastNames;
    if (names) this.lastNames = names;
    return names ?? [...Array(T).keys()].map(String);
  }
}
