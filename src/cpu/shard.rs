//! Data-parallel training over fixed shards: the gradient of a batch is defined as a sum over
//! shards of sequences that depend only on the batch size, added along a fixed binary tree.
//! A worker owning a contiguous run of shards returns the sums of the tree nodes its run
//! covers ([`cover`]); the coordinator adds those nodes along the same tree ([`combine`]). So
//! any number of workers (k = 1 included: one worker computes every shard) gives bit-identical
//! gradients, and one AdamW step on the coordinator gives bit-identical weights.
//!
//! [`ShardedCpu`] is the [`Backend`] around it: k replicas of the engine (natively, in rayon's
//! threads, which also simulates k browser workers), or, in the browser, the coordinator's own
//! engine plus nodes that other Web Workers computed and handed in through an [`Inbox`].

use super::{ftz, CpuEngine};
use crate::backend::{scored, AdamWConfig, Backend, Batch, OptimizerState, StepOutput};
use crate::error::{Error, Result};
use crate::model::Weights;
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

/// Most shards a batch is cut into (so at most this many workers help).
pub const MAX_SHARDS: usize = 8;
/// Fewest sequences in a shard (smaller batches get fewer shards).
pub const MIN_SHARD: usize = 32;

/// The fixed shards of a batch of `batch` sequences: contiguous sequence ranges, as equal as
/// possible, at most [`MAX_SHARDS`], each of at least [`MIN_SHARD`] when the batch allows.
pub fn shards(batch: usize) -> Vec<Range<usize>> {
    let n = batch.div_ceil(MIN_SHARD).clamp(1, MAX_SHARDS);
    split(batch, n)
}

/// `len` items cut into `n` contiguous runs, the first `len % n` one longer.
fn split(len: usize, n: usize) -> Vec<Range<usize>> {
    let (q, r) = (len / n, len % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let l = q + usize::from(i < r);
        out.push(at..at + l);
        at += l;
    }
    out
}

/// Worker `w`'s run of the `n` shards for `k` workers: contiguous, as equal as possible (k is
/// capped at n; the extra workers get empty runs).
pub fn assign(n: usize, k: usize) -> Vec<Range<usize>> {
    let mut runs = split(n, k.clamp(1, n.max(1)));
    runs.resize(k.max(1), n..n);
    runs
}

/// A node of the summation tree: shards `lo..hi` (hi may pass the shard count, the rest is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub lo: usize,
    pub hi: usize,
}

/// The tree nodes whose shards make up `run` exactly (largest first, left to right) in the tree
/// over `n` shards (leaves padded to a power of two).
pub fn cover(run: Range<usize>, n: usize) -> Vec<Node> {
    fn walk(lo: usize, hi: usize, n: usize, run: &Range<usize>, out: &mut Vec<Node>) {
        let end = hi.min(n);
        if lo >= end || end <= run.start || lo >= run.end {
            return;
        }
        if run.start <= lo && end <= run.end {
            out.push(Node { lo, hi });
            return;
        }
        let mid = lo + (hi - lo) / 2;
        walk(lo, mid, n, run, out);
        walk(mid, hi, n, run, out);
    }
    let mut out = Vec::new();
    walk(0, n.max(1).next_power_of_two(), n, &run, &mut out);
    out
}

/// The sum over the tree node `node` of the shards' values: `get` gives a node's value when it
/// is known (a leaf, or a node a worker sent), else the node is split in two and added.
fn tree(
    node: Node,
    n: usize,
    get: &mut dyn FnMut(Node) -> Result<Option<Vec<f32>>>,
) -> Result<Vec<f32>> {
    if let Some(v) = get(node)? {
        return Ok(v);
    }
    if node.hi - node.lo <= 1 {
        return Err(Error::Backend(format!(
            "shard {} of the batch is missing from the workers' gradients",
            node.lo
        )));
    }
    let mid = node.lo + (node.hi - node.lo) / 2;
    let mut left = tree(
        Node {
            lo: node.lo,
            hi: mid,
        },
        n,
        get,
    )?;
    if mid >= n {
        return Ok(left);
    }
    let right = tree(
        Node {
            lo: mid,
            hi: node.hi,
        },
        n,
        get,
    )?;
    for (a, b) in left.iter_mut().zip(&right) {
        *a += b;
    }
    Ok(left)
}

/// A tree node's gradient sum, with what its shards' forward passes found.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeGrads {
    pub node: Node,
    /// (P,) the node's share of the batch gradient, parameter-table order.
    pub grads: Vec<f32>,
    /// Each shard's share of the batch's mean loss, shard order.
    pub losses: Vec<f64>,
    /// (B_node, P_pred) argmax at the scored rows of the node's sequences.
    pub argmax: Vec<u32>,
}

impl CpuEngine {
    /// The gradients of the tree nodes covering shards `run` of the batch `b` (B, T): each
    /// shard's gradient of the batch's mean loss (its own mean loss scaled by its share of the
    /// batch), added along the tree. Updates nothing but this engine's activations.
    pub fn shard_grads(&mut self, b: &Batch, run: Range<usize>) -> Result<Vec<NodeGrads>> {
        let t = b.check(&self.w.cfg, &self.pred)?;
        let (tokens, batch, p) = (&b.tokens, b.size, self.pred.len());
        let batch_scored = b.scored();
        let all = shards(batch);
        let n = all.len();
        if run.end > n || run.start > run.end {
            return Err(Error::config(
                "shards",
                format!("{run:?} is not a run of the batch's {n} shards"),
            ));
        }
        let mut out = Vec::new();
        for node in cover(run, n) {
            let mut losses = Vec::new();
            let mut argmax = Vec::new();
            let mut leaf = |nd: Node| -> Result<Option<Vec<f32>>> {
                if nd.hi - nd.lo > 1 && nd.lo + 1 < n {
                    return Ok(None);
                }
                let seqs = all[nd.lo].clone();
                let targets = &b.targets[seqs.start * p..seqs.end * p];
                let (num, den) = share(scored(targets), batch_scored, p);
                let scale = num as f32 / den as f32;
                let s = self.shape(seqs.len(), t, self.pred.clone());
                let loss = self.loss_forward(&tokens[seqs.start * t..seqs.end * t], targets, &s);
                self.backward(&tokens[seqs.start * t..seqs.end * t], &s);
                losses.push(loss as f64 * num as f64 / den as f64);
                argmax.extend_from_slice(&self.acts.fin.argmax);
                Ok(Some(self.grads.iter().map(|&g| g * scale).collect()))
            };
            let grads = tree(node, n, &mut leaf)?;
            out.push(NodeGrads {
                node,
                grads,
                losses,
                argmax,
            });
        }
        Ok(out)
    }

    /// One AdamW step (with clipping) on a batch gradient `grads` (P,) summed elsewhere; returns
    /// the gradient norm before clipping. `grads` is clipped in place.
    pub fn apply_grads(&mut self, grads: &mut [f32], lr: f64, step: u64) -> Result<f64> {
        if grads.len() != self.w.data.len() {
            return Err(Error::Weights(format!(
                "{} gradients for {} parameters",
                grads.len(),
                self.w.data.len()
            )));
        }
        self.opt.step(&mut self.w.data, grads, lr, step)
    }

    /// Replaces the parameter values (P,) only: the optimiser state stays (a replica following
    /// the coordinator's weights).
    pub fn load_params(&mut self, data: &[f32]) -> Result<()> {
        self.load_params_with(data.len(), |dst| dst.copy_from_slice(data))
    }

    /// [`CpuEngine::load_params`] from `n` values that `fill` writes into the parameters (P,)
    /// (a copy straight from a JS array, say).
    pub fn load_params_with(&mut self, n: usize, fill: impl FnOnce(&mut [f32])) -> Result<()> {
        if n != self.w.data.len() {
            return Err(Error::Weights(format!(
                "{n} values for a table of {}",
                self.w.data.len()
            )));
        }
        fill(&mut self.w.data);
        let (table, p) = (&self.w.table, &self.w.data);
        self.zero = table
            .params
            .iter()
            .filter(|q| !q.trainable && q.kind == crate::model::ParamKind::Bias)
            .map(|q| q.offset..q.offset + q.len)
            .filter(|r| p[r.clone()].iter().all(|&x| x == 0.0))
            .collect();
        Ok(())
    }

    /// The current parameter values (P,), table order.
    pub fn params(&self) -> &[f32] {
        &self.w.data
    }
}

/// The batch gradient from the nodes of every worker: added along the tree, each shard's loss
/// share added in shard order, the argmax rows concatenated in batch order.
pub fn combine(mut nodes: Vec<NodeGrads>, n: usize) -> Result<(Vec<f32>, f32, Vec<u32>)> {
    nodes.sort_by_key(|g| g.node.lo);
    let loss: f64 = nodes.iter().flat_map(|g| g.losses.iter()).sum();
    let argmax: Vec<u32> = nodes
        .iter()
        .flat_map(|g| g.argmax.iter().copied())
        .collect();
    let mut get = |nd: Node| -> Result<Option<Vec<f32>>> {
        Ok(nodes
            .iter_mut()
            .find(|g| g.node == nd)
            .map(|g| std::mem::take(&mut g.grads)))
    };
    let root = Node {
        lo: 0,
        hi: n.max(1).next_power_of_two(),
    };
    let grads = tree(root, n, &mut get)?;
    Ok((grads, loss as f32, argmax))
}

/// What a [`ShardedCpu`] shares with whoever drives outside workers (the page's pool): k, and
/// the nodes those workers computed for the next step.
#[derive(Default)]
pub struct Exchange {
    /// k, the workers the shards are assigned to (0 counts as 1).
    pub workers: usize,
    /// No run is computed in the step itself: the coordinator's own run is computed before it
    /// ([`ShardedCpu::compute_own`], while outside workers compute theirs) or comes from outside.
    pub remote_only: bool,
    pub nodes: Vec<NodeGrads>,
    /// The planned step's batch and the coordinator's own run of it (the page's pool: planned,
    /// then computed by [`ShardedCpu::compute_own`]).
    pub planned: Option<(Batch, Range<usize>)>,
}

/// A shared handle on an [`Exchange`].
pub type Inbox = Rc<RefCell<Exchange>>;

/// Data-parallel training on the CPU engine (see the module text). `engines[0]` holds the
/// weights and AdamW; the other engines are replicas that follow its weights.
pub struct ShardedCpu {
    engines: Vec<CpuEngine>,
    /// k, and the nodes of workers past `engines` (outside).
    inbox: Inbox,
}

impl ShardedCpu {
    /// `workers` replicas of the engine on `w`, all computed here (natively: in parallel on
    /// rayon's threads).
    pub fn new(
        w: &Weights,
        adamw: impl Into<AdamWConfig>,
        pred_positions: Vec<usize>,
        workers: usize,
    ) -> Result<Self> {
        let adamw = adamw.into();
        let k = workers.max(1);
        let engines = (0..k)
            .map(|_| CpuEngine::new(w, adamw, pred_positions.clone()))
            .collect::<Result<Vec<_>>>()?;
        let inbox = Inbox::default();
        inbox.borrow_mut().workers = k;
        Ok(ShardedCpu { engines, inbox })
    }

    /// One engine here, and shards for `workers` workers of which the others are outside: their
    /// nodes come through [`ShardedCpu::inbox`] before each step.
    pub fn coordinator(
        w: &Weights,
        adamw: impl Into<AdamWConfig>,
        pred_positions: Vec<usize>,
    ) -> Result<Self> {
        Self::new(w, adamw, pred_positions, 1)
    }

    /// Where outside workers' nodes go for the next step (a shared handle).
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Sets k, the number of workers the shards are assigned to (replicas here stay as they
    /// are; workers past them are outside).
    pub fn set_workers(&mut self, k: usize) {
        self.inbox.borrow_mut().workers = k.max(1);
    }

    pub fn workers(&self) -> usize {
        self.inbox.borrow().workers.max(1)
    }

    /// Computes run `run` of batch `b` on the coordinator's own engine (its current weights) and
    /// puts the nodes in the inbox for the next step, beside those of outside workers.
    pub fn compute_own(&mut self, b: &Batch, run: Range<usize>) -> Result<()> {
        let e = &mut self.engines[0];
        let _ftz = e.opts.flush_denormals.then(ftz::FlushGuard::new);
        let nodes = e.shard_grads(b, run)?;
        self.inbox.borrow_mut().nodes.extend(nodes);
        Ok(())
    }

    /// The current parameter values (P,), table order (the coordinator's).
    pub fn params(&self) -> &[f32] {
        self.engines[0].params()
    }

    /// The runs of shards each worker computes for a batch of `batch` sequences.
    pub fn plan(&self, batch: usize) -> Vec<Range<usize>> {
        assign(shards(batch).len(), self.workers())
    }

    /// The nodes of this step: the replicas' runs computed here, the rest from the inbox.
    fn gather(&mut self, b: &Batch) -> Result<Vec<NodeGrads>> {
        let plan = self.plan(b.size);
        let here = if self.inbox.borrow().remote_only {
            0
        } else {
            self.engines.len().min(plan.len())
        };
        let local: Vec<Result<Vec<NodeGrads>>> = self.engines[..here]
            .par_iter_mut()
            .zip(plan[..here].par_iter())
            .map(|(e, run)| e.shard_grads(b, run.clone()))
            .collect();
        let mut nodes = Vec::new();
        for r in local {
            nodes.extend(r?);
        }
        nodes.append(&mut self.inbox.borrow_mut().nodes);
        Ok(nodes)
    }
}

impl Backend for ShardedCpu {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn pred_positions(&self) -> &[usize] {
        &self.engines[0].pred
    }

    fn train_batch(&mut self, batch: &Batch, lr: f64, step: u64) -> Result<StepOutput> {
        let _ftz = self.engines[0]
            .opts
            .flush_denormals
            .then(ftz::FlushGuard::new);
        let nodes = self.gather(batch);
        let (mut grads, loss, argmax) = combine(nodes?, shards(batch.size).len())?;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                step,
                loss,
                last_good_step: step,
            });
        }
        let norm = self.engines[0].apply_grads(&mut grads, lr, step)?;
        let (first, rest) = self.engines.split_at_mut(1);
        for e in rest {
            e.load_params(first[0].params())?;
        }
        Ok(StepOutput {
            loss,
            grad_norm: norm as f32,
            argmax,
        })
    }

    fn logits(&mut self, tokens: &[u32], batch: usize) -> Result<Vec<f32>> {
        self.engines[0].logits(tokens, batch)
    }

    fn weights(&self) -> Result<Weights> {
        self.engines[0].weights()
    }

    fn set_weights(&mut self, w: &Weights) -> Result<()> {
        let mut x = self.inbox.borrow_mut();
        x.nodes.clear();
        x.planned = None;
        drop(x);
        self.engines.iter_mut().try_for_each(|e| e.set_weights(w))
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        self.engines[0].optimizer_state()
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.engines[0].set_optimizer_state(state)
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

/// A shard's share of the batch's mean loss: its scored pairs over the batch's, as a fraction
/// num / den. In whole sequences (both divided by P) when both are multiples of P, so a fully
/// scored batch keeps the sequences-over-batch share, rounding included.
fn share(shard_scored: usize, batch_scored: usize, p: usize) -> (usize, usize) {
    let p = p.max(1);
    if shard_scored.is_multiple_of(p) && batch_scored.is_multiple_of(p) {
        (shard_scored / p, batch_scored / p)
    } else {
        (shard_scored, batch_scored)
    }
}
