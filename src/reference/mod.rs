//! The reference backend (`--backend reference`): [`ReferenceBackend`], candle with autograd,
//! composed from basic ops ([`forward`]; its optimiser is [`adamw`], candle_nn's AdamW with
//! readable moments). The definition every other backend and kernel is tested against, and the
//! source of TransformerLens-named activations for interpretability (`Hooks`).

pub mod adamw;
pub mod forward;

use crate::backend::{
    check_pred_positions, AdamWConfig, Backend, Batch, NamedGrads, OptimizerState, StepOutput,
};
use crate::error::{Error, Result};
use crate::model::{ParamTable, Weights};
use adamw::AdamW;
use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use candle_nn::ParamsAdamW;
use forward::{Hooks, NoHooks, ParamSet};
use std::collections::HashMap;

/// Weights as candle tensors (trainable ones as `Var`s), AdamW state, and the task's
/// predicted positions.
pub struct ReferenceBackend {
    weights: Weights,
    /// One per table entry: `Var` when trainable, else a constant tensor.
    params: Vec<Param>,
    index: HashMap<String, usize>,
    /// Indices of frozen parameters that are exactly zero (skipped in the forward).
    zero: Vec<bool>,
    opt: Option<AdamW>,
    opt_params: ParamsAdamW,
    grad_clip: f64,
    /// (P,) u32 positions whose logits are scored.
    pred: Tensor,
    /// The same positions, for checking batches.
    pred_positions: Vec<usize>,
    device: Device,
    /// F32 normally; F64 for finite-difference tests.
    dtype: DType,
}

enum Param {
    Var(Var),
    Const(Tensor),
}

impl Param {
    fn tensor(&self) -> Tensor {
        match self {
            Param::Var(v) => v.as_tensor().clone(),
            Param::Const(t) => t.clone(),
        }
    }
}

impl ReferenceBackend {
    /// A backend training `w` on the task whose scored positions are `pred_positions`, with
    /// AdamW settings `adamw` (a `&TrainConfig` or an [`AdamWConfig`]).
    pub fn new(
        w: &Weights,
        adamw: impl Into<AdamWConfig>,
        pred_positions: Vec<usize>,
    ) -> Result<Self> {
        Self::with_dtype(w, adamw, pred_positions, DType::F32)
    }

    /// As [`ReferenceBackend::new`], computing in `dtype` (F32 or F64).
    pub fn with_dtype(
        w: &Weights,
        adamw: impl Into<AdamWConfig>,
        pred_positions: Vec<usize>,
        dtype: DType,
    ) -> Result<Self> {
        let ac: AdamWConfig = adamw.into();
        check_pred_positions(&w.cfg, &pred_positions)?;
        let device = Device::Cpu;
        let pred_ids: Vec<u32> = pred_positions.iter().map(|&p| p as u32).collect();
        let pred = Tensor::from_vec(pred_ids, pred_positions.len(), &device)?;
        let opt_params = ParamsAdamW {
            lr: 0.0, // set before every step
            beta1: ac.beta1,
            beta2: ac.beta2,
            eps: ac.eps,
            weight_decay: ac.weight_decay,
        };
        let mut b = ReferenceBackend {
            weights: w.clone(),
            params: Vec::new(),
            index: HashMap::new(),
            zero: Vec::new(),
            opt: None,
            opt_params,
            grad_clip: ac.grad_clip,
            pred,
            pred_positions,
            device,
            dtype,
        };
        b.set_weights(w)?;
        Ok(b)
    }

    /// Inference only (no optimiser settings needed): for eval and interpretability.
    pub fn for_inference(w: &Weights) -> Result<Self> {
        Self::new(w, AdamWConfig::default(), Vec::new())
    }

    /// The model config.
    pub fn config(&self) -> &crate::model::ModelConfig {
        &self.weights.cfg
    }

    fn table(&self) -> &ParamTable {
        &self.weights.table
    }

    fn is_zero(&self) -> impl Fn(&str) -> bool + '_ {
        move |name: &str| self.index.get(name).is_some_and(|&i| self.zero[i])
    }

    fn lookup(&self) -> impl Fn(&str) -> Tensor + '_ {
        move |name: &str| match self.index.get(name) {
            Some(&i) => self.params[i].tensor(),
            // Every name the forward asks for is in the table of its own config.
            None => unreachable!("parameter {name} missing from the table"),
        }
    }

    /// Runs the model with hooks; returns logits (B, T, V) as a tensor.
    pub fn run_with_hooks(
        &self,
        tokens: &[u32],
        batch: usize,
        hooks: &mut dyn Hooks,
    ) -> Result<Tensor> {
        self.weights.cfg.check_tokens(tokens, batch)?;
        let get = self.lookup();
        let zero = self.is_zero();
        let p = ParamSet {
            cfg: &self.weights.cfg,
            get: &get,
            is_zero: &zero,
        };
        let tok = forward::tokens_tensor(tokens, batch, &self.device)?;
        let resid = forward::residual_forward(hooks, &p, &tok)?;
        forward::unembed_forward(&p, &resid)
    }

    /// Loss (scalar tensor), logits at predicted positions (B, P, V).
    fn loss(&self, b: &Batch) -> Result<(Tensor, Tensor)> {
        let get = self.lookup();
        let zero = self.is_zero();
        let p = ParamSet {
            cfg: &self.weights.cfg,
            get: &get,
            is_zero: &zero,
        };
        let tok = forward::tokens_tensor(&b.tokens, b.size, &self.device)?;
        let resid = forward::residual_forward(&mut NoHooks, &p, &tok)?; // (B, T, C)
        let x = resid.index_select(&self.pred, 1)?; // (B, P, C)
        let logits = forward::unembed_forward(&p, &x)?; // (B, P, V)
        let targets = forward::tokens_tensor(&b.targets, b.size, &self.device)?; // (B, P)
        Ok((forward::cross_entropy_forward(&logits, &targets)?, logits))
    }

    /// Loss and every gradient of a batch with next-token targets (for tests and finite
    /// differences): grads by TL key.
    pub fn loss_and_grads(&self, tokens: &[u32], batch: usize) -> Result<(f64, NamedGrads<f64>)> {
        let b = Batch::next_token(tokens, batch, &self.pred_positions)?;
        self.batch_loss_and_grads(&b)
    }

    /// As [`ReferenceBackend::loss_and_grads`], for a batch with its own targets.
    pub fn batch_loss_and_grads(&self, b: &Batch) -> Result<(f64, NamedGrads<f64>)> {
        b.check(&self.weights.cfg, &self.pred_positions)?;
        let (loss, _) = self.loss(b)?;
        let grads = loss.backward()?;
        let mut out = Vec::new();
        for (info, p) in self.table().params.iter().zip(&self.params) {
            if let Param::Var(v) = p {
                let g = match grads.get(v.as_tensor()) {
                    Some(g) => g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?,
                    None => vec![0.0; info.len],
                };
                out.push((info.name.clone(), g));
            }
        }
        Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, out))
    }

    fn grad_norm(&self, grads: &GradStore) -> Result<f32> {
        let mut sq = 0.0f64;
        for p in &self.params {
            if let Param::Var(v) = p {
                if let Some(g) = grads.get(v.as_tensor()) {
                    sq += g
                        .sqr()?
                        .sum_all()?
                        .to_dtype(DType::F64)?
                        .to_scalar::<f64>()?;
                }
            }
        }
        Ok(sq.sqrt() as f32)
    }
}

impl Backend for ReferenceBackend {
    fn name(&self) -> String {
        "reference".into()
    }

    fn pred_positions(&self) -> &[usize] {
        &self.pred_positions
    }

    fn train_batch(&mut self, b: &Batch, lr: f64, step: u64) -> Result<StepOutput> {
        b.check(&self.weights.cfg, &self.pred_positions)?;
        let (loss, logits) = self.loss(b)?;
        let loss_v = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !loss_v.is_finite() {
            return Err(Error::Diverged {
                step,
                loss: loss_v,
                last_good_step: step,
            });
        }
        let mut grads = loss.backward()?;
        let grad_norm = self.grad_norm(&grads)?;
        if !grad_norm.is_finite() {
            return Err(Error::Diverged {
                step,
                loss: f32::NAN,
                last_good_step: step,
            });
        }
        // PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1.
        let coef = self.grad_clip / (grad_norm as f64 + 1e-6);
        if self.grad_clip > 0.0 && coef < 1.0 {
            for p in &self.params {
                if let Param::Var(v) = p {
                    if let Some(g) = grads.remove(v.as_tensor()) {
                        grads.insert(v.as_tensor(), (g * coef)?);
                    }
                }
            }
        }
        let argmax = logits
            .argmax(candle_core::D::Minus1)?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let opt = self
            .opt
            .as_mut()
            .ok_or_else(|| Error::Backend("optimiser not initialised".into()))?;
        opt.set_learning_rate(lr);
        opt.step(&grads)?;
        Ok(StepOutput {
            loss: loss_v,
            grad_norm,
            argmax,
        })
    }

    fn logits(&mut self, tokens: &[u32], batch: usize) -> Result<Vec<f32>> {
        Ok(self
            .run_with_hooks(tokens, batch, &mut NoHooks)?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?)
    }

    fn weights(&self) -> Result<Weights> {
        let mut w = self.weights.clone();
        for (info, p) in self.weights.table.params.iter().zip(&self.params) {
            let v = p
                .tensor()
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            w.data[info.offset..info.offset + info.len].copy_from_slice(&v);
        }
        Ok(w)
    }

    fn set_weights(&mut self, w: &Weights) -> Result<()> {
        w.cfg.validate()?;
        if w.data.len() != w.table.total_len() {
            return Err(Error::Weights(format!(
                "{} values for a table of {}",
                w.data.len(),
                w.table.total_len()
            )));
        }
        let mut params = Vec::with_capacity(w.table.params.len());
        let mut index = HashMap::new();
        let mut vars = Vec::new();
        let mut zero = Vec::with_capacity(w.table.params.len());
        for (i, info) in w.table.params.iter().enumerate() {
            let vals = &w.data[info.offset..info.offset + info.len];
            zero.push(!info.trainable && vals.iter().all(|&x| x == 0.0));
            let t = Tensor::from_slice(
                &w.data[info.offset..info.offset + info.len],
                info.shape.as_slice(),
                &self.device,
            )?
            .to_dtype(self.dtype)?;
            index.insert(info.name.clone(), i);
            if info.trainable {
                let v = Var::from_tensor(&t)?;
                vars.push(v.clone());
                params.push(Param::Var(v));
            } else {
                params.push(Param::Const(t));
            }
        }
        self.opt = Some(AdamW::new(vars, self.opt_params.clone())?);
        self.params = params;
        self.index = index;
        self.zero = zero;
        self.weights = w.clone();
        Ok(())
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        let opt = self
            .opt
            .as_ref()
            .ok_or_else(|| Error::Backend("optimiser not initialised".into()))?;
        let (t, m, v) = opt.state()?;
        let total = self.table().total_len();
        let (mut fm, mut fv) = (vec![0.0; total], vec![0.0; total]);
        // the optimiser holds the trainable parameters in table order
        for (info, (m, v)) in self
            .table()
            .params
            .iter()
            .filter(|p| p.trainable)
            .zip(m.iter().zip(&v))
        {
            fm[info.offset..info.offset + info.len].copy_from_slice(m);
            fv[info.offset..info.offset + info.len].copy_from_slice(v);
        }
        Ok(OptimizerState { t, m: fm, v: fv })
    }

    fn set_optimizer_state(&mut self, s: &OptimizerState) -> Result<()> {
        s.validate(self.table())?;
        let trainable: Vec<_> = self
            .weights
            .table
            .params
            .iter()
            .filter(|p| p.trainable)
            .cloned()
            .collect();
        let m: Vec<&[f32]> = trainable
            .iter()
            .map(|p| &s.m[p.offset..p.offset + p.len])
            .collect();
        let v: Vec<&[f32]> = trainable
            .iter()
            .map(|p| &s.v[p.offset..p.offset + p.len])
            .collect();
        let opt = self
            .opt
            .as_mut()
            .ok_or_else(|| Error::Backend("optimiser not initialised".into()))?;
        opt.set_state(s.t, &m, &v)
    }
}
