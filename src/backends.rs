//! Choosing and building a backend from `--backend` / the page's backend setting. This module
//! sits above the backends ([`crate::cpu`], [`crate::gpu`], [`crate::reference`]) and the
//! trainer ([`crate::train`]), which knows only the [`Backend`] trait.

use crate::backend::{Backend, BackendKind, OptimizerState};
use crate::cpu::CpuEngine;
use crate::error::Result;
use crate::model::{ModelConfig, Weights};
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use crate::train::{check_compatible, TrainConfig, Trainer};

/// Builds a backend for these weights. `Gpu` takes any adapter (a software one such as lavapipe
/// too); `Auto` takes a hardware GPU when there is one, else the CPU. In the browser the GPU is
/// driven asynchronously (`crate::wasm`'s GPU session), so there `Gpu` is refused here.
pub fn make_backend(
    kind: BackendKind,
    w: &Weights,
    tc: &TrainConfig,
    task: &TaskSpec,
) -> Result<Box<dyn Backend>> {
    let pred = task.pred_positions();
    match kind {
        BackendKind::Cpu => Ok(Box::new(CpuEngine::new(w, tc, pred)?)),
        BackendKind::Reference => Ok(Box::new(ReferenceBackend::new(w, tc, pred)?)),
        BackendKind::Gpu => gpu(w, tc, task),
        // a hardware GPU that can hold this config, else the CPU (which reports a bad config itself)
        BackendKind::Auto => match hardware_gpu(w, tc, task) {
            Some(g) => Ok(g),
            None => Ok(Box::new(CpuEngine::new(w, tc, pred)?)),
        },
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn gpu(w: &Weights, tc: &TrainConfig, task: &TaskSpec) -> Result<Box<dyn Backend>> {
    let mut g = crate::gpu::GpuBackend::new(w, tc, task.pred_positions())?;
    g.runner.prepare(tc.batch_size, task.seq_len())?;
    Ok(Box::new(g))
}

#[cfg(target_arch = "wasm32")]
fn gpu(_: &Weights, _: &TrainConfig, _: &TaskSpec) -> Result<Box<dyn Backend>> {
    Err(crate::error::Error::Backend(
        "in the browser the GPU backend runs asynchronously: use the GPU session".into(),
    ))
}

#[cfg(not(target_arch = "wasm32"))]
fn hardware_gpu(w: &Weights, tc: &TrainConfig, task: &TaskSpec) -> Option<Box<dyn Backend>> {
    use crate::gpu::{AdapterChoice, GpuBackend};
    let mut g =
        GpuBackend::with_choice(w, tc, task.pred_positions(), AdapterChoice::Hardware).ok()?;
    g.runner.prepare(tc.batch_size, task.seq_len()).ok()?;
    Some(Box::new(g))
}

#[cfg(target_arch = "wasm32")]
fn hardware_gpu(_: &Weights, _: &TrainConfig, _: &TaskSpec) -> Option<Box<dyn Backend>> {
    None
}

/// Starting a [`Trainer`] on a backend chosen by kind. (An inherent impl outside `train`, so that
/// `train` itself imports no backend.)
impl Trainer {
    /// Fresh weights from `cfg.seed` on the chosen backend.
    pub fn from_scratch(
        task: TaskSpec,
        model: &ModelConfig,
        train: TrainConfig,
        kind: BackendKind,
    ) -> Result<Self> {
        check_compatible(&task, model)?;
        let w = Weights::init(model)?;
        let backend = make_backend(kind, &w, &train, &task)?;
        Self::new(task, train, backend)
    }

    /// Continues a run from saved weights at step `step` (the data stream and the LR
    /// schedule carry on from there). With the optimiser state of that step the run goes on
    /// exactly as if it had never stopped; without it AdamW starts again from zero moments.
    pub fn resume(
        task: TaskSpec,
        w: &Weights,
        train: TrainConfig,
        kind: BackendKind,
        step: u64,
        opt: Option<&OptimizerState>,
    ) -> Result<Self> {
        check_compatible(&task, &w.cfg)?;
        let mut backend = make_backend(kind, w, &train, &task)?;
        if let Some(s) = opt {
            backend.set_optimizer_state(s)?;
        }
        let mut t = Self::new(task, train, backend)?;
        t.step = step;
        Ok(t)
    }
}
