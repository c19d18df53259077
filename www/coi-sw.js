// Service worker of the published site (`make site`): adds the cross-origin isolation headers
// (COOP same-origin, COEP require-corp) to every response, for static hosts that cannot send them
// (GitHub Pages and the like). Cross-origin isolation gives the page SharedArrayBuffer, which the
// CPU training pool (js/pool.js) uses to hand one copy of the weights to all its workers. The page
// registers it from coi.js and reloads once when it takes control.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (e) => {
  const r = e.request;
  if (r.cache === 'only-if-cached' && r.mode !== 'same-origin') return;
  e.respondWith(fetch(r).then((res) => {
    if (res.status === 0) return res; // opaque: cannot be changed (and COEP would block it anyway)
    const headers = new Headers(res.headers);
    headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }));
});
