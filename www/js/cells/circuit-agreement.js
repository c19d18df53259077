// The Circuit cell's check of attribution against patching: Spearman's rank correlation, over
// every edge, between the EAP / EAP-IG estimates and noising path patching of each edge on the
// same pairs (what a user needs to trust attribution). One forward run per edge, so the worker
// computes it only while this section is open (view_circuit_agreement, in the link). The work
// runs in the analysis worker (Interp::circuit_agreement, src/wasm/circuit.rs).
import { el } from '../interp/heatmap.js';

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(3) : '–');

export class CircuitAgreement {
  /** Appends the view (a closed <details> unless the link opens it) to `root`. */
  constructor(root, ctx) {
    this.ctx = ctx;
    this.box = el('details', 'circuit-agreement');
    this.box.id = 'circuit-agreement';
    this.box.open = this.open();
    this.box.append(el('summary', '', 'Attribution against path patching'));
    this.box.ontoggle = () => {
      if (this.open() === this.box.open) return;
      this.ctx.setView('view_circuit_agreement', this.box.open);
      if (this.box.open) this.ctx.recompute(['circuit']);
    };
    this.text = el('p', 'circuit-agreement-text');
    this.box.append(this.text);
    root.append(this.box);
  }

  /** Whether the worker should compute the check. */
  open() {
    return Boolean(this.ctx.view('view_circuit_agreement'));
  }

  /** Shows the worker's answer `a` (null: not computed; {error}). */
  update(a) {
    if (!a) return;
    if (a.error) {
      this.text.textContent = a.error;
      this.box.dataset.error = a.error;
      return;
    }
    const eap = a.eap === null || a.eap === undefined
      ? '— (the KL metric\'s gradient is zero at the full model: EAP cannot rank edges on it)'
      : fmt(a.eap);
    this.text.textContent = `Spearman rank correlation with noising path patching over all ${a.edges} edges (1 means `
      + `attribution orders the edges exactly as patching each one does): EAP ${eap} · EAP-IG (k = ${a.ig_steps}) ${fmt(a.eap_ig)}.`;
    Object.assign(this.box.dataset, { error: '', edges: String(a.edges), eap: String(a.eap ?? ''), eapIg: String(a.eap_ig) });
    this.runs = (this.runs ?? 0) + 1;
    this.box.dataset.run = String(this.runs);
  }
}
