// A pool helper's result in a SharedArrayBuffer (cross-origin isolated pages, pool.js): the helper
// writes its ShardWorker.grads result there and wakes the training worker with Atomics.notify, so
// the training worker, blocked in Atomics.wait right after its own run, takes the result without
// waiting for a message to be delivered (about a millisecond per step on a busy 2-core machine).
// A helper given its job by message posts the result as a message too (that path delivers it when
// nobody waits); one given its job through its job area (below) only writes it here.
//
// Layout: Int32 header [state (0 working, 1 done, 2 failed), nodes, losses, argmax]; Float64
// [t0, t1, meta (3 per node), losses, rows (1 per node)]; Uint32 argmax (A,); Float32 grads (nodes, P).

const HEADER = 16; // bytes
const MAX_NODES = 8; // a run of at most 8 shards is covered by at most 8 tree nodes
const F64 = 2 + 5 * MAX_NODES; // t0, t1, meta, losses, rows

/** A result area for a model of `p` parameters and batches of at most `argmax` scored rows (B, P_pred). */
export function resultArea(p, argmax) {
  const bytes = HEADER + 8 * F64 + 4 * argmax + 4 * MAX_NODES * p;
  return openArea({ buf: new SharedArrayBuffer(bytes), p, argmaxLen: argmax });
}

/** The views of an area (as sent to another worker: its SharedArrayBuffer and the sizes it was made for). */
export function openArea({ buf, p, argmaxLen }) {
  const at = HEADER + 8 * F64;
  return {
    buf, p, argmaxLen,
    ctl: new Int32Array(buf, 0, 4),
    f64: new Float64Array(buf, HEADER, F64),
    argmax: new Uint32Array(buf, at, argmaxLen),
    grads: new Float32Array(buf, at + 4 * argmaxLen, MAX_NODES * p),
  };
}

/** Helper side: writes result `r` (ShardWorker.grads; or .grads_into, its gradients already in
 * `a.grads`) and the compute times, then wakes the waiter. */
export function writeResult(a, r, t0, t1) {
  const n = r.rows.length;
  if (n > MAX_NODES || (r.grads && r.grads.length > a.grads.length) || r.argmax.length > a.argmax.length) {
    return fail(a);
  }
  a.f64[0] = t0;
  a.f64[1] = t1;
  a.f64.set(r.nodes, 2);
  a.f64.set(r.losses, 2 + 3 * MAX_NODES);
  a.f64.set(r.rows, 2 + 4 * MAX_NODES);
  a.argmax.set(r.argmax);
  if (r.grads) a.grads.set(r.grads);
  a.ctl[1] = n;
  a.ctl[2] = r.losses.length;
  a.ctl[3] = r.argmax.length;
  Atomics.store(a.ctl, 0, 1);
  Atomics.notify(a.ctl, 0);
}

/** Helper side: the job failed (its error message follows); wakes the waiter. */
export function fail(a) {
  Atomics.store(a.ctl, 0, 2);
  Atomics.notify(a.ctl, 0);
}

/** Training worker side: the result written to `a`, as ShardWorker.grads gives it (views, not copies), with t0, t1. */
export function readResult(a) {
  const [n, nl, na] = [a.ctl[1], a.ctl[2], a.ctl[3]];
  return {
    r: {
      nodes: a.f64.subarray(2, 2 + 3 * n),
      losses: a.f64.subarray(2 + 3 * MAX_NODES, 2 + 3 * MAX_NODES + nl),
      rows: a.f64.subarray(2 + 4 * MAX_NODES, 2 + 4 * MAX_NODES + n),
      argmax: a.argmax.subarray(0, na),
      grads: a.grads.subarray(0, n * a.p),
    },
    t0: a.f64[0],
    t1: a.f64[1],
  };
}

// A helper's job area (isolated pages, pool.js → pool-worker.js): the training worker writes a
// step's job there and wakes the helper, which waits on it with Atomics.wait between jobs instead
// of waiting for a message to be delivered. A job is numbers only: the helper makes the step's
// batch itself from the data seed and step (ShardWorker.step_grads_into); the weights stay in
// their own SharedArrayBuffer.
//
// Layout: Int32 [seq (the job's id; 0 = none yet), state (0 attached, 1 detached), batch, lo, hi,
// seed low, seed high, step low, step high] (the u64s as two u32 halves).
const JOB_FIELDS = 9;
export const JOB_SEQ = 0;
const JOB_STATE = 1;

/** A job area. */
export function jobArea() {
  return openJobArea({ buf: new SharedArrayBuffer(4 * JOB_FIELDS) });
}

/** The views of a job area (as sent to another worker). */
export function openJobArea({ buf }) {
  return { buf, ctl: new Int32Array(buf, 0, JOB_FIELDS) };
}

const halves = (x) => [Number(x & 0xffffffffn) | 0, Number(x >> 32n) | 0];
const whole = (lo, hi) => BigInt(lo >>> 0) | (BigInt(hi >>> 0) << 32n);

/** Training worker side: publishes job `id` (> 0) of `plan` (Session.pool_plan) for shards `run` and wakes the helper. */
export function writeJob(a, id, plan, [lo, hi]) {
  a.ctl.set([plan.batch, lo, hi, ...halves(BigInt(plan.seed)), ...halves(BigInt(plan.step))], 2);
  Atomics.store(a.ctl, JOB_SEQ, id);
  Atomics.notify(a.ctl, JOB_SEQ);
}

/** Helper side: the job last published in `a`: {id, batch, lo, hi, seed, step (BigInt)}. */
export function readJob(a) {
  const c = a.ctl;
  return { id: c[JOB_SEQ], batch: c[2], lo: c[3], hi: c[4], seed: whole(c[5], c[6]), step: whole(c[7], c[8]) };
}

/** Training worker side: tells the helper waiting on `a` to go back to its messages (a new area follows). */
export function detachJob(a) {
  Atomics.store(a.ctl, JOB_STATE, 1);
  Atomics.notify(a.ctl, JOB_SEQ);
}

/** Helper side: whether `a` was detached. */
export const isDetached = (a) => Atomics.load(a.ctl, JOB_STATE) === 1;

/** Spins until ctl[i] is no longer `value` or `ms` have passed; whether it changed. */
export function spin(ctl, i, value, ms) {
  const end = performance.now() + ms;
  while (Atomics.load(ctl, i) === value) if (performance.now() > end) return false;
  return true;
}
