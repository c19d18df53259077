// nextTask(): a promise that resolves in a new task of this thread (a MessageChannel message:
// unlike nested setTimeout it is not clamped to 4 ms, and unlike scheduler.yield it does not
// jump ahead of rendering), so long work can be cut into tasks that let the page paint and
// other messages through between them.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
channel.port1.unref?.(); // in node (tests/js) the port must not keep the process alive; browsers have no unref

export function nextTask() {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });
}
