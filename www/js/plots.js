// Live training charts (uPlot, vendored at build time): loss on a log axis with the task's loss floor,
// and token accuracy.
import uPlot from '../vendor/uplot/uPlot.esm.js';

export class Charts {
  constructor(lossEl, accEl) {
    this.data = { step: [], loss: [], floor: [], acc: [] };
    const width = Math.min(900, lossEl.parentElement.clientWidth - 30);
    this.loss = new uPlot({ width, height: 220, title: 'loss (nats, log scale) — dashed: loss floor',
      scales: { x: { time: false }, y: { distr: 3 } },
      series: [{ label: 'step' }, { label: 'loss', stroke: '#2563eb' }, { label: 'floor', stroke: '#999', dash: [6, 4] }] },
    [[], [], []], lossEl);
    this.acc = new uPlot({ width, height: 160, title: 'token accuracy', scales: { x: { time: false }, y: { range: [0, 1] } },
      series: [{ label: 'step' }, { label: 'token acc', stroke: '#16a34a' }] }, [[], []], accEl);
  }
  reset(floor) { this.data = { step: [], loss: [], floor: [], acc: [] }; this.floorValue = Math.max(floor, 1e-4); this.draw(); }
  push(ms) {
    for (const m of ms) {
      this.data.step.push(m.step + 1); this.data.loss.push(Math.max(m.loss, 1e-6));
      this.data.floor.push(this.floorValue); this.data.acc.push(m.token_acc);
    }
    this.draw();
  }
  draw() {
    const d = this.data;
    this.loss.setData([d.step, d.loss, d.floor]);
    this.acc.setData([d.step, d.acc]);
  }
  points() { return this.data.step.length; }
}
