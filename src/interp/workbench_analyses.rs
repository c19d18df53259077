//! The analyses of issue 16 on a [`Workbench`]'s snapshots, for the page: the Fourier
//! analysis, head-type scores, neurons, the task's hypothesis and the progress measures
//! over training. Each reads the raw weights of the selected snapshot (or of every kept
//! snapshot for the curves).

use super::fourier::{fourier_report, FourierReport};
use super::head_types::{self as ht, HeadTypeScore, InductionPath};
use super::hypotheses::{hypothesis, Hypothesis};
use super::intervene::{outcome, Ablation, Outcome};
use super::neurons::{self as nr, NeuronSummary};
use super::progress::{progress_curve, ProgressPoint};
use super::workbench::Workbench;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::ReferenceBackend;
use serde::Serialize;

/// Sequences the head-type scores average over.
pub const HEAD_TYPE_BATCH: usize = 32;

/// Head-type scores and induction paths of the selected snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct HeadTypesView {
    pub step: u64,
    pub scores: Vec<HeadTypeScore>,
    pub paths: Vec<InductionPath>,
}

/// The neurons of one MLP layer of the selected snapshot, ranked.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronsView {
    pub step: u64,
    pub layer: usize,
    /// operands per side of the a × b grid
    pub n: usize,
    pub ranked: Vec<NeuronSummary>,
}

impl Workbench {
    /// The raw weights of the selected snapshot.
    fn selected_weights(&self) -> Result<(u64, Weights)> {
        let step = self.selected().ok_or_else(|| {
            Error::config(
                "step",
                "no snapshot selected yet (train first, or load a model)",
            )
        })?;
        self.weights_at(step)
    }

    /// The Fourier analysis (modular tasks).
    pub fn fourier(&self) -> Result<FourierReport> {
        fourier_report(&self.selected_weights()?.1, &self.task)
    }

    /// Head-type scores and, for 2+ layers, the induction K-composition paths.
    pub fn head_types(&self) -> Result<HeadTypesView> {
        let (step, w) = self.selected_weights()?;
        let ids = self.task.value_tokens();
        let prefix = ht::task_prefix(&self.task);
        Ok(HeadTypesView {
            step,
            scores: ht::head_type_scores(&w, ids, prefix, HEAD_TYPE_BATCH, self.opts.seed)?,
            paths: self.induction_paths()?,
        })
    }

    /// The induction K-composition paths (layer-0 head → layer-1 head) of the selected
    /// snapshot, from the weights alone: what the QK cell shows beside a layer-1 head's circuits.
    pub fn induction_paths(&self) -> Result<Vec<InductionPath>> {
        let (_, w) = self.selected_weights()?;
        ht::induction_paths(
            &super::process::process_weights(&w)?,
            self.task.value_tokens(),
        )
    }

    /// The neurons of MLP `layer` over the a × b grid (two-operand tasks), ranked, with
    /// `top` top inputs each.
    pub fn neurons(&self, layer: usize, top: usize) -> Result<NeuronsView> {
        let (step, w) = self.selected_weights()?;
        let grid = nr::neuron_grid(&w, &self.task, layer)?;
        let de = nr::direct_effects(&super::process::process_weights(&w)?, layer)?;
        Ok(NeuronsView {
            step,
            layer,
            n: grid.n,
            ranked: nr::rank_neurons(&grid, &de, top)?,
        })
    }

    /// One neuron's activations over the a × b grid, (n, n) row a.
    pub fn neuron_heatmap(&self, layer: usize, neuron: usize) -> Result<super::Mat> {
        let grid = nr::neuron_grid(&self.selected_weights()?.1, &self.task, layer)?;
        if neuron >= grid.acts.cols {
            return Err(Error::config(
                "neuron",
                format!(
                    "{neuron} is out of range (the layer has {} neurons)",
                    grid.acts.cols
                ),
            ));
        }
        super::Mat::new(
            grid.n,
            grid.n,
            (0..grid.n * grid.n)
                .map(|r| grid.acts.at(r, neuron))
                .collect(),
        )
    }

    /// Loss and accuracy on the fresh samples with `neurons` of MLP `layer` ablated.
    pub fn ablate_neurons(
        &self,
        layer: usize,
        neurons: &[usize],
        kind: Ablation,
    ) -> Result<Outcome> {
        let (_, w) = self.selected_weights()?;
        let backend = ReferenceBackend::for_inference(&w)?;
        let n = self.opts.samples;
        let tokens = self.task.batch(self.opts.seed, super::ANALYSIS_STEP, n);
        let cache = nr::run_neurons_ablated(&backend, &tokens, n, layer, neurons, kind)?;
        Ok(outcome(&self.task, &cache))
    }

    /// The task's first hypothesis with its evidence.
    pub fn hypothesis(&mut self) -> Result<Hypothesis> {
        let (_, w) = self.selected_weights()?;
        let rep = self.report()?.clone();
        let pw = super::process::process_weights(&w)?;
        let n = self.opts.samples;
        let tokens = self.task.batch(self.opts.seed, super::ANALYSIS_STEP, n);
        let cache = super::run_with_cache(&ReferenceBackend::for_inference(&pw)?, &tokens, n)?;
        hypothesis(&w, &self.task, &rep, &cache)
    }

    /// The raw weights of at most `max` kept snapshots (0: all), evenly spaced over the
    /// kept ones, first and last included, by step.
    fn some_snapshots(&self, max: usize) -> Result<Vec<(u64, Weights)>> {
        subsample(&self.steps(), max)
            .into_iter()
            .map(|s| self.weights_at(s))
            .collect()
    }

    /// The progress measures of at most `max` kept snapshots (0: all; modular tasks), with
    /// the key frequencies of the last.
    pub fn progress(&self, max: usize) -> Result<Vec<ProgressPoint>> {
        progress_curve(&self.some_snapshots(max)?, &self.task, None)
    }

    /// The head-type scores of at most `max` kept snapshots (0: all).
    pub fn head_type_curve(&self, max: usize) -> Result<Vec<(u64, Vec<HeadTypeScore>)>> {
        let prefix = ht::task_prefix(&self.task);
        ht::head_type_curve(
            &self.some_snapshots(max)?,
            self.task.value_tokens(),
            prefix,
            HEAD_TYPE_BATCH,
            self.opts.seed,
        )
    }
}

/// At most `max` of `steps` (0: all), at the indices round(i·(n−1)/(max−1)): evenly spaced,
/// the first and the last included.
pub fn subsample(steps: &[u64], max: usize) -> Vec<u64> {
    let n = steps.len();
    if max == 0 || n <= max {
        return steps.to_vec();
    }
    if max == 1 {
        return vec![steps[n - 1]];
    }
    let mut out: Vec<u64> = (0..max)
        .map(|i| steps[(i * (n - 1) + (max - 1) / 2) / (max - 1)])
        .collect();
    out.dedup();
    out
}
