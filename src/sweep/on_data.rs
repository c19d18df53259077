//! A custom task's sweep on a data file (issue 14): the grid's runs of the `custom` task are
//! re-made on the file — its text, name, format and separator — with each run's own split
//! parameters (`frac_train`, `split_seed`, `n_ctx`) kept, and each run's model sized from the
//! data (n_ctx, d_vocab, d_vocab_out), as training the file on its own would. The CLI
//! (`examples/sweep --data FILE`) and the page's Sweep cell (`sweep_on_data`) both use it.

use super::RunSpec;
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// The keys of a custom task's JSON that come from the data file, not from the grid.
pub const DATA_KEYS: [&str; 5] = ["data", "name", "format", "separator", "hash"];

/// Puts the data `patch` (a JSON object with `data` and optionally `name`, `format`,
/// `separator`, `hash` — [`DATA_KEYS`]) into every run, whose task must be `custom`; a
/// missing `hash` is the data's own. Errors name the first run the data does not fit.
pub fn runs_on_data(runs: &mut [RunSpec], patch: &Map<String, Value>) -> Result<()> {
    if let Some(k) = patch.keys().find(|k| !DATA_KEYS.contains(&k.as_str())) {
        return Err(Error::config(
            "data",
            format!("{k:?} is not one of the data's keys {DATA_KEYS:?}"),
        ));
    }
    if !patch.get("data").is_some_and(Value::is_string) {
        return Err(Error::config(
            "data",
            "the data's text (a string) is missing",
        ));
    }
    for r in runs.iter_mut() {
        let mut json = serde_json::to_value(&r.task)?;
        if json["task"] != "custom" {
            return Err(Error::config(
                "data",
                format!(
                    "a data file is for grids whose task is custom; run {} is {}",
                    r.index + 1,
                    json["task"]
                ),
            ));
        }
        if let Some(obj) = json.as_object_mut() {
            obj.remove("hash"); // the grid's default data's
            obj.extend(patch.clone());
        }
        r.task = serde_json::from_value(json).map_err(|e| Error::config("task", e.to_string()))?;
        r.task.validate()?;
        r.model.n_ctx = r.task.seq_len();
        r.model.d_vocab = r.task.d_vocab();
        r.model.d_vocab_out = r.task.d_vocab_out();
        crate::train::check_compatible(&r.task, &r.model)?;
    }
    Ok(())
}
