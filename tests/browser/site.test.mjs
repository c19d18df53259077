// The published folder (`make site`) from a plain static server that sends no isolation headers:
// it loads, becomes cross-origin isolated through its service worker (coi-sw.js), picks the
// relaxed-SIMD build (Chromium has relaxed SIMD) and trains with 2 CPU workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const SITE = process.env.SITE || 'site';
process.env.ROOT = SITE; // serve.py serves the site folder, and no ISOLATE: no COOP/COEP headers
delete process.env.ISOLATE;
const server = serveDuringTests();
const RUN = 'task=sort&sort_n=5&max_num=10&d_model=32&d_head=32&batch_size=64&lr=0.003&steps=20&workers=2';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` in the page until it returns true; the page may reload meanwhile (the service worker).
async function until(page, fn, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await page.evaluate(fn).catch(() => false)) return;
    await sleep(300);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${fn}`);
}

test('site: served without headers, it isolates itself through the service worker and trains on 2 workers',
  { timeout: 600_000 }, async () => {
    assert.ok(existsSync(`${SITE}/index.html`), `${SITE}/ is missing: run make site first`);
    const res = await fetch(`${server.url}index.html`);
    assert.equal(res.headers.get('cross-origin-embedder-policy'), null, 'the server sends no COEP header');
    assert.equal(res.headers.get('cross-origin-opener-policy'), null, 'the server sends no COOP header');
    const { page, errors, close } = await openNotebook(`${server.url}#v=1&${RUN}`, { webgpu: false });
    try {
      await until(page, () => self.crossOriginIsolated && window.__toyformer?.phase === 'idle', 120_000);
      assert.equal(await page.evaluate(() => typeof SharedArrayBuffer), 'function');
      assert.equal(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL.endsWith('/coi-sw.js')), true);
      await page.evaluate(() => {
        const h = window.__toyformer;
        h.poolEvents = [];
        h.worker.addEventListener('message', ({ data: m }) => { if (m.type === 'pool') h.poolEvents.push(m); });
      });
      await page.click('#btn-start');
      await until(page, () => window.__toyformer.phase === 'done', 300_000);
      const { rows, events } = await page.evaluate(() => ({ rows: window.__toyformer.rows, events: window.__toyformer.poolEvents }));
      assert.equal(rows.length, 20);
      assert.ok(rows[19].loss < rows[0].loss, `it trains: ${rows[0].loss} → ${rows[19].loss}`);
      const size = events.find((e) => e.event === 'size');
      assert.equal(size?.workers, 2, JSON.stringify(events));
      assert.equal(size.build, 'relaxed', 'Chromium validates relaxed SIMD and the site has the build');
      assert.deepEqual(errors, [], 'no console errors');
    } finally {
      await close();
    }
  });
