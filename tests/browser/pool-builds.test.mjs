// k-worker training equals one-worker training in both wasm builds (www/pkg: simd128,
// www/pkg-relaxed: relaxed SIMD), for sort, permutations, apply-perm and a custom data file over 50 steps: the
// session's own step (one worker) against the same session type fed k = 2 and 3 runs of shards
// computed by separate ShardWorker engines (the code path of the page's pool, without the
// messages, which tests/browser/pool.test.mjs covers); and k = 3 as the page's isolated pool does it
// (run 0 on the session's own engine, Session.pool_local; helpers making the batch themselves from
// seed and step, ShardWorker.step_grads_into, into one gradient array; weights via weights_into).
// Losses, metrics and final weights must be bit for bit the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDuringTests, launch } from '../../pkg-config/browser.mjs';

const server = serveDuringTests();

// the user's own data too: the isolated pool's helpers rebuild its batches from the task spec
const reversals = Array.from({ length: 200 }, (_, i) => {
  const a = [i % 7, (i * 3) % 5, (i * 11) % 9];
  return `${a.join(' ')}|${[...a].reverse().join(' ')}`;
});
const TASKS = [
  { task: 'sort', n: 6, max_num: 20 },
  { task: 'permutations', n: 4 },
  { task: 'apply-perm', k: 3, max_int: 8 },
  { task: 'custom', name: 'reversals', data: `${reversals.join('\n')}\n` },
];

test('pool builds: k = 2, 3 workers (and 3 on the isolated pool\'s path) give bit-identical training to 1 worker in both wasm builds, four tasks (one the user\'s data), 50 steps',
  { timeout: 600_000 }, async () => {
    const b = await launch({ webgpu: false });
    try {
      await b.page.goto(`${server.url}index.html`);
      const out = await b.page.evaluate(async (tasks) => {
        const train = JSON.stringify({ steps: 50, batch_size: 96, lr: 0.003 });
        const bits = (a) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
        // one step of the isolated pool's code path, k workers (run 0 here), without SharedArrayBuffers
        const seededStep = (s, workers, k, w, out) => {
          const plan = s.pool_plan(k, false);
          if (plan.tokens !== undefined) throw new Error('pool_plan(k, false) made the tokens');
          s.weights_into(w);
          s.pool_local();
          plan.runs.forEach(([lo, hi], j) => {
            if (j === 0 || lo >= hi) return;
            const r = workers[j].step_grads_into(w, plan.seed, plan.step, plan.batch, lo, hi, out);
            s.pool_supply({ ...r, grads: out.subarray(0, r.rows.length * w.length) });
          });
          return s.step(1);
        };
        const run = async (pkg, taskObj, k, seeded = false) => {
          const m = await import(`./${pkg}/toyformer.js`);
          await m.default();
          const task = JSON.stringify(taskObj);
          const model = JSON.stringify({ ...m.task_info(task).default_model, d_model: 32, d_head: 16 });
          const s = new m.Session(task, model, train);
          const rows = [];
          if (k === 1) rows.push(...s.step(50));
          else {
            const info = s.info();
            const workers = Array.from({ length: k }, () => new m.ShardWorker(JSON.stringify(info.task), JSON.stringify(info.model)));
            const w = new Float32Array(s.weights().length);
            const out = new Float32Array(8 * w.length);
            for (let i = 0; i < 50 && seeded; i++) rows.push(...seededStep(s, workers, k, w, out));
            for (let i = 0; i < 50 && !seeded; i++) {
              const plan = s.pool_plan(k);
              const w = s.weights();
              plan.runs.forEach(([lo, hi], j) => {
                if (lo < hi) s.pool_supply(workers[j].grads(w, plan.tokens, plan.targets, plan.batch, lo, hi));
              });
              rows.push(...s.step(1));
            }
            workers.forEach((x) => x.free());
          }
          const out = { losses: bits(rows.map((r) => r.loss)), acc: rows.map((r) => r.token_acc), weights: bits(s.weights()),
            runs: `${k}${seeded ? ' (seeded, pool_local)' : ''}` };
          s.free();
          return out;
        };
        const res = [];
        for (const pkg of ['pkg', 'pkg-relaxed']) {
          for (const t of tasks) res.push({ pkg, task: t.task, one: await run(pkg, t, 1), two: await run(pkg, t, 2),
            three: await run(pkg, t, 3), seeded: await run(pkg, t, 3, true) });
        }
        return res;
      }, TASKS);
      assert.equal(out.length, 2 * TASKS.length);
      for (const r of out) {
        const what = `${r.pkg} ${r.task}`;
        assert.equal(r.one.losses.length, 50, `${what}: 50 steps`);
        for (const other of [r.two, r.three, r.seeded]) {
          assert.deepEqual(other.losses, r.one.losses, `${what}: k = ${other.runs} losses equal k = 1 bit for bit`);
          assert.deepEqual(other.acc, r.one.acc, `${what}: k = ${other.runs} accuracies`);
          assert.deepEqual(other.weights, r.one.weights, `${what}: k = ${other.runs} final weights equal bit for bit`);
        }
        const f = (x) => new Float32Array(new Uint32Array(x).buffer);
        assert.ok(f(r.one.losses)[49] < f(r.one.losses)[0], `${what}: it trains`);
      }
    } finally {
      await b.close();
    }
  });
