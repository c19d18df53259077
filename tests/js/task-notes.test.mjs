// The analysis cells' task notes (Task::analysis_notes, generated into www/js/task-rows.js as
// NOTES): every task of the page's task menu has a note for every analysis cell, each task its own,
// and no task but sort speaks of sorting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NOTES } from '../../www/js/task-rows.js';
import { PROPS } from '../../www/js/state.js';

const CELLS = ['attention', 'qk', 'ov', 'scores', 'interventions', 'timeline'];
const TASKS = PROPS.find((p) => p.key === 'task').options;

test('every task of the menu has a non-empty note for every analysis cell', () => {
  assert.deepEqual(Object.keys(NOTES).sort(), [...TASKS].sort());
  for (const t of TASKS) {
    assert.deepEqual(Object.keys(NOTES[t]).sort(), [...CELLS].sort(), t);
    for (const c of CELLS) assert.ok(NOTES[t][c].length > 20, `${t}.${c}: "${NOTES[t][c]}"`);
  }
});

test('only the sort task speaks of sorting', () => {
  assert.match(Object.values(NOTES.sort).join(' '), /sort/i);
  for (const t of TASKS.filter((x) => x !== 'sort')) {
    for (const c of CELLS) assert.doesNotMatch(NOTES[t][c], /\bsort/i, `${t}.${c}`);
  }
});

test('each task has its own attention note', () => {
  // a custom task (the user's data) has no known algorithm: it keeps the generic notes
  const texts = TASKS.filter((t) => t !== 'custom').map((t) => NOTES[t].attention);
  assert.equal(new Set(texts).size, texts.length);
});
