// The page's state, in one place: the run's phase, the form's values, the current task, the
// training worker and the charts are fields of `app`, which every module of the page reads (and
// the module that owns a field writes). Also the page's events (`on`/`emit`), the requests to the
// training worker that expect a reply, and the test hook window.__toyformer.
//
// Events: 'phase' (the phase changed), 'controls' (the buttons follow the phase and the form's
// validity), 'start', 'load-start', 'load-failed', 'loaded', 'snapshots', 'worker' (a message no
// other module handles).

const listeners = {}; // event → [fn]
const requests = new Map(); // req → {resolve, reject}: worker replies to app.request
let reqSeq = 0;

// Test hook: read-only view of what the page shows.
export const hook = (window.__toyformer = { phase: 'loading', rows: [], splits: [], lastEval: null, lastCompletion: null,
  chartPoints: () => app.charts?.length ?? 0, plotted: () => app.charts?.plotted_data() ?? null });

export const app = {
  phase: 'loading', // loading | idle | training | paused | done
  values: {}, // the form's values by key (undefined where invalid)
  valid: false, // whether the form's task, model and train settings are valid
  info: null, // task_info of the current task
  runInfo: null, // {task, total} of the run in the worker
  link: null, // the decoded URL fragment the page was opened with
  worker: null, // the training worker (worker.js)
  charts: null, // the Train cell's charts (plots.js)
  gpu: { name: null, fallback: false }, // the WebGPU adapter's name (null: none); a software fallback?
  inputs: {}, // the settings form: key → <input>/<select>
  touched: new Set(), // keys set by the URL or the user (task changes keep them)
  taskKey: '', // JSON of the current task spec (info belongs to it)
  afterReset: null, // what to do once the worker has reset (a replay)
  hook,
  get rows() {
    return hook.rows;
  },
  hasModel() {
    return app.phase !== 'idle' && app.phase !== 'loading';
  },
  on(event, fn) {
    (listeners[event] ??= []).push(fn);
  },
  emit,
  request,
  // set by main.js: load, replay, start, runSpec (cells/train.js), writeLink (form.js)
};

export function emit(event, arg) {
  for (const fn of listeners[event] ?? []) fn(arg);
}

/** Moves the run to phase `p`: 'phase' when it changed, then 'controls' in any case. */
export function setPhase(p) {
  const changed = p !== app.phase;
  app.phase = hook.phase = p;
  if (changed) emit('phase', p);
  emit('controls', p);
}

/** Sends `msg` to the worker with a fresh `req` id; resolves with its reply, rejects with its error. */
export function request(msg, transfer = []) {
  const req = ++reqSeq;
  return new Promise((resolve, reject) => {
    requests.set(req, { resolve, reject });
    app.worker.postMessage({ ...msg, req }, transfer);
  });
}

/** Settles the request that worker message `m` answers; false when it answers none. */
export function settleRequest(m) {
  const r = requests.get(m.req);
  if (m.req === undefined || !r) return false;
  requests.delete(m.req);
  if (m.type === 'error') r.reject(new Error(m.message));
  else r.resolve(m);
  return true;
}
