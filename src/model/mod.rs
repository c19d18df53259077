//! The model family: config (TL names), parameter table, flat weights.
pub mod config;
pub mod params;

pub use config::{ActFn, ModelConfig, Norm, Positions};
pub use params::{ParamInfo, ParamKind, ParamTable, Weights};
