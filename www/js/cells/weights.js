// Models in and out (the Weights cell). In: a file picker, drag-and-drop anywhere on the
// page, or a URL (also `#model=URL` in a link), of a .safetensors file or a TransformerLens
// .pt state dict, with an optional config JSON (HookedTransformerConfig fields); without one
// the config comes from the file's metadata or the tensor shapes; TransformerLens 4.x
// bridge state dicts (`blocks.0.attn.q.weight`, …) import too. Out: the .safetensors file,
// the config JSON, the Python that loads both into TransformerLens (4.x by default, 3.x on
// request), and a Jupyter notebook that redoes the page's analysis in TransformerLens 4.x.
import { tl_export, notebook_export } from '../../pkg/toyformer.js';
import { setModelUrl } from '../share.js';
import { SAMPLES } from '../interp/analysis.js';
import { view } from '../interp/view.js';

const $ = (id) => document.getElementById(id);
/** Largest model file read (64M parameters in f32, the library's limit, plus headers). */
export const MAX_MODEL_BYTES = 300 * 1024 * 1024;
const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;
let app = null;
let pendingConfig = null; // {name, text}: a config JSON dropped before its weights

/**
 * Fetches model bytes from `url` (https:, or this page's own origin), refusing more than
 * MAX_MODEL_BYTES. Errors say whether the URL, the network / CORS, the HTTP status or the
 * size is the problem.
 */
export async function fetchModel(url, progress = () => {}) {
  let u;
  try {
    u = new URL(url, location.href);
  } catch {
    throw new Error(`"${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.origin !== location.origin) {
    throw new Error(`only https: URLs (or files on this site) can be fetched, not ${u.protocol}//${u.host}`);
  }
  let res;
  try {
    res = await fetch(u, { mode: 'cors', credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new Error(`could not fetch ${u.href}: the network failed, or the server does not let other sites read the file (CORS: it must send Access-Control-Allow-Origin). Download the file and drop it here instead.`);
  }
  if (!res.ok) throw new Error(`fetching ${u.href} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > MAX_MODEL_BYTES) {
    res.body?.cancel();
    throw new Error(`${u.href} is ${mb(declared)}, more than the ${mb(MAX_MODEL_BYTES)} limit for a model`);
  }
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got += value.length;
    if (got > MAX_MODEL_BYTES) {
      reader.cancel();
      throw new Error(`${u.href} is more than the ${mb(MAX_MODEL_BYTES)} limit for a model`);
    }
    chunks.push(value);
    progress(got, Number.isFinite(declared) ? declared : 0);
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.length; }
  return bytes;
}

const SOURCE = { config_json: 'from the config JSON', metadata: "from the file's metadata", shapes: 'inferred from the tensor shapes' };
const TASK_SOURCE = { metadata: "from the file's metadata", config_json: "the config JSON's task", selected: 'the selected task, which scored best',
  guessed: 'proposed: it scored best of the tasks whose vocabulary and context fit' };
/** The proposal's other tasks and the config fields a bare state dict could not show, as notes. */
const proposalNotes = (im) => [
  ...(im.candidates ?? []).slice(1).map((c) => `also fits ${c.task.task}: token accuracy ${c.token_acc.toFixed(3)} (vs ${im.candidates[0].token_acc.toFixed(3)})`),
  ...(im.assumed ?? []).map((a) => `assumed ${a}`),
];

function showNotes(notes) {
  const ul = $('import-notes');
  ul.replaceChildren(...notes.map((n) => Object.assign(document.createElement('li'), { textContent: n })));
}

export function showImportError(message) {
  const e = $('import-error');
  e.textContent = message;
  e.hidden = false;
  app.hook.importError = message;
}

/** Loads model bytes (with an optional config JSON text) into the page as a paused run. */
export async function importModel(bytes, config, name) {
  $('import-error').hidden = true;
  showNotes([]);
  if (app.phase === 'training') return showImportError('Pause training before loading another model.');
  if (bytes.length > MAX_MODEL_BYTES) return showImportError(`${name} is ${mb(bytes.length)}, more than the ${mb(MAX_MODEL_BYTES)} limit for a model`);
  $('import-status').textContent = `Reading ${name}…`;
  const selectedTask = app.info ? app.runSpec().task : null;
  try {
    const m = await app.load({ type: 'load', kind: 'file', bytes, config: config?.text ?? '', selectedTask, train: app.runSpec().train, source: name }, [], [bytes.buffer]);
    const im = m.imported;
    const cfg = im.model;
    $('import-status').textContent = `Loaded ${name}${config ? ` with ${config.name}` : ''}: ${cfg.n_layers} layer(s), ${cfg.n_heads} head(s), d_model ${cfg.d_model}, d_head ${cfg.d_head}, ${im.n_params.toLocaleString('en-US')} parameters (config ${SOURCE[im.config_source]}); task ${im.task.task} (${TASK_SOURCE[im.task_source]}); step ${im.step}.`;
    showNotes([...im.notes, ...proposalNotes(im)]);
    app.hook.imported = im;
    setModelUrl(null);
  } catch (e) {
    $('import-status').textContent = '';
    showImportError(`${name}${config ? ` + ${config.name}` : ''}: ${e.message}`);
  }
}

/** Files from the picker or a drop: one weight file, optionally with one config JSON. */
async function handleFiles(files) {
  const isJson = (f) => /\.json$/i.test(f.name);
  const configs = files.filter(isJson);
  const weights = files.filter((f) => !isJson(f));
  if (configs.length > 1 || weights.length > 1) return showImportError(`Drop one weight file (.safetensors or .pt) and at most one config JSON, not ${files.length} files.`);
  if (configs.length) pendingConfig = { name: configs[0].name, text: await configs[0].text() };
  if (!weights.length) {
    $('import-status').textContent = pendingConfig ? `Config ${pendingConfig.name} read: now choose or drop its weights.` : '';
    return;
  }
  const f = weights[0];
  if (f.size > MAX_MODEL_BYTES) return showImportError(`${f.name} is ${mb(f.size)}, more than the ${mb(MAX_MODEL_BYTES)} limit for a model`);
  const config = pendingConfig;
  pendingConfig = null;
  await importModel(new Uint8Array(await f.arrayBuffer()), config, f.name);
}

/** Loads a model from a URL; the URL then stays in the page's link (model=). */
export async function loadFromUrl(url) {
  const status = $('import-status');
  $('import-error').hidden = true;
  try {
    status.textContent = `Fetching ${url}…`;
    const bytes = await fetchModel(url, (got, total) => {
      status.textContent = `Fetching ${url}: ${mb(got)}${total ? ` of ${mb(total)}` : ''}`;
    });
    await importModel(bytes, null, url.split('/').pop() || url);
    if (!$('import-error').hidden) return;
    setModelUrl(url);
  } catch (e) {
    status.textContent = '';
    showImportError(e.message);
  }
}

function download(bytes, name, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  Object.assign(document.createElement('a'), { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Export names and the Python snippet for the model in the worker.
async function exportInfo() {
  const { info } = await app.request({ type: 'info' });
  const base = `toyformer-${info.task.task}-step${info.step}`;
  const tl = tl_export(JSON.stringify(info.model), `${base}.safetensors`, `${base}.json`);
  return { info, base, tl };
}

async function showSnippet() {
  if (!app.hasModel()) {
    $('py-snippet').textContent = '# train or load a model first';
    $('export-notes').replaceChildren();
    return;
  }
  try {
    const { tl } = await exportInfo();
    $('py-snippet').textContent = $('py-version').value === '3' ? tl.python_tl3 : tl.python;
    $('export-notes').replaceChildren(...tl.notes.map((n) => Object.assign(document.createElement('li'), { textContent: n })));
  } catch (e) {
    $('py-snippet').textContent = `# ${e.message}`;
  }
}

/** The TransformerLens version picker and the notebook button, added beside the export buttons. */
function addExportControls() {
  const pick = Object.assign(document.createElement('select'), { id: 'py-version', title: 'Which TransformerLens the Python lines are for' });
  pick.append(
    new Option('TransformerLens 4.x (pip install transformer_lens)', '4', true, true),
    new Option('TransformerLens 3.x (HookedTransformer)', '3'),
  );
  pick.onchange = showSnippet;
  const nb = Object.assign(document.createElement('button'), {
    id: 'btn-export-nb', disabled: true, textContent: 'Download notebook (.ipynb)',
    title: 'A Jupyter notebook that redoes this analysis in TransformerLens 4.x and prints its numbers next to the page\'s',
  });
  $('btn-export-cfg').after(nb, pick);
}

async function downloadNotebook() {
  const { info, base } = await exportInfo();
  const { bytes } = await app.request({ type: 'export' });
  // The notebook is built here, on the main thread: keep its fresh-accuracy batch to about 8k tokens.
  const fresh = Math.max(32, Math.min(256, Math.floor(8192 / info.model.n_ctx)));
  const options = { input: view('view_input'), samples: SAMPLES, seed: 0, fresh_samples: fresh, step: info.step };
  try {
    const text = notebook_export(bytes, JSON.stringify(info.task), JSON.stringify(options));
    download(new TextEncoder().encode(text), `${base}.ipynb`, 'application/x-ipynb+json');
    $('export-notes').replaceChildren();
  } catch (e) {
    $('export-notes').replaceChildren(Object.assign(document.createElement('li'), { textContent: `notebook: ${e.message}` }));
  }
}

export function initWeights(a) {
  app = a;
  addExportControls();
  $('btn-export-nb').onclick = downloadNotebook;
  app.importModel = importModel;
  app.showImportError = showImportError;
  $('import-file').onchange = (e) => { handleFiles([...e.target.files]); e.target.value = ''; };
  $('url-form').onsubmit = (e) => {
    e.preventDefault();
    const url = $('url-input').value.trim();
    if (url) loadFromUrl(url);
  };
  // Drops anywhere on the page (a file dropped outside a handler would make the browser open it).
  let depth = 0;
  const zone = $('drop-zone');
  addEventListener('dragenter', (e) => { if (e.dataTransfer?.types.includes('Files')) { depth++; document.body.classList.add('dragging'); } });
  addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) document.body.classList.remove('dragging'); });
  addEventListener('dragover', (e) => e.preventDefault());
  addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) {
      $('cell-weights').open = true;
      zone.scrollIntoView({ block: 'nearest' });
      handleFiles(files);
    }
  });
  $('btn-export-st').onclick = async () => {
    const { base } = await exportInfo();
    const { bytes } = await app.request({ type: 'export' });
    download(bytes, `${base}.safetensors`, 'application/octet-stream');
  };
  $('btn-export-cfg').onclick = async () => {
    const { base, tl } = await exportInfo();
    download(new TextEncoder().encode(`${tl.config_json}\n`), `${base}.json`, 'application/json');
  };
  app.on('phase', (p) => {
    const has = app.hasModel();
    $('btn-export-st').disabled = $('btn-export-cfg').disabled = $('btn-export-nb').disabled = !has || p === 'training';
    if (p !== 'training') showSnippet();
  });
}
