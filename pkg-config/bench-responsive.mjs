// The page's main-thread tasks while it trains: the longest task (and how many exceed 50 ms)
// while the worker trains sort-ref at full size (d_model 128, batch 256) and permutations (T = 122)
// with every analysis cell open and following the run, with the page's CPU unthrottled and
// throttled (Chromium's Emulation.setCPUThrottlingRate). A benchmark, not a test: nothing is
// asserted (the figures depend on the machine and its load; the test of the structure that keeps
// them small is tests/browser/responsive.test.mjs). The page's goal: no task over 200 ms.
//
//   node pkg-config/bench-responsive.mjs [--rates 1,4] [--configs sort-ref,permutations]
//   (needs `make wasm vendor` first)
import { startServer, openNotebook } from './browser.mjs';
import { throttle, observeLongTasks, longTasks } from './responsive.mjs';

const arg = (k, d) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const rates = arg('rates', '1,4').split(',').map(Number);
const CONFIGS = {
  'sort-ref': { hash: 'task=sort', steps: 300 },
  permutations: { hash: 'task=permutations&batch_size=32', steps: 150 },
};
const configs = arg('configs', Object.keys(CONFIGS).join(',')).split(',');

async function measure(server, name, rate) {
  const { hash, steps } = CONFIGS[name];
  const { page, close } = await openNotebook(`${server.url}#v=1&${hash}&steps=${steps}&backend=cpu`, { webgpu: false, init: observeLongTasks });
  try {
    await page.waitForFunction(() => window.__toyformer.ready, null, { timeout: 120_000 });
    if (rate !== 1) await throttle(page, rate);
    const t0 = await page.evaluate(() => performance.now());
    await page.evaluate(() => document.getElementById('btn-start').click());
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 900_000, polling: 500 });
    const t1 = await page.evaluate(() => performance.now());
    const tasks = await longTasks(page, t0, t1);
    const worst = tasks.reduce((m, t) => (t.ms > m.ms ? t : m), { ms: 0, scripts: [] });
    return { config: name, rate, steps, seconds: +((t1 - t0) / 1000).toFixed(1), over50: tasks.length, longest_ms: Math.round(worst.ms), longest_scripts: worst.scripts };
  } finally {
    await close();
  }
}

const server = await startServer();
try {
  for (const name of configs) {
    if (!CONFIGS[name]) throw new Error(`unknown config ${name} (use ${Object.keys(CONFIGS).join(' or ')})`);
    for (const rate of rates) {
      const r = await measure(server, name, rate);
      console.log(`${name}, CPU throttled ${rate}×: ${r.steps} steps in ${r.seconds} s; ${r.over50} main-thread tasks over 50 ms, longest ${r.longest_ms} ms`);
      console.log(JSON.stringify({ ...r, date: new Date().toISOString() }));
    }
  }
} finally {
  server.close();
}
