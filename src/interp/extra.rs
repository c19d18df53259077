//! The analyses `examples/circuits` prints after the per-head report, chosen by the task
//! and the model: the Fourier analysis for the modular tasks (see [`super::fourier`]).

use crate::error::Result;
use crate::model::Weights;
use crate::tasks::TaskSpec;

/// Lines for `w` (raw weights) on `task`, one blank line before each section; empty when
/// no section applies.
pub fn extra_lines(w: &Weights, task: &TaskSpec) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if super::fourier::modular_task(task).is_ok() {
        out.push(String::new());
        out.extend(super::fourier::report_lines(
            &super::fourier::fourier_report(w, task)?,
        ));
    }
    Ok(out)
}
