// The Weights cell's TransformerLens lines and notebook, in headless Chromium (CPU backend):
// the Python lines default to TransformerLens 4.x (TransformerBridge) and switch to 3.x; the
// notebook button downloads an nbformat 4 notebook without outputs whose embedded weights are
// the page's own export, tensor for tensor, and whose numbers are for the page's attention input.
// Running the notebook needs TransformerLens: pkg-config/tl-check.py notebook test-output/tl4-page.ipynb.
// Screenshot: test-output/tl4-weights.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const OUT = 'test-output';
const STEPS = 60;
const HASH = `#v=1&sort_n=4&max_num=8&d_model=16&d_head=8&n_heads=2&steps=${STEPS}&batch_size=16&lr=0.003`;
let server;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer({});
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
    assert.equal(nums.input_tokens.length, 10);
    await page.locator('#cell-weights').screenshot({ path: `${OUT}/tl4-weights.png` });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
