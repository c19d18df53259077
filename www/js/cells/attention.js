// The Attention cell (CircuitsVis-like): the input as tokens, one small pattern heatmap per
// head, hover a destination token (a token or a heatmap row) to see where every head
// attends from there, click to lock it; the causal half is greyed and the answer
// positions of a prediction are outlined. Below, the selected head's attention scores on
// this input split into token·token, token·pos, pos·token and pos·pos terms.
import { heatmapIn, el, caption, fmt, sequential } from '../interp/heatmap.js';
import { taskNote } from './task-notes.js';

const PART = { tok: 'token', pos: 'position', prev: 'earlier layers', bias: 'bias' };

export class AttentionCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.root = root;
    const form = el('form', 'try attn-form');
    this.input = el('input');
    this.input.id = 'attn-input';
    this.input.type = 'text';
    this.input.autocomplete = 'off';
    this.input.spellcheck = false;
    this.input.value = ctx.view('view_input');
    const show = el('button', '', 'Show');
    show.type = 'submit';
    const fresh = el('button', '', 'Fresh sample');
    fresh.type = 'button';
    form.append(this.input, show, fresh);
    form.onsubmit = (e) => {
      e.preventDefault();
      ctx.setView('view_input', this.input.value.trim());
      ctx.recompute(['attention']);
    };
    fresh.onclick = () => {
      this.input.value = '';
      ctx.setView('view_input', '');
      ctx.recompute(['attention']);
    };
    root.append(form);
    this.error = el('p', 'error');
    this.error.hidden = true;
    root.append(this.error);
    caption(root, 'Type a prompt (the model is shown the correct answer after it, as in training). Hover a token or a heatmap row to pick a destination; '
      + 'click to lock it. Rows are destinations (queries), columns sources (keys); grey cells are masked (a token never sees later ones); '
      + 'outlined cells hold the correct answer.');
    taskNote(root, 'attention');
    this.strip = el('div', 'seq attn-strip');
    this.info = el('p', 'attn-info muted', ' ');
    root.append(this.strip, this.info);
    this.grid = el('div', 'hm-grid attn-grid');
    root.append(this.grid);
    root.append(el('h3', '', 'Where the scores come from'));
    this.decompNote = caption(root, '');
    this.decompGrid = el('div', 'hm-grid decomp-grid');
    root.append(this.decompGrid);
    this.maps = [];
    this.decompMaps = [];
    this.dest = null;
    this.locked = null;
  }

  clear() {
    this.grid.replaceChildren();
    this.decompGrid.replaceChildren();
    this.strip.replaceChildren();
    this.maps = [];
    this.decompMaps = [];
    this.info.textContent = ' ';
  }

  update(data) {
    if (!data.attention && !data.error) return;
    if (data.error && !data.attention) {
      this.error.textContent = data.error;
      this.error.hidden = false;
      return;
    }
    this.error.hidden = true;
    const a = data.attention;
    this.a = a;
    this.layer = data.layer;
    this.head = data.head;
    if (document.activeElement !== this.input) this.input.value = this.ctx.view('view_input') || a.text;
    document.getElementById('attention-brief').textContent = `step ${a.step.toLocaleString('en-US')} · ${a.text}`;
    const T = a.tokens.length;
    const tok = (t) => (t === ' ' ? '␣' : t);
    const labels = a.tokens.map((t, i) => (a.positions[i] === tok(t) ? tok(t) : `${a.positions[i]} ${tok(t)}`));
    // the cells holding the correct answer of each predicted position
    const marks = a.pred_positions.flatMap((i) => a.answer_sources[i].map((j) => [i, j]));
    // one heatmap per head
    const nl = a.patterns.length;
    const nh = a.patterns[0].length;
    if (this.maps.length !== nl * nh) {
      this.grid.replaceChildren();
      this.maps = [];
      for (let l = 0; l < nl; l++) {
        for (let h = 0; h < nh; h++) {
          const m = heatmapIn(this.grid, { palette: 'sequential', cell: T > 40 ? 5 : 12, rowAxis: 'destination', colAxis: 'source', compact: true });
          m.root.dataset.head = `L${l}H${h}`;
          m.onHover((i) => this.setDest(i === null ? null : i, false));
          m.onClick((i) => {
            this.locked = this.locked === i ? null : i;
            this.setDest(i, true);
            this.ctx.setView('view_layer', l);
            this.ctx.setView('view_head', h);
            this.ctx.recompute(['attention', 'qk', 'ov']);
          });
          this.maps.push({ m, l, h });
        }
      }
    }
    for (const { m, l, h } of this.maps) {
      const p = a.patterns[l][h];
      m.root.classList.toggle('selected', l === data.layer && h === data.head);
      m.set({
        rows: p.rows, cols: p.cols, data: p.data, rowLabels: labels, colLabels: labels, max: 1,
        title: `L${l}H${h}${l === data.layer && h === data.head ? ' (selected)' : ''}`,
        causal: true, marks,
      });
    }
    this.renderStrip();
    this.setDest(this.locked ?? this.dest ?? a.pred_positions[0], !!this.locked);
    this.renderDecomposition(data.decomposition, labels);
  }

  renderStrip() {
    const a = this.a;
    this.strip.replaceChildren();
    this.chips = a.tokens.map((t, i) => {
      const c = el('span', 'tok', t === ' ' ? '␣' : t);
      c.title = `position ${i} (${a.positions[i]})`;
      if (a.guesses[i]) c.classList.add(a.guesses[i][1] ? 'target' : 'wrong');
      c.addEventListener('mouseenter', () => this.setDest(i, false));
      c.addEventListener('click', () => {
        this.locked = this.locked === i ? null : i;
        this.setDest(i, true);
      });
      this.strip.append(c);
      return c;
    });
  }

  /** Shows where every head attends from destination `i` (null: the locked one, if any). */
  setDest(i, force) {
    if (!this.a) return;
    if (this.locked !== null && !force) i = this.locked;
    if (i === null || i === undefined) return;
    this.dest = i;
    const a = this.a;
    for (const { m } of this.maps) m.highlight({ row: i });
    const sel = a.patterns[this.layer]?.[this.head];
    if (!sel) return;
    const row = sel.data.slice(i * sel.cols, (i + 1) * sel.cols);
    this.chips?.forEach((c, j) => {
      c.style.background = j <= i ? sequential(row[j]) : '';
      c.style.color = row[j] > 0.6 ? '#fff' : '';
      c.classList.toggle('dest', j === i);
    });
    const src = a.answer_sources[i] ?? [];
    const sum = (js) => js.reduce((s, j) => s + row[j], 0);
    const top = [...row.keys()].filter((j) => j <= i).sort((x, y) => row[y] - row[x]).slice(0, 3);
    let text = `L${this.layer}H${this.head} from position ${i} (${a.positions[i]}, token ${a.tokens[i]}): `
      + top.map((j) => `${a.positions[j]}=${a.tokens[j]} ${fmt(row[j])}`).join(', ');
    if (a.pred_positions.includes(i)) {
      const g = a.guesses[i + 1];
      text += ` · predicts ${a.tokens[i + 1]}${g ? ` (model: ${g[0]}${g[1] ? ', right' : ', wrong'})` : ''}`;
      if (src.length) text += ` · attention on the answer position${src.length > 1 ? 's' : ''} ${src.map((j) => a.positions[j]).join(', ')}: ${fmt(sum(src))}`;
    }
    if (this.locked !== null) text += ' · locked (click again to unlock)';
    this.info.textContent = text;
  }

  renderDecomposition(d, labels) {
    if (!d) return;
    const main = [['tok', 'tok'], ['tok', 'pos'], ['pos', 'tok'], ['pos', 'pos']];
    const T = labels.length;
    const rest = new Float64Array(T * T);
    let hasRest = false;
    for (const t of d.terms) {
      if (!main.some(([q, k]) => q === t.query && k === t.key)) {
        hasRest = true;
        t.scores.data.forEach((v, i) => { rest[i] += v; });
      }
    }
    const panels = main.map(([q, k]) => {
      const t = d.terms.find((x) => x.query === q && x.key === k);
      return { title: `${PART[q]} · ${PART[k]}`, data: t.scores.data };
    });
    if (hasRest) panels.push({ title: 'all terms with earlier layers or biases', data: rest });
    let max = 0;
    for (const p of panels) for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) max = Math.max(max, Math.abs(p.data[i * T + j]));
    this.decompNote.textContent = `L${d.layer}H${d.head} on this input: the attention scores (before softmax, with 1/√d_head) are the sum of these terms `
      + '(query part · key part through W_QK). Only the lower triangle counts. Token·token is the content rule (which values attract which), '
      + 'the position terms say which positions are preferred regardless of content.'
      + (hasRest ? ' For a LayerNorm model the parts are divided by the cached LN scale (TL convention); biases include the folded LN bias.' : '');
    if (this.decompMaps.length !== panels.length) {
      this.decompGrid.replaceChildren();
      this.decompMaps = panels.map(() => heatmapIn(this.decompGrid, { palette: 'diverging', cell: T > 40 ? 5 : 10, rowAxis: 'query', colAxis: 'key', compact: true }));
    }
    panels.forEach((p, n) => this.decompMaps[n].set({ rows: T, cols: T, data: p.data, rowLabels: labels, colLabels: labels, max, title: p.title, causal: true }));
  }
}
