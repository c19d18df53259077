// The worker's share messages (see worker.js for the rest). Every reply carries the `req`
// of its request. During a WebGPU run they read a CPU copy of the GPU's last synced weights
// (and, for checkpoints, the GPU's AdamW moments), so links and autosave work on either backend.
// Loaded models train on the CPU.
//   {type: 'load', kind: 'file', bytes, config, selectedTask, train}   a .pt / .safetensors (+ config JSON)
//   {type: 'load', kind: 'link', w, task, model, train}                a link's w= weights
//   {type: 'load', kind: 'checkpoint', ckpt, train}                     a saved run (exact resume)
//     → {type: 'loaded', info: {task, model, train, step, backend}, imported?: import_model_info}
//   {type: 'info'} → {type: 'info', info: {task, model, train, step, backend}}
//   {type: 'checkpoint'} → {type: 'checkpoint', ckpt: {weights, step, adam_t, adam_m, adam_v}}
//   {type: 'link-weights'} → {type: 'link-weights', result: {ok, text?, chars, limit, n_params, message?}}
//   {type: 'compare-link', w} → {type: 'link-compared', result: {values, differ, max_abs_diff, link_step}}
import { loadWasm } from './wasm-pick.js';

// the training worker's wasm build (wasm-pick.js), the one its sessions run on
const { Session, import_model_info } = await loadWasm();

const json = (x) => (x ? JSON.stringify(x) : '');

function open(msg) {
  const train = JSON.stringify(msg.train);
  if (msg.kind === 'file') {
    const imported = import_model_info(msg.bytes, msg.config ?? '', json(msg.selectedTask));
    return { s: Session.from_weights(msg.bytes, msg.config ?? '', json(msg.selectedTask), train), imported };
  }
  if (msg.kind === 'link') return { s: Session.from_link(msg.w, json(msg.task), json(msg.model), train) };
  if (msg.kind === 'checkpoint') {
    const c = msg.ckpt;
    const s = Session.from_weights(c.weights, '', '', train);
    try {
      if (c.adam_m) s.set_optimizer_state(c.adam_t, c.adam_m, c.adam_v);
      if (c.schedule) s.set_schedule_state(c.schedule); // reduce_on_plateau's rate, best loss, counters
    } catch (e) {
      s.free();
      throw e;
    }
    return { s };
  }
  throw new Error(`unknown load kind ${msg.kind}`);
}

export const shareHandlers = {
  load(msg, w) {
    const { s, imported } = open(msg);
    w.adopt(s);
    w.post({ type: 'loaded', req: msg.req, info: s.info(), imported });
  },
  async checkpoint(msg, w) {
    if (!w.session) throw new Error('there is no model to save');
    const { s, done } = w.cpuView();
    try {
      const ckpt = s.checkpoint();
      const gpu = await w.gpuOptimizerState(); // a GPU run's AdamW moments live on the GPU
      if (gpu) Object.assign(ckpt, { adam_t: gpu.t, adam_m: gpu.m, adam_v: gpu.v });
      w.post({ type: 'checkpoint', req: msg.req, ckpt }, [ckpt.weights.buffer, ckpt.adam_m.buffer, ckpt.adam_v.buffer]);
    } finally {
      done();
    }
  },
  'link-weights'(msg, w) {
    if (!w.session) throw new Error('there is no model to put in the link');
    withView(w, (s) => w.post({ type: 'link-weights', req: msg.req, result: s.weights_link() }));
  },
  info(msg, w) {
    if (!w.session) throw new Error('there is no model');
    withView(w, (s) => w.post({ type: 'info', req: msg.req, info: { ...s.info(), backend: w.session.backend } }));
  },
  'compare-link'(msg, w) {
    if (!w.session) throw new Error('there is no model to compare');
    withView(w, (s) => w.post({ type: 'link-compared', req: msg.req, result: s.compare_link(msg.w) }));
  },
};

// Runs fn on a CPU session holding the current weights (a temporary one while training runs on the GPU).
function withView(w, fn) {
  const { s, done } = w.cpuView();
  try {
    fn(s);
  } finally {
    done();
  }
}
