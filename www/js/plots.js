// Training charts (uPlot): loss on a log axis with the task's loss floor, accuracy, gradient
// norm and learning rate, all against the step. `Charts.push(rows)` appends metrics rows; for a
// finite dataset `Charts.pushSplit(point)` adds the train and test splits' loss and accuracy to the
// loss and accuracy charts (grokking: the test curve closes on the train curve long after it).
// A long run keeps a bounded number of points (thin.js); the loss chart's title says when one
// point covers several steps.
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { Curves } from './thin.js';
import { nextTask } from './next-task.js';

const COLORS = { loss: '#1f5fa8', floor: '#b0413e', tok: '#1f5fa8', seq: '#5b8c3a', grad: '#7a4ea3', lr: '#a86a1f',
  train: '#d08a1e', test: '#c0392b' };
const HEIGHT = 190;

function series(label, stroke, extra = {}) {
  return { label, stroke, width: 1.5, points: { show: false }, ...extra };
}

function chart(target, title, ys, yScale, yFmt) {
  const opts = {
    title, width: 400, height: HEIGHT,
    scales: { x: { time: false }, y: yScale },
    axes: [
      { label: 'step', size: 36, labelSize: 14, incrs: STEP_INCRS },
      { size: 54, values: (u, vals) => vals.map(yFmt) },
    ],
    series: [{ label: 'step' }, ...ys],
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
  };
  const data = [[], ...ys.map(() => [])];
  return new uPlot(opts, data, target);
}

const fmtLoss = (v) => (v == null ? '' : v >= 0.01 ? +v.toPrecision(2) + '' : v.toExponential(0));
const fmtPct = (v) => (v == null ? '' : `${Math.round(v * 100)}%`);
const fmtSmall = (v) => (v == null ? '' : Math.abs(v) >= 0.01 || v === 0 ? +v.toPrecision(3) + '' : v.toExponential(1).replace('.0e', 'e'));
// Whole-step tick spacings for the x axis.
const STEP_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6].map((p) => m * p)).sort((a, b) => a - b);

/**
 * The curves' columns with a finite dataset's split points merged in: one x axis (the union of
 * the metrics' and the split points' steps), and train_loss, test_loss, train_acc, test_acc
 * columns holding null where a step has no split point (the series span the gaps). Metrics
 * columns hold null at a split point's step that has no metrics point (step 0, thinned steps).
 */
export function withSplits(cols, splits) {
  if (!splits?.length) {
    if (!splits) return cols;
    const none = cols.step.map(() => null);
    return { ...cols, train_loss: none, test_loss: none, train_acc: none, test_acc: none };
  }
  const at = new Map(splits.map((p) => [p.step, p]));
  const steps = [...new Set([...cols.step, ...at.keys()])].sort((a, b) => a - b);
  const row = new Map(cols.step.map((s, i) => [s, i]));
  const out = {};
  for (const k of Object.keys(cols)) out[k] = steps.map((s) => (row.has(s) ? cols[k][row.get(s)] : null));
  out.step = steps;
  const pos = (x) => (x > 0 ? x : null); // a log axis has no 0
  out.train_loss = steps.map((s) => (at.has(s) ? pos(at.get(s).train.loss) : null));
  out.test_loss = steps.map((s) => (at.has(s) ? pos(at.get(s).test.loss) : null));
  out.train_acc = steps.map((s) => (at.has(s) ? at.get(s).train.token_acc : null));
  out.test_acc = steps.map((s) => (at.has(s) ? at.get(s).test.token_acc : null));
  return out;
}

export class Charts {
  /**
   * The four charts are built one per task (the first at once), and new rows redraw them one
   * chart per task, so neither starting a run nor a burst of metrics holds the page long; rows
   * pushed before a chart exists are drawn when it is built.
   * @param {HTMLElement} root  @param {number} floor  the task's loss floor (nats)
   * @param {{splits?: boolean}} opts  splits: plot a finite dataset's train and test curves too
   */
  constructor(root, floor, { splits = false } = {}) {
    root.replaceChildren();
    const box = () => root.appendChild(Object.assign(document.createElement('div'), { className: 'chart' }));
    this.floor = floor;
    this.lossTitle = `loss (nats, log scale)${floor > 0 ? '' : ' · floor 0'}`;
    const floorSeries = floor > 0 ? [series(`loss floor ${floor.toFixed(4)}`, COLORS.floor, { dash: [6, 4], width: 1 })] : [];
    this.splits = splits ? [] : null; // the split curves' points {step, train, test}
    const split = (what) => (splits ? [series(`train split ${what}`, COLORS.train, { spanGaps: true, points: { show: true, size: 4 } }),
      series(`test split ${what}`, COLORS.test, { spanGaps: true, points: { show: true, size: 4 } })] : []);
    this.specs = [
      ['loss', box(), this.lossTitle, [series(splits ? 'loss (batch)' : 'loss', COLORS.loss), ...floorSeries, ...split('loss')], { distr: 3 }, fmtLoss],
      ['acc', box(), splits ? 'accuracy (batch; train and test splits)' : 'accuracy (training batch)',
        [series('token', COLORS.tok), series('sequence', COLORS.seq), ...split('acc')], { range: [0, 1] }, fmtPct],
      ['grad', box(), 'gradient norm (before clipping)', [series('grad norm', COLORS.grad)], {}, fmtSmall],
      ['lr', box(), 'learning rate', [series('lr', COLORS.lr)], {}, fmtSmall],
    ];
    this.built = [];
    this.dirty = new Set(); // built charts whose data changed since they were drawn
    this.curves = new Curves();
    this.root = root;
    this.build();
  }

  /** Builds the next chart, and schedules the one after it. */
  build() {
    const [name, target, title, ys, scale, fmt] = this.specs[this.built.length];
    const c = chart(target, title, ys, scale, fmt);
    this[name] = c;
    this.built.push(c);
    c.setSize({ width: this.width(), height: HEIGHT });
    this.draw([c]);
    if (this.built.length < this.specs.length) this.timer = setTimeout(() => this.build(), 0);
  }

  /** Appends metrics rows ({step, loss, token_acc, seq_acc, grad_norm, lr}) and redraws. */
  push(rows) {
    const c = this.curves;
    const stride = c.stride;
    c.push(rows);
    this.columns = null;
    for (const chart of this.built) this.dirty.add(chart);
    this.redraw();
    if (c.stride !== stride) {
      const title = this.loss.root.querySelector('.u-title');
      if (title) title.textContent = `${this.lossTitle} · 1 point = ${c.stride} steps (largest loss)`;
    }
  }

  /** Adds a finite dataset's split point ({step, train, test}: figures of the model after `step`
   * steps) to the loss and accuracy charts, and redraws them. */
  pushSplit(point) {
    if (!this.splits) return;
    this.splits.push({ step: point.step, train: point.train, test: point.test });
    this.columns = null;
    for (const c of [this.loss, this.acc]) if (c) this.dirty.add(c);
    this.redraw();
  }

  /** Redraws the charts whose data changed, one per task (not the task of the push: a metrics
   * message is handled in one task, its drawing in the next ones). */
  async redraw() {
    if (this.redrawing) return;
    this.redrawing = true;
    await nextTask();
    while (this.dirty.size && !this.destroyed) {
      const [c] = this.dirty;
      this.dirty.delete(c);
      this.draw([c]);
      await nextTask();
    }
    this.redrawing = false;
  }

  /** Gives `charts` the curves' data. */
  draw(charts) {
    const d = (this.columns ??= withSplits(this.curves.columns(), this.splits));
    const data = (c) => {
      const floor = this.floor > 0 ? [d.step.map(() => this.floor)] : [];
      const split = (k) => (this.splits ? [d[`train_${k}`], d[`test_${k}`]] : []);
      if (c === this.loss) return [d.step, d.loss, ...floor, ...split('loss')];
      if (c === this.acc) return [d.step, d.tok, d.seq, ...split('acc')];
      return [d.step, c === this.grad ? d.grad : d.lr];
    };
    for (const c of charts) c.setData(data(c));
  }

  /** What the loss and accuracy charts plot: {series labels, columns} of each (tests). */
  plotted_data() {
    const of = (c) => c && { labels: c.series.map((x) => x.label), columns: c.data.map((col) => [...col]) };
    return { loss: of(this.loss), acc: of(this.acc) };
  }

  /** Number of metrics rows received (every step, however many points are plotted). */
  get length() {
    return this.curves.rows;
  }

  /** Number of points plotted per series. */
  get plotted() {
    return this.curves.points.length + (this.curves.pending ? 1 : 0);
  }

  /** Each chart's width: two per row. */
  width() {
    return Math.max(260, Math.floor((this.root.clientWidth - 16) / 2));
  }

  resize() {
    const w = this.width();
    for (const c of this.built) c.setSize({ width: w, height: HEIGHT });
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.timer);
    for (const c of this.built) c.destroy();
  }
}
