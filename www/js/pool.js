// The training worker's pool for data-parallel CPU training: k − 1 helper workers (pool-worker.js)
// and the training worker itself each compute the gradients of a fixed run of the batch's shards
// (Session.pool_plan; the training worker's run on the session's own engine, Session.pool_local);
// the session adds them along a fixed tree and takes one AdamW step (Session.step), so the run is
// bit-identical for every k. Weights go to the helpers with every job: in a SharedArrayBuffer when
// the page is cross-origin isolated (one copy for all), else as a transferred copy each. A helper
// that dies or fails mid-step is replaced and its job sent again. Isolated, in a worker, jobs and
// results go through SharedArrayBuffers too (pool-shared.js): the helper waits for its job, and the
// training worker for the results, in Atomics.wait, instead of waiting for messages to be delivered.
import { readResult, resultArea, jobArea, writeJob, detachJob, spin } from './pool-shared.js';
// The training worker spins this long for a helper's result before it sleeps in Atomics.wait: a
// wake-up from the futex takes ~0.1-0.3 ms on a 2-core VM, a spin sees the result at once (this
// core has nothing else to do meanwhile; measured: 2 workers 1.75 -> 1.81x one, BENCHMARKS.md).
const SPIN_MS = 2;

const MAX_TRIES = 3;
// The phases of a step on the training worker, timed when profiling (startProfile): plan the batch,
// take the weights out of the session, post the helpers' jobs, compute run 0 here (on the session's
// own engine), wait for the helpers, hand their results in, then combine + AdamW + metrics (Session.step).
const PHASES = ['plan', 'weights', 'post', 'local', 'wait', 'supply', 'update'];
// a clock shared by every worker of the page (performance.now() counts from each worker's own start)
const now = () => performance.timeOrigin + performance.now();

/** The pool size for the `workers` setting: at most 8 (a batch has at most 8 shards); 0 = one per core but one (what `workers` auto uses until it has measured, pool-pick.js). */
export function poolSize(setting, cores = self.navigator?.hardwareConcurrency ?? 2) {
  if (setting > 0) return Math.min(setting, 8);
  return Math.max(1, Math.min(8, cores - 1));
}

export class Pool {
  // `pkg`: the www/ folder of the wasm build the helpers load (benchmarks compare builds; the page
  // leaves it out and every worker picks the same build, wasm-pick.js).
  constructor(ShardWorker, { pkg = null } = {}) {
    this.pkg = pkg;
    this.ShardWorker = ShardWorker;
    this.helpers = [];
    this.spec = null; // {task, model} JSON texts the helpers were made for
    this.nextId = 1;
    this.killDuring = null; // tests: terminate this helper right after its next job is sent
    this.onReplace = () => {};
    this.profile = null; // total ms per phase when profiling (startProfile)
    this.sync = false; // results come through SharedArrayBuffers (pool-shared.js) this step
    this.wshared = null; // the weights' SharedArrayBuffer (isolated pages)
  }

  /** Makes sure `n` helpers exist for the session's task and model (remade when those change). */
  resize(n, session) {
    const info = session.info();
    const spec = { task: JSON.stringify(info.task), model: JSON.stringify(info.model) };
    if (!this.spec || spec.task !== this.spec.task || spec.model !== this.spec.model) {
      this.close();
      this.spec = spec;
    }
    while (this.helpers.length > n) this.helpers.pop().w.terminate();
    while (this.helpers.length < n) this.helpers.push(this.spawn());
  }

  spawn() {
    const url = new URL('./pool-worker.js', import.meta.url);
    if (this.pkg) url.searchParams.set('pkg', this.pkg);
    const w = new Worker(url, { type: 'module' });
    const h = { w, job: null, dead: null, isReady: false };
    h.ready = new Promise((resolve, reject) => {
      w.onmessage = ({ data: m }) => {
        if (m.type === 'loaded') w.postMessage({ type: 'init', ...this.spec });
        else if (m.type === 'ready') {
          h.isReady = true;
          resolve();
        }
        else if (m.type === 'result' && h.job?.id === m.id && !h.job.over) h.job.resolve(this.received(h, m));
        else if (m.type === 'error' && h.job?.id === m.id) h.job.reject(new Error(m.message));
        else if (m.type === 'error') reject(new Error(m.message));
      };
      w.onerror = (e) => {
        e.preventDefault?.();
        const err = new Error(`a pool worker failed: ${e.message ?? 'no message'}`);
        h.dead = err;
        reject(err);
        h.job?.reject(err);
      };
    });
    h.ready.catch(() => {});
    return h;
  }

  // Sends one job to helper i; resolves with its result or rejects when the helper dies or fails.
  // A ready helper gets the job at once (not after a microtask): the caller computes its own run
  // right after, synchronously, and a job posted later would wait for that (the two runs in series).
  send(i, weights, plan, run) {
    const h = this.helpers[i];
    if (h.dead) return Promise.reject(h.dead);
    return h.isReady ? this.post(i, h, weights, plan, run) : h.ready.then(() => this.post(i, h, weights, plan, run));
  }

  post(i, h, weights, plan, run) {
    const id = this.nextId++;
    const done = new Promise((resolve, reject) => {
      const job = { id, sent: now(), over: false };
      job.resolve = (r) => { job.over = true; job.ok = true; resolve(r); };
      job.reject = (e) => { job.over = true; reject(e); };
      h.job = job;
    });
    if (this.sync) {
      // isolated, in a worker: the job through the helper's job area (it waits on it in Atomics.wait)
      const out = this.area(h, weights.length, plan.scored);
      this.attach(h, out, weights);
      writeJob(h.jobs, id, plan, run);
      if (this.profile) this.profile.sharedJobs += 1;
    } else {
      const shared = typeof SharedArrayBuffer !== 'undefined' && weights.buffer instanceof SharedArrayBuffer;
      const w = shared ? weights : weights.slice();
      h.w.postMessage({ type: 'job', id, weights: w, tokens: plan.tokens, targets: plan.targets, batch: plan.batch,
        lo: run[0], hi: run[1], out: null }, shared ? [] : [w.buffer]);
    }
    if (this.killDuring === i) {
      this.killDuring = null;
      h.w.terminate();
      h.job.reject(new Error('pool worker terminated mid-step'));
    }
    return done;
  }

  // Helper i's job, on a fresh helper when the one there dies or fails (MAX_TRIES in all).
  async job(i, weights, plan, run) {
    for (let t = 1; ; t++) {
      try {
        return await this.send(i, weights, plan, run); // posted synchronously when the helper is ready
      } catch (err) {
        if (t >= MAX_TRIES) throw err;
        this.helpers[i].w.terminate();
        this.helpers[i] = this.spawn();
        this.onReplace(i, String(err?.message ?? err));
      }
    }
  }

  // A helper's result; with profiling on, its compute time and the messages' latency are added up.
  received(h, m) {
    const p = this.profile;
    if (p) {
      const t = now();
      p.helper += m.t1 - m.t0;
      p.toHelper += m.t0 - h.job.sent;
      p.fromHelper += t - m.t1;
    }
    return m.r;
  }

  // Makes sure helper h serves a job area with result area `out` and `weights`: a new result area
  // or weights buffer detaches the old job area and a new one is sent to the helper.
  attach(h, out, weights) {
    if (h.attached?.out === out && h.attached.weights === weights) return;
    if (h.attached) detachJob(h.jobs);
    h.jobs = jobArea();
    h.attached = { out, weights };
    h.w.postMessage({ type: 'attach', job: { buf: h.jobs.buf }, out: { buf: out.buf, p: out.p, argmaxLen: out.argmaxLen }, weights });
  }

  // Helper h's result area for `p` parameters and `argmax` scored rows, reset to 'working'.
  area(h, p, argmax) {
    if (h.area?.p !== p || h.area.argmaxLen !== argmax) h.area = resultArea(p, argmax);
    Atomics.store(h.area.ctl, 0, 0);
    return h.area;
  }

  // Isolated: blocks until helper h has written its job's result (or the job ended otherwise),
  // resolving the job: spinning up to SPIN_MS, then in Atomics.wait; every 20 ms it lets messages
  // in (a dead helper's error event).
  async collect(h) {
    const a = h.area;
    while (h.job && !h.job.over) {
      const state = Atomics.load(a.ctl, 0);
      if (state === 1) {
        if (this.profile) this.profile.shared += 1;
        h.job.resolve(this.received(h, readResult(a)));
      }
      else if (state === 2) await tick();
      else if (!spin(a.ctl, 0, 0, SPIN_MS) && Atomics.wait(a.ctl, 0, 0, 20) === 'timed-out') await tick();
    }
  }

  // Isolated: takes the results of helpers `want` from their result areas until each has one (a
  // replacement for a helper that died gets its job once it is ready) or a job has failed for good.
  async collectAll(jobs, want) {
    let settled = false;
    Promise.allSettled(jobs).then(() => { settled = true; });
    while (want.size && !settled) {
      for (const i of want) {
        const h = this.helpers[i];
        if (h.job?.ok) want.delete(i);
        else if (h.job && !h.job.over) await this.collect(h);
        else await tick(); // its job failed: the retry (a fresh helper) is on its way
      }
    }
  }

  /**
   * One training step of `session` over `k` workers (the session and the first k − 1 helpers; all
   * of them by default); returns its metrics rows (empty when done).
   */
  async step(session, workers = this.helpers.length + 1) {
    const k = Math.max(1, Math.min(workers, this.helpers.length + 1));
    const used = this.helpers.slice(0, k - 1);
    // new helpers load their wasm first: a job queued on that would start after run 0 here
    if (used.some((h) => !h.isReady && !h.dead)) await Promise.allSettled(used.map((h) => h.ready));
    const p = this.profile;
    const t = [now()];
    const lap = () => t.push(now());
    // Isolated and in a worker (Atomics.wait blocks: allowed in a worker, not on a page's main thread):
    // jobs and results through SharedArrayBuffers, the helpers making the batch from seed and step.
    this.sync = self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined' && typeof WorkerGlobalScope !== 'undefined';
    const plan = session.pool_plan(k, !this.sync);
    if (!plan) return [];
    lap();
    const weights = this.weightsFor(session);
    lap();
    // helpers past the batch's shard count (a small batch) get empty runs: nothing is sent to them
    const busy = plan.runs.slice(1).flatMap((run, i) => (run[0] < run[1] ? [i] : []));
    const jobs = busy.map((i) => this.job(i, weights, plan, plan.runs[i + 1]));
    lap();
    session.pool_local(); // run 0, on the session's own engine and weights
    lap();
    if (this.sync) await this.collectAll(jobs, new Set(busy));
    const theirs = await Promise.all(jobs);
    lap();
    for (const r of theirs) session.pool_supply(r);
    lap();
    const rows = session.step(1);
    lap();
    if (p) {
      PHASES.forEach((name, i) => { p[name] += t[i + 1] - t[i]; });
      p.steps += 1;
    }
    return rows;
  }

  // The session's weights for the helpers: in a SharedArrayBuffer when the page is cross-origin
  // isolated (helpers read one copy; the same buffer every step: the helpers are done with it when
  // the next step starts; written straight from the session), else a fresh array.
  weightsFor(session) {
    if (!self.crossOriginIsolated || typeof SharedArrayBuffer === 'undefined') return session.weights();
    if (!this.wshared) {
      const n = session.weights().length;
      this.wshared = new Float32Array(new SharedArrayBuffer(4 * n));
    }
    try {
      session.weights_into(this.wshared);
    } catch {
      // another model's session (its parameter count differs): a buffer of its size
      this.wshared = new Float32Array(new SharedArrayBuffer(4 * session.weights().length));
      session.weights_into(this.wshared);
    }
    return this.wshared;
  }

  /** Turns per-phase timing on (see PHASES) and zeroes it; `profile` then holds total ms per phase
   * (and `shared`, `sharedJobs`: the helper results taken from, and jobs given through, SharedArrayBuffers). */
  startProfile() {
    this.profile = { steps: 0, shared: 0, sharedJobs: 0, helper: 0, toHelper: 0, fromHelper: 0 };
    for (const name of PHASES) this.profile[name] = 0;
  }

  /** Up to n steps on k workers (all by default); their metrics rows. */
  async steps(session, n, k = this.helpers.length + 1) {
    let rows = [];
    for (let i = 0; i < n; i++) {
      const r = await this.step(session, k);
      if (!r.length) break;
      rows = rows.concat(r);
    }
    return rows;
  }

  close() {
    for (const h of this.helpers) h.w.terminate();
    this.helpers = [];
    this.spec = null;
    this.wshared = null;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
