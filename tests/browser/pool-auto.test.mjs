// `workers` auto in the page (www/js/pool-pick.js through worker.js): a CPU run left at the default
// (0) times its first steps on 1, 2, … workers up to the cores the browser reports, posts its choice
// with the figures (shown in the header), and trains bit-identically to a run on one worker: the
// calibration's steps are the run's own. A second run of the same model reuses the choice. A batch
// of one shard (src/cpu/shard.rs) has nothing to split: auto says so and makes no pool. A model
// loaded from a file (no 'backend' message) still gets the pool line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';
import { candidates } from '../../www/js/pool-pick.js';

const server = serveDuringTests();
const saved = {}; // the first test's exported .safetensors bytes, for the loading test
// long enough for the calibration (~2 s of steps on 2 cores; a step takes ~4-6 ms on 1 or 2 workers here)
const STEPS = 2000;
const RUN = `task=sort&sort_n=10&max_num=50&d_model=64&d_head=64&batch_size=256&lr=0.001&steps=${STEPS}`;

// Trains RUN (`workers` = the fragment's value, or the default auto when null) `runs` times in one
// page; returns each run's metrics rows, the pool events, the header's note and the final weights.
async function train(workers, runs = 1, run = RUN) {
  const extra = workers === null ? '' : `&workers=${workers}`;
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${run}${extra}`, { webgpu: false });
  try {
    await page.evaluate(() => {
      const h = window.__toyformer;
      h.poolEvents = [];
      h.worker.addEventListener('message', ({ data: m }) => {
        if (m.type === 'pool') h.poolEvents.push(m);
        if (m.type === 'exported' && m.req === 'auto-test') h.exported = Array.from(m.bytes);
      });
    });
    const out = [];
    for (let r = 0; r < runs; r++) {
      if (r > 0) {
        await page.click('#btn-reset');
        await page.waitForFunction(() => window.__toyformer.phase === 'idle', null, { timeout: 60_000 });
      }
      await page.evaluate(() => { window.__toyformer.poolEvents = []; window.__toyformer.exported = null; });
      await page.click('#btn-start');
      await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 600_000, polling: 300 });
      await page.evaluate(() => window.__toyformer.post({ type: 'export', req: 'auto-test' }));
      await page.waitForFunction(() => window.__toyformer.exported, null, { timeout: 60_000 });
      out.push(await page.evaluate(() => ({ rows: window.__toyformer.rows, weights: window.__toyformer.exported,
        events: window.__toyformer.poolEvents, note: document.getElementById('workers-note').textContent,
        noteHidden: document.getElementById('workers-note').hidden, cores: navigator.hardwareConcurrency })));
    }
    assert.deepEqual(errors, [], 'no console errors');
    return out;
  } finally {
    await close();
  }
}

test('pool auto: the run times 1, 2, … workers on its own steps, keeps one, says so, and is bit-identical to one worker',
  { timeout: 900_000 }, async () => {
    const [one] = await train(1);
    saved.weights = one.weights;
    assert.equal(one.rows.length, STEPS);
    assert.equal(one.note, '1 CPU worker');
    const [auto, again] = await train(null, 2);
    const ks = candidates(auto.cores);
    const cal = auto.events.filter((e) => e.event === 'calibrated');
    assert.equal(cal.length, 1, JSON.stringify(auto.events));
    const { workers, msPerStep, note } = cal[0];
    console.log(`# ${auto.cores} cores: ${note}`);
    assert.ok(ks.includes(workers), `${workers} of ${ks}`);
    assert.deepEqual(Object.keys(msPerStep).map(Number), ks, 'every candidate was timed');
    assert.ok(ks.every((k) => msPerStep[k] > 0), JSON.stringify(msPerStep));
    // the kept size is the rule's: no smaller pool within MARGIN of it
    for (const k of ks.filter((k) => k < workers)) assert.ok(msPerStep[workers] * 1.1 <= msPerStep[k], JSON.stringify(msPerStep));
    assert.equal(auto.note, note, 'the header shows the measured choice');
    assert.match(note, new RegExp(`CPU workers auto, measured per step \\(1: [0-9.]+ ms`));
    assert.equal(auto.noteHidden, false);
    // after the decision the pool has the kept size: the largest was made for the timing, and a
    // smaller choice resizes it (a 'size' event after the decision)
    const at = (e) => auto.events.indexOf(e);
    const sizes = auto.events.filter((e) => e.event === 'size');
    if (ks.length > 1) assert.equal(sizes.filter((e) => at(e) < at(cal[0])).at(-1)?.workers, ks.at(-1), JSON.stringify(auto.events));
    const after = sizes.filter((e) => at(e) > at(cal[0]));
    assert.equal(after.length ? after.at(-1).workers : ks.at(-1), workers, JSON.stringify(auto.events));
    assert.deepEqual(auto.rows, one.rows, 'every step\'s metrics equal one worker\'s');
    assert.ok(auto.weights.every((x, i) => x === one.weights[i]), 'final weights are bit-identical');
    // the same model again in this page: the choice is reused, nothing timed again
    const reused = again.events.filter((e) => e.event === 'calibrated');
    assert.equal(reused.length, 1, JSON.stringify(again.events));
    assert.equal(reused[0].reused, true);
    assert.equal(reused[0].workers, workers);
    assert.deepEqual(again.rows, one.rows);
  });

test('pool auto: a batch of one shard has nothing to split: 1 worker, no pool, and the header says why',
  { timeout: 300_000 }, async () => {
    const [run] = await train(null, 1, 'task=sort&sort_n=5&max_num=10&d_model=32&d_head=32&batch_size=16&steps=50');
    assert.equal(run.rows.length, 50);
    assert.deepEqual(run.events.map((e) => e.event), ['calibrated'], JSON.stringify(run.events));
    assert.equal(run.events[0].workers, 1);
    assert.equal(run.note, 'CPU workers auto: 1 worker, a batch of 16 is one shard');
    assert.equal(run.noteHidden, false);
  });

test('pool auto: a model loaded from a file on a fresh page gets the CPU pool line (no run started)',
  { timeout: 300_000 }, async () => {
    const bytes = saved.weights ?? (await train(1, 1, 'task=sort&sort_n=5&max_num=10&d_model=32&d_head=32&steps=20'))[0].weights;
    const { page, errors, close } = await openNotebook(`${server.url}#v=1`, { webgpu: false });
    try {
      await page.setInputFiles('#import-file', { name: 'model.safetensors', mimeType: 'application/octet-stream',
        buffer: Buffer.from(bytes) });
      await page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 60_000 });
      await page.waitForFunction(() => !document.getElementById('workers-note').hidden, null, { timeout: 10_000 });
      assert.equal(await page.textContent('#workers-note'), '1 CPU worker');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });
