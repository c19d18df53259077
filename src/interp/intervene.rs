//! Interventions through the hook points (TL's `run_with_hooks` with hooks that return a
//! replacement): ablating heads and activation patching. There is no second forward
//! implementation: every run here is the CPU backend's forward with activations replaced.
//!
//! - **Zero ablation** of head h in layer l replaces `blocks.{l}.attn.hook_z[:, :, h, :]`
//!   by 0, which removes the head's z W_O from `hook_attn_out` (b_O stays; tested equal to
//!   zeroing W_O[h]).
//! - **Mean ablation** replaces it by the mean of hook_z[:, :, h, :] over the batch of
//!   fresh samples being scored, per position (as TL's tutorials do): the head keeps its
//!   average contribution and loses what depends on the particular input.
//! - **Activation patching** (TL's `patching.get_act_patch_*`): run the clean input with a
//!   cache, then the corrupted input with one activation replaced by its clean value, and
//!   score the corrupted run against the **clean** sequence's targets. Sites: the residual
//!   stream `blocks.{l}.hook_resid_pre` at one position (layer × position), a head's output
//!   `hook_z[:, :, h]` at all positions (layer × head), and at one position (layer × head ×
//!   position). The patches of one layer run as one batch: row r carries patch r.
//!
//! Every result is an [`Outcome`]: mean cross-entropy and greedy accuracy over the task's
//! predicted positions.

use super::cache::{act_name, run_with_hooks, ActivationCache, CachedTensor, HookSet};
use crate::error::{Error, Result};
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use crate::train::eval::{argmax, log_prob};
use candle_core::{Device, Tensor};
use serde::Serialize;

/// Loss and accuracy over the predicted positions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// mean cross-entropy (nats) of the targets
    pub loss: f64,
    /// fraction of predicted positions whose argmax is the target
    pub acc: f64,
}

/// The outcome of row `r` of logits (R, T, V) against the targets of `targets` (T tokens).
fn outcome_row(task: &TaskSpec, logits: &CachedTensor, r: usize, targets: &[u32]) -> Outcome {
    let (t, v) = (logits.shape[1], logits.shape[2]);
    let preds = task.pred_positions();
    let (mut loss, mut ok) = (0.0, 0usize);
    for (&p, tg) in preds.iter().zip(task.targets(targets)) {
        let row = &logits.data[(r * t + p) * v..][..v];
        loss -= log_prob(row, tg);
        ok += (argmax(row) == tg) as usize;
    }
    let n = preds.len().max(1) as f64;
    Outcome {
        loss: loss / n,
        acc: ok as f64 / n,
    }
}

/// Mean outcome of a batch of task sequences (B, T) scored against themselves.
pub fn outcome(task: &TaskSpec, cache: &ActivationCache) -> Outcome {
    let t = cache.seq_len;
    let rows: Vec<Outcome> = (0..cache.batch)
        .map(|b| outcome_row(task, &cache.logits, b, &cache.tokens[b * t..(b + 1) * t]))
        .collect();
    let n = rows.len().max(1) as f64;
    Outcome {
        loss: rows.iter().map(|o| o.loss).sum::<f64>() / n,
        acc: rows.iter().map(|o| o.acc).sum::<f64>() / n,
    }
}

/// Zero or mean ablation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ablation {
    Zero,
    Mean,
}

/// Mean of `hook_z` over the batch of a cache holding it, per layer: (T, NH, HS) each;
/// the values mean ablation substitutes.
pub fn mean_z(cache: &ActivationCache) -> Result<Vec<CachedTensor>> {
    let batch = cache.batch.max(1);
    let mut out = Vec::new();
    let mut l = 0;
    while cache.has(&act_name("z", l)) {
        let z = cache.get(&act_name("z", l))?; // (B, T, NH, HS)
        let per = z.data.len() / batch;
        let mut m = vec![0.0f64; per];
        for b in 0..batch {
            for (a, &x) in m.iter_mut().zip(&z.data[b * per..(b + 1) * per]) {
                *a += x as f64;
            }
        }
        out.push(CachedTensor {
            shape: z.shape[1..].to_vec(),
            data: m.iter().map(|&x| (x / batch as f64) as f32).collect(),
        });
        l += 1;
    }
    if out.is_empty() {
        return Err(Error::config(
            "hook",
            "mean ablation needs hook_z in the cache",
        ));
    }
    Ok(out)
}

/// The activation tensor with the entries where `mask` (broadcastable) is 1 replaced by
/// `fill` (broadcastable): x + mask·(fill − x).
fn replace(x: &Tensor, mask: &Tensor, fill: &Tensor) -> Result<Tensor> {
    let fill = fill.to_dtype(x.dtype())?;
    let mask = mask.to_dtype(x.dtype())?;
    Ok(x.broadcast_add(&mask.broadcast_mul(&fill.broadcast_sub(x)?)?)?)
}

fn tensor(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Runs tokens (B, T) with the heads in `heads` ((layer, head) pairs) ablated; `means`
/// from [`mean_z`] is needed for [`Ablation::Mean`]. Returns the cache of `record`ed hooks
/// and the logits.
pub fn run_ablated(
    backend: &ReferenceBackend,
    tokens: &[u32],
    batch: usize,
    heads: &[(usize, usize)],
    kind: Ablation,
    means: Option<&[CachedTensor]>,
) -> Result<ActivationCache> {
    let (nl, nh) = (backend.config().n_layers, backend.config().n_heads);
    if let Some(&(l, h)) = heads.iter().find(|&&(l, h)| l >= nl || h >= nh) {
        return Err(Error::config(
            "head",
            format!("L{l}H{h} is not a head of this {nl}-layer, {nh}-head model"),
        ));
    }
    let mut hooks = HookSet::none();
    for l in 0..nl {
        let here: Vec<usize> = heads
            .iter()
            .filter(|&&(hl, _)| hl == l)
            .map(|&(_, h)| h)
            .collect();
        if here.is_empty() {
            continue;
        }
        let mut m = vec![0.0f32; nh];
        here.iter().for_each(|&h| m[h] = 1.0);
        let mask = tensor(m, &[1, 1, nh, 1])?;
        let fill = match kind {
            Ablation::Zero => tensor(vec![0.0], &[1, 1, 1, 1])?,
            Ablation::Mean => {
                let mz = means.and_then(|m| m.get(l)).ok_or_else(|| {
                    Error::config(
                        "ablation",
                        "mean ablation needs the mean activations (mean_z)",
                    )
                })?;
                let mut shape = vec![1];
                shape.extend(&mz.shape);
                let fill = tensor(mz.data.clone(), &shape)?; // (1, T_mean, NH, HS)
                let t = tokens.len() / batch.max(1);
                if mz.shape[0] < t {
                    return Err(Error::config(
                        "ablation",
                        format!(
                            "the mean activations cover {} positions, the input has {t}",
                            mz.shape[0]
                        ),
                    ));
                }
                fill.narrow(1, 0, t)?
            }
        };
        hooks = hooks.with(act_name("z", l), move |z| replace(&z, &mask, &fill));
    }
    run_with_hooks(backend, tokens, batch, hooks)
}

/// One head's ablation result.
#[derive(Clone, Debug, Serialize)]
pub struct HeadAblation {
    pub layer: usize,
    pub head: usize,
    pub zero: Outcome,
    pub mean: Outcome,
}

/// The baseline and every head ablated alone, zero and mean.
#[derive(Clone, Debug, Serialize)]
pub struct AblationTable {
    pub samples: usize,
    pub baseline: Outcome,
    pub heads: Vec<HeadAblation>,
}

/// Zero- and mean-ablates every head alone on `samples` fresh sequences of the task.
pub fn ablation_table(
    backend: &ReferenceBackend,
    task: &TaskSpec,
    samples: usize,
    seed: u64,
) -> Result<AblationTable> {
    let samples = samples.max(1);
    let tokens = task.batch(seed, super::ANALYSIS_STEP, samples);
    let clean = run_with_hooks(
        backend,
        &tokens,
        samples,
        HookSet::recording(|n| n.ends_with("attn.hook_z")),
    )?;
    ablation_table_on(backend, task, &clean, &mean_z(&clean)?)
}

/// [`ablation_table`] on the sequences of `clean` (a cache of them, for the baseline)
/// with mean activations `means` from [`mean_z`].
pub fn ablation_table_on(
    backend: &ReferenceBackend,
    task: &TaskSpec,
    clean: &ActivationCache,
    means: &[CachedTensor],
) -> Result<AblationTable> {
    let cfg = backend.config().clone();
    let (tokens, b) = (&clean.tokens, clean.batch);
    let mut heads = Vec::new();
    for l in 0..cfg.n_layers {
        for h in 0..cfg.n_heads {
            let zero = outcome(
                task,
                &run_ablated(backend, tokens, b, &[(l, h)], Ablation::Zero, None)?,
            );
            let mean = outcome(
                task,
                &run_ablated(backend, tokens, b, &[(l, h)], Ablation::Mean, Some(means))?,
            );
            heads.push(HeadAblation {
                layer: l,
                head: h,
                zero,
                mean,
            });
        }
    }
    Ok(AblationTable {
        samples: b,
        baseline: outcome(task, clean),
        heads,
    })
}

/// One patch: replace `hook` (a residual hook (B, T, C) or `hook_z` (B, T, NH, HS)) at
/// `positions` (all when empty) and, for hook_z, only head `head` (all heads when None).
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    pub hook: String,
    pub positions: Vec<usize>,
    pub head: Option<usize>,
}

/// The mask (R, T, [NH,] 1) of rows `rows`, each a list of (position, head) cells to patch.
fn patch_mask(rows: &[Vec<(usize, Option<usize>)>], t: usize, nh: Option<usize>) -> Result<Tensor> {
    let k = nh.unwrap_or(1);
    let mut m = vec![0.0f32; rows.len() * t * k];
    for (r, cells) in rows.iter().enumerate() {
        for &(p, h) in cells {
            match h {
                Some(h) => m[(r * t + p) * k + h] = 1.0,
                None => (0..k).for_each(|h| m[(r * t + p) * k + h] = 1.0),
            }
        }
    }
    match nh {
        Some(nh) => tensor(m, &[rows.len(), t, nh, 1]),
        None => tensor(m, &[rows.len(), t, 1]),
    }
}

fn check_pair(task: &TaskSpec, clean: &[u32], corrupted: &[u32]) -> Result<()> {
    let t = task.seq_len();
    if clean.len() != t || corrupted.len() != t {
        return Err(Error::task(
            task.name(),
            format!(
                "patching needs two whole sequences of {t} tokens (got {} and {})",
                clean.len(),
                corrupted.len()
            ),
        ));
    }
    Ok(())
}

/// Runs `corrupted` once with every patch in `patches` taken from the clean run (the
/// cache of `clean`); scores it against the clean targets.
pub fn run_patched(
    backend: &ReferenceBackend,
    task: &TaskSpec,
    clean: &ActivationCache,
    corrupted: &[u32],
    patches: &[Patch],
) -> Result<Outcome> {
    check_pair(task, &clean.tokens, corrupted)?;
    let t = task.seq_len();
    let mut hooks = HookSet::none();
    for pa in patches {
        let src = clean.get(&pa.hook)?;
        let is_z = src.shape.len() == 4;
        let positions: Vec<usize> = if pa.positions.is_empty() {
            (0..t).collect()
        } else {
            pa.positions.clone()
        };
        if let Some(&p) = positions.iter().find(|&&p| p >= t) {
            return Err(Error::config(
                "position",
                format!("{p} is outside the sequence (T = {t})"),
            ));
        }
        let cells: Vec<(usize, Option<usize>)> = positions.iter().map(|&p| (p, pa.head)).collect();
        let mask = patch_mask(&[cells], t, is_z.then(|| src.shape[2]))?;
        let fill = tensor(src.data.clone(), &src.shape)?;
        hooks = hooks.with(pa.hook.clone(), move |x| replace(&x, &mask, &fill));
    }
    let cache = run_with_hooks(backend, corrupted, 1, hooks)?;
    Ok(outcome_row(task, &cache.logits, 0, &clean.tokens))
}

/// Activation patching of one clean/corrupted pair at every site (see the module doc).
#[derive(Clone, Debug, Serialize)]
pub struct PatchReport {
    /// the clean run and the unpatched corrupted run, both scored on the clean targets
    pub clean: Outcome,
    pub corrupted: Outcome,
    pub n_layers: usize,
    pub n_heads: usize,
    pub seq_len: usize,
    /// (L, T) row-major: resid_pre of layer l patched at position p
    pub resid_pre: Vec<Outcome>,
    /// (L, NH): hook_z of head h patched at every position
    pub head_out: Vec<Outcome>,
    /// (L, NH, T): hook_z of head h patched at position p
    pub head_out_by_pos: Vec<Outcome>,
}

/// Patches every site. All patches of one layer (and the unpatched corrupted run) go in
/// one forward pass: row r of the batch carries patch r, the hooks' masks are zero on the
/// rows of the other sites.
pub fn activation_patching(
    backend: &ReferenceBackend,
    task: &TaskSpec,
    clean: &[u32],
    corrupted: &[u32],
) -> Result<PatchReport> {
    check_pair(task, clean, corrupted)?;
    let cfg = backend.config().clone();
    let (t, nl, nh) = (task.seq_len(), cfg.n_layers, cfg.n_heads);
    let clean_cache = super::run_with_cache(backend, clean, 1)?;
    let (mut resid_pre, mut head_out, mut head_out_by_pos) = (Vec::new(), Vec::new(), Vec::new());
    let mut corrupted_run = None;
    for l in 0..nl {
        // rows: [unpatched (layer 0 only)] T × resid_pre at p, NH × z of head h, NH·T × z of (h, p)
        let base = usize::from(l == 0);
        let resid_rows: Vec<Vec<(usize, Option<usize>)>> =
            (0..t).map(|p| vec![(p, None)]).collect();
        let head_rows: Vec<Vec<(usize, Option<usize>)>> = (0..nh)
            .map(|h| (0..t).map(|p| (p, Some(h))).collect())
            .collect();
        let by_pos_rows: Vec<Vec<(usize, Option<usize>)>> =
            (0..nh * t).map(|r| vec![(r % t, Some(r / t))]).collect();
        let n_rows = base + t + nh + nh * t;
        let pad = |before: usize, rows: Vec<Vec<(usize, Option<usize>)>>| {
            let mut all = vec![Vec::new(); before];
            all.extend(rows);
            all.resize(n_rows, Vec::new());
            all
        };
        let resid_mask = patch_mask(&pad(base, resid_rows), t, None)?;
        let mut z_rows = head_rows;
        z_rows.extend(by_pos_rows);
        let z_mask = patch_mask(&pad(base + t, z_rows), t, Some(nh))?;
        let src_r = clean_cache.get(&act_name("resid_pre", l))?;
        let src_z = clean_cache.get(&act_name("z", l))?;
        let (fill_r, fill_z) = (
            tensor(src_r.data.clone(), &src_r.shape)?,
            tensor(src_z.data.clone(), &src_z.shape)?,
        );
        let tokens: Vec<u32> = corrupted.iter().copied().cycle().take(n_rows * t).collect();
        let hooks = HookSet::none()
            .with(act_name("resid_pre", l), move |x| {
                replace(&x, &resid_mask, &fill_r)
            })
            .with(act_name("z", l), move |x| replace(&x, &z_mask, &fill_z));
        let c = run_with_hooks(backend, &tokens, n_rows, hooks)?;
        let score = |r: usize| outcome_row(task, &c.logits, r, clean);
        if l == 0 {
            corrupted_run = Some(score(0));
        }
        resid_pre.extend((base..base + t).map(score));
        head_out.extend((base + t..base + t + nh).map(score));
        head_out_by_pos.extend((base + t + nh..n_rows).map(score));
    }
    Ok(PatchReport {
        clean: outcome_row(task, &clean_cache.logits, 0, clean),
        corrupted: corrupted_run.ok_or_else(|| Error::Backend("a model without layers".into()))?,
        n_layers: nl,
        n_heads: nh,
        seq_len: t,
        resid_pre,
        head_out,
        head_out_by_pos,
    })
}
