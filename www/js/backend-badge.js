// The backend badge in the page header: which backend the next run will use (from the backend
// switch and the WebGPU adapter found), and, once a run starts, the one the worker confirms.
import { app } from './app.js';

const $ = (id) => document.getElementById(id);

/** Looks for a WebGPU adapter (its name and whether it is a software fallback). */
export async function detectGpu() {
  try {
    const a = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
    const i = a?.info ?? {};
    app.gpu.name = a ? (i.description || [i.vendor, i.architecture, i.device].filter(Boolean).join(' ') || 'unnamed adapter') : null;
    app.gpu.fallback = Boolean(i.isFallbackAdapter ?? a?.isFallbackAdapter);
  } catch {
    app.gpu.name = null;
  }
  if (app.phase === 'idle' || app.phase === 'loading') showBackend();
}

// The backend the next run will use, before the worker confirms it ('backend' message).
export function showBackend() {
  const badge = $('backend-badge');
  const note = $('backend-note');
  const { name, fallback } = app.gpu;
  const backend = app.values.backend;
  if (backend === 'cpu') {
    badge.textContent = 'CPU (wasm)';
    note.textContent = name ? `forced by the backend switch (WebGPU adapter: ${name})` : 'forced by the backend switch';
  } else if (name && (backend === 'webgpu' || !fallback)) {
    badge.textContent = `WebGPU (${name})`;
    note.textContent = fallback ? 'software fallback adapter, chosen by the backend switch'
      : backend === 'auto' ? 'WebGPU adapter found: auto times a few steps on it and on the CPU at the start, and keeps the faster'
        : 'WebGPU adapter found';
  } else if (name) {
    badge.textContent = 'CPU (wasm)';
    note.textContent = `WebGPU adapter ${name} is a software fallback, slower than the CPU: choose backend webgpu to use it`;
  } else {
    badge.textContent = 'CPU (wasm)';
    note.textContent = 'no WebGPU adapter: training runs on the CPU';
  }
}

// The CPU run's pool as the worker reports it: its size, and `workers` auto's measured choice.
const pool = { gpu: true, size: 1, calibrated: null };

/** The worker's 'backend' message: the backend the run actually uses. */
export function onBackend({ label, gpu, reason }) {
  $('backend-badge').textContent = label;
  $('backend-note').textContent = gpu ? (reason || 'training on the GPU') : reason;
  pool.gpu = gpu;
  pool.size = 1;
  pool.calibrated = null;
  showPool();
}

/** The worker's 'pool' messages: the pool's size, and what `workers` auto measured (pool-pick.js). */
export function onPool(m) {
  if (m.event === 'size') pool.size = m.workers;
  else if (m.event === 'reset') Object.assign(pool, { gpu: m.gpu, size: m.workers, calibrated: null });
  else if (m.event === 'calibrated') {
    pool.calibrated = { workers: m.workers, note: m.note };
    pool.size = m.workers; // the pool takes this size from the next steps on
  }
  else return;
  showPool();
}

// "2 CPU workers", or auto's note with its figures while the pool is the size it chose.
function showPool() {
  const el = $('workers-note');
  el.hidden = pool.gpu;
  const c = pool.calibrated;
  el.textContent = c && c.workers === pool.size ? c.note : `${pool.size} CPU worker${pool.size === 1 ? '' : 's'}`;
}
