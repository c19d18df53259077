//! The analyses `examples/circuits` prints after the per-head report, chosen by the task
//! and the model: head-type scores (every model; induction K-composition paths for 2+
//! layers, see [`super::head_types`]) and the Fourier analysis for the modular tasks (see
//! [`super::fourier`]).

use crate::error::Result;
use crate::model::Weights;
use crate::tasks::TaskSpec;

/// Sequences the head-type scores average over.
const HEAD_TYPE_BATCH: usize = 64;

/// Lines for `w` (raw weights) on `task` with the data seed `seed`, a blank line before
/// each section; `rep` is the model's report (on `rep.samples` fresh samples of `seed`),
/// for the task's hypothesis.
pub fn extra_lines(
    w: &Weights,
    task: &TaskSpec,
    rep: &super::report::ModelReport,
    seed: u64,
) -> Result<Vec<String>> {
    let mut out = hypothesis_lines(w, task, rep, seed)?;
    out.extend(head_type_lines(w, task, seed)?);
    if w.cfg.d_mlp.is_some() && super::neurons::two_operands(task).is_ok() {
        out.extend(neuron_lines(w, task)?);
    }
    if super::fourier::modular_task(task).is_ok() {
        out.push(String::new());
        out.extend(super::fourier::report_lines(
            &super::fourier::fourier_report(w, task)?,
        ));
    }
    Ok(out)
}

fn head_type_lines(w: &Weights, task: &TaskSpec, seed: u64) -> Result<Vec<String>> {
    use super::head_types as ht;
    let ids = task.value_tokens();
    let prefix = ht::task_prefix(task);
    let n = w.cfg.n_ctx.saturating_sub(prefix.is_some() as usize) / 2;
    let mut out = vec![
        String::new(),
        format!("head types on {HEAD_TYPE_BATCH} repeated random sequences ({}{n} value tokens, then the same {n} again):", if prefix.is_some() { "BOS, " } else { "" }),
        "head   previous-token  duplicate-token  induction".to_string(),
    ];
    for s in ht::head_type_scores(w, ids.clone(), prefix, HEAD_TYPE_BATCH, seed)? {
        out.push(format!(
            "L{}H{}   {:14.3}  {:15.3}  {:9.3}",
            s.layer, s.head, s.previous_token, s.duplicate_token, s.induction
        ));
    }
    let pw = super::process::process_weights(w)?;
    for p in ht::induction_paths(&pw, ids)? {
        out.push(format!(
            "  K-composition L0H{} → L1H{}: score {:.3} · diagonal fraction of W_E W_QK (W_E W_OV)ᵀ {:.3}",
            p.prev_head, p.head, p.k_composition, p.diagonal_fraction
        ));
    }
    Ok(out)
}

/// The most important neurons of the last MLP layer over the a × b grid.
fn neuron_lines(w: &Weights, task: &TaskSpec) -> Result<Vec<String>> {
    use super::neurons as nr;
    let layer = w.cfg.n_layers - 1;
    let grid = nr::neuron_grid(w, task, layer)?;
    let de = nr::direct_effects(&super::process::process_weights(w)?, layer)?;
    let ranked = nr::rank_neurons(&grid, &de, 3)?;
    let mut out = vec![
        String::new(),
        format!("neurons of MLP{layer} by importance (mean act · (direct effect on the correct logit − mean over logits)), top 8 of {}:", ranked.len()),
    ];
    for s in ranked.iter().take(8) {
        let top: Vec<String> = s
            .top_inputs
            .iter()
            .map(|(a, b, x)| format!("({a},{b})={x:.2}"))
            .collect();
        out.push(format!(
            "  n{:<4} importance {:+8.4}  mean act {:7.3}  top inputs {}",
            s.neuron,
            s.importance,
            s.mean_act,
            top.join(" ")
        ));
    }
    Ok(out)
}

/// The task's first hypothesis with its evidence (see [`super::hypotheses`]).
fn hypothesis_lines(
    w: &Weights,
    task: &TaskSpec,
    rep: &super::report::ModelReport,
    seed: u64,
) -> Result<Vec<String>> {
    let pw = super::process::process_weights(w)?;
    let backend = crate::reference::ReferenceBackend::for_inference(&pw)?;
    let tokens = task.batch(seed, super::ANALYSIS_STEP, rep.samples);
    let cache = super::cache::run_with_cache(&backend, &tokens, rep.samples)?;
    let h = super::hypotheses::hypothesis(w, task, rep, &cache)?;
    let mut out = vec![String::new()];
    out.extend(super::hypotheses::hypothesis_lines(&h));
    Ok(out)
}
