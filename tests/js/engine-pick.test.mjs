// The `auto` backend's measured choice (www/js/engine-pick.js) with injected timings: the faster
// engine wins, the note gives both figures, a GPU that cannot run the model loses, and a decision is
// reused for models of about the same size and measured again when the size changes 2× or more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, stillHolds, EnginePicker, REDECIDE } from '../../www/js/engine-pick.js';

test('decide: the faster engine, with both figures in the note', () => {
  const slowGpu = decide({ gpuMs: 9.8, cpuMs: 4.25 }, { gpuName: 'Intel UHD 620', workers: 3 });
  assert.equal(slowGpu.gpu, false);
  assert.match(slowGpu.note, /CPU 4\.25 ms\/step \(3 workers\)/);
  assert.match(slowGpu.note, /WebGPU \(Intel UHD 620\) 9\.80 ms\/step/);
  assert.match(slowGpu.note, /CPU is faster/);
  const fastGpu = decide({ gpuMs: 0.9, cpuMs: 21 }, { gpuName: 'RTX', workers: 1 });
  assert.equal(fastGpu.gpu, true);
  assert.match(fastGpu.note, /WebGPU \(RTX\) 0\.90 ms\/step against CPU 21\.0 ms\/step \(1 worker\)/);
  assert.match(fastGpu.note, /GPU is faster/);
  // equal times keep the CPU (no device to lose, no shader compiles)
  assert.equal(decide({ gpuMs: 5, cpuMs: 5 }).gpu, false);
  // a GPU that failed to time, or a CPU that failed, leaves the other
  assert.equal(decide({ gpuMs: null, cpuMs: 5 }).gpu, false);
  assert.match(decide({ gpuMs: null, cpuMs: 5 }, { gpuName: 'X' }).note, /X could not time/);
  assert.equal(decide({ gpuMs: 3, cpuMs: NaN }).gpu, true);
});

test('stillHolds: within REDECIDE× either way', () => {
  assert.equal(REDECIDE, 2);
  assert.equal(stillHolds(1000, 1000), true);
  assert.equal(stillHolds(1000, 1999), true);
  assert.equal(stillHolds(1000, 2000), false);
  assert.equal(stillHolds(1000, 501), true);
  assert.equal(stillHolds(1000, 500), false);
  assert.equal(stillHolds(0, 10), false);
});

test('EnginePicker: measures once per model size, again after a large change', async () => {
  const timings = [{ gpuMs: 10, cpuMs: 4 }, { gpuMs: 2, cpuMs: 40 }, { gpuMs: 10, cpuMs: 4 }];
  let calls = 0;
  const p = new EnginePicker(async () => timings[calls++]);
  const a = await p.pick(80_000, { gpuName: 'iGPU', workers: 2 });
  assert.deepEqual([a.gpu, a.measured, calls], [false, true, 1]);
  const b = await p.pick(100_000, { gpuName: 'iGPU', workers: 2 });
  assert.deepEqual([b.gpu, b.measured, calls], [false, false, 1], 'a similar size reuses the decision');
  assert.equal(b.note, a.note);
  const c = await p.pick(800_000, { gpuName: 'iGPU', workers: 2 });
  assert.deepEqual([c.gpu, c.measured, calls], [true, true, 2], '10× the parameters: measured again');
  const d = await p.pick(81_000, { gpuName: 'iGPU', workers: 2 });
  assert.deepEqual([d.measured, calls], [true, 3], 'back to small: measured again (against the last decision)');
});
