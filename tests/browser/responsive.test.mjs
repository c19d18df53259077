// The page stays responsive while it trains, checked by structure rather than by the clock: the
// page's main thread handles the training worker's messages one per task, at most MAX_ROWS
// metrics rows per task (www/js/inbox.js), however far behind the worker it falls. Training
// runs with the page's CPU throttled 4× (Chromium's Emulation.setCPUThrottlingRate) so that
// the worker gets ahead; the longest main-thread task is printed, not asserted (its size in ms
// depends on the machine and its load: pkg-config/bench-responsive.mjs measures it, and
// BENCHMARKS.md records it). The rows each synchronous stretch of the page's code appends are
// counted from outside the page's code (hook.rows.push is wrapped), so a handler that works
// through a backlog in one task fails the test on any machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';
import { throttle, observeLongTasks, longTasks } from '../../pkg-config/responsive.mjs';

const OUT = 'test-output';
const MAX_ROWS = 256; // www/js/inbox.js
const server = serveDuringTests();

// Wraps hook.rows.push: each synchronous stretch of code that appends rows (ended by the next
// microtask checkpoint) is one entry of window.__stretches, its row count.
const countStretches = () => {
  const rows = window.__toyformer.rows;
  window.__stretches = [];
  let open = 0;
  rows.push = function push(...xs) {
    if (open === 0) queueMicrotask(() => { window.__stretches.push(open); open = 0; });
    open += xs.length;
    return Array.prototype.push.apply(this, xs);
  };
};

async function trainThrottled(hash, steps, name) {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${hash}&steps=${steps}&backend=cpu`, { webgpu: false, init: observeLongTasks });
  try {
    await page.waitForFunction(() => window.__toyformer.ready, null, { timeout: 60_000 });
    await throttle(page, 4);
    const t0 = await page.evaluate(() => performance.now());
    await page.evaluate(() => document.getElementById('btn-start').click());
    await page.evaluate(countStretches); // rows is a fresh array once the run started
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 540_000, polling: 500 });
    const t1 = await page.evaluate(() => performance.now());
    const { rows, stretches, inbox } = await page.evaluate(() => ({
      rows: window.__toyformer.rows.map((r) => r.step), stretches: window.__stretches, inbox: window.__toyformer.inbox,
    }));
    assert.deepEqual(rows, [...Array(steps).keys()], 'every step arrives once, in order');
    assert.ok(Math.max(...stretches) <= MAX_ROWS, `${name}: one task appended ${Math.max(...stretches)} rows`);
    assert.ok(inbox.maxRows <= MAX_ROWS && inbox.tasks >= 1, JSON.stringify(inbox));
    const tasks = await longTasks(page, t0, t1);
    const worst = tasks.reduce((m, t) => Math.max(m, t.ms), 0);
    console.log(`# ${name}, page CPU throttled 4×: ${steps} steps in ${((t1 - t0) / 1000).toFixed(1)} s; ${inbox.messages} worker messages in ${inbox.tasks} tasks `
      + `(at most ${inbox.maxRows} rows); ${tasks.length} main-thread tasks over 50 ms, longest ${worst.toFixed(0)} ms (not asserted)`);
    await page.screenshot({ path: `${OUT}/responsive-${name}.png` });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
}

test('responsive: sort-ref at full size trains with the page CPU throttled 4×, one worker message per task', { timeout: 600_000 }, async () => {
  await trainThrottled('task=sort', 300, 'sort-ref');
});

test('responsive: permutations (T = 122) trains with the page CPU throttled 4×, one worker message per task', { timeout: 600_000 }, async () => {
  await trainThrottled('task=permutations&batch_size=32', 150, 'permutations');
});

// A modular MLP model: the Task analyses cell (Fourier over all p² pairs, neurons) and the
// Timeline's progress curves compute in the analysis worker while it trains; the page's main
// thread keeps the same structure.
test('responsive: mod-sub with an MLP and the modular analyses open trains with the page CPU throttled 4×', { timeout: 600_000 }, async () => {
  await trainThrottled('task=mod-sub&mod_sub_p=31&d_model=64&d_head=32&n_heads=2&mlp=true&d_mlp=128&batch_size=64', 300, 'mod-sub');
});

// A backlog, made deterministic: 21 metrics messages (one of 1000 rows, twenty of 50) delivered
// in one task, as a page that fell far behind finds them. The delivering task itself handles
// at most MAX_ROWS rows; the rest follow in later tasks, in order, every row once.
test('responsive: a backlog of worker messages is handled in tasks of at most 256 rows', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&task=sort&steps=20&batch_size=8&backend=cpu`, { webgpu: false });
  try {
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 240_000, polling: 250 });
    await page.evaluate(countStretches);
    const sizes = [1000, ...Array(20).fill(50)];
    const inTask = await page.evaluate((sizes) => {
      const hook = window.__toyformer;
      let step = hook.rows.length;
      const row = () => ({ step: step++, loss: 1, token_acc: 0.5, seq_acc: 0.1, grad_norm: 1, lr: 1e-3 });
      const before = hook.rows.length;
      for (const n of sizes) {
        const rows = Array.from({ length: n }, row);
        const last = { step, loss: 1, token_acc: 0.5, grad_norm: 1, lr: 1e-3, steps_per_s: 100 };
        hook.receive({ data: { type: 'metrics', rows, last, total: step } });
      }
      return hook.rows.length - before;
    }, sizes);
    const total = 20 + sizes.reduce((a, b) => a + b, 0);
    await page.waitForFunction((n) => window.__toyformer.rows.length === n, total, { timeout: 120_000 });
    const { steps, stretches } = await page.evaluate(() => ({ steps: window.__toyformer.rows.map((r) => r.step), stretches: window.__stretches }));
    assert.ok(inTask > 0 && inTask <= MAX_ROWS, `the delivering task handled ${inTask} rows`);
    assert.deepEqual(steps, [...Array(total).keys()]);
    assert.ok(Math.max(...stretches) <= MAX_ROWS, JSON.stringify(stretches));
    assert.ok(stretches.length >= Math.ceil((total - 20) / MAX_ROWS), JSON.stringify(stretches));
    assert.match(await page.textContent('#progress-text'), new RegExp(`step ${total.toLocaleString('en-US')} /`));
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
