//! The browser's API (wasm-bindgen): a thin facade over the core. The only place JsError
//! appears; every Rust error reaches the page as its readable message.

use crate::model::ModelConfig;
use crate::tasks::TaskSpec;
use crate::train::{eval, BackendKind, TrainConfig, Trainer};
use serde::Serialize;
use wasm_bindgen::prelude::*;

fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, JsError> {
    // plain JS objects (not Maps) for JSON maps, as the page reads them with `.field`
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}

/// Task facts for the page: {name, seq_len, d_vocab, d_vocab_out, vocab, loss_floor,
/// pred_positions, default_model, samples: [[label]] }.
#[wasm_bindgen]
pub fn task_info(task_json: &str, n_samples: usize) -> Result<JsValue, JsError> {
    console_error_panic_hook::set_once();
    let task: TaskSpec = parse("task", task_json)?;
    task.validate().map_err(js_err)?;
    let vocab = task.vocab();
    let samples: Vec<Vec<String>> = (0..n_samples.min(16) as u64)
        .map(|i| task.sample(0, 0, i).iter().map(|&t| vocab.get(t as usize).cloned().unwrap_or_default()).collect())
        .collect();
    to_js(&serde_json::json!({
        "name": task.name(), "seq_len": task.seq_len(), "d_vocab": task.d_vocab(),
        "d_vocab_out": task.d_vocab_out(), "vocab": vocab, "loss_floor": task.loss_floor(),
        "pred_positions": task.pred_positions(), "default_model": task.default_model(), "samples": samples,
    }))
}

/// Validates a model config for a task: {n_params} or a JsError naming the bad field.
#[wasm_bindgen]
pub fn check_model(task_json: &str, model_json: &str) -> Result<JsValue, JsError> {
    let task: TaskSpec = parse("task", task_json)?;
    let model: ModelConfig = parse("model", model_json)?;
    crate::train::check_compatible(&task, &model).map_err(js_err)?;
    to_js(&serde_json::json!({ "n_params": model.n_params() }))
}

/// One training run on the CPU backend (wasm).
#[wasm_bindgen]
pub struct Session {
    trainer: Trainer,
}

#[wasm_bindgen]
impl Session {
    #[wasm_bindgen(constructor)]
    pub fn new(task_json: &str, model_json: &str, train_json: &str) -> Result<Session, JsError> {
        console_error_panic_hook::set_once();
        let task: TaskSpec = parse("task", task_json)?;
        let model: ModelConfig = parse("model", model_json)?;
        let train: TrainConfig = parse("train", train_json)?;
        let trainer = Trainer::from_scratch(task, &model, train, BackendKind::Cpu).map_err(js_err)?;
        Ok(Session { trainer })
    }

    /// Steps completed so far.
    pub fn step_count(&self) -> f64 {
        self.trainer.step as f64
    }

    pub fn done(&self) -> bool {
        self.trainer.done()
    }

    /// Runs up to `n` steps; returns the metrics of each ([{step, loss, token_acc, ...}]).
    pub fn step(&mut self, n: u32) -> Result<JsValue, JsError> {
        let mut out = Vec::new();
        for _ in 0..n {
            if self.trainer.done() {
                break;
            }
            out.push(self.trainer.step().map_err(js_err)?);
        }
        to_js(&out)
    }

    /// Held-out evaluation on `samples` fresh sequences.
    pub fn evaluate(&mut self, samples: usize) -> Result<JsValue, JsError> {
        let (task, seed) = (self.trainer.task.clone(), self.trainer.train.seed);
        let rep = eval::evaluate(self.trainer.backend.as_mut(), &task, seed, samples, 256).map_err(js_err)?;
        to_js(&rep)
    }

    /// Greedy completion of typed text: {prompt_len, tokens: [label]}.
    pub fn complete(&mut self, text: &str) -> Result<JsValue, JsError> {
        let task = self.trainer.task.clone();
        let prompt = task.parse_prompt(text).map_err(js_err)?;
        let out = eval::complete(self.trainer.backend.as_mut(), &task, &prompt).map_err(js_err)?;
        let vocab = task.vocab();
        let labels: Vec<String> = out.iter().map(|&t| vocab.get(t as usize).cloned().unwrap_or_default()).collect();
        to_js(&serde_json::json!({ "prompt_len": prompt.len(), "tokens": labels }))
    }

    /// The weights as .safetensors bytes with TransformerLens keys.
    pub fn export_safetensors(&self) -> Result<Vec<u8>, JsError> {
        let w = self.trainer.backend.weights().map_err(js_err)?;
        crate::io::save_safetensors(&w, &[]).map_err(js_err)
    }
}
