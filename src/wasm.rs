//! The browser API (wasm-bindgen). The page's worker owns one [`Session`]; the page itself
//! calls the free functions ([`task_info`], [`validate_model`], [`task_samples`]) to fill
//! its forms. Configs come in as JSON strings (the serde forms of [`TaskSpec`],
//! [`ModelConfig`] and [`TrainConfig`]); results go out as plain JS objects. This is the
//! only place where [`Error`] becomes a `JsError`, with the crate's message unchanged.

use crate::error::Error;
use crate::model::ModelConfig;
use crate::tasks::TaskSpec;
use crate::train::eval::{self, EVAL_STEP_OFFSET};
use crate::train::{BackendKind, TrainConfig, Trainer};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Data stream step used for the samples the page shows (never a training step).
const SHOW_STEP: u64 = EVAL_STEP_OFFSET - 1;
/// Most samples `samples` / `task_samples` return, and most `evaluate` scores.
const MAX_SHOWN: usize = 64;
const MAX_EVAL: usize = 100_000;

fn js_err(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("serialising the result failed: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| js_err(Error::config(what, e.to_string())))
}

fn parse_task(json: &str) -> Result<TaskSpec, JsError> {
    let task: TaskSpec = parse("task", json)?;
    task.validate().map_err(js_err)?;
    Ok(task)
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// What the page needs to know about a task.
#[derive(Serialize)]
struct TaskInfo {
    seq_len: usize,
    d_vocab: usize,
    d_vocab_out: usize,
    vocab: Vec<String>,
    loss_floor: f64,
    default_model: ModelConfig,
    pred_positions: Vec<usize>,
    prompt_len: usize,
}

/// `task_info(task_json) -> {seq_len, d_vocab, d_vocab_out, vocab, loss_floor,
/// default_model, pred_positions, prompt_len}`; throws the task's validation error.
#[wasm_bindgen]
pub fn task_info(task_json: &str) -> Result<JsValue, JsError> {
    let t = parse_task(task_json)?;
    to_js(&TaskInfo {
        seq_len: t.seq_len(),
        d_vocab: t.d_vocab(),
        d_vocab_out: t.d_vocab_out(),
        vocab: t.vocab(),
        loss_floor: t.loss_floor(),
        default_model: t.default_model(),
        pred_positions: t.pred_positions(),
        prompt_len: t.prompt_len(),
    })
}

#[derive(Serialize)]
struct ModelCheck {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    n_params: usize,
}

/// `validate_model(model_json) -> {ok, error?, n_params}`; never throws (a JSON error is
/// reported in `error`, with `n_params` 0).
#[wasm_bindgen]
pub fn validate_model(model_json: &str) -> Result<JsValue, JsError> {
    let check = match serde_json::from_str::<ModelConfig>(model_json) {
        Err(e) => ModelCheck { ok: false, error: Some(Error::config("model", e.to_string()).to_string()), n_params: 0 },
        Ok(cfg) => match cfg.validate() {
            Ok(()) => ModelCheck { ok: true, error: None, n_params: cfg.n_params() },
            Err(e) => ModelCheck { ok: false, error: Some(e.to_string()), n_params: 0 },
        },
    };
    to_js(&check)
}

/// One shown sequence. `predicted[i]` marks the positions the model is scored on (the
/// targets); `model` and `correct` hold the model's teacher-forced greedy guess there (null
/// elsewhere, and absent before a model exists).
#[derive(Serialize)]
struct Shown {
    tokens: Vec<String>,
    predicted: Vec<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correct: Option<Vec<Option<bool>>>,
}

fn shown_samples(task: &TaskSpec, seed: u64, k: usize) -> (Vec<u32>, Vec<Shown>) {
    let k = k.min(MAX_SHOWN);
    let vocab = task.vocab();
    let mut targets = vec![false; task.seq_len()];
    for p in task.pred_positions() {
        targets[p + 1] = true;
    }
    let tokens = task.batch(seed, SHOW_STEP, k); // (k, T)
    let shown = tokens
        .chunks(task.seq_len().max(1))
        .map(|seq| Shown {
            tokens: seq.iter().map(|&t| vocab[t as usize].clone()).collect(),
            predicted: targets.clone(),
            model: None,
            correct: None,
        })
        .collect();
    (tokens, shown)
}

/// `task_samples(task_json, k, seed) -> [{tokens, predicted}]`: k (≤ 64) fresh sequences
/// of the task, as labels, with the scored positions marked.
#[wasm_bindgen]
pub fn task_samples(task_json: &str, k: usize, seed: u32) -> Result<JsValue, JsError> {
    let task = parse_task(task_json)?;
    to_js(&shown_samples(&task, seed as u64, k).1)
}

#[derive(Serialize)]
struct Completion {
    tokens: Vec<String>,
    text: String,
    prompt_len: usize,
}

/// A training run on the CPU backend: the task, the model and the optimiser state.
#[wasm_bindgen]
pub struct Session {
    trainer: Trainer,
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
        let trainer = Trainer::from_scratch(task, &model, train, BackendKind::Cpu).map_err(js_err)?;
        Ok(Session { trainer })
    }

    /// Steps completed so far.
    #[wasm_bindgen(getter)]
    pub fn steps_done(&self) -> f64 {
        self.trainer.step as f64
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

    /// Loss and accuracies on `samples` fresh sequences: `{samples, loss, token_acc,
    /// seq_acc, algo_acc, per_pos_acc, positions}`.
    pub fn evaluate(&mut self, samples: usize) -> Result<JsValue, JsError> {
        let samples = samples.min(MAX_EVAL);
        let t = &mut self.trainer;
        let batch = samples.clamp(1, 256);
        let report = eval::evaluate(&mut *t.backend, &t.task, t.train.seed, samples, batch).map_err(js_err)?;
        to_js(&report)
    }

    /// Greedy completion of typed text (see `TaskSpec::parse_prompt` for the formats):
    /// `{tokens: [labels], text, prompt_len}`.
    pub fn complete(&mut self, text: &str) -> Result<JsValue, JsError> {
        let t = &mut self.trainer;
        let prompt = t.task.parse_prompt(text).map_err(js_err)?;
        let seq = eval::complete(&mut *t.backend, &t.task, &prompt).map_err(js_err)?;
        let vocab = t.task.vocab();
        to_js(&Completion {
            tokens: seq.iter().map(|&x| vocab[x as usize].clone()).collect(),
            text: t.task.format_tokens(&seq),
            prompt_len: prompt.len(),
        })
    }

    /// `k` (≤ 64) fresh sequences with the model's teacher-forced greedy guess at every
    /// scored position: `[{tokens, predicted, model, correct}]`.
    pub fn samples(&mut self, k: usize) -> Result<JsValue, JsError> {
        let t = &mut self.trainer;
        let (tokens, mut shown) = shown_samples(&t.task, t.train.seed, k);
        let len = t.task.seq_len();
        let b = shown.len();
        if b > 0 {
            let logits = t.backend.logits(&tokens, b).map_err(js_err)?; // (B, T, V)
            let v = logits.len() / (b * len);
            let vocab = t.task.vocab();
            for (i, s) in shown.iter_mut().enumerate() {
                let mut model = vec![None; len];
                let mut correct = vec![None; len];
                for p in t.task.pred_positions() {
                    let row = &logits[(i * len + p) * v..(i * len + p + 1) * v];
                    let guess = argmax(row);
                    model[p + 1] = Some(vocab.get(guess).cloned().unwrap_or_else(|| format!("?{guess}")));
                    correct[p + 1] = Some(guess as u32 == tokens[i * len + p + 1]);
                }
                s.model = Some(model);
                s.correct = Some(correct);
            }
        }
        to_js(&shown)
    }

    /// The current weights as a `.safetensors` file (TransformerLens keys; the config and
    /// the task in the metadata).
    pub fn export_safetensors(&self) -> Result<Vec<u8>, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        let task = serde_json::to_string(&self.trainer.task).map_err(|e| js_err(e.into()))?;
        let meta = [("toyformer_task".to_string(), task), ("toyformer_steps".to_string(), self.trainer.step.to_string())];
        crate::io::save_safetensors(&w, &meta).map_err(js_err)
    }
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}
