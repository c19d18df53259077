//! toyformer: train and interpret tiny attention-only transformers, natively and in the
//! browser. Layers, each using only those before it: rng → model → tasks, io → backend (the
//! contract) → the backends cpu, gpu, reference → train (over the trait) → backends.rs (builds
//! one by kind) → interp, share, sweep → wasm (one exception: gpu still takes the run's
//! `train::TrainConfig`). `tests/native/module_graph.rs` fails on any import cycle between
//! these modules.
pub mod compare;
pub mod error;
pub mod io;
pub mod model;
pub mod notebook;
pub mod rng;
pub mod tasks;

pub use error::{Error, Result};
pub mod backend;
pub mod backends;
pub mod cpu;
pub mod gpu;
pub mod interp;
pub mod reference;
pub mod share;
pub mod sweep;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
