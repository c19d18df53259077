// Helpers for browser tests (tests/browser/*.test.mjs): start pkg-config/serve.py on a free port and launch
// Debian's headless Chromium through playwright-core (never a downloaded browser). Lives here so that
// `playwright-core` resolves from pkg-config/node_modules. Flags follow ../shared/docs/gpu.md.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// Serve www/ on 127.0.0.1 at a free port; `fixtures` (a directory) is also served under
// /fixtures/ (tests only); `isolate`: with the cross-origin isolation headers, as `make serve`.
// Resolves to { url, close() }.
export function startServer({ fixtures, isolate = false } = {}) {
  const proc = spawn('python3', [join(here, 'serve.py')], {
    env: { ...process.env, PORT: '0', QUIET: '1', ...(fixtures ? { FIXTURES: fixtures } : {}), ...(isolate ? { ISOLATE: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Never leave a server behind, even when a test crashes before calling close().
  const kill = () => proc.kill();
  process.on('exit', kill);
  return new Promise((resolve, reject) => {
    let out = '';
    proc.on('exit', (code) => reject(new Error(`serve.py exited with ${code} before serving`)));
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) resolve({ url: m[0], close: () => { process.off('exit', kill); kill(); } });
    });
  });
}

// The set-up of a browser test file: test-output/ exists and one server runs while its tests do.
// Returns an object whose `url` is the server's address from the first test on.
export function serveDuringTests({ fixtures } = {}) {
  const server = { url: null, close: () => {} };
  before(async () => {
    mkdirSync('test-output', { recursive: true });
    Object.assign(server, await startServer({ fixtures }));
  });
  after(() => server.close());
  return server;
}

// Launch headless Chromium. webgpu: true gives a SwiftShader WebGPU adapter; false gives no adapter (the
// CPU-fallback case). Resolves to { context, page, close() }.
export async function launch({ webgpu = true } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'toyformer-chromium-'));
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, close };
}

// Launch (see launch()), open the notebook at `url` (1100×900) and wait until it is idle. Console errors and
// uncaught exceptions of the page are collected in `errors`. Resolves to { context, page, close(), errors }.
export async function openNotebook(url, { webgpu = true, init } = {}) {
  const b = await launch({ webgpu });
  if (init) await b.page.addInitScript(init);
  const errors = [];
  b.page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  b.page.on('pageerror', (e) => errors.push(String(e)));
  await b.page.setViewportSize({ width: 1100, height: 900 });
  await b.page.goto(url);
  await b.page.waitForFunction(() => window.__toyformer?.phase === 'idle', null, { timeout: 60_000 });
  return { ...b, errors };
}
