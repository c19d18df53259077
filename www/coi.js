// Cross-origin isolation for the published site (`make site` puts this script before js/main.js):
// where the host sends no COOP/COEP headers, register coi-sw.js, which adds them, and reload once
// when it controls the page. Does nothing where the page is already isolated, where service workers
// are unavailable (not a secure context), or after one reload that did not isolate it.
(function isolate() {
  if (self.crossOriginIsolated || !('serviceWorker' in navigator) || !self.isSecureContext) return;
  const KEY = 'toyformer-coi-reloaded';
  if (sessionStorage.getItem(KEY)) {
    sessionStorage.removeItem(KEY); // one try per visit: a host that blocks it trains without SharedArrayBuffer
    return;
  }
  const reload = () => {
    sessionStorage.setItem(KEY, '1');
    location.reload();
  };
  navigator.serviceWorker.register('coi-sw.js').then((reg) => {
    if (navigator.serviceWorker.controller) reload();
    else navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
    return reg;
  }).catch(() => {});
}());
