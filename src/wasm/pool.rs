//! Data-parallel training across the page's Web Workers (`www/js/pool.js`): a [`Session`]
//! trains on [`ShardedCpu`], computing its own run of the batch's shards; every other worker
//! holds a [`ShardWorker`] with the same weights that computes another run's tree nodes
//! (`cpu::shard`), which the session adds along the fixed tree before its one AdamW step. Any
//! number of workers gives bit-identical training.

use super::session::Session;
use super::{js_err, parse, parse_task};
use crate::backend::{Backend, Batch};
use crate::cpu::shard::{shards, Node, NodeGrads, ShardedCpu};
use crate::cpu::CpuEngine;
use crate::error::Error;
use crate::model::{ModelConfig, Weights};
use crate::tasks::Split;
use crate::train::Trainer;
use js_sys::{Array, Float32Array, Float64Array, Object, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;

/// Most workers a run is split over (the batch has at most this many shards).
pub const MAX_WORKERS: usize = crate::cpu::shard::MAX_SHARDS;

fn set(o: &Object, k: &str, v: JsValue) -> Result<(), JsError> {
    Reflect::set(o, &JsValue::from_str(k), &v)
        .map(|_| ())
        .map_err(|_| js_err(Error::Backend(format!("setting '{k}' failed"))))
}

impl Session {
    /// A session training `trainer`'s run on the sharded CPU engine (same weights and AdamW
    /// state), with one worker until [`Session::pool_plan`] says otherwise.
    pub(super) fn wrap(mut trainer: Trainer) -> Result<Session, JsError> {
        let w = trainer.backend.weights().map_err(js_err)?;
        let opt = trainer.backend.optimizer_state().map_err(js_err)?;
        let adamw = trainer.train.adamw();
        let mut b =
            ShardedCpu::coordinator(&w, adamw, trainer.task.pred_positions()).map_err(js_err)?;
        b.set_optimizer_state(&opt).map_err(js_err)?;
        let pool = b.inbox();
        trainer.backend = Box::new(b);
        Ok(Session { trainer, pool })
    }
}

#[wasm_bindgen]
impl Session {
    /// The next step's work for `workers` workers, every run computed outside this session (the
    /// page's training worker computes run 0 on its own [`ShardWorker`]):
    /// `{tokens: Uint32Array (B, T), targets: Uint32Array (B, P), batch, runs: [[lo, hi], ...]}` (shard runs, one per worker);
    /// `null` when the run is done. Other workers get `tokens` and their run; their
    /// [`ShardWorker::grads`] results go to [`Session::pool_supply`] before `step(1)`.
    pub fn pool_plan(&mut self, workers: usize) -> Result<JsValue, JsError> {
        let t = &mut self.trainer;
        if t.done() {
            return Ok(JsValue::NULL);
        }
        let k = workers.clamp(1, MAX_WORKERS);
        let b = t.train.batch_size;
        let batch = Batch::of_task(&t.task, t.train.seed, t.step, b, Split::Train);
        let runs = crate::cpu::shard::assign(shards(b).len(), k);
        let mut x = self.pool.borrow_mut();
        x.nodes.clear();
        x.workers = k;
        x.remote_only = true;
        drop(x);
        let o = Object::new();
        set(&o, "tokens", Uint32Array::from(&batch.tokens[..]).into())?;
        set(&o, "targets", Uint32Array::from(&batch.targets[..]).into())?;
        set(&o, "batch", JsValue::from_f64(b as f64))?;
        let arr = Array::new();
        for r in runs {
            arr.push(&Array::of2(
                &(r.start as f64).into(),
                &(r.end as f64).into(),
            ));
        }
        set(&o, "runs", arr.into())?;
        Ok(o.into())
    }

    /// Hands in one worker's result (the object [`ShardWorker::grads`] returned) for the next step.
    pub fn pool_supply(&mut self, result: JsValue) -> Result<(), JsError> {
        let nodes = nodes_from_js(&result, self.n_params())?;
        self.pool.borrow_mut().nodes.extend(nodes);
        Ok(())
    }

    /// Trains on this session's engine alone from now on (drops handed-in results).
    pub fn pool_off(&mut self) {
        let mut x = self.pool.borrow_mut();
        x.nodes.clear();
        x.workers = 1;
        x.remote_only = false;
    }

    fn n_params(&self) -> usize {
        self.trainer.backend.weights().map_or(0, |w| w.data.len())
    }
}

/// Reads `{nodes: Float64Array [lo, hi, n_losses, ...], losses: Float64Array, grads:
/// Float32Array, argmax: Uint32Array}` back into tree nodes of `p` gradients each.
fn nodes_from_js(v: &JsValue, p: usize) -> Result<Vec<NodeGrads>, JsError> {
    let get = |k: &str| Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    let bad = |m: &str| js_err(Error::Backend(format!("a worker's gradients: {m}")));
    let meta = get("nodes")
        .dyn_into::<Float64Array>()
        .map_err(|_| bad("no nodes"))?
        .to_vec();
    let losses = get("losses")
        .dyn_into::<Float64Array>()
        .map_err(|_| bad("no losses"))?
        .to_vec();
    let grads = get("grads")
        .dyn_into::<Float32Array>()
        .map_err(|_| bad("no grads"))?
        .to_vec();
    let argmax = get("argmax")
        .dyn_into::<Uint32Array>()
        .map_err(|_| bad("no argmax"))?
        .to_vec();
    let rows = get("rows")
        .dyn_into::<Float64Array>()
        .map_err(|_| bad("no rows"))?
        .to_vec();
    let n = meta.len() / 3;
    if meta.len() != 3 * n || grads.len() != n * p || rows.len() != n {
        return Err(bad("sizes do not match the model"));
    }
    let (mut li, mut ai) = (0, 0);
    let mut out = Vec::with_capacity(n);
    for (i, m) in meta.chunks(3).enumerate() {
        let (nl, na) = (m[2] as usize, rows[i] as usize);
        if li + nl > losses.len() || ai + na > argmax.len() || m[0] >= m[1] {
            return Err(bad("sizes do not match"));
        }
        out.push(NodeGrads {
            node: Node {
                lo: m[0] as usize,
                hi: m[1] as usize,
            },
            grads: grads[i * p..(i + 1) * p].to_vec(),
            losses: losses[li..li + nl].to_vec(),
            argmax: argmax[ai..ai + na].to_vec(),
        });
        li += nl;
        ai += na;
    }
    Ok(out)
}

/// A pool worker's engine: the same model as the training session, following its weights;
/// computes the tree nodes of a run of shards.
#[wasm_bindgen]
pub struct ShardWorker {
    engine: CpuEngine,
}

#[wasm_bindgen]
impl ShardWorker {
    /// `new ShardWorker(task_json, model_json)`: the run's task and model (as `Session.info()`
    /// gives them); weights come with every job.
    #[wasm_bindgen(constructor)]
    pub fn new(task_json: &str, model_json: &str) -> Result<ShardWorker, JsError> {
        let task = parse_task(task_json)?;
        let model: ModelConfig = parse("model", model_json)?;
        crate::train::check_compatible(&task, &model).map_err(js_err)?;
        let w = Weights::init(&model).map_err(js_err)?;
        let engine = CpuEngine::new(
            &w,
            crate::backend::AdamWConfig::default(),
            task.pred_positions(),
        )
        .map_err(js_err)?;
        Ok(ShardWorker { engine })
    }

    /// The gradients of shards `lo..hi` of the batch `tokens` (B, T) with `targets` (B, P) on
    /// `weights` (P,): `{nodes, losses, grads, argmax, rows}` for [`Session::pool_supply`].
    pub fn grads(
        &mut self,
        weights: &[f32],
        tokens: &[u32],
        targets: &[u32],
        batch: usize,
        lo: usize,
        hi: usize,
    ) -> Result<JsValue, JsError> {
        self.engine.load_params(weights).map_err(js_err)?;
        let b = Batch {
            tokens: tokens.to_vec(),
            targets: targets.to_vec(),
            size: batch,
        };
        let nodes = self.engine.shard_grads(&b, lo..hi).map_err(js_err)?;
        nodes_to_js(&nodes)
    }
}

fn nodes_to_js(nodes: &[NodeGrads]) -> Result<JsValue, JsError> {
    let mut meta = Vec::new();
    let (mut losses, mut grads, mut argmax, mut rows) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for g in nodes {
        meta.extend([g.node.lo as f64, g.node.hi as f64, g.losses.len() as f64]);
        losses.extend_from_slice(&g.losses);
        grads.extend_from_slice(&g.grads);
        argmax.extend_from_slice(&g.argmax);
        rows.push(g.argmax.len() as f64);
    }
    let o = Object::new();
    set(&o, "nodes", Float64Array::from(&meta[..]).into())?;
    set(&o, "losses", Float64Array::from(&losses[..]).into())?;
    set(&o, "grads", Float32Array::from(&grads[..]).into())?;
    set(&o, "argmax", Uint32Array::from(&argmax[..]).into())?;
    set(&o, "rows", Float64Array::from(&rows[..]).into())?;
    Ok(o.into())
}
