//! The CPU engine's optimiser: gradient norm, PyTorch's `clip_grad_norm_` and AdamW over the
//! flat parameter buffer (kernels in [`super::kernels::adamw`]), with the moments in the
//! parameter table's layout so that a run can be saved and continued exactly.

use super::kernels::adamw::{adamw, grad_norm, scale, AdamWStep};
use crate::backend::{AdamWConfig, OptimizerState};
use crate::error::{Error, Result};
use crate::model::ParamTable;
use std::ops::Range;

/// AdamW's settings, the ranges it updates and its state.
pub struct AdamW {
    cfg: AdamWConfig,
    /// Ranges of the trainable parameters (AdamW, grad norm, clipping).
    trainable: Vec<Range<usize>>,
    /// (P,) Adam moments, table layout.
    m: Vec<f32>,
    v: Vec<f32>,
    /// AdamW steps taken.
    t: u64,
}

impl AdamW {
    pub fn new(cfg: AdamWConfig) -> Self {
        AdamW {
            cfg,
            trainable: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// Zero moments for `n` parameters of which `trainable` are updated.
    pub fn reset(&mut self, n: usize, trainable: Vec<Range<usize>>) {
        self.trainable = trainable;
        self.m = vec![0.0; n];
        self.v = vec![0.0; n];
        self.t = 0;
    }

    /// Clips `grads` (P,) in place and updates `params` (P,) at rate `lr`; returns the gradient
    /// norm before clipping. A non-finite norm is [`Error::Diverged`] and changes nothing.
    pub fn step(
        &mut self,
        params: &mut [f32],
        grads: &mut [f32],
        lr: f64,
        step: u64,
    ) -> Result<f64> {
        let norm = grad_norm(grads, &self.trainable);
        if !norm.is_finite() {
            return Err(Error::Diverged {
                step,
                loss: f32::NAN,
                last_good_step: step,
            });
        }
        // PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1.
        let coef = self.cfg.grad_clip / (norm + 1e-6);
        if self.cfg.grad_clip > 0.0 && coef < 1.0 {
            scale(grads, &self.trainable, coef as f32);
        }
        self.t += 1;
        let hp = AdamWStep {
            lr,
            beta1: self.cfg.beta1,
            beta2: self.cfg.beta2,
            eps: self.cfg.eps,
            weight_decay: self.cfg.weight_decay,
            t: self.t,
        };
        adamw(params, &mut self.m, &mut self.v, grads, &self.trainable, hp);
        Ok(norm)
    }

    pub fn state(&self) -> OptimizerState {
        OptimizerState {
            t: self.t,
            m: self.m.clone(),
            v: self.v.clone(),
        }
    }

    /// Restores a saved state after checking it against `table`.
    pub fn set_state(&mut self, state: &OptimizerState, table: &ParamTable) -> Result<()> {
        state.validate(table)?;
        self.m.copy_from_slice(&state.m);
        self.v.copy_from_slice(&state.v);
        self.t = state.t;
        Ok(())
    }
}
