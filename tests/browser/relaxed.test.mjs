// The relaxed-SIMD wasm build (www/pkg-relaxed, fused multiply-add in the CPU engine's hot loops)
// against the simd128 build (www/pkg), in one Chromium page: the page's probe finds relaxed SIMD
// here, and 30 training steps of the same run agree within float rounding (loss curve within 1e-4
// relative, weights within 1e-4 of their scale), while each build is deterministic run to run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, launch } from '../../pkg-config/browser.mjs';

const server = serveDuringTests();

test('relaxed SIMD: detected in Chromium; the relaxed build trains as the simd128 build within rounding',
  { timeout: 300_000 }, async () => {
    const b = await launch({ webgpu: false });
    try {
      await b.page.goto(`${server.url}index.html`);
      const r = await b.page.evaluate(async () => {
        const { hasRelaxedSimd } = await import('./js/wasm-pick.js');
        const task = JSON.stringify({ task: 'sort', n: 6, max_num: 20 });
        const train = JSON.stringify({ steps: 30, batch_size: 64, lr: 0.003 });
        const runOn = async (pkg) => {
          const m = await import(`./${pkg}/toyformer.js`);
          await m.default();
          const model = JSON.stringify({ ...m.task_info(task).default_model, d_model: 32, d_head: 32 });
          const s = new m.Session(task, model, train);
          const losses = s.step(30).map((x) => x.loss);
          const w = Array.from(s.weights());
          s.free();
          return { losses, w };
        };
        return { relaxed: hasRelaxedSimd(), a: await runOn('pkg'), b: await runOn('pkg-relaxed'),
          b2: await runOn('pkg-relaxed') };
      });
      assert.equal(r.relaxed, true, 'Chromium validates the relaxed-SIMD probe');
      assert.deepEqual(r.b2.losses, r.b.losses, 'the relaxed build is deterministic');
      for (let i = 0; i < 30; i++) {
        const rel = Math.abs(r.a.losses[i] - r.b.losses[i]) / Math.abs(r.a.losses[i]);
        assert.ok(rel < 1e-4, `step ${i}: loss ${r.a.losses[i]} (simd128) vs ${r.b.losses[i]} (relaxed)`);
      }
      const scale = Math.max(...r.a.w.map(Math.abs));
      const worst = Math.max(...r.a.w.map((x, i) => Math.abs(x - r.b.w[i])));
      assert.ok(worst < 1e-4 * scale, `weights differ by up to ${worst} (scale ${scale})`);
      assert.ok(r.a.losses[29] < r.a.losses[0], 'it trains');
    } finally {
      await b.close();
    }
  });
