// Data-parallel CPU training across Web Workers (www/js/pool.js): a run on 2 workers is
// bit-identical to the same run on 1 worker (every step's loss, gradient norm and accuracy, and the
// final weights), and a helper terminated mid-step is replaced and the step redone, again with an
// identical result; a sweep's cap on the pool (cores.js: 'workers-cap') shrinks it to one worker
// mid-run and lifting the cap grows it back, again with an identical result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { serveDuringTests, startServer, openNotebook } from '../../pkg-config/browser.mjs';

const server = serveDuringTests();
// the same page with the cross-origin isolation headers: weights and results in SharedArrayBuffers
const isolated = { url: null, close: () => {} };
before(async () => {
  process.env.ISOLATE = '1';
  try {
    Object.assign(isolated, await startServer());
  } finally {
    delete process.env.ISOLATE;
  }
});
after(() => isolated.close());
const RUN = 'task=sort&sort_n=5&max_num=10&d_model=32&d_head=32&batch_size=64&lr=0.003&steps=30';

// Trains RUN on `workers` workers; `kill` terminates pool helper 0 mid-step once step 10 is reached;
// `cap` caps the pool at 1 worker from step 10 to step 20 (as a sweep running then would); `sweep`
// runs a small sweep in the Sweep cell from step 10 and holds the run at step 20 until it is done.
// `profile`: times the pool's phases from step 10 on (pool.js startProfile) and returns them.
async function train(workers, { kill = false, cap = false, sweep = false, profile = false, url = server.url } = {}) {
  const { page, errors, close } = await openNotebook(`${url}#v=1&${RUN}&workers=${workers}`, { webgpu: false });
  try {
    await page.evaluate((hold) => {
      const h = window.__toyformer;
      h.poolEvents = [];
      h.worker.addEventListener('message', ({ data: m }) => {
        if (m.type === 'pool') h.poolEvents.push(m);
        if (m.type === 'exported' && m.req === 'pool-test') h.exported = Array.from(m.bytes);
      });
      if (hold) h.post({ type: 'hold-at', step: 10 });
    }, kill || cap || sweep || profile);
    await page.click('#btn-start');
    if (kill) {
      await page.waitForFunction(() => window.__toyformer.rows.length >= 10, null, { timeout: 300_000, polling: 200 });
      await page.evaluate(() => {
        window.__toyformer.post({ type: 'pool-kill', index: 0 });
        window.__toyformer.post({ type: 'release' });
      });
    }
    if (cap) {
      const at = (n) => page.waitForFunction((n) => window.__toyformer.rows.length >= n, n, { timeout: 300_000, polling: 200 });
      await at(10);
      await page.evaluate(() => {
        window.__toyformer.post({ type: 'workers-cap', cap: 1 });
        window.__toyformer.post({ type: 'hold-at', step: 20 });
      });
      await at(20);
      await page.evaluate(() => {
        window.__toyformer.post({ type: 'workers-cap', cap: 0 });
        window.__toyformer.post({ type: 'release' });
      });
    }
    if (sweep) await sweepMidRun(page);
    if (profile) {
      await page.waitForFunction(() => window.__toyformer.rows.length >= 10, null, { timeout: 300_000, polling: 200 });
      await page.evaluate(() => {
        window.__toyformer.post({ type: 'pool-profile', start: true });
        window.__toyformer.post({ type: 'release' });
      });
    }
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 300_000, polling: 300 });
    // the final weights, as the .safetensors export (bytes; equal bytes = equal weights)
    await page.evaluate(() => window.__toyformer.post({ type: 'export', req: 'pool-test' }));
    await page.waitForFunction(() => window.__toyformer.exported, null, { timeout: 60_000 });
    if (profile) {
      await page.evaluate(() => window.__toyformer.post({ type: 'pool-profile', start: false }));
      await page.waitForFunction(() => window.__toyformer.poolEvents.some((e) => e.event === 'profile'), null, { timeout: 60_000 });
    }
    const out = await page.evaluate(() => ({ rows: window.__toyformer.rows, weights: window.__toyformer.exported,
      events: window.__toyformer.poolEvents }));
    assert.deepEqual(errors, [], 'no console errors');
    return out;
  } finally {
    await close();
  }
}

test('pool: 2 workers train bit-identically to 1; a helper killed mid-step is replaced and the step redone',
  { timeout: 900_000 }, async () => {
    const one = await train(1);
    results.one = one;
    assert.equal(one.rows.length, 30);
    assert.ok(one.rows[29].loss < 0.8 * one.rows[0].loss, `it trains: ${one.rows[0].loss} → ${one.rows[29].loss}`);
    assert.deepEqual(one.events, [], 'one worker: no pool');

    const two = await train(2);
    assert.ok(two.events.some((e) => e.event === 'size' && e.workers === 2), JSON.stringify(two.events));
    assert.deepEqual(two.rows, one.rows, 'every step\'s metrics are identical');
    assert.equal(two.weights.length, one.weights.length);
    assert.ok(two.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');

    const killed = await train(2, { kill: true });
    const replaced = killed.events.filter((e) => e.event === 'replaced');
    assert.equal(replaced.length, 1, JSON.stringify(killed.events));
    assert.ok(replaced[0].step >= 10, `replaced at step ${replaced[0].step}`);
    assert.deepEqual(killed.rows, one.rows, 'the redone step lost nothing');
    assert.ok(killed.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');

    const capped = await train(2, { cap: true });
    assert.deepEqual(capped.events.map((e) => e.workers), [2, 1, 2], JSON.stringify(capped.events));
    assert.deepEqual(capped.rows, one.rows, 'shrinking and growing the pool mid-run changes nothing');
    assert.ok(capped.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');
  });

const results = {};

// Starts a 2-run sweep at step 10 (the run held there), lets the run go on to step 20 while the sweep
// runs, and releases it once the sweep is done. The sweep's runs are long enough (seconds) that the
// run's 10 steps (milliseconds) happen while it runs; the test checks that they did (a 200-step sweep
// once ended before the test's hold-at message reached the worker on a loaded machine).
async function sweepMidRun(page) {
  await page.waitForFunction(() => window.__toyformer.rows.length >= 10, null, { timeout: 300_000, polling: 200 });
  await page.fill('#sweep-grid', JSON.stringify({ task: 'sort', n: 3, max_num: 8, d_model: 16, d_head: 16,
    steps: 5000, batch_size: 16, seed: [0, 1] }));
  await page.click('#btn-sweep-run');
  // 'running' is set right after the cell capped the pool: the cap reaches the worker before this
  await page.waitForFunction(() => window.__toyformer.sweep.state !== 'idle', null, { timeout: 60_000, polling: 50 });
  await page.evaluate(() => window.__toyformer.post({ type: 'hold-at', step: 20 }));
  await page.waitForFunction(() => window.__toyformer.rows.length >= 20, null, { timeout: 300_000, polling: 50 });
  assert.equal(await page.evaluate(() => window.__toyformer.sweep.state), 'running', 'steps 10-20 ran during the sweep');
  await page.waitForFunction(() => window.__toyformer.sweep.state === 'done', null, { timeout: 300_000, polling: 200 });
  await page.evaluate(() => window.__toyformer.post({ type: 'release' }));
}

test('pool: a sweep started during training takes the cores it leaves (cores.js), the run stays identical',
  { timeout: 900_000 }, async () => {
    const one = results.one ?? await train(1);
    const run = await train(2, { sweep: true });
    // 2 cores: the sweep gets 1 worker and the training pool is capped to 1 while it runs
    assert.deepEqual(run.events.map((e) => e.workers), [2, 1, 2], JSON.stringify(run.events));
    assert.deepEqual(run.rows, one.rows, 'every step\'s metrics are identical');
    assert.ok(run.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');
  });

test('pool, cross-origin isolated: jobs and results through SharedArrayBuffers (Atomics), bit-identical; a killed helper is replaced',
  { timeout: 900_000 }, async () => {
    const one = results.one ?? await train(1);
    const two = await train(2, { url: isolated.url, profile: true });
    assert.ok(two.events.some((e) => e.event === 'size' && e.workers === 2 && e.isolated === true), JSON.stringify(two.events));
    // steps 11..30 after the profile started: every job went through the helper's job area and
    // every result came back through its result area (no message on either way)
    const prof = two.events.find((e) => e.event === 'profile').profile;
    assert.equal(prof.steps, 20, JSON.stringify(prof));
    assert.equal(prof.sharedJobs, 20, JSON.stringify(prof));
    assert.equal(prof.shared, 20, JSON.stringify(prof));
    assert.deepEqual(two.rows, one.rows, 'every step\'s metrics are identical');
    assert.ok(two.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');
    const killed = await train(2, { kill: true, url: isolated.url });
    assert.equal(killed.events.filter((e) => e.event === 'replaced').length, 1, JSON.stringify(killed.events));
    assert.deepEqual(killed.rows, one.rows, 'the redone step lost nothing');
    assert.ok(killed.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');
  });
