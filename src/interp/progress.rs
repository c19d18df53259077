//! Progress measures of grokking over training (Nanda et al. 2023), for the modular tasks,
//! one point per timeline snapshot:
//!
//! - **train / test loss**: mean cross-entropy of the logits at `=` over the training split
//!   and over the held-out pairs;
//! - **restricted loss**: over all p² pairs, of the logits projected on the key directions
//!   cos(w_k r), sin(w_k r) of the key frequencies ([`super::fourier_grid`]): low once the
//!   Fourier circuit alone computes the answer;
//! - **excluded loss**: over the training split, of the logits with those directions
//!   removed: it rises as the model stops memorising and relies on the circuit;
//! - **Gini** of the embedding's norms over the frequencies k ≥ 1 ([`super::fourier::gini`]):
//!   how sparse the embedding is in the Fourier basis;
//! - **sum of squared weights** Σ θ² over every parameter: what weight decay shrinks in
//!   the cleanup phase.
//!
//! The key frequencies are fixed over the curve: by default those of the last snapshot
//! ([`super::fourier::key_frequencies`] on its embedding), as the paper uses the final
//! model's.

use super::fourier::{
    embed_in_basis, gini, key_frequencies, modular_task, train_rows, FourierBasis,
};
use super::fourier_grid::{key_projection, mean_loss, modular_grid, residue_logits};
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::tasks::TaskSpec;
use serde::Serialize;

/// The measures at one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgressPoint {
    pub step: u64,
    pub train_loss: f64,
    pub test_loss: f64,
    pub restricted_loss: f64,
    pub excluded_loss: f64,
    pub gini: f64,
    pub sum_sq_weights: f64,
}

/// The key frequencies of `w`'s embedding for the modular `task`.
pub fn key_freqs_of(w: &Weights, task: &TaskSpec) -> Result<Vec<usize>> {
    let (p, _) = modular_task(task)?;
    let basis = FourierBasis::new(p)?;
    Ok(key_frequencies(
        &basis.freq_norms_sq(&embed_in_basis(w, &basis)?),
    ))
}

/// The measures of weights `w` at `step`, with the key frequencies `key`.
pub fn progress_point(
    w: &Weights,
    step: u64,
    task: &TaskSpec,
    key: &[usize],
) -> Result<ProgressPoint> {
    let (p, _) = modular_task(task)?;
    if let Some(&k) = key.iter().find(|&&k| k == 0 || k > p / 2) {
        return Err(Error::config(
            "key_freqs",
            format!("frequency {k} is not one of 1..={}", p / 2),
        ));
    }
    let basis = FourierBasis::new(p)?;
    let norms: Vec<f64> = basis
        .freq_norms_sq(&embed_in_basis(w, &basis)?)
        .iter()
        .skip(1)
        .map(|x| x.sqrt())
        .collect();
    let grid = modular_grid(w, task)?;
    let proj = key_projection(&grid);
    let logits = residue_logits(&grid);
    let train = train_rows(task);
    let mut in_train = vec![false; p * p];
    train.iter().for_each(|&r| in_train[r] = true);
    let test: Vec<usize> = (0..p * p).filter(|&r| !in_train[r]).collect();
    let all: Vec<usize> = (0..p * p).collect();
    Ok(ProgressPoint {
        step,
        train_loss: mean_loss(&grid, &logits, &train),
        test_loss: mean_loss(&grid, &logits, &test),
        restricted_loss: mean_loss(&grid, &proj.restricted(&grid, key), &all),
        excluded_loss: mean_loss(&grid, &proj.excluded(&grid, key), &train),
        gini: gini(&norms),
        sum_sq_weights: w.data.iter().map(|&x| x as f64 * x as f64).sum(),
    })
}

/// The measures of every snapshot `(step, weights)` in order, with the key frequencies
/// `key` or, when None, those of the last snapshot.
pub fn progress_curve(
    snapshots: &[(u64, Weights)],
    task: &TaskSpec,
    key: Option<&[usize]>,
) -> Result<Vec<ProgressPoint>> {
    let key = match (key, snapshots.last()) {
        (Some(k), _) => k.to_vec(),
        (None, Some((_, w))) => key_freqs_of(w, task)?,
        (None, None) => return Ok(Vec::new()),
    };
    snapshots
        .iter()
        .map(|(step, w)| progress_point(w, *step, task, &key))
        .collect()
}
