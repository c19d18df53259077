// Writes www/js/task-rows.js (the page's catalogue task rows and analysis notes) from the task
// registry, through the wasm build's `task_rows_js` binding: run by `make wasm` after wasm-bindgen.
// The file is not kept in git, so adding a task is its file plus one registry line.
import { readFileSync, writeFileSync } from 'node:fs';
import { initSync, task_rows_js } from '../www/pkg/toyformer.js';

initSync({ module: readFileSync(new URL('../www/pkg/toyformer_bg.wasm', import.meta.url)) });
const text = task_rows_js();
if (!text.includes('export const CATALOGUE') || !text.includes('export const NOTES')) {
  throw new Error('task_rows_js() did not return the task rows module');
}
writeFileSync(new URL('../www/js/task-rows.js', import.meta.url), text);
console.log(`www/js/task-rows.js: ${text.length} bytes from the task registry`);
