// One recompute of the analysis cells (Analysis.run): every call of the run is posted to the
// analysis worker at once, so the worker computes them back to back while the page draws the
// cells whose results are in, each cell in its own task. A newer run (or another model) makes
// this one stale: its remaining results are dropped (CANCELLED). Records, summed over the parts:
// the time the page waited for the worker (compute_ms), the time the worker spent in wasm
// (worker_ms; per analysis in `times`), the time spent drawing (render_ms; per cell in `draw`,
// and the queued heatmaps in draw.heatmaps).
import { drawn, drawingMs } from './heatmap.js';
import { view } from './view.js';
import { nextTask } from '../next-task.js';
import { analysesApply, analysesCalls } from '../cells/analyses.js';

/** Thrown inside a run when a newer run (or another model) superseded it. */
export const CANCELLED = Symbol('cancelled');
/** Patching runs (1 + T + NH + NH·T) sequences per layer; above this many tokens in all it
 * waits for the Patch button instead of running on every change. */
const AUTO_PATCH_TOKENS = 8192;

// What each cell asks the worker for: each posts its calls before its first await, so calling
// them in turn posts every call. `r` is the AnalysisRun; results go into r.data.
const FETCHES = {
  timeline: async (r) => {
    const [steps, points] = [r.post('timeline', 'steps'), r.post('timeline', 'timeline_points')];
    r.data.steps = await steps;
    r.data.timeline = await points;
  },
  attention: async (r) => {
    const { data } = r;
    const input = view('view_input');
    const [att, dec] = [r.post('attention', 'attention', [input]), r.post('decomposition', 'decomposition', [input, data.layer, data.head])];
    data.attention = await att;
    data.decomposition = await dec;
  },
  qk: async (r) => {
    const { data } = r;
    const qk = r.analysis.cells.qk;
    const circuit = r.post('qk', 'qk', [data.layer, data.head, qk.qThrough(data.layer), qk.kThrough(data.layer)]);
    // a layer-1 head of a model with 2+ layers: the K-composition paths into it (induction structure)
    const paths = data.layer === 1 && r.post('qk', 'induction_paths');
    data.qk = await circuit;
    data.inductionPaths = paths ? (await paths).filter((p) => p.head === data.head) : [];
  },
  ov: async (r) => { r.data.ov = await r.post('ov', 'ov', [r.analysis.cells.ov.through(r.data.layer, r.data.head)]); },
  scores: async (r) => { r.data.report = await r.post('report', 'report'); },
  analyses: async (r) => {
    const { model, task } = r.analysis;
    if (!analysesApply(model, task)) {
      r.data.analyses = null;
      return;
    }
    const calls = analysesCalls(model, task).map(([k, m, args]) => [k, r.post('analyses', m, args)]);
    r.data.analyses = {};
    for (const [k, p] of calls) r.data.analyses[k] = await p;
  },
  interventions: async (r) => {
    const { data, analysis: a } = r;
    const ablation = r.want('interventions') || r.want('ablation');
    const patching = r.want('interventions') || r.want('patching');
    const table = ablation && r.post('ablation_table', 'ablation_table');
    const ablate = ablation && r.post('ablate', 'ablate', [JSON.stringify([...a.ablated].map((k) => k.split(',').map(Number))), a.ablationKind]);
    const inputs = patching && r.post('patching', 'patch_inputs');
    if (ablation) {
      data.table = await table;
      data.ablation = await ablate;
    }
    if (patching) await patch(r, await inputs);
  },
  circuit: async (r) => {
    const c = r.analysis.cells.circuit;
    const options = JSON.stringify(c.options());
    const circuit = r.post('circuit', 'circuit', [options, JSON.stringify(c.toggles())]);
    // the neuron view (when open): its own error, shown in its own part of the cell
    const neurons = c.neuronsOpen() && r.post('circuit_neurons', 'circuit_neurons', [options, JSON.stringify(c.neuronOptions())])
      .catch((e) => { if (e === CANCELLED) throw e; return { error: String(e.message ?? e) }; });
    neurons?.catch?.(() => {});
    // attribution against patching of every edge (when open): one run per edge, kept by the worker
    const agreement = c.agreementOpen() && r.post('circuit_agreement', 'circuit_agreement', [options])
      .catch((e) => { if (e === CANCELLED) throw e; return { error: String(e.message ?? e) }; });
    agreement?.catch?.(() => {});
    r.data.circuit = await circuit;
    r.data.circuitNeurons = neurons ? await neurons : null;
    r.data.circuitAgreement = agreement ? await agreement : null;
  },
};

/** The patching part of the Interventions cell, on the worker's default inputs `d`. */
async function patch(r, d) {
  const { data, analysis: a, parts } = r;
  const clean = view('view_clean') || d.clean;
  const corrupted = view('view_corrupt') || d.corrupted;
  data.patchInputs = { clean, corrupted };
  const { n_ctx: T, n_layers: L, n_heads: NH } = a.model;
  const patchTokens = L * (1 + T + NH * (T + 1)) * T;
  if (patchTokens > AUTO_PATCH_TOKENS && !(parts !== null && parts.includes('patching'))) {
    data.patchError = `Patching runs ${patchTokens.toLocaleString('en-US')} tokens for this model and task; press Patch to run it.`;
    return;
  }
  try {
    data.patching = await r.post('patching', 'patching', [clean, corrupted]);
  } catch (e) {
    if (e === CANCELLED) throw e;
    data.patchError = String(e.message ?? e);
  }
}

export class AnalysisRun {
  /** A run of `parts` (null: every analysis) of `analysis`, numbered `gen`. */
  constructor(analysis, parts, gen) {
    this.analysis = analysis;
    this.parts = parts;
    this.gen = gen;
    this.epoch = analysis.epoch;
    this.times = {}; // ms in the worker per analysis
    this.draw = {}; // ms drawing per cell
    this.data = {}; // the results the cells draw
    this.compute = 0;
    this.inWorker = 0;
    this.render = 0;
    this.t0 = performance.now();
    this.drawn0 = drawingMs();
  }

  /** Whether a newer run or another model superseded this run. */
  stale() {
    return this.gen !== this.analysis.gen || this.epoch !== this.analysis.epoch;
  }

  /** Whether analysis part `k` is asked for and its cell open. */
  want(k) {
    return (this.parts === null || this.parts.includes(k)) && this.analysis.isOpen(k);
  }

  /** Posts a call now; the promise resolves with its result (CANCELLED once this run is stale). */
  post(k, method, args) {
    const p = this.analysis.remote.timed(method, args, { run: this.gen }).then(({ result, ms }) => {
      if (this.stale()) throw CANCELLED;
      this.times[k] = +((this.times[k] ?? 0) + ms).toFixed(2);
      this.inWorker += ms;
      return result;
    }, (e) => {
      throw this.stale() || e.cancelled ? CANCELLED : e;
    });
    p.catch(() => {}); // awaited later, unless an earlier failure ends the run
    return p;
  }

  /** Waits for a fetch, counting the time the page waits on it (less heatmaps drawn meanwhile). */
  async wait(p) {
    const t = performance.now();
    const d = drawingMs();
    try {
      return await p;
    } finally {
      this.compute += performance.now() - t - (drawingMs() - d);
    }
  }

  /** Draws cell `k` from the results so far, in a task of its own. */
  async show(k) {
    await nextTask();
    if (this.stale()) throw CANCELLED;
    const t = performance.now();
    this.analysis.cells[k].update(this.data, this.analysis);
    const dt = performance.now() - t;
    this.draw[k] = +dt.toFixed(2);
    this.render += dt;
  }

  /** Posts every call, then draws the cells in turn as their results arrive. Resolves false
   * when the run was cancelled; a failure is kept in data.error. */
  async execute() {
    const { data, analysis: a } = this;
    const on = (k) => this.want(k) || (k === 'interventions' && (this.want('ablation') || this.want('patching')));
    const keys = Object.keys(FETCHES).filter(on);
    try {
      const selected = this.post('select', 'select', [view('view_step')]);
      data.layer = Math.min(view('view_layer'), a.model.n_layers - 1);
      data.head = Math.min(view('view_head'), a.model.n_heads - 1);
      const results = keys.map((k) => {
        const p = FETCHES[k](this);
        p.catch(() => {});
        return p;
      });
      data.selected = await this.wait(selected);
      for (const [i, k] of keys.entries()) {
        try {
          await this.wait(results[i]);
        } catch (e) {
          // a failed analysis (say, a typed input the task cannot read) is shown in its cell,
          // and the other cells still update
          if (e === CANCELLED || this.stale()) throw CANCELLED;
          data.error = String(e.message ?? e);
        }
        await this.show(k);
      }
      await drawn(); // the heatmaps the cells set are drawn in slices (heatmap.js)
      if (this.stale()) return false;
      this.draw.heatmaps = +(drawingMs() - this.drawn0).toFixed(2);
      this.render += this.draw.heatmaps;
    } catch (e) {
      if (e === CANCELLED || this.stale()) return false;
      data.error = String(e.message ?? e);
    }
    return true;
  }

  /** The run's record (interp stats): `due` is when it was asked for, `end` when it ended. */
  summary(due, end) {
    return { parts: this.parts ?? 'all', compute_ms: +this.compute.toFixed(2), worker_ms: +this.inWorker.toFixed(2),
      render_ms: +this.render.toFixed(2), wall_ms: +(end - Math.min(due, this.t0)).toFixed(2), times: this.times, draw: this.draw,
      selected: this.data.selected, error: this.data.error ?? null };
  }
}
