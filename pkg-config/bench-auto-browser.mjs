// Where more CPU workers stop helping, through the page itself: for models of growing size (sort 10
// numbers below 50; d_model = d_head from --d-models; the task's batch and other defaults), opens
// the notebook with `workers` auto (0), presses Start, and reports what the calibration measured
// (pool-pick.js: ms per step on 1, 2, 4, 8 workers up to the cores, median of three interleaved
// samples) and the size it kept. The crossover is the smallest model for which 2 workers win.
// ISOLATE=1 serves the page cross-origin isolated (as `make serve` does). A benchmark, not a test.
//
//   node pkg-config/bench-auto-browser.mjs [--d-models 8,16,32,64,128] [--batch 256]
//   (needs `make wasm vendor` first)
import { startServer, openNotebook } from './browser.mjs';

const arg = (k, d) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const dModels = arg('d-models', '8,16,32,64,128').split(',').map(Number);
const batch = Number(arg('batch', 256));

const server = await startServer();
try {
  for (const d of dModels) console.log(JSON.stringify(await calibrate(d)));
} finally {
  server.close();
}

// One page, one run with `workers` auto on d_model = d_head = d: the 'calibrated' event's figures.
async function calibrate(d) {
  const run = `task=sort&sort_n=10&max_num=50&d_model=${d}&d_head=${d}&batch_size=${batch}&backend=cpu&steps=100000`;
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${run}`, { webgpu: false });
  try {
    await page.evaluate(() => {
      const h = window.__toyformer;
      h.worker.addEventListener('message', ({ data: m }) => {
        if (m.type === 'pool' && m.event === 'calibrated') {
          h.calibrated = { ...m, step: h.rows.length };
          h.post({ type: 'pause' });
        }
      });
    });
    const t0 = Date.now();
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.calibrated, null, { timeout: 300_000, polling: 100 });
    const c = await page.evaluate(() => ({ ...window.__toyformer.calibrated, cores: navigator.hardwareConcurrency,
      isolated: self.crossOriginIsolated }));
    if (errors.length) throw new Error(errors.join('\n'));
    return { d_model: d, batch_size: batch, cores: c.cores, isolated: c.isolated, kept: c.workers,
      ms_per_step: c.msPerStep, calibration_steps: c.step, calibration_s: (Date.now() - t0) / 1000 };
  } finally {
    await close();
  }
}
