// A saved finite-dataset run keeps its train/test curve points (the Train cell's eval_every
// curves): after a reload the restored run shows the same points on its charts as before, in
// headless Chromium (CPU backend). Assertions are on the points and the plotted data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const server = serveDuringTests();
const MOD_ADD = 'task=mod-add&mod_add_p=11&mod_add_frac_train=0.5&d_model=32&d_head=16&d_mlp=64'
  + '&batch_size=61&lr=0.003&steps=100&eval_every=20&backend=cpu';

/** The plotted points of a chart's series (by label): [[x, y]] where y is not null. */
function points(chart, label) {
  const i = chart.labels.indexOf(label);
  assert.ok(i > 0, `series "${label}" in ${JSON.stringify(chart.labels)}`);
  return chart.columns[0].map((x, j) => [x, chart.columns[i][j]]).filter(([, y]) => y != null);
}

test('run splits: a finite run reopened after a reload shows the train/test curve points it had', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${MOD_ADD}`, { webgpu: false });
  try {
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done' && window.__toyformer.lastSave?.step === 100,
      null, { timeout: 240_000, polling: 250 });
    const before = await page.evaluate(() => window.__toyformer.splits);
    assert.deepEqual(before.map((p) => p.step), [0, 20, 40, 60, 80, 100]);
    await page.reload();
    await page.waitForFunction(() => window.__toyformer.restored, null, { timeout: 120_000 });
    assert.equal((await page.evaluate(() => window.__toyformer.restored)).step, 100);
    // the same points, figure for figure, and the charts plot them at their steps
    assert.deepEqual(await page.evaluate(() => window.__toyformer.splits), before);
    await page.waitForFunction(() => {
      const d = window.__toyformer.plotted();
      return d?.acc && d.acc.columns[d.acc.labels.indexOf('test split acc')]?.filter((y) => y != null).length === 6;
    }, null, { timeout: 30_000 });
    const plotted = await page.evaluate(() => window.__toyformer.plotted());
    const want = (side, k) => before.map((p) => [p.step, p[side][k]]);
    assert.deepEqual(points(plotted.loss, 'train split loss'), want('train', 'loss'));
    assert.deepEqual(points(plotted.loss, 'test split loss'), want('test', 'loss'));
    assert.deepEqual(points(plotted.acc, 'train split acc'), want('train', 'token_acc'));
    assert.deepEqual(points(plotted.acc, 'test split acc'), want('test', 'token_acc'));
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});
