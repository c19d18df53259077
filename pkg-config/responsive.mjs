// Helpers for measuring the page's responsiveness (tests/browser/responsive.test.mjs and
// bench-responsive.mjs): CPU throttling through the DevTools protocol, and the main thread's long
// tasks (the Long Tasks API) with the scripts of the long animation frames they fall in.

/** Slows the page's CPU `rate` times (1: no throttling), as Chromium's DevTools do. */
export async function throttle(page, rate) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate });
  return cdp;
}

/** An init script (page.addInitScript): records every long task (> 50 ms) of the page's main
 * thread, with when it started, and the scripts of each long animation frame. */
export const observeLongTasks = () => {
  window.__longtasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, ms: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  window.__frames = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__frames.push({ start: e.startTime, end: e.startTime + e.duration,
        scripts: e.scripts.map((s) => `${s.invoker} ${s.sourceURL.split('/').pop()}:${s.sourceFunctionName} ${Math.round(s.duration)} ms`) });
    }
  }).observe({ type: 'long-animation-frame', buffered: true });
};

/** The long tasks that started between page times t0 and t1, each with the scripts that ran in it. */
export function longTasks(page, t0, t1) {
  return page.evaluate(([a, b]) => window.__longtasks.filter((t) => t.start >= a && t.start <= b).map((t) => ({
    ...t, scripts: window.__frames.filter((f) => f.start <= t.start + t.ms && f.end >= t.start).flatMap((f) => f.scripts),
  })), [t0, t1]);
}
