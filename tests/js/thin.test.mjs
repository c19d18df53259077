// The training curves' point budget (www/js/thin.js): a long run stays within the bound, points
// stay evenly spaced, spikes survive the merging, and short runs are plotted step by step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Curves } from '../../www/js/thin.js';

const row = (step, loss = 1, acc = 0.5) => ({ step, loss, token_acc: acc, seq_acc: acc / 2, grad_norm: loss * 2, lr: 1e-3 });

test('short runs keep every step', () => {
  const c = new Curves(16);
  c.push(Array.from({ length: 10 }, (_, i) => row(i, 1 / (i + 1))));
  const d = c.columns();
  assert.deepEqual(d.step, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(d.loss[3], 1 / 4);
  assert.equal(c.rows, 10);
});

test('a long run stays bounded, evenly spaced, and keeps a spike', () => {
  const c = new Curves(64);
  const n = 10_000;
  const spike = 7_777;
  for (let i = 0; i < n; i += 100) {
    c.push(Array.from({ length: 100 }, (_, j) => row(i + j, i + j === spike ? 50 : 0.1, (i + j) / n)));
  }
  const d = c.columns();
  assert.equal(c.rows, n);
  assert.ok(d.step.length <= 64 && d.step.length >= 32, `${d.step.length} points`);
  assert.ok(c.stride >= n / 64, `stride ${c.stride}`);
  // every point covers `stride` steps: its step is the last one it covers
  for (let i = 1; i < c.points.length; i++) assert.equal(d.step[i] - d.step[i - 1], c.stride);
  assert.equal(Math.max(...d.loss), 50, 'the spike survives');
  assert.equal(d.loss.filter((x) => x === 50).length, 1);
  // accuracy is the mean over the steps a point covers
  const p = c.points[3];
  const first = p.step - p.n; // steps first+1..p.step ⇒ rows first..p.step-1
  const want = Array.from({ length: p.n }, (_, j) => (first + j) / n).reduce((a, b) => a + b) / p.n;
  assert.ok(Math.abs(p.tok - want) < 1e-12, `${p.tok} vs ${want}`);
});
