//! toyformer: train and interpret tiny attention-only transformers, natively and in the
//! browser. Layout follows the architecture: tasks → model → backends (cpu, gpu) → train
//! → interp → wasm.
pub mod compare;
pub mod error;
pub mod io;
pub mod model;
pub mod notebook;
pub mod tasks;

pub use error::{Error, Result};
pub mod cpu;
pub mod gpu;
pub mod interp;
pub mod share;
pub mod sweep;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
