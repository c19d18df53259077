// Links: the URL fragment holds the whole experiment as readable key=value pairs
// (`#v=1&task=sort&sort_n=5&steps=300`), one key per row of the properties table
// (state.js), defaults omitted, plus three keys of its own: `v` (the format version),
// `model` (a URL to fetch weights from) and `w` (the weights themselves, packed by the
// wasm module: f16, deflate, base64url).
//
// Decoding is total: any string gives values that pass the table's checks, plus notes for
// whatever was ignored (unknown keys, bad or out-of-range values, which fall back to their
// defaults). Nothing decoded is ever evaluated or parsed as markup; notes are plain text for
// textContent. No DOM here: tests/js/link.test.mjs runs this module in node.
import { PROPS, parseValue, applies, defaultOf, short } from './state.js';

export const LINK_VERSION = 1;
/** Longest fragment read at all (a link with weights is at most ~64 KB). */
export const MAX_FRAGMENT = 96 * 1024;
/** Longest `w=` value (the wasm decoder checks the same limit). */
export const MAX_WEIGHTS_CHARS = 64 * 1024;
/** Longest `model=` URL. */
export const MAX_URL = 2048;
const WEIGHTS_TEXT = /^[A-Za-z0-9_-]*$/;
/** Longest `d=` value (a custom task's data file, packed by the wasm module: deflate, base64url). */
export const MAX_DATA_CHARS = 24 * 1024;
// Keys the link has besides the table's rows.
const OWN_KEYS = ['v', 'model', 'w', 'd'];

const byKey = (props) => new Map(props.map((p) => [p.key, p]));

// A UTF-16 surrogate without its partner: not text, and encodeURIComponent throws on it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Percent-decodes one key or value ('+' is a space); null when it is not valid UTF-8 text. */
function decodePart(s) {
  try {
    const t = decodeURIComponent(s.replace(/\+/g, ' '));
    return LONE_SURROGATE.test(t) ? null : t;
  } catch {
    return null;
  }
}

/**
 * Decodes a fragment (with or without the leading '#'). Returns
 * {values: {key: value} (only keys present and valid), model?: string, w?: string, d?: string,
 *  version: number, notes: string[]}. Never throws.
 */
export function decodeFragment(fragment, props = PROPS) {
  const notes = [];
  const out = { values: {}, version: LINK_VERSION, notes };
  let text = typeof fragment === 'string' ? fragment : '';
  if (text.startsWith('#')) text = text.slice(1);
  if (text.length > MAX_FRAGMENT) {
    notes.push(`the link is ${text.length.toLocaleString('en-US')} characters long, more than ${MAX_FRAGMENT.toLocaleString('en-US')}: it was ignored`);
    return out;
  }
  const table = byKey(props);
  const raw = new Map(); // key → text, last occurrence wins
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const k = decodePart(eq < 0 ? piece : piece.slice(0, eq));
    const v = decodePart(eq < 0 ? '' : piece.slice(eq + 1));
    if (k === null || v === null) {
      notes.push(`"${short(piece)}" is not valid percent-encoding: ignored`);
      continue;
    }
    if (!table.has(k) && !OWN_KEYS.includes(k)) {
      notes.push(`unknown key "${short(k)}" ignored`);
      continue;
    }
    if (raw.has(k)) notes.push(`${k} is given more than once: the last value is used`);
    raw.set(k, v);
  }

  if (!raw.has('v')) {
    if (raw.size > 0) notes.push(`the link has no version (v=): read as version ${LINK_VERSION}`);
  } else {
    const v = raw.get('v');
    if (!/^[0-9]{1,6}$/.test(v)) notes.push(`v: "${short(v)}" is not a version number: read as version ${LINK_VERSION}`);
    else if (Number(v) > LINK_VERSION) {
      out.version = Number(v);
      notes.push(`this link is version ${v}, newer than this page (version ${LINK_VERSION}): some settings may not be read`);
    } else if (Number(v) < 1) notes.push(`v: version ${v} does not exist: read as version ${LINK_VERSION}`);
  }

  if (raw.has('model')) {
    const u = raw.get('model');
    const why = u.length > MAX_URL ? `longer than ${MAX_URL} characters` : !isHttpUrl(u) ? 'not an http(s) URL or a path on this site' : null;
    if (why) notes.push(`model: "${short(u)}" is ${why}: ignored`);
    else out.model = u;
  }
  if (raw.has('w')) {
    const w = raw.get('w');
    if (w.length > MAX_WEIGHTS_CHARS) notes.push(`w: the weights are ${w.length.toLocaleString('en-US')} characters, more than ${MAX_WEIGHTS_CHARS.toLocaleString('en-US')}: ignored`);
    else if (!WEIGHTS_TEXT.test(w) || w === '') notes.push('w: the weights are not base64url text: ignored');
    else out.w = w;
  }

  if (raw.has('d')) {
    const d = raw.get('d');
    if (d.length > MAX_DATA_CHARS) notes.push(`d: the data is ${d.length.toLocaleString('en-US')} characters, more than ${MAX_DATA_CHARS.toLocaleString('en-US')}: ignored`);
    else if (!WEIGHTS_TEXT.test(d) || d === '') notes.push('d: the data is not base64url text: ignored');
    else out.d = d;
  }

  for (const p of props) {
    if (!raw.has(p.key)) continue;
    const r = parseValue(p, raw.get(p.key));
    if (r.error) {
      // "lr (learning rate): "abc" is not a number" rather than "lr: learning rate: …"
      const why = r.error.startsWith(`${p.label}: `) ? r.error.slice(p.label.length + 2) : r.error;
      notes.push(`${p.key === p.label ? p.key : `${p.key} (${p.label})`}: ${why}; the default is used`);
    } else out.values[p.key] = r.value;
  }
  // Rows that do not apply to the decoded values (e.g. sort_n with task=permutations).
  const known = { ...defaults(props), ...out.values };
  for (const p of props) {
    if (p.key in out.values && !applies(p, known)) {
      notes.push(`${p.key} does not apply here (task ${known.task}): ignored`);
      delete out.values[p.key];
    }
  }
  return out;
}

/** Whether `u` is an http(s) URL, absolute or relative to the page. */
function isHttpUrl(u) {
  try {
    return ['http:', 'https:'].includes(new URL(u, 'https://page.invalid/').protocol);
  } catch {
    return false;
  }
}

/** The table's fixed defaults (rows whose default depends on the task's model are left out). */
function defaults(props) {
  const d = {};
  for (const p of props) if (p.default !== 'model') d[p.key] = p.default;
  return d;
}

/** The text of a value in a link. */
function valueText(p, v) {
  if (p.type === 'bool') return v ? 'true' : 'false';
  // readable lists and typed inputs: "3+1+4+|+2+0+1" rather than "3%201%204%20%7C%202%200%201"
  return encodeURIComponent(String(v)).replace(/%2C/g, ',').replace(/%20/g, '+').replace(/%7C/g, '|');
}

/**
 * The fragment (without '#') for `values`: `v=1`, then every applicable row whose value
 * differs from its default (`defaultModel`: the task's default model, for rows whose
 * default is 'model'), in table order, then `model`, `w` and `d` (a custom task's packed data) when given.
 */
export function encodeFragment(values, defaultModel, { model, w, d } = {}, props = PROPS) {
  const parts = [`v=${LINK_VERSION}`];
  const all = { ...defaults(props), ...values }; // rows left out of `values` apply as their defaults
  for (const p of props) {
    const v = values[p.key];
    if (v === undefined || !applies(p, all)) continue;
    const d = defaultOf(p, defaultModel);
    if (d !== undefined && String(v) === String(d)) continue;
    parts.push(`${p.key}=${valueText(p, v)}`);
  }
  if (model) parts.push(`model=${encodeURIComponent(model)}`);
  if (w) parts.push(`w=${w}`);
  if (d) parts.push(`d=${d}`);
  return parts.join('&');
}

/**
 * Old links kept their settings in the query string (`?task=sort&sort_n=5`). Returns the
 * fragment those settings make (with `v=1` and the existing fragment's keys after them,
 * which win), and the query that remains (keys this page does not know stay there); null
 * when the query holds none of our keys.
 */
export function migrateQuery(search, hash, props = PROPS) {
  const q = new URLSearchParams(search);
  const table = byKey(props);
  const moved = [];
  const rest = new URLSearchParams();
  for (const [k, v] of q) {
    if (table.has(k) || k === 'model') moved.push(`${encodeURIComponent(k)}=${encodeURIComponent(v).replace(/%2C/g, ',')}`);
    else rest.append(k, v);
  }
  if (moved.length === 0) return null;
  // Keys already in the fragment win over the query's.
  const old = (hash ?? '').replace(/^#/, '').split('&').filter((x) => x !== '' && !x.startsWith('v='));
  const inOld = new Set(old.map((x) => x.split('=')[0]));
  const fresh = moved.filter((x) => !inOld.has(x.split('=')[0]));
  const fragment = [`v=${LINK_VERSION}`, ...fresh, ...old].join('&');
  const r = rest.toString();
  return { fragment, search: r ? `?${r}` : '' };
}

/** Whether a decoded link describes an experiment (any table key, weights or a model URL). */
export function hasExperiment(decoded, props = PROPS) {
  const view = new Set(props.filter((p) => p.cell === 'view').map((p) => p.key));
  return Object.keys(decoded.values).some((k) => !view.has(k)) || !!decoded.w || !!decoded.model || !!decoded.d;
}
