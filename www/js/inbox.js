// The training worker's messages on the page, handled in bounded tasks. A page that falls behind
// a fast worker (a loaded machine, a throttled CPU) finds many messages waiting; handling each as
// much as it holds would make long tasks. Here every task of the page handles one message, and at
// most MAX_ROWS metrics rows: a longer metrics message is split over several tasks, and metrics
// messages that wait one after another are merged (up to MAX_ROWS rows), so that a page that is
// behind draws their rows once. `stats` counts messages, tasks and the most rows of one task.
import { nextTask } from './next-task.js';

export const MAX_ROWS = 256;

/** The `last` summary of metrics rows (the worker's form; the rate is the message's). */
function lastOf(rows, rate) {
  const m = rows[rows.length - 1];
  return { step: m.step + 1, loss: m.loss, token_acc: m.token_acc, grad_norm: m.grad_norm, lr: m.lr, steps_per_s: rate };
}

/** The next unit of work of `queue` (removed from it): one message, or metrics rows up to MAX_ROWS. */
function take(queue) {
  const m = queue[0];
  if (m.type !== 'metrics') return queue.shift();
  if (m.rows.length > MAX_ROWS) {
    const rows = m.rows.slice(0, MAX_ROWS);
    queue[0] = { ...m, rows: m.rows.slice(MAX_ROWS) };
    return { ...m, rows, last: lastOf(rows, m.last.steps_per_s) };
  }
  let out = queue.shift();
  while (queue[0]?.type === 'metrics' && out.rows.length + queue[0].rows.length <= MAX_ROWS) {
    const n = queue.shift();
    out = { ...n, rows: [...out.rows, ...n.rows] };
  }
  return out;
}

/**
 * A message handler for the worker (`worker.onmessage = inbox(handle, stats)`): `handle(msg)` is
 * called for each message in order, one per task, metrics rows at most MAX_ROWS per task.
 */
export function inbox(handle, stats = {}) {
  Object.assign(stats, { messages: 0, tasks: 0, maxRows: 0 });
  const queue = [];
  let draining = false;
  const drain = async () => {
    draining = true;
    while (queue.length) {
      const m = take(queue);
      stats.tasks += 1;
      stats.maxRows = Math.max(stats.maxRows, m.rows?.length ?? 0);
      try {
        handle(m);
      } catch (err) {
        reportError(err); // as an uncaught error; the messages after it are still handled
      }
      if (queue.length) await nextTask();
    }
    draining = false;
  };
  return (e) => {
    stats.messages += 1;
    queue.push(e.data);
    if (!draining) drain();
  };
}
