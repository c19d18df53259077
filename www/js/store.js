// The run store: every experiment in IndexedDB, so a reload or a crash loses at most the
// last few seconds of training. Two object stores, both keyed by run id:
//   runs  {id, name, created, updated, status, task, model, train, source,
//          steps_done, final_loss, final_token_acc}   (small: the Runs table; finals are means of the last 20 steps)
//   data  {id, metrics: {step, loss, token_acc, seq_acc, algo_acc, grad_norm, lr, per_pos_acc} as typed arrays,
//          ckpt: {weights (safetensors bytes), step, adam_t, adam_m, adam_v, schedule (JSON)}, snapshots: [],
//          splits: [{step, train, test, full}] (a finite dataset's train/test curve points; absent in older runs)}
// Every failure, the storage quota above all, rejects with an Error whose message says what
// happened; callers show it (nothing here fails silently).

const DB = 'toyformer';
const VERSION = 1;
let dbPromise = null;

function open() {
  dbPromise ??= new Promise((resolve, reject) => {
    let req;
    try {
      req = indexedDB.open(DB, VERSION);
    } catch (e) {
      reject(storeError(e, 'opening the run store'));
      return;
    }
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('runs')) db.createObjectStore('runs', { keyPath: 'id' });
      if (!db.objectStoreNames.contains('data')) db.createObjectStore('data', { keyPath: 'id' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(storeError(req.error, 'opening the run store'));
    req.onblocked = () => reject(new Error('the run store is blocked by another tab of this page: close it and reload'));
  });
  dbPromise.catch(() => { dbPromise = null; });
  return dbPromise;
}

/** A readable Error for a DOMException from IndexedDB; quota errors say what to do. */
export function storeError(e, doing) {
  const name = e?.name ?? 'Error';
  const quota = name === 'QuotaExceededError';
  const err = new Error(quota
    ? `${doing} failed: the browser's storage quota for this page is full (QuotaExceededError). Delete old runs in the Runs cell or export this model to a file.`
    : `${doing} failed: ${name}${e?.message ? `: ${e.message}` : ''}`);
  return Object.assign(err, { quota, store: true });
}

/** Runs `fn(stores)` in one transaction over `names`; resolves with fn's result when it commits. */
async function tx(names, mode, doing, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    let t;
    let result;
    try {
      t = db.transaction(names, mode);
      const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
      result = fn(stores);
    } catch (e) {
      // put() throws synchronously for some errors (a quota check, a value it cannot clone)
      try { t?.abort(); } catch { /* already finished */ }
      reject(storeError(e, doing));
      return;
    }
    t.oncomplete = async () => resolve(await result);
    t.onabort = () => reject(storeError(t.error, doing));
    t.onerror = (ev) => ev.preventDefault(); // reported by onabort with the transaction's error
  });
}

const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });

const COLUMNS = { step: Uint32Array, loss: Float32Array, token_acc: Float32Array, seq_acc: Float32Array, algo_acc: Float32Array,
  grad_norm: Float32Array, lr: Float64Array };

/** Metrics rows [{step, loss, token_acc, seq_acc, algo_acc, grad_norm, lr, per_pos_acc}] as typed
 * columns (per_pos_acc flattened, P values a row); exact for the f32 values the worker reports. */
export function packMetrics(rows) {
  const n = rows.length;
  const m = Object.fromEntries(Object.entries(COLUMNS).map(([k, T]) => [k, new T(n)]));
  const p = rows[0]?.per_pos_acc?.length ?? 0;
  m.per_pos_acc = new Float32Array(n * p);
  m.P = p;
  rows.forEach((r, i) => {
    for (const k of Object.keys(COLUMNS)) m[k][i] = r[k];
    if (p) m.per_pos_acc.set(r.per_pos_acc, i * p);
  });
  return m;
}

/** The inverse of packMetrics. */
export function unpackMetrics(m) {
  if (!m) return [];
  return Array.from(m.step, (_, i) => {
    const r = Object.fromEntries(Object.keys(COLUMNS).map((k) => [k, m[k][i]]));
    r.per_pos_acc = Array.from(m.per_pos_acc.subarray(i * m.P, (i + 1) * m.P));
    return r;
  });
}

/** A new run id: time-ordered and unique. */
export function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Writes a run's record, and its data when given ({metrics rows, ckpt, snapshots, splits}). */
export function saveRun(run, data) {
  return tx(data ? ['runs', 'data'] : ['runs'], 'readwrite', 'saving the run', (s) => {
    s.runs.put({ ...run, updated: Date.now() });
    if (data) s.data.put({ id: run.id, metrics: packMetrics(data.rows), ckpt: data.ckpt, snapshots: data.snapshots ?? [],
      splits: data.splits ?? [] });
  });
}

/** Every run record, newest first. */
export async function listRuns() {
  const all = await tx(['runs'], 'readonly', 'listing runs', (s) => req(s.runs.getAll()));
  return all.sort((a, b) => b.created - a.created);
}

/** {run, rows, ckpt, snapshots, splits} of one run, or null. */
export async function loadRun(id) {
  const [run, data] = await tx(['runs', 'data'], 'readonly', 'reading the run', (s) => Promise.all([req(s.runs.get(id)), req(s.data.get(id))]));
  if (!run) return null;
  return { run, rows: unpackMetrics(data?.metrics), ckpt: data?.ckpt ?? null, snapshots: data?.snapshots ?? [],
    splits: data?.splits ?? [] };
}

/** The loss curve of a run: {step, loss} typed arrays (for comparisons). */
export async function loadMetrics(id) {
  const data = await tx(['data'], 'readonly', 'reading the run', (s) => req(s.data.get(id)));
  return data?.metrics ?? null;
}

export async function renameRun(id, name) {
  return tx(['runs'], 'readwrite', 'renaming the run', (s) => {
    const r = s.runs.get(id);
    r.onsuccess = () => { if (r.result) s.runs.put({ ...r.result, name, updated: Date.now() }); };
  });
}

export function deleteRun(id) {
  return tx(['runs', 'data'], 'readwrite', 'deleting the run', (s) => { s.runs.delete(id); s.data.delete(id); });
}
