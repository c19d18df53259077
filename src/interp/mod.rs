//! Interpretability analyses read from weights (and, through the CPU backend's hooks,
//! from activations). Names and definitions follow TransformerLens.
pub mod circuits;
pub mod mat;

pub use mat::Mat;
