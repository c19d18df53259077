// The page's side of the analysis worker (analysis-worker.js): `call(method, args, transfer)`
// posts {id, method, args} and resolves with the result (or rejects with an Error carrying the
// worker's message); `timed` also gives the time the call spent inside the worker. The worker
// answers in order, one call at a time.

export class AnalysisWorker {
  constructor() {
    this.worker = new Worker(new URL('./analysis-worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map(); // id → {resolve, reject}
    this.seq = 0;
    this.worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      this.pending.delete(data.id);
      if ('error' in data) p.reject(new Error(data.error));
      else p.resolve(data);
    };
    this.worker.onerror = (e) => {
      const err = new Error(`the analysis worker failed: ${e.message ?? e}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  /** Runs `method(...args)` in the worker; `transfer`: buffers handed over (not copied). */
  async call(method, args = [], transfer = []) {
    return (await this.timed(method, args, transfer)).result;
  }

  /** Like `call`, resolving with {result, ms}: ms is the time spent in the worker's wasm call. */
  timed(method, args = [], transfer = []) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args }, transfer);
    });
  }
}
