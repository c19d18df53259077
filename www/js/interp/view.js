// The analysis cells' view state (timeline position, layer/head, inputs, open cells): hidden
// fields of the one properties table (state.js), so it is in the URL.
import { parseValue, PROPS } from '../state.js';

const prop = (key) => PROPS.find((p) => p.key === key);
const field = (key) => document.querySelector(`.params[data-cell="view"] [name="${key}"]`);

/** The view value of `key` (its default when the field is missing or invalid). */
export function view(key) {
  const p = prop(key);
  const f = field(key);
  if (!f) return p.default;
  const r = parseValue(p, p.type === 'bool' ? String(f.checked) : f.value);
  return r.error || r.value === undefined ? p.default : r.value;
}

/** Sets a view value (the URL follows through the controller's refresh). */
export function setView(key, value) {
  const f = field(key);
  if (!f) return;
  if (prop(key).type === 'bool') {
    if (f.checked === !!value) return;
    f.checked = !!value;
    f.dispatchEvent(new Event('change'));
  } else {
    if (f.value === String(value)) return;
    f.value = String(value);
    f.dispatchEvent(new Event('input'));
  }
}
