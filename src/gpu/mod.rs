//! The GPU backend: wgpu with hand-written WGSL kernels for the forward pass, the backward pass and
//! AdamW of the whole model family, natively (Vulkan, Metal, DX12) and in the browser (WebGPU) from
//! one code path. It follows llm.c: flat parameter / gradient / moment buffers laid out by the
//! [`ParamTable`](crate::model::ParamTable), one kernel per file, each output element owned by one
//! invocation (no atomics, so runs are deterministic on a given adapter), and attention that never
//! holds a (B, NH, T, T) pattern (each row's scores live in workgroup memory; the backward recomputes
//! them from the saved log-sum-exp).
//!
//! - [`context`]: device, limits, pipeline cache, asynchronous readback
//! - [`kernels`]: the kernels (`kernels/*.wgsl`) and their launchers
//! - [`plan`]: the recorded plan of one batch shape (buffers, then forward, loss, backward, optimizer)
//! - [`runner`]: the asynchronous training runner (what the browser uses)
//! - [`GpuBackend`]: the runner behind the synchronous [`Backend`] trait (native only)

pub mod context;
pub mod kernels;
pub mod plan;
pub mod runner;

pub use context::{AdapterChoice, GpuContext};
pub use runner::GpuRunner;

#[cfg(not(target_arch = "wasm32"))]
pub use native::GpuBackend;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{AdapterChoice, GpuRunner};
    use crate::backend::{Backend, Batch, ChunkOutput, OptimizerState, StepOutput};
    use crate::error::Result;
    use crate::model::Weights;
    use crate::tasks::TaskSpec;
    use crate::train::TrainConfig;

    /// [`GpuRunner`] behind the synchronous [`Backend`] trait: each call blocks on the GPU (natively
    /// a blocking poll is fine; the browser uses the runner's async API instead).
    pub struct GpuBackend {
        pub runner: GpuRunner,
    }

    impl GpuBackend {
        /// On any adapter (lavapipe included).
        pub fn new(w: &Weights, tc: &TrainConfig, pred_positions: Vec<usize>) -> Result<Self> {
            Self::with_choice(w, tc, pred_positions, AdapterChoice::Any)
        }

        pub fn with_choice(
            w: &Weights,
            tc: &TrainConfig,
            pred_positions: Vec<usize>,
            choice: AdapterChoice,
        ) -> Result<Self> {
            Ok(GpuBackend {
                runner: pollster::block_on(GpuRunner::new(w, tc, pred_positions, choice))?,
            })
        }
    }

    impl Backend for GpuBackend {
        fn name(&self) -> String {
            self.runner.name()
        }

        fn pred_positions(&self) -> &[usize] {
            self.runner.pred()
        }

        fn train_batch(&mut self, batch: &Batch, lr: f64, step: u64) -> Result<StepOutput> {
            let (out, argmax) = pollster::block_on(self.runner.train(
                std::slice::from_ref(batch),
                &[lr],
                step,
                true,
            ))?;
            if let Some(e) = out.error {
                return Err(e);
            }
            let s = &out.steps[0];
            Ok(StepOutput {
                loss: s.loss,
                grad_norm: s.grad_norm,
                argmax,
            })
        }

        fn train_chunk(
            &mut self,
            task: &TaskSpec,
            seed: u64,
            first_step: u64,
            batch: usize,
            lrs: &[f64],
        ) -> Result<ChunkOutput> {
            pollster::block_on(self.runner.train_task(task, seed, first_step, batch, lrs))
        }

        fn logits(&mut self, tokens: &[u32], batch: usize) -> Result<Vec<f32>> {
            pollster::block_on(self.runner.logits(tokens, batch))
        }

        fn weights(&self) -> Result<Weights> {
            Ok(self.runner.weights())
        }

        fn set_weights(&mut self, w: &Weights) -> Result<()> {
            self.runner.set_weights(w)
        }

        fn optimizer_state(&self) -> Result<OptimizerState> {
            pollster::block_on(self.runner.optimizer_state())
        }

        fn set_optimizer_state(&mut self, s: &OptimizerState) -> Result<()> {
            self.runner.set_optimizer_state(s)
        }
    }
}
