// Train and test curves of a finite dataset on the Train cell, the Evaluate cell's train / test /
// full-dataset figures, and the analysis cells' task notes, in headless Chromium (CPU backend).
// Assertions are on the plotted data and the page's numbers, never on timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';
import { NOTES } from '../../www/js/task-rows.js';

const server = serveDuringTests();
// mlp (on) and act_fn (relu) are mod-add's default model's: the link leaves them out, its d_mlp still applies
const MOD_ADD = 'task=mod-add&mod_add_p=11&mod_add_frac_train=0.5&d_model=32&d_head=16&d_mlp=64'
  + '&batch_size=61&lr=0.003&steps=200&eval_every=20&backend=cpu';

/** The plotted points of a chart's series (by label): [[x, y]] where y is not null. */
function points(chart, label) {
  const i = chart.labels.indexOf(label);
  assert.ok(i > 0, `series "${label}" in ${JSON.stringify(chart.labels)}`);
  return chart.columns[0].map((x, j) => [x, chart.columns[i][j]]).filter(([, y]) => y != null);
}

test('curves: a small mod-add run plots train and test loss and accuracy; Evaluate gives train, test and full', { timeout: 300_000 }, async () => {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&${MOD_ADD}`, { webgpu: false });
  try {
    assert.equal(await page.isVisible('[name="eval_every"]'), true);
    assert.deepEqual([await page.isChecked('[name="mlp"]'), await page.inputValue('[name="d_mlp"]'), await page.inputValue('[name="act_fn"]')],
      [true, '64', 'relu']);
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done' && window.__toyformer.lastEval, null, { timeout: 240_000, polling: 250 });
    const splits = await page.evaluate(() => window.__toyformer.splits);
    // a point every 20 steps, step 0 (the initial weights) included; each side whole (61 + 60 of 121 pairs)
    assert.deepEqual(splits.map((p) => p.step), [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
    for (const p of splits) assert.deepEqual([p.train.samples, p.test.samples, p.full.items], [61, 60, 121]);
    // at initialisation the loss is near ln 11 = 2.40 on both sides; training lowers the train side's
    assert.ok(Math.abs(splits[0].test.loss - Math.log(11)) < 1, `initial test loss ${splits[0].test.loss}`);
    assert.ok(splits.at(-1).train.loss < 0.5 * splits[0].train.loss, JSON.stringify(splits.at(-1).train));
    // the charts plot exactly these points, at their steps, next to the training batch's curve
    await page.waitForFunction(() => {
      const d = window.__toyformer.plotted();
      return d?.acc && d.acc.columns[d.acc.labels.indexOf('test split acc')]?.filter((y) => y != null).length === 11;
    }, null, { timeout: 30_000 });
    const plotted = await page.evaluate(() => window.__toyformer.plotted());
    const want = (side, k) => splits.map((p) => [p.step, p[side][k]]);
    assert.deepEqual(points(plotted.loss, 'train split loss'), want('train', 'loss'));
    assert.deepEqual(points(plotted.loss, 'test split loss'), want('test', 'loss'));
    assert.deepEqual(points(plotted.acc, 'train split acc'), want('train', 'token_acc'));
    assert.deepEqual(points(plotted.acc, 'test split acc'), want('test', 'token_acc'));
    assert.equal(points(plotted.loss, 'loss (batch)').length, 200);
    await page.locator('#cell-train').screenshot({ path: 'test-output/curves-mod-add.png' });
    // the Evaluate cell: every item of each side at the final weights (the last curve point's figures)
    const ev = await page.evaluate(() => window.__toyformer.lastEval.finite);
    assert.equal(ev.train.token_acc, splits.at(-1).train.token_acc);
    assert.equal(ev.test.token_acc, splits.at(-1).test.token_acc);
    const full = (61 * ev.train.token_acc + 60 * ev.test.token_acc) / 121;
    assert.ok(Math.abs(ev.full.token_acc - full) < 1e-9);
    const facts = await page.textContent('#eval-facts');
    for (const s of ['train split (61 items)', 'test split (60 items)', 'full dataset (121 items)']) assert.ok(facts.includes(s), facts);
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});

test('curves: a sampled task has no split curves; analysis notes and the MLP default follow the task', { timeout: 120_000 }, async () => {
  const { page, errors, close } = await openNotebook(`${server.url}#v=1&task=reverse&steps=5&backend=cpu&d_model=16&d_head=16`, { webgpu: false });
  const notes = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll('.task-note')].map((p) => [p.dataset.note, p.textContent])));
  // every caption of the analysis cells (their own and the task's)
  const captions = () => page.evaluate(() => [...document.querySelectorAll('#analysis .caption, [id$="-body"] .caption')].map((p) => p.textContent).join(' '));
  try {
    assert.equal(await page.isVisible('[name="eval_every"]'), false);
    for (const task of ['reverse', 'mod-add', 'majority', 'min-of-two', 'sort']) {
      if (task !== 'reverse') await page.selectOption('[name="task"]', task);
      assert.deepEqual(await notes(), NOTES[task], task);
      if (task !== 'sort') assert.doesNotMatch(await captions(), /\bsort/i, `${task}: no sorting text`);
      const mlp = await page.isChecked('[name="mlp"]');
      assert.equal(mlp, task.startsWith('mod-'), `${task}: the MLP default is the task's default model's`);
      if (mlp) assert.deepEqual([await page.inputValue('[name="d_mlp"]'), await page.inputValue('[name="act_fn"]')], ['512', 'relu']);
    }
    assert.match(await captions(), /sorted/);
    await page.selectOption('[name="task"]', 'reverse');
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 60_000 });
    const plotted = await page.evaluate(() => window.__toyformer.plotted());
    assert.deepEqual(plotted.loss.labels, ['step', 'loss']);
    assert.deepEqual(await page.evaluate(() => window.__toyformer.splits), []);
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await close();
  }
});
