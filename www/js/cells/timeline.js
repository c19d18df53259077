// The Timeline cell: a slider over the kept weight snapshots, shared by every analysis cell,
// and the curves of the circuit scores over training (OV diagonal fraction, OV eigenvalue
// copying score, attention on the answer) drawn under the loss curve on the same step axis,
// so a phase change shows in both at once.
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { el, caption } from '../interp/heatmap.js';
import { taskNote } from './task-notes.js';

const HEAD_COLORS = ['#1f5fa8', '#b0413e', '#5b8c3a', '#7a4ea3', '#a86a1f', '#2a8c8c', '#8c2a6e', '#555'];
const METRICS = [
  { key: 'ov_diagonal', label: 'OV diagonal fraction', dash: [] },
  { key: 'ov_eigen', label: 'OV eigenvalue copying', dash: [6, 3] },
  { key: 'answer_mass', label: 'attention on the answer', dash: [2, 3] },
];

// A vertical line at the selected snapshot's step.
function markerPlugin(getStep) {
  return {
    hooks: {
      draw: (u) => {
        const s = getStep();
        if (s == null) return;
        const x = u.valToPos(s, 'x', true);
        const { ctx } = u;
        ctx.save();
        ctx.strokeStyle = '#f0a020';
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.restore();
      },
    },
  };
}

export class TimelineCell {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.root = root;
    this.selected = null;
    const controls = el('div', 'controls tl-controls');
    this.slider = el('input');
    this.slider.type = 'range';
    this.slider.min = '0';
    this.slider.max = '0';
    this.slider.step = '1';
    this.slider.id = 'timeline-slider';
    this.slider.setAttribute('aria-label', 'weight snapshot');
    this.follow = el('input');
    this.follow.type = 'checkbox';
    this.follow.id = 'timeline-follow';
    const followLabel = el('label', 'tl-follow');
    followLabel.append(this.follow, el('span', '', 'follow the newest snapshot'));
    this.label = el('span', 'tl-label muted', 'no snapshots yet');
    controls.append(el('span', 'muted', 'snapshot'), this.slider, this.label, followLabel);
    root.append(controls);
    caption(root, 'Every analysis cell below shows the weights at the step chosen here. The curves share the step axis with the loss. '
      + 'Snapshots are kept evenly spaced; when the store is full every other one is dropped.');
    taskNote(root, 'timeline');
    this.charts = el('div', 'tl-charts');
    root.append(this.charts);
    this.timing = el('p', 'muted tl-timing', '');
    root.append(this.timing);
    this.steps = [];
    this.slider.addEventListener('input', () => {
      const s = this.steps[+this.slider.value];
      if (s === undefined) return;
      this.follow.checked = +this.slider.value === this.steps.length - 1 && this.follow.checked;
      ctx.setView('view_step', this.follow.checked ? -1 : s);
      this.label.textContent = this.describe(s);
      ctx.recompute(null);
    });
    this.follow.addEventListener('change', () => {
      ctx.setView('view_step', this.follow.checked ? -1 : (this.steps[+this.slider.value] ?? -1));
      ctx.recompute(null);
    });
    this.follow.checked = ctx.view('view_step') < 0;
    this.loss = null;
    this.scores = null;
    this.lossData = [[], []];
  }

  describe(step) {
    const i = this.steps.indexOf(step);
    return `step ${step.toLocaleString('en-US')} (snapshot ${i + 1} of ${this.steps.length})`;
  }

  makeCharts(heads) {
    this.charts.replaceChildren();
    const width = Math.max(300, this.charts.clientWidth || 900);
    const marker = markerPlugin(() => this.selected);
    const common = (title, h) => ({
      title, width, height: h,
      scales: { x: { time: false } },
      cursor: { sync: { key: 'toyformer-timeline' }, drag: { x: false, y: false } },
      plugins: [marker],
      legend: { live: true },
    });
    const lossBox = el('div', 'chart');
    const scoreBox = el('div', 'chart');
    this.charts.append(lossBox, scoreBox);
    this.loss = new uPlot({
      ...common('loss (nats, log scale)', 150),
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [{ size: 30 }, { size: 54, values: (u, v) => v.map((x) => (x == null ? '' : +x.toPrecision(2))) }],
      series: [{ label: 'step' }, { label: 'loss', stroke: '#1f5fa8', width: 1.5, points: { show: false } }],
    }, this.lossData, lossBox);
    const series = [{ label: 'step' }];
    this.headKeys = heads;
    for (const [hi, h] of heads.entries()) {
      for (const m of METRICS) {
        series.push({ label: `L${h[0]}H${h[1]} ${m.label}`, stroke: HEAD_COLORS[hi % HEAD_COLORS.length], dash: m.dash, width: 1.6, points: { show: true, size: 4 } });
      }
    }
    this.scores = new uPlot({
      ...common('circuit scores at each snapshot (per head)', 210),
      scales: { x: { time: false }, y: { range: [-1, 1] } },
      axes: [{ label: 'step', size: 36, labelSize: 14 }, { size: 40 }],
      series,
    }, [[], ...series.slice(1).map(() => [])], scoreBox);
  }

  reset() {
    this.steps = [];
    this.selected = null;
    this.lossData = [[], []];
    this.charts.replaceChildren();
    this.loss = this.scores = null;
    this.label.textContent = 'no snapshots yet';
    this.timing.textContent = '';
  }

  clear() {
    this.reset();
  }

  /** The loss curve: steps and losses (null where not positive), thinned for long runs (thin.js). */
  lossChanged(steps, losses) {
    this.lossData = [steps, losses];
    if (!this.loss) return;
    const now = performance.now();
    if (this.lastLoss && now - this.lastLoss < 400) return; // the Train cell has the live chart
    this.lastLoss = now;
    this.loss.setData(this.lossData);
    this.syncX();
  }

  // Both charts span the same steps (uPlot cannot draw axes of a chart without data).
  syncX() {
    const last = Math.max(this.lossData[0].at(-1) ?? 0, this.steps.at(-1) ?? 0, 1);
    for (const c of [this.loss, this.scores]) if (c && c.data[0].length) c.setScale('x', { min: 0, max: last });
  }

  update(data) {
    if (data.steps) {
      this.steps = data.steps;
      this.slider.max = String(Math.max(0, this.steps.length - 1));
    }
    if (data.selected !== undefined) {
      this.selected = data.selected;
      this.slider.value = String(Math.max(0, this.steps.indexOf(data.selected)));
      this.label.textContent = this.describe(data.selected);
      document.getElementById('timeline-brief').textContent = `step ${data.selected.toLocaleString('en-US')} · ${this.steps.length} snapshots`;
    }
    if (data.timeline?.length) {
      const heads = data.timeline[0].heads.map((h) => [h.layer, h.head]);
      if (!this.scores || JSON.stringify(heads) !== JSON.stringify(this.headKeys)) this.makeCharts(heads);
      const xs = data.timeline.map((p) => p.step);
      const ys = [];
      for (let hi = 0; hi < heads.length; hi++) {
        for (const m of METRICS) ys.push(data.timeline.map((p) => p.heads[hi][m.key]));
      }
      this.scores.setData([xs, ...ys]);
      if (this.lossData[0].length) this.loss.setData(this.lossData);
      this.syncX();
    }
    if (this.loss?.data[0].length) this.loss.redraw();
    if (this.scores?.data[0].length) this.scores.redraw();
  }

  showTiming(last) {
    const parts = Object.entries(last.times).map(([k, v]) => `${k} ${v}`).join(', ');
    this.timing.textContent = `last recompute (${last.parts === 'all' ? 'all analyses' : last.parts.join(', ')}): `
      + `${last.wall_ms} ms from request to drawn (${last.worker_ms} ms in the analysis worker, ${last.render_ms} ms drawing) · `
      + `${parts} ms${last.error ? ` · error: ${last.error}` : ''}`;
  }
}
