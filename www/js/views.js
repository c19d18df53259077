// DOM builders for the notebook's data views: token sequences, per-position accuracy bars and
// fact lists. Everything is built with textContent (never innerHTML), so labels from the
// model or the user cannot inject markup.

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Make whitespace tokens visible (the permutations task has a space token).
const show = (label) => (label === ' ' ? '␣' : label);

/**
 * Renders sequences [{tokens, predicted, model?, correct?}] as rows of token chips. Scored
 * positions are highlighted; where `correct[i]` is false the target is struck through and
 * the model's guess shown after it. `promptLen` (optional) dims nothing but marks where a
 * completion starts.
 */
export function renderSeqs(root, seqs, { promptLen } = {}) {
  root.replaceChildren();
  for (const s of seqs) {
    const row = el('div', 'seq');
    s.tokens.forEach((label, i) => {
      const tok = el('span', 'tok', show(label));
      tok.title = `position ${i}`;
      if (s.predicted?.[i]) tok.classList.add('target');
      if (promptLen !== undefined && i >= promptLen) tok.classList.add('generated');
      if (s.correct?.[i] === false) {
        tok.classList.add('wrong');
        tok.title += `: target ${label}, model ${s.model[i]}`;
        const guess = el('span', 'guess', show(s.model[i]));
        row.append(tok, guess);
      } else {
        row.append(tok);
      }
    });
    root.append(row);
  }
}

/** Column chart of accuracy by predicted position. */
export function renderBars(root, positions, accs) {
  root.replaceChildren();
  const cols = el('div', 'cols');
  positions.forEach((p, i) => {
    const col = el('div', 'col');
    col.title = `position ${p} → target at ${p + 1}: ${(accs[i] * 100).toFixed(1)}%`;
    const bar = el('div', 'bar');
    bar.style.height = `${Math.max(accs[i] * 100, 0.5)}%`;
    if (accs[i] < 0.9) bar.classList.add('low');
    col.append(bar);
    cols.append(col);
  });
  // Narrow columns for few positions; the axis spans exactly the columns.
  const width = `${Math.min(positions.length * 34, 4000)}px`;
  cols.style.width = width;
  const axis = el('div', 'axis');
  axis.style.width = width;
  const ends = positions.length > 1 ? [positions[0], positions[positions.length - 1]] : [positions[0]];
  axis.append(...ends.map((p) => el('span', '', `pos ${p}`)));
  root.append(el('div', 'yl', '100%'), cols, axis);
}

/** Fills a <dl> with [term, value] pairs. */
export function renderFacts(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    const d = el('div');
    d.append(el('dt', '', k), el('dd', '', v));
    dl.append(d);
  }
}

/** An integer with thousands separators (1,234,567). */
export function fmtInt(n) {
  return n.toLocaleString('en-US');
}
