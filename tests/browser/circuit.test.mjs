// The Circuit cell in headless Chromium on the seed-003 sorter (loaded as a file would be):
// ACDC discovers embed → L0H0 → logits, the graph is drawn, clicking the L0H0 → logits edge
// takes it out and the faithfulness drops, and the link (view state in the URL) reopens the
// same hand-edited circuit. Screenshot: test-output/circuit-seed003.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
