//! How the copy circuit forms during training: the run is trained step by step and, every
//! `every` steps, measured on fixed held-out sequences — algorithm loss and accuracy, and per
//! head the OV copying scores, the attention on the answer positions and how much of it the
//! pos·pos QK term alone would give — so the phase change can be read off in steps.

use serde::Serialize;
use toyformer::backend::BackendKind;
use toyformer::backends::make_backend;
use toyformer::interp::process::process_weights;
use toyformer::interp::timeline::timeline_point;
use toyformer::interp::ANALYSIS_STEP;
use toyformer::model::ModelConfig;
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::eval::evaluate_split;
use toyformer::train::{TrainConfig, Trainer};
use toyformer::Result;

/// One measurement: the model after `step` optimiser steps.
#[derive(Clone, Debug, Serialize)]
pub struct FormationPoint {
    pub step: u64,
    /// mean training-batch loss over the steps since the previous point
    pub train_loss: f64,
    pub algo_loss: f64,
    pub algo_acc: f64,
    pub heads: Vec<FormationHead>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FormationHead {
    pub layer: usize,
    pub head: usize,
    pub ov_diagonal: f64,
    pub ov_eigen: f64,
    /// attention on the positions holding the answer, at copy positions
    pub answer_mass: f64,
    /// the same with only the pos·pos term of the scores
    pub pos_only_answer_mass: f64,
    /// attention on the first term's copy of the answer
    pub first_term_mass: f64,
}

/// Trains `tc.steps` steps and measures at step 0 and every `every` steps (and at the end).
pub fn formation(
    task: &TaskSpec,
    model: &ModelConfig,
    tc: &TrainConfig,
    every: u64,
    samples: usize,
) -> Result<Vec<FormationPoint>> {
    let every = every.max(1);
    let mut tr = Trainer::from_scratch(task.clone(), model, tc.clone(), BackendKind::Cpu)?;
    let probe = task.batch_split(tc.seed, ANALYSIS_STEP, samples, Split::HeldOut);
    let mut points = vec![measure(&mut tr, task, tc, &probe, samples, f64::NAN)?];
    let mut since = Vec::new();
    while !tr.done() {
        since.push(tr.step()?.loss as f64);
        if tr.step % every == 0 || tr.done() {
            let mean = since.iter().sum::<f64>() / since.len() as f64;
            since.clear();
            points.push(measure(&mut tr, task, tc, &probe, samples, mean)?);
        }
    }
    Ok(points)
}

fn measure(
    tr: &mut Trainer,
    task: &TaskSpec,
    tc: &TrainConfig,
    probe: &[u32],
    samples: usize,
    train_loss: f64,
) -> Result<FormationPoint> {
    let w = tr.backend.weights()?;
    let mut eval_backend = make_backend(BackendKind::Cpu, &w, &TrainConfig::default(), task)?;
    let ev = evaluate_split(
        eval_backend.as_mut(),
        task,
        tc.seed,
        samples,
        samples,
        Split::HeldOut,
    )?;
    let tl = timeline_point(&w, tr.step, task, samples, tc.seed)?;
    let study = super::attention::attention_study(&process_weights(&w)?, task, probe, samples)?;
    let heads = tl
        .heads
        .iter()
        .zip(&study)
        .map(|(h, s)| FormationHead {
            layer: h.layer,
            head: h.head,
            ov_diagonal: h.ov_diagonal,
            ov_eigen: h.ov_eigen,
            answer_mass: s.mass[0] + s.mass[1] + s.mass[2],
            pos_only_answer_mass: s.pos_only_answer_mass,
            first_term_mass: s.mass[0],
        })
        .collect();
    Ok(FormationPoint {
        step: tr.step,
        train_loss,
        algo_loss: ev.algo_loss,
        algo_acc: ev.algo_acc,
        heads,
    })
}

/// The first measured step where `f` reaches `at`, if any.
pub fn first_step(
    points: &[FormationPoint],
    at: f64,
    f: impl Fn(&FormationPoint) -> f64,
) -> Option<u64> {
    points.iter().find(|p| f(p) >= at).map(|p| p.step)
}
