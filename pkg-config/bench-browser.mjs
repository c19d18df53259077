// Training throughput of the wasm build in headless Chromium: steps/s of a reference config on the CPU
// backend (Session, wasm) and on WebGPU (GpuSession), side by side in one browser. A benchmark, not a test:
// nothing is asserted. In this project's containers WebGPU is SwiftShader (a CPU), so its figure says
// nothing about a GPU; on a machine whose Chromium has a GPU it is the real one.
//
//   node pkg-config/bench-browser.mjs [--config sort-ref|perm-4] [--steps 20] [--windows 3] [--backends cpu,webgpu]
//     [--pkgs pkg,pkg-before] [--warmup 30]   (www/ folders holding wasm-bindgen builds: compares builds side by side,
//                                their windows interleaved, in one browser)
//     [--workers 1,2]   (the CPU backend on k Web Workers, the page's pool code path www/js/pool.js; k = 1 is
//                        the session alone, as the page trains with one worker)
//     [--where worker|page]   (worker, the default: the sessions and pool in a Web Worker of a cross-origin
//                        isolated page, as the page trains under `make serve`; page: on the main thread, not isolated)
//     [--native target/release/examples/bench]   (then runs the native engine with the same config and
//                        windows, on 1 thread, plain and data-parallel over each k on k threads, side by side)
//   (make bench-browser; needs `make wasm vendor` first)
import { spawnSync } from 'node:child_process';
import { startServer, launch } from './browser.mjs';

const arg = (k, d) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const config = arg('config', 'sort-ref');
const steps = Number(arg('steps', 20));
const windows = Number(arg('windows', 3));
const backends = arg('backends', 'cpu,webgpu').split(',');
const pkgs = arg('pkgs', 'pkg').split(',');
const warmup = Number(arg('warmup', 30));
const workers = arg('workers', '1').split(',').map(Number);
const native = arg('native', null);
const CONFIGS = {
  // seed 003's sorter, as examples/bench's sort-ref (grad clip off, as the PyTorch anchor)
  'sort-ref': { task: { task: 'sort', n: 10, max_num: 50 }, model: {} },
  'perm-4': { task: { task: 'permutations', n: 4 }, model: {} },
};
if (!CONFIGS[config]) throw new Error(`unknown --config ${config} (use ${Object.keys(CONFIGS).join(' or ')})`);

// Where the sessions and the pool run: 'worker' (default), in a Web Worker of a cross-origin isolated
// page, as the page trains when served by `make serve` (helpers' results through SharedArrayBuffers);
// 'page', on the main thread of a page without the isolation headers (messages only).
const where = arg('where', 'worker');
if (!['worker', 'page'].includes(where)) throw new Error(`unknown --where ${where} (use worker or page)`);

// The benchmark itself: runs in the page or in a worker (so it uses nothing but its argument).
async function bench({ base, cfg, steps, windows, backends, pkgs, warmup, workers }) {
    const out = { userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency,
      crossOriginIsolated: self.crossOriginIsolated, inWorker: typeof WorkerGlobalScope !== 'undefined' };
    const { Pool } = await import(new URL('js/pool.js', base));
    const mods = [];
    for (const p of pkgs) {
      const m = await import(new URL(`${p}/toyformer.js`, base));
      await m.default();
      mods.push(m);
    }
    const kinds = backends.flatMap((be) => (be === 'cpu' ? workers.map((k) => ({ be, k })) : [{ be, k: 1 }]));
    // one session per build and worker count; every window of every run interleaved (load drifts
    // on a shared machine hit all alike), and each k > 1 compared with k = 1 window by window
    const runs = [];
    for (const { be, k } of kinds) {
      for (const [i, m] of mods.entries()) {
        const key = `${be}${be === 'cpu' && workers.length > 1 ? ` k=${k}` : ''}${pkgs.length > 1 ? ` ${pkgs[i]}` : ''}`;
        const task = JSON.stringify(cfg.task);
        const model = JSON.stringify({ ...m.task_info(task).default_model, ...cfg.model });
        const train = JSON.stringify({ steps: 1_000_000, batch_size: 256, grad_clip: 0 });
        try {
          const s = be === 'cpu' ? new m.Session(task, model, train) : await m.GpuSession.create(task, model, train);
          let pool = null;
          if (k > 1) {
            pool = new Pool(m.ShardWorker, { pkg: pkgs[i] });
            pool.resize(k - 1, s);
          }
          const run = async (n) => { const r = pool ? pool.steps(s, n) : s.step(n); return r instanceof Promise ? await r : r; };
          await run(warmup); // warm-up: pipelines, first allocations, the wasm compiler's tiers
          pool?.startProfile();
          runs.push({ key, be, k, pkg: pkgs[i], s, run, pool, rates: [] });
        } catch (e) {
          out[key] = { error: String(e.message ?? e) };
        }
      }
    }
    for (let w = 0; w < windows; w++) {
      for (const r of runs) {
        const t0 = performance.now();
        await r.run(steps);
        r.rates.push((steps * 1000) / (performance.now() - t0));
        console.log(`bench: ${r.key} window ${w}: ${r.rates[w].toFixed(3)} steps/s`);
      }
    }
    const stats = (xs) => {
      const v = [...xs].sort((x, y) => x - y);
      return { min: v[0], median: v[v.length >> 1], max: v[v.length - 1] };
    };
    for (const r of runs) {
      out[r.key] = { adapter: r.be === 'cpu' ? 'wasm' : r.s.adapter, steps_per_s: stats(r.rates) };
      const one = runs.find((x) => x.be === 'cpu' && x.k === 1 && x.pkg === r.pkg);
      if (r.k > 1 && one) out[r.key].speedup = stats(r.rates.map((x, w) => x / one.rates[w]));
      const prof = r.pool?.profile;
      if (prof) out[r.key].ms_per_step = Object.fromEntries(Object.entries(prof).filter(([n]) => n !== 'steps')
        .map(([n, v]) => [n, Number((v / prof.steps / (n === 'helper' || /Helper/.test(n) ? r.pool.helpers.length : 1)).toFixed(3))]));
    }
    for (const r of runs) {
      r.pool?.close();
      r.s.free();
    }
    return out;
}

// Runs `bench` in a module worker made from its source (a Blob URL: nothing is added to www/).
async function inWorker({ src, args }) {
  const text = `const bench = ${src};\nself.onmessage = async (e) => {\n  try { postMessage({ ok: await bench(e.data) }); }\n  catch (err) { postMessage({ err: String(err?.stack ?? err) }); }\n};`;
  const w = new Worker(URL.createObjectURL(new Blob([text], { type: 'text/javascript' })), { type: 'module' });
  const r = await new Promise((resolve) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => resolve({ err: `the benchmark's worker failed: ${e.message ?? 'no message (a CSP or a load error)'}` });
    w.postMessage(args);
  });
  w.terminate();
  if (r.err) throw new Error(r.err);
  return r.ok;
}

const server = await startServer({ isolate: where === 'worker' });
const b = await launch({ webgpu: true });
b.page.on('console', (m) => { if (m.text().startsWith('bench:')) console.error(m.text()); });
try {
  // worker: a same-origin document without index.html's CSP, which allows no blob: workers
  await b.page.goto(`${server.url}${where === 'page' ? 'index.html' : 'js/pool.js'}`);
  const args = { base: server.url, cfg: CONFIGS[config], steps, windows, backends, pkgs, warmup, workers };
  const res = where === 'page' ? await b.page.evaluate(bench, args)
    : await b.page.evaluate(inWorker, { src: bench.toString(), args });
  console.log(`${config}: in a ${res.inWorker ? 'Web Worker' : 'page'}, cross-origin isolated: ${res.crossOriginIsolated}`);
  for (const key of Object.keys(res).filter((k) => !['userAgent', 'hardwareConcurrency', 'crossOriginIsolated', 'inWorker'].includes(k))) {
    const r = res[key];
    if (r.error) console.log(`${config} ${key}: not run (${r.error})`);
    else console.log(`${config} ${key} (${r.adapter || 'adapter name hidden'}): steps/s min ${r.steps_per_s.min.toFixed(2)} median ${r.steps_per_s.median.toFixed(2)} max ${r.steps_per_s.max.toFixed(2)} (${windows} windows of ${steps} steps, batch 256)`);
    if (r.speedup) console.log(`  ${key}: ${r.speedup.median.toFixed(2)}x k=1 (window by window: min ${r.speedup.min.toFixed(2)}, max ${r.speedup.max.toFixed(2)})`);
    if (r.ms_per_step) console.log(`  ${key} ms per step by phase (helpers: mean per helper): ${JSON.stringify(r.ms_per_step)}`);
  }
  console.log(JSON.stringify({ config, steps, windows, pkgs, workers, date: new Date().toISOString(), ...res }));
  if (native) runNative();
} finally {
  await b.close();
  server.close();
}

// The native engine on the same config and windows: plain on 1 thread, then data-parallel over k
// replicas on k threads for each k (the bench's own summary lines).
function runNative() {
  const nativeConfig = { 'sort-ref': 'sort-ref', 'perm-4': 'perm-4' }[config];
  const base = ['--backend', 'cpu', '--config', nativeConfig, '--warmup', '10', '--windows', String(windows),
    '--window-steps', String(steps)];
  const runs = [[1, []], ...workers.map((k) => [k, ['--workers', String(k)]])];
  for (const [threads, extra] of runs) {
    const r = spawnSync(native, [...base, ...extra], { env: { ...process.env, RAYON_NUM_THREADS: String(threads) },
      encoding: 'utf8' });
    const lines = `${r.stdout}`.trim().split('\n').filter((l) => /ms\/step|steps\/s|median/.test(l));
    console.log(`native ${extra.length ? `workers ${extra[1]}` : 'plain engine'}, ${threads} thread(s): ${lines.join(' | ') || r.stderr}`);
  }
}
