// Issue 7 in the page (headless Chromium, CPU): the Sweep cell runs a grid in parallel workers
// and gives the numbers the native CLI gives; its table sorts and its rows open their runs; a
// bad grid is named. The presets and the study's links (docs/FINDINGS.md) open with every
// setting they carry (held-out split, reduce_on_plateau, β2); a held-out run evaluates both
// sides of its split. Screenshots: test-output/sweep-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const SWEEP_BIN = join(process.env.CARGO_TARGET_DIR ?? 'target', 'release', 'examples', 'sweep');
const server = serveDuringTests();

const open = (hash = '') => openNotebook(`${server.url}${hash}`, { webgpu: false });
const value = (page, key) => page.inputValue(`[name="${key}"]`);
const checked = (page, key) => page.isChecked(`[name="${key}"]`);
const notes = (page) => page.locator('#link-notes li').allTextContents();
// Opens the page at `hash` with a full load (a goto that changes only the fragment would be a same-document
// navigation, and the page's own reload on hashchange would race the test).
async function openAt(page, hash) {
  await page.goto('about:blank');
  await page.goto(`${server.url}${hash}`);
  await page.waitForFunction(() => window.__toyformer?.phase === 'idle', null, { timeout: 60_000 });
}

// 2 widths × 2 seeds of a small sort task: 4 runs, a few seconds each.
const GRID = { name: 'widths', task: 'sort', n: 4, max_num: 8, d_model: [16, 32], d_head: 16, steps: 80,
  batch_size: 16, lr: 0.003, seed: [0, 1], eval_samples: 256 };

test('sweep: a grid runs in parallel workers, matches the CLI, sorts, opens its runs; a bad grid is named', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open();
  try {
    await page.fill('#sweep-grid', JSON.stringify(GRID, null, 1));
    await page.fill('[name="sweep_workers"]', '2');
    await page.click('#btn-sweep-run');
    await page.waitForFunction(() => window.__toyformer.sweep.state === 'done', null, { timeout: 540_000, polling: 250 });
    const sw = await page.evaluate(() => window.__toyformer.sweep);
    assert.equal(sw.workers, 2, 'two workers ran');
    assert.deepEqual(sw.errors, []);
    assert.equal(sw.results.length, 4);
    assert.equal(sw.rows.length, 2, 'one row per config');
    for (const r of sw.rows) {
      assert.equal(r.runs, 2);
      assert.equal(r.final_loss.n, 2);
      assert.ok(r.final_loss.min > r.floor && r.final_loss.max < Math.log(8), `final loss ${JSON.stringify(r.final_loss)} between the floor and chance`);
      assert.ok(r.eval_token_acc.mean > 0.2, `token accuracy ${r.eval_token_acc.mean}`);
      assert.match(r.link, /^#v=1&task=sort&sort_n=4&max_num=8&/);
    }
    assert.equal(await page.locator('#sweep-table tbody tr').count(), 2);

    // Download: one JSON line per run, the format of `examples/sweep --out`.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#btn-sweep-download')]);
    assert.equal(dl.suggestedFilename(), 'toyformer-sweep-widths.jsonl');
    const jsonl = readFileSync(await dl.path(), 'utf8');
    const lines = jsonl.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 4);
    assert.deepEqual(lines.map((l) => l.spec.index).sort(), [0, 1, 2, 3]);
    for (const l of lines) assert.equal(l.final_loss, sw.results.find((r) => r.spec.index === l.spec.index).final_loss);
    assert.match(await page.textContent('#sweep-status'), /4 \/ 4 runs done in/);

    // The same grid on the command line (the release examples exist after `cargo test --release`).
    if (existsSync(SWEEP_BIN)) {
      const dir = mkdtempSync(join(tmpdir(), 'toyformer-sweep-'));
      try {
        writeFileSync(join(dir, 'grid.json'), JSON.stringify(GRID));
        const out = JSON.parse(execFileSync(SWEEP_BIN, ['--grid', join(dir, 'grid.json'), '--json', '--threads', '2'],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
        assert.equal(out.configs.length, 2);
        // The page's download resumes on the command line: nothing is run again, the summary is the page's.
        writeFileSync(join(dir, 'page.jsonl'), jsonl);
        const r = spawnSync(SWEEP_BIN, ['--grid', join(dir, 'grid.json'), '--json', '--out', join(dir, 'page.jsonl'), '--resume'],
          { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /resume: 4 of 4 runs already in/);
        const resumed = JSON.parse(r.stdout);
        for (const c of resumed.configs) {
          const p = sw.rows.find((r) => r.config_index === c.config_index);
          assert.deepEqual(c.final_loss, p.final_loss, 'resumed from the page\'s runs: the same numbers exactly');
        }
        for (const [i, c] of out.configs.entries()) {
          const p = sw.rows.find((r) => r.config_index === c.config_index);
          // The same library, data stream and init; the CPU engine sums in a different order with
          // AVX than with wasm's 128-bit vectors, so allow float rounding over 80 steps.
          for (const k of ['mean', 'min', 'max']) {
            const rel = Math.abs(p.final_loss[k] - c.final_loss[k]) / c.final_loss[k];
            assert.ok(rel < 1e-3, `config ${i} final_loss.${k}: page ${p.final_loss[k]} vs CLI ${c.final_loss[k]}`);
          }
          assert.equal(p.n_params, c.n_params);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else {
      console.log(`# ${SWEEP_BIN} not built: CLI comparison skipped (run cargo test --release first)`);
    }

    // Sorting: by final loss, ascending then descending; the DOM follows.
    const domOrder = () => page.locator('#sweep-table tbody tr').evaluateAll((trs) => trs.map((t) => Number(t.dataset.config)));
    const byLoss = [...sw.rows].sort((a, b) => a.final_loss.mean - b.final_loss.mean).map((r) => r.config_index);
    await page.click('#sweep-table button[data-key="final_loss.mean"]');
    assert.deepEqual(await domOrder(), byLoss);
    await page.click('#sweep-table button[data-key="final_loss.mean"]');
    assert.deepEqual(await domOrder(), [...byLoss].reverse());
    assert.match(await page.textContent('#sweep-table button[data-key="final_loss.mean"]'), /▼/);
    await page.locator('#cell-sweep').screenshot({ path: `${OUT}/sweep-cell.png` });

    // A row opens its config in a new tab, with its settings in the form.
    const wide = sw.rows.find((r) => r.label.d_model === 32);
    const [tab] = await Promise.all([
      page.context().waitForEvent('page'),
      page.click(`#sweep-table tr[data-config="${wide.config_index}"] a`),
    ]);
    await tab.waitForFunction(() => window.__toyformer?.phase === 'idle', null, { timeout: 60_000 });
    assert.equal(await value(tab, 'task'), 'sort');
    assert.equal(await value(tab, 'sort_n'), '4');
    assert.equal(await value(tab, 'd_model'), '32');
    assert.equal(await value(tab, 'steps'), '80');
    assert.deepEqual(await notes(tab), [], 'the row link decodes without notes');
    await tab.close();

    // A bad grid: named, nothing runs.
    await page.fill('#sweep-grid', '{"task": "sort", "n_layerz": [1, 2]}');
    await page.click('#btn-sweep-run');
    await page.waitForSelector('#sweep-grid-error:not([hidden])');
    assert.match(await page.textContent('#sweep-grid-error'), /n_layerz/);
    await page.fill('#sweep-grid', '{"task": "sort", "n": [3, 4');
    await page.click('#btn-sweep-run');
    await page.waitForFunction(() => /grid/.test(document.getElementById('sweep-grid-error').textContent)
      && !/n_layerz/.test(document.getElementById('sweep-grid-error').textContent));
    assert.equal(await page.evaluate(() => window.__toyformer.sweep.state), 'error');
    await page.locator('#cell-sweep').screenshot({ path: `${OUT}/sweep-bad-grid.png` });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('presets open the seed experiments; FINDINGS links carry split, plateau and β2; a held-out run evaluates both sides', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open('#v=1&task=permutations&perm_n=3&d_model=16&d_head=8&steps=1000000&batch_size=4');
  try {
    // While a run trains, a preset asks first: the first click leaves the run alone, a second replaces it.
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'training' && window.__toyformer.rows.length > 0,
      null, { timeout: 60_000 });
    await page.click('#presets a[data-preset="seed-003"]');
    // read in one round trip: the pill asks for 5 s, and the second click must come within them
    // even on a loaded machine
    const first = await page.evaluate(() => ({ pill: document.querySelector('#presets a[data-preset="seed-003"]').textContent,
      phase: window.__toyformer.phase, perm_n: document.querySelector('[name="perm_n"]').value }));
    await page.click('#presets a[data-preset="seed-003"]');
    assert.match(first.pill, /replace the training run\?/);
    assert.equal(first.phase, 'training', 'the first click does not stop the run');
    assert.equal(first.perm_n, '3');
    // the run is saved, then the page reloads with the preset (ready: past restoring a run)
    await page.waitForFunction(() => window.__toyformer?.ready && window.__toyformer.phase === 'idle'
      && document.querySelector('[name="task"]')?.value === 'sort', null, { timeout: 60_000 });
    // the preset wins over the run the tab showed (that reload opens a link, it is no return),
    // and the replaced run is kept in the Runs cell
    assert.equal(await value(page, 'task'), 'sort');
    assert.equal(await value(page, 'd_head'), '128');
    assert.equal(await page.evaluate(() => window.__toyformer.restored), undefined, 'the old run is not restored');
    const kept = await page.evaluate(() => window.__toyformer.runs);
    assert.ok(kept.some((r) => r.name.startsWith('permutations n=3') && r.steps_done > 0),
      `the replaced run is saved in the Runs cell: ${JSON.stringify(kept)}`);
    // a reload now returns to the preset, not to the replaced run
    await page.reload();
    await page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 60_000 });
    assert.equal(await value(page, 'task'), 'sort');
    assert.equal(await page.evaluate(() => window.__toyformer.restored), undefined, 'a reload does not restore the replaced run');

    // Presets: links in the header; each opens its experiment with these fields.
    const presets = {
      'seed-000': { task: 'permutations', perm_n: '4', d_head: '64', batch_size: '32', ln: true },
      'seed-003': { task: 'sort', sort_n: '10', max_num: '50', d_head: '128', batch_size: '256', ln: false },
    };
    for (const [id, want] of Object.entries(presets)) {
      // a new fragment reloads the page (share.js): wait for that load, not just for the old page
      await Promise.all([page.waitForEvent('load', { timeout: 60_000 }), page.click(`#presets a[data-preset="${id}"]`)]);
      await page.waitForFunction(([t, b]) => window.__toyformer?.phase === 'idle'
        && document.querySelector('[name="task"]')?.value === t && document.querySelector('[name="batch_size"]')?.value === b,
      [want.task, want.batch_size], { timeout: 60_000 });
      for (const [k, v] of Object.entries(want)) {
        assert.equal(typeof v === 'boolean' ? await checked(page, k) : await value(page, k), v, `preset ${id}: ${k}`);
      }
      assert.deepEqual(await notes(page), [], `preset ${id} decodes without notes`);
      if (id === 'seed-000') await page.locator('header').screenshot({ path: `${OUT}/sweep-presets.png` });
    }

    // Every link of docs/FINDINGS.md decodes without notes; the seed's settings keep plateau and β2.
    const links = [...readFileSync('docs/FINDINGS.md', 'utf8').matchAll(/http:\/\/127\.0\.0\.1:8000\/(#v=1&\S+)/g)].map((m) => m[1]);
    assert.ok(links.length >= 10, `${links.length} links in FINDINGS.md`);
    for (const l of links) {
      await openAt(page, l);
      assert.deepEqual(await notes(page), [], `FINDINGS link ${l} decodes without notes`);
      const want = Object.fromEntries(l.slice(1).split('&').map((kv) => kv.split('=')));
      for (const [k, v] of Object.entries(want)) {
        if (k === 'v') continue;
        const inp = page.locator(`[name="${k}"]`);
        const got = (await inp.getAttribute('type')) === 'checkbox' ? String(await inp.isChecked()) : await inp.inputValue();
        assert.equal(Number.isNaN(Number(v)) ? got : Number(got), Number.isNaN(Number(v)) ? v : Number(v), `${l}: ${k}`);
      }
    }

    // A held-out permutations run with the seed's scheduler: trains on the CPU, says why, and
    // evaluates the held-out and the training side of its split.
    const frag = '#v=1&task=permutations&perm_n=3&holdout=0.5&split_seed=3&d_model=32&d_head=16&steps=60&batch_size=8'
      + '&lr=0.003&schedule=reduce_on_plateau&plateau_factor=0.5&plateau_patience=1&beta2=0.99';
    await openAt(page, frag);
    assert.deepEqual(await notes(page), []);
    assert.equal(await value(page, 'holdout'), '0.5');
    assert.equal(await value(page, 'split_seed'), '3');
    assert.equal(await value(page, 'schedule'), 'reduce_on_plateau');
    assert.equal(await value(page, 'plateau_patience'), '1');
    const hash = new URL(page.url()).hash;
    for (const kv of ['holdout=0.5', 'split_seed=3', 'schedule=reduce_on_plateau', 'plateau_factor=0.5', 'plateau_patience=1', 'beta2=0.99']) {
      assert.ok(hash.includes(kv), `${kv} round-trips into the address bar (${hash})`);
    }
    // Copy link carries them too, and the copied link opens with the same fields.
    await page.click('#btn-copy-link');
    await page.waitForFunction(() => window.__toyformer.lastLink, null, { timeout: 30_000 });
    const copied = await page.evaluate(() => window.__toyformer.lastLink);
    for (const kv of ['holdout=0.5', 'split_seed=3', 'schedule=reduce_on_plateau', 'plateau_factor=0.5', 'plateau_patience=1', 'beta2=0.99']) {
      assert.ok(copied.includes(kv), `${kv} is in the copied link (${copied})`);
    }
    await openAt(page, new URL(copied).hash);
    assert.deepEqual(await notes(page), []);
    for (const [k, v] of [['holdout', '0.5'], ['split_seed', '3'], ['schedule', 'reduce_on_plateau'], ['plateau_factor', '0.5'],
      ['plateau_patience', '1'], ['beta2', '0.99'], ['perm_n', '3']]) {
      assert.equal(await value(page, k), v, `copied link: ${k}`);
    }
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 300_000, polling: 250 });
    assert.match(await page.textContent('#backend-note'), /reduce_on_plateau/);
    const rows = await page.evaluate(() => window.__toyformer.rows);
    assert.equal(rows.length, 60);
    assert.ok(rows.some((r) => r.lr < 0.003), `the plateau scheduler lowered the rate: ${[...new Set(rows.map((r) => r.lr))]} losses ${rows.map((r) => r.loss.toFixed(3))}`);
    await page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 120_000 });
    const ev = await page.evaluate(() => window.__toyformer.lastEval);
    assert.ok(ev.train, 'the report has the training side of the split');
    assert.ok(Number.isFinite(ev.loss) && Number.isFinite(ev.train.loss));
    assert.match(await page.textContent('#eval-facts'), /held-out .* train/);
    await page.locator('#cell-eval').screenshot({ path: `${OUT}/sweep-eval-holdout.png` });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});
