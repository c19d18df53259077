// The QK and OV circuit cells: full circuits of the selected head read off the weights
// (TL definitions, see src/interp/circuits.rs), as labelled heatmaps with a diverging
// palette centred at zero, hover values and zoom.
import { heatmapIn, el, caption, fmt } from '../interp/heatmap.js';
import { taskNote } from './task-notes.js';

/** A row of L{l}H{h} buttons; the selected head is the view state's layer/head. */
export function headPicker(root, ctx, model, layer, head, parts) {
  let bar = root.querySelector(':scope > .head-picker');
  if (!bar) {
    bar = el('div', 'head-picker controls');
    root.prepend(bar);
  }
  bar.replaceChildren(el('span', 'muted', 'head'));
  for (let l = 0; l < model.n_layers; l++) {
    for (let h = 0; h < model.n_heads; h++) {
      const b = el('button', l === layer && h === head ? 'primary' : '', `L${l}H${h}`);
      b.dataset.head = `L${l}H${h}`;
      b.onclick = () => {
        ctx.setView('view_layer', l);
        ctx.setView('view_head', h);
        ctx.recompute(parts);
      };
      bar.append(b);
    }
  }
}

/** A <select> of "direct" plus the heads of earlier layers; value "" or "l,h". */
function throughSelect(label, id, onChange) {
  const wrap = el('label', 'field through');
  const sel = el('select');
  sel.id = id;
  wrap.append(el('span', '', label), sel);
  sel.onchange = onChange;
  return { wrap, sel };
}

function fillThrough(sel, model, layer, direct, through) {
  const keep = sel.value;
  sel.replaceChildren(new Option(direct, ''));
  for (let l = 0; l < layer; l++) for (let h = 0; h < model.n_heads; h++) sel.append(new Option(through(`L${l}H${h}`), `${l},${h}`));
  sel.value = [...sel.options].some((o) => o.value === keep) ? keep : '';
  sel.parentElement.hidden = layer === 0;
}

const through = (v) => (v ? JSON.stringify([v.split(',').map(Number)]) : '');

/**
 * The induction structure of a layer-1 head: for each layer-0 head, TL's K-composition score and
 * how diagonal W_E W_QK (W_E W_OV^prev)ᵀ is (the key side reading the previous token's OV output
 * is what makes an induction head), with a button that shows that K-composition circuit here.
 */
function inductionLine(root, paths, kSel, recompute) {
  root.replaceChildren();
  if (!paths?.length) return;
  const best = paths.reduce((a, p) => (p.diagonal_fraction > a.diagonal_fraction ? p : a));
  root.append(el('span', '', 'Induction structure (K-composition into this head): '
    + paths.map((p) => `L0H${p.prev_head} → score ${fmt(p.k_composition)}, diagonal ${fmt(p.diagonal_fraction)}`).join(' · ')
    + '. '));
  const b = el('button', '', `key side through L0H${best.prev_head}`);
  b.onclick = () => {
    kSel.value = `0,${best.prev_head}`;
    recompute();
  };
  root.append(b);
}

/** The argmax-offset histogram as a small column chart. */
function offsetBars(root, s) {
  root.replaceChildren();
  const max = Math.max(...s.histogram.map(([, n]) => n));
  const box = el('div', 'offset-bars');
  for (const [o, n] of s.histogram) {
    const col = el('div', 'ob-col');
    col.title = `${n} query token${n > 1 ? 's' : ''} prefer key = query ${o >= 0 ? '+' : '−'} ${Math.abs(o)}`;
    const bar = el('div', `ob-bar${o > 0 ? ' above' : o < 0 ? ' below' : ''}`);
    bar.style.height = `${(n / max) * 60}px`;
    col.append(el('span', 'ob-n', String(n)), bar, el('span', 'ob-x', `${o > 0 ? '+' : ''}${o}`));
    box.append(col);
  }
  root.append(box);
}

export class QkCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.root = root;
    caption(root, 'The full QK circuit: the attention score (before softmax, including 1/√d_head) a query gives a key through the embeddings alone. '
      + 'Rows are what the destination holds (its token, or its position), columns what the source holds.');
    taskNote(root, 'qk');
    const paths = el('div', 'controls paths');
    this.q = throughSelect('query side', 'qk-q-through', () => ctx.recompute(['qk']));
    this.k = throughSelect('key side', 'qk-k-through', () => ctx.recompute(['qk']));
    paths.append(this.q.wrap, this.k.wrap);
    root.append(paths);
    this.induction = el('p', 'qk-induction');
    this.summary = el('div', 'qk-summary');
    root.append(this.induction, this.summary);
    this.grid = el('div', 'hm-grid qk-grid');
    root.append(this.grid);
    this.maps = null;
  }

  qThrough(layer) {
    return layer > 0 ? through(this.q.sel.value) : '';
  }

  kThrough(layer) {
    return layer > 0 ? through(this.k.sel.value) : '';
  }

  clear() {
    this.grid.replaceChildren();
    this.induction.replaceChildren();
    this.summary.replaceChildren();
    this.maps = null;
  }

  update(data, an) {
    const v = data.qk;
    if (!v) return;
    headPicker(this.root, this.ctx, an.model, data.layer, data.head, ['qk', 'ov', 'attention']);
    fillThrough(this.q.sel, an.model, data.layer, 'direct (query embeddings)', (h) => `through ${h}'s OV (Q-composition)`);
    fillThrough(this.k.sel, an.model, data.layer, 'direct (key embeddings)', (h) => `through ${h}'s OV (K-composition)`);
    document.getElementById('qk-brief').textContent = `L${v.layer}H${v.head} · step ${v.step.toLocaleString('en-US')}`;
    inductionLine(this.induction, data.inductionPaths, this.k.sel, () => this.ctx.recompute(['qk']));
    const s = v.argmax;
    const n = s.offsets.length;
    const count = (o) => s.histogram.find(([x]) => x === o)?.[1] ?? 0;
    this.summary.replaceChildren();
    const pref = v.prompt_preference;
    const text = el('p', 'qk-argmax', `${v.q_path} ⋅ W_QK ⋅ (${v.k_path})ᵀ, scaled by 1/√d_head = ${fmt(v.scale)}. Over the ${n} value tokens, the preferred key `
      + `(row argmax of token·token, outlined) is above the query for ${Math.round(s.frac_above * 100)}%, equal for ${Math.round(s.frac_equal * 100)}%, `
      + `below for ${Math.round(s.frac_below * 100)}%; exactly +1 for ${count(1)} of ${n}; median offset ${s.median > 0 ? '+' : ''}${s.median}.`
      + (pref == null ? '' : ` By position alone (position·position, dashed line = end of the prompt), predicted positions score prompt keys `
        + `${fmt(Math.abs(pref))} ${pref >= 0 ? 'higher' : 'lower'} than keys after it${pref > 0 ? ': the answer so far is avoided' : ''}.`));
    const bars = el('div', 'qk-bars');
    this.summary.append(text, el('span', 'muted', 'preferred key − query token:'), bars);
    offsetBars(bars, s);
    const panels = [
      ['tok_tok', 'token · token', v.token_labels, v.token_labels, 'query token', 'key token'],
      ['tok_pos', 'token · position', v.token_labels, v.position_names, 'query token', 'key position'],
      ['pos_tok', 'position · token', v.position_names, v.token_labels, 'query position', 'key token'],
      ['pos_pos', 'position · position', v.position_names, v.position_names, 'query position', 'key position'],
    ];
    if (!this.maps) {
      this.grid.replaceChildren();
      this.maps = panels.map(([key, , , , ra, ca]) => heatmapIn(this.grid, { palette: 'diverging', rowAxis: ra, colAxis: ca }, key));
    }
    panels.forEach(([key, title, rl, cl], i) => {
      const m = v[key];
      const isPos = (labels) => labels === v.position_names;
      this.maps[i].set({ rows: m.rows, cols: m.cols, data: m.data, rowLabels: rl, colLabels: cl, causal: key === 'pos_pos',
        colSplit: isPos(cl) ? v.prompt_len : undefined, rowSplit: isPos(rl) ? v.prompt_len : undefined,
        title: `${title} (${m.rows}×${m.cols})`,
        marks: key === 'tok_tok' ? s.offsets.map((o, n) => [v.value_tokens[0] + n, v.value_tokens[0] + n + o]) : undefined });
    });
  }
}

export class OvCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.root = root;
    caption(root, 'The full OV circuit W_E·W_OV·W_U: row = the token the head attends to, column = the output logit it raises (or lowers). '
      + 'A bright diagonal means the head copies what it attends to. '
      + 'The position panel shows what attending to a position writes, whatever token is there.');
    taskNote(root, 'ov');
    const paths = el('div', 'controls paths');
    this.before = throughSelect('first through', 'ov-through', () => ctx.recompute(['ov']));
    paths.append(this.before.wrap);
    root.append(paths);
    this.summary = el('p', 'ov-summary');
    root.append(this.summary);
    this.grid = el('div', 'hm-grid ov-grid');
    root.append(this.grid);
    this.maps = null;
  }

  /** JSON list of heads the circuit runs through: an optional earlier head (virtual OV), then the selected one. */
  through(layer, head) {
    const v = layer > 0 ? this.before.sel.value : '';
    const list = v ? [v.split(',').map(Number), [layer, head]] : [[layer, head]];
    return JSON.stringify(list);
  }

  clear() {
    this.grid.replaceChildren();
    this.summary.textContent = '';
    this.maps = null;
  }

  update(data, an) {
    const v = data.ov;
    if (!v) return;
    headPicker(this.root, this.ctx, an.model, data.layer, data.head, ['qk', 'ov', 'attention']);
    fillThrough(this.before.sel, an.model, data.layer, 'nothing (the head\'s own OV)', (h) => `${h} (virtual OV: ${h} then this head)`);
    document.getElementById('ov-brief').textContent = `${v.path} · diagonal ${Math.round(v.diagonal_fraction * 100)}% · step ${v.step.toLocaleString('en-US')}`;
    this.summary.textContent = `${v.path}·W_U: on the value tokens, ${Math.round(v.diagonal_fraction * 100)}% of rows have their largest logit on the diagonal `
      + `(1.0 = copies every token); eigenvalue copying score Σλ/Σ|λ| = ${fmt(v.eigen_copying)} (+1 copying, −1 suppressing, ~0 neither).`;
    if (!this.maps) {
      this.grid.replaceChildren();
      this.maps = ['token', 'pos'].map((key) => heatmapIn(this.grid, { palette: 'diverging', rowAxis: key === 'token' ? 'source token' : 'source position', colAxis: 'output logit' }, key));
    }
    this.maps[0].set({ rows: v.token.rows, cols: v.token.cols, data: v.token.data, rowLabels: v.token_labels, colLabels: v.output_labels,
      title: `${v.path}·W_U: source token → logit`, marks: diagonalArgmax(v.token, v.value_tokens) });
    this.maps[1].set({ rows: v.pos.rows, cols: v.pos.cols, data: v.pos.data, rowLabels: v.position_names, colLabels: v.output_labels,
      title: posOvTitle(an.model?.positional_embedding_type) });
  }
}

/** The title of the W_pos OV map: zero unless positions are standard (a shortformer model
 * adds W_pos to the queries and keys only, so the values never see it). */
function posOvTitle(positions) {
  if (positions === 'shortformer') return 'W_pos through the same heads: zero (shortformer positions reach queries and keys only, never the values)';
  if (positions === 'off') return 'W_pos through the same heads: zero (positions off)';
  return 'W_pos through the same heads: source position → logit';
}

/** [r, r] for each value token r whose row's largest entry is on the diagonal. */
function diagonalArgmax(m, [start, end]) {
  const marks = [];
  for (let r = start; r < end; r++) if (argmaxRow(m, r) === r) marks.push([r, r]);
  return marks;
}

function argmaxRow(m, r) {
  let best = 0;
  for (let c = 1; c < m.cols; c++) if (m.data[r * m.cols + c] > m.data[r * m.cols + best]) best = c;
  return best;
}
