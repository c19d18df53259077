// Time to 99% token accuracy on sort-ref in headless Chromium, through the page itself: opens the
// notebook on the sort-ref config (sort 10 numbers below 50, the task's default 1-layer model,
// batch 256, lr 1e-3, no clipping, CPU backend) with `workers` = k, presses Start, and watches the
// page's metrics rows (the training batch's token accuracy, the accuracy plot's "token" series)
// until they reach the target. Reports the wall time from the click and the step, for the first
// row at the target and for the first step where the mean of the last `--window` rows is at it.
// With k > 1 it also reports the pool's time per step by phase from step 200 on (pool.js). k = 0 is
// the page's default, `workers` auto (pool-pick.js: it measures 1, 2, ... workers on the first steps).
// ISOLATE=1 serves the page cross-origin isolated (SharedArrayBuffers). A benchmark, not a test.
//
//   node pkg-config/bench-converge-browser.mjs [--workers 1,2,0] [--target 0.99] [--window 50] [--max-steps 20000]
//   (needs `make wasm vendor` first)
import { startServer, openNotebook } from './browser.mjs';

const arg = (k, d) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const workers = arg('workers', '1,2').split(',').map(Number);
const target = Number(arg('target', 0.99));
const win = Number(arg('window', 50));
const maxSteps = Number(arg('max-steps', 20000));
const RUN = `task=sort&sort_n=10&max_num=50&batch_size=256&lr=0.001&grad_clip=0&backend=cpu&steps=${maxSteps}`;

const server = await startServer();
try {
  for (const k of workers) console.log(JSON.stringify(await converge(k)));
} finally {
  server.close();
}

// One run on k workers: {workers, first: {step, s}, sustained: {step, s}, steps_per_s, ...}.
async function converge(k) {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${RUN}&workers=${k}`, { webgpu: false });
  try {
    await page.evaluate(({ target, win }) => {
      const h = window.__toyformer;
      const w = { target, window: win, first: null, sustained: null, sum: 0, n: 0, t0: 0 };
      h.converge = w;
      h.worker.addEventListener('message', ({ data: m }) => {
        if (m.type === 'pool' && m.event === 'profile') w.profile = m.profile;
        if (m.type !== 'metrics') return;
        const t = (performance.now() - w.t0) / 1000;
        for (const r of m.rows) {
          w.n += 1;
          w.sum += r.token_acc;
          (w.accs ??= []).push(r.token_acc);
          if (w.accs.length > w.window) w.sum -= w.accs.shift();
          if (!w.first && r.token_acc >= w.target) w.first = { step: r.step + 1, s: t };
          if (!w.sustained && w.accs.length === w.window && w.sum / w.window >= w.target) {
            w.sustained = { step: r.step + 1, s: t };
            h.post({ type: 'pause' });
          }
        }
        w.last = { step: m.last.step, s: t, steps_per_s: m.last.steps_per_s };
        if (!w.profiling && m.last.step >= 200) {
          w.profiling = true; // the pool's phases from step 200 on (pool.js startProfile)
          h.post({ type: 'pool-profile', start: true });
        }
      });
      w.t0 = performance.now();
    }, { target, win });
    await page.click('#btn-start');
    await page.waitForFunction(() => {
      const h = window.__toyformer;
      return h.converge.sustained || h.phase === 'done';
    }, null, { timeout: 3_600_000, polling: 500 });
    await page.evaluate(() => window.__toyformer.post({ type: 'pool-profile' }));
    await page.waitForFunction(() => 'profile' in window.__toyformer.converge, null, { timeout: 60_000 });
    const w = await page.evaluate(() => {
      const { first, sustained, last, profile } = window.__toyformer.converge;
      const ms = profile && Object.fromEntries(Object.entries(profile).map(([n, v]) => [n, +(v / profile.steps).toFixed(2)]));
      return { first, sustained, last, ms_per_step: ms };
    });
    return { workers: k, target, window: win, ...w, mean_steps_per_s: w.last && w.last.step / w.last.s, errors };
  } finally {
    await close();
  }
}
