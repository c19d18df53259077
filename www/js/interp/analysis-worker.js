// The analysis worker: owns the wasm `Interp` of the analysis cells (one per run or loaded
// model) so that its work — processing a snapshot's weights and running the model with a cache
// on select, the patterns, circuits, scores and interventions — never blocks the page.
// Calls are handled one at a time, in the order they arrive (each wasm call is synchronous).
// Messages in:  {id, method, args, run?}; method is one of CALLS below; run: the page's
//               analysis run the call belongs to (see the queue below).
// Messages out: {id, result, ms} (ms: time spent in the call) | {id, error (text), ms}
//               | {id, method, cancelled: true} (a call of a superseded run, skipped).
// Results are plain objects (serde-wasm-bindgen, JSON-compatible) and cross by structured
// clone, except the matrices' values: see packMatrices. Weights come in as transferred
// Float32Arrays.
import init, { Interp } from '../../pkg/toyformer.js';
import { nextTask } from '../next-task.js';

let interp = null;

function need() {
  if (!interp) throw new Error('no model: the analysis worker has no snapshot to analyse yet');
  return interp;
}

// Methods of the protocol: building and dropping the Interp, then its own methods.
const CALLS = {
  /** A fresh Interp for a run (task, model and options as JSON texts); returns its info. */
  create(task, model, options) {
    interp?.free();
    interp = null;
    interp = new Interp(task, model, options);
    return interp.info();
  },
  /** A fresh Interp holding the model in a `.safetensors` / TL `.pt` file; returns {info, steps}. */
  load(task, bytes, options) {
    interp?.free();
    interp = null;
    interp = Interp.from_file(task, bytes, options);
    return { info: interp.info(), steps: interp.steps() };
  },
  drop() {
    interp?.free();
    interp = null;
  },
  /** Offers a snapshot; returns {kept, steps} (the kept steps after it). */
  add_snapshot(step, weights, tail) {
    const kept = need().add_snapshot(step, weights, tail);
    return { kept, steps: interp.steps() };
  },
};
for (const m of ['steps', 'select', 'attention', 'decomposition', 'qk', 'ov', 'report', 'ablate', 'ablation_table',
  'patch_inputs', 'patching', 'timeline_fill', 'timeline_points', 'hypothesis', 'head_types', 'induction_paths', 'fourier', 'neurons',
  'neuron_heatmap', 'ablate_neurons', 'progress', 'head_type_curve', 'circuit',
  'circuit_neurons', 'circuit_agreement']) {
  CALLS[m] = (...args) => need()[m](...args);
}

/**
 * Turns the `data` of every matrix ({rows, cols, data}, src/interp/mat.rs: f32 values) in
 * `v` into a Float32Array (exact) and lists its buffer in `transfer`: a T × T pattern then
 * crosses to the page as one buffer, with nothing to copy element by element and no garbage.
 */
function packMatrices(v, transfer) {
  if (Array.isArray(v)) {
    for (const x of v) if (x && typeof x === 'object') packMatrices(x, transfer);
  } else if (v && typeof v === 'object') {
    if (Array.isArray(v.data) && typeof v.rows === 'number' && typeof v.cols === 'number') {
      v.data = Float32Array.from(v.data);
      transfer.push(v.data.buffer);
    }
    for (const k of Object.keys(v)) if (k !== 'data' && v[k] && typeof v[k] === 'object') packMatrices(v[k], transfer);
  }
  return v;
}

// Calls wait in a queue and run one per task, so that calls arriving meanwhile are seen
// first: a call of analysis run r is skipped (answered {id, method, cancelled: true}) once
// a call of a newer run has arrived, so a superseded run leaves little work behind.
const queue = [];
let newestRun = -Infinity;
let draining = false;

function execute({ id, method, args }) {
  const t = performance.now();
  try {
    const f = Object.hasOwn(CALLS, method) ? CALLS[method] : null;
    if (!f) throw new Error(`unknown analysis call ${method}`);
    const transfer = [];
    const result = packMatrices(f(...(args ?? [])), transfer);
    postMessage({ id, result, ms: performance.now() - t }, transfer);
  } catch (e) {
    postMessage({ id, error: String(e?.message ?? e), ms: performance.now() - t });
  }
}

const ready = init();
ready.catch(() => {}); // reported to each call by drain()

async function drain() {
  try {
    await ready;
  } catch (e) {
    for (const { id } of queue.splice(0)) postMessage({ id, error: `the analysis worker could not load the WebAssembly module: ${e?.message ?? e}`, ms: 0 });
    draining = false;
    return;
  }
  while (queue.length) {
    const msg = queue.shift();
    if (msg.run !== undefined && msg.run < newestRun) postMessage({ id: msg.id, method: msg.method, cancelled: true });
    else execute(msg);
    await nextTask();
  }
  draining = false;
}

self.onmessage = ({ data }) => {
  if (data.run !== undefined) newestRun = Math.max(newestRun, data.run);
  queue.push(data);
  if (!draining) {
    draining = true;
    drain();
  }
};
