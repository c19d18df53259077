// A helper of the training worker's pool (pool.js): holds a ShardWorker (the CPU engine on the
// run's model) and computes the gradients of the shards it is given, on the weights that come
// with each job. It keeps nothing between jobs but the engine, so a replacement is as good as it.
// Messages in:  {type: 'init', task, model} (JSON texts) | {type: 'job', id, weights, tokens, targets, batch, lo, hi,
//               out} (out: a result area, pool-shared.js, when the page is cross-origin isolated; else null)
//               | {type: 'attach', job, out, weights} (isolated: from now on jobs come through the job area
//               `job` (the helper makes the batch from seed and step), results go to `out`, weights are
//               read from the SharedArrayBuffer `weights`)
// Messages out: 'loaded' | 'ready' | {type: 'result', id, r, t0, t1} (t0..t1: the computation, on a clock
//               all workers share; message jobs only) | {type: 'error', id, message}
import { loadWasm } from './wasm-pick.js';
import { fail, openArea, writeResult, openJobArea, readJob, isDetached, JOB_SEQ, spin } from './pool-shared.js';

// ?pkg=<folder>: that build (benchmarks comparing builds), else the one every worker picks
const pkg = new URL(import.meta.url).searchParams.get('pkg');
const { ShardWorker } = pkg && /^[\w-]+$/.test(pkg) ? await loadPkg(pkg) : await loadWasm();
let engine = null;
// a clock shared by every worker of the page (performance.now() counts from each worker's own start)
const now = () => performance.timeOrigin + performance.now();
// Attached (isolated): {job, out, weights}; after a job the helper spins on the job area for up to
// SPIN_MS (the next step's job comes ~0.5 ms after its result: no futex wake-up to pay), then
// blocks in Atomics.wait for at most IDLE_MS, then lets its messages in (init, attach) and waits again.
let attached = null;
let seen = 0; // the last job id taken from the job area
const IDLE_MS = 50;
const SPIN_MS = 1;
let scheduled = false;

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
    } else if (m.type === 'attach') {
      attached = { job: openJobArea(m.job), out: openArea(m.out), weights: m.weights };
      seen = 0;
      schedule();
    }
  } catch (e) {
    if (m.out) fail(openArea(m.out));
    postMessage({ type: 'error', id: m.id, message: String(e?.message ?? e) });
  }
};
postMessage({ type: 'loaded' });

// Serves the attached job area until it is detached or stays idle for IDLE_MS (then messages first).
function serve() {
  const a = attached;
  for (;;) {
    if (!a || a !== attached || isDetached(a.job)) return; // an 'attach' message brings the next area
    const id = Atomics.load(a.job.ctl, JOB_SEQ);
    if (id !== seen) {
      seen = id;
      runShared(a);
      spin(a.job.ctl, JOB_SEQ, seen, SPIN_MS); // the next step's job, without a futex wake-up
    } else if (Atomics.wait(a.job.ctl, JOB_SEQ, seen, IDLE_MS) === 'timed-out') {
      schedule();
      return;
    }
  }
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    serve();
  }, 0);
}

// One job from the job area: its result in the result area (the training worker waits on it).
function runShared(a) {
  const j = readJob(a.job);
  try {
    const t0 = now();
    const r = engine.step_grads_into(a.weights, j.seed, j.step, j.batch, j.lo, j.hi, a.out.grads);
    writeResult(a.out, r, t0, now());
    if (Atomics.load(a.out.ctl, 0) === 2) throw new Error('the result does not fit its shared area');
  } catch (e) {
    fail(a.out);
    postMessage({ type: 'error', id: j.id, message: String(e?.message ?? e) });
  }
}

async function loadPkg(name) {
  const mod = await import(`../${name}/toyformer.js`);
  await mod.default();
  return mod;
}
