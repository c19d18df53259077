//! The circuit timeline: weight snapshots taken during training, kept in a bounded store,
//! and the curves of per-head scores over them (OV copying, diagonal fraction, attention
//! to the answer), drawn under the loss curve so that phase changes line up.
//!
//! The store keeps snapshots on a grid: steps that are multiples of `every`. When it is
//! full, `every` doubles and the snapshots off the new grid are dropped, so the kept steps
//! stay evenly spaced (0, every, 2·every, …) at every moment and memory stays bounded. One
//! off-grid snapshot may sit at the end (the final weights of a run); a newer snapshot
//! replaces it; the newest snapshot is always kept (as that tail when thinning takes it off
//! the grid). The page's worker and the page's store run the same rule.

use super::cache::{run_with_hooks, ActivationCache, HookSet};
use super::circuits::{copying_scores, full_ov, Embed};
use super::process::process_weights;
use super::scores::attention_mass;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use serde::Serialize;

/// One snapshot: the step (optimiser steps taken) and a payload (the flat weights in the
/// parameter table's order, for the page's store; nothing for the worker's schedule).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot<T> {
    pub step: u64,
    pub data: T,
    /// true for an off-grid final snapshot
    pub tail: bool,
}

/// A bounded, evenly thinned list of snapshots (see the module doc).
#[derive(Clone, Debug)]
pub struct SnapshotStore<T> {
    capacity: usize,
    every: u64,
    snaps: Vec<Snapshot<T>>,
}

impl<T> SnapshotStore<T> {
    /// At most `capacity` (≥ 2) snapshots, first every `every` (≥ 1) steps.
    pub fn new(capacity: usize, every: u64) -> Result<Self> {
        if capacity < 2 {
            return Err(Error::config(
                "snapshot_capacity",
                format!("{capacity} is too small (at least 2)"),
            ));
        }
        if every == 0 {
            return Err(Error::config("snapshot_every", "must be at least 1 step"));
        }
        Ok(SnapshotStore {
            capacity,
            every,
            snaps: Vec::new(),
        })
    }

    /// The current grid spacing.
    pub fn every(&self) -> u64 {
        self.every
    }

    /// Whether a snapshot at `step` would be kept on the grid (and is newer than the last).
    pub fn wants(&self, step: u64) -> bool {
        step.is_multiple_of(self.every)
            && self
                .snaps
                .iter()
                .rev()
                .find(|s| !s.tail)
                .is_none_or(|s| step > s.step)
    }

    /// Adds a snapshot. On the grid it is kept (thinning the store if full); off the grid
    /// it is kept only with `tail` (the final weights of a run), replacing an earlier tail.
    /// Returns whether it was kept. Steps must increase.
    pub fn push(&mut self, step: u64, data: T, tail: bool) -> bool {
        let on_grid = step.is_multiple_of(self.every);
        if self.snaps.last().is_some_and(|s| step <= s.step) || (!on_grid && !tail) {
            return false;
        }
        if self.snaps.last().is_some_and(|s| s.tail) {
            self.snaps.pop();
        }
        self.snaps.push(Snapshot {
            step,
            data,
            tail: !on_grid,
        });
        while self.snaps.len() > self.capacity {
            self.every *= 2;
            let every = self.every;
            // the newest stays (as the tail when it is off the new grid)
            let newest = self.snaps.pop().map(|mut s| {
                s.tail = !s.step.is_multiple_of(every);
                s
            });
            self.snaps.retain(|s| s.step.is_multiple_of(every));
            self.snaps.extend(newest);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.snaps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.snaps.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Snapshot<T>> {
        self.snaps.get(i)
    }

    /// The kept steps, ascending.
    pub fn steps(&self) -> Vec<u64> {
        self.snaps.iter().map(|s| s.step).collect()
    }

    /// The newest snapshot at or before `step`.
    pub fn at_or_before(&self, step: u64) -> Option<&Snapshot<T>> {
        self.snaps.iter().rev().find(|s| s.step <= step)
    }
}

/// A capacity that keeps `capacity` snapshots of `bytes_each` within `budget_bytes`
/// (at least 2).
pub fn capacity_for(bytes_each: usize, budget_bytes: usize, capacity: usize) -> usize {
    (budget_bytes / bytes_each.max(1)).clamp(2, capacity.max(2))
}

/// Snapshot memory budget of a run: 64 MiB of weights.
pub const SNAPSHOT_BUDGET_BYTES: usize = 64 << 20;
/// Most snapshots of a run.
pub const MAX_SNAPSHOTS: usize = 64;

/// (capacity, first spacing) for a run of `total_steps` of a model with `n_params` f32
/// parameters: as many snapshots as fit [`SNAPSHOT_BUDGET_BYTES`] (at most
/// [`MAX_SNAPSHOTS`]), first spaced by the largest power of two ≤ total / capacity, so the
/// store thins at most once or twice over the run.
pub fn snapshot_plan(n_params: usize, total_steps: u64) -> (usize, u64) {
    let capacity = capacity_for(4 * n_params, SNAPSHOT_BUDGET_BYTES, MAX_SNAPSHOTS);
    let per = (total_steps / capacity as u64).max(1);
    (capacity, 1u64 << (63 - per.leading_zeros()))
}

/// One head's scores at one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeadPoint {
    pub layer: usize,
    pub head: usize,
    /// diagonal fraction of the full OV circuit on the task's value tokens
    pub ov_diagonal: f64,
    /// eigenvalue copying score of the same block
    pub ov_eigen: f64,
    /// mean attention on the answer position(s) at the predicted positions
    pub answer_mass: f64,
}

/// Every head's scores at one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelinePoint {
    pub step: u64,
    pub heads: Vec<HeadPoint>,
}

/// The scores of weights `w` (raw; LN models are processed here) at `step`, with
/// attention mass over `samples` fresh sequences of `task`.
pub fn timeline_point(
    w: &Weights,
    step: u64,
    task: &TaskSpec,
    samples: usize,
    seed: u64,
) -> Result<TimelinePoint> {
    let pw = process_weights(w)?;
    let backend = ReferenceBackend::for_inference(&pw)?;
    let samples = samples.max(1);
    let tokens = task.batch(seed, super::ANALYSIS_STEP, samples);
    let cache = run_with_hooks(
        &backend,
        &tokens,
        samples,
        HookSet::recording(|n| n.ends_with("hook_pattern")),
    )?;
    timeline_point_from(&pw, &cache, step, task)
}

/// [`timeline_point`] from processed weights and a cache (with the patterns) of task
/// sequences run with them.
pub fn timeline_point_from(
    pw: &Weights,
    cache: &ActivationCache,
    step: u64,
    task: &TaskSpec,
) -> Result<TimelinePoint> {
    let mut heads = Vec::new();
    for m in attention_mass(task, cache)? {
        let ov = full_ov(pw, m.layer, m.head, Embed::Token)?;
        let (ov_diagonal, ov_eigen) = copying_scores(&ov, task.copy_tokens())?;
        heads.push(HeadPoint {
            layer: m.layer,
            head: m.head,
            ov_diagonal,
            ov_eigen,
            answer_mass: m.answer,
        });
    }
    Ok(TimelinePoint { step, heads })
}
