// The page's handling of the training worker's messages (www/js/inbox.js), in node: a backlog is
// handled one message per task, metrics rows at most MAX_ROWS per task, every row once and in
// order, other messages in their place among them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inbox, MAX_ROWS } from '../../www/js/inbox.js';

const rowsFrom = (start, n) => Array.from({ length: n }, (_, i) => ({ step: start + i, loss: 1 / (start + i + 1), token_acc: 0.5, grad_norm: 1, lr: 1e-3 }));
const metrics = (start, n) => ({ type: 'metrics', rows: rowsFrom(start, n), total: 10_000,
  last: { step: start + n, loss: 1 / (start + n), token_acc: 0.5, grad_norm: 1, lr: 1e-3, steps_per_s: 42 } });

test('a backlog is handled in order, one message and at most MAX_ROWS rows per task', async () => {
  const handled = []; // [stretch number, message]
  // Tasks counted from outside: a stretch of synchronous handling ends at the next microtask
  // checkpoint, which comes before any later task; two messages in one stretch share a task.
  let stretch = 0;
  let open = false;
  const stats = {};
  const receive = inbox((m) => {
    if (!open) {
      open = true;
      stretch += 1;
      queueMicrotask(() => { open = false; });
    }
    handled.push([stretch, m]);
  }, stats);
  // the backlog, all in one task: 1000 rows, a snapshot, twenty messages of 50 rows, 'done'
  const sent = [metrics(0, 1000), { type: 'snapshot', step: 1000 }];
  for (let k = 0; k < 20; k++) sent.push(metrics(1000 + 50 * k, 50));
  sent.push({ type: 'done' });
  for (const m of sent) receive({ data: m });
  assert.equal(handled.length, 1, 'the delivering task handles one message');
  while (handled.at(-1)?.[1].type !== 'done') await new Promise((r) => setTimeout(r, 0));
  const rows = handled.filter(([, m]) => m.type === 'metrics').flatMap(([, m]) => m.rows.map((r) => r.step));
  assert.deepEqual(rows, [...Array(2000).keys()], 'every row once, in order');
  assert.deepEqual(handled.map(([, m]) => m.type).filter((t) => t !== 'metrics'), ['snapshot', 'done']);
  // the snapshot comes after the first 1000 rows and before the next ones
  const at = handled.findIndex(([, m]) => m.type === 'snapshot');
  assert.equal(handled.slice(0, at).reduce((n, [, m]) => n + m.rows.length, 0), 1000);
  // one message per task: no two handled in the same task; rows per task bounded
  const perTask = new Map();
  for (const [t, m] of handled) perTask.set(t, (perTask.get(t) ?? 0) + (m.rows?.length ?? 1));
  assert.equal(perTask.size, handled.length, `${handled.length} handled in ${perTask.size} tasks`);
  assert.ok(Math.max(...perTask.values()) <= MAX_ROWS);
  assert.ok(handled.length >= 2 + Math.ceil(2000 / MAX_ROWS));
  // each handled metrics message's `last` describes its own last row
  for (const [, m] of handled.filter(([, x]) => x.type === 'metrics')) {
    const r = m.rows.at(-1);
    assert.deepEqual([m.last.step, m.last.loss, m.last.steps_per_s], [r.step + 1, r.loss, 42]);
  }
  assert.deepEqual({ messages: stats.messages, tasks: stats.tasks }, { messages: sent.length, tasks: handled.length });
});

test('messages that come one at a time are handled at once, in the task that brings them', () => {
  const handled = [];
  const receive = inbox((m) => handled.push(m));
  for (let k = 0; k < 5; k++) {
    receive({ data: metrics(10 * k, 10) });
    assert.equal(handled.length, k + 1);
  }
});
