// The Weights cell's TransformerLens lines and notebook, in headless Chromium (CPU backend):
// the Python lines default to TransformerLens 4.x (TransformerBridge) and switch to 3.x; the
// notebook button downloads an nbformat 4 notebook without outputs whose embedded weights are
// the page's own export, tensor for tensor, and whose numbers are for the page's attention input;
// TransformerLens 4.x state dicts saved by TL 4.3 itself (tests/fixtures/tl4/) load by URL (config
// in the metadata) and from files (a .pt with its config JSON).
// Running the notebook needs TransformerLens: pkg-config/tl-check.py notebook test-output/tl4-page.ipynb.
// Screenshot: test-output/tl4-weights.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const STEPS = 60;
const HASH = `#v=1&sort_n=4&max_num=8&d_model=16&d_head=8&n_heads=2&steps=${STEPS}&batch_size=16&lr=0.003`;
let server;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer({ fixtures: resolve('tests/fixtures/tl4') });
});
after(() => server?.close());

/** {meta, tensors: {name: {shape, data}}} of a safetensors file (F32 only, which is all we write). */
function readSafetensors(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const tensors = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    assert.equal(v.dtype, 'F32');
    const [a, b] = v.data_offsets;
    const raw = bytes.subarray(8 + n + a, 8 + n + b);
    tensors[k] = { shape: v.shape, data: Array.from({ length: raw.length / 4 }, (_, i) => raw.readFloatLE(4 * i)) };
  }
  return { meta: header.__metadata__, tensors };
}

async function download(page, id) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
  return { name: dl.suggestedFilename(), bytes: readFileSync(await dl.path()) };
}

test('Weights cell: TransformerLens 4.x lines by default, 3.x on request, notebook download', { timeout: 600_000 }, async () => {
  const { page, close } = await launch({ webgpu: false });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.goto(`${server.url}${HASH}`);
    await page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 120_000 });
    await page.click('#btn-start');
    await page.waitForFunction(() => window.__toyformer.phase === 'done', null, { timeout: 480_000, polling: 500 });
    await page.waitForFunction(() => /TransformerLens/.test(document.querySelector('#py-snippet').textContent), null, { timeout: 30_000 });

    const base = `toyformer-sort-step${STEPS}`;
    const v4 = await page.textContent('#py-snippet');
    assert.match(v4, /^# TransformerLens 4\.x \(pip install "transformer_lens>=4"\)/);
    assert.ok(v4.includes(`cfg = TransformerBridgeConfig(**json.load(open("${base}.json")))`), v4);
    assert.ok(v4.includes(`model.load_state_dict(convert_tl_checkpoint(load_file("${base}.safetensors"), cfg), strict=True)`), v4);
    await page.selectOption('#py-version', '3');
    await page.waitForFunction(() => /HookedTransformer/.test(document.querySelector('#py-snippet').textContent));
    assert.match(await page.textContent('#py-snippet'), /^# TransformerLens 3\.x \(pip install "transformer_lens<4"\)/);
    await page.selectOption('#py-version', '4');

    // The notebook, for an attention input typed in the page.
    const nbFile = await download(page, 'btn-export-nb');
    assert.equal(nbFile.name, `${base}.ipynb`);
    writeFileSync(`${OUT}/tl4-page.ipynb`, nbFile.bytes); // for pkg-config/tl-check.py notebook
    const nb = JSON.parse(nbFile.bytes.toString('utf8'));
    assert.deepEqual([nb.nbformat, nb.nbformat_minor], [4, 5]);
    assert.equal(nb.metadata.toyformer.step, STEPS);
    assert.ok(nb.cells.every((c) => c.cell_type !== 'code' || (c.outputs.length === 0 && c.execution_count === null)));
    assert.equal(nb.cells[0].source[0], '# toyformer analysis in TransformerLens\n');
    const code = nb.cells.filter((c) => c.cell_type === 'code').map((c) => c.source.join('')).join('\n');
    const b64 = code.match(/WEIGHTS = "([A-Za-z0-9+/=]+)"/)[1];
    const embedded = readSafetensors(Buffer.from(b64, 'base64'));
    const exported = readSafetensors((await download(page, 'btn-export-st')).bytes);
    assert.deepEqual(Object.keys(embedded.tensors).sort(), Object.keys(exported.tensors).sort());
    for (const [k, t] of Object.entries(exported.tensors)) assert.deepEqual(embedded.tensors[k], t, k);
    const nums = JSON.parse(code.match(/TOYFORMER = json\.loads\(r'''(.*)'''\)/)[1]);
    assert.equal(nums.analysis_tokens.length, 16, "the page's 16 analysis samples");
    assert.equal(nums.heads.length, 2);
    assert.equal(nums.fresh_samples, 256, 'T = 10: the full 256 (8192 tokens / T, within 32..256)');
    assert.equal(nums.input_tokens.length, 10);
    await page.locator('#cell-weights').screenshot({ path: `${OUT}/tl4-weights.png` });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('Weights cell: TransformerLens 4.x bridge state dicts load by URL and from files', { timeout: 300_000 }, async () => {
  const { page, close } = await launch({ webgpu: false });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`${server.url}#v=1&model=/fixtures/attn.safetensors`);
    await page.waitForFunction(() => window.__toyformer?.ready && window.__toyformer.imported, null, { timeout: 120_000 });
    const im = await page.evaluate(() => window.__toyformer.imported);
    assert.deepEqual([im.config_source, im.model.n_heads, im.model.d_head, im.task.task, im.task.n, im.task.max_num],
      ['metadata', 3, 4, 'sort', 2, 5]);
    // the .pt and its config JSON, chosen together
    await page.evaluate(() => { window.__toyformer.imported = null; });
    await page.setInputFiles('#import-file', [resolve('tests/fixtures/tl4/mlp_ln.pt'), resolve('tests/fixtures/tl4/mlp_ln.json')]);
    await page.waitForFunction(() => window.__toyformer.imported, null, { timeout: 60_000 });
    const pt = await page.evaluate(() => window.__toyformer.imported);
    assert.deepEqual([pt.config_source, pt.model.n_layers, pt.model.n_heads, pt.model.d_head, pt.model.act_fn, pt.notes],
      ['config_json', 2, 2, 3, 'gelu', []]);
    assert.match(await page.textContent('#import-status'), /^Loaded mlp_ln\.pt with mlp_ln\.json: 2 layer\(s\), 2 head\(s\)/);
    // alone, the .pt cannot say how its q rows split into heads: the error says what to do
    await page.setInputFiles('#import-file', [resolve('tests/fixtures/tl4/mlp_ln.pt')]);
    await page.waitForFunction(() => !document.querySelector('#import-error').hidden, null, { timeout: 60_000 });
    assert.match(await page.textContent('#import-error'), /TransformerLens 4\.x \(TransformerBridge\) state dict: `blocks\.0\.attn\.q\.weight` has shape \[6, 8\].*config JSON/);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
