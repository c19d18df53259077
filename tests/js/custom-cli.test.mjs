// The custom task on the command line (issue 14): `examples/train --task custom --data FILE` trains seed
// 000's permutation data written as a text file to ≥ 0.99 test accuracy in a fixed number of steps, and
// `examples/eval --data FILE` measures the saved model on the same split with the same numbers; --data
// misused is named. Builds the two release examples first (a no-op when they are up to date), so a clean
// checkout runs it too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.env.CARGO_TARGET_DIR ?? 'target', 'release', 'examples');
execFileSync('cargo', ['build', '--release', '-q', '--example', 'train', '--example', 'eval'], { stdio: 'inherit' });
const run = (bin, args) => spawnSync(join(BIN, bin), args, { encoding: 'utf8' });

/** Seed 000's data: every 10th 3-combination of its 62 characters (itertools order), `> abc| acb bac bca cab cba.` */
function seed000() {
  const c = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];
  const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  const out = [];
  let k = 0;
  for (let a = 0; a < c.length; a++) for (let b = a + 1; b < c.length; b++) for (let d = b + 1; d < c.length; d++) {
    if (++k % 10) continue;
    const t = perms.map((p) => p.map((i) => [c[a], c[b], c[d]][i]).join(''));
    out.push(`> ${t[0]}| ${t.slice(1).join(' ')}.`);
  }
  return `${out.join('\n')}\n`;
}

test('custom CLI: train --data reaches 0.99 test accuracy; eval --data gives the same split figures', () => {
  const dir = mkdtempSync(join(tmpdir(), 'toyformer-custom-cli-'));
  try {
    const data = join(dir, 'perm3.txt');
    writeFileSync(data, seed000());
    const model = join(dir, 'perm3.safetensors');
    const t = run('train', ['--task', 'custom', '--data', data, '--n-layers', '1', '--norm', 'LN', '--steps', '600', '--batch', '64',
      '--lr', '3e-3', '--backend', 'cpu', '--out', model, '--json']);
    assert.equal(t.status, 0, t.stderr);
    const tr = JSON.parse(t.stdout.trim().split('\n').at(-1));
    assert.equal(tr.task, 'custom');
    assert.equal(tr.steps, 600);
    const side = (r, n) => r.splits.find((s) => s.split === n);
    console.log(`train: ${tr.steps} steps, train/test token acc ${side(tr, 'train').token_acc} / ${side(tr, 'test').token_acc}`);
    assert.ok(side(tr, 'test').token_acc >= 0.99, `test accuracy ${side(tr, 'test').token_acc}`);
    const e = run('eval', ['--model', model, '--task', 'custom', '--data', data, '--json']);
    assert.equal(e.status, 0, e.stderr);
    const ev = JSON.parse(e.stdout.trim().split('\n').at(-1));
    for (const n of ['train', 'test']) {
      assert.ok(Math.abs(side(ev, n).token_acc - side(tr, n).token_acc) < 1e-9, `${n}: eval ${side(ev, n).token_acc} vs train ${side(tr, n).token_acc}`);
    }
    // --data misused: named
    assert.match(run('train', ['--task', 'sort', '--data', data, '--steps', '1']).stderr, /--data FILE is for --task custom/);
    assert.match(run('train', ['--task', 'custom', '--steps', '1']).stderr, /--task custom needs --data FILE/);
    assert.match(run('eval', ['--model', model, '--task', 'custom', '--data', join(dir, 'missing.txt')]).stderr, /missing\.txt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
