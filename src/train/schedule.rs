//! Learning-rate schedules.
//!
//! [`Schedule`] is the serialisable setting; [`LrScheduler`] is the running state the
//! trainer keeps. The step-indexed schedules (`constant`, `warmup_cosine`) are pure
//! functions of the step; `reduce_on_plateau` also depends on the losses seen so far.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

fn default_factor() -> f64 {
    0.1
}
fn default_patience() -> u64 {
    10
}
fn default_threshold() -> f64 {
    1e-4
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// lr at every step.
    #[default]
    Constant,
    /// Linear warm-up from 0 to lr over `warmup_steps`, then cosine decay to
    /// `min_lr_frac · lr` at the last step.
    WarmupCosine { warmup_steps: u64, min_lr_frac: f64 },
    /// PyTorch's `ReduceLROnPlateau(mode="min", threshold_mode="rel")`, stepped with every
    /// batch's training loss (as the seed-000 notebook calls `scheduler.step(loss)` after
    /// every optimiser step). Missing fields take PyTorch's defaults: factor 0.1, patience
    /// 10, threshold 1e-4, cooldown 0, min_lr 0. (The seed notebook itself passed
    /// `patience=100`.)
    ///
    /// After each step with loss `x`: if `x < best · (1 − threshold)` then `best = x` and
    /// the bad-step count resets, else it grows by one; during a cooldown the count is held
    /// at 0; when it exceeds `patience`, `lr ← max(lr · factor, min_lr)` (only if that
    /// lowers it by more than 1e-8, PyTorch's `eps`), the count resets and a cooldown of
    /// `cooldown` steps starts. `best` starts at +∞, so the first loss is always an
    /// improvement. The new rate applies from the next step on.
    ReduceOnPlateau {
        #[serde(default = "default_factor")]
        factor: f64,
        #[serde(default = "default_patience")]
        patience: u64,
        #[serde(default = "default_threshold")]
        threshold: f64,
        #[serde(default)]
        cooldown: u64,
        #[serde(default)]
        min_lr: f64,
    },
}

/// PyTorch's `eps` of ReduceLROnPlateau: a reduction smaller than this is skipped.
const PLATEAU_EPS: f64 = 1e-8;

impl Schedule {
    /// PyTorch's ReduceLROnPlateau defaults (factor 0.1, patience 10, threshold 1e-4 rel,
    /// cooldown 0, min_lr 0).
    pub fn plateau_defaults() -> Self {
        Schedule::ReduceOnPlateau {
            factor: default_factor(),
            patience: default_patience(),
            threshold: default_threshold(),
            cooldown: 0,
            min_lr: 0.0,
        }
    }

    /// The learning rate for 0-based `step` of a `total`-step run, for the schedules that
    /// depend on the step only. `reduce_on_plateau` depends on the losses too: this
    /// returns its starting rate `base`; use [`LrScheduler`] to run it.
    pub fn lr(&self, base: f64, step: u64, total: u64) -> f64 {
        match *self {
            Schedule::Constant | Schedule::ReduceOnPlateau { .. } => base,
            Schedule::WarmupCosine {
                warmup_steps,
                min_lr_frac,
            } => {
                if step < warmup_steps {
                    return base * (step + 1) as f64 / warmup_steps as f64;
                }
                let span = total.saturating_sub(warmup_steps).max(1) as f64;
                let t = ((step - warmup_steps) as f64 / span).min(1.0);
                let min = base * min_lr_frac;
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Whether the rate depends on the losses seen (reduce_on_plateau): such a run must
    /// observe each step's loss before the next step's rate is known, so steps cannot be
    /// planned ahead in chunks.
    pub fn depends_on_loss(&self) -> bool {
        matches!(self, Schedule::ReduceOnPlateau { .. })
    }

    pub fn validate(&self, total: u64) -> Result<()> {
        match *self {
            Schedule::Constant => {}
            Schedule::WarmupCosine {
                warmup_steps,
                min_lr_frac,
            } => {
                if warmup_steps > total {
                    return Err(Error::config(
                        "warmup_steps",
                        format!("{warmup_steps} is more than the {total} training steps"),
                    ));
                }
                if !(min_lr_frac.is_finite() && (0.0..=1.0).contains(&min_lr_frac)) {
                    return Err(Error::config(
                        "min_lr_frac",
                        format!("{min_lr_frac} is not in [0, 1]"),
                    ));
                }
            }
            Schedule::ReduceOnPlateau {
                factor,
                patience,
                threshold,
                cooldown,
                min_lr,
            } => {
                if !(factor.is_finite() && factor > 0.0 && factor < 1.0) {
                    return Err(Error::config(
                        "factor",
                        format!("{factor} is not in (0, 1)"),
                    ));
                }
                if patience > 10_000_000 {
                    return Err(Error::config(
                        "patience",
                        format!("{patience} is more than 10,000,000"),
                    ));
                }
                if !(threshold.is_finite() && (0.0..1.0).contains(&threshold)) {
                    return Err(Error::config(
                        "threshold",
                        format!("{threshold} is not in [0, 1)"),
                    ));
                }
                if cooldown > 10_000_000 {
                    return Err(Error::config(
                        "cooldown",
                        format!("{cooldown} is more than 10,000,000"),
                    ));
                }
                if !(min_lr.is_finite() && min_lr >= 0.0) {
                    return Err(Error::config("min_lr", format!("{min_lr} must be ≥ 0")));
                }
            }
        }
        Ok(())
    }
}

/// A schedule while it runs: call [`lr`](Self::lr) before a step and
/// [`observe`](Self::observe) with that step's loss after it.
#[derive(Clone, Debug)]
pub struct LrScheduler {
    schedule: Schedule,
    base: f64,
    total: u64,
    /// reduce_on_plateau: the current rate, the best loss so far, bad steps since it, and
    /// cooldown steps left (PyTorch's `num_bad_epochs`, `cooldown_counter`).
    current: f64,
    best: f64,
    num_bad: u64,
    cooldown_left: u64,
}

/// The running state of a loss-driven schedule, saved with a checkpoint so that a
/// resumed reduce_on_plateau run goes on exactly (the rate, best loss, bad steps and
/// cooldown are not functions of the step alone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub current: f64,
    /// The best loss so far; `None` before the first observed loss (+∞ has no JSON form).
    pub best: Option<f64>,
    pub num_bad: u64,
    pub cooldown_left: u64,
}

impl LrScheduler {
    /// The running state (see [`ScheduleState`]).
    pub fn state(&self) -> ScheduleState {
        let best = if self.best.is_finite() {
            Some(self.best)
        } else {
            None
        };
        ScheduleState {
            current: self.current,
            best,
            num_bad: self.num_bad,
            cooldown_left: self.cooldown_left,
        }
    }

    /// Restores a state from [`state`](Self::state); refuses values no run could produce.
    pub fn set_state(&mut self, s: &ScheduleState) -> Result<()> {
        if !(s.current.is_finite() && s.current >= 0.0) {
            return Err(Error::config(
                "schedule state: current",
                format!("{} is not a learning rate", s.current),
            ));
        }
        if let Some(b) = s.best {
            if b.is_nan() {
                return Err(Error::config("schedule state: best", "is NaN"));
            }
        }
        self.current = s.current;
        self.best = s.best.unwrap_or(f64::INFINITY);
        self.num_bad = s.num_bad;
        self.cooldown_left = s.cooldown_left;
        Ok(())
    }

    pub fn new(schedule: Schedule, base: f64, total: u64) -> Self {
        LrScheduler {
            schedule,
            base,
            total,
            current: base,
            best: f64::INFINITY,
            num_bad: 0,
            cooldown_left: 0,
        }
    }

    /// The rate for 0-based `step` (for reduce_on_plateau, the rate after the losses
    /// observed so far; `step` is not used).
    pub fn lr(&self, step: u64) -> f64 {
        match self.schedule {
            Schedule::ReduceOnPlateau { .. } => self.current,
            _ => self.schedule.lr(self.base, step, self.total),
        }
    }

    /// Feeds one step's training loss (only reduce_on_plateau uses it). A NaN loss counts
    /// as no improvement, as in PyTorch.
    pub fn observe(&mut self, loss: f64) {
        let Schedule::ReduceOnPlateau {
            factor,
            patience,
            threshold,
            cooldown,
            min_lr,
        } = self.schedule
        else {
            return;
        };
        if loss < self.best * (1.0 - threshold) {
            self.best = loss;
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > patience {
            let new = (self.current * factor).max(min_lr);
            if self.current - new > PLATEAU_EPS {
                self.current = new;
            }
            self.cooldown_left = cooldown;
            self.num_bad = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = Schedule::WarmupCosine {
            warmup_steps: 10,
            min_lr_frac: 0.1,
        };
        assert!((s.lr(1.0, 0, 110) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 9, 110) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 10, 110) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 60, 110) - 0.55).abs() < 1e-12);
        assert!((s.lr(1.0, 110, 110) - 0.1).abs() < 1e-12);
        assert_eq!(Schedule::Constant.lr(0.3, 5, 10), 0.3);
        assert!(s.validate(5).is_err());
    }

    /// The rates the trainer would use, step by step, for these losses: rates[i] is the
    /// rate of step i (before its loss is observed).
    fn run(s: Schedule, base: f64, losses: &[f64]) -> Vec<f64> {
        let mut sch = LrScheduler::new(s, base, losses.len() as u64);
        losses
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                let lr = sch.lr(i as u64);
                sch.observe(l);
                lr
            })
            .collect()
    }

    /// Worked by hand from PyTorch's algorithm (patience 2, factor 0.5, threshold 0.1 rel,
    /// cooldown 1, min_lr 0.2):
    ///
    /// | step | loss | better than best·0.9? | best | bad | cooldown | rate after |
    /// |------|------|------------------------|------|-----|----------|------------|
    /// | 0 | 1.00 | yes (∞)               | 1.00 | 0 | 0 | 1.0 |
    /// | 1 | 0.95 | no (≥ 0.90)           | 1.00 | 1 | 0 | 1.0 |
    /// | 2 | 0.89 | yes (< 0.90)          | 0.89 | 0 | 0 | 1.0 |
    /// | 3 | 0.90 | no                    | 0.89 | 1 | 0 | 1.0 |
    /// | 4 | 0.85 | no (≥ 0.801)          | 0.89 | 2 | 0 | 1.0 |
    /// | 5 | 0.85 | no: 3 > 2 → cut       | 0.89 | 0 | 1 | 0.5 |
    /// | 6 | 0.85 | no, in cooldown → 0   | 0.89 | 0 | 0 | 0.5 |
    /// | 7 | 0.85 | no                    | 0.89 | 1 | 0 | 0.5 |
    /// | 8 | 0.85 | no                    | 0.89 | 2 | 0 | 0.5 |
    /// | 9 | 0.85 | no: 3 > 2 → cut       | 0.89 | 0 | 1 | 0.25 |
    /// | 10..13 | 0.85 | same pattern, cut at 13 to max(0.125, 0.2) | | | | 0.2 |
    /// | 14..17 | 0.85 | cut at 17: max(0.1, 0.2) = 0.2, no change  | | | | 0.2 |
    /// | 18 | 0.10 | yes                   | 0.10 | 0 | 0 | 0.2 |
    #[test]
    fn reduce_on_plateau_matches_a_hand_worked_sequence() {
        let s = Schedule::ReduceOnPlateau {
            factor: 0.5,
            patience: 2,
            threshold: 0.1,
            cooldown: 1,
            min_lr: 0.2,
        };
        s.validate(100).unwrap();
        let mut losses = vec![1.0, 0.95, 0.89, 0.90, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85];
        losses.extend([0.85; 8]);
        losses.extend([0.10, 0.10]);
        let rates = run(s, 1.0, &losses);
        let mut want = vec![1.0; 6]; // steps 0..=5 run at 1.0 (the cut after step 5 applies from 6)
        want.extend([0.5; 4]); // 6..=9
        want.extend([0.25; 4]); // 10..=13
        want.extend([0.2; 6]); // 14..=19: floor reached, later cuts change nothing
        assert_eq!(rates, want);
    }

    /// PyTorch's defaults: 11 steps without improvement (patience 10) cut the rate ×0.1.
    /// A decrease smaller than threshold·best (1e-4 relative) is not an improvement.
    #[test]
    fn reduce_on_plateau_pytorch_defaults() {
        let s: Schedule = serde_json::from_str(r#"{"kind": "reduce_on_plateau"}"#).unwrap();
        assert_eq!(s, Schedule::plateau_defaults());
        // 1.0, then 11 losses each 0.5e-4 lower: none beats best·(1 − 1e-4) = 0.9999.
        let mut losses = vec![1.0];
        losses.extend((1..=11).map(|i| 1.0 - 0.5e-4 * i as f64 / 11.0));
        losses.push(0.5);
        let rates = run(s.clone(), 1e-3, &losses);
        assert!(rates[..12].iter().all(|&r| r == 1e-3), "{rates:?}");
        assert!((rates[12] - 1e-4).abs() < 1e-18, "{rates:?}");
        // ten bad steps are not enough: the step after the tenth still runs at 1e-3
        let rates = run(
            s,
            1e-3,
            &[1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        );
        assert!(rates.iter().all(|&r| r == 1e-3));
    }

    #[test]
    fn reduce_on_plateau_validation_names_the_field() {
        let bad = [
            (
                Schedule::ReduceOnPlateau {
                    factor: 1.0,
                    patience: 10,
                    threshold: 1e-4,
                    cooldown: 0,
                    min_lr: 0.0,
                },
                "factor",
            ),
            (
                Schedule::ReduceOnPlateau {
                    factor: 0.1,
                    patience: 10,
                    threshold: -1.0,
                    cooldown: 0,
                    min_lr: 0.0,
                },
                "threshold",
            ),
            (
                Schedule::ReduceOnPlateau {
                    factor: 0.1,
                    patience: 10,
                    threshold: 1e-4,
                    cooldown: 0,
                    min_lr: f64::NAN,
                },
                "min_lr",
            ),
        ];
        for (s, field) in bad {
            let e = s.validate(10).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
