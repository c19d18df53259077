//! AdamW for the CPU backend: candle_nn's `AdamW` update, op for op (so a run is
//! bit-identical to one with candle_nn's optimiser), with moments that can be read out and
//! put back. That is what lets a saved run continue exactly where it stopped.
//!
//! Per trainable parameter θ with gradient g, at step t (from 1):
//!   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//!   θ ← θ·(1 − lr·λ) − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)

use crate::error::{Error, Result};
use candle_core::{backprop::GradStore, DType, Var};
use candle_nn::ParamsAdamW;

/// One trainable parameter and its two moments (same shape).
struct Slot {
    var: Var,
    m: Var,
    v: Var,
}

/// One flat buffer per variable (a first or a second moment of each).
pub type Moments = Vec<Vec<f32>>;

pub struct AdamW {
    slots: Vec<Slot>,
    /// Steps taken (t of the bias corrections).
    step_t: u64,
    params: ParamsAdamW,
}

impl AdamW {
    /// Zero moments for every variable.
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|var| {
                let m = Var::zeros(var.shape(), var.dtype(), var.device())?;
                let v = Var::zeros(var.shape(), var.dtype(), var.device())?;
                Ok(Slot { var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            slots,
            step_t: 0,
            params,
        })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// One update of every variable that has a gradient in `grads`.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let ParamsAdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let scale_m = 1f64 / (1f64 - beta1.powi(self.step_t as i32));
        let scale_v = 1f64 / (1f64 - beta2.powi(self.step_t as i32));
        for s in &self.slots {
            let Some(g) = grads.get(&s.var) else { continue };
            let next_m = ((s.m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let next_v = ((s.v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let decayed = (s.var.as_tensor() * (1f64 - lr * weight_decay))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + eps)?)?;
            let next = (decayed - (adjusted * lr)?)?;
            s.m.set(&next_m)?;
            s.v.set(&next_v)?;
            s.var.set(&next)?;
        }
        Ok(())
    }

    /// (t, m, v): the step count and each variable's moments, flattened, in variable order.
    pub fn state(&self) -> Result<(u64, Moments, Moments)> {
        let flat = |v: &Var| -> Result<Vec<f32>> {
            Ok(v.as_tensor()
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?)
        };
        let m = self
            .slots
            .iter()
            .map(|s| flat(&s.m))
            .collect::<Result<_>>()?;
        let v = self
            .slots
            .iter()
            .map(|s| flat(&s.v))
            .collect::<Result<_>>()?;
        Ok((self.step_t, m, v))
    }

    /// Restores the moments, one flat buffer per variable (as from [`AdamW::state`]), and the
    /// step count. The values are checked by `OptimizerState::validate` before they get here.
    pub fn set_state(&mut self, t: u64, m: &[&[f32]], v: &[&[f32]]) -> Result<()> {
        let sizes_match = |bufs: &[&[f32]]| {
            bufs.len() == self.slots.len()
                && bufs
                    .iter()
                    .zip(&self.slots)
                    .all(|(b, s)| b.len() == s.var.elem_count())
        };
        if !sizes_match(m) || !sizes_match(v) {
            return Err(Error::Weights(format!(
                "optimiser state does not match the {} trainable tensors",
                self.slots.len()
            )));
        }
        for (i, s) in self.slots.iter().enumerate() {
            let (shape, dtype, dev) =
                (s.var.shape().clone(), s.var.dtype(), s.var.device().clone());
            s.m.set(&candle_core::Tensor::from_slice(m[i], shape.clone(), &dev)?.to_dtype(dtype)?)?;
            s.v.set(&candle_core::Tensor::from_slice(v[i], shape, &dev)?.to_dtype(dtype)?)?;
        }
        self.step_t = t;
        Ok(())
    }
}
