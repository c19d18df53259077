// The link codec (www/js/link.js) in node, without a browser: every property round-trips
// through a fragment; decoding is total over random and mutated fragments (a property test,
// LINK_FUZZ_ITERS executions, default 150,000); old ?query links migrate; and the page's
// scripts contain no way to run or inject decoded text (no eval, no innerHTML) under a strict CSP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { PROPS, parseValue, applies, defaultOf } from '../../www/js/state.js';
import { decodeFragment, encodeFragment, migrateQuery, hasExperiment, LINK_VERSION, MAX_FRAGMENT } from '../../www/js/link.js';

// The table, plus a text row when it has none yet (view-state text fields), so text is fuzzed too.
const TEXT_ROW = { key: 'view_input', cell: 'view', label: 'input', type: 'text', default: '', max: 400 };
const ALL = PROPS.some((p) => p.type === 'text') ? PROPS : [...PROPS, TEXT_ROW];

// The task's default model, as task_info() gives it (the sort task's).
const DEFAULT_MODEL = { n_layers: 1, n_heads: 1, d_model: 128, d_head: 128, normalization_type: null };

// A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

/** A random valid value for row p. */
function randomValue(p, r) {
  switch (p.type) {
    case 'bool': return r.next() < 0.5;
    case 'enum': return r.pick(p.options);
    case 'text': {
      // a row of fixed length (min = max: the custom separator) takes exactly that many; raw rows keep spaces
      const s = Array.from({ length: p.min === p.max ? p.max : r.int(Math.min(p.max, 12)) }, () => r.pick(['a', 'b', ' ', '1', 'é', '|', ',', '+', '%'])).join('');
      return p.raw ? s : s.trim();
    }
    case 'int': {
      const span = Math.min(p.max - p.min, 1000);
      return r.pick([p.min, p.max, p.min + r.int(span + 1), p.min + r.int(span + 1)]);
    }
    case 'float': {
      const v = r.pick([p.min, p.max, p.min + r.next() * (Math.min(p.max, 10) - p.min), 10 ** (-8 + r.next() * 8)]);
      return Math.min(p.max, Math.max(p.min, v));
    }
  }
  throw new Error(`no generator for ${p.type}`);
}

function randomValues(r) {
  const v = {};
  for (const p of ALL) v[p.key] = r.next() < 0.6 ? randomValue(p, r) : defaultOf(p, DEFAULT_MODEL);
  return v;
}

/** What a fragment of `values` must decode to: the applicable rows that differ from their defaults. */
function expected(values) {
  const out = {};
  for (const p of ALL) {
    const v = values[p.key];
    if (v !== undefined && applies(p, values) && String(v) !== String(defaultOf(p, DEFAULT_MODEL))) out[p.key] = v;
  }
  return out;
}

/** Every decoded value passes its row's parser unchanged, and its row applies. */
function assertValid(d, what) {
  const all = { ...Object.fromEntries(ALL.filter((p) => p.default !== 'model').map((p) => [p.key, p.default])), ...d.values };
  for (const [k, v] of Object.entries(d.values)) {
    const p = ALL.find((x) => x.key === k);
    assert.ok(p, `${what}: decoded an unknown key ${k}`);
    const again = parseValue(p, p.type === 'bool' ? String(v) : String(v));
    assert.deepEqual(again, { value: v }, `${what}: ${k}=${v} is not a valid value`);
    assert.ok(applies(p, all), `${what}: ${k} does not apply`);
  }
  for (const n of d.notes) {
    assert.equal(typeof n, 'string');
    assert.ok(n.length < 400, `${what}: note too long (${n.length})`);
    assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(n), `${what}: control character in a note`);
  }
  if (d.w !== undefined) assert.match(d.w, /^[A-Za-z0-9_-]{1,65536}$/);
  if (d.model !== undefined) assert.ok(['http:', 'https:'].includes(new URL(d.model, 'https://x.invalid/').protocol));
}

test('every property round-trips through the fragment, alone and all together', () => {
  const r = rng(1);
  for (const p of ALL) {
    // a value different from the default, under a task the row applies to
    let values;
    for (let i = 0; i < 200; i++) {
      values = randomValues(r);
      values[p.key] = randomValue(p, r);
      if (applies(p, values) && String(values[p.key]) !== String(defaultOf(p, DEFAULT_MODEL))) break;
    }
    const frag = encodeFragment(values, DEFAULT_MODEL, {}, ALL);
    assert.ok(frag.startsWith(`v=${LINK_VERSION}&`) || frag === `v=${LINK_VERSION}`);
    assert.match(frag, new RegExp(`(^|&)${p.key}=`), `${p.key} is in ${frag}`);
    const d = decodeFragment(`#${frag}`, ALL);
    assert.deepEqual(d.notes, [], frag);
    assert.deepEqual(d.values, expected(values), frag);
    assert.equal(d.values[p.key], values[p.key]);
  }
  // Readable: plain key=value, no percent-escapes for ordinary values; defaults omitted.
  const frag = encodeFragment({ task: 'sort', sort_n: 5, max_num: 10, n_layers: 1, n_heads: 1, d_model: 32, d_head: 32, model_seed: 0, ln: false, mlp: false, d_mlp: 512, act_fn: 'gelu', steps: 300, batch_size: 32, lr: 0.003, schedule: 'constant', warmup_steps: 100, weight_decay: 0.01, grad_clip: 1, seed: 0, open_model: false, open_train: true }, DEFAULT_MODEL);
  assert.equal(frag, 'v=1&sort_n=5&max_num=10&d_model=32&d_head=32&steps=300&batch_size=32&lr=0.003&open_model=false');
  // Weights and a model URL ride along.
  const withW = encodeFragment({ task: 'permutations', perm_n: 3 }, DEFAULT_MODEL, { w: 'dGYB', model: 'https://e.org/m.pt?x=1&y=2' });
  const d = decodeFragment(withW);
  assert.deepEqual(d.notes, []);
  assert.equal(d.w, 'dGYB');
  assert.equal(d.model, 'https://e.org/m.pt?x=1&y=2');
  assert.deepEqual(d.values, { task: 'permutations', perm_n: 3 });
  assert.ok(hasExperiment(d));
  assert.ok(!hasExperiment(decodeFragment('v=1&open_task=false')), 'view state alone is not an experiment');
  // Text values stay readable: spaces as '+', '|' and ',' as they are; a literal '+' is escaped.
  const textRow = { key: 'view_input', cell: 'view', label: 'input', type: 'text', default: '', max: 400 };
  const props = PROPS.some((p) => p.key === textRow.key) ? PROPS : [...PROPS, textRow];
  const t = encodeFragment({ view_input: '7 3 9 | 2,0,1 +1' }, DEFAULT_MODEL, {}, props);
  assert.equal(t, 'v=1&view_input=7+3+9+|+2,0,1+%2B1');
  assert.deepEqual(decodeFragment(t, props).values, { view_input: '7 3 9 | 2,0,1 +1' });
});

test('malformed values fall back to defaults with a note naming the key', () => {
  const cases = [
    ['lr=abc', 'lr', /not a number/],
    ['lr=0x10', 'lr', /not a number/],
    ['lr=Infinity', 'lr', /not a number/],
    ['lr=1e309', 'lr', /not a finite number/],
    ['lr=20', 'lr', /at most 10/],
    ['steps=2.5', 'steps', /whole number/],
    ['steps=-1', 'steps', /at least 1/],
    ['task=<script>alert(1)</script>', 'task', /choose one of/],
    ['ln=maybe', 'ln', /not true or false/],
    ['open_runs=<b>', 'open_runs', /not true or false/],
    ['sort_n=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E', 'sort_n', /not a number/],
  ];
  for (const [frag, key, why] of cases) {
    const d = decodeFragment(`v=1&${frag}`);
    assert.deepEqual(d.values, {}, frag);
    assert.equal(d.notes.length, 1, frag);
    assert.match(d.notes[0], new RegExp(`^${key}( \\([A-Za-z .]+\\))?: `), d.notes[0]);
    assert.match(d.notes[0], why);
    assert.match(d.notes[0], /default is used/);
  }
  assert.deepEqual(decodeFragment('v=1&bogus=1&x').notes, ['unknown key "bogus" ignored', 'unknown key "x" ignored']);
  assert.match(decodeFragment('v=1&%E0%A4%A=1').notes[0], /percent-encoding/);
  assert.match(decodeFragment('v=9&steps=5').notes[0], /version 9, newer than this page/);
  assert.equal(decodeFragment('v=9&steps=5').values.steps, 5, 'a newer link is still read');
  assert.match(decodeFragment('steps=5').notes[0], /no version/);
  assert.match(decodeFragment('v=1&steps=5&steps=6').notes[0], /more than once/);
  assert.equal(decodeFragment('v=1&steps=5&steps=6').values.steps, 6);
  assert.match(decodeFragment('v=1&w=not*base64').notes[0], /^w: /);
  assert.match(decodeFragment(`v=1&w=${'A'.repeat(70000)}`).notes[0], /more than 65,536/);
  assert.match(decodeFragment('v=1&model=javascript:alert(1)').notes[0], /^model: /);
  const huge = decodeFragment(`v=1&steps=5&x=${'a'.repeat(MAX_FRAGMENT)}`);
  assert.deepEqual(huge.values, {});
  assert.match(huge.notes[0], /was ignored/);
  assert.deepEqual(decodeFragment(undefined), { values: {}, version: 1, notes: [] });
  assert.deepEqual(decodeFragment(''), { values: {}, version: 1, notes: [] });
});

test('old ?query links become fragments', () => {
  assert.deepEqual(migrateQuery('?task=permutations&perm_n=3&lr=0.002', ''), { fragment: 'v=1&task=permutations&perm_n=3&lr=0.002', search: '' });
  // unknown query keys stay in the query; fragment keys win over query keys
  assert.deepEqual(migrateQuery('?utm_source=x&steps=10&model=https%3A%2F%2Fe.org%2Fm.pt', '#v=1&steps=20'),
    { fragment: 'v=1&model=https%3A%2F%2Fe.org%2Fm.pt&steps=20', search: '?utm_source=x' });
  assert.equal(migrateQuery('?utm_source=x', ''), null);
  const d = decodeFragment(migrateQuery('?task=apply-perm&k=4&max_int=20&ln=true', '').fragment);
  assert.deepEqual(d, { values: { task: 'apply-perm', k: 4, max_int: 20, ln: true }, version: 1, notes: [] });
});

test('decoding is total: random and mutated fragments (property test)', () => {
  const iters = Number(process.env.LINK_FUZZ_ITERS ?? 150_000);
  const r = rng(20241124);
  const keys = [...ALL.map((p) => p.key), 'v', 'w', 'model', '__proto__', 'constructor', 'toString', ''];
  const nasty = ['&', '=', '%', '%2', '%zz', '%E0%A4%A', '#', '<', '>', '"', "'", '`', '\u0000', '\n', '\u202e', '😀', 'é', '+', ' ',
    '1e309', '-0', '0x1f', 'NaN', 'Infinity', '1e-400', 'true', '1', '0', ',', ',,', 'a'.repeat(300), '<script>alert(1)</script>',
    'javascript:alert(1)', 'data:text/html,x', '../../etc', '%3Csvg%20onload%3Dalert(1)%3E'];
  const valid = () => encodeFragment(randomValues(r), DEFAULT_MODEL, r.next() < 0.3 ? { w: 'dGYBAA', model: 'https://e.org/m.pt' } : {}, ALL);
  const mutate = (s) => {
    let t = s;
    for (let n = 1 + r.int(4); n > 0; n--) {
      const at = r.int(t.length + 1);
      switch (r.int(6)) {
        case 0: t = t.slice(0, at) + r.pick(nasty) + t.slice(at); break;
        case 1: t = t.slice(0, at) + t.slice(at + 1 + r.int(8)); break;
        case 2: t = t.slice(0, at); break;
        case 3: t = `${t}&${r.pick(keys)}=${r.pick(nasty)}`; break;
        case 4: t = t.slice(0, at) + String.fromCharCode(r.int(0x3000)) + t.slice(at); break;
        default: { const p = t.split('&'); t = p.map((x) => (r.next() < 0.3 ? `${x.split('=')[0]}=${r.pick(nasty)}` : x)).join('&'); }
      }
    }
    return t;
  };
  let withNotes = 0;
  let idempotent = 0;
  for (let i = 0; i < iters; i++) {
    let frag;
    switch (i % 4) {
      case 0: frag = Array.from({ length: r.int(12) }, () => `${r.pick(keys)}=${r.pick(nasty)}`).join(r.pick(['&', '&&', ''])); break;
      case 1: frag = Array.from({ length: r.int(80) }, () => String.fromCharCode(r.int(0x800))).join(''); break;
      default: frag = mutate(valid());
    }
    if (r.next() < 0.5) frag = `#${frag}`;
    const d = decodeFragment(frag, ALL);
    assertValid(d, `fragment ${JSON.stringify(frag).slice(0, 200)}`);
    if (d.notes.length) withNotes++;
    // What was read is a fixed point: encoding it and reading again gives it back without notes.
    const again = decodeFragment(encodeFragment(d.values, DEFAULT_MODEL, { w: d.w, model: d.model }, ALL), ALL);
    assert.deepEqual(again.notes, [], JSON.stringify(frag));
    assert.deepEqual(again.values, expected({ ...Object.fromEntries(ALL.filter((p) => p.default !== 'model').map((p) => [p.key, p.default])), ...d.values }));
    idempotent++;
  }
  console.log(`link decoder property test: ${iters} fragments decoded (${withNotes} with notes), ${idempotent} re-encoded and decoded again`);
  assert.ok(withNotes > iters / 4);
});

test('the page never evaluates or injects decoded text, under a strict CSP', () => {
  const dir = new URL('../../www/js/', import.meta.url);
  for (const f of readdirSync(dir, { recursive: true }).filter((x) => x.endsWith('.js'))) {
    const src = readFileSync(new URL(f, dir), 'utf8');
    for (const bad of [/\.innerHTML\s*=/, /\.outerHTML\s*=/, /insertAdjacentHTML/, /\beval\s*\(/, /new\s+Function\s*\(/, /document\.write/, /setTimeout\s*\(\s*['"`]/]) {
      assert.ok(!bad.test(src), `${f} uses ${bad}`);
    }
  }
  const html = readFileSync(new URL('../../www/index.html', import.meta.url), 'utf8');
  const csp = html.match(/http-equiv="Content-Security-Policy"\s+content="([^"]+)"/)[1];
  const directive = (name) => csp.split(';').map((x) => x.trim()).find((x) => x.startsWith(`${name} `));
  assert.equal(directive('script-src'), "script-src 'self' 'wasm-unsafe-eval'");
  assert.ok(!/unsafe-inline|'unsafe-eval'/.test(csp), csp);
  assert.equal(directive('object-src'), "object-src 'none'");
  assert.equal(directive('base-uri'), "base-uri 'none'");
  assert.ok(!/<script>/.test(html) && !/\son[a-z]+=/.test(html), 'no inline scripts or handlers');
});
