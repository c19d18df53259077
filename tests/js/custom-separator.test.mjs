// The custom task's separator (issue 14) in the properties table and the link: any one character,
// a space included, is a value and survives the link; an empty or longer one is refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROPS, parseValue, taskSpec } from '../../www/js/state.js';
import { decodeFragment, encodeFragment } from '../../www/js/link.js';

const SEP = PROPS.find((p) => p.key === 'custom_separator');
const MODEL = { n_layers: 2, n_heads: 2, d_model: 64, d_head: 32, normalization_type: null };

test('custom separator: one character, a space included, is kept as typed', () => {
  for (const c of [' ', '|', '#', '=', 'é', '+', '%', '&', '😀']) assert.deepEqual(parseValue(SEP, c), { value: c }, JSON.stringify(c));
});

test('custom separator: empty, two characters, a control character are refused, naming the field', () => {
  assert.match(parseValue(SEP, '').error, /^separator \(text format\): must be exactly 1 character \(it is empty\)/);
  assert.match(parseValue(SEP, 'ab').error, /^separator \(text format\): must be exactly 1 character \("ab" has 2\)/);
  assert.match(parseValue(SEP, '  ').error, /must be exactly 1 character \(" {2}" has 2\)/);
  assert.match(parseValue(SEP, '\t').error, /is not allowed here/);
});

test('custom separator: a space round-trips through the link and reaches the task spec', () => {
  for (const c of [' ', '#', '+', '&', 'é']) {
    const values = { task: 'custom', custom_separator: c };
    const frag = encodeFragment(values, MODEL);
    const d = decodeFragment(`#${frag}`);
    assert.deepEqual(d.notes, [], frag);
    assert.equal(d.values.custom_separator, c, frag);
    assert.equal(taskSpec({ ...d.values, custom_format: 'text' }, { text: 'ab c\n', name: 'x', hash: '' }).separator, c);
  }
  assert.match(encodeFragment({ task: 'custom', custom_separator: ' ' }, MODEL), /custom_separator=\+(&|$)/);
});
