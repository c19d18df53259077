// Every original task trains through the page on both backends: the CPU engine (wasm) and WebGPU
// (SwiftShader here, forced with the backend switch since `auto` skips software adapters).
// Small models so that the software GPU finishes in CI; each run must lower its loss well
// below where it started, and the backend badge must name the backend that trained.
// Screenshots: test-output/tasks-<task>-<backend>.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const server = serveDuringTests();

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// name, fragment, steps, the loss must end below this fraction of its start
const TASKS = [
  ['sort', 'task=sort&sort_n=5&max_num=10&d_model=32&d_head=32&batch_size=32&lr=0.003', 200, 0.5],
  ['permutations', 'task=permutations&perm_n=3&d_model=32&d_head=16&batch_size=16&lr=0.003', 150, 0.5],
  ['apply-perm', 'task=apply-perm&k=3&max_int=10&d_model=32&d_head=32&batch_size=32&lr=0.003', 300, 0.7],
];

// The catalogue tasks (rows generated from the Rust registry) train on the CPU engine.
const CATALOGUE_TASKS = [
  ['array-index', 'task=array-index&array_index_max_num=12&d_model=32&d_head=32&batch_size=32&lr=0.003', 200, 0.5],
  ['majority', 'task=majority&majority_n=6&majority_k=4&majority_max_num=8&d_model=32&d_head=32&batch_size=32&lr=0.003', 200, 0.5],
  ['min-of-two', 'task=min-of-two&min_of_two_n=16&d_model=32&d_head=32&batch_size=205&lr=0.003', 200, 0.5],
  ['mod-add', 'task=mod-add&mod_add_p=11&mod_add_frac_train=0.5&d_model=32&d_head=16&mlp=true&d_mlp=64&act_fn=relu&batch_size=61&lr=0.003', 200, 0.5],
  ['mod-sub', 'task=mod-sub&mod_sub_p=11&mod_sub_frac_train=0.5&d_model=32&d_head=16&mlp=true&d_mlp=64&act_fn=relu&batch_size=61&lr=0.003', 200, 0.5],
  ['induction', 'task=induction&induction_k=5&induction_n_tokens=12&d_model=32&d_head=16&batch_size=32&lr=0.003', 200, 0.5],
  ['reverse', 'task=reverse&reverse_n=4&reverse_max_num=12&d_model=32&d_head=32&batch_size=32&lr=0.003', 200, 0.5],
  ['arena-sum', 'task=arena-sum&arena_sum_num_digits=2&d_model=48&d_head=24&mlp=true&d_mlp=96&act_fn=relu&batch_size=64&lr=0.003', 200, 0.7],
  // targets that are not next tokens: the token before (positions off, from the default model) and a label
  ['previous-token', 'task=previous-token&previous_token_n=6&previous_token_max_num=12&d_model=32&d_head=32&batch_size=64&lr=0.003', 300, 0.5],
  ['arena-palindromes', 'task=arena-palindromes&arena_palindromes_half_length=3&arena_palindromes_max_value=5&d_model=32&d_head=16&batch_size=64&lr=0.003', 400, 0.7],
];

// On WebGPU also array-index, whose default model has shortformer positions (the GPU plan's own path).
const WEBGPU_TASKS = [...TASKS, CATALOGUE_TASKS[0]];

for (const backend of ['cpu', 'webgpu']) {
  for (const [name, frag, steps, frac] of backend === 'cpu' ? [...TASKS, ...CATALOGUE_TASKS] : WEBGPU_TASKS) {
    test(`tasks: ${name} trains in the page on ${backend}`, { timeout: 600_000 }, async () => {
      const { page, errors, close } = await openNotebook(`${server.url}#v=1&${frag}&steps=${steps}`,
        { webgpu: backend === 'webgpu' });
      try {
        assert.equal(await page.inputValue('[name="task"]'), name);
        await page.selectOption('[name="backend"]', backend);
        const badge = backend === 'cpu' ? /^CPU/ : /^WebGPU \(.+\)$/;
        assert.match(await page.textContent('#backend-badge'), badge);
        await page.click('#btn-start');
        await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 540_000, polling: 500 })
          .catch(async (e) => {
            // say where the run stood (phase, steps, the page's error and backend note), not only "timeout"
            const at = await page.evaluate(() => ({ phase: window.__toyformer.phase, rows: window.__toyformer.rows.length,
              error: document.getElementById('train-error')?.textContent, note: document.getElementById('backend-note')?.textContent }));
            await page.screenshot({ path: `${OUT}/tasks-${name}-${backend}-stalled.png` });
            throw new Error(`${e.message}; the page: ${JSON.stringify(at)}; console errors: ${JSON.stringify(errors)}`);
          });
        assert.match(await page.textContent('#backend-badge'), badge, `the run used ${backend}`);
        const rows = await page.evaluate(() => window.__toyformer.rows);
        assert.equal(rows.length, steps);
        assert.ok(rows.every((r) => Number.isFinite(r.loss)), 'every loss is finite');
        const first = mean(rows.slice(0, 10).map((r) => r.loss));
        const last = mean(rows.slice(-10).map((r) => r.loss));
        // the Evaluate cell's figures after the run (reported, not asserted: the loss is the test)
        await page.waitForFunction(() => window.__toyformer.lastEval, null, { timeout: 60_000 });
        const ev = await page.evaluate(() => window.__toyformer.lastEval);
        const acc = ev.finite ? `train ${ev.finite.train.token_acc.toFixed(4)} test ${ev.finite.test.token_acc.toFixed(4)}`
          : `token acc ${ev.token_acc.toFixed(4)}`;
        console.log(`${name} on ${backend}: loss ${first.toFixed(4)} → ${last.toFixed(4)} in ${steps} steps; Evaluate: ${acc}`);
        assert.ok(last < frac * first, `${name} on ${backend}: loss fell only from ${first} to ${last}`);
        if (name === 'array-index') {
          // the collection's array-indexing model has shortformer positions, and so has the model trained here
          const pos = await page.evaluate(async () => {
            const [{ app }, S] = await Promise.all([import('./js/app.js'), import('./js/state.js')]);
            return S.modelConfig(app.values, app.info.default_model).positional_embedding_type;
          });
          assert.equal(pos, 'shortformer');
        }
        await page.locator('#cell-train').screenshot({ path: `${OUT}/tasks-${name}-${backend}.png` });
        assert.deepEqual(errors, [], 'no console errors');
      } finally {
        await close();
      }
    });
  }
}
