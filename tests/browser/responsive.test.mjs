// The page stays responsive while it trains: no main-thread task over 200 ms (the Long Tasks API)
// while the worker trains sort-ref at full size (d_model 128, batch 256) with every analysis cell
// open and following the run, and likewise for the permutations task (T = 122). Training runs in
// the worker; the page's own work (charts, analyses of each weight snapshot) must come in slices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const LIMIT_MS = 200;
const server = serveDuringTests();

// Records every long task (> 50 ms) of the page's main thread, with when it started, and the
// scripts of each long animation frame (named in a failure: what ran in the long task).
const observe = () => {
  window.__longtasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, ms: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  window.__frames = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__frames.push({ start: e.startTime, end: e.startTime + e.duration,
        scripts: e.scripts.map((s) => `${s.invoker} ${s.sourceURL.split('/').pop()}:${s.sourceFunctionName} ${Math.round(s.duration)} ms`) });
    }
  }).observe({ type: 'long-animation-frame', buffered: true });
};

async function trainAndWatch(hash, steps, name) {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${hash}&steps=${steps}&backend=cpu`, { webgpu: false, init: observe });
  try {
    await page.waitForFunction(() => window.__toyformer.ready, null, { timeout: 60_000 });
    const t0 = await page.evaluate(() => performance.now());
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 540_000, polling: 500 });
    const t1 = await page.evaluate(() => performance.now());
    const rows = await page.evaluate(() => window.__toyformer.rows.length);
    assert.equal(rows, steps);
    const tasks = await page.evaluate(([a, b]) => window.__longtasks.filter((t) => t.start >= a && t.start <= b).map((t) => ({
      ...t, scripts: window.__frames.filter((f) => f.start <= t.start + t.ms && f.end >= t.start).flatMap((f) => f.scripts),
    })), [t0, t1]);
    const worst = tasks.reduce((m, t) => Math.max(m, t.ms), 0);
    console.log(`# ${name}: ${steps} steps in ${((t1 - t0) / 1000).toFixed(1)} s; ${tasks.length} main-thread tasks over 50 ms, longest ${worst.toFixed(0)} ms`);
    await page.screenshot({ path: `${OUT}/responsive-${name}.png` });
    assert.ok(worst <= LIMIT_MS, `${name}: a main-thread task took ${worst.toFixed(0)} ms while training (limit ${LIMIT_MS} ms): ${JSON.stringify(tasks)}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
}

test('responsive: sort-ref at full size trains with no main-thread task over 200 ms', { timeout: 600_000 }, async () => {
  await trainAndWatch('task=sort', 300, 'sort-ref');
});

test('responsive: permutations (T = 122) trains with no main-thread task over 200 ms', { timeout: 600_000 }, async () => {
  await trainAndWatch('task=permutations&batch_size=32', 150, 'permutations');
});
