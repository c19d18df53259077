//! The CPU engine (`--backend cpu`): hand-written forward ([`forward`]), backward
//! ([`backward`]) and optimiser ([`adamw`]) over the flat parameter table (llm.c's design), from
//! the kernels in [`kernels`]; the training backend natively and in the browser. The candle
//! backend ([`crate::reference::ReferenceBackend`]) stays the reference it is tested against.
//!
//! What makes it fast, besides doing only the arithmetic the loss needs:
//! - the last layer computes queries, attention, W_O, the MLP and the unembedding only at
//!   the scored rows, and no layer looks past the last scored position;
//! - without LayerNorm, layer 0's Q/K/V come from (W_E W, W_pos W) tables gathered per
//!   row, because its input is one token row plus one position row;
//! - matrix products go through the `gemm` crate, attention never builds (B, NH, T, T);
//! - subnormal floats are flushed to zero during a step (see [`ftz`]).
//!
//! Every kernel splits its work so each output element has one owner: results are
//! bit-identical for any number of threads.

pub mod acts;
pub mod adamw;
pub mod backward;
pub mod forward;
pub mod ftz;
pub mod kernels;
pub mod layout;
pub mod shard;

use crate::backend::{
    check_pred_positions, AdamWConfig, Backend, Batch, NamedGrads, OptimizerState, StepOutput,
};
use crate::error::{Error, Result};
use crate::model::{ParamKind, Weights};
use acts::{size, Scratch, Shape};
use adamw::AdamW;
use forward::{Acts, Model};
use kernels::crossentropy::crossentropy_forward;
use layout::Layout;
use std::ops::Range;

/// How layer 0 computes Q/K/V when the model has no LayerNorm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// Gather from (W_E W, W_pos W) tables when that is less arithmetic (the default).
    Auto,
    Always,
    Never,
}

/// Engine settings that change speed, never the function computed.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    pub factor: Factor,
    /// Flush subnormal floats to zero during a step (x86_64).
    pub flush_denormals: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            factor: Factor::Auto,
            flush_denormals: true,
        }
    }
}

/// Weights, gradients and AdamW moments as flat buffers, plus reusable activations.
pub struct CpuEngine {
    w: Weights,
    lay: Layout,
    /// Frozen parameters that are exactly zero (skipped in the forward).
    zero: Vec<Range<usize>>,
    /// (P,) gradients, table layout.
    grads: Vec<f32>,
    opt: AdamW,
    pred: Vec<usize>,
    opts: EngineOptions,
    acts: Acts,
    sc: Scratch,
}

impl CpuEngine {
    /// An engine training `w` on the task whose scored positions are `pred_positions`, with
    /// AdamW settings `adamw` (a `&TrainConfig` or an [`AdamWConfig`]).
    pub fn new(
        w: &Weights,
        adamw: impl Into<AdamWConfig>,
        pred_positions: Vec<usize>,
    ) -> Result<Self> {
        Self::with_options(w, adamw, pred_positions, EngineOptions::default())
    }

    pub fn with_options(
        w: &Weights,
        adamw: impl Into<AdamWConfig>,
        pred_positions: Vec<usize>,
        opts: EngineOptions,
    ) -> Result<Self> {
        check_pred_positions(&w.cfg, &pred_positions)?;
        let mut e = CpuEngine {
            w: w.clone(),
            lay: Layout::new(&w.cfg, &w.table),
            zero: Vec::new(),
            grads: Vec::new(),
            opt: AdamW::new(adamw.into()),
            pred: pred_positions,
            opts,
            acts: Acts::default(),
            sc: Scratch::default(),
        };
        e.set_weights(w)?;
        Ok(e)
    }

    fn shape(&self, b: usize, t: usize, rows: Vec<usize>) -> Shape {
        let tk = rows.last().map_or(0, |&r| r + 1);
        let cfg = &self.w.cfg;
        let factored = cfg.normalization_type.is_none()
            && match self.opts.factor {
                Factor::Always => true,
                Factor::Never => false,
                Factor::Auto => cfg.d_vocab + tk < b * tk,
            };
        Shape {
            b,
            t,
            tk,
            last_rows: rows,
            factored,
        }
    }

    /// Forward at the scored rows; fills targets (B, P), probabilities, per-row losses and
    /// argmax. Returns the mean loss over the scored pairs (targets not `Batch::IGNORE`;
    /// 0 when there are none).
    fn loss_forward(&mut self, tokens: &[u32], targets: &[u32], s: &Shape) -> f32 {
        let m = Model {
            cfg: &self.w.cfg,
            lay: &self.lay,
            p: &self.w.data,
            zero: &self.zero,
        };
        forward::forward(&m, &mut self.acts, tokens, s);
        let f = &mut self.acts.fin;
        let (p, v) = (s.last_rows.len(), self.w.cfg.d_vocab_out);
        let n = s.b * p;
        f.targets.clear();
        f.targets.extend_from_slice(targets);
        size(&mut f.probs, n * v);
        size(&mut f.losses, n);
        f.argmax.resize(n, 0);
        crossentropy_forward(
            &mut f.probs,
            &mut f.losses,
            &mut f.argmax,
            &f.logits,
            &f.targets,
            n,
            v,
        );
        let scored = crate::backend::scored(targets).max(1);
        (f.losses.iter().map(|&x| x as f64).sum::<f64>() / scored as f64) as f32
    }

    /// Loss and every trainable gradient for one batch with next-token targets, without
    /// updating anything (for tests against the candle reference). Gradients by TL key.
    pub fn loss_and_grads(
        &mut self,
        tokens: &[u32],
        batch: usize,
    ) -> Result<(f32, NamedGrads<f32>)> {
        let b = Batch::next_token(tokens, batch, &self.pred)?;
        self.batch_loss_and_grads(&b)
    }

    /// As [`CpuEngine::loss_and_grads`], for a batch with its own targets.
    pub fn batch_loss_and_grads(&mut self, b: &Batch) -> Result<(f32, NamedGrads<f32>)> {
        let t = b.check(&self.w.cfg, &self.pred)?;
        let s = self.shape(b.size, t, self.pred.clone());
        let loss = self.loss_forward(&b.tokens, &b.targets, &s);
        self.backward(&b.tokens, &s);
        let out = self
            .w
            .table
            .params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| {
                (
                    p.name.clone(),
                    self.grads[p.offset..p.offset + p.len].to_vec(),
                )
            })
            .collect();
        Ok((loss, out))
    }

    fn backward(&mut self, tokens: &[u32], s: &Shape) {
        self.grads.fill(0.0);
        let m = Model {
            cfg: &self.w.cfg,
            lay: &self.lay,
            p: &self.w.data,
            zero: &self.zero,
        };
        backward::backward(&m, &self.acts, &mut self.sc, &mut self.grads, tokens, s);
    }
}

impl Backend for CpuEngine {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn pred_positions(&self) -> &[usize] {
        &self.pred
    }

    fn train_batch(&mut self, b: &Batch, lr: f64, step: u64) -> Result<StepOutput> {
        let t = b.check(&self.w.cfg, &self.pred)?;
        let _ftz = self.opts.flush_denormals.then(ftz::FlushGuard::new);
        let s = self.shape(b.size, t, self.pred.clone());
        let loss = self.loss_forward(&b.tokens, &b.targets, &s);
        if !loss.is_finite() {
            return Err(Error::Diverged {
                step,
                loss,
                last_good_step: step,
            });
        }
        self.backward(&b.tokens, &s);
        let norm = self.opt.step(&mut self.w.data, &mut self.grads, lr, step)?;
        Ok(StepOutput {
            loss,
            grad_norm: norm as f32,
            argmax: self.acts.fin.argmax.clone(),
        })
    }

    fn logits(&mut self, tokens: &[u32], batch: usize) -> Result<Vec<f32>> {
        let t = self.w.cfg.check_tokens(tokens, batch)?;
        let s = self.shape(batch, t, (0..t).collect());
        let m = Model {
            cfg: &self.w.cfg,
            lay: &self.lay,
            p: &self.w.data,
            zero: &self.zero,
        };
        forward::forward(&m, &mut self.acts, tokens, &s);
        Ok(self.acts.fin.logits.clone())
    }

    fn weights(&self) -> Result<Weights> {
        Ok(self.w.clone())
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        Ok(self.opt.state())
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.opt.set_state(state, &self.w.table)
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
        if w.table != crate::model::ParamTable::new(&w.cfg) {
            return Err(Error::Weights(
                "the parameter table does not match the config".into(),
            ));
        }
        self.lay = Layout::new(&w.cfg, &w.table);
        self.zero.clear();
        let mut trainable = Vec::new();
        for p in &w.table.params {
            let r = p.offset..p.offset + p.len;
            if p.trainable {
                trainable.push(r);
            } else if p.kind == ParamKind::Bias && w.data[r.clone()].iter().all(|&x| x == 0.0) {
                self.zero.push(r);
            }
        }
        let n = w.data.len();
        self.grads = vec![0.0; n];
        self.opt.reset(n, trainable);
        self.w = w.clone();
        Ok(())
    }
}
