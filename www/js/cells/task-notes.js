// The analysis cells' task notes: under its own task-independent caption every analysis cell shows
// what the current task's algorithm is expected to look like there (Task::analysis_notes in the Rust
// task files, generated into task-rows.js as NOTES). The notes follow the task of the form, which a
// loaded model or run fills in.
import { NOTES } from '../task-rows.js';
import { app } from '../app.js';
import { el } from '../interp/heatmap.js';

const shown = []; // [{p, cell}]

/** The notes of task `name` ({attention, qk, ov, scores, interventions, timeline}), or null. */
export function notesFor(name) {
  return NOTES[name] ?? null;
}

function fill({ p, cell }) {
  const task = app.values?.task;
  const text = notesFor(task)?.[cell] ?? '';
  p.hidden = !text;
  if (p.textContent === text) return;
  p.textContent = text;
  p.dataset.task = task ?? '';
}

/** Appends to `root` the paragraph of `cell`'s note (kept up to date with the task). */
export function taskNote(root, cell) {
  const p = el('p', 'caption task-note');
  p.dataset.note = cell;
  root.append(p);
  const entry = { p, cell };
  shown.push(entry);
  fill(entry);
  if (shown.length === 1) app.on('controls', () => shown.forEach(fill));
  return p;
}
