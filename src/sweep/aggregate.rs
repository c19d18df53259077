//! Per-config summaries of a sweep's runs: mean, min and max over seeds.

use super::run::RunResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Mean, min and max of the values that exist (`n` of them); all NaN when n = 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub n: usize,
    #[serde(with = "super::nan_as_null")]
    pub mean: f64,
    #[serde(with = "super::nan_as_null")]
    pub min: f64,
    #[serde(with = "super::nan_as_null")]
    pub max: f64,
}

impl Stat {
    /// Over the finite values of `xs` (NaN and ±∞ are left out and not counted).
    pub fn of(xs: impl IntoIterator<Item = f64>) -> Stat {
        let v: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stat {
                n: 0,
                mean: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let sum: f64 = v.iter().sum();
        Stat {
            n: v.len(),
            mean: sum / v.len() as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One config (all its seeds) of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    pub config_index: usize,
    pub label: BTreeMap<String, Value>,
    /// Runs of this config, and how many of them stopped early (diverged).
    pub runs: usize,
    pub failed: usize,
    pub floor: f64,
    pub n_params: usize,
    pub final_loss: Stat,
    /// final_loss − floor.
    pub excess: Stat,
    pub eval_loss: Stat,
    pub eval_algo_loss: Stat,
    pub eval_token_acc: Stat,
    pub eval_algo_acc: Stat,
    /// Algorithm accuracy on fresh training-split samples (tasks with a held-out split).
    pub train_split_algo_acc: Stat,
    /// Over the runs that reached the target; `steps_to_target.n` of `runs` did.
    pub steps_to_target: Stat,
    pub max_grad_norm: Stat,
}

/// Groups runs by `config_index` (in order of first appearance) and summarises each.
pub fn aggregate(results: &[RunResult]) -> Vec<ConfigSummary> {
    let mut order: Vec<usize> = Vec::new();
    let mut groups: BTreeMap<usize, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        let c = r.spec.config_index;
        if !groups.contains_key(&c) {
            order.push(c);
        }
        groups.entry(c).or_default().push(r);
    }
    order
        .into_iter()
        .map(|c| {
            let g = &groups[&c];
            let ev = |f: fn(&super::run::EvalSummary) -> f64| {
                Stat::of(g.iter().filter_map(|r| r.eval.as_ref().map(f)))
            };
            ConfigSummary {
                config_index: c,
                label: g[0].spec.label.clone(),
                runs: g.len(),
                failed: g.iter().filter(|r| r.error.is_some()).count(),
                floor: g[0].floor,
                n_params: g[0].n_params,
                final_loss: Stat::of(g.iter().map(|r| r.final_loss)),
                excess: Stat::of(g.iter().map(|r| r.excess)),
                eval_loss: ev(|e| e.loss),
                eval_algo_loss: ev(|e| e.algo_loss),
                eval_token_acc: ev(|e| e.token_acc),
                eval_algo_acc: ev(|e| e.algo_acc),
                train_split_algo_acc: Stat::of(
                    g.iter()
                        .filter_map(|r| r.eval_train_split.as_ref().map(|e| e.algo_acc)),
                ),
                steps_to_target: Stat::of(
                    g.iter().filter_map(|r| r.steps_to_target.map(|s| s as f64)),
                ),
                max_grad_norm: Stat::of(g.iter().map(|r| r.max_grad_norm)),
            }
        })
        .collect()
}
