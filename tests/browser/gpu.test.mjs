// WebGPU training in headless Chromium (SwiftShader, --enable-unsafe-webgpu): the wasm build's GpuSession
// against the CPU Session on the same seeds, and a run through the page UI on WebGPU.
// Screenshots go to test-output/gpu-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const server = serveDuringTests();

const open = () => openNotebook(server.url, { webgpu: true });

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('GpuSession (WebGPU) matches the CPU Session step by step', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await open();
  try {
    const r = await page.evaluate(async () => {
      const m = await import('./pkg/toyformer.js');
      await m.default();
      const task = JSON.stringify({ task: 'sort', n: 5, max_num: 10 });
      const info = m.task_info(task);
      // two layers, two heads, LN and a gelu MLP with training biases: every kernel runs
      const model = JSON.stringify({ ...info.default_model, n_layers: 2, n_heads: 2, d_model: 32, d_head: 16,
        normalization_type: 'LN', d_mlp: 48, act_fn: 'gelu', train_biases: true });
      const train = JSON.stringify({ steps: 30, batch_size: 16, lr: 0.003, seed: 7 });
      const gpu = await m.GpuSession.create(task, model, train);
      const cpu = new m.Session(task, model, train);
      const g = [...(await gpu.step(10)), ...(await gpu.step(20))];
      const c = cpu.step(30);
      const ev = await gpu.evaluate(200);
      const done = gpu.done;
      return { adapter: gpu.adapter, backend: gpu.backend, g, c, ev, done };
    });
    assert.equal(r.g.length, 30);
    assert.ok(r.done);
    assert.deepEqual(r.g.map((x) => x.step), [...Array(30).keys()]);
    // The two backends sum in different orders (tiled matmuls and tree reductions against candle's
    // kernels), so f32 results differ by a few ulps: seen here ≤ 7e-7 over these 30 steps (losses ~1-3).
    // 2e-5 leaves room for other adapters' rounding (fma contraction, exp/log precision) while still
    // catching any real difference in the model, the loss or the optimiser (those show at 1e-3 and above).
    r.g.forEach((x, i) => {
      assert.ok(Math.abs(x.loss - r.c[i].loss) <= 2e-5, `step ${i}: WebGPU loss ${x.loss} vs CPU ${r.c[i].loss}`);
    });
    assert.ok(Math.abs(r.g[0].grad_norm - r.c[0].grad_norm) <= 1e-4 * r.c[0].grad_norm, `grad norm ${r.g[0].grad_norm} vs ${r.c[0].grad_norm}`);
    assert.ok(r.g[29].loss < r.g[0].loss, 'the loss falls');
    assert.equal(r.ev.samples, 200);
    const diffs = r.g.map((x, i) => Math.abs(x.loss - r.c[i].loss));
    console.log(`largest loss difference over 30 steps ${Math.max(...diffs)} (step 0: ${diffs[0]})`);
    console.log(`WebGPU adapter "${r.adapter}": losses ${r.g[0].loss.toFixed(6)} → ${r.g[29].loss.toFixed(6)} (CPU ${r.c[0].loss.toFixed(6)} → ${r.c[29].loss.toFixed(6)})`);
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('a replay on the same WebGPU adapter is bit-identical (losses and weights), however it is chunked', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await open();
  try {
    const r = await page.evaluate(async () => {
      const m = await import('./pkg/toyformer.js');
      await m.default();
      const task = JSON.stringify({ task: 'sort', n: 5, max_num: 10 });
      const model = JSON.stringify({ ...m.task_info(task).default_model, d_model: 32, d_head: 16, n_heads: 2 });
      const train = JSON.stringify({ steps: 24, batch_size: 16, lr: 0.003, seed: 3 });
      const run = async (chunks) => {
        const s = await m.GpuSession.create(task, model, train);
        const rows = [];
        for (const n of chunks) rows.push(...(await s.step(n)));
        const out = { losses: rows.map((x) => x.loss), grads: rows.map((x) => x.grad_norm), weights: Array.from(s.weights()) };
        s.free();
        return out;
      };
      return { a: await run([24]), b: await run([5, 7, 12]) };
    });
    assert.equal(r.a.losses.length, 24);
    assert.deepEqual(r.b.losses, r.a.losses, 'loss curves differ between two identical WebGPU runs');
    assert.deepEqual(r.b.grads, r.a.grads);
    const differ = r.a.weights.filter((x, i) => !Object.is(x, r.b.weights[i])).length;
    assert.equal(differ, 0, `${differ} of ${r.a.weights.length} weights differ`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('training through the page on WebGPU lowers the loss', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open();
  try {
    // SwiftShader is a software fallback: auto would train on the CPU, the switch asks for WebGPU
    await page.selectOption('[name="backend"]', 'webgpu');
    assert.match(await page.textContent('#backend-badge'), /^WebGPU \(.+\)$/);
    const fill = (key, v) => page.fill(`[name="${key}"]`, String(v));
    await fill('sort_n', 5);
    await fill('max_num', 10);
    await fill('d_model', 32);
    await fill('d_head', 32);
    await fill('steps', 200);
    await fill('batch_size', 32);
    await fill('lr', 0.003);
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 540_000, polling: 500 });
    assert.match(await page.textContent('#backend-badge'), /^WebGPU \(.+\)$/, 'the run used WebGPU');
    assert.match(await page.textContent('#backend-note'), /training on the GPU/);
    const rows = await page.evaluate(() => window.__toyformer.rows);
    assert.equal(rows.length, 200);
    assert.deepEqual(rows.map((r) => r.step), [...Array(200).keys()]);
    const first = mean(rows.slice(0, 20).map((r) => r.loss));
    const last = mean(rows.slice(-20).map((r) => r.loss));
    assert.ok(first > 1.5, `initial loss ${first} should be near ln 10`);
    assert.ok(last < 0.5 * first, `loss fell from ${first} to ${last}`);
    await page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 120_000 });
    const ev = await page.evaluate(() => window.__toyformer.lastEval);
    assert.ok(ev.token_acc > 0.3, `token accuracy ${ev.token_acc}`);
    await page.locator('header').screenshot({ path: `${OUT}/gpu-header.png` });
    await page.locator('#cell-train').screenshot({ path: `${OUT}/gpu-train.png` });
    await page.locator('#cell-eval').screenshot({ path: `${OUT}/gpu-eval.png` });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('a GPU lost mid-run hands over to the CPU from the last synced weights', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open();
  try {
    await page.selectOption('[name="backend"]', 'webgpu');
    const fill = (key, v) => page.fill(`[name="${key}"]`, String(v));
    await fill('sort_n', 5);
    await fill('max_num', 10);
    await fill('d_model', 32);
    await fill('d_head', 32);
    await fill('steps', 120);
    await fill('batch_size', 32);
    await fill('lr', 0.003);
    // The worker holds the run at step 20, so the device is lost mid-run however fast the GPU is.
    await page.evaluate(() => window.__toyformer.post({ type: 'hold-at', step: 20 }));
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.rows.length >= 20, null, { timeout: 300_000, polling: 200 });
    assert.match(await page.textContent('#backend-badge'), /^WebGPU/);
    await page.evaluate(() => window.__toyformer.post({ type: 'lose-device' }));
    await page.evaluate(() => window.__toyformer.post({ type: 'release' }));
    await page.waitForFunction(() => /CPU/.test(document.getElementById('backend-badge').textContent), null, { timeout: 120_000 });
    const note = await page.textContent('#backend-note');
    assert.match(note, /WebGPU failed \(.*lost.*\); continued on the CPU from step \d+/);
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 300_000, polling: 500 });
    const rows = await page.evaluate(() => window.__toyformer.rows);
    // every step once, in order, across the hand-over, and the loss keeps falling on the CPU
    assert.deepEqual(rows.map((r) => r.step), [...Array(120).keys()]);
    const handover = Number(note.match(/from step (\d+)/)[1]);
    assert.ok(handover >= 20 && handover < 120, `handed over at ${handover}`);
    const before = mean(rows.slice(0, 10).map((r) => r.loss));
    const after = mean(rows.slice(-10).map((r) => r.loss));
    assert.ok(after < 0.7 * before, `loss ${before} → ${after} across the hand-over`);
    await page.locator('header').screenshot({ path: `${OUT}/gpu-handover-header.png` });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});
