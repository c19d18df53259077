// The Circuit cell in headless Chromium on the seed-003 sorter (loaded as a file would be):
// ACDC discovers embed → L0H0 → logits, the graph is drawn, clicking the L0H0 → logits edge
// takes it out and the faithfulness drops, and the link (view state in the URL) reopens the
// same hand-edited circuit. Typed clean/corrupted pairs: an identical pair leaves nothing to patch
// (no edge matters, and logit difference explains why it cannot be used), two real pairs give a
// circuit on 2 pairs, bad text shows its error and changes nothing, and the link reopens the typed
// pairs. Screenshots: test-output/circuit-seed003.png, circuit-typed.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { serveDuringTests, launch } from '../../pkg-config/browser.mjs';

const server = serveDuringTests();

async function open(query = '') {
  const b = await launch({ webgpu: false });
  const errors = [];
  b.page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  b.page.on('pageerror', (e) => errors.push(String(e.stack ?? e)));
  await b.page.setViewportSize({ width: 1200, height: 1000 });
  await b.page.goto(server.url + query);
  await b.page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 60_000 });
  return { ...b, errors };
}

async function loadSeed003(page) {
  const bytes = readFileSync('../shared/reference-models/sort_fixed_len_list_model.pt');
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    window.__toyformer.analyseModel({ task: 'sort', n: 10, max_num: 50 }, bytes);
  }, bytes.toString('base64'));
}

const faith = (page) => page.getAttribute('#circuit-faith', 'data-loss-recovered').then(Number);

test('Circuit cell: discovers, draws, toggles an edge, faithfulness changes, link round-trips', { timeout: 300_000 }, async () => {
  // the cell is closed by default (its discovery reruns with every snapshot): the link opens it
  const { page, errors, close } = await open('#v=1&open_circuit=true');
  let link;
  let toggled;
  try {
    await loadSeed003(page);
    await page.waitForFunction(() => document.getElementById('circuit-faith')?.dataset.edges !== undefined, null, { timeout: 120_000 });
    assert.match(await page.textContent('#circuit-faith'), /Circuit: 4 of 9 edges/);
    const before = await faith(page);
    assert.ok(before >= 0.95, `loss recovered ${before}`);
    // the graph: 4 nodes (embed, pos_embed, L0H0, logits) and 9 edges, 4 of them in
    assert.equal(await page.locator('#circuit-body .circuit-node').count(), 4);
    assert.equal(await page.locator('#circuit-body path.circuit-edge').count(), 9);
    assert.equal(await page.locator('#circuit-body path.circuit-edge[data-in="1"]').count(), 4);
    const title = await page.locator('#circuit-body path[data-edge="8"] title').textContent();
    assert.match(title, /^L0H0 → logits: score \d/);
    // out goes L0H0 → logits: the circuit no longer reaches the answer
    await page.locator('#circuit-body path[data-edge="8"]').dispatchEvent('click');
    await page.waitForFunction(() => document.getElementById('circuit-faith').dataset.edges === '3', null, { timeout: 60_000 });
    toggled = await faith(page);
    assert.ok(toggled < 0.5, `loss recovered without L0H0 → logits: ${toggled}`);
    await page.waitForFunction(() => /view_circuit_toggles=8/.test(location.href) && /open_circuit=true/.test(location.href), null, { timeout: 10_000 });
    link = page.url();
    await page.locator('#cell-circuit').screenshot({ path: 'test-output/circuit-seed003.png' });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
  // the link reopens the same circuit
  const again = await open(new URL(link).hash);
  try {
    assert.equal(await again.page.inputValue('[name="view_circuit_toggles"]'), '8');
    await loadSeed003(again.page);
    await again.page.waitForFunction(() => document.getElementById('circuit-faith')?.dataset.edges === '3', null, { timeout: 120_000 });
    assert.equal(await faith(again.page), toggled);
    assert.deepEqual(again.errors, []);
  } finally {
    await again.close();
  }
});

const result = (page) => page.getAttribute('#circuit-faith', 'data-result').then(JSON.parse);
const run = (page) => page.getAttribute('#circuit-faith', 'data-run').then(Number);
const errorCount = (page) => page.evaluate(() => Number(document.querySelector('#circuit-body .error').dataset.count ?? 0));
/** Waits for a result newer than `n` or an error after the first `m`. */
const next = (page, n, m) => page.waitForFunction(([k, e]) => Number(document.getElementById('circuit-faith').dataset.run) > k
  || Number(document.querySelector('#circuit-body .error').dataset.count ?? 0) > e, [n, m], { timeout: 120_000 });
/** Types the pairs and presses Use pairs; waits for a newer result (or an error). */
async function usePairs(page, clean, corrupt) {
  const [n, m] = [await run(page), await errorCount(page)];
  await page.fill('[name="circuit-clean"]', clean);
  await page.fill('[name="circuit-corrupt"]', corrupt);
  await page.click('#circuit-body button[type="submit"]');
  await next(page, n, m);
}
/** Waits until the link (the URL's hash) holds `value` for view key `key` (fails after 10 s). */
const linkHas = (page, key, value) => page.waitForFunction(([k, v]) => new URLSearchParams(location.hash.slice(1)).get(k) === v,
  [key, value], { timeout: 10_000 });

const CLEAN = '3 1 4 1 5 9 2 6 5 3; 10 20 30 40 49 0 7 7 12 33';
const CORRUPT = '3 1 4 1 5 40 2 6 5 3; 10 20 30 40 49 0 7 25 12 33';

test('Circuit cell: typed clean/corrupted pairs drive the circuit, bad text changes nothing, the link keeps them', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await open('#v=1&open_circuit=true');
  let link;
  let typed;
  try {
    await loadSeed003(page);
    await page.waitForFunction(() => document.getElementById('circuit-faith')?.dataset.edges !== undefined, null, { timeout: 120_000 });
    const defaults = await result(page);
    assert.equal(await page.getAttribute('.circuit-pairs-note', 'data-typed'), 'false');
    // the placeholders show the task's first pairs, as they would be typed
    assert.match(await page.getAttribute('[name="circuit-clean"]', 'placeholder'), /^(\d+ ){9}\d+; /);

    // a pair whose corrupted prompt is the clean one: every ablated edge carries the same value, so no edge matters
    await usePairs(page, '3 1 4 1 5 9 2 6 5 3', '3 1 4 1 5 9 2 6 5 3');
    assert.match(await page.textContent('#circuit-faith'), /Circuit: 0 of 9 edges/);
    assert.match(await page.textContent('.circuit-pairs-note'), /On 1 typed pair\./);
    // … and the logit difference has no differing answer to compare: the error says what to choose instead
    let [n, m] = [await run(page), await errorCount(page)];
    await page.selectOption('[name="circuit-view_circuit_metric"]', 'logit_diff');
    await next(page, n, m);
    assert.match(await page.textContent('#circuit-body .error'), /no clean and corrupted answer differs.*KL or loss.*resample.*pairs whose answers differ/);
    [n, m] = [await run(page), await errorCount(page)];
    await page.selectOption('[name="circuit-view_circuit_metric"]', 'kl');
    await next(page, n, m);

    // two real pairs: the circuit and its figures are those of these inputs
    await usePairs(page, CLEAN, CORRUPT);
    typed = await result(page);
    assert.match(await page.textContent('.circuit-pairs-note'), /On 2 typed pairs\./);
    assert.ok(typed.faithfulness.edges > 0, 'some edge matters on real pairs');
    assert.notEqual(typed.faithfulness.full.loss, defaults.faithfulness.full.loss, 'the full model is scored on the typed inputs');
    await linkHas(page, 'view_circuit_clean', CLEAN);
    await linkHas(page, 'view_circuit_corrupt', CORRUPT);

    // bad text of every kind: an error naming what is wrong; the circuit, its figures and the link stay
    const bad = [
      ['3 1 x 1 5 9 2 6 5 3', CORRUPT.split(';')[0], /clean prompt.*'x' is not/],
      [CLEAN.split(';')[0], '3 1 4 1 5 40 2 6 5', /corrupted prompt.*expected 10.*got 9/],
      [CLEAN, CORRUPT.split(';')[0], /2 clean prompts but 1 corrupted/],
      [CLEAN.split(';')[0], '', /type a corrupted prompt/],
    ];
    for (const [c, k, re] of bad) {
      const n = await run(page);
      await usePairs(page, c, k);
      assert.match(await page.textContent('#circuit-body .error'), re);
      assert.equal(await run(page), n, 'no new result');
      assert.deepEqual(await result(page), typed);
      await linkHas(page, 'view_circuit_clean', CLEAN); // the link keeps the pairs that worked
      await linkHas(page, 'view_circuit_corrupt', CORRUPT);
    }
    // what was typed stays, to be corrected
    assert.equal(await page.inputValue('[name="circuit-clean"]'), CLEAN.split(';')[0]);
    await page.locator('#cell-circuit').screenshot({ path: 'test-output/circuit-typed.png' });
    link = page.url();
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
  // the link reopens the typed pairs and the same circuit
  const again = await open(new URL(link).hash);
  try {
    await loadSeed003(again.page);
    await again.page.waitForFunction(() => document.getElementById('circuit-faith')?.dataset.edges !== undefined, null, { timeout: 120_000 });
    assert.equal(await again.page.inputValue('[name="circuit-clean"]'), CLEAN);
    assert.equal(await again.page.inputValue('[name="circuit-corrupt"]'), CORRUPT);
    const r = await result(again.page);
    assert.deepEqual(r.edges, typed.edges);
    assert.equal(r.faithfulness.loss_recovered, typed.faithfulness.loss_recovered);
    assert.deepEqual(again.errors, []);
  } finally {
    await again.close();
  }
});

// The neuron view on the shared mod-sub model (1 layer, MLP of 512 neurons): the ranked list, all
// neurons kept = the full model, the top 1 kept recovers less, the figures equal the CLI's (native
// candle, `examples/circuits --neurons`, the same 16 pairs and EAP-IG steps), the link reopens the
// choices, and an attention-only model says it has no neurons.
const NEURON_LINK = '#v=1&open_circuit=true&view_circuit_neurons=true&view_circuit_neuron_k=512'
  + '&open_timeline=false&open_attention=false&open_qk=false&open_ov=false&open_scores=false&open_interventions=false&open_analyses=false';

async function loadModSub(page) {
  const bytes = readFileSync('../shared/reference-models/modular_subtraction_model.pt');
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    window.__toyformer.analyseModel({ task: 'mod-sub' }, bytes);
  }, bytes.toString('base64'));
}

const neuronRun = (page) => page.evaluate(() => Number(document.getElementById('circuit-neurons')?.dataset.run ?? 0));
const neuronData = (page) => page.evaluate(() => ({ ...document.getElementById('circuit-neurons').dataset }));
const waitNeuronRun = (page, after) => page.waitForFunction((n) => Number(document.getElementById('circuit-neurons')?.dataset.run ?? 0) > n,
  after, { timeout: 300_000, polling: 250 });

/** The CLI's neuron view of mod-sub's MLP0 with the cell's defaults: {k: loss recovered keeping the top k}. */
function cliKeep() {
  const out = execFileSync('cargo', ['run', '--release', '-q', '--example', 'circuits', '--', '--model',
    '../shared/reference-models/modular_subtraction_model.pt', '--task', 'mod-sub', '--discover', 'eap-ig', '--top-k', '10',
    '--metric', 'kl', '--ablation', 'corrupted', '--ig-steps', '8', '--samples', '16', '--seed', '0', '--neurons', '--json'],
  { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, CANDLE_NUM_THREADS: '1' } });
  return JSON.parse(out);
}

/** From the CLI's JSON: [loss recovered keeping only the top k of MLP0, the top neuron]. */
function cliRecovered(cli, k) {
  const v = cli.neurons[0];
  const row = v.top_k.find(([kk]) => kk === k);
  assert.ok(row, `the CLI reports k = ${k}`);
  return [row[1].loss_recovered, v.ranking.order[0]];
}

test('Circuit cell: the neuron view ranks an MLP\'s neurons, keeps the top k, matches the CLI, the link round-trips', { timeout: 900_000 }, async () => {
  const { page, errors, close } = await open(NEURON_LINK);
  let link;
  let one;
  let first;
  try {
    await loadModSub(page);
    await waitNeuronRun(page, 0);
    let d = await neuronData(page);
    assert.equal(d.error, '', d.error);
    assert.equal(d.neurons, 'true');
    assert.equal(d.dMlp, '512');
    const items = await page.locator('#circuit-neurons li').evaluateAll((ls) => ls.map((l) => [Number(l.dataset.neuron), Number(l.dataset.score)]));
    assert.equal(items.length, 20);
    [[first]] = items;
    assert.equal(new Set(items.map(([n]) => n)).size, 20, 'distinct neurons');
    for (const [n] of items) assert.ok(Number.isInteger(n) && n >= 0 && n < 512, `neuron ${n}`);
    for (let i = 1; i < items.length; i += 1) assert.ok(Math.abs(items[i][1]) <= Math.abs(items[i - 1][1]), `sorted by |score| at ${i}`);
    assert.match(await page.textContent('#circuit-neurons li'), /^N\d+: -?\d/);
    // all 512 kept: the full model; ablating all of them loses what the MLP does (the heads' direct
    // edges to the logits stay, so not exactly "everything ablated")
    assert.ok(Math.abs(Number(d.keepLoss) - 1) < 1e-3, `all kept: loss recovered ${d.keepLoss}`);
    assert.ok(Math.abs(Number(d.ablateLoss)) < 0.05, `all ablated: loss recovered ${d.ablateLoss}`);
    // the top 1 only: far less (the answer is spread over ~100–200 neurons)
    const before = await neuronRun(page);
    await page.fill('[name="circuit-view_circuit_neuron_k"]', '1');
    await page.locator('[name="circuit-view_circuit_neuron_k"]').dispatchEvent('change');
    await waitNeuronRun(page, before);
    d = await neuronData(page);
    assert.equal(d.k, '1');
    one = Number(d.keepLoss);
    assert.ok(one < 0.5, `top 1 kept: loss recovered ${one}`);
    assert.ok(Number(d.ablateLoss) > 0.5, `top 1 ablated: loss recovered ${d.ablateLoss}`);
    await page.waitForFunction(() => /view_circuit_neuron_k=1(&|$)/.test(location.href) && /view_circuit_neurons=true/.test(location.href), null, { timeout: 10_000 });
    link = page.url();
    await page.locator('#cell-circuit').screenshot({ path: 'test-output/circuit-neurons.png' });
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
  // an independent computation: the CLI (native) on the same pairs
  const cli = cliKeep();
  const [cliOne, cliFirst] = cliRecovered(cli, 1);
  assert.equal(cliFirst, first, 'the top-ranked neuron');
  assert.ok(Math.abs(cliOne - one) < 2e-3, `CLI top-1 kept ${cliOne}, page ${one}`);
  // the link reopens the view with k = 1; an attention-only model shows its note
  const again = await open(new URL(link).hash);
  try {
    await loadModSub(again.page);
    await waitNeuronRun(again.page, 0);
    const d = await neuronData(again.page);
    assert.equal(d.k, '1');
    assert.equal(await again.page.inputValue('[name="circuit-view_circuit_neuron_k"]'), '1');
    assert.equal(Number(d.keepLoss), one);
    await loadSeed003(again.page);
    await again.page.waitForFunction(() => document.getElementById('circuit-neurons').dataset.neurons === 'false', null, { timeout: 120_000 });
    assert.match(await again.page.textContent('#circuit-neurons .circuit-neurons-note'), /attention-only: it has no MLP neurons/);
    assert.equal(await again.page.locator('#circuit-neurons li').count(), 0);
    assert.deepEqual(again.errors, []);
  } finally {
    await again.close();
  }
});

/** The CLI's Spearman correlations of EAP / EAP-IG with path patching on the seed-003 sorter (the cell's 16 pairs). */
function cliAgreement(metric) {
  const out = execFileSync('cargo', ['run', '--release', '-q', '--example', 'circuits', '--', '--model',
    '../shared/reference-models/sort_fixed_len_list_model.pt', '--task', 'sort', '--discover', 'acdc', '--metric', metric,
    '--ablation', 'corrupted', '--ig-steps', '8', '--samples', '16', '--seed', '0', '--compare', '--json'],
  { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, CANDLE_NUM_THREADS: '1' } });
  return JSON.parse(out).agreement;
}

const agreementData = (page) => page.evaluate(() => ({ ...document.getElementById('circuit-agreement').dataset }));
const waitAgreement = (page, after) => page.waitForFunction((n) => Number(document.getElementById('circuit-agreement')?.dataset.run ?? 0) > n,
  after, { timeout: 300_000, polling: 250 });

test('Circuit cell: attribution against path patching (Spearman over every edge) matches the CLI; KL has no EAP; the link keeps it open',
  { timeout: 600_000 }, async () => {
    const want = cliAgreement('loss');
    const { page, errors, close } = await open('#v=1&open_circuit=true&view_circuit_metric=loss');
    let link;
    try {
      await loadSeed003(page);
      await page.waitForFunction(() => document.getElementById('circuit-faith')?.dataset.edges !== undefined, null, { timeout: 120_000 });
      assert.equal(await page.evaluate(() => document.getElementById('circuit-agreement').open), false, 'closed by default');
      await page.click('#circuit-agreement summary');
      await waitAgreement(page, 0);
      const d = await agreementData(page);
      assert.equal(d.error, '', d.error);
      assert.equal(d.edges, '9');
      for (const [got, cli, what] of [[Number(d.eap), want.eap, 'EAP'], [Number(d.eapIg), want.eap_ig, 'EAP-IG']]) {
        assert.ok(got >= -1 && got <= 1, `${what} ${got}`);
        assert.ok(Math.abs(got - cli) <= 0.02, `${what}: page ${got}, CLI ${cli}`);
      }
      assert.match(await page.textContent('#circuit-agreement p'), /over all 9 edges.*EAP -?\d\.\d{3} · EAP-IG \(k = 8\) -?\d\.\d{3}/);
      await linkHas(page, 'view_circuit_agreement', 'true');
      link = page.url();
      // KL: EAP's gradient is zero at the full model, so the page says so instead of a number
      const n = Number(d.run);
      await page.selectOption('[name="circuit-view_circuit_metric"]', 'kl');
      await waitAgreement(page, n);
      const k = await agreementData(page);
      assert.equal(k.eap, '');
      assert.match(await page.textContent('#circuit-agreement p'), /EAP — \(the KL metric's gradient is zero/);
      assert.ok(Math.abs(Number(k.eapIg) - cliAgreement('kl').eap_ig) <= 0.02, `KL EAP-IG ${k.eapIg}`);
      assert.deepEqual(errors, [], 'no console errors');
    } finally {
      await close();
    }
    const again = await open(new URL(link).hash);
    try {
      await loadSeed003(again.page);
      await waitAgreement(again.page, 0);
      assert.equal(await again.page.evaluate(() => document.getElementById('circuit-agreement').open), true);
      assert.ok(Math.abs(Number((await agreementData(again.page)).eapIg) - want.eap_ig) <= 0.02);
      assert.deepEqual(again.errors, []);
    } finally {
      await again.close();
    }
  });
