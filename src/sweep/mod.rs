//! Sweeps: a grid of settings ([`grid`]) expanded into runs, each run trained and measured
//! ([`run`]), and the runs of each config summarised over seeds ([`aggregate`]). Runs have
//! stable ids and split into shards ([`ids`]) so another engine (Ray: `pkg-config/ray_sweep.py`)
//! can run them one by one; their JSON-lines results are read back by [`results`].
//!
//! The command-line runner is `cargo run --release --example sweep -- --grid FILE.json`;
//! it runs several runs at once, each on its own one-thread pool, so every run's numbers
//! are the same whatever the number of threads.

pub mod aggregate;
pub mod grid;
pub mod ids;
pub mod link;
pub mod on_data;
pub mod results;
pub mod run;

/// Serde for an f64 that may be NaN or infinite: written as `null` (JSON has neither), read back from
/// `null` as NaN, so results survive a round trip through JSON (`--resume`, the page). Every
/// f64 of a run result uses it.
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

pub use aggregate::{aggregate, ConfigSummary, Stat};
pub use grid::{Grid, RunSpec, Settings};
pub use ids::{find_run, list_entry, run_id, Shard};
pub use link::page_fragment;
pub use on_data::runs_on_data;
pub use results::{read_results, ReadBack};
pub use run::{run_one, RunResult};
