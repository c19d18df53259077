// Sharing the experiment. The URL fragment always holds the current settings and view
// (rewritten on every change, without history entries); "Copy link" adds the trained weights
// when they fit. Opening a link shows what it holds and what was ignored, loads its weights
// (w=) or fetches its model (model=), and offers to replay training. Codec: link.js.
import { decodeFragment, encodeFragment, migrateQuery, hasExperiment } from './link.js';
import { loadFromUrl } from './cells/weights.js';
import { linkData } from './cells/data.js';

const $ = (id) => document.getElementById(id);
let modelUrl = null; // where the loaded model came from, when a URL: kept in the link
let linkW = null; // the w= value the page was opened with (to compare a replay against)
let app = null;

const LAST_HASH = 'toyformer.lastHash'; // sessionStorage: the fragment this tab last wrote
// sessionStorage: the fragment a hashchange (a preset, an edited address bar) reloads the page to
// open. That reload opens another link, it is not a return to the run the tab showed.
const OPENING = 'toyformer.openingHash';
let cameBack = false;

/** Reads the page's link once at start-up: migrates an old ?query link, decodes the fragment. */
export function readLink() {
  const mig = migrateQuery(location.search, location.hash);
  if (mig) history.replaceState(null, '', `${location.pathname}${mig.search}#${mig.fragment}`);
  const nav = performance.getEntriesByType('navigation')[0]?.type;
  const opening = sessionStorage.getItem(OPENING);
  sessionStorage.removeItem(OPENING);
  cameBack = opening === location.hash ? false
    : nav === 'reload' || nav === 'back_forward' || sessionStorage.getItem(LAST_HASH) === location.hash;
  return decodeFragment(location.hash);
}

/** The fragment for the current settings and view (plus `extra` {w, model}). */
function fragmentFor(values, defaultModel, extra = {}) {
  return encodeFragment(values, defaultModel, { model: modelUrl ?? undefined, d: linkData(), ...extra });
}

/** Rewrites the address bar's fragment for these values (no history entry). */
export function writeLink(values, defaultModel) {
  const hash = `#${fragmentFor(values, defaultModel)}`;
  history.replaceState(history.state, '', `${location.pathname}${location.search}${hash}`);
  sessionStorage.setItem(LAST_HASH, hash);
}

/** Whether this tab is coming back to the page it showed (a reload, back/forward, or the
 * same link again) rather than opening another link: then its last run is restored. */
export const isReturn = () => cameBack;

/** Remembers (or forgets, with null) the URL the loaded model came from. */
export function setModelUrl(url) {
  modelUrl = url;
  app?.writeLink();
}

// Which cells are open is view state: each <details data-open-key> follows its hidden field
// (set from the link at start-up) and writes it back when toggled.
function wireCells() {
  for (const d of document.querySelectorAll('details.cell[data-open-key]')) {
    const f = document.querySelector(`.params[data-cell="view"] [name="${d.dataset.openKey}"]`);
    if (!f) continue;
    d.open = f.checked;
    d.addEventListener('toggle', () => {
      if (f.checked === d.open) return;
      f.checked = d.open;
      f.dispatchEvent(new Event('change')); // the controller's refresh rewrites the link
    });
  }
}

function note(text, list = $('link-notes')) {
  const li = document.createElement('li');
  li.textContent = text;
  list.append(li);
}

function summary(v) {
  const task = { sort: `sort n=${v.sort_n} (0..${v.max_num})`, permutations: `permutations n=${v.perm_n}`,
    'apply-perm': `apply-perm k=${v.k} (0..${v.max_int})` }[v.task] ?? v.task;
  return `${task} · ${v.n_layers}L ${v.n_heads}H d_model ${v.d_model} · ${Number(v.steps).toLocaleString('en-US')} steps, batch ${v.batch_size}, lr ${v.lr}, data seed ${v.seed}, init seed ${v.model_seed}`;
}

/** Shows the link the page was opened with: its notes, what it holds, the replay offer. */
export async function openLink(d) {
  if (!d) return;
  const banner = $('link-banner');
  $('link-notes').replaceChildren();
  for (const n of d.notes) note(n);
  const experiment = hasExperiment(d);
  if (!experiment && d.notes.length === 0) return;
  banner.hidden = false;
  app.hook.linkNotes = [...d.notes];
  if (!experiment) {
    $('link-title').textContent = 'Some of this link could not be read; the page uses its defaults for those settings.';
    $('btn-replay').hidden = true;
    return;
  }
  $('link-title').textContent = `This link holds an experiment: ${summary(app.values)}.`;
  $('btn-replay').hidden = false;
  if (d.w) {
    try {
      const spec = app.runSpec();
      const m = await app.load({ type: 'load', kind: 'link', w: d.w, ...spec, source: 'link' });
      linkW = d.w;
      $('link-detail').textContent = `It carries the trained weights (f16, step ${m.info.step}): they are loaded, so the analysis cells show that model. "Replay training" trains it again from scratch with the same seeds; on the CPU backend the replay is bit-identical, which the page checks against these weights when it ends.`;
    } catch (e) {
      note(`w: the link's weights could not be loaded (${e.message}); replay training to get the model`);
    }
  } else if (d.model) {
    $('link-detail').textContent = `It names a model to load: ${d.model}`;
    await loadFromUrl(d.model);
  } else {
    $('link-detail').textContent = 'Replay training to reproduce it: the data, the initial weights and (on the CPU backend) every step are determined by the settings, so the loss curve and the weights come out bit-identical.';
  }
}

async function copyLink() {
  const status = $('share-status');
  let w;
  let why = '';
  if ($('share-weights').checked && app.hasModel()) {
    try {
      const r = (await app.request({ type: 'link-weights' })).result;
      if (r.ok) w = r.text;
      else why = r.message;
    } catch (e) {
      why = e.message;
    }
  }
  const url = `${location.origin}${location.pathname}#${fragmentFor(app.values, app.info?.default_model, w ? { w } : {})}`;
  const box = $('share-url');
  box.value = url;
  box.hidden = false;
  box.select();
  app.hook.lastLink = url;
  let copied = false;
  try {
    await navigator.clipboard.writeText(url);
    copied = true;
  } catch {
    // no clipboard permission: the link is selected in the box for the user to copy
  }
  const size = `${url.length.toLocaleString('en-US')} characters`;
  const what = w ? 'with the trained weights (f16)' : why ? `without weights: ${why}` : app.hasModel() ? 'settings only' : 'settings only (no model yet)';
  status.textContent = `${copied ? 'Link copied' : 'Copy the link above'} · ${size} · ${what}`;
}

// When a replay of a link with weights ends, compare the result with the link's weights.
async function checkReplay(phase) {
  if (phase !== 'done' || !linkW || !app.hook.replayed) return;
  try {
    const r = (await app.request({ type: 'compare-link', w: linkW })).result;
    app.hook.replayCheck = r;
    $('link-detail').textContent = r.differ === 0
      ? `Replay reproduced the link's weights: all ${r.values.toLocaleString('en-US')} values equal after f16 rounding (largest difference ${r.max_abs_diff.toExponential(2)}, the f16 rounding itself).`
      : `Replay differs from the link's weights in ${r.differ.toLocaleString('en-US')} of ${r.values.toLocaleString('en-US')} values (largest difference ${r.max_abs_diff.toExponential(2)}): the link was made with other settings, another backend, or another version.`;
  } catch (e) {
    $('link-detail').textContent = `Could not compare the replay with the link's weights: ${e.message}`;
  }
}

export function initShare(a) {
  app = a;
  wireCells();
  $('btn-copy-link').onclick = copyLink;
  $('btn-replay').onclick = () => {
    app.hook.replayed = true;
    setModelUrl(null);
    app.replay();
  };
  $('btn-link-dismiss').onclick = () => { $('link-banner').hidden = true; };
  app.on('phase', checkReplay);
  app.on('phase', (p) => { if (p === 'idle' && modelUrl) setModelUrl(null); }); // a reset drops the loaded model
  // A fragment edited in the address bar (same page, no reload) is read afresh.
  addEventListener('hashchange', () => {
    sessionStorage.setItem(OPENING, location.hash);
    location.reload();
  });
}
