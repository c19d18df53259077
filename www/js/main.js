// The page's entry point: builds the settings form from the properties table, wires every cell,
// loads the wasm library, starts the training worker and routes its messages (one per task,
// inbox.js) to the cell that shows them. The page's state is in app.js.
import init from '../pkg/toyformer.js';
import { app, hook, setPhase, emit, settleRequest } from './app.js';
import { buildForms, fillFromLink, refresh, rewriteLink } from './form.js';
import { detectGpu, onBackend, onPool } from './backend-badge.js';
import { inbox } from './inbox.js';
import { analysis } from './interp/analysis.js';
import { readLink, initShare, openLink } from './share.js';
import { renderPresets } from './presets.js';
import * as train from './cells/train.js';
import { initEvaluateCell, onEvaluated, onCompleted, onCompleteError } from './cells/evaluate.js';
import { initRuns, restoreActiveRun, saveActiveRun } from './cells/runs.js';
import { initWeights } from './cells/weights.js';
import { initSweepCell } from './cells/sweep.js';
import { initDataCell, openLinkData } from './cells/data.js';

const $ = (id) => document.getElementById(id);

// What the share, runs and weights modules use of the Train cell and the form.
Object.assign(app, { load: train.load, replay: train.replay, start: train.start, runSpec: train.runSpec, writeLink: rewriteLink });

function onError({ message, during }) {
  if (during === 'complete') onCompleteError(message);
  else train.onTrainError(message, during);
}

/** One message of the training worker (a reply to app.request goes to its caller). */
function onWorker(m) {
  if (settleRequest(m)) return;
  switch (m.type) {
    case 'ready': setPhase('idle'); refresh(); $('load-status').hidden = true; afterReady(); break;
    case 'metrics': train.onMetrics(m); break;
    case 'split-eval': train.onSplitEval(m.point); break;
    case 'paused': train.onPaused(); break;
    case 'done': train.onDone(); break;
    case 'reset': train.onReset(); break;
    case 'snapshot': analysis.onSnapshot(m); break;
    case 'evaluated': onEvaluated(m); break;
    case 'completed': onCompleted(m.result); break;
    case 'exported': train.download(m); break;
    case 'error': onError(m); break;
    case 'backend': onBackend(m); break;
    case 'pool': onPool(m); emit('worker', m); break;
    default: emit('worker', m);
  }
}

// Once the worker is up: a run that was training in this tab before a reload comes back;
// otherwise the link the page was opened with is shown (and its model loaded, if it has one).
async function afterReady() {
  if (!(await restoreActiveRun())) await openLink(app.link);
  hook.ready = true;
}

function startWorker() {
  $('load-status').textContent = 'Starting the training worker…';
  const worker = (app.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
  hook.inbox = {};
  worker.onmessage = inbox(onWorker, hook.inbox);
  hook.receive = worker.onmessage; // tests: a burst of messages, as if from the worker
  hook.post = (msg) => worker.postMessage(msg); // tests: messages the page itself never sends
  hook.worker = worker; // tests: listen to the worker's messages (pool events, snapshots)
  worker.onerror = (e) => { $('load-status').hidden = false; $('load-status').textContent = `Worker failed: ${e.message}`; };
}

async function main() {
  buildForms();
  app.link = readLink();
  fillFromLink(app.link.values);
  train.initTrainCell();
  initEvaluateCell();
  analysis.mount();
  renderPresets($('presets'), { training: () => app.phase === 'training', save: saveActiveRun });
  initSweepCell(hook);
  initShare(app);
  initRuns(app);
  initWeights(app);
  initDataCell();
  await detectGpu();
  setPhase('loading');
  try {
    await init();
  } catch (err) {
    $('load-status').textContent = `Could not load the WebAssembly module: ${err.message}. Run \`make wasm\` and reload.`;
    throw err;
  }
  await openLinkData(app.link); // a custom task's data from the link (d= or its URL)
  startWorker();
  refresh();
}

main();
