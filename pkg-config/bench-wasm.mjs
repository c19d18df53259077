// Benchmark of the wasm build in headless Chromium: training steps per second of a config on the CPU
// engine, timed the way examples/bench times the native build (warm-up, then windows; min / median /
// max ms per step). Run `make wasm` first, then:
//   node pkg-config/bench-wasm.mjs [--config sort-ref|perm-4] [--warmup 5] [--windows 5] [--window-steps 20] [--json]
// It loads www/pkg/toyformer.js in a page served on loopback and drives a `Session` directly (the
// worker does the same in the notebook), so the figure is the engine's, without the page's charts.
import { startServer, launch } from './browser.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : d;
};
const json = process.argv.includes('--json');
const config = arg('config', 'sort-ref');
const warmup = Number(arg('warmup', 5));
const windows = Number(arg('windows', 5));
const windowSteps = Number(arg('window-steps', 20));

// The same configs as examples/bench.rs (seed 003's sorter; seed 000's permutations at n = 4).
const CONFIGS = {
  'sort-ref': {
    task: { task: 'sort', n: 10, max_num: 50 },
    model: { n_layers: 1, n_heads: 1, d_model: 128, d_head: 128, d_mlp: null, act_fn: null,
      normalization_type: null, n_ctx: 22, d_vocab: 52, d_vocab_out: 50, seed: 0, train_biases: false },
  },
  'perm-4': {
    task: { task: 'permutations', n: 4 },
    model: { n_layers: 1, n_heads: 1, d_model: 128, d_head: 64, d_mlp: null, act_fn: null,
      normalization_type: 'LN', n_ctx: 122, d_vocab: 65, d_vocab_out: 65, seed: 0, train_biases: false },
  },
};
const cfg = CONFIGS[config];
if (!cfg) {
  console.error(`unknown --config ${config} (use ${Object.keys(CONFIGS).join(' or ')})`);
  process.exit(2);
}
// As examples/bench: AdamW 1e-3, wd 0.01, betas (0.9, 0.98), batch 256, no clipping (the PyTorch
// anchor does not clip).
const train = { steps: warmup + windows * windowSteps, batch_size: 256, lr: 1e-3, weight_decay: 0.01,
  beta1: 0.9, beta2: 0.98, grad_clip: 0, seed: 0, schedule: { kind: 'constant' } };

const server = await startServer();
const browser = await launch({ webgpu: false });
try {
  await browser.page.goto(server.url);
  const res = await browser.page.evaluate(async ({ cfg, train, warmup, windows, windowSteps }) => {
    const mod = await import('/pkg/toyformer.js');
    await mod.default();
    const s = new mod.Session(JSON.stringify(cfg.task), JSON.stringify(cfg.model), JSON.stringify(train));
    for (let i = 0; i < warmup; i++) s.step(1);
    const ms = [];
    let last = null;
    for (let w = 0; w < windows; w++) {
      const t0 = performance.now();
      const rows = s.step(windowSteps);
      ms.push((performance.now() - t0) / windowSteps);
      last = rows[rows.length - 1];
    }
    s.free();
    return { ms, loss: last.loss, steps: warmup + windows * windowSteps, ua: navigator.userAgent };
  }, { cfg, train, warmup, windows, windowSteps });
  const sorted = [...res.ms].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const out = { config, backend: 'cpu (wasm, Chromium)', batch: 256, ms_per_step: { min: sorted[0], median,
    max: sorted[sorted.length - 1], windows: res.ms }, steps_per_s_median: 1000 / median, loss_after: res.loss,
    steps: res.steps, browser: res.ua };
  console.log(`${config} wasm cpu: ms/step min ${sorted[0].toFixed(2)} median ${median.toFixed(2)} max ${sorted[sorted.length - 1].toFixed(2)} | steps/s median ${(1000 / median).toFixed(1)} | loss after ${res.steps} steps ${res.loss.toFixed(4)}`);
  if (json) console.log(JSON.stringify(out));
} finally {
  await browser.close();
  server.close();
}
