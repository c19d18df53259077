// The Task analyses cell in headless Chromium: the shared modular-subtraction model (1 layer,
// MLP) loaded into the analysis cells shows its hypothesis, head types, Fourier analysis
// (the key frequencies 11, 17, 37, 44 that tests/native/interp_fourier.rs checks against a
// naive DFT) and ranked neurons; the seed-003 sorter (1 layer, attention-only) hides the cell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serveDuringTests, launch } from '../../pkg-config/browser.mjs';

const server = serveDuringTests();

async function open() {
  const b = await launch({ webgpu: false });
  const errors = [];
  b.page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  b.page.on('pageerror', (e) => errors.push(String(e.stack ?? e)));
  await b.page.goto(server.url);
  await b.page.waitForFunction(() => window.__toyformer?.phase === 'idle', null, { timeout: 60_000 });
  return { ...b, errors };
}

async function analyse(page, task, file) {
  const bytes = readFileSync(`../shared/reference-models/${file}`);
  await page.evaluate(([t, b64]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    window.__toyformer.analyseModel(t, bytes);
  }, [task, bytes.toString('base64')]);
  await page.waitForFunction(() => window.__toyformer.interp?.lastFull?.error === null, null, { timeout: 300_000, polling: 250 });
}

test('task analyses cell: the modular-subtraction model, then a sorter that hides it', { timeout: 600_000 }, async () => {
  const { page, errors, close } = await open();
  try {
    await analyse(page, { task: 'mod-sub' }, 'modular_subtraction_model.pt');
    assert.equal(await page.locator('#cell-analyses').isHidden(), false);
    const key = await page.textContent('#analyses-body .fourier-key');
    assert.match(key, /key frequencies 11, 17, 37, 44/);
    assert.match(await page.textContent('#analyses-body .hyp-claim'), /key Fourier frequencies: holds/);
    const spectrum = await page.locator('#analyses-body table.fourier-spectrum tr').nth(1).locator('td').allTextContents();
    assert.equal(spectrum[0], '44', 'the largest embedding frequency');
    assert.equal(await page.locator('#analyses-body table.ht-table tr').count(), 3, 'a header and two heads');
    assert.equal(await page.locator('#analyses-body table.neuron-table tr').count(), 11, 'a header and ten neurons');
    // the neuron heatmap picker: the most important neuron first, then the second; each map's
    // largest activation is at the table's top input, with its value
    for (const row of [1, 2]) {
      const cells = await page.locator('#analyses-body table.neuron-table tr').nth(row).locator('td').allTextContents();
      const neuron = Number(cells[0].slice(1));
      if (row === 2) await page.selectOption('#analyses-body select.neuron-pick', String(neuron));
      await page.waitForFunction((n) => window.__toyformer.interp.neuronMap?.neuron === n, neuron, { timeout: 60_000 });
      const map = await page.evaluate(() => window.__toyformer.interp.neuronMap);
      assert.equal(map.rows, 113);
      const [, a, b, x] = cells[3].match(/^\((\d+), (\d+)\) ([-0-9.e]+)/).map(Number);
      const at = map.data[a * 113 + b];
      assert.ok(Math.abs(at - x) <= 0.005 * Math.abs(x) + 1e-6, `n${neuron} at (${a}, ${b}): map ${at}, table ${x}`);
      assert.ok(Math.abs(Math.max(...map.data) - at) <= 1e-6, `n${neuron}: the map's largest value is at (${a}, ${b})`);
      if (row === 2) assert.match(await page.evaluate(() => location.hash), new RegExp(`view_neuron=${neuron}\\b`));
    }
    // the progress measures of the one snapshot: the trained model's restricted loss is small
    await page.click('#analyses-body .progress-btn');
    await page.waitForSelector('#analyses-body table.progress-table');
    const prog = await page.locator('#analyses-body table.progress-table tr').nth(1).locator('td').allTextContents();
    assert.ok(Number(prog[3]) < 0.01 && Number(prog[4]) > 1, `restricted ${prog[3]}, excluded ${prog[4]}`);
    // the Timeline's progress curves: the one kept snapshot, the same Gini as the Fourier cell
    await page.waitForFunction(() => window.__toyformer.interp.extras()?.progress, null, { timeout: 120_000, polling: 250 });
    const pc = await page.evaluate(() => window.__toyformer.interp.extras().progress);
    assert.equal(pc.steps.length, 1);
    assert.ok(pc.restricted_loss[0] < 0.01 && pc.excluded_loss[0] > 1, JSON.stringify(pc));
    const gini = Number((await page.textContent('#analyses-body .fourier-loss')).match(/Gini ([0-9.]+)/)[1]);
    assert.ok(Math.abs(pc.gini[0] - gini) < 0.006, `Gini ${pc.gini[0]} vs the Fourier cell's ${gini}`);
    assert.ok(pc.sum_sq_weights[0] > 0);
    assert.equal(await page.locator('#timeline-body .tl-extra .chart').count(), 2, 'losses, Gini and sum of squares');
    // neuron ablation (zero, the Interventions cell's default): the ten most important neurons matter
    await page.click('#analyses-body .neuron-ablate-top');
    await page.waitForFunction(() => document.querySelector('#analyses-body .neuron-ablation')?.dataset.loss !== undefined);
    const abl = await page.locator('#analyses-body .neuron-ablation').evaluate((e) => ({ ...e.dataset, text: e.textContent }));
    assert.ok(Number(abl.loss) > Number(abl.baseLoss), JSON.stringify(abl));
    assert.match(abl.text, /zero-ablating 10 neurons \(n32, n148/);
    await page.locator('#cell-analyses').screenshot({ path: 'test-output/analyses-mod-sub.png' });
    // the same neurons ablated from the Interventions cell: the same loss; none ablated: the
    // head-ablation baseline's loss; bad indices get errors naming them
    const ids = (await page.locator('#analyses-body table.neuron-table tr td:first-child').allTextContents()).map((t) => t.slice(1));
    const box = page.locator('#interventions-body .neuron-ablation-box');
    assert.equal(await box.isHidden(), false);
    const ablateFrom = async (text) => {
      await box.locator('.na-ids').fill(text);
      await box.locator('.na-result').evaluate((e) => { e.textContent = ''; delete e.dataset.loss; });
      await box.locator('button[type=submit]').click();
      await page.waitForFunction(() => {
        const t = document.querySelector('#interventions-body .na-result').textContent;
        return t !== '' && t !== 'ablating…';
      });
      return box.locator('.na-result').evaluate((e) => ({ ...e.dataset, text: e.textContent }));
    };
    const got = await ablateFrom(ids.join(', '));
    assert.equal(got.loss, abl.loss, `${got.text} vs ${abl.text}`);
    assert.match(await page.evaluate(() => location.hash), new RegExp(`view_ablate_neurons=${ids.join(',')}`));
    const none = await ablateFrom('');
    const base = (await page.textContent('#ablation-result')).match(/loss ([-0-9.e]+)/)[1];
    assert.ok(Math.abs(Number(none.loss) - Number(base)) <= 0.005 * Number(base), `${none.text} vs ${base}`);
    assert.match((await ablateFrom('3, x')).text, /"x" is not a neuron index/);
    assert.match((await ablateFrom('9999')).text, /9999 is out of range \(the layer has 512 neurons\)/);
    await analyse(page, { task: 'sort', n: 10, max_num: 50 }, 'sort_fixed_len_list_model.pt');
    await page.waitForFunction(() => document.getElementById('cell-analyses').hidden);
    await page.waitForFunction(() => window.__toyformer.interp.extras() === null, null, { timeout: 60_000 });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('task analyses cell: an induction model trained in the page has a layer-1 induction head', { timeout: 600_000 }, async () => {
  const b = await launch({ webgpu: false });
  const errors = [];
  b.page.on('pageerror', (e) => errors.push(String(e.stack ?? e)));
  try {
    const frag = 'task=induction&induction_k=5&induction_n_tokens=12&d_model=32&d_head=16&batch_size=32&lr=0.003&steps=400';
    await b.page.goto(`${server.url}#v=1&${frag}`);
    await b.page.waitForFunction(() => window.__toyformer?.phase === 'idle', null, { timeout: 60_000 });
    await b.page.selectOption('[name="backend"]', 'cpu');
    await b.page.click('#btn-start');
    await b.page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 540_000, polling: 500 });
    await b.page.waitForFunction(() => document.querySelectorAll('#analyses-body table.ht-table tr').length === 5
      && window.__toyformer.interp?.last?.error === null, null, { timeout: 120_000, polling: 250 });
    const rows = [];
    for (let i = 1; i < 5; i += 1) rows.push(await b.page.locator('#analyses-body table.ht-table tr').nth(i).locator('td').allTextContents());
    console.log('induction trained in the page (head, previous-token, duplicate-token, induction):', JSON.stringify(rows));
    const l1 = rows.filter((r) => r[0].startsWith('L1')).map((r) => Number(r[3]));
    assert.ok(Math.max(...l1) > 0.5, `layer-1 induction scores ${l1}`);
    assert.match(await b.page.textContent('#analyses-body .hyp-claim'), /previous-token head K-composes/);
    // the QK cell of a layer-1 head shows the same K-composition paths into it, and its button
    // switches the key side to the most diagonal one
    const paths = (await b.page.locator('#analyses-body table.ht-paths tr').allTextContents()).slice(1);
    await b.page.click('#qk-body .head-picker [data-head="L1H0"]');
    await b.page.waitForFunction(() => /L0H0 → score/.test(document.querySelector('#qk-body .qk-induction')?.textContent ?? '')
      && /^L1H0/.test(document.getElementById('qk-brief').textContent), null, { timeout: 120_000, polling: 250 });
    const line = await b.page.textContent('#qk-body .qk-induction');
    const into = await b.page.$$eval('#analyses-body table.ht-paths tr', (trs) => trs.slice(1)
      .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)).filter((r) => r[0].endsWith('→ L1H0')));
    assert.equal(into.length, 2, JSON.stringify(paths)); // one path from each layer-0 head
    for (const [pair, score, diag] of into) {
      assert.ok(line.includes(`${pair.split(' ')[0]} → score ${score}, diagonal ${diag}`), `${line} lacks ${pair} ${score} ${diag}`);
    }
    const best = into.reduce((a, r) => (Number(r[2]) > Number(a[2]) ? r : a))[0].split(' ')[0];
    await b.page.click('#qk-body .qk-induction button');
    await b.page.waitForFunction((h) => document.getElementById('qk-k-through').value === `0,${h.slice(3)}`
      && (document.querySelector('#qk-body .qk-argmax')?.textContent ?? '').includes(`·${h}`), best, { timeout: 120_000, polling: 250 });
    // the head-type curves under the Timeline: at most 16 snapshots, ending at the last kept one
    // with the scores the Task analyses table shows for it
    await b.page.waitForFunction(() => {
      const h = window.__toyformer.interp.extras()?.heads;
      return h && h.steps.at(-1) === window.__toyformer.interp.timeline.at(-1).step;
    }, null, { timeout: 120_000, polling: 250 });
    const hc = await b.page.evaluate(() => window.__toyformer.interp.extras().heads);
    assert.ok(hc.steps.length >= 2 && hc.steps.length <= 16, `${hc.steps.length} snapshots`);
    assert.ok(hc.steps.every((s, i) => i === 0 || s > hc.steps[i - 1]));
    assert.deepEqual(hc.heads, rows.map((r) => r[0]));
    assert.equal(hc.series.length, 12);
    rows.forEach((r, hi) => r.slice(1).forEach((v, m) => {
      const last = hc.values[hi * 3 + m].at(-1);
      assert.ok(Math.abs(last - Number(v)) < 0.006, `${hc.series[hi * 3 + m]}: curve ${last}, table ${v}`);
    }));
    const ind = (i) => Math.max(...[2, 3].map((hi) => hc.values[hi * 3 + 2].at(i)));
    assert.ok(ind(0) < 0.5 && ind(-1) > 0.5, `layer-1 induction ${ind(0)} at the first snapshot, ${ind(-1)} at the last`);
    await b.page.locator('#cell-timeline').screenshot({ path: 'test-output/timeline-head-types.png' });
    assert.deepEqual(errors, []);
  } finally {
    await b.close();
  }
});
