// Benchmark (not a test; asserts nothing): the Circuit cell's worker time in headless Chromium on a
// 2-layer, 4-head model with MLPs for the default sort task, made by
//   cargo run --release --example circuit_bench -- --task sort --save test-output/circuit-bench-2l4h.safetensors
// then: node tests/browser/circuit-bench.mjs [test-output/circuit-bench-2l4h.safetensors]
// For EAP top-k (attribution over every edge + faithfulness) and ACDC (threshold 0.01, and 0: every edge
// tried with a run), it prints
// the analysis worker's milliseconds in the `circuit` call (discovery + faithfulness), and for a hand
// toggle (faithfulness only: the discovery is kept).
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { startServer, launch } from '../../pkg-config/browser.mjs';

const file = process.argv[2] ?? 'test-output/circuit-bench-2l4h.safetensors';
mkdirSync('test-output', { recursive: true });
const server = await startServer();
const bytes = readFileSync(file).toString('base64');

async function measure(hash) {
  const b = await launch({ webgpu: false });
  try {
    await b.page.goto(server.url + hash);
    await b.page.waitForFunction(() => window.__toyformer?.ready, null, { timeout: 60_000 });
    await b.page.evaluate((b64) => {
      const u8 = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      window.__toyformer.analyseModel({ task: 'sort', n: 10, max_num: 50 }, u8);
    }, bytes);
    await b.page.waitForFunction(() => document.getElementById('circuit-faith')?.dataset.edges !== undefined, null, { timeout: 300_000 });
    const first = await b.page.evaluate(() => window.__toyformer.interp.lastFull.times.circuit);
    const edges = await b.page.getAttribute('#circuit-faith', 'data-edges');
    await b.page.locator('#circuit-body path[data-edge="0"]').dispatchEvent('click');
    await b.page.waitForFunction((n) => document.getElementById('circuit-faith').dataset.edges !== n, edges, { timeout: 300_000 });
    const toggle = await b.page.evaluate(() => window.__toyformer.interp.last.times.circuit);
    console.log(`${hash}: discovery + faithfulness ${first.toFixed(1)} ms (${edges} edges kept); after a toggle, faithfulness ${toggle.toFixed(1)} ms`);
  } finally {
    await b.close();
  }
}

await measure('#v=1&open_circuit=true&view_circuit_method=eap&view_circuit_metric=loss&view_circuit_select=top_k&view_circuit_top_k=14');
await measure('#v=1&open_circuit=true&view_circuit_method=acdc&view_circuit_threshold=0.01');
await measure('#v=1&open_circuit=true&view_circuit_method=acdc&view_circuit_threshold=0');
server.close();
