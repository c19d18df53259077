// The training worker's pool for data-parallel CPU training: k − 1 helper workers (pool-worker.js)
// and the training worker itself each compute the gradients of a fixed run of the batch's shards
// (Session.pool_plan); the session adds them along a fixed tree and takes one AdamW step
// (Session.step), so the run is bit-identical for every k. Weights go to the helpers with every
// job: in a SharedArrayBuffer when the page is cross-origin isolated (one copy for all), else as a
// transferred copy each. A helper that dies or fails mid-step is replaced and its job sent again.

const MAX_TRIES = 3;

/** The pool size for the `workers` setting: 0 = one per core but one; at most 8 (a batch has at most 8 shards). */
export function poolSize(setting, cores = self.navigator?.hardwareConcurrency ?? 2) {
  if (setting > 0) return Math.min(setting, 8);
  return Math.max(1, Math.min(8, cores - 1));
}

export class Pool {
  constructor(ShardWorker) {
    this.local = null; // {spec, engine}: the training worker's own ShardWorker
    this.ShardWorker = ShardWorker;
    this.helpers = [];
    this.spec = null; // {task, model} JSON texts the helpers were made for
    this.nextId = 1;
    this.killDuring = null; // tests: terminate this helper right after its next job is sent
    this.onReplace = () => {};
  }

  /** Makes sure `n` helpers exist for the session's task and model (remade when those change). */
  resize(n, session) {
    const info = session.info();
    const spec = { task: JSON.stringify(info.task), model: JSON.stringify(info.model) };
    if (!this.spec || spec.task !== this.spec.task || spec.model !== this.spec.model) {
      this.close();
      this.spec = spec;
      this.local = new this.ShardWorker(spec.task, spec.model);
    }
    while (this.helpers.length > n) this.helpers.pop().w.terminate();
    while (this.helpers.length < n) this.helpers.push(this.spawn());
  }

  spawn() {
    const w = new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module' });
    const h = { w, job: null, dead: null };
    h.ready = new Promise((resolve, reject) => {
      w.onmessage = ({ data: m }) => {
        if (m.type === 'loaded') w.postMessage({ type: 'init', ...this.spec });
        else if (m.type === 'ready') resolve();
        else if (m.type === 'result' && h.job?.id === m.id) h.job.resolve(m.r);
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
  async send(i, weights, plan, run) {
    const h = this.helpers[i];
    await h.ready;
    const id = this.nextId++;
    const shared = typeof SharedArrayBuffer !== 'undefined' && weights.buffer instanceof SharedArrayBuffer;
    const w = shared ? weights : weights.slice();
    const done = new Promise((resolve, reject) => { h.job = { id, resolve, reject }; });
    h.w.postMessage({ type: 'job', id, weights: w, tokens: plan.tokens, targets: plan.targets, batch: plan.batch, lo: run[0], hi: run[1] },
      shared ? [] : [w.buffer]);
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
        return await this.send(i, weights, plan, run);
      } catch (err) {
        if (t >= MAX_TRIES) throw err;
        this.helpers[i].w.terminate();
        this.helpers[i] = this.spawn();
        this.onReplace(i, String(err?.message ?? err));
      }
    }
  }

  /** One training step of `session` over the pool; returns its metrics rows (empty when done). */
  async step(session) {
    const k = this.helpers.length + 1;
    const plan = session.pool_plan(k);
    if (!plan) return [];
    const weights = shareable(session.weights());
    // helpers past the batch's shard count (a small batch) get empty runs: nothing is sent to them
    const jobs = plan.runs.slice(1).flatMap((run, i) => (run[0] < run[1] ? [this.job(i, weights, plan, run)] : []));
    const mine = this.local.grads(weights, plan.tokens, plan.targets, plan.batch, plan.runs[0][0], plan.runs[0][1]);
    session.pool_supply(mine);
    for (const r of await Promise.all(jobs)) session.pool_supply(r);
    return session.step(1);
  }

  /** Up to n steps; their metrics rows. */
  async steps(session, n) {
    let rows = [];
    for (let i = 0; i < n; i++) {
      const r = await this.step(session);
      if (!r.length) break;
      rows = rows.concat(r);
    }
    return rows;
  }

  close() {
    for (const h of this.helpers) h.w.terminate();
    this.helpers = [];
    this.local?.free();
    this.local = null;
    this.spec = null;
  }
}

// The weights in a SharedArrayBuffer when the page is cross-origin isolated (helpers read one copy).
function shareable(w) {
  if (!self.crossOriginIsolated || typeof SharedArrayBuffer === 'undefined') return w;
  const s = new Float32Array(new SharedArrayBuffer(w.byteLength));
  s.set(w);
  return s;
}
