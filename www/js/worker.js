// The training worker: owns the run (a WebGPU GpuSession when the browser has an adapter and the
// backend switch allows it, else the CPU Session) and runs it in chunks of steps, so that pause /
// evaluate / complete messages are handled between chunks and the page never blocks. Every call into
// the session goes through one queue: a GPU call is asynchronous, and the next must wait for it.
// Messages in:  {type: 'start', task, model, train, backend: 'auto'|'webgpu'|'cpu', evalEvery, workers} | 'pause'
//               | 'resume' | 'reset'
//               | {type: 'eval-every', every}: a finite dataset's train/test evaluation every `every` steps (0 = never)
//               | {type: 'workers', workers} (CPU data-parallel pool size, pool.js; 0 = auto)
//               | {type: 'workers-cap', cap} (a sweep runs: at most `cap` pool workers, cores.js; 0 = no cap)
//               | {type: 'pool-kill', index} (tests: terminate pool helper `index` mid-step)
//               | {type: 'pool-profile', start} (benchmarks: start timing the pool's phases, or report them)
//               | {type: 'evaluate', samples, shown} | {type: 'complete', text} | 'export'
//               | 'lose-device' (tests: destroy the GPU device, as a driver reset would)
//               | {type: 'hold-at', step} | 'release' (tests: the run stops stepping at `step`, still
//                 training, until released: a test acts mid-run at a known step, however fast it trains)
//               | loading, checkpoints and link weights: see worker-share.js
// Messages out: 'ready' | {type: 'backend', gpu, label, reason} | {type: 'metrics', rows, last, total}
//               | {type: 'pool', event: 'size', workers, build, isolated} (the pool was made or resized; workers 1: closed)
//               | {type: 'pool', event: 'replaced', index, why, step} | {type: 'pool', event: 'profile', profile}
//               | {type: 'pool', event: 'calibrated', workers, msPerStep, note} (`workers` auto: the pool size
//                 measured fastest on the run's first steps, pool-pick.js)
//               | {type: 'pool', event: 'reset', gpu, workers} (a model was loaded: the page's pool line starts over)
//               | 'paused' | 'done' | 'reset' | {type: 'evaluated', report, samples, step}
//               | {type: 'completed', result} | {type: 'exported', bytes} | {type: 'error', message, during, req}
//               | {type: 'split-eval', point: {step, train, test, full}}: a finite dataset's splits, every evalEvery steps
//               | {type: 'snapshot', step, weights (Float32Array, table order), tail, plan}: at the start,
//                 on the evenly thinned grid of interp::timeline (SnapshotSchedule), and the final weights
import { shareHandlers } from './worker-share.js';
import { Pool, poolSize } from './pool.js';
import { loadWasmBuild } from './wasm-pick.js';
import { EnginePicker } from './engine-pick.js';
import { candidates, PoolCalibration } from './pool-pick.js';
import { cores } from './cores.js';

const { mod: wasm, build: wasmBuild } = await loadWasmBuild();
const { Session, GpuSession, SnapshotSchedule, snapshot_plan_js, ShardWorker } = wasm;

const CHUNK_MS = 120; // aim for a progress message about this often
const SPLIT_ITEMS = 4096; // items of each side of a finite dataset's split in a curve point

let session = null;
let running = false;
let total = 0;
let chunk = 1;
let rate = 0; // steps per second, smoothed
let queue = Promise.resolve();
let args = null; // the JSON arguments of the run, for a CPU session made from the GPU's weights
let snaps = null; // {schedule, plan, last}: which weights to post for the analysis cells
let finished = null; // the session whose 'done' was posted
let holdAt = null; // tests: the step the run waits at ('hold-at') until 'release'
let evalEvery = 0; // a finite dataset's train/test curve point every this many steps (0 = none)
let evaluated = -1; // the step of the last curve point
let workers = 0; // the `workers` setting (0 = auto: measured, pool-pick.js): CPU training over a pool
let pool = null; // the pool of helper workers (pool.js), made when k > 1
let cap = 0; // at most this many pool workers while a sweep runs (cores.js; 0 = no cap)
let autoK = null; // `workers` auto: the pool size measured fastest for this run's model (null: not yet)
let calib = null; // `workers` auto: the calibration running over this run's steps ({key, cal})
const measured = new Map(); // `workers` auto's decisions in this page ({k, msPerStep, note}), by task + model + batch size
const poolK = () => {
  const want = workers > 0 ? poolSize(workers) : (autoK ?? poolSize(0));
  return cap > 0 ? Math.min(cap, want) : want;
};

const post = (msg, transfer) => postMessage(msg, transfer ?? []);
const yieldToMessages = () => new Promise((r) => setTimeout(r, 0));
const errText = (e) => String(e?.message ?? e);
const onGpu = () => typeof GpuSession !== 'undefined' && session instanceof GpuSession;

// Runs fn after every earlier queued call; reports a failure as an error message for `during`.
function enqueue(during, fn, req) {
  queue = queue.then(fn).catch((err) => {
    if (during === 'train') running = false;
    post({ type: 'error', message: errText(err), during, req });
  });
  return queue;
}

// A GPU session when WebGPU allows one and the switch asks for it (auto: a hardware adapter; webgpu: any
// adapter, software fallbacks such as SwiftShader too, which are far slower than the CPU backend), else a
// CPU session.
async function open(msg) {
  args = [JSON.stringify(msg.task), JSON.stringify(msg.model), JSON.stringify(msg.train)];
  let reason = 'the backend switch is set to CPU';
  const plateau = msg.train.schedule?.kind === 'reduce_on_plateau';
  if (plateau && msg.backend !== 'cpu') {
    // its rate depends on every step's loss, which the GPU's chunks of steps planned ahead cannot give
    reason = 'reduce_on_plateau needs each step\'s loss before the next step, so this run trains on the CPU';
  }
  if (msg.backend !== 'cpu' && !plateau) {
    reason = 'this browser has no WebGPU adapter';
    let adapter = self.navigator?.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    if (adapter && msg.backend === 'auto' && (adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter)) {
      reason = 'the only WebGPU adapter is a software fallback, slower than the CPU backend (choose webgpu to use it)';
      adapter = null;
    }
    if (adapter) {
      try {
        const s = await GpuSession.create(...args);
        const info = adapter.info ?? {};
        const name = s.adapter || info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
        if (msg.backend !== 'auto') return { s, info: { gpu: true, label: `WebGPU (${name})`, reason: '' } };
        const d = await pickMeasured(s, name);
        if (d.gpu) return { s, info: { gpu: true, label: `WebGPU (${name})`, reason: d.note } };
        s.free();
        return { s: new Session(...args), info: { gpu: false, label: 'CPU (wasm)', reason: d.note } };
      } catch (err) {
        reason = `WebGPU could not be used: ${errText(err)}`;
      }
    }
  }
  return { s: new Session(...args), info: { gpu: false, label: 'CPU (wasm)', reason } };
}

// auto on a hardware adapter: the faster of WebGPU and the CPU workers for this model, timed on
// throwaway sessions (engine-pick.js; measured again when the model size changes 2× or more).
const TIMED_STEPS = 3;
let measuring = null; // {gpu, name}: the GPU session and adapter name being measured against
const picker = new EnginePicker(async () => {
  const timeIt = async (s, steps) => {
    await steps(s, 1); // warm-up: shader compiles, first allocations
    const t0 = performance.now();
    const rows = await steps(s, TIMED_STEPS);
    return rows?.length ? (performance.now() - t0) / rows.length : NaN;
  };
  const g = await GpuSession.create(...args).catch(() => null);
  const gpuMs = g ? await timeIt(g, (s, n) => s.step(n)).catch(() => null) : null;
  g?.free();
  const c = new Session(...args);
  const cpuMs = await timeIt(c, cpuSteps).catch(() => NaN);
  c.free();
  return { gpuMs, cpuMs };
});

async function pickMeasured(gpuSession, name) {
  const params = gpuSession.weights().length;
  return picker.pick(params, { gpuName: name, workers: poolK() });
}

// A CPU session on the GPU session's last synced weights and step (a GPU that failed hands over to
// it; the share messages read links and checkpoints from it).
function cpuFromGpu() {
  const cpu = new Session(...args);
  cpu.resume_from(session.weights(), session.steps_done);
  return cpu;
}

// Every session call of the loop runs inside one queued job: a GpuSession is taken out while an
// async call (a chunk, an evaluation, a share message) runs, so a call from outside the queue could
// find it busy (its `done` reads false, `weights()` throws) and the loop would stop without 'done'.
async function loop() {
  while (running && session) {
    let next = 'stop';
    await enqueue('train', async () => {
      if (!running || !session) return;
      if (session.done) {
        finish();
        return;
      }
      if (holdAt !== null && session.steps_done >= holdAt) {
        next = 'hold';
        return;
      }
      next = (await trainChunk()) ? 'go' : 'stop';
    });
    if (next === 'stop') return;
    await yieldToMessages();
  }
  // paused right after the last chunk: the run is still done
  await enqueue('train', async () => {
    if (session && session.done && finished !== session) finish();
  });
}

// One chunk of steps (stopped at the next snapshot or hold step), its metrics and snapshot posted;
// false when it trained nothing.
async function trainChunk() {
  const t0 = performance.now();
  const toSnap = snaps ? snaps.schedule.next_step(session.steps_done + 1) - session.steps_done : chunk;
  const toHold = holdAt !== null ? holdAt - session.steps_done : chunk;
  const toEval = evalEvery > 0 ? evalEvery - (session.steps_done % evalEvery) : chunk;
  const n = Math.max(1, Math.min(chunk, toSnap, toHold, toEval));
  let rows;
  try {
    rows = await cpuOrGpuSteps(n);
  } catch (err) {
    // A GPU that fails (device lost, out of memory) hands over to the CPU, from the weights of its
    // last completed chunk; anything else (a diverged run) stops training as it would on the CPU.
    if (!onGpu() || /diverged/.test(errText(err))) throw err;
    const done = session.steps_done;
    const cpu = cpuFromGpu();
    session.free();
    session = cpu;
    const why = errText(err).replace(/^backend: /, '').replace(/^GPU training stopped: /, '').split('. ')[0];
    post({ type: 'backend', gpu: false, label: 'CPU (wasm)',
      reason: `WebGPU failed (${why}); continued on the CPU from step ${done}` });
    announcePool();
    autoPool();
    rows = await cpuSteps(session, n);
  }
  if (!rows || !rows.length) return false;
  const dt = Math.max(performance.now() - t0, 0.1);
  const r = (rows.length * 1000) / dt;
  rate = rate ? 0.7 * rate + 0.3 * r : r;
  chunk = Math.max(1, Math.min(1000, Math.round((rows.length * CHUNK_MS) / dt)));
  const m = rows[rows.length - 1];
  const last = { step: m.step + 1, loss: m.loss, token_acc: m.token_acc, grad_norm: m.grad_norm, lr: m.lr,
    steps_per_s: rate };
  post({ type: 'metrics', rows, last, total });
  if (snaps?.schedule.wants(session.steps_done)) postSnapshot(false);
  if (evalEvery > 0 && session.steps_done % evalEvery === 0) await postSplitEval();
  return true;
}

// A finite dataset's train and test figures at the current step (nothing for a sampled task, or
// a step already evaluated).
async function postSplitEval() {
  if (evaluated === session.steps_done) return;
  evaluated = session.steps_done;
  const point = await session.split_eval(SPLIT_ITEMS);
  if (point) post({ type: 'split-eval', point });
}

// n steps on the GPU session, or on the CPU over the pool of k workers (the session alone when k = 1);
// while `workers` auto calibrates (and no sweep caps the pool), over the k it is timing.
async function cpuOrGpuSteps(n) {
  if (onGpu()) return session.step(n);
  return calib && cap === 0 ? calibratedSteps(n) : cpuSteps(session, n);
}

// The pool's 'size' event: `workers` in all, the training worker included (1: the pool closed).
function postSize(workers) {
  post({ type: 'pool', event: 'size', workers, build: wasmBuild, isolated: self.crossOriginIsolated });
}

// After a 'backend' message (the page counts from 1 worker then): the pool's size when helpers are
// left from the engine picker's CPU timing or from before a GPU run.
function announcePool() {
  if (!onGpu() && pool?.helpers.length) postSize(pool.helpers.length + 1);
}

// `workers` auto for the current CPU session: the size measured for this task and model earlier in
// this page, else a calibration over the run's next steps (bit-identical for every k: nothing lost).
function autoPool() {
  calib = null;
  if (workers > 0 || !session || onGpu()) return;
  const info = session.info();
  const key = JSON.stringify([info.task, info.model, info.train.batch_size]);
  const earlier = measured.get(key);
  autoK = earlier?.k ?? null;
  const again = Object.keys(earlier?.msPerStep ?? {}).length ? ' (measured earlier in this page for this model)' : '';
  if (earlier) post({ type: 'pool', event: 'calibrated', workers: earlier.k, msPerStep: earlier.msPerStep,
    note: `${earlier.note}${again}`, reused: true });
  else {
    const shards = session.pool_shards();
    const why = shards <= 1 ? `a batch of ${info.train.batch_size} is one shard` : 'the browser reports one core';
    calib = { key, cal: new PoolCalibration(candidates(cores(), shards), why) };
  }
  if (calib?.cal.done) settleAuto();
}

// Up to n steps on the k workers the calibration times next; the decision once it has them all.
async function calibratedSteps(n) {
  const { k, steps } = calib.cal.next();
  const t0 = performance.now();
  calib.made = Math.max(calib.made ?? 0, k - 1);
  const rows = await cpuSteps(session, Math.min(n, steps), k, calib.made);
  calib.cal.record(k, rows.length, performance.now() - t0);
  if (calib.cal.done) settleAuto();
  return rows;
}

function settleAuto() {
  const { k, msPerStep, note } = calib.cal.decision;
  measured.set(calib.key, calib.cal.decision);
  autoK = k;
  calib = null;
  post({ type: 'pool', event: 'calibrated', workers: k, msPerStep, note });
}

// n steps of the CPU session `s` over the pool of k workers (`s` alone when k = 1). `keep`
// (calibrating): the pool keeps this many helpers, those beyond k idle, for the next sample's larger k.
async function cpuSteps(s, n, k = poolK(), keep = 0) {
  const had = pool?.helpers.length ?? 0;
  if (k <= 1) {
    if (!keep) {
      if (had) postSize(1);
      pool?.close();
    }
    s.pool_off();
    return s.step(n);
  }
  if (!pool) {
    pool = new Pool(ShardWorker);
    pool.onReplace = (index, why) => post({ type: 'pool', event: 'replaced', index, why, step: session?.steps_done ?? 0 });
  }
  const helpers = Math.max(k - 1, keep);
  if (helpers !== had) postSize(helpers + 1);
  pool.resize(helpers, s);
  return pool.steps(s, n, k);
}

// The run has done its steps: the last snapshot, then 'done'.
function finish() {
  running = false;
  finished = session;
  if (snaps && snaps.last !== session.steps_done) postSnapshot(true);
  post({ type: 'done' });
}

// A fresh snapshot schedule for the session's run, and its first snapshot (the weights it starts
// from: step 0 of a new run, or a loaded / reopened model, off the grid).
function newSnapshots(offGrid) {
  snaps?.schedule.free();
  const plan = snapshot_plan_js(session.weights().length, total);
  snaps = { schedule: new SnapshotSchedule(plan.capacity, plan.every), plan, last: -1 };
  postSnapshot(offGrid);
}

// Posts the current weights (transferred, not copied) for the analysis cells.
function postSnapshot(tail) {
  const step = session.steps_done;
  snaps.schedule.push(step, tail);
  snaps.last = step;
  const weights = session.weights();
  post({ type: 'snapshot', step, weights, tail, plan: snaps.plan }, [weights.buffer]);
}

// Opens a run's session (the last one freed) and starts its training loop.
function start(msg) {
  enqueue('start', async () => {
    session?.free();
    session = null;
    workers = msg.workers ?? workers;
    autoK = null; // the last model's measured size must not time this one's CPU in the engine picker
    calib = null;
    const { s, info } = await open(msg);
    session = s;
    post({ type: 'backend', ...info });
    announcePool();
    autoPool();
    total = msg.train.steps;
    chunk = 1;
    rate = 0;
    newSnapshots(false);
    evalEvery = msg.evalEvery ?? 0;
    evaluated = -1;
    if (evalEvery > 0) await postSplitEval(); // the curves start at step 0
    running = true;
    loop();
  });
}

function handle(msg) {
  switch (msg.type) {
    case 'start':
      start(msg);
      break;
    case 'pause':
      running = false;
      enqueue('pause', () => post({ type: 'paused' }));
      break;
    case 'resume':
      if (session && !running) {
        running = true;
        loop();
      }
      break;
    case 'reset':
      running = false;
      enqueue('reset', () => {
        session?.free();
        session = null;
        snaps?.schedule.free();
        snaps = null;
        post({ type: 'reset' });
      });
      break;
    case 'evaluate':
      enqueue('evaluate', async () => {
        if (!session) return;
        const report = await session.evaluate(msg.samples);
        post({ type: 'evaluated', report, samples: await session.samples(msg.shown), step: session.steps_done });
      });
      break;
    case 'complete':
      enqueue('complete', async () => {
        if (session) post({ type: 'completed', result: await session.complete(msg.text) });
      });
      break;
    case 'eval-every':
      evalEvery = msg.every;
      break;
    case 'workers':
      workers = msg.workers;
      enqueue('workers', autoPool);
      break;
    case 'workers-cap':
      // a sweep started or ended: samples timed under the other load are not comparable
      if (calib && msg.cap !== cap) calib.cal = new PoolCalibration(calib.cal.ks);
      cap = msg.cap;
      break;
    case 'pool-kill':
      if (pool) pool.killDuring = msg.index;
      break;
    case 'pool-profile':
      if (msg.start) pool?.startProfile();
      else post({ type: 'pool', event: 'profile', profile: pool?.profile ?? null });
      break;
    case 'hold-at':
      holdAt = msg.step;
      break;
    case 'release':
      holdAt = null;
      break;
    case 'lose-device':
      enqueue('lose-device', () => session?.lose_device?.());
      break;
    case 'export':
      enqueue('export', () => {
        if (!session) return;
        const bytes = session.export_safetensors();
        post({ type: 'exported', bytes, steps: session.steps_done, req: msg.req }, [bytes.buffer]);
      }, msg.req);
      break;
    default:
      if (shareHandlers[msg.type]) enqueue(msg.type, () => shareHandlers[msg.type](msg, shared), msg.req);
  }
}

// What worker-share.js sees of this worker: the session (a CPU view of it while training runs on the
// GPU), a way to replace it, and the GPU's AdamW state for checkpoints.
const shared = {
  get session() { return session; },
  onGpu,
  // A CPU session on the current weights (the session itself on the CPU); `done()` frees a temporary one.
  cpuView() {
    if (!session || !onGpu()) return { s: session, done: () => {} };
    const s = cpuFromGpu();
    return { s, done: () => s.free() };
  },
  async gpuOptimizerState() {
    return onGpu() ? session.optimizer_state() : null;
  },
  adopt(s) {
    running = false;
    session?.free();
    session = s;
    total = s.info().train.steps;
    chunk = 1;
    rate = 0;
    evaluated = -1;
    // a loaded model: no 'backend' message comes, so the page's pool line starts over here
    post({ type: 'pool', event: 'reset', gpu: onGpu(), workers: (pool?.helpers.length ?? 0) + 1 });
    autoPool();
    // after the 'loaded' reply (posted right after adopt), so the page knows the model first
    queueMicrotask(() => newSnapshots(session.steps_done > 0));
  },
  post,
};

self.onmessage = (e) => handle(e.data);
post({ type: 'ready' });
