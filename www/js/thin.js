// The training curves' points, bounded for long runs: at most MAX_POINTS per series. When full,
// neighbouring pairs merge into one point covering twice the steps: loss and gradient norm keep the
// larger value (spikes stay visible), accuracies average, step and learning rate are the later one's.
// Pure data (no DOM), so it is tested in node (tests/js/thin.test.mjs).

export const MAX_POINTS = 8192;

const max = (x, y) => (x == null ? y : y == null ? x : Math.max(x, y));

/** Two consecutive points as one; `n` counts the steps each covers. */
function merge(a, b) {
  const n = a.n + b.n;
  return { step: b.step, loss: max(a.loss, b.loss), tok: (a.tok * a.n + b.tok * b.n) / n, seq: (a.seq * a.n + b.seq * b.n) / n,
    grad: max(a.grad, b.grad), lr: b.lr, n };
}

const KEYS = ['step', 'loss', 'tok', 'seq', 'grad', 'lr'];

export class Curves {
  constructor(maxPoints = MAX_POINTS) {
    this.max = Math.max(4, maxPoints);
    this.points = []; // {step, loss, tok, seq, grad, lr, n}
    this.rows = 0; // metrics rows received
    this.stride = 1; // steps per point
    this.pending = null; // rows not yet making a whole point
  }

  /** Appends metrics rows ({step, loss, token_acc, seq_acc, grad_norm, lr}). */
  push(rows) {
    for (const r of rows) {
      this.rows++;
      const p = { step: r.step + 1, loss: r.loss > 0 ? r.loss : null, tok: r.token_acc, seq: r.seq_acc, grad: r.grad_norm, lr: r.lr, n: 1 };
      this.pending = this.pending ? merge(this.pending, p) : p;
      if (this.pending.n < this.stride) continue;
      this.points.push(this.pending);
      this.pending = null;
      if (this.points.length >= this.max) this.halve();
    }
  }

  halve() {
    const next = [];
    for (let i = 0; i + 1 < this.points.length; i += 2) next.push(merge(this.points[i], this.points[i + 1]));
    if (this.points.length % 2) this.pending = this.points[this.points.length - 1]; // completes with the next rows
    this.points = next;
    this.stride *= 2;
  }

  /** Column arrays for uPlot: {step, loss, tok, seq, grad, lr}, the pending partial point included. */
  columns() {
    const pts = this.pending ? [...this.points, this.pending] : this.points;
    return Object.fromEntries(KEYS.map((k) => [k, pts.map((p) => p[k])]));
  }
}
