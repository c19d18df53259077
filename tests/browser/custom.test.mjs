// Your own data (issue 14) in headless Chromium (CPU backend): a data file dropped on the Data
// cell trains, survives a reload and resumes exactly; its link (carrying the packed data)
// replays bit for bit in a fresh profile; a malformed file shows its errors with their lines
// and trains nothing; a sweep in the page trains on the dropped file. Screenshots: test-output/custom-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const SWEEP_BIN = join(process.env.CARGO_TARGET_DIR ?? 'target', 'release', 'examples', 'sweep');
// A small custom experiment: 1 layer, d_model 32 (fits a link), full batches of 16.
const SMALL = 'v=1&task=custom&n_layers=1&n_heads=1&d_model=32&d_head=32&batch_size=16&lr=0.003';
let server;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer({});
});
after(() => server?.close());

/** Seed 000's permutation data over `letters` (n = 3), the first term before the separator. */
function permText(letters) {
  const out = [];
  const c = [...letters];
  for (let a = 0; a < c.length; a++) for (let b = a + 1; b < c.length; b++) for (let d = b + 1; d < c.length; d++) {
    const e = [c[a], c[b], c[d]];
    const t = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]].map((p) => p.map((i) => e[i]).join(''));
    out.push(`> ${t[0]}| ${t.slice(1).join(' ')}.`);
  }
  return `${out.join('\n')}\n`;
}

async function open(hash) {
  const b = await launch({ webgpu: false });
  const errors = [];
  b.page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  b.page.on('pageerror', (e) => errors.push(String(e)));
  await b.page.setViewportSize({ width: 1100, height: 900 });
  await b.page.goto(`${server.url}#${hash}`);
  await ready(b.page);
  return { ...b, errors };
}
const ready = (page) => page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 120_000 });
const phase = (page, p, timeout = 300_000) => page.waitForFunction((x) => window.__toyformer.phase === x, p, { timeout, polling: 200 });
const hook = (page, expr) => page.evaluate(`window.__toyformer.${expr}`);

/** Drops a file with `text` on the Data cell, as a user's drag and drop would. */
async function drop(page, name, text) {
  const dt = await page.evaluateHandle(([n, t]) => {
    const d = new DataTransfer();
    d.items.add(new File([t], n, { type: 'text/plain' }));
    return d;
  }, [name, text]);
  await page.dispatchEvent('#data-drop', 'drop', { dataTransfer: dt });
  await page.waitForFunction((n) => window.__toyformer.data?.name === n, name, { timeout: 30_000 });
}

test('custom: a malformed file shows its errors with their lines and trains nothing', { timeout: 180_000 }, async () => {
  const { page, errors, close } = await open(SMALL);
  try {
    assert.equal(await page.isVisible('#cell-data'), true);
    await page.setInputFiles('#data-file', { name: 'bad.txt', mimeType: 'text/plain', buffer: Buffer.from('ab|c\nabc\nab|\nx\u0007|y\n') });
    await page.waitForFunction(() => window.__toyformer.data?.name === 'bad.txt', null, { timeout: 30_000 });
    const d = await hook(page, 'data');
    assert.deepEqual([d.ok, d.lines_affected, d.first], [false, 3, [2, 3, 4]]);
    assert.match(await page.textContent('#data-errors'), /line 2: no separator '\|'.*line 3: nothing after the separator.*line 4: the character/s);
    assert.match(await page.textContent('#data-error'), /3 lines with errors; nothing trains/);
    assert.equal(await page.isDisabled('#btn-start'), true, 'Train is refused');
    assert.match(await page.textContent('#task-error'), /line 2: no separator/);
    await page.locator('#cell-data').screenshot({ path: `${OUT}/custom-errors.png` });
    assert.equal((await hook(page, 'rows')).length, 0);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('custom: a dropped file trains, survives a reload and resumes exactly; its link replays bit for bit', { timeout: 600_000 }, async () => {
  const steps = 400;
  const text = permText('abcdefgh');
  const { page, errors, close } = await open(`${SMALL}&steps=${steps}`);
  let link;
  let straight;
  try {
    await drop(page, 'perm3.txt', text);
    assert.equal((await hook(page, 'data')).ok, true);
    assert.equal(await page.isDisabled('#btn-start'), false);
    await page.evaluate(() => window.__toyformer.post({ type: 'hold-at', step: 100 }));
    await page.click('#btn-start');
    await page.waitForFunction(() => (window.__toyformer.lastSave?.step ?? 0) >= 60 && window.__toyformer.phase === 'training', null, { timeout: 300_000, polling: 100 });
    const before = await hook(page, 'rows');
    await page.reload();
    await ready(page);
    await page.waitForFunction(() => window.__toyformer.restored, null, { timeout: 60_000 });
    const restored = await hook(page, 'restored');
    assert.ok(restored.step >= 60, `restored at ${restored.step}`);
    assert.deepEqual(await hook(page, 'rows'), before.slice(0, restored.step));
    assert.match(await page.textContent('#runs-table'), /custom: perm3\.txt \(56 lines/);
    await page.click('#btn-resume');
    await phase(page, 'done');
    const resumed = await hook(page, 'rows');
    await page.click('#btn-reset');
    await phase(page, 'idle');
    await page.click('#btn-start');
    await phase(page, 'done');
    straight = await hook(page, 'rows');
    assert.equal(straight.length, steps);
    assert.deepEqual(resumed, straight, 'reload + resume is bit-identical to the run that never stopped');
    assert.ok(straight.at(-1).loss < 0.5 * straight[0].loss, `loss ${straight[0].loss} → ${straight.at(-1).loss}`);
    // The analysis cells run on the custom task's trained model.
    await page.waitForFunction(() => window.__toyformer.interp?.lastFull?.error === null, null, { timeout: 120_000 })
      .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await page.evaluate(() => window.__toyformer.interp?.lastFull ?? null))}`); });
    assert.ok(await page.locator('#scores-body table.scores tr').count() > 1, 'the Scores cell has a row per head');
    for (const c of ['attention', 'scores']) await page.locator(`#cell-${c}`).screenshot({ path: `${OUT}/custom-${c}.png` });
    // Patching's default corruption changes one prompt character to another seen there: a prompt of the file.
    await page.waitForFunction(() => document.getElementById('patch-corrupt')?.value, null, { timeout: 60_000 });
    const [clean, bad] = [await page.inputValue('#patch-clean'), await page.inputValue('#patch-corrupt')];
    assert.equal([...clean].filter((ch, i) => ch !== bad[i]).length, 1, `${clean} → ${bad}`);
    assert.equal(bad.length, clean.length);
    assert.ok(text.split('\n').some((l) => l.startsWith(`${bad}|`)), `${bad} is a prompt of the file`);
    // The completion box reads and shows the file's labels (characters).
    await page.fill('#try-input', '> abc');
    await page.click('#btn-complete');
    await page.waitForFunction(() => window.__toyformer.lastCompletion !== null, null, { timeout: 60_000 });
    const c = await hook(page, 'lastCompletion');
    assert.equal(c.prompt_len, 5);
    assert.deepEqual(c.tokens.slice(0, 5), ['>', ' ', 'a', 'b', 'c']);
    assert.equal(c.tokens.length, 26);
    link = new URL(page.url()).hash.slice(1);
    assert.match(link, /&d=[A-Za-z0-9_-]{100,}/);
    assert.match(link, /data_hash=[0-9a-f]{16}/);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
  // A fresh profile: the link brings the data; replaying gives the same curve.
  const b = await open(link);
  try {
    assert.equal((await hook(b.page, 'data')).ok, true);
    await b.page.click('#btn-replay');
    await phase(b.page, 'done');
    assert.deepEqual(await hook(b.page, 'rows'), straight, 'the link replays bit for bit');
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test('custom: a link without its data asks for the file and checks its hash', { timeout: 180_000 }, async () => {
  const text = permText('abcdef');
  const { page, errors, close } = await open(`${SMALL}&steps=50&data_hash=0123456789abcdef`);
  try {
    assert.match(await page.textContent('#data-error'), /too large to carry and has no URL: open the file it was made with \(hash 0123456789abcdef\)/);
    assert.equal(await page.isDisabled('#btn-start'), true, 'nothing trains without the data');
    assert.match(await page.textContent('#task-error'), /hash 0123456789abcdef: give the file it was trained on/);
    // a file with another hash is refused
    await page.setInputFiles('#data-file', { name: 'other.txt', mimeType: 'text/plain', buffer: Buffer.from(text) });
    await page.waitForFunction(() => /has hash [0-9a-f]{16}, but the link was made with data of hash 0123456789abcdef/.test(document.getElementById('data-error').textContent), null, { timeout: 30_000 });
    assert.equal(await page.isDisabled('#btn-start'), true);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

/** Sorting the distinct letters of every 2- to 3-letter arrangement of `letters`, `cab=|abc`:
 * lines of different lengths, which score different positions. */
function unevenText(letters) {
  const c = [...letters];
  const out = [];
  for (const a of c) for (const b of c) {
    if (a !== b) out.push(`${a}${b}=|${[a, b].sort().join('')}`);
    for (const d of c) if (a !== b && b !== d && a !== d) out.push(`${a}${b}${d}=|${[a, b, d].sort().join('')}`);
  }
  return `${out.join('\n')}\n`;
}

test('custom: lines scoring different positions train in the page', { timeout: 300_000 }, async () => {
  const steps = 300;
  const { page, errors, close } = await open(`${SMALL}&steps=${steps}`);
  try {
    await drop(page, 'uneven.txt', unevenText('abcde'));
    assert.equal((await hook(page, 'data')).ok, true);
    assert.equal(await page.isDisabled('#btn-start'), false, 'an uneven file is accepted');
    await page.click('#btn-start');
    await phase(page, 'done');
    const rows = await hook(page, 'rows');
    assert.equal(rows.length, steps);
    for (const r of rows) {
      assert.ok(Number.isFinite(r.loss) && r.token_acc >= 0 && r.token_acc <= 1, JSON.stringify(r));
    }
    assert.ok(rows.at(-1).loss < 0.5 * rows[0].loss, `loss ${rows[0].loss} → ${rows.at(-1).loss}`);
    assert.ok(rows.at(-1).token_acc > rows[0].token_acc, `token accuracy ${rows[0].token_acc} → ${rows.at(-1).token_acc}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

/** Every arrangement of 3 distinct letters of `letters` and its reversal, separated by a space. */
function reverseText(letters) {
  const c = [...letters];
  const out = [];
  for (const a of c) for (const b of c) for (const d of c) if (a !== b && b !== d && a !== d) out.push(`${a}${b}${d} ${d}${b}${a}`);
  return `${out.join('\n')}\n`;
}

test('custom: a sweep in the page trains on the dropped file (space separator), as the CLI does', { timeout: 600_000 }, async () => {
  const text = reverseText('efghij'); // 120 lines, 6 labels + pad, T = 6; the built-in example: 4 labels, 64 lines
  const grid = { name: 'custom-rev', task: 'custom', frac_train: 0.75, n_layers: [1, 2], n_heads: 1, d_model: 32, d_head: 16,
    steps: 60, batch_size: 16, lr: 0.003, seed: [0] };
  // the link sets the separator to a space ('+'): the file reads only with it
  const { page, errors, close } = await open(`${SMALL}&custom_separator=+`);
  try {
    assert.equal(await page.inputValue('[name="custom_separator"]'), ' ');
    await drop(page, 'rev.txt', text);
    const data = await hook(page, 'data');
    assert.deepEqual([data.ok, data.examples], [true, 120], 'a space separator reads the file');
    await page.fill('#sweep-grid', JSON.stringify(grid));
    await page.fill('[name="sweep_workers"]', '2');
    await page.click('#btn-sweep-run');
    await page.waitForFunction(() => ['done', 'error'].includes(window.__toyformer.sweep.state), null, { timeout: 540_000, polling: 250 });
    const sw = await hook(page, 'sweep');
    assert.equal(sw.state, 'done', JSON.stringify(sw.error ?? sw.errors));
    assert.deepEqual(sw.errors, []);
    assert.deepEqual(sw.data, { name: 'rev.txt', hash: data.hash });
    assert.match(await page.textContent('#sweep-status'), /2 \/ 2 runs done in .* · on rev\.txt/);
    assert.equal(sw.results.length, 2);
    for (const r of sw.results) {
      const { task, model } = r.spec;
      assert.deepEqual([task.hash, task.name, task.separator, task.data === text], [data.hash, 'rev.txt', ' ', true], 'the run trained on the file');
      assert.equal(task.frac_train, 0.75, "the grid's split is kept");
      assert.deepEqual([model.d_vocab, model.d_vocab_out, model.n_ctx], [7, 7, 6], 'the model is sized from the file');
      assert.ok(Number.isFinite(r.final_loss) && r.final_loss < Math.log(7), `final loss ${r.final_loss}`);
    }
    // the row's link carries the data (packed), its hash and the separator
    for (const row of sw.rows) assert.match(row.link, new RegExp(`task=custom.*&data_hash=${data.hash}&custom_separator=\\+&d=[A-Za-z0-9_-]{40,}`));
    // The same grid on the command line with --data (the release examples exist after `cargo test --release`).
    if (existsSync(SWEEP_BIN)) {
      const dir = mkdtempSync(join(tmpdir(), 'toyformer-custom-sweep-'));
      try {
        writeFileSync(join(dir, 'grid.json'), JSON.stringify(grid));
        writeFileSync(join(dir, 'rev.txt'), text);
        const out = JSON.parse(execFileSync(SWEEP_BIN, ['--grid', join(dir, 'grid.json'), '--data', join(dir, 'rev.txt'), '--separator', ' ', '--json', '--threads', '1'],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
        assert.equal(out.configs.length, 2);
        for (const c of out.configs) {
          const p = sw.rows.find((r) => r.config_index === c.config_index);
          assert.equal(p.n_params, c.n_params);
          assert.ok(Math.abs(p.floor - c.floor) < 1e-12, `floor: page ${p.floor} vs CLI ${c.floor}`);
          // the CPU engine sums in another order with AVX than with wasm's 128-bit vectors
          const rel = Math.abs(p.final_loss.mean - c.final_loss.mean) / c.final_loss.mean;
          assert.ok(rel < 1e-3, `config ${c.config_index}: page ${p.final_loss.mean} vs CLI ${c.final_loss.mean}`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else {
      console.log(`# ${SWEEP_BIN} not built: CLI comparison skipped (run cargo test --release first)`);
    }
    // a row's link opens the config with the file in a new tab
    const [tab] = await Promise.all([page.context().waitForEvent('page'), page.click('#sweep-table tbody tr a >> nth=0')]);
    await tab.waitForFunction(() => window.__toyformer?.data?.ok, null, { timeout: 60_000 });
    assert.equal((await tab.evaluate(() => window.__toyformer.data)).hash, data.hash);
    assert.equal(await tab.inputValue('[name="custom_separator"]'), ' ');
    await tab.close();
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('custom: data from a URL loads; refused (CORS) fetches, HTTP status, size and scheme errors are named', { timeout: 180_000 }, async () => {
  const text = permText('abcdef');
  const { page, errors, close } = await open(`${SMALL}&steps=20`);
  const big = Buffer.alloc(16 * 1024 * 1024 + 1, 'a');
  await page.route('https://data.invalid/**', (route) => {
    const name = new URL(route.request().url()).pathname.slice(1);
    const cors = { 'access-control-allow-origin': '*' };
    if (name === 'ok.txt') return route.fulfill({ status: 200, headers: cors, contentType: 'text/plain', body: text });
    // Playwright's fulfilled responses skip the browser's CORS check, so a refused fetch is made by hand:
    // to the page, a response without Access-Control-Allow-Origin is the same TypeError as a failed network
    if (name === 'nocors.txt') return route.abort('accessdenied');
    if (name === 'big.txt') return route.fulfill({ status: 200, headers: cors, contentType: 'text/plain', body: big });
    return route.fulfill({ status: 404, headers: cors, body: 'not here' });
  });
  const load = async (url, expect) => {
    await page.fill('#data-url-input', url);
    await page.click('#btn-data-url');
    await page.waitForFunction((re) => new RegExp(re).test(document.getElementById('data-error').textContent), expect.source, { timeout: 60_000 })
      .catch(async (e) => { throw new Error(`${url}: ${e.message}: "${await page.textContent('#data-error')}"`); });
  };
  try {
    await load('https://data.invalid/nocors.txt', /could not fetch https:\/\/data\.invalid\/nocors\.txt: .*CORS: it must send Access-Control-Allow-Origin/);
    await load('https://data.invalid/missing.txt', /fetching https:\/\/data\.invalid\/missing\.txt failed: HTTP 404/);
    await load('https://data.invalid/big.txt', /big\.txt is (16\.0 MB, )?more than the 16\.0 MB limit for data/);
    await load('http://data.invalid/ok.txt', /only https: URLs \(or files on this site\) can be fetched, not http:\/\/data\.invalid/);
    assert.equal(await hook(page, 'data'), undefined, 'nothing loaded');
    assert.equal(await page.isDisabled('#btn-start'), false, 'the built-in example is still the task');
    await page.fill('#data-url-input', 'https://data.invalid/ok.txt');
    await page.click('#btn-data-url');
    await page.waitForFunction(() => window.__toyformer.data?.name === 'ok.txt', null, { timeout: 60_000 });
    assert.deepEqual([(await hook(page, 'data')).ok, (await hook(page, 'data')).examples], [true, 20]);
    assert.equal(await page.inputValue('[name="data_url"]'), 'https://data.invalid/ok.txt');
    await page.waitForFunction(() => /data_url=https/.test(location.hash), null, { timeout: 10_000 });
    assert.doesNotMatch(new URL(page.url()).hash, /&d=/, 'a link carries the URL, not the data');
    assert.equal(errors.filter((e) => !/data\.invalid|Failed to load resource|CORS/.test(e)).length, 0, errors.join('\n'));
  } finally {
    await close();
  }
});
