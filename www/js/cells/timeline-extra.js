// Curves under the Timeline's loss and circuit-score charts (issue 16), on the same step axis:
// for modular tasks grokking's progress measures (train/test loss, restricted loss: logits kept
// on the key frequencies' directions only, excluded loss: those removed, on the train split;
// Gini of the embedding's Fourier spectrum; sum of squared weights); for 2+ layer models the
// head-type scores per head (previous-token, duplicate-token, induction). Computed in the
// analysis worker over at most PROGRESS_SNAPSHOTS / HEAD_CURVE_SNAPSHOTS of the kept snapshots,
// evenly spaced with the first and last (each progress point runs the model on all p² inputs).
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { el } from '../interp/heatmap.js';

/** Snapshots the progress measures are computed on (p² forwards each: 8 × 12,769 for p 113). */
export const PROGRESS_SNAPSHOTS = 8;
/** Snapshots the head-type scores are computed on (32 repeated sequences each). */
export const HEAD_CURVE_SNAPSHOTS = 16;
/** While training, recompute the curves at most this often (the worker is shared). */
const TRAINING_GAP_MS = 5000;
const MODULAR = new Set(['mod-add', 'mod-sub']);
const COLORS = ['#1f5fa8', '#b0413e', '#5b8c3a', '#7a4ea3', '#a86a1f', '#2a8c8c', '#8c2a6e', '#555'];
const HEAD_METRICS = [
  { key: 'previous_token', label: 'previous-token', dash: [] },
  { key: 'duplicate_token', label: 'duplicate-token', dash: [6, 3] },
  { key: 'induction', label: 'induction', dash: [2, 3] },
];
const LOSSES = [['train_loss', 'train loss'], ['test_loss', 'test loss'], ['restricted_loss', 'restricted loss'],
  ['excluded_loss', 'excluded loss (train)']];

/** Which curves apply to `model` on task spec `task`. */
export function extrasApply(model, task) {
  return { progress: MODULAR.has(task?.task), heads: (model?.n_layers ?? 0) >= 2 };
}

const line = (label, stroke, dash = [], scale = 'y') => ({ label, stroke, dash, scale, width: 1.6, points: { show: true, size: 4 } });

function plot(box, title, height, series, opts, data) {
  const width = Math.max(300, box.clientWidth || 900);
  const chart = el('div', 'chart');
  box.append(chart);
  return new uPlot({
    title, width, height, series: [{ label: 'step' }, ...series],
    scales: { x: { time: false }, ...opts.scales },
    axes: opts.axes,
    cursor: { sync: { key: 'toyformer-timeline' }, drag: { x: false, y: false } },
    legend: { live: true },
  }, data, chart);
}

/** The progress charts of `points` (ProgressPoint[]) in `box`; returns the data shown. */
function progressCharts(box, points) {
  const xs = points.map((p) => p.step);
  const pos = (x) => (x > 0 ? x : null);
  const losses = LOSSES.map(([k]) => points.map((p) => pos(p[k])));
  plot(box, `progress measures (${points.length} snapshots; loss in nats, log scale)`, 170,
    LOSSES.map(([, label], i) => line(label, COLORS[i], i < 2 ? [] : [6, 3])),
    { scales: { y: { distr: 3 } }, axes: [{ size: 30 }, { size: 54, values: (u, v) => v.map((x) => (x == null ? '' : +x.toPrecision(2))) }] },
    [xs, ...losses]);
  const gini = points.map((p) => p.gini);
  const sq = points.map((p) => p.sum_sq_weights);
  plot(box, 'Gini of the embedding\'s Fourier spectrum (left) · sum of squared weights (right)', 170,
    [line('Gini', COLORS[0], [], 'g'), line('Σ θ²', COLORS[1], [6, 3], 'w')],
    { scales: { g: { range: [0, 1] }, w: {} }, axes: [{ label: 'step', size: 36, labelSize: 14 }, { scale: 'g', size: 40 }, { scale: 'w', side: 1, size: 60 }] },
    [xs, gini, sq]);
  return { steps: xs, ...Object.fromEntries(LOSSES.map(([k], i) => [k, losses[i]])), gini, sum_sq_weights: sq };
}

/** The head-type chart of `curve` ([[step, HeadTypeScore[]], …]) in `box`; returns the data shown. */
function headChart(box, curve) {
  const xs = curve.map(([s]) => s);
  const heads = curve[0][1].map((h) => `L${h.layer}H${h.head}`);
  const series = [];
  const ys = [];
  heads.forEach((name, hi) => {
    for (const m of HEAD_METRICS) {
      series.push(line(`${name} ${m.label}`, COLORS[hi % COLORS.length], m.dash));
      ys.push(curve.map(([, sc]) => sc[hi][m.key]));
    }
  });
  plot(box, `head-type scores on repeated random tokens (${xs.length} snapshots)`, 210, series,
    { scales: { y: { range: [0, 1] } }, axes: [{ label: 'step', size: 36, labelSize: 14 }, { size: 48 }] }, [xs, ...ys]);
  return { steps: xs, heads, series: series.map((s) => s.label), values: ys };
}

export class TimelineExtras {
  constructor(root) {
    this.box = el('div', 'tl-charts tl-extra');
    root.append(this.box);
    this.key = null;
    this.busy = false;
    this.last = 0;
    this.timer = null;
    this.shown = null; // the data drawn, read by tests
  }

  clear() {
    this.box.replaceChildren();
    this.key = null;
    this.shown = null;
  }

  /** Computes and draws the curves for `analysis`'s kept snapshots (epoch `epoch`), unless
   * they are already drawn for these snapshots; one computation at a time. */
  async fill(analysis, epoch) {
    const want = extrasApply(analysis.model, analysis.task);
    if (!want.progress && !want.heads) return this.clear();
    const wait = TRAINING_GAP_MS - (performance.now() - this.last);
    if (this.busy || (analysis.training && wait > 0)) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.fill(analysis, analysis.epoch), Math.max(wait, 500));
      return undefined;
    }
    this.busy = true;
    try {
      const steps = await analysis.call('steps');
      const key = `${epoch}:${steps.join(',')}`;
      if (key === this.key || epoch !== analysis.epoch) return undefined;
      this.last = performance.now();
      const progress = want.progress ? await analysis.call('progress', [PROGRESS_SNAPSHOTS]) : null;
      const heads = want.heads ? await analysis.call('head_type_curve', [HEAD_CURVE_SNAPSHOTS]) : null;
      if (epoch !== analysis.epoch) return undefined;
      this.clear();
      this.key = key;
      this.shown = { progress: progress?.length ? progressCharts(this.box, progress) : null,
        heads: heads?.length ? headChart(this.box, heads) : null };
    } catch (e) {
      if (epoch === analysis.epoch) this.box.replaceChildren(el('p', 'error', `progress curves: ${e.message ?? e}`));
    } finally {
      this.busy = false;
    }
    return undefined;
  }
}
