//! Algorithmic tasks: vocabularies, deterministic batches, loss masks, loss floors.
pub mod rng;
