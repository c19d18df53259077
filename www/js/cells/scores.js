// The Scores cell: one row per head (OV copying, QK argmax offsets, attention on the answer and
// on the prompt, direct logit attribution), then the DLA per component and per path, and the
// composition scores of 2+ layer models.
import { el, caption, fmt, diverging } from '../interp/heatmap.js';
import { taskNote } from './task-notes.js';

const pct = (x) => `${(x * 100).toFixed(1)}%`;

function table(head, rows) {
  const t = el('table', 'scores');
  const tr = el('tr');
  for (const h of head) {
    const th = el('th', '', h[0]);
    if (h[1]) th.title = h[1];
    tr.append(th);
  }
  t.append(tr);
  for (const r of rows) {
    const row = el('tr');
    for (const c of r) row.append(el('td', '', c));
    t.append(row);
  }
  return t;
}

/** Horizontal bars of signed values. */
function bars(items) {
  const box = el('div', 'dla-bars');
  const max = Math.max(1e-9, ...items.map((a) => Math.abs(a.mean)));
  for (const a of items) {
    const row = el('div', 'dla-row');
    const bar = el('span', 'dla-bar');
    bar.style.width = `${(Math.abs(a.mean) / max) * 50}%`;
    bar.style.left = a.mean < 0 ? `${50 - (Math.abs(a.mean) / max) * 50}%` : '50%';
    bar.style.background = diverging(Math.sign(a.mean) * 0.8);
    row.append(el('span', 'dla-label', a.label), el('span', 'dla-track', ''), el('span', 'dla-val', fmt(a.mean)));
    row.children[1].append(bar);
    box.append(row);
  }
  return box;
}

export class ScoresCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.root = root;
    caption(root, 'One row per head, on the selected snapshot. OV scores are taken over the task\'s value tokens; the QK offset is where each '
      + 'query token\'s favourite key lies. Attention numbers average the predicted positions of fresh samples. '
      + 'Direct logit attribution (DLA) splits the correct logit into what each part writes to it (TransformerLens convention: final LayerNorm '
      + 'frozen at its cached scale, weights processed with fold_ln and center_writing_weights).');
    taskNote(root, 'scores');
    this.body = el('div');
    root.append(this.body);
  }

  clear() {
    this.body.replaceChildren();
  }

  update(data, an) {
    const r = data.report;
    if (!r) return;
    this.body.replaceChildren();
    document.getElementById('scores-brief').textContent = `${r.samples} samples · loss ${r.eval.loss.toFixed(4)} · acc ${pct(r.eval.acc)}`;
    const rows = r.heads.map((h) => {
      const q = h.qk_token_argmax;
      const mode = q.histogram.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
      return [`L${h.layer}H${h.head}`, pct(h.ov_diagonal_fraction), fmt(h.ov_eigen_copying),
        `${pct(q.frac_above)} above · mode ${mode > 0 ? '+' : ''}${mode} · median ${q.median}`,
        pct(h.attention_to_answer), pct(h.attention_to_prompt), fmt(h.dla)];
    });
    this.body.append(table([
      ['head'],
      ['OV diagonal', 'fraction of value-token rows of W_E W_OV W_U whose argmax is on the diagonal'],
      ['OV eigen copying', 'Σ Re λ / Σ |λ| of the same block'],
      ['QK preferred key − query', 'argmax of each row of W_E W_QK W_Eᵀ (value tokens)'],
      ['attention on the answer', 'mean attention from predicted positions onto the position(s) holding the correct answer'],
      ['attention on the prompt', 'mean attention from predicted positions onto the prompt'],
      ['DLA', 'mean direct contribution of the head\'s output to the correct logit'],
    ], rows));
    const dla = el('div', 'dla');
    const left = el('div');
    const right = el('div');
    left.append(el('h3', '', `DLA per component (mean correct logit ${fmt(r.dla.logit)})`), bars(r.dla.components));
    right.append(el('h3', '', 'DLA per path (patterns and LN scales frozen)'), bars(r.dla.paths));
    dla.append(left, right);
    this.body.append(dla);
    if (r.composition) {
      const { n_layers: nl, n_heads: nh } = an.model;
      this.body.append(el('h3', '', 'Composition scores (TL: ‖W_A W_B‖_F / (‖W_A‖_F ‖W_B‖_F), earlier head A → later head B)'));
      const rows2 = [];
      for (let a = 0; a < nl * nh; a++) {
        for (let b = 0; b < nl * nh; b++) {
          if (Math.floor(b / nh) <= Math.floor(a / nh)) continue;
          const i = a * nl * nh + b;
          rows2.push([`L${Math.floor(a / nh)}H${a % nh} → L${Math.floor(b / nh)}H${b % nh}`, fmt(r.composition.q[i]), fmt(r.composition.k[i]), fmt(r.composition.v[i])]);
        }
      }
      this.body.append(table([['pair'], ['Q', 'B\'s queries read A\'s output'], ['K', 'B\'s keys read A\'s output'], ['V', 'B\'s values read A\'s output']], rows2));
    }
  }
}
