// The page's side of the analysis worker (analysis-worker.js): `call(method, args, opts)`
// posts {id, method, args, run} and resolves with the result (or rejects with an Error
// carrying the worker's message); `timed` also gives the time the call spent inside the
// worker. The worker answers in order, one call at a time. A call made for analysis run `run`
// (opts.run) may be skipped by the worker once a call of a newer run has arrived: it then
// rejects with an error whose `cancelled` is true.

export class AnalysisWorker {
  constructor() {
    this.worker = new Worker(new URL('./analysis-worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map(); // id → {resolve, reject}
    this.seq = 0;
    this.worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      this.pending.delete(data.id);
      if (data.cancelled) p.reject(Object.assign(new Error(`${data.method}: superseded by a newer analysis run`), { cancelled: true }));
      else if ('error' in data) p.reject(new Error(data.error));
      else p.resolve(data);
    };
    this.worker.onerror = (e) => {
      const err = new Error(`the analysis worker failed: ${e.message ?? e}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  /**
   * Runs `method(...args)` in the worker. opts.transfer: buffers handed over (not copied);
   * opts.run: the analysis run the call belongs to (left out: the call is never skipped).
   */
  async call(method, args = [], opts = {}) {
    return (await this.timed(method, args, opts)).result;
  }

  /** Like `call`, resolving with {result, ms}: ms is the time spent in the worker's wasm call. */
  timed(method, args = [], { transfer = [], run } = {}) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args, run }, transfer);
    });
  }
}
