//! The GPU training runner, asynchronous at its core so the same code runs in the browser (where
//! nothing may block) and natively (where [`super::GpuBackend`] drives it with `pollster`).
//!
//! A training chunk: the host makes each step's batch with the task's counter-based RNG (the same
//! stream as the CPU backend) and uploads a submission's batches and schedules into the plan's
//! per-step windows; every step records only its dispatches (the windows are bound at dynamic
//! offsets), one copy per submission moves the stats out, and the stats and the weights are read
//! back once at the end. No per-step readback. Submissions are sized from the measured time per
//! step ([`Sizer`]) so that none holds the GPU for long (browsers and drivers reset a GPU whose work
//! runs for seconds).

use super::context::{AdapterChoice, GpuContext};
use super::kernels::{defs, AdamwArgs};
use super::plan::{step_data, Flat, Plan, Shape, SCHED_LEN};
use crate::backend::{Batch, ChunkOutput, OptimizerState, StepStats};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamTable, Weights};
use crate::tasks::{Split, TaskSpec};
use crate::train::TrainConfig;

/// Most bytes of step inputs uploaded at once (a submission).
const CHUNK_BYTES: u64 = 32 << 20;
/// Most steps in one submission.
const MAX_SUB_CHUNK: usize = 64;

/// Steps per submission from the measured time per step: as many as fit `target_ms` of work (at
/// least 1, at most `max`), starting from `first` before anything was measured. The estimate is a
/// running mean of (chunk wall time / steps), which includes the host's batch making, so it errs
/// towards shorter submissions.
#[derive(Clone, Debug, PartialEq)]
pub struct Sizer {
    pub target_ms: f64,
    pub max: usize,
    pub first: usize,
    ms_per_step: Option<f64>,
}

impl Default for Sizer {
    fn default() -> Self {
        Sizer {
            target_ms: 50.0,
            max: MAX_SUB_CHUNK,
            first: 8,
            ms_per_step: None,
        }
    }
}

impl Sizer {
    /// Steps the next submission should hold.
    pub fn steps(&self) -> usize {
        let n = match self.ms_per_step {
            None => self.first,
            Some(ms) if ms > 0.0 => (self.target_ms / ms).floor().min(1e6) as usize,
            Some(_) => self.max,
        };
        n.clamp(1, self.max.max(1))
    }

    /// Records that `steps` steps took `ms` milliseconds (ignored when either is 0 or not finite).
    pub fn observe(&mut self, ms: f64, steps: usize) {
        if steps == 0 || !ms.is_finite() || ms <= 0.0 {
            return;
        }
        let per = ms / steps as f64;
        self.ms_per_step = Some(match self.ms_per_step {
            Some(old) => 0.5 * old + 0.5 * per,
            None => per,
        });
    }

    /// The current estimate of milliseconds per step, if any.
    pub fn ms_per_step(&self) -> Option<f64> {
        self.ms_per_step
    }
}

/// Milliseconds on a monotonic-enough clock (the page's Date on the web).
fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1e3
    }
}

pub struct GpuRunner {
    pub ctx: GpuContext,
    cfg: ModelConfig,
    table: ParamTable,
    tc: TrainConfig,
    pred: Vec<usize>,
    flat: Flat,
    /// The training plan of the current batch shape (public so that tests can add a dispatch to
    /// every step, e.g. a stall).
    pub train_plan: Option<Plan>,
    infer_plan: Option<Plan>,
    /// AdamW steps taken since the last `set_weights` (candle's `step_t`).
    adam_t: u64,
    /// The weights as of the last sync (every chunk ends with one).
    host: Weights,
    /// Set once the device failed: the message, and the runner refuses further work.
    failed: Option<String>,
    /// Steps per submission (the host makes the next submission's batches while the GPU runs the
    /// previous one).
    pub sizer: Sizer,
}

impl GpuRunner {
    /// Opens an adapter and uploads `w`. `pred` are the task's scored positions (a contiguous range,
    /// as every task has); empty for an inference-only runner.
    pub async fn new(
        w: &Weights,
        tc: &TrainConfig,
        pred: Vec<usize>,
        choice: AdapterChoice,
    ) -> Result<Self> {
        w.cfg.validate()?;
        tc.validate()?;
        if let Some(&p) = pred.iter().find(|&&p| p >= w.cfg.n_ctx) {
            return Err(Error::config(
                "n_ctx",
                format!(
                    "predicted position {p} is outside the context of {} tokens",
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
            moments: ctx.storage(&what("adam m and v"), 2 * total)?,
            mask: ctx.storage_init(&what("mask"), &mask)?,
        };
        let mut e = GpuRunner {
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
            sizer: Sizer::default(),
        };
        e.set_weights(w)?;
        Ok(e)
    }

    /// The scored positions the runner was built for.
    pub fn pred(&self) -> &[usize] {
        &self.pred
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

    /// Turns a device error into the runner's failure (the weights as of the last sync stay readable).
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
        if self.pred.is_empty() || self.pred[self.pred.len() - 1] >= t || t > self.cfg.n_ctx {
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
        q.write_buffer(&self.flat.moments, 0, &zeros);
        q.write_buffer(&self.flat.moments, zeros.len() as u64, &zeros);
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
        let n = self.table.total_len();
        let mv = self
            .ctx
            .read_buffer(&self.flat.moments, (n * 8) as u64)
            .await?;
        let mv: &[f32] = bytemuck::cast_slice(&mv);
        Ok(OptimizerState {
            t: self.adam_t,
            m: mv[..n].to_vec(),
            v: mv[n..].to_vec(),
        })
    }

    /// Restores a state from [`GpuRunner::optimizer_state`] (or the CPU's) after `set_weights`.
    pub fn set_optimizer_state(&mut self, st: &OptimizerState) -> Result<()> {
        self.check()?;
        st.validate(&self.table)?;
        let n = self.table.total_len();
        let q = &self.ctx.queue;
        q.write_buffer(&self.flat.moments, 0, bytemuck::cast_slice(&st.m));
        q.write_buffer(
            &self.flat.moments,
            (n * 4) as u64,
            bytemuck::cast_slice(&st.v),
        );
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
        let opt = AdamwArgs {
            beta1: tc.beta1,
            beta2: tc.beta2,
            eps: tc.eps,
            clip: tc.grad_clip,
        };
        // windows for as many steps as one submission may hold
        let step_bytes =
            super::plan::stride(shape.step_len(self.cfg.d_vocab), self.ctx.offset_align());
        let cap = if shape.train {
            ((CHUNK_BYTES / step_bytes) as usize).clamp(1, MAX_SUB_CHUNK)
        } else {
            1
        };
        let plan = Plan::new(
            &self.ctx,
            &self.cfg,
            &self.table,
            &self.flat,
            shape,
            cap,
            &opt,
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

    /// Trains on `batches` (each (B, T) tokens with their (B, P) targets, all of one shape), one
    /// AdamW step each at `lrs[i]`. Returns each step's stats (reduced on the device) and, with
    /// `want_argmax`, the (B, P) argmax of the last step. A step whose loss or gradient is not
    /// finite stops the chunk there: the weights stay as before it and the output carries
    /// `Error::Diverged`.
    pub async fn train(
        &mut self,
        batches: &[Batch],
        lrs: &[f64],
        first_step: u64,
        want_argmax: bool,
    ) -> Result<(ChunkOutput, Vec<u32>)> {
        let Some(first) = batches.first() else {
            return Err(Error::config(
                "tokens",
                "a training chunk needs at least one batch",
            ));
        };
        if batches.len() != lrs.len() {
            return Err(Error::config(
                "tokens",
                "a training chunk needs one learning rate per batch",
            ));
        }
        // check every batch before any is submitted, so a bad one leaves the weights alone
        let t = first.check(&self.cfg, &self.pred)?;
        for x in batches {
            if x.size != first.size || x.check(&self.cfg, &self.pred)? != t {
                return Err(Error::config(
                    "tokens",
                    format!(
                        "a batch of the chunk holds {} sequences of {} tokens, expected {} of {t}",
                        x.size,
                        x.tokens.len() / x.size.max(1),
                        first.size
                    ),
                ));
            }
        }
        self.train_from(
            &mut |s| batches[s].clone(),
            t,
            first.size,
            lrs,
            first_step,
            want_argmax,
        )
        .await
    }

    /// As [`GpuRunner::train`], with step `s`'s batch made by `source(s)` only when its submission is
    /// recorded, so the host makes the next submission's data while the GPU runs the previous one.
    async fn train_from(
        &mut self,
        source: &mut dyn FnMut(usize) -> Batch,
        t: usize,
        batch: usize,
        lrs: &[f64],
        first_step: u64,
        want_argmax: bool,
    ) -> Result<(ChunkOutput, Vec<u32>)> {
        self.check()?;
        if lrs.is_empty() {
            let out = ChunkOutput {
                steps: Vec::new(),
                error: None,
            };
            return Ok((out, Vec::new()));
        }
        if self.pred.is_empty() || self.pred[self.pred.len() - 1] >= t {
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
        let n = lrs.len();
        let plan = self.train_plan.as_ref().expect("plan built above");
        let stats_all = self
            .ctx
            .storage("stats of a chunk", n * plan.io.stats_stride as usize / 4)?;
        // a fresh chunk: clear both halt slots
        let halt_at = plan.parts as u64 * 4;
        let norm = plan
            .norm
            .as_ref()
            .expect("a training plan has a norm buffer");
        self.ctx.queue.write_buffer(norm, halt_at, &[0u8; 8]);
        let t0 = now_ms();
        let mut s0 = 0;
        let mut stages = Vec::new();
        let mut scored = Vec::with_capacity(n); // (steps, P) sequences scoring each position
        while s0 < n {
            let s1 = (s0 + self.sizer.steps().min(plan.io.cap)).min(n);
            let mut enc = self.record(source, s0..s1, lrs, (batch, t), &stats_all, &mut scored)?;
            if s1 == n {
                // the readback copies ride with the last steps: the wait covers exactly them
                stages = self.readback_copies(&mut enc, &stats_all, n, want_argmax);
            }
            self.ctx.queue.submit([enc.finish()]);
            s0 = s1;
        }
        let reads: Vec<(&wgpu::Buffer, u64)> = stages.iter().map(|(b, n)| (b, *n)).collect();
        let got = self.ctx.read_many(&reads).await;
        let got = match got {
            Ok(g) => g,
            Err(e) => return Err(self.fail(e)),
        };
        self.sizer.observe(now_ms() - t0, n);
        Ok(self.chunk_output(&got, &scored, first_step, want_argmax))
    }

    /// Uploads steps `steps` (batches from `source`, schedules from `lrs`) into the plan's windows and
    /// records them, with one copy of their stats into `stats_all`; appends each step's sequences
    /// scoring each position to `scored`.
    fn record(
        &self,
        source: &mut dyn FnMut(usize) -> Batch,
        steps: std::ops::Range<usize>,
        lrs: &[f64],
        (batch, t): (usize, usize),
        stats_all: &wgpu::Buffer,
        scored: &mut Vec<Vec<u32>>,
    ) -> Result<wgpu::CommandEncoder> {
        let plan = self.train_plan.as_ref().expect("plan built by train_from");
        let io = &plan.io;
        let dv = self.cfg.d_vocab;
        let (b1, b2) = (self.tc.beta1, self.tc.beta2);
        let (step_words, sched_words) = (io.step_stride as usize / 4, io.sched_stride as usize / 4);
        let mut data = vec![0u32; steps.len() * step_words];
        let mut sched = vec![0f32; steps.len() * sched_words];
        let mut one = Vec::with_capacity(plan.shape.step_len(dv));
        for (k, s) in steps.clone().enumerate() {
            let b = source(s);
            if b.size != batch || b.check(&self.cfg, &self.pred)? != t {
                return Err(Error::config(
                    "tokens",
                    format!(
                        "batch {s} of the chunk holds {} tokens, expected B·T = {}",
                        b.tokens.len(),
                        batch * t
                    ),
                ));
            }
            one.clear();
            step_data(&b.tokens, dv, true, &mut one);
            debug_assert_eq!(one.len(), plan.shape.targets_at(dv));
            one.extend_from_slice(&b.targets); // (B, P)
            let rows = b.scored(); // ≥ 1 (Batch::check)
            one.push((1.0 / rows as f32).to_bits()); // crossentropy's scale
            scored.push(StepStats::scored_positions(&b.targets, plan.shape.p));
            data[k * step_words..k * step_words + one.len()].copy_from_slice(&one);
            // candle-nn AdamW: bias corrections 1 / (1 − β^t), decoupled decay θ (1 − lr·wd)
            let at = (self.adam_t + s as u64 + 1) as i32;
            let lr = lrs[s];
            sched[k * sched_words..k * sched_words + SCHED_LEN].copy_from_slice(&[
                lr as f32,
                (1.0 / (1.0 - b1.powi(at))) as f32,
                (1.0 / (1.0 - b2.powi(at))) as f32,
                (1.0 - lr * self.tc.weight_decay) as f32,
                (s % 2) as f32,
                rows as f32, // adamw's loss: the mean over the scored rows
            ]);
        }
        let ctx = &self.ctx;
        ctx.queue
            .write_buffer(&io.step, 0, bytemuck::cast_slice(&data));
        ctx.queue
            .write_buffer(&io.sched, 0, bytemuck::cast_slice(&sched));
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train submission"),
            });
        for k in 0..steps.len() {
            plan.ops.record(&mut enc, k as u32);
        }
        let stride = io.stats_stride;
        let bytes = steps.len() as u64 * stride;
        enc.copy_buffer_to_buffer(&io.stats, 0, stats_all, steps.start as u64 * stride, bytes);
        Ok(enc)
    }

    /// Records the copies of a chunk's stats, the weights and (optionally) the last step's argmax
    /// into staging buffers; returns them with their lengths, in that order.
    fn readback_copies(
        &self,
        enc: &mut wgpu::CommandEncoder,
        stats_all: &wgpu::Buffer,
        n: usize,
        want_argmax: bool,
    ) -> Vec<(wgpu::Buffer, u64)> {
        let plan = self.train_plan.as_ref().expect("plan built by train_from");
        let ctx = &self.ctx;
        let total = self.table.total_len() as u64 * 4;
        let stats_bytes = n as u64 * plan.io.stats_stride;
        let argmax_bytes = (plan.shape.b * plan.shape.p) as u64 * 4;
        let st_stage = ctx.staging("stats readback", stats_bytes);
        let w_stage = ctx.staging("weights readback", total);
        enc.copy_buffer_to_buffer(stats_all, 0, &st_stage, 0, stats_bytes);
        enc.copy_buffer_to_buffer(&self.flat.params, 0, &w_stage, 0, total);
        let mut stages = vec![(st_stage, stats_bytes), (w_stage, total)];
        if want_argmax {
            let a_stage = ctx.staging("argmax readback", argmax_bytes);
            enc.copy_buffer_to_buffer(&plan.argmax, 0, &a_stage, 0, argmax_bytes);
            stages.push((a_stage, argmax_bytes));
        }
        stages
    }

    /// Turns a chunk's read-back bytes into its output, and takes the synced weights.
    fn chunk_output(
        &mut self,
        got: &[Vec<u8>],
        scored: &[Vec<u32>],
        first_step: u64,
        want_argmax: bool,
    ) -> (ChunkOutput, Vec<u32>) {
        let plan = self.train_plan.as_ref().expect("plan built by train_from");
        let words = plan.io.stats_stride as usize / 4;
        let stats_len = plan.shape.stats_len();
        let n = scored.len();
        let stats: &[u32] = bytemuck::cast_slice(&got[0]);
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
            let r = &stats[s * words..s * words + stats_len];
            let loss = f32::from_bits(r[0]);
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
                grad_norm: f32::from_bits(r[1]),
                // the device counts an unscored row as right: take those out
                pos_correct: (r[4..].iter().zip(&scored[s]))
                    .map(|(&c, &k)| c - (plan.shape.b as u32 - k))
                    .collect(),
                pos_scored: scored[s].clone(),
                seq_correct: r[2],
            });
        }
        self.adam_t += out.steps.len() as u64;
        self.host
            .data
            .copy_from_slice(bytemuck::cast_slice(&got[1]));
        (out, argmax)
    }

    /// GPU commands one training step of batches (B, T) records, and how many of them are
    /// dispatches (all of them: inputs, schedule and stats are bound at dynamic offsets; one copy of
    /// the stats per submission comes on top).
    pub fn commands_per_step(&mut self, batch: usize, t: usize) -> Result<(usize, usize)> {
        self.prepare(batch, t)?;
        let plan = self.train_plan.as_ref().expect("plan built by prepare");
        Ok((plan.ops.len(), plan.ops.len()))
    }

    /// Loss and the flat gradient (table layout; frozen entries stay 0) of one batch with
    /// next-token targets, for tests and inspection: runs a training step at lr 0, reads the
    /// gradient, then restores the weights and resets the optimiser state.
    pub async fn loss_and_grads(
        &mut self,
        tokens: &[u32],
        batch: usize,
    ) -> Result<(f32, Vec<f32>)> {
        let b = Batch::next_token(tokens, batch, &self.pred)?;
        self.batch_loss_and_grads(&b).await
    }

    /// As [`GpuRunner::loss_and_grads`], for a batch with its own targets.
    pub async fn batch_loss_and_grads(&mut self, b: &Batch) -> Result<(f32, Vec<f32>)> {
        let saved = self.host.clone();
        let (out, _) = self
            .train(std::slice::from_ref(b), &[0.0], 0, false)
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
            .write_buffer(&plan.io.step, 0, bytemuck::cast_slice(tokens));
        let bytes = (batch * t * self.cfg.d_vocab_out) as u64 * 4;
        let stage = ctx.staging("logits readback", bytes);
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("logits"),
            });
        plan.ops.record(&mut enc, 0);
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
                &mut |s| Batch::of_task(task, seed, first_step + s as u64, batch, Split::Train),
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
