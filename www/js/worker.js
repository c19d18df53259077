// The training worker: owns the run (a WebGPU GpuSession when the browser has an adapter and the
// backend switch allows it, else the CPU Session) and runs it in chunks of steps, so that pause /
// evaluate / complete messages are handled between chunks and the page never blocks. Every call into
// the session goes through one queue: a GPU call is asynchronous, and the next must wait for it.
// Messages in:  {type: 'start', task, model, train, backend: 'auto'|'webgpu'|'cpu'} | 'pause' | 'resume' | 'reset'
//               | {type: 'evaluate', samples, shown} | {type: 'complete', text} | 'export'
//               | 'lose-device' (tests: destroy the GPU device, as a driver reset would)
// Messages out: 'ready' | {type: 'backend', gpu, label, reason} | {type: 'metrics', rows, last, total}
//               | 'paused' | 'done' | 'reset' | {type: 'evaluated', report, samples}
//               | {type: 'completed', result} | {type: 'exported', bytes} | {type: 'error', message, during}
import init, { Session, GpuSession } from '../pkg/toyformer.js';

const CHUNK_MS = 120; // aim for a progress message about this often

let session = null;
let running = false;
let total = 0;
let chunk = 1;
let rate = 0; // steps per second, smoothed
let queue = Promise.resolve();
let args = null; // the JSON arguments of the run, for a CPU session that takes over from a failed GPU

const post = (msg, transfer) => postMessage(msg, transfer ?? []);
const yieldToMessages = () => new Promise((r) => setTimeout(r, 0));
const errText = (e) => String(e?.message ?? e);

// Runs fn after every earlier queued call; reports a failure as an error message for `during`.
function enqueue(during, fn) {
  queue = queue.then(fn).catch((err) => {
    if (during === 'train') running = false;
    post({ type: 'error', message: errText(err), during });
  });
  return queue;
}

// A GPU session when WebGPU allows one and the switch asks for it (auto: a hardware adapter; webgpu: any
// adapter, software fallbacks such as SwiftShader too, which are far slower than the CPU backend), else a
// CPU session.
async function open(msg) {
  args = [JSON.stringify(msg.task), JSON.stringify(msg.model), JSON.stringify(msg.train)];
  let reason = 'the backend switch is set to CPU';
  if (msg.backend !== 'cpu') {
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
        return { s, info: { gpu: true, label: `WebGPU (${name})`, reason: '' } };
      } catch (err) {
        reason = `WebGPU could not be used: ${errText(err)}`;
      }
    }
  }
  return { s: new Session(...args), info: { gpu: false, label: 'CPU (wasm)', reason } };
}

async function loop() {
  while (running && session && !session.done) {
    const t0 = performance.now();
    let rows;
    await enqueue('train', async () => {
      try {
        rows = await session.step(chunk);
      } catch (err) {
        // A GPU that fails (device lost, out of memory) hands over to the CPU, from the weights of its
        // last completed chunk; anything else (a diverged run) stops training as it would on the CPU.
        if (!(session instanceof GpuSession) || /diverged/.test(errText(err))) throw err;
        const weights = session.weights();
        const done = session.steps_done;
        const cpu = new Session(...args);
        cpu.resume_from(weights, done);
        session.free();
        session = cpu;
        const why = errText(err).replace(/^backend: /, '').replace(/^GPU training stopped: /, '').split('. ')[0];
        post({ type: 'backend', gpu: false, label: 'CPU (wasm)',
          reason: `WebGPU failed (${why}); continued on the CPU from step ${done}` });
        rows = session.step(chunk);
      }
    });
    if (!rows || !rows.length) return;
    const dt = Math.max(performance.now() - t0, 0.1);
    const r = (rows.length * 1000) / dt;
    rate = rate ? 0.7 * rate + 0.3 * r : r;
    chunk = Math.max(1, Math.min(1000, Math.round((chunk * CHUNK_MS) / dt)));
    const m = rows[rows.length - 1];
    const last = { step: m.step + 1, loss: m.loss, token_acc: m.token_acc, grad_norm: m.grad_norm, lr: m.lr,
      steps_per_s: rate };
    post({ type: 'metrics', rows, last, total });
    await yieldToMessages();
  }
  if (session && session.done) {
    running = false;
    post({ type: 'done' });
  }
}

function handle(msg) {
  switch (msg.type) {
    case 'start':
      enqueue('start', async () => {
        session?.free();
        session = null;
        const { s, info } = await open(msg);
        session = s;
        post({ type: 'backend', ...info });
        total = msg.train.steps;
        chunk = 1;
        rate = 0;
        running = true;
        loop();
      });
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
        post({ type: 'reset' });
      });
      break;
    case 'evaluate':
      enqueue('evaluate', async () => {
        if (!session) return;
        const report = await session.evaluate(msg.samples);
        post({ type: 'evaluated', report, samples: await session.samples(msg.shown) });
      });
      break;
    case 'complete':
      enqueue('complete', async () => {
        if (session) post({ type: 'completed', result: await session.complete(msg.text) });
      });
      break;
    case 'lose-device':
      enqueue('lose-device', () => session?.lose_device?.());
      break;
    case 'export':
      enqueue('export', () => {
        if (!session) return;
        const bytes = session.export_safetensors();
        post({ type: 'exported', bytes, steps: session.steps_done }, [bytes.buffer]);
      });
      break;
  }
}

await init();
self.onmessage = (e) => handle(e.data);
post({ type: 'ready' });
