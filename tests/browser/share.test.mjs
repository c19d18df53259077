// Sharing and keeping experiments in headless Chromium (CPU backend): every property
// round-trips through the URL; malformed links show notes and never break the page; a link
// replays bit-identically (loss curve and exported bytes) in a fresh profile, and its f16
// weights equal the trained ones after f16 rounding; export → import gives the same bytes;
// the real TransformerLens .pt loads by drag-and-drop and by URL; a reload mid-training
// restores the run and resumes it exactly; a full storage quota is reported.
// Screenshots: test-output/share-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const REF = resolve('..', 'shared', 'reference-models', 'sort_fixed_len_list_model.pt');
// A small sort experiment: 5 numbers below 10, d_model 32 (5,322 parameters: fits in a link).
const STEPS = 160;
const SMALL = `v=1&sort_n=5&max_num=10&d_model=32&d_head=32&steps=${STEPS}&batch_size=16&lr=0.003`;
let server;
let fixtures;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  fixtures = mkdtempSync(join(tmpdir(), 'toyformer-fixtures-'));
  symlinkSync(REF, join(fixtures, 'sort.pt'));
  // 400 MB, sparse: over the page's 300 MB limit without using the disk.
  writeFileSync(join(fixtures, 'huge.safetensors'), '');
  truncateSync(join(fixtures, 'huge.safetensors'), 400 * 1024 * 1024);
  server = await startServer({ fixtures });
});
after(() => {
  server?.close();
  rmSync(fixtures, { recursive: true, force: true });
});

// Opens the page at `hash` in a fresh profile; records console errors, page errors and dialogs.
async function open(hash = '', { init } = {}) {
  const b = await launch({ webgpu: false });
  const errors = [];
  b.page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  b.page.on('pageerror', (e) => errors.push(String(e)));
  b.page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  if (init) await b.page.addInitScript(init);
  await b.page.setViewportSize({ width: 1100, height: 900 });
  await b.page.goto(`${server.url}${hash}`);
  await ready(b.page);
  return { ...b, errors };
}

// A fresh document at `hash` (going through about:blank: a fragment-only navigation would not reload).
async function go(page, hash) {
  await page.goto('about:blank');
  await page.goto(`${server.url}${hash}`);
  await ready(page);
}
// The page is up: the worker is ready and the link (or the tab's last run) has been opened.
const ready = (page) => page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 120_000 });
const phase = (page, p, timeout = 300_000) => page.waitForFunction((x) => window.__toyformer.phase === x, p, { timeout, polling: 200 });
const hook = (page, expr) => page.evaluate(`window.__toyformer.${expr}`);
const shot = (page, id, name) => page.locator(`#${id}`).screenshot({ path: `${OUT}/share-${name}.png` });
const fragment = (page) => new URL(page.url()).hash.slice(1);

// Clicks the Train cell's export button; the file is kept (beside the fixtures) after its browser closes.
async function exportBytes(page) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#btn-export')]);
  const bytes = readFileSync(await dl.path());
  const path = join(fixtures, dl.suggestedFilename());
  writeFileSync(path, bytes);
  return { name: dl.suggestedFilename(), bytes, path };
}

/** The tensors of a safetensors file: {meta, tensors: {name: {shape, data: Float32Array}}}. */
function readSafetensors(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const tensors = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const [a, b] = v.data_offsets;
    const buf = bytes.subarray(8 + n + a, 8 + n + b);
    tensors[k] = { shape: v.shape, data: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)) };
  }
  return { meta: header.__metadata__, tensors };
}

/** x rounded to the nearest IEEE f16 (ties to even), computed independently of the page's Rust. */
function f16round(x) {
  if (x === 0 || !Number.isFinite(x)) return x;
  const ax = Math.abs(x);
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e--;
  if (2 ** (e + 1) <= ax) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = x / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q)) === 0.5 && r % 2 !== 0) r -= Math.sign(q);
  return Math.fround(r * ulp);
}

test('share: every property round-trips through the URL; old ?query links migrate', { timeout: 180_000 }, async () => {
  const all = 'v=1&sort_n=6&max_num=12&n_layers=2&n_heads=2&d_model=16&d_head=8&model_seed=5&ln=true&mlp=true&d_mlp=64&act_fn=relu'
    + '&steps=77&batch_size=8&lr=0.002&schedule=warmup_cosine&warmup_steps=7&weight_decay=0.05&grad_clip=0.5&seed=9&open_model=false&open_eval=false';
  const cases = [all, 'v=1&task=permutations&perm_n=3&n_heads=3&ln=false', 'v=1&task=apply-perm&k=4&max_int=20&d_model=48'];
  const { page, errors, close } = await open(`#${cases[0]}`);
  try {
    for (const frag of cases) {
      await go(page, `#${frag}`);
      // The page rewrites the fragment from its state: the same text comes back.
      assert.equal(fragment(page), frag);
      for (const [k, v] of new URLSearchParams(frag)) {
        if (k === 'v') continue;
        if (k.startsWith('open_')) {
          assert.equal(await page.evaluate((id) => document.getElementById(id).open, `cell-${k.slice(5)}`), v === 'true', k);
          continue;
        }
        const inp = page.locator(`[name="${k}"]`);
        if (v === 'true' || v === 'false') assert.equal(await inp.isChecked(), v === 'true', k);
        else assert.equal(await inp.inputValue(), v, k);
      }
      assert.ok(await page.isHidden('#link-notes li'), `no notes for ${frag}`);
    }
    // A change in the form or the view is written back at once.
    await page.fill('[name="k"]', '5');
    await page.click('#cell-train > summary');
    await page.waitForFunction(() => location.hash.endsWith('&open_train=false')); // the toggle event comes a task later
    assert.equal(fragment(page), 'v=1&task=apply-perm&k=5&max_int=20&d_model=48&open_train=false');
    // An old link with settings in the query string becomes a fragment link.
    await go(page, '?sort_n=7&steps=50&utm_source=x');
    assert.equal(new URL(page.url()).search, '?utm_source=x');
    assert.equal(fragment(page), 'v=1&sort_n=7&steps=50');
    assert.equal(await page.inputValue('[name="sort_n"]'), '7');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('share: malformed links show notes, fall back to defaults and never run or inject anything', { timeout: 180_000 }, async () => {
  const evil = [
    '%E0%A4%A=1', '<script>alert(1)</script>=1', `lr=${encodeURIComponent('<img src=x onerror=alert(1)>')}`, 'steps=1e99',
    'task=javascript:alert(1)', 'w=!!!', 'model=javascript:alert(1)', 'sort_n=-3', 'ln=maybe', 'v=99', 'open_eval=<b>',
  ].join('&');
  const { page, errors, close } = await open(`#${evil}`);
  try {
    const notes = await page.locator('#link-notes li').allTextContents();
    for (const key of ['lr: ', 'steps: ', 'task: ', 'w: ', 'model: ', 'sort_n: ', 'ln: ', 'open_eval: ']) {
      assert.ok(notes.some((n) => n.startsWith(key) || n.startsWith(`${key.slice(0, -2)} (`)), `a note names ${key}: ${notes.join(' | ')}`);
    }
    assert.ok(notes.some((n) => /unknown key "<script>alert\(1\)<\/script>"/.test(n)), 'the script text is shown as text');
    assert.ok(notes.some((n) => /percent-encoding/.test(n)));
    assert.ok(notes.some((n) => /version 99, newer/.test(n)));
    assert.ok(await page.isVisible('#link-banner'));
    // Defaults everywhere, the page works, nothing was injected.
    assert.equal(await page.inputValue('[name="lr"]'), '0.001');
    assert.equal(await page.inputValue('[name="steps"]'), '3000');
    assert.ok(await page.isEnabled('#btn-start'));
    assert.equal(await page.locator('img, script:not([type="module"]), b').count(), 0);
    await shot(page, 'link-banner', 'malformed');
    // The rewritten fragment holds only valid settings.
    assert.equal(fragment(page), 'v=1');

    // A huge link (200,000 characters) is refused whole, with a note.
    await go(page, `#v=1&steps=5&x=${'a'.repeat(200_000)}`);
    assert.match(await page.textContent('#link-notes'), /200,0\d\d characters long, more than 98,304: it was ignored/);
    assert.equal(await page.inputValue('[name="steps"]'), '3000');
    // Random garbage never breaks the page.
    for (const g of ['&&&==&', '%', '#=#', 'v=1&v=1&&steps', '\u202e\u0000']) {
      await go(page, `#${encodeURI(g)}`);
      assert.ok(await page.isEnabled('#btn-start'), g);
    }
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('share: a link replays bit-identically in a fresh profile; its weights are the f16 rounding; export → import is identical', { timeout: 600_000 }, async () => {
  // Run A: open the settings link, replay, export, copy the link with weights.
  const a = await open(`#${SMALL}`);
  let rowsA;
  let expA;
  let withWeights;
  try {
    assert.match(await a.page.textContent('#link-title'), /This link holds an experiment: sort n=5 \(0\.\.10\)/);
    await shot(a.page, 'link-banner', 'banner');
    await a.page.click('#btn-replay');
    await phase(a.page, 'done');
    rowsA = await hook(a.page, 'rows');
    assert.equal(rowsA.length, STEPS);
    expA = await exportBytes(a.page);
    await a.page.click('#btn-copy-link');
    await a.page.waitForFunction(() => window.__toyformer.lastLink);
    withWeights = await hook(a.page, 'lastLink');
    assert.match(await a.page.textContent('#share-status'), /with the trained weights \(f16\)/);
    assert.match(withWeights, /&w=[A-Za-z0-9_-]{1000,}$/);
    assert.ok(withWeights.length < 64 * 1024 + 200, `${withWeights.length} characters`);
    assert.deepEqual(a.errors, []);
  } finally {
    await a.close();
  }

  // Run B, a fresh profile: the link with weights loads the model at once (f16 values) …
  const b = await open(new URL(withWeights).hash);
  try {
    await phase(b.page, 'done');
    assert.match(await b.page.textContent('#link-detail'), /carries the trained weights \(f16, step 160\)/);
    const linked = readSafetensors((await exportBytes(b.page)).bytes).tensors;
    const trained = readSafetensors(expA.bytes).tensors;
    let exact = 0;
    let total = 0;
    for (const [name, t] of Object.entries(trained)) {
      assert.deepEqual(linked[name].shape, t.shape, name);
      t.data.forEach((x, i) => {
        assert.equal(linked[name].data[i], f16round(x), `${name}[${i}]: ${x} → ${linked[name].data[i]}, f16 gives ${f16round(x)}`);
        exact += linked[name].data[i] === x;
        total++;
      });
    }
    assert.equal(total, 5322);
    assert.ok(exact < total, 'f16 rounding changed most values');
    // The model works as loaded: evaluation and completion.
    await b.page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 60_000 });
    // … and replaying gives the same loss curve and the same file, byte for byte.
    await b.page.click('#btn-replay');
    await b.page.waitForFunction(() => window.__toyformer.replayCheck, null, { timeout: 300_000, polling: 250 });
    const rowsB = await hook(b.page, 'rows');
    assert.deepEqual(rowsB.map((r) => r.loss), rowsA.map((r) => r.loss), 'identical loss arrays');
    assert.deepEqual(rowsB, rowsA, 'identical metrics (accuracy, grad norm, lr too)');
    const expB = await exportBytes(b.page);
    assert.equal(expB.name, expA.name);
    assert.ok(expB.bytes.equals(expA.bytes), 'identical exported bytes');
    const check = await hook(b.page, 'replayCheck');
    assert.deepEqual({ values: check.values, differ: check.differ, link_step: check.link_step }, { values: 5322, differ: 0, link_step: 160 });
    assert.match(await b.page.textContent('#link-detail'), /Replay reproduced the link's weights: all 5,322 values equal after f16 rounding/);
    await shot(b.page, 'link-banner', 'replayed');

    // Export → import through the file picker: the same model, the same bytes out again.
    await b.page.click('#btn-reset');
    await phase(b.page, 'idle');
    await b.page.setInputFiles('#import-file', expA.path);
    await b.page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 60_000 });
    const im = await hook(b.page, 'imported');
    assert.deepEqual([im.config_source, im.task_source, im.step], ['metadata', 'metadata', STEPS]);
    await phase(b.page, 'done');
    const again = await exportBytes(b.page);
    assert.ok(again.bytes.equals(expA.bytes), 'export → import → export gives the same bytes');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('share: the real TransformerLens .pt loads by drag-and-drop and by URL, evaluates, completes and trains on', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open('#v=1&steps=30&batch_size=16');
  const drop = (files) => page.evaluate(async (fs) => {
    const dt = new DataTransfer();
    for (const f of fs) {
      const body = f.url ? await (await fetch(f.url)).arrayBuffer() : f.text;
      dt.items.add(new File([body], f.name));
    }
    const zone = document.getElementById('drop-zone');
    for (const type of ['dragenter', 'dragover', 'drop']) zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, files);
  try {
    // A config JSON that does not fit the file: the error names the tensor and both shapes.
    const wrong = JSON.stringify({ n_layers: 1, d_model: 128, n_ctx: 22, d_head: 64, n_heads: 2, d_vocab: 52, d_vocab_out: 50, attn_only: true, normalization_type: null });
    await drop([{ url: '/fixtures/sort.pt', name: 'sort_fixed_len_list_model.pt' }, { text: wrong, name: 'config.json' }]);
    await page.waitForSelector('#import-error:not([hidden])');
    assert.equal(await page.textContent('#import-error'),
      'sort_fixed_len_list_model.pt + config.json: weights: tensor `blocks.0.attn.W_Q` has shape [1, 128, 128], expected [2, 128, 64]');
    assert.equal(await hook(page, 'phase'), 'idle');

    // Dropped alone: config from the shapes, task guessed (sort n=10 below 50) while another task is selected.
    await page.selectOption('[name="task"]', 'apply-perm');
    await drop([{ url: '/fixtures/sort.pt', name: 'sort_fixed_len_list_model.pt' }]);
    await page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 60_000 });
    const im = await hook(page, 'imported');
    assert.deepEqual({ task: im.task, src: [im.config_source, im.task_source], n: im.n_params, notes: im.notes },
      { task: { task: 'sort', n: 10, max_num: 50 }, src: ['shapes', 'guessed'], n: 81970, notes: [] });
    assert.deepEqual([await page.inputValue('[name="sort_n"]'), await page.inputValue('[name="d_model"]'), await page.inputValue('[name="d_head"]')], ['10', '128', '128']);
    assert.ok(await page.isHidden('#import-error'));
    await page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 120_000 });
    const ev = await hook(page, 'lastEval');
    assert.ok(ev.token_acc > 0.99, `the seed-003 sorter sorts: token accuracy ${ev.token_acc}`);
    await page.fill('#try-input', '42 7 19 3 33 25 11 48 0 36');
    await page.click('#btn-complete');
    await page.waitForFunction(() => window.__toyformer.lastCompletion !== null);
    assert.equal((await hook(page, 'lastCompletion')).tokens.slice(12).join(' '), '0 3 7 11 19 25 33 36 42 48');
    assert.match(await page.textContent('#py-snippet'), /TransformerBridgeConfig\(\*\*json\.load\(open\("toyformer-sort-step0\.json"\)\)\)/);
    await shot(page, 'cell-weights', 'import-drop');
    // A link to it says which model it is (weights too large for a link).
    await page.click('#btn-copy-link');
    await page.waitForFunction(() => window.__toyformer.lastLink);
    assert.match(await page.textContent('#share-status'), /without weights: the model's 81970 parameters need \d+ KB in a link, over the 64 KB limit: share the \.safetensors file instead/);
    // It trains on from the imported weights (Resume: 30 steps), starting near zero loss.
    await page.click('#btn-resume');
    await phase(page, 'done');
    const rows = await hook(page, 'rows');
    assert.equal(rows.length, 30);
    assert.ok(rows[0].loss < 0.1, `first loss ${rows[0].loss} (an untrained model starts near ln 50 = 3.9)`);

    // By URL: a link with model= loads it on open, and keeps model= in the address bar. Each link
    // is opened as in a new tab (sessionStorage cleared): in this tab the same link again would be
    // a return to its last run (the imported model, saved once evaluated), restored instead.
    const newTab = () => page.evaluate(() => sessionStorage.clear());
    await newTab();
    await go(page, '#v=1&model=/fixtures/sort.pt');
    await page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 60_000 });
    assert.equal((await hook(page, 'imported')).n_params, 81970);
    assert.match(fragment(page), /model=%2Ffixtures%2Fsort\.pt/);
    // The query form (?model=URL) works the same: it moves into the fragment.
    await newTab();
    await go(page, '?model=/fixtures/sort.pt');
    await page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 60_000 });
    assert.equal(new URL(page.url()).search, '');
    assert.match(fragment(page), /model=%2Ffixtures%2Fsort\.pt/);
    // URL errors are clear: HTTP status, scheme, size.
    const tryUrl = async (u, re) => {
      await page.fill('#url-input', u);
      await page.click('#btn-url');
      await page.waitForFunction((x) => new RegExp(x).test(document.getElementById('import-error').textContent), re.source, { timeout: 30_000 });
    };
    await tryUrl('/fixtures/missing.pt', /HTTP 404/);
    await tryUrl('http://example.com/model.pt', /only https: URLs \(or files on this site\) can be fetched, not http:\/\/example\.com/);
    await tryUrl('/fixtures/huge.safetensors', /is 400\.0 MB, more than the 300\.0 MB limit/);
    await tryUrl(`${server.url.replace('127.0.0.1', 'localhost')}fixtures/sort.pt`, /only https:|could not fetch/);
    await shot(page, 'cell-weights', 'import-errors');
    assert.deepEqual(errors.filter((e) => !/404|Failed to load resource/.test(e)), []);
  } finally {
    await close();
  }
});

test('share: a reload mid-training restores the run and resumes it exactly; runs list, compare, rename, delete', { timeout: 600_000 }, async () => {
  const steps = 20000;
  const { page, errors, close } = await open(`#${SMALL.replace(`steps=${STEPS}`, `steps=${steps}`)}`);
  try {
    // The worker holds the run at step 100 (still training), so an autosave past step 60 comes
    // while it trains however fast the machine is.
    await page.evaluate(() => window.__toyformer.post({ type: 'hold-at', step: 100 }));
    await page.click('#btn-start');
    // Autosave happens while it trains: reload after a save past step 60.
    await page.waitForFunction(() => (window.__toyformer.lastSave?.step ?? 0) >= 60 && window.__toyformer.phase === 'training', null, { timeout: 300_000, polling: 100 })
      .catch(async (e) => {
        const h = await page.evaluate(() => ({ phase: window.__toyformer.phase, save: window.__toyformer.lastSave, rows: window.__toyformer.rows.length, err: window.__toyformer.saveError }));
        throw new Error(`${e.message}: ${JSON.stringify(h)} ${JSON.stringify(errors)}`);
      });
    const before = await hook(page, 'rows');
    await page.reload();
    await ready(page);
    await page.waitForFunction(() => window.__toyformer.restored, null, { timeout: 60_000 });
    const restored = await hook(page, 'restored');
    assert.ok(restored.step >= 60 && restored.step <= before.length, `restored at ${restored.step}, ${before.length} steps were run`);
    assert.equal(restored.rows, restored.step);
    assert.equal(await hook(page, 'phase'), 'paused');
    const rows = await hook(page, 'rows');
    assert.deepEqual(rows, before.slice(0, restored.step), 'the curves come back as they were');
    assert.equal(await page.evaluate(() => window.__toyformer.chartPoints()), restored.step);
    assert.equal(await page.inputValue('[name="steps"]'), String(steps));
    assert.match(await page.textContent('#autosave-info'), /Restored “sort n=5 · 1L1H d32 · seed 0\/0” at step/);
    await page.click('#btn-resume');
    await phase(page, 'done');
    const resumed = await hook(page, 'rows');
    // The same run without the reload, in the same page.
    await page.click('#btn-reset');
    await phase(page, 'idle');
    await page.click('#btn-start');
    await phase(page, 'done');
    const straight = await hook(page, 'rows');
    assert.equal(straight.length, steps);
    assert.deepEqual(resumed, straight, 'reload + resume is bit-identical to the run that never stopped');

    // Two runs listed; compare their loss curves; rename one (persists); delete the other.
    await page.waitForFunction(() => window.__toyformer.runs?.length === 2 && window.__toyformer.runs.every((r) => r.status === 'done'), null, { timeout: 30_000 });
    const boxes = page.locator('#runs-table .compare');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.waitForFunction(() => window.__toyformer.compared, null, { timeout: 30_000 });
    assert.deepEqual((await hook(page, 'compared')).points, [steps, steps]);
    assert.equal(await page.locator('#runs-compare canvas').count(), 1);
    await page.locator('#runs-table .run-name').nth(1).fill('first try (reloaded)');
    await page.locator('#runs-table .run-name').nth(1).press('Enter');
    await page.waitForFunction(() => window.__toyformer.runs.some((r) => r.name === 'first try (reloaded)'));
    await shot(page, 'cell-runs', 'runs');
    await page.reload();
    await ready(page);
    await page.waitForFunction(() => window.__toyformer.runs?.some((r) => r.name === 'first try (reloaded)'), null, { timeout: 30_000 });
    const first = (await hook(page, 'runs')).find((r) => r.name === 'first try (reloaded)');
    const del = page.locator(`#runs-table tr[data-id="${first.id}"] .delete`);
    await del.click();
    await del.click();
    await page.waitForFunction(() => window.__toyformer.runs.length === 1);
    // Open the remaining run from the table: its curve comes back.
    await page.evaluate(() => { window.__toyformer.restored = null; });
    await page.locator('#runs-table .open').first().click();
    await page.waitForFunction(() => window.__toyformer.restored && window.__toyformer.phase === 'done', null, { timeout: 60_000 });
    assert.equal((await hook(page, 'rows')).length, steps);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('share: a full storage quota is reported, training goes on, and saving recovers', { timeout: 300_000 }, async () => {
  // Simulates the browser refusing writes: put() throws QuotaExceededError while the flag is set.
  const init = () => {
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (...args) {
      if (window.__failQuota) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    };
  };
  const { page, errors, close } = await open(`#${SMALL.replace(`steps=${STEPS}`, 'steps=20000')}`, { init });
  try {
    await page.evaluate(() => { window.__failQuota = true; });
    await page.click('#btn-start');
    await page.waitForSelector('#autosave-status:not([hidden])', { timeout: 60_000 });
    const msg = await page.textContent('#autosave-status');
    assert.match(msg, /Autosave is off: saving the run failed: the browser's storage quota for this page is full \(QuotaExceededError\)\. Delete old runs in the Runs cell or export this model to a file\. Training continues, but unsaved\./);
    await shot(page, 'cell-train', 'quota');
    await page.evaluate(() => { window.__failQuota = false; });
    await phase(page, 'done');
    await page.waitForSelector('#autosave-status', { state: 'hidden', timeout: 30_000 });
    assert.equal((await hook(page, 'lastSave')).step, 20000);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
