//! toyformer: train and interpret tiny attention-only transformers, natively and in the
//! browser. Layers, each using only those before it: tasks → model → backend (the contract)
//! → backends (cpu, gpu, reference) → train → backends.rs (choosing one) → interp, share,
//! sweep → wasm. `tests/native/main.rs` checks that `src/` has no import cycle.
pub mod compare;
pub mod error;
pub mod io;
pub mod model;
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
