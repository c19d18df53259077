// The notebook in headless Chromium (CPU backend, no WebGPU flag): loads without console errors, trains
// the sort task and the loss falls, the charts get data, the free input box completes, a bad parameter
// shows an inline error and blocks Start. Screenshots go to test-output/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
mkdirSync(OUT, { recursive: true });

test('notebook trains sort on the CPU backend', { timeout: 300_000 }, async () => {
  const server = await startServer();
  const { page, close } = await launch({ webgpu: false });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(server.url);
    await page.waitForFunction(() => document.getElementById('badge').textContent.startsWith('CPU'));
    await page.screenshot({ path: `${OUT}/notebook-loaded.png`, fullPage: true });

    const set = async (key, value) => {
      await page.fill(`#prop-${key}`, String(value));
      await page.dispatchEvent(`#prop-${key}`, 'change');
    };
    // a bad parameter: inline error, Start disabled
    await set('d_head', 0);
    assert.match(await page.textContent('#model-error'), /d_head/);
    assert.equal(await page.isDisabled('#start'), true);
    await page.locator('#cell-model').screenshot({ path: `${OUT}/cell-model-error.png` });

    // a small sort experiment
    await set('n', 5); await set('max_num', 10);
    await set('d_model', 32); await set('d_head', 32);
    await set('steps', 300); await set('batch_size', 32); await set('lr', 0.003);
    assert.equal(await page.textContent('#model-error'), '');
    assert.equal(await page.isDisabled('#start'), false);
    await page.locator('#cell-task').screenshot({ path: `${OUT}/cell-task.png` });
    await page.click('#start');
    await page.waitForFunction(() => window.__toyformer.metrics.length >= 300, null, { timeout: 240_000 });
    const ms = await page.evaluate(() => window.__toyformer.metrics);
    const first = ms[0].loss;
    const last = ms.slice(-20).reduce((a, m) => a + m.loss, 0) / 20;
    assert.ok(last < 0.6 * first, `loss ${first} -> ${last}`);
    const points = await page.evaluate(() => document.querySelectorAll('#chart-loss canvas').length);
    assert.ok(points >= 1, 'loss chart has a canvas');
    await page.locator('#cell-train').screenshot({ path: `${OUT}/cell-train.png` });

    await page.fill('#prompt', '3 1 4 1 5');
    await page.click('#complete');
    await page.waitForFunction(() => window.__toyformer.completion !== null);
    const c = await page.evaluate(() => window.__toyformer.completion);
    assert.equal(c.tokens.length, 12);
    assert.equal(c.prompt_len, 7);
    await page.locator('#cell-eval').screenshot({ path: `${OUT}/cell-eval.png` });
    assert.deepEqual(errors, []);
  } finally {
    await close();
    server.close();
  }
});
