// The shared collection models open by drag-and-drop with the right task proposed: the page
// scores every task whose vocabulary and context fit and picks the best (majority, min-of-two,
// mod-sub; the sorter stays sort although array-index has its vocabulary). Each then evaluates
// on its proposed task. Screenshots: test-output/catalogue-<task>.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const MODELS = [
  // file, proposed task, the page's evaluation accuracy at least
  ['sort_fixed_len_list_model.pt', 'sort', 0.99],
  ['majority_element_model.pt', 'majority', 0.99],
  ['min_int_model.pt', 'min-of-two', 0.99],
  ['modular_subtraction_model.pt', 'mod-sub', 0.99],
];
let server;
let fixtures;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  fixtures = mkdtempSync(join(tmpdir(), 'toyformer-catalogue-'));
  for (const [file] of MODELS) symlinkSync(resolve('..', 'shared', 'reference-models', file), join(fixtures, file));
  server = await startServer({ fixtures });
});
after(() => {
  server?.close();
  rmSync(fixtures, { recursive: true, force: true });
});

for (const [file, task, minAcc] of MODELS) {
  test(`catalogue: ${file} opens by drag-and-drop as ${task}`, { timeout: 300_000 }, async () => {
    const b = await launch({ webgpu: false });
    const errors = [];
    b.page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    b.page.on('pageerror', (e) => errors.push(String(e)));
    try {
      await b.page.goto(`${server.url}#v=1&task=apply-perm`);
      await b.page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 120_000 });
      await b.page.evaluate(async (name) => {
        const dt = new DataTransfer();
        dt.items.add(new File([await (await fetch(`/fixtures/${name}`)).arrayBuffer()], name));
        const zone = document.getElementById('drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop']) zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
      }, file);
      await b.page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 120_000 });
      const im = await b.page.evaluate(() => window.__toyformer.imported);
      assert.equal(im.task.task, task);
      assert.equal(im.task_source, 'guessed');
      assert.equal(im.candidates[0].task.task, task);
      assert.ok(im.candidates.slice(1).every((c) => c.token_acc < im.candidates[0].token_acc), JSON.stringify(im.candidates));
      assert.ok(im.assumed.some((a) => a.startsWith('positional_embedding_type')));
      assert.equal(await b.page.inputValue('[name="task"]'), task);
      await b.page.waitForFunction(() => window.__toyformer.lastEval !== null, null, { timeout: 120_000 });
      const ev = await b.page.evaluate(() => window.__toyformer.lastEval);
      console.log(`${file}: proposed ${task} (${im.candidates.map((c) => `${c.task.task} ${c.token_acc.toFixed(3)}`).join(', ')}); page token acc ${ev.token_acc}`);
      assert.ok(ev.token_acc >= minAcc, `${file} on ${task}: token accuracy ${ev.token_acc}`);
      await b.page.locator('#cell-weights').screenshot({ path: `${OUT}/catalogue-${task}.png` });
      assert.deepEqual(errors, []);
    } finally {
      await b.close();
    }
  });
}
