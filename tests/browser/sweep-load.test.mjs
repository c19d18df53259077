// Issue 20 in the page (headless Chromium): the Sweep cell loads a results file written outside it
// (`examples/sweep --out`, the format pkg-config/ray_sweep.py writes from a Ray cluster), in any
// order, and shows the summary the CLI prints for it, the same numbers exactly; a file that is not
// results is refused naming its line. Screenshot: test-output/sweep-load.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDuringTests, openNotebook } from '../../pkg-config/browser.mjs';

const SWEEP_BIN = join(process.env.CARGO_TARGET_DIR ?? 'target', 'release', 'examples', 'sweep');
const server = serveDuringTests();
// 3 configs × 2 seeds of a small sort task: well under a second each on the command line.
const GRID = { name: 'loaded', task: 'sort', n: 3, max_num: 6, d_model: 16, d_head: 8, n_heads: [1, 2, 4],
  steps: 60, batch_size: 16, seed: [0, 1], eval_samples: 64, curve_samples: 32 };
const FIELDS = ['config_index', 'label', 'runs', 'failed', 'n_params', 'floor', 'final_loss', 'excess',
  'eval_algo_acc', 'eval_algo_loss', 'steps_to_target', 'max_grad_norm'];

async function load(page, path) {
  await page.evaluate(() => { window.__toyformer.sweep.state = 'picking'; });
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#btn-sweep-load')]);
  await chooser.setFiles(path);
  await page.waitForFunction(() => ['loaded', 'error'].includes(window.__toyformer.sweep.state), null, { timeout: 60_000 });
  return page.evaluate(() => window.__toyformer.sweep);
}

test('sweep: a results file from the command line loads into the table and plot with the CLI\'s numbers', { timeout: 300_000 }, async () => {
  assert.ok(existsSync(SWEEP_BIN), `${SWEEP_BIN} missing: cargo build --release --example sweep`);
  const dir = mkdtempSync(join(tmpdir(), 'toyformer-sweep-load-'));
  const { page, errors, close } = await openNotebook(server.url, { webgpu: false });
  try {
    writeFileSync(join(dir, 'grid.json'), JSON.stringify(GRID));
    const out = join(dir, 'cli.jsonl');
    const cli = JSON.parse(execFileSync(SWEEP_BIN, ['--grid', join(dir, 'grid.json'), '--out', out, '--json', '--threads', '2'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    assert.equal(cli.configs.length, 3);
    // reversed (a cluster writes runs as they finish), with a last line cut short by a stopped writer
    const lines = execFileSync('cat', [out], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(lines.length, 6);
    const shuffled = [...lines].reverse().join('\n') + '\n' + lines[0].slice(0, 100);
    writeFileSync(join(dir, 'cluster.jsonl'), shuffled);

    const sw = await load(page, join(dir, 'cluster.jsonl'));
    assert.equal(sw.state, 'loaded', sw.error);
    assert.equal(sw.results.length, 6);
    assert.equal(sw.rows.length, 3);
    for (const c of cli.configs) {
      const p = sw.rows.find((r) => r.config_index === c.config_index);
      for (const k of FIELDS) assert.deepEqual(p[k], c[k], `config ${c.config_index} ${k}: the CLI's numbers exactly`);
      assert.match(p.link, /^#v=1&task=sort&sort_n=3&max_num=6&/);
    }
    assert.equal(await page.locator('#sweep-table tbody tr').count(), 3);
    assert.equal(await page.locator('#sweep-plot canvas').count(), 1, 'the plot is drawn');
    assert.match(await page.textContent('#sweep-status'), /6 runs \(3 configs\) loaded from cluster\.jsonl · its last line was cut short/);
    assert.equal(await page.isEnabled('#btn-sweep-download'), true, 'a loaded file can be downloaded again');
    await page.locator('#cell-sweep').screenshot({ path: 'test-output/sweep-load.png' });

    // Not results: a line that is not JSON, and JSON that is not a run, are named by line.
    writeFileSync(join(dir, 'bad.jsonl'), `${lines[0]}\n{"spec": \n${lines[1]}\n`);
    let bad = await load(page, join(dir, 'bad.jsonl'));
    assert.equal(bad.state, 'error');
    assert.match(bad.error, /bad\.jsonl: line 2 is not JSON/);
    assert.equal(await page.isVisible('#sweep-grid-error'), true);
    writeFileSync(join(dir, 'other.jsonl'), `${lines[0]}\n{"name": "not a run"}\n`);
    bad = await load(page, join(dir, 'other.jsonl'));
    assert.match(bad.error, /other\.jsonl: line 2 is not a run result/);
    // a line with a spec but missing figures: the Rust reader names the field
    const partial = JSON.parse(lines[1]);
    delete partial.n_params;
    writeFileSync(join(dir, 'partial.jsonl'), `${lines[0]}\n${JSON.stringify(partial)}\n`);
    bad = await load(page, join(dir, 'partial.jsonl'));
    assert.match(bad.error, /n_params/);

    // The line reader on mangled files (cut anywhere, characters replaced, lines dropped or repeated):
    // it returns runs with integer indices, each once, or throws an Error naming a line; nothing else.
    const fuzz = await page.evaluate(async (text) => {
      const { parseResultLines } = await import('./js/cells/sweep.js');
      let seed = 20;
      const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
      const out = { ok: 0, named: 0, other: [] };
      for (let i = 0; i < 400; i++) {
        let t = text;
        const kind = rand(4);
        if (kind === 0) t = t.slice(0, rand(t.length + 1));
        if (kind === 1) for (let j = 0; j < 3; j++) { const k = rand(t.length); t = t.slice(0, k) + '{}[]",:0\n'[rand(10)] + t.slice(k + 1); }
        if (kind === 2) { const ls = t.split('\n'); ls.splice(rand(ls.length), 1); t = ls.join('\n'); }
        if (kind === 3) { const ls = t.split('\n'); ls.push(ls[rand(ls.length)]); t = ls.join('\n'); }
        try {
          const { results } = parseResultLines(t);
          const idx = results.map((r) => r.spec.index);
          if (idx.every(Number.isInteger) && new Set(idx).size === idx.length) out.ok++;
          else out.other.push(`bad result set ${idx}`);
        } catch (e) {
          if (e instanceof Error && /^(line \d+ is not|no run results)/.test(e.message)) out.named++;
          else out.other.push(String(e?.message ?? e));
        }
      }
      return out;
    }, lines.join('\n') + '\n');
    assert.deepEqual(fuzz.other, [], 'every mangled file is read or refused by line');
    assert.ok(fuzz.ok > 50 && fuzz.named > 50, `both outcomes exercised: ${JSON.stringify(fuzz)}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});
