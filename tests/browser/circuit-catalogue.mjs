// Measurement (a script, not a test; asserts nothing): for each task of the catalogue, a small
// model trained in the page (headless Chromium, CPU engine), then the Circuit cell's discovery on
// it — ACDC (threshold 0.01, KL to the full model, corrupted-run ablation), EAP-IG top-k (k = the
// ACDC circuit's size, at least 2; 8 steps) and ACDC with resample ablation — read from the cell:
// the circuit's edges and its faithfulness (loss recovered, accuracy, the complement). Prints a
// markdown table (and writes it to test-output/circuit-catalogue.md).
//   node tests/browser/circuit-catalogue.mjs [task ...]
// The configs are those of tests/browser/tasks.test.mjs with more steps (CIRCUIT_STEPS_X scales them);
// apply-perm has two layers; mod-add / mod-sub use p = 23, d_model 64, full batches and weight decay 1 so
// that they generalise (mod-add does in 10000 steps; mod-sub reaches ~64% test accuracy in 20000).
import { mkdirSync, writeFileSync } from 'node:fs';
import { startServer, openNotebook } from '../../pkg-config/browser.mjs';

const X = Number(process.env.CIRCUIT_STEPS_X ?? 1);
// name, fragment, steps
const TASKS = [
  ['sort', 'task=sort&sort_n=5&max_num=10&d_model=32&d_head=32&batch_size=32&lr=0.003', 600],
  ['permutations', 'task=permutations&perm_n=3&d_model=32&d_head=16&batch_size=16&lr=0.003', 1500],
  // two layers: choosing a_idx needs idx moved first (the apply-perm test model)
  ['apply-perm', 'task=apply-perm&k=3&max_int=10&n_layers=2&d_model=32&d_head=32&batch_size=32&lr=0.003', 3000],
  ['array-index', 'task=array-index&array_index_max_num=12&d_model=32&d_head=32&batch_size=32&lr=0.003', 600],
  ['majority', 'task=majority&majority_n=6&majority_k=4&majority_max_num=8&d_model=32&d_head=32&batch_size=32&lr=0.003', 600],
  ['min-of-two', 'task=min-of-two&min_of_two_n=16&d_model=32&d_head=32&batch_size=205&lr=0.003', 600],
  ['mod-add', 'task=mod-add&mod_add_p=23&mod_add_frac_train=0.6&weight_decay=1&d_model=64&d_head=16&mlp=true&d_mlp=128&act_fn=relu&batch_size=317&lr=0.003', 10000],
  ['mod-sub', 'task=mod-sub&mod_sub_p=23&mod_sub_frac_train=0.8&weight_decay=1&d_model=64&d_head=16&mlp=true&d_mlp=128&act_fn=relu&batch_size=317&lr=0.003', 20000],
  ['induction', 'task=induction&induction_k=5&induction_n_tokens=12&d_model=32&d_head=16&batch_size=32&lr=0.003', 800],
  ['reverse', 'task=reverse&reverse_n=4&reverse_max_num=12&d_model=32&d_head=32&batch_size=32&lr=0.003', 600],
  ['arena-sum', 'task=arena-sum&arena_sum_num_digits=2&d_model=48&d_head=24&mlp=true&d_mlp=96&act_fn=relu&batch_size=64&lr=0.003', 1000],
  ['previous-token', 'task=previous-token&previous_token_n=6&previous_token_max_num=12&d_model=32&d_head=32&batch_size=64&lr=0.003', 600],
  ['arena-palindromes', 'task=arena-palindromes&arena_palindromes_half_length=3&arena_palindromes_max_value=5&d_model=32&d_head=16&batch_size=64&lr=0.003', 1000],
  // your own data: seed 000's permutation data over 5 letters (tests/browser/custom.test.mjs)
  ['custom', 'task=custom&n_layers=1&n_heads=1&d_model=32&d_head=32&batch_size=16&lr=0.003', 400],
];

/** Seed 000's permutation data over `letters` (n = 3), as tests/browser/custom.test.mjs makes it. */
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

async function dropData(page, name, text) {
  const dt = await page.evaluateHandle(([n, t]) => {
    const d = new DataTransfer();
    d.items.add(new File([t], n, { type: 'text/plain' }));
    return d;
  }, [name, text]);
  await page.dispatchEvent('#data-drop', 'drop', { dataTransfer: dt });
  await page.waitForFunction((n) => window.__toyformer.data?.name === n, name, { timeout: 30_000 });
}

const run = (page) => page.evaluate(() => Number(document.getElementById('circuit-faith')?.dataset.run ?? 0));

/** Waits for the cell to show a result newer than `n` made by `method` with selection `select`
 * (threshold or top_k); returns it (or the cell's error). */
async function result(page, n, method, select, timeout = 600_000) {
  await page.waitForFunction(([k, m, s]) => {
    const f = document.getElementById('circuit-faith');
    const err = document.querySelector('#circuit-body .error');
    if (err && !err.hidden && err.textContent) return true;
    if (Number(f?.dataset.run ?? 0) <= k) return false;
    const r = JSON.parse(f.dataset.result);
    return r.method === m && s in r.select;
  }, [n, method, select], { timeout, polling: 500 });
  return page.evaluate(() => {
    const err = document.querySelector('#circuit-body .error');
    if (err && !err.hidden && err.textContent) return { error: err.textContent };
    return JSON.parse(document.getElementById('circuit-faith').dataset.result);
  });
}

/** Sets a Circuit cell control as a user would (each change recomputes). */
async function set(page, key, value) {
  const sel = `[name="circuit-${key}"]`;
  if (await page.evaluate((s) => document.querySelector(s).tagName === 'SELECT', sel)) await page.selectOption(sel, value);
  else await page.fill(sel, String(value)).then(() => page.dispatchEvent(sel, 'change'));
}

const pct = (x) => (x === null || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)}%`);

function row(task, frag, steps, acc, label, r) {
  const cfg = frag.replace(/^task=[^&]*&?/, '').replace(/&/g, ' ');
  if (r.error) return `| ${task} | ${cfg} | ${steps} | ${acc} | ${label} | error: ${r.error} | |`;
  const f = r.faithfulness;
  const faith = `loss recovered ${pct(f.loss_recovered)}, KL recovered ${pct(f.metric_recovered)}, acc ${pct(f.circuit.acc)} `
    + `(full ${pct(f.full.acc)}, ablated ${pct(f.empty.acc)}); complement loss recovered ${pct(f.complement_loss_recovered)}, `
    + `acc ${pct(f.complement.acc)}`;
  return `| ${task} | ${cfg} | ${steps} | ${acc} | ${label} | ${f.edges}/${f.total_edges}: ${r.edges.join(', ') || '(none)'} | ${faith} |`;
}

async function measure(server, [task, frag, steps0]) {
  const steps = Math.round(steps0 * X);
  const { page, close } = await openNotebook(`${server.url}#v=1&${frag}&steps=${steps}`, { webgpu: false });
  const t0 = Date.now();
  try {
    if (task === 'custom') await dropData(page, 'perm5.txt', permText('abcde'));
    await page.selectOption('[name="backend"]', 'cpu');
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 1_800_000, polling: 1000 });
    await page.waitForFunction(() => window.__toyformer.lastEval, null, { timeout: 120_000 });
    const ev = await page.evaluate(() => window.__toyformer.lastEval);
    const acc = ev.finite ? `train ${pct(ev.finite.train.token_acc)}, test ${pct(ev.finite.test.token_acc)}`
      : `${pct(ev.token_acc)}`;
    const trained = ((Date.now() - t0) / 1000).toFixed(0);
    // ACDC (the cell's defaults: threshold 0.01, KL, corrupted-run ablation), opened after training
    await page.click('#cell-circuit > summary');
    const acdc = await result(page, 0, 'acdc', 'threshold');
    const k = Math.max(2, acdc.faithfulness?.edges ?? 2);
    // set in an order every step of which is valid (ACDC takes no top k): the only result of the
    // awaited method and selection is the one with every setting
    let n = await run(page);
    await set(page, 'view_circuit_method', 'eap-ig');
    await set(page, 'view_circuit_top_k', k);
    await set(page, 'view_circuit_select', 'top_k');
    const eap = await result(page, n, 'eap-ig', 'top_k');
    n = await run(page);
    await set(page, 'view_circuit_select', 'threshold');
    await set(page, 'view_circuit_ablation', 'resample');
    await set(page, 'view_circuit_method', 'acdc');
    const resample = await result(page, n, 'acdc', 'threshold');
    const lines = [row(task, frag, steps, acc, 'ACDC 0.01', acdc), row(task, frag, steps, acc, `EAP-IG top-${k}`, eap),
      row(task, frag, steps, acc, 'ACDC 0.01, resample', resample)];
    await page.locator('#cell-circuit').screenshot({ path: `test-output/circuit-catalogue-${task}.png` });
    console.error(`${task}: trained ${steps} steps in ${trained} s, circuits by ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return lines;
  } catch (e) {
    return [`| ${task} | ${frag} | ${steps} | | | failed: ${String(e.message ?? e).split('\n')[0]} | |`];
  } finally {
    await close();
  }
}

mkdirSync('test-output', { recursive: true });
const only = process.argv.slice(2);
const server = await startServer();
const out = ['| task | config | steps | accuracy (Evaluate) | method | circuit edges | faithfulness |',
  '| --- | --- | --- | --- | --- | --- | --- |'];
for (const t of TASKS.filter(([name]) => only.length === 0 || only.includes(name))) {
  for (const l of await measure(server, t)) {
    out.push(l);
    console.log(l);
  }
  writeFileSync('test-output/circuit-catalogue.md', `${out.join('\n')}\n`);
}
console.log(`\n${out.join('\n')}`);
server.close();
