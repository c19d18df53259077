// The analysis cells' controller. The page's main thread owns one wasm `Interp` per run: the
// worker posts weight snapshots (bounded and evenly thinned, see interp::timeline), this file
// stores them in the Interp, selects the one the timeline points at, runs the analyses and
// hands the results to the cells. View state (timeline position, layer/head, inputs, open
// cells) lives in hidden fields of the one properties table (state.js), so it is in the URL.
import { Interp } from '../../pkg/toyformer.js';
import { parseValue, PROPS } from '../state.js';
import { TimelineCell } from './timeline.js';
import { AttentionCell } from './attention.js';
import { QkCell, OvCell } from './circuits.js';
import { ScoresCell } from './scores.js';
import { InterventionsCell } from './interventions.js';

const $ = (id) => document.getElementById(id);
/** Fresh samples the data-based analyses average over in the page (kept small: every
 * analysis of a 1-layer model must recompute within 50 ms). */
export const SAMPLES = 16;
/** While training and following the newest snapshot, recompute at most this often, and
 * never more than 1/10 of the time (the main thread must stay responsive). */
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

class Analysis {
  constructor() {
    this.interp = null;
    this.info = null;
    this.lossRows = [];
    this.pending = null;
    this.lastRun = 0;
    this.training = false;
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

  /** A new run: a fresh Interp sized by the snapshot plan of the run. */
  onStart(task, model) {
    this.mount();
    this.interp?.free();
    this.task = task;
    this.model = model;
    this.interp = null;
    this.lossRows = [];
    this.training = true;
    this.ablated.clear();
    this.stats.snapshots = 0;
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
   */
  onModel(task, bytes) {
    this.mount();
    this.interp?.free();
    this.interp = Interp.from_file(JSON.stringify(task), bytes, JSON.stringify({ samples: SAMPLES }));
    this.info = this.interp.info();
    this.task = task;
    this.model = this.info.model;
    this.training = false;
    this.lossRows = [];
    this.ablated.clear();
    this.cells.timeline.reset();
    this.stats.snapshots = this.interp.steps().length;
    $('interp-status').hidden = true;
    this.schedule(null, 0);
  }

  onMetrics(rows) {
    for (const r of rows) this.lossRows.push([r.step + 1, r.loss]);
    this.cells?.timeline.lossChanged(this.lossRows);
  }

  onSnapshot({ step, weights, tail, plan }) {
    if (!this.task) return;
    if (!this.interp) {
      this.interp = new Interp(JSON.stringify(this.task), JSON.stringify(this.model),
        JSON.stringify({ samples: SAMPLES, capacity: plan.capacity, every: plan.every }));
      this.info = this.interp.info();
    }
    this.interp.add_snapshot(step, weights, !!tail);
    this.stats.snapshots = this.interp.steps().length;
    $('interp-status').hidden = true;
    const follow = view('view_step') < 0;
    const busy = this.stats.last ? 10 * (this.stats.last.compute_ms + this.stats.last.render_ms) : 0;
    this.schedule(follow ? null : ['timeline'], follow && this.training ? Math.max(FOLLOW_MS, busy) : 0);
  }

  onDone() {
    this.training = false;
    this.schedule(null, 0);
  }

  onReset() {
    this.interp?.free();
    this.interp = null;
    this.task = null;
    this.training = false;
    this.lossRows = [];
    if (this.cells) for (const c of Object.values(this.cells)) c.clear();
    $('interp-status').hidden = false;
    $('interp-status').textContent = 'The analysis cells below fill in as soon as training starts (the worker sends weight snapshots).';
  }

  /** Recompute `parts` (null = everything) after `delay` ms at most once per FOLLOW_MS while training. */
  schedule(parts, delay) {
    if (this.pending) {
      this.pending.parts = parts === null || this.pending.parts === null ? null : [...new Set([...this.pending.parts, ...parts])];
      if (delay > 0) return;
      clearTimeout(this.pending.timer);
    }
    const wait = delay > 0 ? Math.max(0, this.lastRun + delay - performance.now()) : 0;
    const job = { parts };
    job.timer = setTimeout(() => {
      this.pending = null;
      this.run(job.parts);
    }, wait);
    this.pending = job;
  }

  /** Whether the cell of analysis part `k` is open (closed cells are not recomputed). */
  isOpen(k) {
    const cell = { ablation: 'interventions', patching: 'interventions' }[k] ?? k;
    return document.getElementById(`cell-${cell}`)?.open ?? true;
  }

  /**
   * Runs the analyses of the open cells, each followed by drawing its cell, as separate tasks
   * (the main thread yields between them, so a long model never freezes the page). Records
   * the time spent computing (wasm calls) and drawing, summed over the parts. `parts` null
   * means every analysis (a new snapshot or timeline position). A newer run cancels this one.
   */
  async run(parts) {
    if (!this.interp || !this.cells) return;
    const gen = (this.gen = (this.gen ?? 0) + 1);
    const want = (k) => (parts === null || parts.includes(k)) && this.isOpen(k);
    const T = this.model.n_ctx;
    const patchTokens = this.model.n_layers * (1 + T + this.model.n_heads * (T + 1)) * T;
    const autoPatch = patchTokens <= AUTO_PATCH_TOKENS || (parts !== null && parts.includes('patching'));
    const times = {};
    const draw = {};
    const data = {};
    let compute = 0;
    let render = 0;
    const t0 = performance.now();
    const time = (k, f) => {
      const t = performance.now();
      const r = f();
      const dt = performance.now() - t;
      times[k] = +((times[k] ?? 0) + dt).toFixed(2);
      compute += dt;
      return r;
    };
    const show = (k) => {
      const t = performance.now();
      this.cells[k].update(data, this);
      const dt = performance.now() - t;
      draw[k] = +dt.toFixed(2);
      render += dt;
    };
    const steps = [
      ['timeline', () => {
        data.steps = this.interp.steps();
        data.timeline = time('timeline', () => this.interp.timeline_points());
      }],
      ['attention', () => {
        data.attention = time('attention', () => this.interp.attention(view('view_input')));
        data.decomposition = time('decomposition', () => this.interp.decomposition(view('view_input'), data.layer, data.head));
      }],
      ['qk', () => { data.qk = time('qk', () => this.interp.qk(data.layer, data.head, this.cells.qk.qThrough(data.layer), this.cells.qk.kThrough(data.layer))); }],
      ['ov', () => { data.ov = time('ov', () => this.interp.ov(this.cells.ov.through(data.layer, data.head))); }],
      ['scores', () => { data.report = time('report', () => this.interp.report()); }],
      ['interventions', () => {
        if (want('interventions') || want('ablation')) {
          data.table = time('ablation_table', () => this.interp.ablation_table());
          data.ablation = time('ablate', () => this.interp.ablate(JSON.stringify([...this.ablated].map((k) => k.split(',').map(Number))), this.ablationKind));
        }
        if (!(want('interventions') || want('patching'))) return;
        const d = time('patching', () => this.interp.patch_inputs());
        const clean = view('view_clean') || d.clean;
        const corrupted = view('view_corrupt') || d.corrupted;
        data.patchInputs = { clean, corrupted };
        if (!autoPatch) {
          data.patchError = `Patching runs ${patchTokens.toLocaleString('en-US')} tokens for this model and task; press Patch to run it.`;
          return;
        }
        try {
          data.patching = time('patching', () => this.interp.patching(clean, corrupted));
        } catch (e) {
          data.patchError = String(e.message ?? e);
        }
      }],
    ];
    try {
      data.selected = time('select', () => this.interp.select(view('view_step')));
      data.layer = Math.min(view('view_layer'), this.model.n_layers - 1);
      data.head = Math.min(view('view_head'), this.model.n_heads - 1);
      for (const [k, f] of steps) {
        const on = want(k) || (k === 'interventions' && (want('ablation') || want('patching')));
        if (!on) continue;
        f();
        show(k);
        await new Promise((r) => setTimeout(r, 0));
        if (gen !== this.gen || !this.interp) return; // a newer run started
      }
    } catch (e) {
      data.error = String(e.message ?? e);
    }
    this.lastRun = performance.now();
    this.stats.recomputes += 1;
    this.stats.last = { parts: parts ?? 'all', compute_ms: +compute.toFixed(2), render_ms: +render.toFixed(2),
      wall_ms: +(this.lastRun - t0).toFixed(2), times, draw, selected: data.selected, error: data.error ?? null };
    if (parts === null) this.stats.lastFull = this.stats.last;
    this.cells.timeline.showTiming(this.stats.last);
    this.fillTimeline();
  }

  /** Computes the missing timeline points one per task, then redraws the curves. */
  fillTimeline() {
    if (this.filling || !this.interp) return;
    this.filling = true;
    const interp = this.interp;
    const tick = () => {
      if (interp !== this.interp) return void (this.filling = false);
      let left = 0;
      try {
        left = interp.timeline_fill(1);
      } catch (e) {
        this.filling = false;
        return;
      }
      if (left > 0) return void setTimeout(tick, 0);
      this.filling = false;
      const points = interp.timeline_points();
      this.stats.timeline = points; // read by tests
      if (this.isOpen('timeline')) this.cells.timeline.update({ steps: interp.steps(), timeline: points }, this);
    };
    setTimeout(tick, 0);
  }
}

export const analysis = new Analysis();
