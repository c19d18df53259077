// `workers` auto (www/js/pool-pick.js) with injected timings: the candidates for a core count, the
// decision rule (a larger pool must be MARGIN× faster than the best smaller one; a small model stays
// on one worker), and the calibration's schedule driven the way the training worker drives it
// (chunks capped by snapshots, a fresh pool slow at first, a noisy sample) against a simulated machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidates, decideK, PoolCalibration, MARGIN, WARM_MS, SAMPLE_MS, ROUNDS } from '../../www/js/pool-pick.js';

test('candidates: 1, 2, 4, 8 up to the cores and the batch\'s shards', () => {
  assert.deepEqual(candidates(1), [1]);
  assert.deepEqual(candidates(2), [1, 2]);
  assert.deepEqual(candidates(3), [1, 2]);
  assert.deepEqual(candidates(6), [1, 2, 4]);
  assert.deepEqual(candidates(8), [1, 2, 4, 8]);
  assert.deepEqual(candidates(64), [1, 2, 4, 8]);
  assert.deepEqual(candidates(0), [1]);
  assert.deepEqual(candidates(NaN), [1]);
  // no more workers than a batch has shards (batch 16: one shard of at least 32 rows or less; 96: 3)
  assert.deepEqual(candidates(8, 1), [1]);
  assert.deepEqual(candidates(8, 3), [1, 2]);
  assert.deepEqual(candidates(16, 8), [1, 2, 4, 8]);
});

test('decideK: a larger pool only when MARGIN× faster than the best smaller one, with the figures', () => {
  assert.equal(MARGIN, 1.1);
  const sortRef = decideK({ 1: 14.5, 2: 8.1 });
  assert.equal(sortRef.k, 2);
  assert.match(sortRef.note, /1: 14\.5 ms, 2: 8\.10 ms/);
  assert.match(sortRef.note, /2 workers, 1\.79× as fast as 1 worker/);
  // a small model: the pool's hand-offs cost more than half a step saves
  const tiny = decideK({ 1: 0.42, 2: 0.61 });
  assert.equal(tiny.k, 1);
  assert.match(tiny.note, /1 worker, more were not 10% faster/);
  // 5% faster is not worth a second core; 11% is
  assert.equal(decideK({ 1: 10, 2: 9.5 }).k, 1);
  assert.equal(decideK({ 1: 10, 2: 9.0 }).k, 2);
  // the scaling stops at 2 (8 shards over 4 workers: no gain past the hand-offs)
  const four = decideK({ 1: 10, 2: 6, 4: 5.8, 8: 5.9 });
  assert.equal(four.k, 2);
  assert.match(four.note, /2 workers, 1\.67× as fast as 1 worker; more were not 10% faster/);
  // compared with every smaller pool, not only the one kept: 4 is 10% faster than 1 but not than 2
  assert.equal(decideK({ 1: 10, 2: 11, 4: 8.5 }).k, 4);
  assert.equal(decideK({ 1: 10, 2: 9.2, 4: 9.0 }).k, 1);
  assert.equal(decideK({ 1: 10, 2: 9.2, 4: 8.3 }).k, 4);
  // a k that could not be timed is left out
  assert.equal(decideK({ 1: 10, 2: NaN }).k, 1);
  assert.equal(decideK({}).k, 1);
});

// Drives a calibration as worker.js does: each chunk runs min(n, next().steps) steps on next().k;
// `msAt(k, i)` is the simulated time of the i-th step run on k workers. Returns the decision and
// the chunks run ([k, steps]).
function drive(cal, msAt, { n = 1000, maxChunks = 10_000 } = {}) {
  const done = new Map();
  const chunks = [];
  while (!cal.done && chunks.length < maxChunks) {
    const { k, steps } = cal.next();
    const m = Math.min(n, steps);
    let ms = 0;
    for (let j = 0; j < m; j++) {
      const i = done.get(k) ?? 0;
      ms += msAt(k, i);
      done.set(k, i + 1);
    }
    chunks.push([k, m]);
    cal.record(k, m, ms);
  }
  return { decision: cal.decision, chunks };
}

test('calibration: warms each k in turn, then times them interleaved; sort-ref on 2 cores keeps 2', () => {
  // one worker 14.5 ms; two 8.2 ms, but a fresh pool's first 10 steps are 3× slower (loading, tier-up)
  const msAt = (k, i) => (k === 1 ? 14.5 : i < 10 ? 24.6 : 8.2);
  const { decision, chunks } = drive(new PoolCalibration(candidates(2)), msAt);
  assert.equal(decision.k, 2, decision.note);
  assert.ok(Math.abs(decision.msPerStep[2] - 8.2) < 1e-9, 'the slow start was warm-up, not timed');
  assert.ok(Math.abs(decision.msPerStep[1] - 14.5) < 1e-9);
  // warm-up: k = 1 then k = 2, each at least WARM_MS; then the samples alternate 1, 2, 1, 2, …
  const firstTwo = chunks.findIndex(([k]) => k === 2);
  assert.ok(chunks.slice(0, firstTwo).reduce((a, [, m]) => a + m, 0) * 14.5 >= WARM_MS);
  const order = chunks.map(([k]) => k).filter((k, i, a) => i === 0 || a[i - 1] !== k);
  assert.deepEqual(order, [1, 2, ...Array(ROUNDS).fill([1, 2]).flat()]);
  // the whole calibration is short: warm-ups plus ROUNDS samples of each (a sample ≥ SAMPLE_MS)
  const total = chunks.reduce((a, [k, m]) => a + m * (k === 1 ? 14.5 : 8.2), 0);
  assert.ok(total < 2 * (2 * WARM_MS + 2 * ROUNDS * SAMPLE_MS) + 300, `${total} ms`);
});

test('calibration: a small model stays on one worker; 8 cores stop where the scaling stops', () => {
  const tiny = drive(new PoolCalibration(candidates(8)), (k) => 0.3 + (k > 1 ? 0.25 + 0.05 * k : 0)).decision;
  assert.equal(tiny.k, 1, tiny.note);
  assert.deepEqual(Object.keys(tiny.msPerStep).map(Number), [1, 2, 4, 8]);
  // 8 shards: 1, 2, 4, 8 workers compute 8, 4, 2, 1 shards each, plus hand-offs growing with k
  const big = drive(new PoolCalibration(candidates(8)), (k) => 1.8 * (8 / k) + 0.4 * (k > 1) + 0.45 * k).decision;
  assert.equal(big.k, 4, big.note);
});

test('calibration: snapshots every step (chunks of 1) still add up to whole samples; one noisy sample is outvoted', () => {
  const cal = new PoolCalibration([1, 2]);
  // warm-up of k = 2 ends after the step that brings it to WARM_MS; its first timed step meets
  // another process (10×)
  const warm = Math.ceil(WARM_MS / 8.2);
  const { decision, chunks } = drive(cal, (k, i) => (k === 1 ? 14.5 : i === warm ? 82 : 8.2), { n: 1 });
  assert.ok(chunks.every(([, m]) => m === 1));
  assert.equal(decision.k, 2, decision.note);
  const timed = cal.samples.get(2);
  assert.equal(timed.length, ROUNDS);
  assert.ok(timed[0] > 10, `the noisy step is in the first timed sample: ${timed}`);
  assert.ok(Math.abs(decision.msPerStep[2] - 8.2) < 1e-9, `the median ignores it: ${decision.msPerStep[2]}`);
});

test('calibration: steps reported for another k (a chunk cut short, a cap) and empty chunks are ignored', () => {
  const cal = new PoolCalibration([1, 2]);
  const { k } = cal.next();
  assert.equal(k, 1);
  cal.record(2, 50, 1000);
  cal.record(1, 0, 0);
  assert.equal(cal.next().k, 1, 'still warming 1');
  cal.record(1, 100, 1000);
  assert.equal(cal.next().k, 2);
  // one core: nothing to measure
  const one = new PoolCalibration(candidates(1), 'the browser reports one core');
  assert.equal(one.done, true);
  assert.equal(one.decision.k, 1);
  assert.equal(one.decision.note, 'CPU workers auto: 1 worker, the browser reports one core');
  assert.equal(one.next(), null);
});
