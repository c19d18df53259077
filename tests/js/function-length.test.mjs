// The page's style rule "functions short enough to read at once": no function in www/js is over
// MAX_LINES lines (a data table is not a function). A small scanner finds the function bodies:
// it skips strings, template literals, comments and regular expressions, and takes a `{` as a
// function body when it follows `=>` or the `)` of a parameter list (not of if/for/while/switch/catch).
// A function's length counts the functions nested in it, as a reader sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

const MAX_LINES = 80;
const CONTROL = new Set(['if', 'for', 'while', 'switch', 'catch', 'with']);
// After these (ignoring spaces) a `/` starts a regular expression rather than a division.
const REGEX_AFTER = new Set(['', '(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^']);

/** The functions of a JavaScript source: [{ name, line, lines }] (1-based first line, line count). */
export function functionLengths(src) {
  const out = [];
  const stack = []; // open braces: { fn: {name, line} | null, template: bool }
  let line = 1;
  let prev = ''; // last significant character outside strings and comments
  let i = 0;
  // the code before the `{` at i (same statement), to tell a function body from a block
  const header = (at) => {
    const start = Math.max(src.lastIndexOf('\n', at - 1) - 200, 0);
    return src.slice(start, at).replace(/\/\/[^\n]*/g, '').trimEnd();
  };
  const isFunctionBody = (at) => {
    const h = header(at);
    if (h.endsWith('=>')) return true;
    if (!h.endsWith(')')) return false;
    let depth = 0;
    for (let j = h.length - 1; j >= 0; j--) {
      if (h[j] === ')') depth++;
      else if (h[j] === '(' && --depth === 0) {
        const word = h.slice(0, j).trimEnd().match(/([A-Za-z_$][\w$]*)$/)?.[1] ?? '';
        return !CONTROL.has(word);
      }
    }
    return false;
  };
  const nameAt = (at) => header(at).split('\n').pop().trim().slice(0, 70);
  // scans a string literal opened by quote q at i; returns the index after it
  const skipString = (q) => {
    for (i++; i < src.length && src[i] !== q; i++) {
      if (src[i] === '\\') i++;
      else if (src[i] === '\n') line++;
    }
    return i + 1;
  };
  // scans template text from i up to its end (returns after the backtick) or a `${` (pushes a brace)
  const skipTemplate = () => {
    for (; i < src.length; i++) {
      const c = src[i];
      if (c === '\\') i++;
      else if (c === '\n') line++;
      else if (c === '`') return i + 1;
      else if (c === '$' && src[i + 1] === '{') {
        stack.push({ fn: null, template: true });
        return i + 2;
      }
    }
    return i;
  };
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      i = src.indexOf('\n', i);
      if (i < 0) break;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      line += (src.slice(i, end).match(/\n/g) ?? []).length;
      i = end + 2;
    } else if (c === '/' && (REGEX_AFTER.has(prev) || /(return|typeof|of|in)$/.test(src.slice(Math.max(0, i - 8), i).trimEnd()))) {
      let inClass = false;
      for (i++; i < src.length && (src[i] !== '/' || inClass); i++) {
        if (src[i] === '\\') i++;
        else if (src[i] === '[') inClass = true;
        else if (src[i] === ']') inClass = false;
      }
      i++;
      prev = 'a';
    } else if (c === '"' || c === "'") {
      i = skipString(c);
      prev = 'a';
    } else if (c === '`') {
      i++;
      i = skipTemplate();
      prev = 'a';
    } else if (c === '{') {
      stack.push({ fn: isFunctionBody(i) ? { name: nameAt(i), line } : null, template: false });
      i++;
      prev = c;
    } else if (c === '}') {
      const open = stack.pop();
      i++;
      if (open?.template) {
        i = skipTemplate();
        prev = 'a';
        continue;
      }
      if (open?.fn) out.push({ ...open.fn, lines: line - open.fn.line + 1 });
      prev = c;
    } else {
      prev = c;
      i++;
    }
  }
  assert.equal(stack.length, 0, 'unbalanced braces: the scanner lost its place');
  return out;
}

test('the scanner finds functions, methods and arrows, and skips blocks, strings and regexes', () => {
  const src = [
    'function a(x) {', //                           1
    "  const s = '{'; const r = /[}{]/g;", //         2
    '  if (x) {', //                                  3
    '    return `${x}}`;', //                         4
    '  }', //                                         5
    '  const f = (y) => {', //                        6
    '    return y / 2 / 3;', //                       7
    '  };', //                                        8
    '}', //                                           9
    'class C {', //                                  10
    '  m() {', //                                    11
    '    for (const k of []) { /* } */ }', //        12
    '  }', //                                        13
    '}', //                                          14
  ].join('\n');
  const found = functionLengths(src).map(({ line, lines }) => [line, lines]);
  assert.deepEqual(found.sort((p, q) => p[0] - q[0]), [[1, 9], [6, 3], [11, 3]]);
});

test(`no function in www/js is over ${MAX_LINES} lines`, () => {
  const dir = new URL('../../www/js/', import.meta.url);
  const long = [];
  let count = 0;
  for (const f of readdirSync(dir, { recursive: true }).filter((x) => x.endsWith('.js'))) {
    for (const fn of functionLengths(readFileSync(new URL(f, dir), 'utf8'))) {
      count++;
      if (fn.lines > MAX_LINES) long.push(`${f}:${fn.line} ${fn.name} (${fn.lines} lines)`);
    }
  }
  assert.ok(count > 300, `the scanner found only ${count} functions in www/js`);
  assert.deepEqual(long, [], `functions over ${MAX_LINES} lines:\n${long.join('\n')}`);
});
