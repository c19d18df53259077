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
use crate::tasks::{Split, TaskSpec};
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
    /// The next step's work for `workers` workers, every run computed outside this session's
    /// step (the page's training worker computes run 0 with [`Session::pool_local`]):
    /// `{seed, step (BigInt), batch, scored (B·P, the targets' count), runs: [[lo, hi], ...]}`
    /// (shard runs, one per worker), with `tokens: Uint32Array (B, T), targets: Uint32Array (B, P)`
    /// unless `with_tokens` is false (helpers that make the batch themselves from seed and step,
    /// [`ShardWorker::step_grads_into`]); `null` when the run is done. The helpers' results go to
    /// [`Session::pool_supply`] before `step(1)`.
    pub fn pool_plan(
        &mut self,
        workers: usize,
        with_tokens: Option<bool>,
    ) -> Result<JsValue, JsError> {
        let t = &mut self.trainer;
        if t.done() {
            return Ok(JsValue::NULL);
        }
        let k = workers.clamp(1, MAX_WORKERS);
        let b = t.train.batch_size;
        let runs = crate::cpu::shard::assign(shards(b).len(), k);
        let o = Object::new();
        let planned = if with_tokens.unwrap_or(true) {
            let batch = Batch::of_task(&t.task, t.train.seed, t.step, b, Split::Train);
            set(&o, "tokens", Uint32Array::from(&batch.tokens[..]).into())?;
            set(&o, "targets", Uint32Array::from(&batch.targets[..]).into())?;
            Some((batch, runs[0].clone()))
        } else {
            None
        };
        set(&o, "seed", JsValue::from(t.train.seed))?;
        set(&o, "step", JsValue::from(t.step))?;
        set(&o, "batch", JsValue::from_f64(b as f64))?;
        let scored = b * t.task.pred_positions().len();
        set(&o, "scored", JsValue::from_f64(scored as f64))?;
        let arr = Array::new();
        for r in runs {
            arr.push(&Array::of2(
                &(r.start as f64).into(),
                &(r.end as f64).into(),
            ));
        }
        set(&o, "runs", arr.into())?;
        let mut x = self.pool.borrow_mut();
        x.nodes.clear();
        x.workers = k;
        x.remote_only = true;
        x.planned = planned;
        Ok(o.into())
    }

    /// Computes run 0 of the planned step (the training worker's share) on this session's own
    /// engine, while the helpers compute theirs: no weights to copy in, no result to hand in.
    /// The batch is the one `pool_plan` made, or made here when it made none.
    pub fn pool_local(&mut self) -> Result<(), JsError> {
        let planned = self.pool.borrow_mut().planned.take();
        let (batch, run) = match planned {
            Some(p) => p,
            None => {
                let t = &self.trainer;
                let b = t.train.batch_size;
                let k = self.pool.borrow().workers.max(1);
                let run = crate::cpu::shard::assign(shards(b).len(), k)[0].clone();
                let batch = Batch::of_task(&t.task, t.train.seed, t.step, b, Split::Train);
                (batch, run)
            }
        };
        self.sharded()?.compute_own(&batch, run).map_err(js_err)
    }

    /// Writes the current weights (P,) into `out` (the pool's shared buffer for the helpers):
    /// one copy, where `weights()` makes a new array every step.
    pub fn weights_into(&mut self, out: &Float32Array) -> Result<(), JsError> {
        let p = self.sharded()?.params();
        if out.length() as usize != p.len() {
            return Err(js_err(Error::Weights(format!(
                "weights_into: an array of {} for {} parameters",
                out.length(),
                p.len()
            ))));
        }
        out.copy_from(p);
        Ok(())
    }

    /// Hands in one worker's result (the object [`ShardWorker::grads`] returned) for the next step.
    pub fn pool_supply(&mut self, result: JsValue) -> Result<(), JsError> {
        let nodes = nodes_from_js(&result, self.n_params())?;
        self.pool.borrow_mut().nodes.extend(nodes);
        Ok(())
    }

    /// How many shards each batch of this run is cut into: a pool of more workers than this
    /// leaves the extra ones without work (`workers` auto measures no larger pool).
    pub fn pool_shards(&self) -> usize {
        shards(self.trainer.train.batch_size).len()
    }

    /// Trains on this session's engine alone from now on (drops handed-in results).
    pub fn pool_off(&mut self) {
        let mut x = self.pool.borrow_mut();
        x.nodes.clear();
        x.workers = 1;
        x.remote_only = false;
        x.planned = None;
    }

    /// The session's engine as the sharded CPU engine the pool drives.
    fn sharded(&mut self) -> Result<&mut ShardedCpu, JsError> {
        self.trainer
            .backend
            .as_any_mut()
            .and_then(|a| a.downcast_mut::<ShardedCpu>())
            .ok_or_else(|| {
                js_err(Error::Backend(
                    "this session does not train on the CPU engine".into(),
                ))
            })
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
    task: TaskSpec,
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
        Ok(ShardWorker { engine, task })
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

#[wasm_bindgen]
impl ShardWorker {
    /// As [`ShardWorker::grads`], with the gradients written into `grads_out` (nodes × P, e.g. a
    /// result area's shared buffer; too small is an error) instead of a new array:
    /// `{nodes, losses, argmax, rows}`; the weights (P,) are copied straight into the engine.
    /// Saves three copies and two allocations of P values against `grads`.
    #[allow(clippy::too_many_arguments)]
    pub fn grads_into(
        &mut self,
        weights: &Float32Array,
        tokens: &[u32],
        targets: &[u32],
        batch: usize,
        lo: usize,
        hi: usize,
        grads_out: &Float32Array,
    ) -> Result<JsValue, JsError> {
        let b = Batch {
            tokens: tokens.to_vec(),
            targets: targets.to_vec(),
            size: batch,
        };
        self.nodes_into(weights, &b, lo..hi, grads_out)
    }

    /// As [`ShardWorker::grads_into`] on the training batch of step `step` of a run with data
    /// seed `seed` and `batch` sequences, made here (as the session makes it): nothing but the
    /// numbers comes with the job.
    #[allow(clippy::too_many_arguments)]
    pub fn step_grads_into(
        &mut self,
        weights: &Float32Array,
        seed: u64,
        step: u64,
        batch: usize,
        lo: usize,
        hi: usize,
        grads_out: &Float32Array,
    ) -> Result<JsValue, JsError> {
        let b = Batch::of_task(&self.task, seed, step, batch, Split::Train);
        self.nodes_into(weights, &b, lo..hi, grads_out)
    }
}

impl ShardWorker {
    fn nodes_into(
        &mut self,
        weights: &Float32Array,
        b: &Batch,
        run: std::ops::Range<usize>,
        grads_out: &Float32Array,
    ) -> Result<JsValue, JsError> {
        let p = weights.length() as usize;
        self.engine
            .load_params_with(p, |dst| weights.copy_to(dst))
            .map_err(js_err)?;
        let nodes = self.engine.shard_grads(b, run).map_err(js_err)?;
        if nodes.len() * p > grads_out.length() as usize {
            return Err(js_err(Error::Backend(format!(
                "grads_into: {} nodes of {p} gradients do not fit an array of {}",
                nodes.len(),
                grads_out.length()
            ))));
        }
        for (i, g) in nodes.iter().enumerate() {
            grads_out
                .subarray((i * p) as u32, ((i + 1) * p) as u32)
                .copy_from(&g.grads);
        }
        nodes_meta_to_js(&nodes)
    }
}

/// `{nodes, losses, argmax, rows}` of `nodes` (their gradients go elsewhere).
fn nodes_meta_to_js(nodes: &[NodeGrads]) -> Result<JsValue, JsError> {
    let mut meta = Vec::new();
    let (mut losses, mut argmax, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for g in nodes {
        meta.extend([g.node.lo as f64, g.node.hi as f64, g.losses.len() as f64]);
        losses.extend_from_slice(&g.losses);
        argmax.extend_from_slice(&g.argmax);
        rows.push(g.argmax.len() as f64);
    }
    let o = Object::new();
    set(&o, "nodes", Float64Array::from(&meta[..]).into())?;
    set(&o, "losses", Float64Array::from(&losses[..]).into())?;
    set(&o, "argmax", Uint32Array::from(&argmax[..]).into())?;
    set(&o, "rows", Float64Array::from(&rows[..]).into())?;
    Ok(o.into())
}

fn nodes_to_js(nodes: &[NodeGrads]) -> Result<JsValue, JsError> {
    let o = nodes_meta_to_js(nodes)?;
    let grads: Vec<f32> = nodes.iter().flat_map(|g| g.grads.iter().copied()).collect();
    set(
        o.unchecked_ref(),
        "grads",
        Float32Array::from(&grads[..]).into(),
    )?;
    Ok(o)
}
