//! Learning-rate schedules.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// lr at every step.
    Constant,
    /// Linear warm-up from 0 to lr over `warmup_steps`, then cosine decay to
    /// `min_lr_frac · lr` at the last step.
    WarmupCosine { warmup_steps: u64, min_lr_frac: f64 },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant
    }
}

impl Schedule {
    /// The learning rate for 0-based `step` of a `total`-step run.
    pub fn lr(&self, base: f64, step: u64, total: u64) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::WarmupCosine { warmup_steps, min_lr_frac } => {
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

    pub fn validate(&self, total: u64) -> Result<()> {
        if let Schedule::WarmupCosine { warmup_steps, min_lr_frac } = *self {
            if warmup_steps > total {
                return Err(Error::config("warmup_steps", format!("{warmup_steps} is more than the {total} training steps")));
            }
            if !(min_lr_frac.is_finite() && (0.0..=1.0).contains(&min_lr_frac)) {
                return Err(Error::config("min_lr_frac", format!("{min_lr_frac} is not in [0, 1]")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = Schedule::WarmupCosine { warmup_steps: 10, min_lr_frac: 0.1 };
        assert!((s.lr(1.0, 0, 110) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 9, 110) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 10, 110) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 60, 110) - 0.55).abs() < 1e-12);
        assert!((s.lr(1.0, 110, 110) - 0.1).abs() < 1e-12);
        assert_eq!(Schedule::Constant.lr(0.3, 5, 10), 0.3);
        assert!(s.validate(5).is_err());
    }
}
