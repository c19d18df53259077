// The analysis cells' controller. The wasm `Interp` of a run lives in the analysis worker
// (analysis-worker.js), so its computations never block the page: the training worker posts
// weight snapshots (bounded and evenly thinned, see interp::timeline), this file forwards them
// to the analysis worker (transferred, not copied), asks it to select the one the timeline
// points at and to run the analyses, and hands the results to the cells, which draw them on
// the main thread. View state (timeline position, layer/head, inputs, open cells) lives in
// hidden fields of the one properties table (state.js), so it is in the URL.
import { parseValue, PROPS } from '../state.js';
import { AnalysisWorker } from './remote.js';
import { TimelineCell } from '../cells/timeline.js';
import { AttentionCell } from '../cells/attention.js';
import { QkCell, OvCell } from '../cells/circuits.js';
import { ScoresCell } from '../cells/scores.js';
import { InterventionsCell } from '../cells/interventions.js';
import { drawn, drawingMs } from './heatmap.js';
import { Curves } from '../thin.js';
import { nextTask } from '../next-task.js';

const $ = (id) => document.getElementById(id);
/** Fresh samples the data-based analyses average over in the page (kept small: every
 * analysis of a 1-layer model must recompute within 50 ms). */
export const SAMPLES = 16;
/** While training and following the newest snapshot, recompute at most this often, and
 * keep the analyses (worker and drawing) to about 1/10 of the time: on a small machine the
 * analysis worker takes its CPU from the training worker. */
const FOLLOW_MS = 700;
/** Patching runs (1 + T + NH + NH·T) sequences per layer; above this many tokens in all it
 * waits for the Patch button instead of running on every change. */
const AUTO_PATCH_TOKENS = 8192;

const prop = (key) => PROPS.find((p) => p.key === key);
const field = (key) => document.querySelector(`.params[data-cell="view"] [name="${key}"]`);

/** The view value of `key` (its default when the field is missing or invalid). */
export function view(key) {
  const p = prop(key);
  const f = field(key);
  if (!f) return p.default;
  const r = parseValue(p, p.type === 'bool' ? String(f.checked) : f.value);
  return r.error || r.value === undefined ? p.default : r.value;
}

/** Sets a view value (the URL follows through the controller's refresh). */
export function setView(key, value) {
  const f = field(key);
  if (!f) return;
  if (prop(key).type === 'bool') {
    if (f.checked === !!value) return;
    f.checked = !!value;
    f.dispatchEvent(new Event('change'));
  } else {
    if (f.value === String(value)) return;
    f.value = String(value);
    f.dispatchEvent(new Event('input'));
  }
}

/** Thrown inside a run when a newer run (or another model) superseded it. */
const CANCELLED = Symbol('cancelled');
/** The parts of two runs together (null: every part). */
const union = (a, b) => (a === null || b === null ? null : [...new Set([...a, ...b])]);

class Analysis {
  constructor() {
    this.remote = null; // the analysis worker, started with the first model
    this.hasModel = false; // the worker's Interp holds a snapshot to analyse
    this.created = false; // the worker was asked for this run's Interp
    this.model = null;
    this.loss = new Curves(); // the run's loss curve (bounded), drawn by the timeline cell
    this.pending = null;
    this.lastRun = 0;
    this.training = false;
    this.epoch = 0; // bumped for every new run or model: answers for an older one are dropped
    this.gen = 0; // bumped for every analysis run: a newer run cancels an older one
    this.active = null; // {gen, parts} of the run in progress
    this.filling = false; // timeline points being computed
    this.lossQueued = false; // a timeline loss redraw is scheduled
    this.stats = { recomputes: 0, last: null, snapshots: 0 };
    this.cells = null;
    this.ablated = new Set(); // "l,h" of heads the user ablated
    this.ablationKind = 'zero';
  }

  mount() {
    if (this.cells) return;
    const ctx = {
      view, setView,
      recompute: (parts) => this.schedule(parts, 0),
      analysis: this,
    };
    this.cells = {
      timeline: new TimelineCell($('timeline-body'), ctx),
      attention: new AttentionCell($('attention-body'), ctx),
      qk: new QkCell($('qk-body'), ctx),
      ov: new OvCell($('ov-body'), ctx),
      scores: new ScoresCell($('scores-body'), ctx),
      interventions: new InterventionsCell($('interventions-body'), ctx),
    };
    // open/closed cells are view state
    for (const d of document.querySelectorAll('details.interp-cell')) {
      d.open = view(d.dataset.openKey);
      d.addEventListener('toggle', () => {
        setView(d.dataset.openKey, d.open);
        if (d.open) this.schedule(null, 0);
      });
    }
    window.__toyformer.interp = this.stats;
    window.__toyformer.analyseModel = (task, bytes) => this.onModel(task, bytes);
  }

  /** Calls `method` in the analysis worker (started on first use). */
  call(method, args, opts) {
    this.remote ??= new AnalysisWorker();
    return this.remote.call(method, args, opts);
  }

  /** Drops what belongs to the previous run or model: its Interp, pending answers and runs. */
  newEpoch() {
    this.epoch += 1;
    this.gen += 1;
    this.hasModel = false;
    this.created = false;
    this.active = null;
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = null;
    this.stats.snapshots = 0;
    this.ablated.clear();
    this.loss = new Curves();
    if (this.remote) this.call('drop').catch(() => {});
  }

  /** Shows a failure of the analysis worker for the current run or model. */
  fail(err, epoch) {
    if (err === CANCELLED || epoch !== this.epoch) return;
    $('interp-status').hidden = false;
    $('interp-status').textContent = `The analyses failed: ${err.message ?? err}`;
    console.error('analysis worker:', err);
  }

  /** A new run: a fresh Interp (made with its first snapshot) sized by the run's snapshot plan. */
  onStart(task, model) {
    this.mount();
    this.newEpoch();
    this.task = task;
    this.model = model;
    this.training = true;
    $('interp-status').hidden = false;
    $('interp-status').textContent = 'Waiting for the first weight snapshot from the worker…';
    this.cells.timeline.reset();
  }

  /** A loaded model or reopened run (not training): its snapshots arrive from the worker. */
  onLoaded(task, model) {
    this.onStart(task, model);
    this.training = false;
  }

  /**
   * Shows a model read from a `.safetensors` / TL `.pt` file (bytes) as the only snapshot, for
   * `task` (the task spec object). For the weight import of the share cell, and for tests.
   * Resolves once the analysis worker holds the model (the cells draw soon after); rejects
   * with the reason when the file cannot be read.
   */
  async onModel(task, bytes) {
    this.mount();
    this.newEpoch();
    const epoch = this.epoch;
    this.task = task;
    this.model = null;
    this.training = false;
    this.cells.timeline.reset();
    let r;
    try {
      r = await this.call('load', [JSON.stringify(task), bytes, JSON.stringify({ samples: SAMPLES })]);
    } catch (e) {
      this.fail(e, epoch);
      throw e;
    }
    if (epoch !== this.epoch) return;
    this.model = r.info.model;
    this.hasModel = true;
    this.stats.snapshots = r.steps.length;
    $('interp-status').hidden = true;
    this.schedule(null, 0);
  }

  onMetrics(rows) {
    this.loss.push(rows);
    if (this.lossQueued) return;
    this.lossQueued = true;
    nextTask().then(() => { // its own task: the metrics message already redraws the training charts
      this.lossQueued = false;
      const { step, loss } = this.loss.columns();
      this.cells?.timeline.lossChanged(step, loss);
    });
  }

  /** A snapshot from the training worker: its weights go on to the analysis worker (transferred). */
  async onSnapshot({ step, weights, tail, plan }) {
    if (!this.task) return;
    const epoch = this.epoch;
    if (!this.created) {
      this.created = true;
      // the worker answers in order: the Interp exists before the snapshot below arrives
      this.call('create', [JSON.stringify(this.task), JSON.stringify(this.model),
        JSON.stringify({ samples: SAMPLES, capacity: plan.capacity, every: plan.every })]).catch((e) => this.fail(e, epoch));
    }
    let r;
    try {
      r = await this.call('add_snapshot', [step, weights, !!tail], { transfer: [weights.buffer] });
    } catch (e) {
      return this.fail(e, epoch);
    }
    if (epoch !== this.epoch) return;
    this.hasModel = true;
    this.stats.snapshots = r.steps.length;
    $('interp-status').hidden = true;
    const follow = view('view_step') < 0;
    const last = this.stats.last;
    const busy = last ? 10 * (last.worker_ms + last.render_ms) : 0;
    this.schedule(follow ? null : ['timeline'], follow && this.training ? Math.max(FOLLOW_MS, busy) : 0);
  }

  onDone() {
    this.training = false;
    this.schedule(null, 0);
  }

  onReset() {
    this.newEpoch();
    this.task = null;
    this.model = null;
    this.training = false;
    if (this.cells) for (const c of Object.values(this.cells)) c.clear();
    $('interp-status').hidden = false;
    $('interp-status').textContent = 'The analysis cells below fill in as soon as training starts (the worker sends weight snapshots).';
  }

  /** Recompute `parts` (null = everything) after `delay` ms at most once per FOLLOW_MS while training. */
  schedule(parts, delay) {
    if (this.pending) {
      this.pending.parts = union(this.pending.parts, parts);
      if (delay > 0) return;
      clearTimeout(this.pending.timer);
    }
    const wait = delay > 0 ? Math.max(0, this.lastRun + delay - performance.now()) : 0;
    const job = { parts, due: performance.now() + wait };
    job.timer = setTimeout(() => {
      this.pending = null;
      this.run(job.parts, job.due);
    }, wait);
    this.pending = job;
  }

  /** Whether the cell of analysis part `k` is open (closed cells are not recomputed). */
  isOpen(k) {
    const cell = { ablation: 'interventions', patching: 'interventions' }[k] ?? k;
    return document.getElementById(`cell-${cell}`)?.open ?? true;
  }

  /**
   * Runs the analyses of the open cells in the analysis worker and draws each cell as its
   * results arrive. Every call of the run is posted at once: the worker computes them back to
   * back while the page draws the cells whose results are in. `parts` null means every
   * analysis (a new snapshot or timeline position). A newer run cancels this one (the worker
   * skips the calls it has not started) and takes over its parts. Records, summed over the
   * parts: the time the page waited for the worker (compute_ms), the time the worker spent in
   * wasm (worker_ms; per analysis in `times`), the time spent drawing (render_ms; per cell in
   * `draw`, and the queued heatmaps in draw.heatmaps) and the wall time from the request
   * (`due`: when it was made, or when its throttling delay ended) to the last cell drawn
   * (wall_ms).
   */
  async run(parts, due = performance.now()) {
    if (!this.hasModel || !this.cells) return;
    const gen = (this.gen += 1);
    const epoch = this.epoch;
    if (this.active) parts = union(parts, this.active.parts); // the run this one cancels
    this.active = { gen, parts };
    const stale = () => gen !== this.gen || epoch !== this.epoch;
    const want = (k) => (parts === null || parts.includes(k)) && this.isOpen(k);
    const T = this.model.n_ctx;
    const patchTokens = this.model.n_layers * (1 + T + this.model.n_heads * (T + 1)) * T;
    const autoPatch = patchTokens <= AUTO_PATCH_TOKENS || (parts !== null && parts.includes('patching'));
    const times = {};
    const draw = {};
    const data = {};
    let compute = 0;
    let inWorker = 0;
    let render = 0;
    const t0 = performance.now();
    const drawn0 = drawingMs();
    // posts a call now; the promise resolves with its result (CANCELLED once this run is stale)
    const post = (k, method, args) => {
      const p = this.remote.timed(method, args, { run: gen }).then(({ result, ms }) => {
        if (stale()) throw CANCELLED;
        times[k] = +((times[k] ?? 0) + ms).toFixed(2);
        inWorker += ms;
        return result;
      }, (e) => {
        throw stale() || e.cancelled ? CANCELLED : e;
      });
      p.catch(() => {}); // awaited below, unless an earlier failure ends the run
      return p;
    };
    const show = (k) => {
      const t = performance.now();
      this.cells[k].update(data, this);
      const dt = performance.now() - t;
      draw[k] = +dt.toFixed(2);
      render += dt;
    };
    // each posts its calls before its first await, so calling them in turn posts every call
    const fetches = {
      timeline: async () => {
        const [steps, points] = [post('timeline', 'steps'), post('timeline', 'timeline_points')];
        data.steps = await steps;
        data.timeline = await points;
      },
      attention: async () => {
        const input = view('view_input');
        const [att, dec] = [post('attention', 'attention', [input]), post('decomposition', 'decomposition', [input, data.layer, data.head])];
        data.attention = await att;
        data.decomposition = await dec;
      },
      qk: async () => {
        data.qk = await post('qk', 'qk', [data.layer, data.head, this.cells.qk.qThrough(data.layer), this.cells.qk.kThrough(data.layer)]);
      },
      ov: async () => { data.ov = await post('ov', 'ov', [this.cells.ov.through(data.layer, data.head)]); },
      scores: async () => { data.report = await post('report', 'report'); },
      interventions: async () => {
        const ablation = want('interventions') || want('ablation');
        const patching = want('interventions') || want('patching');
        const table = ablation && post('ablation_table', 'ablation_table');
        const ablate = ablation && post('ablate', 'ablate', [JSON.stringify([...this.ablated].map((k) => k.split(',').map(Number))), this.ablationKind]);
        const inputs = patching && post('patching', 'patch_inputs');
        if (ablation) {
          data.table = await table;
          data.ablation = await ablate;
        }
        if (!patching) return;
        const d = await inputs;
        const clean = view('view_clean') || d.clean;
        const corrupted = view('view_corrupt') || d.corrupted;
        data.patchInputs = { clean, corrupted };
        if (!autoPatch) {
          data.patchError = `Patching runs ${patchTokens.toLocaleString('en-US')} tokens for this model and task; press Patch to run it.`;
          return;
        }
        try {
          data.patching = await post('patching', 'patching', [clean, corrupted]);
        } catch (e) {
          if (e === CANCELLED) throw e;
          data.patchError = String(e.message ?? e);
        }
      },
    };
    const on = (k) => want(k) || (k === 'interventions' && (want('ablation') || want('patching')));
    const keys = Object.keys(fetches).filter(on);
    // waits for a fetch, counting the time the page waits on it (less heatmaps drawn meanwhile)
    const wait = async (p) => {
      const t = performance.now();
      const d = drawingMs();
      try {
        return await p;
      } finally {
        compute += performance.now() - t - (drawingMs() - d);
      }
    };
    try {
      const selected = post('select', 'select', [view('view_step')]);
      data.layer = Math.min(view('view_layer'), this.model.n_layers - 1);
      data.head = Math.min(view('view_head'), this.model.n_heads - 1);
      const results = keys.map((k) => {
        const p = fetches[k]();
        p.catch(() => {});
        return p;
      });
      data.selected = await wait(selected);
      for (const [i, k] of keys.entries()) {
        try {
          await wait(results[i]);
        } catch (e) {
          // a failed analysis (say, a typed input the task cannot read) is shown in its cell,
          // and the other cells still update
          if (e === CANCELLED || stale()) throw CANCELLED;
          data.error = String(e.message ?? e);
        }
        show(k);
      }
      await drawn(); // the heatmaps the cells set are drawn in slices (heatmap.js)
      if (stale()) return;
      draw.heatmaps = +(drawingMs() - drawn0).toFixed(2);
      render += draw.heatmaps;
    } catch (e) {
      if (e === CANCELLED || stale()) return;
      data.error = String(e.message ?? e);
    }
    this.active = null;
    this.lastRun = performance.now();
    this.stats.recomputes += 1;
    this.stats.last = { parts: parts ?? 'all', compute_ms: +compute.toFixed(2), worker_ms: +inWorker.toFixed(2),
      render_ms: +render.toFixed(2), wall_ms: +(this.lastRun - Math.min(due, t0)).toFixed(2), times, draw, selected: data.selected,
      error: data.error ?? null };
    if (parts === null) this.stats.lastFull = this.stats.last;
    this.cells.timeline.showTiming(this.stats.last);
    this.fillTimeline();
  }

  /** Has the worker compute the missing timeline points one per call, then redraws the curves. */
  async fillTimeline() {
    if (this.filling || !this.hasModel) return;
    this.filling = true;
    const epoch = this.epoch;
    try {
      while ((await this.call('timeline_fill', [1])) > 0) if (epoch !== this.epoch) return;
      const points = await this.call('timeline_points');
      const steps = await this.call('steps');
      if (epoch !== this.epoch) return;
      this.stats.timeline = points; // read by tests
      if (this.isOpen('timeline')) this.cells.timeline.update({ steps, timeline: points }, this);
    } catch (e) {
      this.fail(e, epoch); // nothing shown when the model changed under the fill (its Interp dropped)
    } finally {
      this.filling = false;
    }
  }
}

export const analysis = new Analysis();
