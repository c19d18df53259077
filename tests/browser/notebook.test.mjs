// The notebook page end to end, in headless Chromium on the CPU (wasm) backend: it loads without
// console errors, the form validates (an inline error disables Start), a small sort model trains
// through the worker until the loss falls, the charts fill, evaluation and greedy completion answer.
// Screenshots of every cell go to test-output/notebook-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const STEPS = 300;
const server = serveDuringTests();

const open = (webgpu) => openNotebook(server.url, { webgpu });

const shot = (page, id, name) => page.locator(`#${id}`).screenshot({ path: `${OUT}/notebook-${name}.png` });
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('notebook: configure, reject a bad d_head, train, evaluate, complete (CPU, no WebGPU)', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open(false);
  try {
    assert.match(await page.textContent('#backend-badge'), /CPU \(wasm\)/);
    assert.match(await page.textContent('#backend-note'), /no WebGPU adapter/);

    // A small config through the form: sort 5 numbers below 10, a narrow model, a short run.
    const fill = (key, v) => page.fill(`[name="${key}"]`, String(v));
    await fill('sort_n', 5);
    await fill('max_num', 10);
    await fill('d_model', 32);
    await fill('d_head', 32);
    await fill('steps', STEPS);
    await fill('batch_size', 32);
    await fill('lr', 0.003);
    assert.match(page.url(), /sort_n=5/, 'the URL holds the changed values');
    assert.equal(await page.textContent('#task-facts dd'), '12', 'T = 2n + 2');
    assert.equal(await page.locator('#task-samples .seq').count(), 3);
    assert.equal(await page.locator('#task-samples .seq').first().locator('.tok.target').count(), 5);
    await shot(page, 'cell-task', 'task');

    // A bad parameter: inline error, Start disabled; fixing it enables Start again.
    await fill('d_head', 0);
    assert.ok(await page.isVisible('#model-error'));
    assert.match(await page.textContent('#model-error'), /d_head/);
    assert.ok(await page.isDisabled('#btn-start'));
    await shot(page, 'cell-model', 'model-error');
    await fill('d_head', 32);
    assert.ok(await page.isHidden('#model-error'));
    assert.ok(await page.isEnabled('#btn-start'));
    assert.match(await page.textContent('#model-facts'), /parameters/);
    await shot(page, 'cell-model', 'model');

    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 480_000, polling: 500 });
    const rows = await page.evaluate(() => window.__toyformer.rows);
    assert.equal(rows.length, STEPS);
    assert.deepEqual(rows.map((r) => r.step), [...Array(STEPS).keys()]);
    const first = mean(rows.slice(0, 20).map((r) => r.loss));
    const last = mean(rows.slice(-20).map((r) => r.loss));
    // ln(10) = 2.30 is chance for 10 classes; a model that learned anything sits far below.
    assert.ok(first > 1.5, `initial loss ${first} should be near ln 10`);
    assert.ok(last < 0.5 * first, `loss fell from ${first} to ${last}`);
    assert.equal(await page.evaluate(() => window.__toyformer.chartPoints()), STEPS);
    assert.equal(await page.locator('#charts .chart canvas').count(), 4);

    // Evaluation runs when training ends.
    await page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 120_000 });
    const ev = await page.evaluate(() => window.__toyformer.lastEval);
    assert.equal(ev.samples, 1000);
    assert.deepEqual(ev.positions, [6, 7, 8, 9, 10]);
    assert.ok(ev.token_acc > 0.3, `token accuracy ${ev.token_acc} is above chance (0.1)`);
    assert.equal(await page.locator('#eval-perpos .col').count(), 5);
    assert.equal(await page.locator('#eval-samples .seq').count(), 5);
    await shot(page, 'cell-train', 'train');

    // Export: a safetensors file with TransformerLens keys and the run's task in its metadata.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#btn-export')]);
    assert.equal(dl.suggestedFilename(), `toyformer-sort-step${STEPS}.safetensors`);
    const bytes = readFileSync(await dl.path());
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
    assert.deepEqual(header['blocks.0.attn.W_Q'].shape, [1, 32, 32]);
    assert.deepEqual(header['unembed.W_U'].shape, [32, 10]);
    assert.deepEqual(JSON.parse(header.__metadata__.toyformer_task), { task: 'sort', n: 5, max_num: 10 });

    // Free input → greedy completion to the full sequence.
    await page.fill('#try-input', '3 1 4 1 5');
    await page.click('#btn-complete');
    await page.waitForFunction(() => window.__toyformer.lastCompletion !== null, null, { timeout: 60_000 });
    const c = await page.evaluate(() => window.__toyformer.lastCompletion);
    assert.equal(c.prompt_len, 7);
    assert.equal(c.tokens.length, 12);
    assert.deepEqual(c.tokens.slice(0, 7), ['BOS', '3', '1', '4', '1', '5', 'MID']);
    assert.equal(await page.locator('#try-output .tok').count(), 12);
    // A malformed prompt shows the crate's message.
    await page.fill('#try-input', '3 1 x');
    await page.click('#btn-complete');
    await page.waitForSelector('#try-error:not([hidden])');
    assert.match(await page.textContent('#try-error'), /not a number/);
    await page.fill('#try-input', '3 1 4 1 5');
    await page.click('#btn-complete');
    await page.waitForSelector('#try-error', { state: 'hidden' });
    await shot(page, 'cell-eval', 'eval');
    await page.screenshot({ path: `${OUT}/notebook-page.png`, fullPage: true });

    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('notebook: the badge names a WebGPU adapter when there is one', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await open(true);
  try {
    // SwiftShader is a software fallback adapter: auto keeps the CPU, the switch can choose WebGPU anyway
    assert.match(await page.textContent('#backend-badge'), /CPU \(wasm\)/);
    assert.match(await page.textContent('#backend-note'), /software fallback/);
    await page.selectOption('[name="backend"]', 'webgpu');
    assert.match(await page.textContent('#backend-badge'), /^WebGPU \(.+\)$/);
    await page.locator('header').screenshot({ path: `${OUT}/notebook-header-webgpu.png` });
    // The switch forces the CPU: this run exercises the CPU path (tests/browser/gpu.test.mjs trains on WebGPU).
    await page.selectOption('[name="backend"]', 'cpu');
    assert.match(await page.textContent('#backend-badge'), /CPU \(wasm\)/);
    assert.match(await page.textContent('#backend-note'), /forced by the backend switch/);
    assert.match(page.url(), /backend=cpu/);

    // Permutations has a positive loss floor: shown in the task cell and drawn on the loss chart.
    await page.selectOption('[name="task"]', 'permutations');
    assert.ok(await page.isVisible('[name="perm_n"]'));
    assert.ok(await page.isHidden('[name="sort_n"]'));
    assert.match(await page.textContent('#task-facts'), /loss floor\s*\d\.\d{4} nats/);
    assert.ok(await page.isChecked('[name="ln"]'), "the task's default model has LayerNorm");
    await page.fill('[name="steps"]', '600');
    await page.fill('[name="batch_size"]', '4');
    // The worker holds the run at step 5 (still training), so Pause is clicked mid-run however
    // fast the machine trains.
    await page.evaluate(() => window.__toyformer.post({ type: 'hold-at', step: 5 }));
    await page.click('#btn-start');
    // Pause mid-run: no steps are taken while paused, evaluation runs, resume continues the same run.
    await page.waitForFunction(() => window.__toyformer.rows.length >= 5, null, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => window.__toyformer.phase), 'training');
    await page.click('#btn-pause');
    await page.waitForFunction(() => window.__toyformer.phase === 'paused');
    await page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 120_000 });
    const pausedAt = await page.evaluate(() => window.__toyformer.rows.length);
    await page.waitForTimeout(500);
    assert.equal(await page.evaluate(() => window.__toyformer.rows.length), pausedAt);
    assert.ok(pausedAt < 600, `paused at ${pausedAt}`);
    await page.evaluate(() => window.__toyformer.post({ type: 'release' }));
    await page.click('#btn-resume');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 300_000, polling: 500 });
    const steps = await page.evaluate(() => window.__toyformer.rows.map((r) => r.step));
    assert.deepEqual(steps, [...Array(600).keys()]);
    assert.equal(await page.locator('#charts .chart').first().locator('.u-legend .u-series').count(), 3);
    await shot(page, 'cell-train', 'train-permutations');
    // After 600 steps of batch 4 the model is still mostly wrong: wrong guesses are marked.
    await page.waitForFunction(() => document.getElementById('eval-note').textContent.includes('after 600 steps'), null, { timeout: 120_000 });
    assert.ok((await page.locator('#eval-samples .tok.wrong').count()) > 0);
    assert.equal(await page.locator('#eval-samples .tok.wrong').count(), await page.locator('#eval-samples .guess').count());
    await shot(page, 'cell-eval', 'eval-permutations');

    // Reset unlocks the form and forgets the run.
    await page.click('#btn-reset');
    await page.waitForFunction(() => window.__toyformer.phase === 'idle');
    assert.ok(await page.isEnabled('[name="steps"]'));
    assert.ok(await page.isEnabled('#btn-start'));
    assert.ok(await page.isDisabled('#btn-complete'));
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});
