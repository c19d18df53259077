//! A training run in the page's worker: the [`Session`] object, all of it (training, sharing
//! and checkpoints, snapshots for interpretability).

use super::share::{optional, optional_task};
use super::task::shown_samples;
use super::{js_err, parse, parse_task, to_js, MAX_EVAL};
use crate::backend::{Backend, BackendKind, OptimizerState};
use crate::error::Error;
use crate::model::ModelConfig;
use crate::share::{self, MAX_LINK_WEIGHTS_CHARS, MAX_LINK_WEIGHTS_VALUES};
use crate::tasks::{Split, TaskSpec};
use crate::train::eval;
use crate::train::{TrainConfig, Trainer};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[derive(Serialize)]
struct Completion {
    tokens: Vec<String>,
    text: String,
    prompt_len: usize,
}

/// A training run on the CPU backend: the task, the model and the optimiser state.
#[wasm_bindgen]
pub struct Session {
    pub(super) trainer: Trainer,
    /// Shared with the sharded CPU engine: the page's pool workers' gradients (see `pool`).
    pub(super) pool: crate::cpu::shard::Inbox,
}

#[wasm_bindgen]
impl Session {
    /// `new Session(task_json, model_json, train_json)`; throws the first validation error
    /// (task, model, train config, or a model that does not fit the task).
    #[wasm_bindgen(constructor)]
    pub fn new(task_json: &str, model_json: &str, train_json: &str) -> Result<Session, JsError> {
        let task = parse_task(task_json)?;
        let model: ModelConfig = parse("model", model_json)?;
        let train: TrainConfig = parse("train", train_json)?;
        let trainer =
            Trainer::from_scratch(task, &model, train, BackendKind::Cpu).map_err(js_err)?;
        Session::wrap(trainer)
    }

    /// Steps completed so far.
    #[wasm_bindgen(getter)]
    pub fn steps_done(&self) -> f64 {
        self.trainer.step as f64
    }

    /// Continues this run from `weights` (every parameter in parameter-table order, as
    /// `GpuSession.weights()` gives them) after `steps_done` steps, e.g. when the GPU failed mid-run.
    /// The optimiser state starts afresh: the Adam moments are not carried over.
    pub fn resume_from(&mut self, weights: Vec<f32>, steps_done: f64) -> Result<(), JsError> {
        let t = &mut self.trainer;
        let mut w = t.backend.weights().map_err(js_err)?;
        if weights.len() != w.data.len() {
            return Err(js_err(crate::Error::Weights(format!(
                "{} values given, the model has {}",
                weights.len(),
                w.data.len()
            ))));
        }
        if !(steps_done.is_finite()
            && steps_done >= 0.0
            && steps_done <= t.train.steps as f64
            && steps_done.fract() == 0.0)
        {
            return Err(js_err(crate::Error::config(
                "steps_done",
                format!(
                    "{steps_done} is not a whole number in 0..={}",
                    t.train.steps
                ),
            )));
        }
        w.data = weights;
        t.backend.set_weights(&w).map_err(js_err)?;
        t.step = steps_done as u64;
        Ok(())
    }

    /// Whether the configured number of steps has been run.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.trainer.done()
    }

    /// The backend's name ("cpu").
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.trainer.backend.name()
    }

    /// Runs up to `n` steps (never past the configured total); returns the metrics of
    /// each: `[{step, loss, token_acc, seq_acc, algo_acc, grad_norm, lr}]`.
    pub fn step(&mut self, n: u32) -> Result<JsValue, JsError> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if self.trainer.done() {
                break;
            }
            out.push(self.trainer.step().map_err(js_err)?);
        }
        to_js(&out)
    }

    /// Loss and accuracies on `samples` fresh sequences: `{samples, loss, algo_loss, token_acc,
    /// seq_acc, algo_acc, per_pos_acc, positions, train?}` (see [`evaluate_with`]).
    pub fn evaluate(&mut self, samples: usize) -> Result<JsValue, JsError> {
        let (b, run) = self.trainer.parts();
        evaluate_with(b, &run.task, run.train.seed, samples)
    }

    /// A finite dataset's train / test / full loss and accuracy on at most `max_items`
    /// items of each side, at the current step: `{step, train, test, full}`, or `null` for a
    /// sampled task (the Train cell's train and test curves).
    pub fn split_eval(&mut self, max_items: usize) -> Result<JsValue, JsError> {
        let step = self.trainer.step;
        let (b, run) = self.trainer.parts();
        split_eval_with(b, &run.task, step, max_items)
    }

    /// Greedy completion of typed text (see `TaskSpec::parse_prompt` for the formats):
    /// `{tokens: [labels], text, prompt_len}`.
    pub fn complete(&mut self, text: &str) -> Result<JsValue, JsError> {
        let (b, run) = self.trainer.parts();
        complete_with(b, &run.task, text)
    }

    /// `k` (≤ 64) fresh sequences with the model's teacher-forced greedy guess at every
    /// scored position: `[{tokens, predicted, model, correct}]`.
    pub fn samples(&mut self, k: usize) -> Result<JsValue, JsError> {
        let (b, run) = self.trainer.parts();
        samples_with(b, &run.task, run.train.seed, k)
    }

    /// The current weights as a `.safetensors` file (TransformerLens keys; the config and
    /// the task in the metadata).
    pub fn export_safetensors(&self) -> Result<Vec<u8>, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        export_with(&w, &self.trainer.task, self.trainer.step)
    }

    // ---- sharing and keeping: links, files, checkpoints ----

    /// `Session.from_weights(bytes, config_json, selected_task_json, train_json)`: a session
    /// on imported weights (see [`import_model_info`]), at the step its metadata gives (0
    /// for a TransformerLens file), ready to evaluate or to train for `train.steps` in all.
    pub fn from_weights(
        bytes: &[u8],
        config_json: &str,
        selected_task_json: &str,
        train_json: &str,
    ) -> Result<Session, JsError> {
        let selected = optional_task(selected_task_json)?;
        let train: TrainConfig = parse("train", train_json)?;
        let m =
            share::import_model(bytes, optional(config_json), selected.as_ref()).map_err(js_err)?;
        let trainer = Trainer::resume(m.task, &m.weights, train, BackendKind::Cpu, m.step, None)
            .map_err(js_err)?;
        Session::wrap(trainer)
    }

    /// `Session.from_link(text, task_json, model_json, train_json)`: a session on the
    /// weights of a link's `w=` value, at the step it records.
    pub fn from_link(
        text: &str,
        task_json: &str,
        model_json: &str,
        train_json: &str,
    ) -> Result<Session, JsError> {
        let task = parse_task(task_json)?;
        let cfg: ModelConfig = parse("model", model_json)?;
        let train: TrainConfig = parse("train", train_json)?;
        let (w, step) = share::decode_weights_link(text, &cfg).map_err(js_err)?;
        let trainer =
            Trainer::resume(task, &w, train, BackendKind::Cpu, step, None).map_err(js_err)?;
        Session::wrap(trainer)
    }

    /// The weights as a link's `w=` value: `{ok, text?, chars, limit, n_params, message?}`;
    /// `ok` is false (with a message) when they do not fit in a link.
    pub fn weights_link(&self) -> Result<JsValue, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        let n = w.data.len();
        let too_big = |chars: usize, est: &str| {
            Some(format!(
                "the model's {n} parameters need {est}{} KB in a link, over the {} KB limit: share the .safetensors file instead",
                chars.div_ceil(1024),
                MAX_LINK_WEIGHTS_CHARS / 1024
            ))
        };
        let out = if n > MAX_LINK_WEIGHTS_VALUES {
            let chars = n * 2 * 4 / 3;
            LinkWeights {
                ok: false,
                text: None,
                chars,
                limit: MAX_LINK_WEIGHTS_CHARS,
                n_params: n,
                message: too_big(chars, "about "),
            }
        } else {
            let text = share::encode_weights_link(&w, self.trainer.step).map_err(js_err)?;
            let chars = text.len();
            if share::fits_link(&text) {
                LinkWeights {
                    ok: true,
                    text: Some(text),
                    chars,
                    limit: MAX_LINK_WEIGHTS_CHARS,
                    n_params: n,
                    message: None,
                }
            } else {
                LinkWeights {
                    ok: false,
                    text: None,
                    chars,
                    limit: MAX_LINK_WEIGHTS_CHARS,
                    n_params: n,
                    message: too_big(chars, ""),
                }
            }
        };
        to_js(&out)
    }

    /// Compares the current weights with a link's `w=` value (as from a replayed run):
    /// `{values, differ, max_abs_diff, link_step}`; `differ` is 0 when every current value
    /// rounds to exactly the link's f16 value.
    pub fn compare_link(&self, text: &str) -> Result<JsValue, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        let (link, link_step) = share::decode_weights_link(text, &w.cfg).map_err(js_err)?;
        let mut differ = 0;
        let mut max_abs_diff = 0f32;
        for (&a, &b) in w.data.iter().zip(&link.data) {
            differ += (share::round_f16(a).to_bits() != b.to_bits()) as usize;
            max_abs_diff = max_abs_diff.max((a - b).abs());
        }
        to_js(&LinkComparison {
            values: w.data.len(),
            differ,
            max_abs_diff,
            link_step,
        })
    }

    /// A checkpoint for the page's run store: `{weights: Uint8Array (safetensors, as
    /// export_safetensors), step, adam_t, adam_m: Float32Array, adam_v: Float32Array}`.
    pub fn checkpoint(&self) -> Result<JsValue, JsError> {
        let weights = self.export_safetensors()?;
        let opt = self.trainer.backend.optimizer_state().map_err(js_err)?;
        let o = js_sys::Object::new();
        let set =
            |k: &str, v: JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), &v).map(|_| ());
        let res = (|| {
            set("weights", js_sys::Uint8Array::from(&weights[..]).into())?;
            set("step", JsValue::from_f64(self.trainer.step as f64))?;
            set("adam_t", JsValue::from_f64(opt.t as f64))?;
            set("adam_m", js_sys::Float32Array::from(&opt.m[..]).into())?;
            set("adam_v", js_sys::Float32Array::from(&opt.v[..]).into())?;
            // the running state of a loss-driven schedule (reduce_on_plateau), as JSON text
            set(
                "schedule",
                JsValue::from_str(
                    &serde_json::to_string(&self.trainer.schedule_state()).unwrap_or_default(),
                ),
            )
        })();
        res.map_err(|_| {
            js_err(Error::Backend(
                "building the checkpoint object failed".into(),
            ))
        })?;
        Ok(o.into())
    }

    /// Restores the optimiser state of a checkpoint (after `from_weights` on its weights),
    /// so that training continues exactly as if it had never stopped.
    pub fn set_optimizer_state(&mut self, t: f64, m: Vec<f32>, v: Vec<f32>) -> Result<(), JsError> {
        if !(t.is_finite() && t >= 0.0 && t.fract() == 0.0) {
            return Err(js_err(Error::Weights(format!(
                "optimiser step count {t} is not a whole number"
            ))));
        }
        self.trainer
            .backend
            .set_optimizer_state(&OptimizerState { t: t as u64, m, v })
            .map_err(js_err)
    }

    /// Restores the learning-rate schedule's running state of a checkpoint (its `schedule`
    /// JSON text), so a reduce_on_plateau run resumes at the rate it had reached.
    pub fn set_schedule_state(&mut self, json: &str) -> Result<(), JsError> {
        let s: crate::train::ScheduleState = parse("schedule state", json)?;
        self.trainer.set_schedule_state(&s).map_err(js_err)
    }

    /// `{task, model, train, step, backend}` of this session.
    pub fn info(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Info<'a> {
            task: &'a TaskSpec,
            model: ModelConfig,
            train: &'a TrainConfig,
            step: u64,
            backend: String,
        }
        let t = &self.trainer;
        let model = t.backend.weights().map_err(js_err)?.cfg;
        to_js(&Info {
            task: &t.task,
            model,
            train: &t.train,
            step: t.step,
            backend: t.backend.name(),
        })
    }

    // ---- snapshots for interpretability ----

    /// The current weights, flat in parameter-table order (a Float32Array), for snapshots.
    pub fn weights(&self) -> Result<Vec<f32>, JsError> {
        Ok(self.trainer.backend.weights().map_err(js_err)?.data)
    }
}

#[derive(Serialize)]
struct LinkWeights {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    chars: usize,
    limit: usize,
    n_params: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Serialize)]
struct LinkComparison {
    values: usize,
    /// Values whose f16 rounding differs from the link's value.
    differ: usize,
    /// Largest |current − link| over all values.
    max_abs_diff: f32,
    link_step: u64,
}

/// `Session::complete` on any backend (the GPU session evaluates on a CPU copy of its weights).
pub(crate) fn complete_with(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    text: &str,
) -> Result<JsValue, JsError> {
    let prompt = task.parse_prompt(text).map_err(js_err)?;
    let seq = eval::complete(backend, task, &prompt).map_err(js_err)?;
    let vocab = task.vocab();
    to_js(&Completion {
        tokens: seq.iter().map(|&x| vocab[x as usize].clone()).collect(),
        text: task.format_tokens(&seq),
        prompt_len: prompt.len(),
    })
}

/// `Session::samples` on any backend.
pub(crate) fn samples_with(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    seed: u64,
    k: usize,
) -> Result<JsValue, JsError> {
    let (tokens, mut shown) = shown_samples(task, seed, k);
    let len = task.seq_len();
    let b = shown.len();
    if b > 0 {
        let logits = backend.logits(&tokens, b).map_err(js_err)?; // (B, T, V)
        let v = logits.len() / (b * len);
        let vocab = task.output_vocab();
        for (i, s) in shown.iter_mut().enumerate() {
            let mut model = vec![None; len];
            let mut correct = vec![None; len];
            let targets = task.targets(&tokens[i * len..(i + 1) * len]);
            for (p, tg) in task.pred_positions().into_iter().zip(targets) {
                let row = &logits[(i * len + p) * v..(i * len + p + 1) * v];
                let guess = eval::argmax(row) as usize;
                let at = task.shown_at(p);
                model[at] = Some(
                    vocab
                        .get(guess)
                        .cloned()
                        .unwrap_or_else(|| format!("?{guess}")),
                );
                correct[at] = Some(guess as u32 == tg);
            }
            s.model = Some(model);
            s.correct = Some(correct);
        }
    }
    to_js(&shown)
}

/// The weights as a `.safetensors` file with the task and the step count in the metadata.
pub(crate) fn export_with(
    w: &crate::model::Weights,
    task: &TaskSpec,
    steps: u64,
) -> Result<Vec<u8>, JsError> {
    let task = serde_json::to_string(task).map_err(|e| js_err(e.into()))?;
    let meta = [
        ("toyformer_task".to_string(), task),
        ("toyformer_steps".to_string(), steps.to_string()),
    ];
    crate::io::save_safetensors(w, &meta).map_err(js_err)
}

/// Evaluation for the page: the report on fresh samples of the evaluation side of the task
/// (for permutations with a held-out split, only combinations training never draws), and,
/// when the task has such a split, `train`: the same report on fresh samples of the training
/// side, so the page can show whether the model generalises to unseen combinations.
pub(crate) fn evaluate_with(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    seed: u64,
    samples: usize,
) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Report {
        #[serde(flatten)]
        held_out: eval::EvalReport,
        #[serde(skip_serializing_if = "Option::is_none")]
        train: Option<eval::EvalReport>,
        /// A finite dataset's train, test and full-dataset figures, each side whole (up
        /// to [`MAX_FINITE_EVAL`] items).
        #[serde(skip_serializing_if = "Option::is_none")]
        finite: Option<eval::FiniteEval>,
    }
    let samples = samples.min(MAX_EVAL);
    let batch = samples.clamp(1, 256);
    let held_out = eval::evaluate_split(backend, task, seed, samples, batch, Split::HeldOut)
        .map_err(js_err)?;
    let train = if task.has_split() {
        Some(
            eval::evaluate_split(backend, task, seed, samples, batch, Split::Train)
                .map_err(js_err)?,
        )
    } else {
        None
    };
    let finite = eval::evaluate_finite(backend, task, MAX_FINITE_EVAL, 256).map_err(js_err)?;
    to_js(&Report {
        held_out,
        train,
        finite,
    })
}

/// The most items of each side of a finite dataset's split the Evaluate cell scores (every
/// default dataset's sides are smaller: those figures are exact).
pub(crate) const MAX_FINITE_EVAL: usize = 1 << 16;

/// A finite dataset's train / test / full figures on at most `max_items` items of each side
/// (see `eval::evaluate_finite`): `{step, train, test, full}`, or `null` for a sampled task.
/// The Train cell's train and test curves.
pub(crate) fn split_eval_with(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    step: u64,
    max_items: usize,
) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Point {
        step: u64,
        #[serde(flatten)]
        eval: eval::FiniteEval,
    }
    let max_items = max_items.clamp(1, MAX_FINITE_EVAL);
    match eval::evaluate_finite(backend, task, max_items, 256).map_err(js_err)? {
        Some(eval) => to_js(&Point { step, eval }),
        None => Ok(JsValue::NULL),
    }
}
