//! The GPU training engine, asynchronous at its core so the same code runs in the browser (where
//! nothing may block) and natively (where [`super::GpuBackend`] drives it with `pollster`).
//!
//! A training chunk: the host makes each step's batch with the task's counter-based RNG (the same
//! stream as the CPU backend), uploads them together, records every step's ops (copy the step's
//! input in, forward, backward, grad norm, AdamW, copy the step's stats out) into one command buffer
//! per sub-chunk, and reads the stats and the weights back once at the end. No per-step readback.

use super::context::{AdapterChoice, GpuContext};
use super::kernels::defs;
use super::model::{step_data, Flat, Plan, Shape};
use crate::backend::{ChunkOutput, OptimizerState, StepStats};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamTable, Weights};
use crate::tasks::TaskSpec;
use crate::train::TrainConfig;

/// Most bytes of step inputs uploaded at once (a sub-chunk).
const CHUNK_BYTES: usize = 32 << 20;
/// Default for [`GpuEngine::sub_chunk`].
const MAX_SUB_CHUNK: usize = 64;

pub struct GpuEngine {
    pub ctx: GpuContext,
    cfg: ModelConfig,
    table: ParamTable,
    tc: TrainConfig,
    pred: Vec<usize>,
    flat: Flat,
    train_plan: Option<Plan>,
    infer_plan: Option<Plan>,
    /// AdamW steps taken since the last `set_weights` (candle's `step_t`).
    adam_t: u64,
    /// The weights as of the last sync (every chunk ends with one).
    host: Weights,
    /// Set once the device failed: the message, and the engine refuses further work.
    failed: Option<String>,
    /// Most steps recorded into one command buffer (the host makes the next sub-chunk's batches while
    /// the GPU runs the previous one).
    pub sub_chunk: usize,
}

impl GpuEngine {
    /// Opens an adapter and uploads `w`. `pred` are the task's scored positions (a contiguous range,
    /// as every task has); empty for an inference-only engine.
    pub async fn new(
        w: &Weights,
        tc: &TrainConfig,
        pred: Vec<usize>,
        choice: AdapterChoice,
    ) -> Result<Self> {
        w.cfg.validate()?;
        tc.validate()?;
        if let Some(&p) = pred.iter().find(|&&p| p + 1 >= w.cfg.n_ctx) {
            return Err(Error::config(
                "n_ctx",
                format!(
                    "predicted position {p} has its target at {}, outside the context of {} tokens",
                    p + 1,
                    w.cfg.n_ctx
                ),
            ));
        }
        if pred.windows(2).any(|x| x[1] != x[0] + 1) {
            return Err(Error::Backend("the GPU backend scores a contiguous range of positions; this task's are not contiguous".into()));
        }
        let ctx = GpuContext::new(choice).await?;
        for def in defs::ALL {
            ctx.kernel(def);
        }
        if let Some(e) = ctx.take_error() {
            return Err(Error::Backend(format!(
                "building the GPU kernels on {} failed: {e}",
                ctx.describe()
            )));
        }
        let table = w.table.clone();
        let total = table.total_len();
        let what = |name: &str| format!("`{name}` ({total} parameters)");
        let mut mask = vec![0u32; total.div_ceil(32)];
        for p in table.params.iter().filter(|p| p.trainable) {
            for i in p.offset..p.offset + p.len {
                mask[i / 32] |= 1 << (i % 32);
            }
        }
        let flat = Flat {
            params: ctx.storage(&what("params"), total)?,
            grads: ctx.storage(&what("grads"), total)?,
            m: ctx.storage(&what("adam m"), total)?,
            v: ctx.storage(&what("adam v"), total)?,
            mask: ctx.storage_init(&what("mask"), &mask)?,
            vars: ctx.storage("vars", 8)?,
        };
        let mut e = GpuEngine {
            ctx,
            cfg: w.cfg.clone(),
            table,
            tc: tc.clone(),
            pred,
            flat,
            train_plan: None,
            infer_plan: None,
            adam_t: 0,
            host: w.clone(),
            failed: None,
            sub_chunk: MAX_SUB_CHUNK,
        };
        e.set_weights(w)?;
        Ok(e)
    }

    /// "vulkan: llvmpipe (...)", "webgpu: ...".
    pub fn name(&self) -> String {
        self.ctx.describe()
    }

    fn check(&self) -> Result<()> {
        match &self.failed {
            Some(m) => Err(Error::Backend(format!("the GPU failed earlier ({m}); the last synced weights are kept: read them with weights() and continue on the CPU"))),
            None => Ok(()),
        }
    }

    /// Turns a device error into the engine's failure (the weights as of the last sync stay readable).
    fn fail(&mut self, e: Error) -> Error {
        let msg = match e {
            Error::Backend(m) => m,
            e => e.to_string(),
        };
        // wgpu's messages span lines ("Validation Error\n\nCaused by: ..."): one line for the page
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        self.failed = Some(msg.clone());
        Error::Backend(format!("GPU training stopped: {msg}. The weights from the last sync are kept: read them with weights() and continue on the CPU"))
    }

    /// Builds the training plan for batches of `batch` sequences of `t` tokens now, so that a
    /// config too large for the adapter is refused before training starts.
    pub fn prepare(&mut self, batch: usize, t: usize) -> Result<()> {
        self.check()?;
        if self.pred.is_empty() || self.pred[self.pred.len() - 1] + 1 >= t || t > self.cfg.n_ctx {
            return Err(Error::config(
                "tokens",
                format!(
                    "sequence length {t} does not fit the scored positions and n_ctx {}",
                    self.cfg.n_ctx
                ),
            ));
        }
        self.plan(Shape {
            b: batch,
            t,
            p0: self.pred[0],
            p: self.pred.len(),
            train: true,
        })
    }

    /// Replaces the weights and resets the optimiser.
    pub fn set_weights(&mut self, w: &Weights) -> Result<()> {
        self.check()?;
        w.cfg.validate()?;
        if w.cfg != self.cfg || w.data.len() != self.table.total_len() {
            return Err(Error::Weights(format!(
                "the GPU backend was built for another config ({} values expected, got {})",
                self.table.total_len(),
                w.data.len()
            )));
        }
        let q = &self.ctx.queue;
        q.write_buffer(&self.flat.params, 0, bytemuck::cast_slice(&w.data));
        let zeros = vec![0u8; w.data.len() * 4];
        q.write_buffer(&self.flat.grads, 0, &zeros);
        q.write_buffer(&self.flat.m, 0, &zeros);
        q.write_buffer(&self.flat.v, 0, &zeros);
        self.adam_t = 0;
        self.host = w.clone();
        Ok(())
    }

    /// The weights as of the last sync (every training chunk ends with one).
    pub fn weights(&self) -> Weights {
        self.host.clone()
    }

    /// AdamW's state (step count and both moments, read back from the device), so a saved run
    /// can continue exactly, on this backend or another.
    pub async fn optimizer_state(&self) -> Result<OptimizerState> {
        self.check()?;
        let bytes = (self.table.total_len() * 4) as u64;
        let m = self.ctx.read_buffer(&self.flat.m, bytes).await?;
        let v = self.ctx.read_buffer(&self.flat.v, bytes).await?;
        Ok(OptimizerState {
            t: self.adam_t,
            m: bytemuck::cast_slice(&m).to_vec(),
            v: bytemuck::cast_slice(&v).to_vec(),
        })
    }

    /// Restores a state from [`GpuEngine::optimizer_state`] (or the CPU's) after `set_weights`.
    pub fn set_optimizer_state(&mut self, st: &OptimizerState) -> Result<()> {
        self.check()?;
        st.validate(&self.table)?;
        self.ctx
            .queue
            .write_buffer(&self.flat.m, 0, bytemuck::cast_slice(&st.m));
        self.ctx
            .queue
            .write_buffer(&self.flat.v, 0, bytemuck::cast_slice(&st.v));
        self.adam_t = st.t;
        Ok(())
    }

    fn plan(&mut self, shape: Shape) -> Result<()> {
        let slot = if shape.train {
            &self.train_plan
        } else {
            &self.infer_plan
        };
        if slot.as_ref().is_some_and(|p| p.shape == shape) {
            return Ok(());
        }
        let tc = &self.tc;
        let plan = Plan::new(
            &self.ctx,
            &self.cfg,
            &self.table,
            &self.flat,
            shape,
            tc.grad_clip,
            (tc.beta1, tc.beta2, tc.eps),
        )?;
        if let Some(e) = self.ctx.take_error() {
            return Err(self.fail(Error::Backend(e)));
        }
        if shape.train {
            self.train_plan = Some(plan);
        } else {
            self.infer_plan = Some(plan);
        }
        Ok(())
    }

    /// Trains on `batches` (each (B, T) tokens), one AdamW step each at `lrs[i]`. Returns each step's
    /// stats (reduced on the device) and, with `want_argmax`, the (B, P) argmax of the last step. A
    /// step whose loss or gradient is not finite stops the chunk there: the weights stay as before
    /// it and the output carries `Error::Diverged`.
    pub async fn train(
        &mut self,
        batches: &[Vec<u32>],
        batch: usize,
        lrs: &[f64],
        first_step: u64,
        want_argmax: bool,
    ) -> Result<(ChunkOutput, Vec<u32>)> {
        let t = match batches.first() {
            Some(x) if batch > 0 && x.len() % batch == 0 => x.len() / batch,
            _ => {
                return Err(Error::config(
                    "tokens",
                    "a training chunk needs batches of B·T tokens",
                ))
            }
        };
        if batches.len() != lrs.len() {
            return Err(Error::config(
                "tokens",
                "a training chunk needs one learning rate per batch",
            ));
        }
        // check every batch before any is submitted, so a bad one leaves the weights alone
        for x in batches {
            if self.cfg.check_tokens(x, batch)? != t {
                return Err(Error::config(
                    "tokens",
                    format!(
                        "a batch of the chunk holds {} tokens, expected {}",
                        x.len(),
                        batch * t
                    ),
                ));
            }
        }
        self.train_from(
            &mut |s| batches[s].clone(),
            t,
            batch,
            lrs,
            first_step,
            want_argmax,
        )
        .await
    }

    /// As [`GpuEngine::train`], with step `s`'s batch made by `source(s)` only when its sub-chunk is
    /// recorded, so the host makes the next sub-chunk's data while the GPU runs the previous one.
    async fn train_from(
        &mut self,
        source: &mut dyn FnMut(usize) -> Vec<u32>,
        t: usize,
        batch: usize,
        lrs: &[f64],
        first_step: u64,
        want_argmax: bool,
    ) -> Result<(ChunkOutput, Vec<u32>)> {
        self.check()?;
        if lrs.is_empty() {
            return Ok((
                ChunkOutput {
                    steps: Vec::new(),
                    error: None,
                },
                Vec::new(),
            ));
        }
        if self.pred.is_empty() || self.pred[self.pred.len() - 1] + 1 >= t {
            return Err(Error::config(
                "tokens",
                format!("sequence length {t} does not reach the scored positions"),
            ));
        }
        if t > self.cfg.n_ctx {
            return Err(Error::config(
                "tokens",
                format!("sequence length {t} exceeds n_ctx {}", self.cfg.n_ctx),
            ));
        }
        let shape = Shape {
            b: batch,
            t,
            p0: self.pred[0],
            p: self.pred.len(),
            train: true,
        };
        self.plan(shape)?;
        let dv = self.cfg.d_vocab;
        let step_len = shape.step_len(dv);
        let stats_len = shape.stats_len();
        let per_sub = (CHUNK_BYTES / (step_len * 4)).clamp(1, self.sub_chunk.max(1));
        let n = lrs.len();
        let ctx = &self.ctx;
        let stats_all = ctx.storage("stats of a chunk", n * stats_len)?;
        let inputs = ctx.storage("step inputs of a sub-chunk", per_sub.min(n) * step_len)?;
        let scheds = ctx.storage("schedule of a sub-chunk", per_sub.min(n) * 4)?;
        // a fresh chunk: clear the halt flag
        ctx.queue
            .write_buffer(&self.flat.vars, 20, bytemuck::cast_slice(&[0.0f32]));
        let plan = self.train_plan.as_ref().expect("plan built above");
        let (b1, b2) = (self.tc.beta1, self.tc.beta2);
        let mut data = Vec::with_capacity(per_sub.min(n) * step_len);
        for s0 in (0..n).step_by(per_sub) {
            let s1 = (s0 + per_sub).min(n);
            data.clear();
            let mut sched = Vec::with_capacity((s1 - s0) * 4);
            for (s, &lr) in lrs.iter().enumerate().take(s1).skip(s0) {
                let tokens = source(s);
                if self.cfg.check_tokens(&tokens, batch)? != t {
                    return Err(Error::config(
                        "tokens",
                        format!(
                            "batch {s} of the chunk holds {} tokens, expected B·T = {}",
                            tokens.len(),
                            batch * t
                        ),
                    ));
                }
                step_data(&tokens, dv, true, &mut data);
                // candle-nn AdamW: bias corrections 1 / (1 − β^t), decoupled decay θ (1 − lr·wd)
                let at = (self.adam_t + s as u64 + 1) as i32;
                sched.extend([
                    lr as f32,
                    (1.0 / (1.0 - b1.powi(at))) as f32,
                    (1.0 / (1.0 - b2.powi(at))) as f32,
                    (1.0 - lr * self.tc.weight_decay) as f32,
                ]);
            }
            ctx.queue
                .write_buffer(&inputs, 0, bytemuck::cast_slice(&data));
            ctx.queue
                .write_buffer(&scheds, 0, bytemuck::cast_slice(&sched));
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("train chunk"),
                });
            for s in s0..s1 {
                let k = (s - s0) as u64;
                enc.copy_buffer_to_buffer(
                    &inputs,
                    k * step_len as u64 * 4,
                    &plan.step,
                    0,
                    step_len as u64 * 4,
                );
                enc.copy_buffer_to_buffer(&scheds, k * 16, &self.flat.vars, 0, 16);
                plan.ops.record(&mut enc);
                enc.copy_buffer_to_buffer(
                    &plan.stats,
                    0,
                    &stats_all,
                    (s * stats_len) as u64 * 4,
                    stats_len as u64 * 4,
                );
            }
            ctx.queue.submit([enc.finish()]);
        }
        let total = self.table.total_len() as u64 * 4;
        let stats_bytes = (n * stats_len) as u64 * 4;
        let argmax_bytes = if want_argmax {
            (shape.b * shape.p) as u64 * 4
        } else {
            0
        };
        let st_stage = ctx.staging("stats readback", stats_bytes);
        let w_stage = ctx.staging("weights readback", total);
        let a_stage = ctx.staging("argmax readback", argmax_bytes);
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(&stats_all, 0, &st_stage, 0, stats_bytes);
        enc.copy_buffer_to_buffer(&self.flat.params, 0, &w_stage, 0, total);
        if want_argmax {
            enc.copy_buffer_to_buffer(&plan.argmax, 0, &a_stage, 0, argmax_bytes);
        }
        ctx.queue.submit([enc.finish()]);
        let mut reads = vec![(&st_stage, stats_bytes), (&w_stage, total)];
        if want_argmax {
            reads.push((&a_stage, argmax_bytes));
        }
        let got = match ctx.read_many(&reads).await {
            Ok(g) => g,
            Err(e) => return Err(self.fail(e)),
        };
        let stats: &[u32] = bytemuck::cast_slice(&got[0]);
        let weights: &[f32] = bytemuck::cast_slice(&got[1]);
        let argmax: Vec<u32> = if want_argmax {
            bytemuck::cast_slice(&got[2]).to_vec()
        } else {
            Vec::new()
        };
        let mut out = ChunkOutput {
            steps: Vec::with_capacity(n),
            error: None,
        };
        for s in 0..n {
            let r = &stats[s * stats_len..(s + 1) * stats_len];
            let loss = f32::from_bits(r[0]);
            let grad_norm = f32::from_bits(r[1]);
            if r[3] != 0 {
                let step = first_step + s as u64;
                out.error = Some(Error::Diverged {
                    step,
                    loss: if loss.is_finite() { f32::NAN } else { loss },
                    last_good_step: step,
                });
                break;
            }
            out.steps.push(StepStats {
                loss,
                grad_norm,
                pos_correct: r[4..].to_vec(),
                seq_correct: r[2],
            });
        }
        self.adam_t += out.steps.len() as u64;
        self.host.data.copy_from_slice(weights);
        Ok((out, argmax))
    }

    /// Loss and the flat gradient (table layout; frozen entries stay 0) of one batch, for tests and
    /// inspection: runs a training step at lr 0, reads the gradient, then restores the weights and
    /// resets the optimiser state.
    pub async fn loss_and_grads(
        &mut self,
        tokens: &[u32],
        batch: usize,
    ) -> Result<(f32, Vec<f32>)> {
        let saved = self.host.clone();
        let (out, _) = self
            .train(&[tokens.to_vec()], batch, &[0.0], 0, false)
            .await?;
        if let Some(e) = out.error {
            return Err(e);
        }
        let bytes = self.table.total_len() as u64 * 4;
        let g = match self.ctx.read_buffer(&self.flat.grads, bytes).await {
            Ok(g) => bytemuck::cast_slice(&g).to_vec(),
            Err(e) => return Err(self.fail(e)),
        };
        self.set_weights(&saved)?;
        Ok((out.steps[0].loss, g))
    }

    /// Logits (B, T, V) of `tokens` (B, T), T ≤ n_ctx.
    pub async fn logits(&mut self, tokens: &[u32], batch: usize) -> Result<Vec<f32>> {
        self.check()?;
        let t = self.cfg.check_tokens(tokens, batch)?;
        let shape = Shape {
            b: batch,
            t,
            p0: 0,
            p: t,
            train: false,
        };
        self.plan(shape)?;
        let plan = self.infer_plan.as_ref().expect("plan built above");
        let ctx = &self.ctx;
        ctx.queue
            .write_buffer(&plan.step, 0, bytemuck::cast_slice(tokens));
        let bytes = (batch * t * self.cfg.d_vocab_out) as u64 * 4;
        let stage = ctx.staging("logits readback", bytes);
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("logits"),
            });
        plan.ops.record(&mut enc);
        enc.copy_buffer_to_buffer(&plan.logits, 0, &stage, 0, bytes);
        ctx.queue.submit([enc.finish()]);
        match ctx.read_many(&[(&stage, bytes)]).await {
            Ok(mut g) => Ok(bytemuck::cast_slice(&g.remove(0)).to_vec()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Trains `lrs.len()` steps on the task's own data stream from `first_step` (the batches the
    /// CPU backend would see).
    pub async fn train_task(
        &mut self,
        task: &TaskSpec,
        seed: u64,
        first_step: u64,
        batch: usize,
        lrs: &[f64],
    ) -> Result<ChunkOutput> {
        let t = task.seq_len();
        Ok(self
            .train_from(
                &mut |s| task.batch(seed, first_step + s as u64, batch),
                t,
                batch,
                lrs,
                first_step,
                false,
            )
            .await?
            .0)
    }
}
