// The Evaluate cell: the model on fresh samples (loss and accuracies, per position, sample
// predictions; both sides of a held-out split; a finite dataset's train, test and full-dataset
// figures, every item once), and "Try it", the model completing a typed prompt.
import { app, hook } from '../app.js';
import { renderSeqs, renderBars, renderFacts, fmtInt } from '../views.js';

const $ = (id) => document.getElementById(id);
const EVAL_SAMPLES = 1000;
const SHOWN = 5; // sample predictions shown (2 for long sequences)

/** Asks the worker to evaluate the model (answered by an 'evaluated' message). */
export function evaluate() {
  $('eval-note').textContent = 'Evaluating…';
  app.worker.postMessage({ type: 'evaluate', samples: EVAL_SAMPLES, shown: app.info.seq_len > 40 ? 2 : SHOWN });
}

export function onEvaluated({ report, samples, step }) {
  hook.lastEval = report;
  // With a held-out split (permutations holdout > 0) the report is on unseen combinations and
  // `report.train` on the combinations training draws from: both, side by side.
  const tr = report.train;
  const both = (f) => (tr ? `${f(report)} held-out · ${f(tr)} train` : f(report));
  renderFacts($('eval-facts'), report.finite ? finiteFacts(report.finite) : [
    ['loss', both((r) => `${r.loss.toFixed(4)} nats`)],
    ['algorithm loss', both((r) => `${r.algo_loss.toFixed(4)} nats`)],
    ['token accuracy', both((r) => pct(r.token_acc))],
    ['sequence accuracy', both((r) => pct(r.seq_acc))],
    ['algorithm accuracy', both((r) => pct(r.algo_acc))],
  ]);
  renderBars($('eval-perpos'), report.positions, report.per_pos_acc);
  renderSeqs($('eval-samples'), samples);
  const steps = step ?? hook.rows.length; // a loaded model's step count need not match its curve
  $('eval-note').textContent = report.finite ? finiteNote(report.finite, steps) : tr
    ? `${fmtInt(report.samples)} fresh samples of each side of the split (held-out: character combinations never trained on), after ${fmtInt(steps)} steps`
    : `${fmtInt(report.samples)} fresh samples, after ${fmtInt(steps)} steps`;
  const f = report.finite;
  $('eval-brief').textContent = f ? `train ${pct(f.train.token_acc)} · test ${pct(f.test.token_acc)} · full ${pct(f.full.token_acc)}`
    : `token acc ${pct(report.token_acc)} · seq acc ${pct(report.seq_acc)}`;
}

const pct = (x) => `${(x * 100).toFixed(2)}%`;

// A finite dataset: every item of each side of its train/test split, and the full dataset.
function finiteFacts(f) {
  const row = (r) => `${pct(r.token_acc)} · loss ${r.loss.toFixed(4)} nats`;
  return [
    [`train split (${fmtInt(f.train.samples)} items)`, row(f.train)],
    [`test split (${fmtInt(f.test.samples)} items)`, row(f.test)],
    [`full dataset (${fmtInt(f.full.items)} items)`, row(f.full)],
  ];
}

function finiteNote(f, steps) {
  const whole = f.train.samples + f.test.samples === f.full.items;
  return `${whole ? 'Every item' : `At most ${fmtInt(Math.max(f.train.samples, f.test.samples))} items`} of each side of the train/test split, after ${fmtInt(steps)} steps (token accuracy; the full dataset weights the two sides by their sizes)`;
}

export function onCompleted(result) {
  hook.lastCompletion = result;
  $('try-error').hidden = true;
  const predicted = result.tokens.map((_, i) => i >= result.prompt_len);
  renderSeqs($('try-output'), [{ tokens: result.tokens, predicted }], { promptLen: result.prompt_len });
}

/** A completion the worker could not make (say, a prompt the task cannot read). */
export function onCompleteError(message) {
  $('try-error').textContent = message;
  $('try-error').hidden = false;
}

/** Clears what the cell shows of the previous model. */
export function clearEvaluation() {
  hook.lastEval = hook.lastCompletion = null;
}

export function initEvaluateCell() {
  $('btn-eval').onclick = evaluate;
  $('try-form').onsubmit = (e) => {
    e.preventDefault();
    app.worker.postMessage({ type: 'complete', text: $('try-input').value });
  };
  app.on('controls', () => {
    const live = app.hasModel();
    $('btn-eval').disabled = !live;
    $('try-input').disabled = $('btn-complete').disabled = !live;
  });
}
