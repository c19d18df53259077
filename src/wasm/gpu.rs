//! A training run on WebGPU in the page's worker: the [`GpuSession`] object, with the same surface as
//! [`super::Session`] but asynchronous (every method that touches the GPU returns a Promise: the web
//! never blocks on a GPU). Training runs on the GPU engine; evaluation, completion and samples run on
//! a CPU copy of the weights as of the last training chunk (they are small, and it keeps one code path
//! for them).

use super::session::{complete_with, evaluate_with, export_with, samples_with, split_eval_with};
use super::{js_err, parse, parse_task, to_js};
use crate::error::Error;
use crate::gpu::{AdapterChoice, GpuRunner};
use crate::model::{ModelConfig, Weights};
use crate::reference::ReferenceBackend;
use crate::train::{check_compatible, TrainConfig, TrainRun};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

struct Inner {
    engine: GpuRunner,
    /// The run's bookkeeping, the same as the CPU `Session`'s trainer keeps.
    run: TrainRun,
    /// A CPU backend on the weights of step `.0`, for evaluation.
    cpu: Option<(u64, ReferenceBackend)>,
}

impl Inner {
    fn cpu(&mut self) -> Result<&mut ReferenceBackend, JsError> {
        let step = self.run.step;
        if self.cpu.as_ref().is_none_or(|c| c.0 != step) {
            let b = ReferenceBackend::for_inference(&self.engine.weights()).map_err(js_err)?;
            self.cpu = Some((step, b));
        }
        Ok(&mut self.cpu.as_mut().expect("set above").1)
    }
}

/// A training run on the GPU (WebGPU). Create it with `await GpuSession.create(task, model, train)`,
/// which rejects when the browser has no WebGPU adapter (the worker then uses `Session`, the CPU).
#[wasm_bindgen]
pub struct GpuSession {
    /// Taken out while an asynchronous call runs, so a second call at the same time is refused
    /// instead of racing the first.
    inner: Rc<RefCell<Option<Inner>>>,
    adapter: String,
}

fn busy() -> JsValue {
    JsError::new("the GPU session is busy with another call (await each call before the next)")
        .into()
}

/// Runs `f` on the session's state, taken out of `cell` while it runs and put back after.
fn with_inner<F, Fut>(cell: &Rc<RefCell<Option<Inner>>>, f: F) -> js_sys::Promise
where
    F: FnOnce(Inner) -> Fut + 'static,
    Fut: std::future::Future<Output = (Inner, Result<JsValue, JsError>)> + 'static,
{
    let cell = cell.clone();
    wasm_bindgen_futures::future_to_promise(async move {
        let inner = cell.borrow_mut().take().ok_or_else(busy)?;
        let (inner, r) = f(inner).await;
        *cell.borrow_mut() = Some(inner);
        r.map_err(JsValue::from)
    })
}

#[wasm_bindgen]
impl GpuSession {
    /// `await GpuSession.create(task_json, model_json, train_json)`: validates like `new Session(...)`,
    /// then opens a WebGPU adapter and builds the kernels and the training plan (a config too large
    /// for the adapter is refused here, naming the buffer and the limit).
    pub async fn create(
        task_json: String,
        model_json: String,
        train_json: String,
    ) -> Result<GpuSession, JsError> {
        let task = parse_task(&task_json)?;
        let model: ModelConfig = parse("model", &model_json)?;
        let train: TrainConfig = parse("train", &train_json)?;
        train.validate().map_err(js_err)?;
        if train.schedule.depends_on_loss() {
            // its rate needs each step's loss before the next step, which a chunk planned ahead on
            // the GPU cannot give; the worker trains such runs on the CPU
            return Err(js_err(Error::config("schedule", "reduce_on_plateau needs every step's loss before the next step: it trains on the CPU, not on WebGPU")));
        }
        check_compatible(&task, &model).map_err(js_err)?;
        let w = Weights::init(&model).map_err(js_err)?;
        let mut engine = GpuRunner::new(&w, &train, task.pred_positions(), AdapterChoice::Any)
            .await
            .map_err(js_err)?;
        engine
            .prepare(train.batch_size, task.seq_len())
            .map_err(js_err)?;
        let adapter = engine.ctx.info.name.clone();
        let inner = Inner {
            engine,
            run: TrainRun::new(task, train).map_err(js_err)?,
            cpu: None,
        };
        Ok(GpuSession {
            inner: Rc::new(RefCell::new(Some(inner))),
            adapter,
        })
    }

    /// The adapter's name as the browser reports it (may be empty: browsers can hide it).
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// "webgpu: <adapter>".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        format!("webgpu: {}", self.adapter)
    }

    /// Steps completed so far (NaN while a call is running).
    #[wasm_bindgen(getter)]
    pub fn steps_done(&self) -> f64 {
        self.inner
            .borrow()
            .as_ref()
            .map(|i| i.run.step as f64)
            .unwrap_or(f64::NAN)
    }

    /// Whether the configured number of steps has been run.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.inner.borrow().as_ref().is_some_and(|i| i.run.done())
    }

    /// Runs up to `n` steps on the GPU (one readback at the end); resolves to the metrics of each,
    /// as `Session.step` returns them.
    pub fn step(&self, n: u32) -> js_sys::Promise {
        with_inner(&self.inner, move |mut s| async move {
            let lrs = s.run.chunk_lrs(n as u64);
            let (run, b) = (&s.run, s.run.train.batch_size);
            let r = s
                .engine
                .train_task(&run.task, run.train.seed, run.step, b, &lrs)
                .await;
            let out = match r {
                Ok(o) => o,
                Err(e) => return (s, Err(js_err(e))),
            };
            let (rows, error) = s.run.record_chunk(out, &lrs);
            let r = match error {
                // the steps before a failure are kept; the page shows the error
                Some(e) if rows.is_empty() => Err(js_err(e)),
                Some(e) => Err(js_err(Error::Backend(format!(
                    "{e} (after {} more steps)",
                    rows.len()
                )))),
                None => to_js(&rows),
            };
            (s, r)
        })
    }

    /// Loss and accuracies on `samples` fresh sequences (as `Session.evaluate`).
    pub fn evaluate(&self, samples: usize) -> js_sys::Promise {
        with_inner(&self.inner, move |mut s| async move {
            let (task, seed) = (s.run.task.clone(), s.run.train.seed);
            let r = s.cpu().and_then(|b| evaluate_with(b, &task, seed, samples));
            (s, r)
        })
    }

    /// A finite dataset's train / test / full figures (as `Session.split_eval`).
    pub fn split_eval(&self, max_items: usize) -> js_sys::Promise {
        with_inner(&self.inner, move |mut s| async move {
            let (task, step) = (s.run.task.clone(), s.run.step);
            let r = s
                .cpu()
                .and_then(|b| split_eval_with(b, &task, step, max_items));
            (s, r)
        })
    }

    /// Greedy completion of typed text (as `Session.complete`).
    pub fn complete(&self, text: String) -> js_sys::Promise {
        with_inner(&self.inner, move |mut s| async move {
            let task = s.run.task.clone();
            let r = s.cpu().and_then(|b| complete_with(b, &task, &text));
            (s, r)
        })
    }

    /// `k` fresh sequences with the model's guesses (as `Session.samples`).
    pub fn samples(&self, k: usize) -> js_sys::Promise {
        with_inner(&self.inner, move |mut s| async move {
            let (task, seed) = (s.run.task.clone(), s.run.train.seed);
            let r = s.cpu().and_then(|b| samples_with(b, &task, seed, k));
            (s, r)
        })
    }

    /// The weights as of the last training chunk: every parameter's values in one Float32Array, in
    /// the order and at the offsets of the parameter table (TransformerLens names).
    pub fn weights(&self) -> Result<Vec<f32>, JsError> {
        let g = self.inner.borrow();
        let s = g
            .as_ref()
            .ok_or_else(|| JsError::new("the GPU session is busy with another call"))?;
        Ok(s.engine.weights().data)
    }

    /// `await optimizer_state()`: AdamW's state read back from the GPU, `{t, m: Float32Array,
    /// v: Float32Array}` in parameter-table order (for the page's checkpoints).
    pub fn optimizer_state(&self) -> js_sys::Promise {
        with_inner(&self.inner, |s| async move {
            let r = s
                .engine
                .optimizer_state()
                .await
                .map_err(js_err)
                .and_then(|st| {
                    let o = js_sys::Object::new();
                    let set = |k: &str, v: JsValue| {
                        js_sys::Reflect::set(&o, &JsValue::from_str(k), &v).map(|_| ())
                    };
                    set("t", JsValue::from_f64(st.t as f64))
                        .and_then(|_| set("m", js_sys::Float32Array::from(&st.m[..]).into()))
                        .and_then(|_| set("v", js_sys::Float32Array::from(&st.v[..]).into()))
                        .map_err(|_| JsError::new("building the optimiser-state object failed"))?;
                    Ok(JsValue::from(o))
                });
            (s, r)
        })
    }

    /// Destroys the GPU device, which is what a driver reset or a lost GPU looks like to this session:
    /// the next step fails with the device-loss message and the weights of the last chunk stay readable.
    /// The page's worker uses it (`lose-device` message) to test its fallback to the CPU.
    pub fn lose_device(&self) -> Result<(), JsError> {
        let g = self.inner.borrow();
        let s = g
            .as_ref()
            .ok_or_else(|| JsError::new("the GPU session is busy with another call"))?;
        s.engine.ctx.device.destroy();
        Ok(())
    }

    /// The weights as of the last training chunk, as a `.safetensors` file.
    pub fn export_safetensors(&self) -> Result<Vec<u8>, JsError> {
        let g = self.inner.borrow();
        let s = g
            .as_ref()
            .ok_or_else(|| JsError::new("the GPU session is busy with another call"))?;
        export_with(&s.engine.weights(), &s.run.task, s.run.step)
    }
}
