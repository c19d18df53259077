//! A link that opens a run's experiment in the notebook page.
//!
//! The page keeps its state in the URL fragment (`www/js/link.js`, keys from the property
//! table in `www/js/state.js`): `#v=1&task=permutations&perm_n=4&n_layers=1&...`. Every key
//! is written explicitly (the page's own links leave defaults out), so a link stays right
//! if a default changes. Append it to the page's address.

use super::grid::RunSpec;
use crate::tasks::TaskSpec;
use crate::train::Schedule;

/// `#v=1&key=value&...` for the page, from a run's task, model and train config.
pub fn page_fragment(spec: &RunSpec) -> String {
    let mut q: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| q.push((k.to_string(), v));
    put_task_keys(&spec.task, &mut put);
    put_model_keys(spec, &mut put);
    put_train_keys(spec, &mut put);
    // Values are numbers, booleans and fixed ASCII names; percent-escape anything else.
    let esc = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c.to_string()
                } else {
                    c.to_string().bytes().map(|b| format!("%{b:02X}")).collect()
                }
            })
            .collect::<String>()
    };
    format!(
        "#v=1&{}",
        q.iter()
            .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
            .collect::<Vec<_>>()
            .join("&")
    )
}

/// The page's keys of a task.
fn put_task_keys(task: &TaskSpec, put: &mut impl FnMut(&str, String)) {
    match *task {
        TaskSpec::Sort { n, max_num } => {
            put("task", "sort".into());
            put("sort_n", n.to_string());
            put("max_num", max_num.to_string());
        }
        TaskSpec::Permutations {
            n,
            holdout,
            split_seed,
        } => {
            put("task", "permutations".into());
            put("perm_n", n.to_string());
            if holdout > 0.0 {
                put("holdout", holdout.to_string());
                put("split_seed", split_seed.to_string());
            }
        }
        TaskSpec::ApplyPerm { k, max_int } => {
            put("task", "apply-perm".into());
            put("k", k.to_string());
            put("max_int", max_int.to_string());
        }
        ref other => {
            // catalogue tasks: the page's key is `<task>_<param>` with `-` written `_`
            put("task", other.name().into());
            let json = serde_json::to_value(other).unwrap_or_default();
            for row in other.params() {
                if let Some(v) = json.get(row.name) {
                    put(
                        &crate::tasks::page_key(other.name(), row.name),
                        v.to_string(),
                    );
                }
            }
        }
    }
}

/// The page's keys of a run's model config.
fn put_model_keys(spec: &RunSpec, put: &mut impl FnMut(&str, String)) {
    let m = &spec.model;
    put("n_layers", m.n_layers.to_string());
    put("n_heads", m.n_heads.to_string());
    put("d_model", m.d_model.to_string());
    put("d_head", m.d_head.to_string());
    put("model_seed", m.seed.to_string());
    put("ln", m.normalization_type.is_some().to_string());
    put("mlp", m.act_fn.is_some().to_string());
    if let (Some(d), Some(f)) = (m.d_mlp, m.act_fn) {
        put("d_mlp", d.to_string());
        put("act_fn", f.as_str().into());
    }
}

/// The page's keys of a run's train config.
fn put_train_keys(spec: &RunSpec, put: &mut impl FnMut(&str, String)) {
    let t = &spec.train;
    put("steps", t.steps.to_string());
    put("batch_size", t.batch_size.to_string());
    put("lr", t.lr.to_string());
    match t.schedule {
        Schedule::Constant => put("schedule", "constant".into()),
        Schedule::WarmupCosine { warmup_steps, .. } => {
            put("schedule", "warmup_cosine".into());
            put("warmup_steps", warmup_steps.to_string());
        }
        Schedule::ReduceOnPlateau {
            factor, patience, ..
        } => {
            put("schedule", "reduce_on_plateau".into());
            put("plateau_patience", patience.to_string());
            put("plateau_factor", factor.to_string());
        }
    }
    put("weight_decay", t.weight_decay.to_string());
    if t.beta2 != crate::train::TrainConfig::default().beta2 {
        put("beta2", t.beta2.to_string());
    }
    put("grad_clip", t.grad_clip.to_string());
    put("seed", t.seed.to_string());
}
