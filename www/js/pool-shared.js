// A pool helper's result in a SharedArrayBuffer (cross-origin isolated pages, pool.js): the helper
// writes its ShardWorker.grads result there and wakes the training worker with Atomics.notify, so
// the training worker, blocked in Atomics.wait right after its own run, takes the result without
// waiting for a message to be delivered (about a millisecond per step on a busy 2-core machine).
// The helper still posts the result as a message too: that path delivers it when nobody waits.
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

/** Helper side: writes result `r` (ShardWorker.grads) and the compute times, then wakes the waiter. */
export function writeResult(a, r, t0, t1) {
  const n = r.rows.length;
  if (n > MAX_NODES || r.grads.length > a.grads.length || r.argmax.length > a.argmax.length) {
    return fail(a);
  }
  a.f64[0] = t0;
  a.f64[1] = t1;
  a.f64.set(r.nodes, 2);
  a.f64.set(r.losses, 2 + 3 * MAX_NODES);
  a.f64.set(r.rows, 2 + 4 * MAX_NODES);
  a.argmax.set(r.argmax);
  a.grads.set(r.grads);
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
