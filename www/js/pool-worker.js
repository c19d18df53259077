// A helper of the training worker's pool (pool.js): holds a ShardWorker (the CPU engine on the
// run's model) and computes the gradients of the shards it is given, on the weights that come
// with each job. It keeps nothing between jobs but the engine, so a replacement is as good as it.
// Messages in:  {type: 'init', task, model} (JSON texts) | {type: 'job', id, weights, tokens, targets, batch, lo, hi,
//               out} (out: a result area, pool-shared.js, when the page is cross-origin isolated; else null)
// Messages out: 'loaded' | 'ready' | {type: 'result', id, r, t0, t1} (t0..t1: the computation, on a clock
//               all workers share) | {type: 'error', id, message}
import { loadWasm } from './wasm-pick.js';
import { fail, openArea, writeResult } from './pool-shared.js';

// ?pkg=<folder>: that build (benchmarks comparing builds), else the one every worker picks
const pkg = new URL(import.meta.url).searchParams.get('pkg');
const { ShardWorker } = pkg && /^[\w-]+$/.test(pkg) ? await loadPkg(pkg) : await loadWasm();
let engine = null;
// a clock shared by every worker of the page (performance.now() counts from each worker's own start)
const now = () => performance.timeOrigin + performance.now();

self.onmessage = ({ data: m }) => {
  try {
    if (m.type === 'init') {
      engine?.free();
      engine = new ShardWorker(m.task, m.model);
      postMessage({ type: 'ready' });
    } else if (m.type === 'job') {
      const t0 = now();
      const r = engine.grads(m.weights, m.tokens, m.targets, m.batch, m.lo, m.hi);
      const t1 = now();
      if (m.out) writeResult(openArea(m.out), r, t0, t1); // isolated: the training worker may be waiting on it
      postMessage({ type: 'result', id: m.id, r, t0, t1 }, [r.nodes.buffer, r.losses.buffer, r.grads.buffer,
        r.argmax.buffer, r.rows.buffer]);
    }
  } catch (e) {
    if (m.out) fail(openArea(m.out));
    postMessage({ type: 'error', id: m.id, message: String(e?.message ?? e) });
  }
};
postMessage({ type: 'loaded' });

async function loadPkg(name) {
  const mod = await import(`../${name}/toyformer.js`);
  await mod.default();
  return mod;
}
