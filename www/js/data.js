// The custom task's data file (issue 14), held for the page: the text, its display name, its
// hash (computed by the wasm module, data_hash) and the URL it came from (null for a file or a
// link's own d=). state.js puts it into the custom task's spec, so the worker, the saved run
// (IndexedDB) and the link all carry it. No DOM and no wasm here (node tests import state.js).

let current = null; // {text, name, hash, url}

/** The current data file, or null (then the custom task uses its built-in example). */
export function currentData() {
  return current;
}

/** Makes `d` ({text, name, hash, url?}) the current data file; null forgets it. */
export function setData(d) {
  current = d ? { text: d.text, name: d.name ?? '', hash: d.hash ?? '', url: d.url ?? null } : null;
}
