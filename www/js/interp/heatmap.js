// Canvas heatmaps for the analysis cells: labelled rows and columns, a diverging palette
// centred at zero (or a sequential one for probabilities), greyed masked cells, hover for
// the value, click to lock, and zoom (the − / + buttons or Ctrl + wheel). Text is drawn on
// the canvas or set with textContent, never as markup.
import { nextTask } from '../next-task.js';

const PAD = 4;
const FONT_FAMILY = 'ui-monospace, Menlo, Consolas, monospace';

/** RdBu-like: negative red, zero white, positive blue (t in [-1, 1]) as [r, g, b]. */
export function divergingRGB(t) {
  const x = Math.max(-1, Math.min(1, t || 0));
  const a = Math.abs(x) ** 0.8;
  const [r, g, b] = x < 0 ? [178, 24, 43] : [33, 102, 172];
  return [Math.round(255 + (r - 255) * a), Math.round(255 + (g - 255) * a), Math.round(255 + (b - 255) * a)];
}

/** White to dark blue (t in [0, 1]) as [r, g, b]. */
export function sequentialRGB(t) {
  const a = Math.max(0, Math.min(1, t || 0)) ** 0.7;
  return [Math.round(255 - 225 * a), Math.round(255 - 160 * a), Math.round(255 - 90 * a)];
}

const css = ([r, g, b]) => `rgb(${r},${g},${b})`;
export const diverging = (t) => css(divergingRGB(t));
export const sequential = (t) => css(sequentialRGB(t));

// The palettes as tables of opaque RGBA pixels (one 32-bit word each, in the byte order of
// ImageData on this machine), LUT_N steps over the palette's range.
const LUT_N = 1024;
const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const pack = ([r, g, b]) => (LITTLE ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0);
const lut = (rgb, lo) => Uint32Array.from({ length: LUT_N }, (_, n) => pack(rgb(lo + (n / (LUT_N - 1)) * (1 - lo))));
const DIV_LUT = lut(divergingRGB, -1);
const SEQ_LUT = lut(sequentialRGB, 0);
const PACKED_MASKED = pack([228, 230, 234]);

export const fmt = (v) => (v == null || Number.isNaN(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3));

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Heatmaps are drawn from a queue: set(), highlight() and zoom() only queue the map, and the
// queue is drained in slices of about SLICE_MS, each its own browser task, so a cell that sets
// many large maps at once (the attention cell: one map per head and the score terms, T × T
// each) never holds the main thread for long. drawn() resolves when the queue is empty.
const SLICE_MS = 12;
const queued = new Set();
let draining = null;
let drawMs = 0;

function request(map) {
  queued.add(map);
  draining ??= (async () => {
    while (queued.size) {
      await nextTask();
      const t = performance.now();
      for (const m of queued) {
        queued.delete(m);
        try {
          m.render();
        } catch (e) {
          console.error('heatmap:', e);
        }
        if (performance.now() - t > SLICE_MS) break;
      }
      drawMs += performance.now() - t;
    }
    draining = null;
  })();
}

/** Resolves when every queued heatmap has been drawn. */
export const drawn = () => draining ?? Promise.resolve();
/** Milliseconds spent drawing queued heatmaps since the page loaded. */
export const drawingMs = () => drawMs;

export class Heatmap {
  /**
   * @param {HTMLElement} root
   * @param {{title?: string, palette?: 'diverging'|'sequential', cell?: number, rowAxis?: string, colAxis?: string,
   *   compact?: boolean}} opts
   */
  constructor(root, opts = {}) {
    this.opts = { palette: 'diverging', cell: 'auto', rowAxis: 'row', colAxis: 'column', ...opts };
    this.cell = this.opts.cell === 'auto' ? 12 : this.opts.cell;
    this.zoomed = false;
    this.root = el('div', `heatmap${opts.compact ? ' compact' : ''}`);
    root.append(this.root);
    const head = el('div', 'hm-head');
    this.title = el('span', 'hm-title', opts.title ?? '');
    this.readout = el('span', 'hm-readout', ' ');
    const zoom = el('span', 'hm-zoom');
    const minus = el('button', '', '−');
    const plus = el('button', '', '+');
    minus.title = 'zoom out';
    plus.title = 'zoom in (or Ctrl + wheel over the map)';
    minus.onclick = () => this.zoom(-2);
    plus.onclick = () => this.zoom(2);
    zoom.append(minus, plus);
    head.append(this.title, zoom);
    this.scroll = el('div', 'hm-scroll');
    this.canvas = el('canvas');
    this.scroll.append(this.canvas);
    this.legend = el('div', 'hm-legend');
    this.root.append(head, this.scroll, this.readout, this.legend);
    this.hoverCb = null;
    this.clickCb = null;
    this.locked = null;
    this.hl = null; // {row} or {col} highlighted
    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => this.onLeave());
    this.canvas.addEventListener('click', (e) => this.onClickEv(e));
    this.canvas.addEventListener('wheel', (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      this.zoom(e.deltaY < 0 ? 2 : -2);
    }, { passive: false });
  }

  /**
   * @param {{rows: number, cols: number, data: ArrayLike<number>, rowLabels?: string[], colLabels?: string[],
   *   causal?: boolean, marks?: [number, number][], max?: number,
   *   title?: string, colSplit?: number, rowSplit?: number}} d  causal: the cells above the diagonal (j > i) are
   *   masked (greyed, left out of the scale); marks: [row, column] of the cells to outline; splits: draw a divider
   *   before that column/row
   */
  set(d) {
    this.d = d;
    // 'auto': about 420 px for the larger side, labels readable (≥ 8 px) up to ~50 rows
    if (this.opts.cell === 'auto' && !this.zoomed) this.cell = Math.max(4, Math.min(16, Math.floor(420 / Math.max(d.rows, d.cols))));
    if (d.title !== undefined) this.title.textContent = d.title;
    this.fresh = true;
    request(this);
  }

  /** Draws the map (queued: see request); new data is painted first. */
  render() {
    if (!this.d) return;
    if (this.fresh) {
      this.fresh = false;
      this.scale();
      this.drawLegend();
      this.paint();
    }
    this.draw();
  }

  /** The colour scale's end: d.max, else the largest |value| of the unmasked cells. */
  scale() {
    const d = this.d;
    let max = d.max;
    if (max === undefined) {
      max = 0;
      for (let i = 0; i < d.rows; i++) {
        for (let j = 0; j < d.cols; j++) {
          if (d.causal && j > i) break;
          const v = d.data[i * d.cols + j];
          if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
        }
      }
    }
    this.max = max || 1;
  }

  zoom(step) {
    this.zoomed = true;
    this.cell = Math.max(3, Math.min(28, this.cell + step));
    request(this);
  }

  layout() {
    const d = this.d;
    const ctx = this.canvas.getContext('2d');
    this.font = `${Math.min(10, this.cell)}px ${FONT_FAMILY}`;
    if (this.font !== this.widthsFont) this.widths = new Map();
    this.widthsFont = this.font;
    ctx.font = this.font;
    const show = this.cell >= 7;
    const width = (l) => {
      if (!this.widths.has(l)) this.widths.set(l, ctx.measureText(l).width);
      return this.widths.get(l);
    };
    const w = (labels) => (show && labels ? Math.max(0, ...labels.map(width)) + 6 : 0);
    this.left = Math.ceil(w(d.rowLabels)) + PAD;
    this.top = Math.ceil(w(d.colLabels)) + PAD;
    return show;
  }

  /**
   * The cells as one pixel each in an offscreen canvas (scaled up without smoothing when
   * drawn): rebuilt only when the data changes, so highlighting a row or zooming is cheap.
   */
  paint() {
    const d = this.d;
    const lut = this.opts.palette === 'sequential' ? SEQ_LUT : DIV_LUT;
    const lo = this.opts.palette === 'sequential' ? 0 : -1;
    const scale = (LUT_N - 1) / (1 - lo);
    const img = new ImageData(d.cols, d.rows);
    const px = new Uint32Array(img.data.buffer); // one RGBA pixel per word (see pack)
    for (let i = 0; i < d.rows; i++) {
      const row = i * d.cols;
      const open = d.causal ? Math.min(i + 1, d.cols) : d.cols; // cells at j >= open are masked
      for (let j = 0; j < open; j++) {
        const t = Math.max(lo, Math.min(1, d.data[row + j] / this.max || 0));
        px[row + j] = lut[Math.round((t - lo) * scale)];
      }
      px.fill(PACKED_MASKED, row + open, row + d.cols);
    }
    const off = this.off ?? (this.off = document.createElement('canvas'));
    if (off.width !== d.cols) off.width = d.cols;
    if (off.height !== d.rows) off.height = d.rows;
    off.getContext('2d').putImageData(img, 0, 0);
  }

  draw() {
    const d = this.d;
    if (!d || !this.off) return;
    const showLabels = this.layout();
    const dpr = window.devicePixelRatio || 1;
    const W = this.left + d.cols * this.cell + PAD;
    const H = this.top + d.rows * this.cell + PAD;
    // resizing a canvas reallocates it: only when the size changes (else just clear it)
    const cw = Math.ceil(W * dpr);
    const ch = Math.ceil(H * dpr);
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
      this.canvas.style.width = `${W}px`;
      this.canvas.style.height = `${H}px`;
    }
    // geometry for tests and tools: rows, cols, label margins, cell size (CSS pixels)
    const dims = [d.rows, d.cols, this.left, this.top, this.cell].join(',');
    if (this.root.dataset.dims !== dims) this.root.dataset.dims = dims;
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const c = this.cell;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.off, this.left, this.top, d.cols * c, d.rows * c);
    if (d.marks?.length) {
      ctx.strokeStyle = '#111';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (const [i, j] of d.marks) ctx.rect(this.left + j * c + 1, this.top + i * c + 1, c - 2, c - 2);
      ctx.stroke();
    }
    ctx.strokeStyle = '#c9ced6';
    ctx.lineWidth = 1;
    ctx.strokeRect(this.left - 0.5, this.top - 0.5, d.cols * c + 1, d.rows * c + 1);
    ctx.strokeStyle = '#39414f';
    ctx.setLineDash([3, 2]);
    if (d.colSplit > 0 && d.colSplit < d.cols) {
      ctx.beginPath();
      ctx.moveTo(this.left + d.colSplit * c, this.top - 3);
      ctx.lineTo(this.left + d.colSplit * c, this.top + d.rows * c + 3);
      ctx.stroke();
    }
    if (d.rowSplit > 0 && d.rowSplit < d.rows) {
      ctx.beginPath();
      ctx.moveTo(this.left - 3, this.top + d.rowSplit * c);
      ctx.lineTo(this.left + d.cols * c + 3, this.top + d.rowSplit * c);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    const hl = this.locked ?? this.hl;
    if (hl) {
      ctx.strokeStyle = '#f0a020';
      ctx.lineWidth = 2;
      if (hl.row !== undefined) ctx.strokeRect(this.left, this.top + hl.row * c, d.cols * c, c);
      if (hl.col !== undefined) ctx.strokeRect(this.left + hl.col * c, this.top, c, d.rows * c);
    }
    if (showLabels) {
      ctx.font = this.font;
      ctx.fillStyle = '#4a5261';
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'right';
      (d.rowLabels ?? []).forEach((l, i) => ctx.fillText(l, this.left - 4, this.top + i * c + c / 2));
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      (d.colLabels ?? []).forEach((l, j) => ctx.fillText(l, -(this.top - 4), this.left + j * c + c / 2));
      ctx.restore();
    }
  }

  drawLegend() {
    this.legend.replaceChildren();
    const seq = this.opts.palette === 'sequential';
    const bar = el('span', 'hm-bar');
    const stops = seq ? [0, 0.25, 0.5, 0.75, 1].map((t) => sequential(t)) : [-1, -0.5, 0, 0.5, 1].map((t) => diverging(t));
    bar.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
    this.legend.append(el('span', '', seq ? '0' : fmt(-this.max)), bar, el('span', '', fmt(this.max)));
    if (!seq) this.legend.append(el('span', 'muted', ' (white = 0)'));
  }

  cellAt(e) {
    const d = this.d;
    if (!d) return null;
    const r = this.canvas.getBoundingClientRect();
    const j = Math.floor((e.clientX - r.left - this.left) / this.cell);
    const i = Math.floor((e.clientY - r.top - this.top) / this.cell);
    if (i < 0 || j < 0 || i >= d.rows || j >= d.cols) return null;
    return { i, j };
  }

  describe(i, j) {
    const d = this.d;
    const rl = d.rowLabels?.[i] ?? String(i);
    const cl = d.colLabels?.[j] ?? String(j);
    const v = d.data[i * d.cols + j];
    const val = d.causal && j > i ? 'masked (causal: a query never sees later keys)' : fmt(v);
    return `${this.opts.rowAxis} ${rl} → ${this.opts.colAxis} ${cl}: ${val}`;
  }

  onMove(e) {
    const c = this.cellAt(e);
    if (!c) return this.onLeave();
    const text = this.describe(c.i, c.j);
    this.readout.textContent = text;
    this.root.dataset.hover = text;
    this.canvas.title = text;
    this.hoverCb?.(c.i, c.j, this.d.data[c.i * this.d.cols + c.j]);
  }

  onLeave() {
    this.readout.textContent = this.locked ? this.readout.textContent : ' ';
    this.hoverCb?.(null, null, null);
  }

  onClickEv(e) {
    const c = this.cellAt(e);
    this.clickCb?.(c ? c.i : null, c ? c.j : null);
  }

  /** Outline row `row` (or column `col`); null clears. */
  highlight(h) {
    this.hl = h;
    request(this);
  }

  onHover(cb) {
    this.hoverCb = cb;
    return this;
  }

  onClick(cb) {
    this.clickCb = cb;
    return this;
  }

  remove() {
    this.root.remove();
  }
}

/** A new heatmap in its own box appended to `grid`; `panel` names the box (data-panel). */
export function heatmapIn(grid, opts, panel) {
  const box = el('div', 'hm-cellbox');
  if (panel) box.dataset.panel = panel;
  grid.append(box);
  return new Heatmap(box, opts);
}

/** A caption paragraph: what the view shows and what to look for. */
export function caption(root, text) {
  const p = el('p', 'caption', text);
  root.append(p);
  return p;
}

export { el };
