//! `run_with_cache` and `run_with_hooks`, as in TransformerLens, over the CPU backend's
//! hook points (`reference::forward`): one forward implementation serves training, caching,
//! ablation and patching.
//!
//! Hook names are TL's (`hook_embed`, `hook_pos_embed`, `blocks.{l}.hook_resid_pre`,
//! `blocks.{l}.ln1.hook_scale`, `blocks.{l}.ln1.hook_normalized`, `blocks.{l}.attn.hook_q`
//! / `hook_k` / `hook_v` (B, T, NH, HS), `blocks.{l}.attn.hook_attn_scores` and
//! `hook_pattern` (B, NH, T, T), `blocks.{l}.attn.hook_z` (B, T, NH, HS),
//! `blocks.{l}.attn.hook_result` (B, T, NH, C), `blocks.{l}.hook_attn_out`,
//! `blocks.{l}.hook_resid_mid`, `blocks.{l}.ln2.*`, `blocks.{l}.mlp.hook_pre` / `hook_post`
//! (B, T, d_mlp), `blocks.{l}.hook_mlp_out`, `blocks.{l}.hook_resid_post`,
//! `ln_final.hook_scale`, `ln_final.hook_normalized`). TL's optional split-input hooks
//! (`hook_q_input`, `hook_attn_in`, `hook_mlp_in`) are not built, as in TL by default.

use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::forward::Hooks;
use crate::reference::ReferenceBackend;
use candle_core::{DType, Tensor};
use std::collections::BTreeMap;

/// One cached activation: its shape and its values, row-major f32.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl CachedTensor {
    pub(crate) fn from_tensor(t: &Tensor) -> Result<Self> {
        Ok(CachedTensor {
            shape: t.dims().to_vec(),
            data: t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?,
        })
    }
}

/// Every activation of one forward pass under its TL hook name, plus the logits.
#[derive(Clone, Debug)]
pub struct ActivationCache {
    /// (B, T) the input.
    pub tokens: Vec<u32>,
    pub batch: usize,
    pub seq_len: usize,
    /// (B, T, V) V = d_vocab_out.
    pub logits: CachedTensor,
    entries: BTreeMap<String, CachedTensor>,
}

impl ActivationCache {
    /// The activation at hook `name`; the error names the hook and lists a few that exist.
    pub fn get(&self, name: &str) -> Result<&CachedTensor> {
        self.entries.get(name).ok_or_else(|| {
            let some: Vec<&str> = self.entries.keys().take(6).map(|s| s.as_str()).collect();
            Error::config(
                "hook",
                format!(
                    "no activation cached at `{name}` (cached: {}, …)",
                    some.join(", ")
                ),
            )
        })
    }

    /// Whether `name` was cached.
    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The cached hook names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|s| s.as_str())
    }

    /// Attention pattern of sequence `b`, layer `l`, head `h`: (T, T), row = destination
    /// (query) position, column = source (key) position (TL's `cache["pattern", l][b, h]`).
    pub fn pattern(&self, b: usize, l: usize, h: usize) -> Result<super::Mat> {
        let p = self.get(&act_name("pattern", l))?;
        let (nh, t) = (p.shape[1], p.shape[2]);
        let start = ((b * nh + h) * t) * t;
        super::Mat::new(t, t, p.data[start..start + t * t].to_vec())
    }

    /// LayerNorm scale at `{prefix}.hook_scale` for (b, position), or 1 when the model has
    /// no LayerNorm (nothing cached there).
    pub fn ln_scale(&self, prefix: &str, b: usize, pos: usize) -> f32 {
        match self.entries.get(&format!("{prefix}.hook_scale")) {
            Some(s) => s.data[b * self.seq_len + pos],
            None => 1.0,
        }
    }

    /// Row (b, pos) of a (B, T, C) activation.
    pub fn at(&self, name: &str, b: usize, pos: usize) -> Result<&[f32]> {
        let a = self.get(name)?;
        let c = a.shape.last().copied().unwrap_or(0);
        let start = (b * self.seq_len + pos) * c;
        Ok(&a.data[start..start + c])
    }
}

/// TL's `utils.get_act_name`: the full hook name for a short name and a layer, e.g.
/// `("pattern", 0)` → `blocks.0.attn.hook_pattern`, `("resid_pre", 1)` →
/// `blocks.1.hook_resid_pre`. `embed` / `pos_embed` ignore the layer.
pub fn act_name(kind: &str, layer: usize) -> String {
    match kind {
        "embed" | "pos_embed" => format!("hook_{kind}"),
        "q" | "k" | "v" | "z" | "result" | "attn_scores" | "pattern" => {
            format!("blocks.{layer}.attn.hook_{kind}")
        }
        "pre" | "post" => format!("blocks.{layer}.mlp.hook_{kind}"),
        _ => format!("blocks.{layer}.hook_{kind}"),
    }
}

/// A replacement for the activation at one hook (TL's forward hook that returns a value).
pub type HookFn<'a> = Box<dyn FnMut(Tensor) -> Result<Tensor> + 'a>;

/// Records the activations whose names pass `filter` and applies replacement hooks.
/// Replacements run first; the cache holds the value after replacement (as TL's cache
/// does when a hook edits an activation).
pub struct HookSet<'a> {
    filter: Box<dyn Fn(&str) -> bool + 'a>,
    edits: Vec<(String, HookFn<'a>)>,
    cache: BTreeMap<String, CachedTensor>,
}

impl<'a> HookSet<'a> {
    /// Records what `filter` accepts (TL's `names_filter`).
    pub fn recording(filter: impl Fn(&str) -> bool + 'a) -> Self {
        HookSet {
            filter: Box::new(filter),
            edits: Vec::new(),
            cache: BTreeMap::new(),
        }
    }

    /// Records nothing.
    pub fn none() -> Self {
        Self::recording(|_| false)
    }

    /// Adds a hook replacing the activation at `name` (TL's `fwd_hooks=[(name, fn)]`).
    pub fn with(
        mut self,
        name: impl Into<String>,
        f: impl FnMut(Tensor) -> Result<Tensor> + 'a,
    ) -> Self {
        self.edits.push((name.into(), Box::new(f)));
        self
    }
}

impl Hooks for HookSet<'_> {
    fn wants(&self, name: &str) -> bool {
        (self.filter)(name) || self.edits.iter().any(|(n, _)| n == name)
    }
    fn hook(&mut self, name: &str, mut t: Tensor) -> Result<Tensor> {
        for (n, f) in self.edits.iter_mut() {
            if n == name {
                t = f(t)?;
            }
        }
        if (self.filter)(name) {
            self.cache
                .insert(name.to_string(), CachedTensor::from_tensor(&t)?);
        }
        Ok(t)
    }
}

/// Runs tokens (B, T) through the model with `hooks`; returns the cache of what the hooks
/// recorded (and the logits).
pub fn run_with_hooks(
    backend: &ReferenceBackend,
    tokens: &[u32],
    batch: usize,
    mut hooks: HookSet,
) -> Result<ActivationCache> {
    let logits = backend.run_with_hooks(tokens, batch, &mut hooks)?;
    Ok(ActivationCache {
        tokens: tokens.to_vec(),
        batch,
        seq_len: tokens.len() / batch.max(1),
        logits: CachedTensor::from_tensor(&logits)?,
        entries: hooks.cache,
    })
}

/// TL's `run_with_cache`: every activation of the forward pass on tokens (B, T).
pub fn run_with_cache(
    backend: &ReferenceBackend,
    tokens: &[u32],
    batch: usize,
) -> Result<ActivationCache> {
    run_with_hooks(backend, tokens, batch, HookSet::recording(|_| true))
}

/// [`run_with_cache`] on a fresh inference backend for `w`.
pub fn run_with_cache_weights(
    w: &Weights,
    tokens: &[u32],
    batch: usize,
) -> Result<ActivationCache> {
    run_with_cache(&ReferenceBackend::for_inference(w)?, tokens, batch)
}
