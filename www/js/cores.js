// How the page's compute workers share the machine's cores. The budget is one worker per core
// but one (that core is left to the page: drawing, the analysis worker). Training on the CPU uses
// a pool of k workers (pool.js, the `workers` setting); a sweep runs one run per worker (sweep.js,
// `sweep_workers`). While a sweep runs, the sweep comes first: it takes the budget (less one
// worker when a training run is going on, so that run keeps a core), and the training pool is
// capped to what is left, at least its own worker. When the sweep ends the cap is lifted. Training
// is bit-identical for every k, so resizing the pool mid-run changes no result.

/** The cores the browser reports (2 where it does not say). */
export function cores() {
  return (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 2;
}

/** Compute workers the page runs at once by default: one per core but one, at least 1. */
export function budget(n = cores()) {
  return Math.max(1, n - 1);
}

/**
 * Workers for a sweep: the `sweep_workers` setting when positive (the user's choice), else the
 * budget, less one when a training run is going on (at least 1).
 */
export function sweepWorkers(setting, training, n = cores()) {
  return setting > 0 ? setting : Math.max(1, budget(n) - (training ? 1 : 0));
}

/** The training pool's cap while a sweep runs on `sweep` workers: what is left of the budget, at least 1. */
export function trainingCap(sweep, n = cores()) {
  return Math.max(1, budget(n) - sweep);
}
