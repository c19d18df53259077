// The training worker: owns the wasm Session and runs it in chunks of steps, so that
// pause / evaluate / complete messages are handled between chunks and the page never blocks.
// Messages in:  {type: 'start', task, model, train} | 'pause' | 'resume' | 'reset'
//               | {type: 'evaluate', samples, shown} | {type: 'complete', text} | 'export'
// Also out: {type: 'snapshot', step, weights (Float32Array, table order), tail, plan} at step 0 and
//   on the evenly thinned grid of interp::timeline (SnapshotSchedule), and the final weights.
// Messages out: 'ready' | {type: 'metrics', rows, last, total} | 'paused' | 'done' | 'reset'
//               | {type: 'evaluated', report, samples, step} | {type: 'completed', result} | {type: 'exported', bytes}
//               | {type: 'error', message, during, req}
// Loading, checkpoints and link weights are handled by worker-share.js (messages there).
import init, { Session, SnapshotSchedule, snapshot_plan_js } from '../pkg/toyformer.js';
import { shareHandlers } from './worker-share.js';

const CHUNK_MS = 120; // aim for a progress message about this often

let session = null;
let running = false;
let total = 0;
let chunk = 1;
let rate = 0; // steps per second, smoothed
let snaps = null; // {schedule, plan, last}: which weights to post for the analysis cells

const post = (msg, transfer) => postMessage(msg, transfer ?? []);
const yieldToMessages = () => new Promise((r) => setTimeout(r, 0));

async function loop() {
  while (running && session && !session.done) {
    const t0 = performance.now();
    let rows;
    try {
      // stop a chunk at the next snapshot step
      const toSnap = snaps ? snaps.schedule.next_step(session.steps_done + 1) - session.steps_done : chunk;
      rows = session.step(Math.max(1, Math.min(chunk, toSnap)));
    } catch (e) {
      running = false;
      post({ type: 'error', message: String(e.message ?? e), during: 'train' });
      return;
    }
    const dt = Math.max(performance.now() - t0, 0.1);
    const r = (rows.length * 1000) / dt;
    rate = rate ? 0.7 * rate + 0.3 * r : r;
    chunk = Math.max(1, Math.min(1000, Math.round((rows.length * CHUNK_MS) / dt)));
    const m = rows[rows.length - 1];
    const last = { step: m.step + 1, loss: m.loss, token_acc: m.token_acc, grad_norm: m.grad_norm, lr: m.lr,
      steps_per_s: rate };
    post({ type: 'metrics', rows, last, total });
    if (snaps?.schedule.wants(session.steps_done)) postSnapshot(false);
    await yieldToMessages();
  }
  if (session && session.done) {
    running = false;
    if (snaps && snaps.last !== session.steps_done) postSnapshot(true);
    post({ type: 'done' });
  }
}

// A fresh snapshot schedule for the session's run, and its first snapshot (the weights it
// starts from: step 0 of a new run, or a loaded / reopened model, off the grid).
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

function handle(msg) {
  switch (msg.type) {
    case 'start':
      session?.free();
      session = new Session(JSON.stringify(msg.task), JSON.stringify(msg.model), JSON.stringify(msg.train));
      total = msg.train.steps;
      chunk = 1;
      rate = 0;
      newSnapshots(false);
      running = true;
      loop();
      break;
    case 'pause':
      running = false;
      post({ type: 'paused' });
      break;
    case 'resume':
      if (session && !running) {
        running = true;
        loop();
      }
      break;
    case 'reset':
      running = false;
      session?.free();
      session = null;
      snaps?.schedule.free();
      snaps = null;
      post({ type: 'reset' });
      break;
    case 'evaluate':
      if (!session) return;
      post({ type: 'evaluated', report: session.evaluate(msg.samples), samples: session.samples(msg.shown), step: session.steps_done });
      break;
    case 'complete':
      if (!session) return;
      post({ type: 'completed', result: session.complete(msg.text) });
      break;
    case 'export': {
      if (!session) return;
      const bytes = session.export_safetensors();
      post({ type: 'exported', bytes, steps: session.steps_done, req: msg.req }, [bytes.buffer]);
      break;
    }
    default:
      shareHandlers[msg.type]?.(msg, shared);
  }
}

// What worker-share.js sees of this worker: the session, and a way to replace it.
const shared = {
  get session() { return session; },
  adopt(s) {
    running = false;
    session?.free();
    session = s;
    total = s.info().train.steps;
    chunk = 1;
    rate = 0;
    // after the 'loaded' reply (posted right after adopt), so the page knows the model first
    queueMicrotask(() => newSnapshots(session.steps_done > 0));
  },
  post,
};

await init();
self.onmessage = (e) => {
  try {
    handle(e.data);
  } catch (err) {
    post({ type: 'error', message: String(err.message ?? err), during: e.data.type, req: e.data.req });
  }
};
post({ type: 'ready' });
