// Training runs here, off the main thread. Messages in: {cmd: 'start', task, model, train} | 'pause' |
// 'resume' | 'reset' | {cmd: 'complete', text}. Messages out: {type: 'progress', metrics, steps_per_s},
// {type: 'done'}, {type: 'completion', ...}, {type: 'error', message}.
import init, { Session } from '../pkg/toyformer.js';

const ready = init();
let session = null;
let running = false;
const CHUNK_MS = 100; // post progress about ten times a second

async function loop() {
  while (running && session && !session.done()) {
    const t0 = performance.now();
    const metrics = [];
    while (performance.now() - t0 < CHUNK_MS && !session.done()) metrics.push(...session.step(1));
    const dt = (performance.now() - t0) / 1000;
    postMessage({ type: 'progress', metrics, steps_per_s: metrics.length / dt });
    await new Promise((r) => setTimeout(r, 0)); // let pause/reset messages in
  }
  if (session && session.done()) postMessage({ type: 'done' });
}

onmessage = async (e) => {
  await ready;
  const m = e.data;
  try {
    if (m.cmd === 'start') {
      session?.free();
      session = new Session(JSON.stringify(m.task), JSON.stringify(m.model), JSON.stringify(m.train));
      running = true;
      loop();
    } else if (m.cmd === 'pause') running = false;
    else if (m.cmd === 'resume') { running = true; loop(); }
    else if (m.cmd === 'reset') { running = false; session?.free(); session = null; }
    else if (m.cmd === 'complete') {
      if (!session) throw new Error('train a model first');
      postMessage({ type: 'completion', ...session.complete(m.text) });
    }
  } catch (err) {
    running = false;
    postMessage({ type: 'error', message: String(err.message ?? err) });
  }
};
