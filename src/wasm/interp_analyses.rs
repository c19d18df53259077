//! The bindings of issue 16's analyses on an [`Interp`] (see `interp::workbench_analyses`
//! for the fields): Fourier analysis, head types, neurons, neuron ablation, the task's
//! hypothesis, and the progress and head-type curves over the kept snapshots.

use super::interp::Interp;
use super::{js_err, parse, to_js};
use crate::error::Error;
use crate::interp::intervene::Ablation;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl Interp {
    /// The Fourier analysis of the selected snapshot (mod-add, mod-sub).
    pub fn fourier(&self) -> Result<JsValue, JsError> {
        to_js(&self.wb.fourier().map_err(js_err)?)
    }

    /// Head-type scores and induction K-composition paths of the selected snapshot.
    pub fn head_types(&self) -> Result<JsValue, JsError> {
        to_js(&self.wb.head_types().map_err(js_err)?)
    }

    /// The induction K-composition paths of the selected snapshot (weights only).
    pub fn induction_paths(&self) -> Result<JsValue, JsError> {
        to_js(&self.wb.induction_paths().map_err(js_err)?)
    }

    /// The neurons of MLP `layer`, ranked, with `top` top inputs each.
    pub fn neurons(&self, layer: usize, top: usize) -> Result<JsValue, JsError> {
        to_js(&self.wb.neurons(layer, top).map_err(js_err)?)
    }

    /// One neuron's activations over the a × b grid.
    pub fn neuron_heatmap(&self, layer: usize, neuron: usize) -> Result<JsValue, JsError> {
        to_js(&self.wb.neuron_heatmap(layer, neuron).map_err(js_err)?)
    }

    /// Loss and accuracy with the neurons (JSON list of indices) of MLP `layer` ablated;
    /// kind "zero" or "mean".
    pub fn ablate_neurons(
        &self,
        layer: usize,
        neurons_json: &str,
        kind: &str,
    ) -> Result<JsValue, JsError> {
        let kind = match kind {
            "zero" => Ablation::Zero,
            "mean" => Ablation::Mean,
            _ => {
                return Err(js_err(Error::config(
                    "ablation",
                    format!("{kind:?} is not zero or mean"),
                )))
            }
        };
        let neurons: Vec<usize> = parse("neurons", neurons_json)?;
        to_js(
            &self
                .wb
                .ablate_neurons(layer, &neurons, kind)
                .map_err(js_err)?,
        )
    }

    /// The task's first hypothesis with the numbers for and against it.
    pub fn hypothesis(&mut self) -> Result<JsValue, JsError> {
        to_js(&self.wb.hypothesis().map_err(js_err)?)
    }

    /// Progress measures of at most `max` kept snapshots, evenly spaced (0: all; modular
    /// tasks).
    pub fn progress(&self, max: usize) -> Result<JsValue, JsError> {
        to_js(&self.wb.progress(max).map_err(js_err)?)
    }

    /// Head-type scores of at most `max` kept snapshots, evenly spaced (0: all),
    /// `[[step, scores], …]`.
    pub fn head_type_curve(&self, max: usize) -> Result<JsValue, JsError> {
        to_js(&self.wb.head_type_curve(max).map_err(js_err)?)
    }
}
