// How a sweep and a training run share the cores (www/js/cores.js), against the rule written out
// case by case: the default budget is one worker per core but one; a sweep on its own takes the
// budget; a sweep started while a run trains leaves that run one worker; the training pool gets what
// the sweep leaves, at least its own worker; with the defaults the page never runs more compute
// workers than cores (one core kept for the page from 3 cores up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { budget, sweepWorkers, trainingCap } from '../../www/js/cores.js';
import { poolSize } from '../../www/js/pool.js';

test('cores: the budget and the sweep/training split, case by case', () => {
  assert.deepEqual([1, 2, 3, 4, 8, 16].map((n) => budget(n)), [1, 1, 2, 3, 7, 15]);
  // 8 cores: a sweep alone takes 7; started during training it takes 6 and training keeps 1
  assert.equal(sweepWorkers(0, false, 8), 7);
  assert.equal(sweepWorkers(0, true, 8), 6);
  assert.equal(trainingCap(6, 8), 1);
  assert.equal(trainingCap(3, 8), 4); // the user asked for a 3-worker sweep: training may use 4
  // the user's setting wins for the sweep (it is their choice), the training cap still shrinks to 1
  assert.equal(sweepWorkers(12, true, 8), 12);
  assert.equal(trainingCap(12, 8), 1);
  // 2 cores: one sweep worker, training keeps its own worker
  assert.equal(sweepWorkers(0, true, 2), 1);
  assert.equal(trainingCap(1, 2), 1);
});

test('cores: with the default settings, sweep + training workers never exceed the cores', () => {
  for (let n = 2; n <= 64; n++) {
    for (const training of [false, true]) {
      const s = sweepWorkers(0, training, n);
      const k = training ? Math.min(trainingCap(s, n), poolSize(0, n)) : 0;
      assert.ok(s >= 1 && s + k <= n, `${n} cores, training ${training}: sweep ${s} + training ${k}`);
      if (n >= 3) assert.ok(s + k <= n - 1, `${n} cores: one core left to the page`);
    }
  }
});
