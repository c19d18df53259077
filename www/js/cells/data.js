// The Data cell (issue 14): the custom task's file, from a file picker, a drop on the cell or a
// URL (CORS and size errors named). The wasm module checks it (data_check): the cell shows its
// sizes and hash, or its first errors with their lines and how many lines are affected. A bad
// file is still handed to the task, whose validation then refuses to train (the Task cell says
// why). A link carries the data's URL, or the data itself (d=, packed) when it fits; when
// neither, it carries the hash, and the page asks for the file and checks it against the hash.
import { app } from '../app.js';
import { data_check, data_link, data_from_link } from '../../pkg/toyformer.js';
import { currentData, setData } from '../data.js';
import { setInput, refresh } from '../form.js';
import { PROPS } from '../state.js';
import { renderFacts, fmtInt } from '../views.js';

/** The largest data file read (the Rust decoder's limit). */
export const MAX_DATA_BYTES = 16 * 1024 * 1024;
const $ = (id) => document.getElementById(id);
const prop = (key) => PROPS.find((p) => p.key === key);
const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;
let pendingHash = ''; // the hash of a link's data that is not here yet
let packed = { text: null, d: null }; // the current data packed for the link (cached)
let shownFor = ''; // what the report shows: the options and data it was made with

/** The d= value for the link: the current data packed, when it fits and has no URL. */
export function linkData() {
  const d = currentData();
  if (app.values.task !== 'custom' || !d || d.url) return undefined;
  if (packed.text !== d.text) packed = { text: d.text, d: data_link(d.text) ?? null };
  return packed.d ?? undefined;
}

/** The current data as a custom task's data keys (what the Train cell's task gets), or null. */
export function dataPatch() {
  const d = currentData();
  if (!d) return null;
  return { data: d.text, name: d.name, hash: d.hash, format: app.values.custom_format ?? 'auto',
    separator: app.values.custom_separator ?? '|' };
}

/** Link keys that bring `patch`'s data to a fresh page (a sweep row's link): how to read it, its hash, its URL or packed text. */
export function dataLinkKeys(patch) {
  const d = currentData();
  const parts = [`data_hash=${patch.hash}`];
  if (patch.format !== 'auto') parts.push(`custom_format=${patch.format}`);
  if (patch.separator !== '|') parts.push(`custom_separator=${encodeURIComponent(patch.separator).replace(/%20/g, '+')}`);
  if (d?.url && d.text === patch.data) parts.push(`data_url=${encodeURIComponent(d.url)}`);
  else {
    if (packed.text !== patch.data) packed = { text: patch.data, d: data_link(patch.data) ?? null };
    if (packed.d) parts.push(`d=${packed.d}`);
  }
  return `&${parts.join('&')}`;
}

function showError(msg) {
  $('data-error').textContent = msg;
  $('data-error').hidden = !msg;
}

function check(text, name) {
  const v = app.values;
  return data_check(text, name, v.custom_format ?? 'auto', v.custom_separator ?? '|', v.custom_n_ctx ?? 0);
}

/** Shows a data_check report: its facts, or its first errors and the lines affected. */
function showReport(r) {
  const list = $('data-errors');
  list.replaceChildren(...r.errors.first.map((e) => {
    const li = document.createElement('li');
    li.textContent = e.line > 0 ? `line ${e.line}: ${e.msg}` : e.msg;
    return li;
  }));
  const affected = r.errors.lines_affected;
  showError(affected ? `${r.name || 'the file'}: ${affected} line${affected > 1 ? 's' : ''} with errors; nothing trains until the file is fixed`
    : r.task_error ? `${r.name || 'the file'}: ${r.task_error}` : '');
  renderFacts($('data-facts'), r.ok ? [
    ['file', r.name || '(unnamed)'], ['format', r.format], ['examples', fmtInt(r.examples)],
    ['labels', `${fmtInt(r.labels)} + <pad>`], ['longest line', `${r.longest} tokens`],
    ['size', `${fmtInt(r.bytes)} bytes`], ['hash', r.hash], ['split', r.marks_splits ? "the file's marks" : 'frac_train and split_seed'],
  ] : []);
  $('data-brief').textContent = r.ok ? `${r.name} · ${fmtInt(r.examples)} examples` : 'errors';
  app.hook.data = { ok: r.ok, name: r.name, hash: r.hash, examples: r.examples, lines_affected: affected,
    first: r.errors.first.map((e) => e.line) };
}

/** Checks `text` and makes it the custom task's data (a bad one too: the task refuses it). */
export function loadText(text, name, url = null) {
  if (app.phase !== 'idle' && app.phase !== 'loading') return showError('a run exists: reset it (Train cell) before loading other data');
  let r;
  try {
    r = check(text, name);
  } catch (e) {
    return showError(e.message);
  }
  if (pendingHash && r.hash !== pendingHash) {
    return showError(`${name} has hash ${r.hash}, but the link was made with data of hash ${pendingHash}: open that file`);
  }
  pendingHash = '';
  setData({ text, name, hash: r.hash, url });
  setInput(prop('data_hash'), r.hash);
  setInput(prop('data_url'), url ?? '');
  showReport(r);
  shownFor = '';
  refresh();
}

async function loadFile(f) {
  if (!f) return;
  if (f.size > MAX_DATA_BYTES) return showError(`${f.name} is ${mb(f.size)}, more than the ${mb(MAX_DATA_BYTES)} limit for data`);
  loadText(await f.text(), f.name);
}

/** Fetches a data file (https:, or this site), refusing more than MAX_DATA_BYTES; errors say why. */
export async function fetchData(url) {
  let u;
  try {
    u = new URL(url, location.href);
  } catch {
    throw new Error(`"${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.origin !== location.origin) throw new Error(`only https: URLs (or files on this site) can be fetched, not ${u.protocol}//${u.host}`);
  let res;
  try {
    res = await fetch(u, { mode: 'cors', credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new Error(`could not fetch ${u.href}: the network failed, or the server does not let other sites read the file (CORS: it must send Access-Control-Allow-Origin). Download the file and drop it here instead.`);
  }
  if (!res.ok) throw new Error(`fetching ${u.href} failed: HTTP ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > MAX_DATA_BYTES) {
    res.body?.cancel();
    throw new Error(`${u.href} is ${mb(declared)}, more than the ${mb(MAX_DATA_BYTES)} limit for data`);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > MAX_DATA_BYTES) throw new Error(`${u.href} is more than the ${mb(MAX_DATA_BYTES)} limit for data`);
  return { text: new TextDecoder().decode(bytes), name: u.pathname.split('/').pop() || u.host, href: u.href };
}

async function loadUrl(url) {
  showError('');
  $('data-status').textContent = `Fetching ${url}…`;
  try {
    const { text, name, href } = await fetchData(url);
    loadText(text, name, href);
  } catch (e) {
    showError(e.message);
  }
  $('data-status').textContent = '';
}

/** The data a link brings: its d= (packed data), or its data URL; else asks for the file. */
export async function openLinkData(link) {
  if (link.values.task !== 'custom') return;
  pendingHash = link.values.data_hash ?? '';
  if (link.d) {
    try {
      loadText(data_from_link(link.d), 'data from the link');
    } catch (e) {
      showError(e.message);
    }
  } else if (link.values.data_url) await loadUrl(link.values.data_url);
  else if (pendingHash) showError(`This link's data was too large to carry and has no URL: open the file it was made with (hash ${pendingHash}); its hash is checked.`);
}

/** Keeps the cell shown for the custom task only, and its report in step with the options. */
function follow() {
  const custom = app.values.task === 'custom';
  $('cell-data').hidden = !custom;
  const d = currentData();
  const key = custom && d ? `${app.values.custom_format}|${app.values.custom_separator}|${app.values.custom_n_ctx}|${d.hash}` : '';
  if (!key || key === shownFor) return;
  shownFor = key;
  try {
    showReport(check(d.text, d.name));
  } catch (e) {
    showError(e.message);
  }
}

export function initDataCell() {
  $('data-file').addEventListener('change', (e) => loadFile(e.target.files?.[0]));
  const zone = $('data-drop');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); e.stopPropagation(); });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation(); // not a model for the Weights cell
    document.body.classList.remove('dragging');
    loadFile(e.dataTransfer?.files?.[0]);
  });
  $('data-url-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $('data-url-input').value.trim();
    if (url) loadUrl(url);
  });
  app.on('controls', follow);
}
