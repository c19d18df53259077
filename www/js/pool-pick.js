// The `workers` setting's auto (0): how many CPU workers train this model fastest, measured on the
// run's own first steps. Training is bit-identical for every k (pool.js), so the calibration's steps
// are the run's real steps: nothing is thrown away. The candidates are 1, 2, 4, 8 workers up to the
// cores the browser reports and the shards a batch is cut into; each is warmed up (helpers load and compile their wasm), then timed
// ROUNDS times, interleaved, so a machine whose load changes hurts every k alike. A larger pool is
// kept only when it is MARGIN× faster than the best smaller one: a small model, whose step is
// shorter than the pool's hand-offs, stays on one worker (the crossover, measured, not assumed).
// Pure logic: tested in node with injected timings (tests/js/pool-pick.test.mjs).

/** A larger pool must take at most 1 / MARGIN the time per step of the best smaller one. */
export const MARGIN = 1.1;
// Each candidate runs at least WARM_MS and WARM_STEPS steps before it is timed (discarded); a timed
// sample is steps of one k adding up to at least SAMPLE_MS. Measured (bench-auto-browser, 2 cores,
// isolated): with 200 / 60 ms, 2 workers on d_model 64 timed 6.02 ms against 6.04 on one, and
// sort-ref's ratio came out 1.34×; with 400 / 150 ms, 1.38-1.55× on d_model 32-128 in every run,
// the calibration taking ~2 s of the run's steps.
export const WARM_MS = 400;
export const WARM_STEPS = 3;
export const SAMPLE_MS = 150;
/** Timed samples of each k, interleaved; the median is compared. */
export const ROUNDS = 3;

/**
 * The pool sizes measured on a machine with `cores` cores for batches cut into `shards` shards
 * (Session.pool_shards: a worker past that count has nothing to do): 1, 2, 4, 8 up to both.
 */
export function candidates(cores, shards = 8) {
  const top = Math.max(1, Math.min(8, Math.floor(cores) || 1, Math.floor(shards) || 1));
  const out = [];
  for (let k = 1; k <= top; k *= 2) out.push(k);
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (x) => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
const workersText = (k) => `${k} worker${k === 1 ? '' : 's'}`;

/**
 * The pool size to keep from median ms per step by k (`{1: 14.5, 2: 8.1}`): k ascending, a larger k
 * replaces the one kept so far only when MARGIN× faster than every smaller k (so {1: 10, 2: 9.2,
 * 4: 9.0} keeps 1: 4 is 10% faster than 1 but not than 2). Returns `{k, note}`.
 */
export function decideK(msPerStep, margin = MARGIN) {
  const ks = Object.keys(msPerStep).map(Number).filter((k) => Number.isFinite(msPerStep[k])).sort((a, b) => a - b);
  if (!ks.length) return { k: 1, note: 'CPU workers auto: nothing could be timed; 1 worker' };
  let best = ks[0];
  let fastest = msPerStep[best]; // of the sizes below k
  for (const k of ks.slice(1)) {
    if (msPerStep[k] * margin <= fastest) best = k;
    fastest = Math.min(fastest, msPerStep[k]);
  }
  const figures = ks.map((k) => `${k}: ${ms(msPerStep[k])}`).join(', ');
  const faster = best > ks[0] ? `${(msPerStep[ks[0]] / msPerStep[best]).toFixed(2)}× as fast as ${workersText(ks[0])}` : '';
  const more = best < ks[ks.length - 1] ? `more were not ${Math.round((margin - 1) * 100)}% faster` : '';
  const why = [faster, more].filter(Boolean).join('; ');
  return { k: best, note: `CPU workers auto, measured per step (${figures}): ${workersText(best)}${why ? `, ${why}` : ''}` };
}

/**
 * The calibration of one run: `next()` says which k the next steps run on and at most how many;
 * `record(k, steps, ms)` takes their time. When `done`, `decision` is `{k, note, msPerStep}`.
 */
export class PoolCalibration {
  // `why`: the note's reason when there is one candidate only (nothing to measure)
  constructor(ks, why = 'one candidate') {
    this.ks = ks.length ? ks : [1];
    this.warm = new Map(this.ks.map((k) => [k, { ms: 0, steps: 0 }]));
    this.samples = new Map(this.ks.map((k) => [k, []]));
    this.open = { ms: 0, steps: 0 }; // the sample being summed up
    this.decision = this.ks.length > 1 ? null
      : { k: this.ks[0], note: `CPU workers auto: ${workersText(this.ks[0])}, ${why}`, msPerStep: {} };
  }

  get done() {
    return this.decision !== null;
  }

  // the k still warming up (ascending), else the k whose sample comes next (round-robin), else null
  current() {
    const cold = this.ks.find((k) => {
      const w = this.warm.get(k);
      return w.ms < WARM_MS || w.steps < WARM_STEPS;
    });
    if (cold !== undefined) return { k: cold, warm: true };
    const n = Math.min(...this.ks.map((k) => this.samples.get(k).length));
    if (n >= ROUNDS) return null;
    return { k: this.ks.find((k) => this.samples.get(k).length === n), warm: false };
  }

  /** The next steps: `{k, steps}` (steps: how many to run at most), or null when done. */
  next() {
    if (this.done) return null;
    const c = this.current();
    if (!c) return null;
    const w = this.warm.get(c.k);
    const per = w.steps > 0 ? w.ms / w.steps : 0;
    const target = c.warm ? Math.max(WARM_MS - w.ms, 1) : SAMPLE_MS - this.open.ms;
    const steps = per > 0 ? Math.ceil(target / per) : 1;
    return { k: c.k, steps: Math.max(1, Math.min(steps, c.warm ? 50 : 200)) };
  }

  /** `steps` steps ran on k workers in `ms` milliseconds (a run that ended early: fewer steps). */
  record(k, steps, ms) {
    const c = this.current();
    if (!c || c.k !== k || !(steps > 0)) return;
    if (c.warm) {
      const w = this.warm.get(k);
      w.ms += ms;
      w.steps += steps;
      return;
    }
    this.open.ms += ms;
    this.open.steps += steps;
    if (this.open.ms < SAMPLE_MS) return;
    this.samples.get(k).push(this.open.ms / this.open.steps);
    this.open = { ms: 0, steps: 0 };
    if (!this.current()) this.decide();
  }

  decide() {
    const msPerStep = Object.fromEntries(this.ks.map((k) => [k, median(this.samples.get(k))]));
    this.decision = { ...decideK(msPerStep), msPerStep };
  }
}
