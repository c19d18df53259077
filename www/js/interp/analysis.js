// The analysis cells' controller. The wasm `Interp` of a run lives in the analysis worker
// (analysis-worker.js), so its computations never block the page: the training worker posts
// weight snapshots (bounded and evenly thinned, see interp::timeline), this file forwards them
// to the analysis worker (transferred, not copied), asks it to select the one the timeline
// points at and to run the analyses, and hands the results to the cells, which draw them on
// the main thread. View state (timeline position, layer/head, inputs, open cells) lives in
// hidden fields of the one properties table (state.js), so it is in the URL (view.js).
import { AnalysisWorker } from './remote.js';
import { AnalysisRun, CANCELLED } from './analysis-run.js';
import { view, setView } from './view.js';
import { TimelineCell } from '../cells/timeline.js';
import { AttentionCell } from '../cells/attention.js';
import { QkCell, OvCell } from '../cells/circuits.js';
import { ScoresCell } from '../cells/scores.js';
import { AnalysesCell } from '../cells/analyses.js';
import { TimelineExtras } from '../cells/timeline-extra.js';
import { InterventionsCell } from '../cells/interventions.js';
import { CircuitCell } from '../cells/circuit.js';
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
      analyses: new AnalysesCell($('analyses-body'), ctx),
      interventions: new InterventionsCell($('interventions-body'), ctx),
      circuit: new CircuitCell($('circuit-body'), ctx),
    };
    this.extras = new TimelineExtras($('timeline-body'));
    this.stats.extras = () => this.extras.shown; // read by tests
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
   * results arrive (analysis-run.js). `parts` null means every analysis (a new snapshot or
   * timeline position). A newer run cancels this one (the worker skips the calls it has not
   * started) and takes over its parts. The record (stats.last) adds to the run's timings the
   * wall time from the request (`due`: when it was made, or when its throttling delay ended)
   * to the last cell drawn (wall_ms).
   */
  async run(parts, due = performance.now()) {
    if (!this.hasModel || !this.cells) return;
    const gen = (this.gen += 1);
    if (this.active) parts = union(parts, this.active.parts); // the run this one cancels
    this.active = { gen, parts };
    const r = new AnalysisRun(this, parts, gen);
    if (!(await r.execute())) return;
    this.active = null;
    this.lastRun = performance.now();
    this.stats.recomputes += 1;
    this.stats.last = r.summary(due, this.lastRun);
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
      if (this.isOpen('timeline')) this.extras.fill(this, epoch);
    } catch (e) {
      this.fail(e, epoch); // nothing shown when the model changed under the fill (its Interp dropped)
    } finally {
      this.filling = false;
    }
  }
}

export const analysis = new Analysis();
