//! Sweeps: a grid of settings ([`grid`]) expanded into runs, each run trained and measured
//! ([`run`]), and the runs of each config summarised over seeds ([`aggregate`]).
//!
//! The command-line runner is `cargo run --release --example sweep -- --grid FILE.json`;
//! it runs several runs at once, each on its own one-thread pool, so every run's numbers
//! are the same whatever the number of threads.

pub mod aggregate;
pub mod grid;
pub mod run;

pub use aggregate::{aggregate, ConfigSummary, Stat};
pub use grid::{Grid, RunSpec, Settings};
pub use run::{run_one, RunResult};
