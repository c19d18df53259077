//! Model configuration, named as TransformerLens's `HookedTransformerConfig`.
//!
//! The JSON written by [`ModelConfig::to_tl_json`] holds only fields that
//! `HookedTransformerConfig(**cfg)` accepts, so Python can load what we export.
//! toyformer's own extras (`train_biases`) travel in the safetensors metadata.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest context a model may have (the permutation task at n = 5 needs 722).
pub const MAX_N_CTX: usize = 1024;
/// Largest d_model / d_head / d_mlp accepted (keeps a typo from allocating gigabytes).
pub const MAX_WIDTH: usize = 4096;
/// LayerNorm epsilon, TransformerLens's default `eps`.
pub const LN_EPS: f64 = 1e-5;

/// MLP activation, TransformerLens's `act_fn` strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActFn {
    /// max(0, x)
    Relu,
    /// exact GELU, x·Φ(x) (TL's "gelu" is `F.gelu`, the erf form)
    Gelu,
    /// tanh approximation of GELU (TL's "gelu_new")
    GeluNew,
    /// x · softmax(x) over the d_mlp axis (TL's "solu", without the `_ln`)
    Solu,
}

impl ActFn {
    pub fn as_str(self) -> &'static str {
        match self {
            ActFn::Relu => "relu",
            ActFn::Gelu => "gelu",
            ActFn::GeluNew => "gelu_new",
            ActFn::Solu => "solu",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "relu" => Ok(ActFn::Relu),
            "gelu" => Ok(ActFn::Gelu),
            "gelu_new" => Ok(ActFn::GeluNew),
            "solu" => Ok(ActFn::Solu),
            _ => Err(Error::config(
                "act_fn",
                format!("unknown activation {s:?} (use relu, gelu, gelu_new or solu)"),
            )),
        }
    }
}

/// Normalisation, TransformerLens's `normalization_type` (None or "LN").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Norm {
    LN,
}

/// How positions enter the model: TransformerLens's `positional_embedding_type` ("standard",
/// "shortformer"), plus toyformer's "off".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// W_pos is added to the residual stream after the embedding.
    #[default]
    Standard,
    /// W_pos is added to the query and key inputs of every layer's attention (after ln1)
    /// and never to the residual stream (TransformerLens's shortformer).
    Shortformer,
    /// No positional information: W_pos frozen at zero (exported as zeros and "standard",
    /// so TransformerLens loads it and computes the same thing).
    Off,
}

impl Positions {
    /// Whether this is the default (left out of the JSON).
    pub fn is_standard(&self) -> bool {
        *self == Positions::Standard
    }
    /// TransformerLens's `positional_embedding_type` for this setting.
    pub fn tl_name(self) -> &'static str {
        match self {
            Positions::Shortformer => "shortformer",
            _ => "standard",
        }
    }
}

/// The model family: 1+ layers, 1+ heads, attention with optional MLP and LayerNorm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_model: usize,
    pub d_head: usize,
    /// `None` = attention-only (TL's `attn_only=True`).
    pub d_mlp: Option<usize>,
    /// Required when `d_mlp` is set.
    pub act_fn: Option<ActFn>,
    pub normalization_type: Option<Norm>,
    pub n_ctx: usize,
    pub d_vocab: usize,
    pub d_vocab_out: usize,
    /// Seed of the weight initialisation.
    pub seed: u64,
    /// Whether the biases (b_Q, b_K, b_V, b_O, b_in, b_out, b_U) train. The seed-003 model
    /// kept them frozen at zero; so do we by default.
    #[serde(default)]
    pub train_biases: bool,
    /// How positions enter the model (default standard; left out of the JSON then).
    #[serde(default, skip_serializing_if = "Positions::is_standard")]
    pub positional_embedding_type: Positions,
}

impl ModelConfig {
    /// The seed-003 sorter: 1 layer, 1 head, attention-only, d_model = d_head = 128, no LN.
    pub fn sort_ref() -> Self {
        ModelConfig {
            n_layers: 1,
            n_heads: 1,
            d_model: 128,
            d_head: 128,
            d_mlp: None,
            act_fn: None,
            normalization_type: None,
            n_ctx: 22,
            d_vocab: 52,
            d_vocab_out: 50,
            seed: 0,
            train_biases: false,
            positional_embedding_type: Positions::Standard,
        }
    }

    pub fn attn_only(&self) -> bool {
        self.d_mlp.is_none()
    }

    /// TL's default "gpt2" init: every weight matrix ~ N(0, initializer_range²) with
    /// initializer_range = 0.8 / sqrt(d_model); biases 0; LN weights 1.
    pub fn initializer_range(&self) -> f64 {
        0.8 / (self.d_model as f64).sqrt()
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let pos = |field: &str, v: usize, max: usize| -> Result<()> {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
            if v > max {
                return Err(Error::config(
                    field,
                    format!("{v} is larger than the maximum {max}"),
                ));
            }
            Ok(())
        };
        pos("n_layers", self.n_layers, 8)?;
        pos("n_heads", self.n_heads, 64)?;
        pos("d_model", self.d_model, MAX_WIDTH)?;
        pos("d_head", self.d_head, MAX_WIDTH)?;
        pos("n_ctx", self.n_ctx, MAX_N_CTX)?;
        pos("d_vocab", self.d_vocab, 65_536)?;
        pos("d_vocab_out", self.d_vocab_out, 65_536)?;
        if self.n_heads * self.d_head > 4 * MAX_WIDTH {
            return Err(Error::config("n_heads", "n_heads × d_head is too large"));
        }
        match (self.d_mlp, self.act_fn) {
            (Some(d), Some(_)) => pos("d_mlp", d, 4 * MAX_WIDTH)?,
            (Some(_), None) => {
                return Err(Error::config(
                    "act_fn",
                    "a model with an MLP (d_mlp set) needs act_fn",
                ))
            }
            (None, _) => {}
        }
        let n = self.n_params();
        if n > 64_000_000 {
            return Err(Error::config(
                "d_model",
                format!("the model would have {n} parameters (limit 64M)"),
            ));
        }
        Ok(())
    }

    /// Checks a batch of token ids (B, T) for this model: it splits into `batch` sequences, T ≤ n_ctx,
    /// every id < d_vocab. Returns T.
    pub fn check_tokens(&self, tokens: &[u32], batch: usize) -> Result<usize> {
        if batch == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(batch) {
            return Err(Error::config(
                "tokens",
                format!(
                    "{} tokens do not split into {batch} sequences",
                    tokens.len()
                ),
            ));
        }
        let t = tokens.len() / batch;
        if t > self.n_ctx {
            return Err(Error::config(
                "tokens",
                format!("sequence length {t} exceeds n_ctx {}", self.n_ctx),
            ));
        }
        if let Some(bad) = tokens.iter().find(|&&x| x as usize >= self.d_vocab) {
            return Err(Error::config(
                "tokens",
                format!(
                    "token id {bad} is outside the vocabulary (d_vocab {})",
                    self.d_vocab
                ),
            ));
        }
        Ok(t)
    }

    /// Total parameter count (all tensors of the state dict, frozen biases included).
    pub fn n_params(&self) -> usize {
        crate::model::params::ParamTable::new(self).total_len()
    }

    /// JSON with HookedTransformerConfig field names only (loadable by
    /// `HookedTransformerConfig(**json.load(f))`).
    pub fn to_tl_json(&self) -> serde_json::Value {
        serde_json::json!({
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "d_model": self.d_model,
            "d_head": self.d_head,
            "d_mlp": self.d_mlp,
            "act_fn": self.act_fn.map(|a| a.as_str()),
            "normalization_type": self.normalization_type.map(|_| "LN"),
            "attn_only": self.attn_only(),
            "n_ctx": self.n_ctx,
            "d_vocab": self.d_vocab,
            "d_vocab_out": self.d_vocab_out,
            "seed": self.seed,
            "positional_embedding_type": self.positional_embedding_type.tl_name(),
            "init_mode": "gpt2",
            "eps": LN_EPS,
        })
    }

    /// Reads a TL-style config JSON (ours or one dumped from Python: unknown fields are
    /// ignored). Missing `d_vocab_out` defaults to `d_vocab`, as in TL.
    pub fn from_tl_json(v: &serde_json::Value) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::config("config", "expected a JSON object"))?;
        let get_usize = |k: &str| tl_usize(obj, k);
        let need =
            |k: &str| -> Result<usize> { get_usize(k)?.ok_or_else(|| Error::config(k, "missing")) };
        let n_layers = need("n_layers")?;
        let d_model = need("d_model")?;
        let d_head = need("d_head")?;
        let n_heads = match get_usize("n_heads")? {
            Some(n) => n,
            None => d_model / d_head.max(1),
        };
        let attn_only = obj
            .get("attn_only")
            .and_then(|x| x.as_bool())
            .unwrap_or(false);
        let d_mlp = if attn_only { None } else { get_usize("d_mlp")? };
        let act_fn = match (d_mlp, obj.get("act_fn").and_then(|x| x.as_str())) {
            (Some(_), Some(s)) => Some(ActFn::parse(s)?),
            _ => None,
        };
        let normalization_type = tl_normalization(obj)?;
        let d_vocab = need("d_vocab")?;
        let positional_embedding_type = tl_positions(obj)?;
        let cfg = ModelConfig {
            n_layers,
            n_heads,
            d_model,
            d_head,
            d_mlp,
            act_fn,
            normalization_type,
            n_ctx: need("n_ctx")?,
            d_vocab,
            d_vocab_out: get_usize("d_vocab_out")?.unwrap_or(d_vocab),
            seed: obj.get("seed").and_then(|x| x.as_u64()).unwrap_or(0),
            train_biases: obj
                .get("train_biases")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
            positional_embedding_type,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A non-negative integer field of a TL config (`None` when absent or null; `d_vocab_out`
/// -1 means "same as d_vocab" in TL, so `None` too).
fn tl_usize(obj: &JsonObject, k: &str) -> Result<Option<usize>> {
    match obj.get(k) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => match x.as_u64() {
            Some(n) => Ok(Some(n as usize)),
            None => {
                if x.as_i64() == Some(-1) && k == "d_vocab_out" {
                    Ok(None)
                } else {
                    Err(Error::config(
                        k,
                        format!("expected a non-negative integer, got {x}"),
                    ))
                }
            }
        },
    }
}

/// A TL config's `normalization_type`: null (none) or "LN".
fn tl_normalization(obj: &JsonObject) -> Result<Option<Norm>> {
    match obj.get("normalization_type") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s == "LN" => Ok(Some(Norm::LN)),
        Some(x) => Err(Error::config(
            "normalization_type",
            format!("unsupported value {x} (use null or \"LN\")"),
        )),
    }
}

/// A TL config's `positional_embedding_type` (standard when absent or null).
fn tl_positions(obj: &JsonObject) -> Result<Positions> {
    match obj.get("positional_embedding_type") {
        None | Some(serde_json::Value::Null) => Ok(Positions::Standard),
        Some(serde_json::Value::String(s)) if s == "standard" => Ok(Positions::Standard),
        Some(serde_json::Value::String(s)) if s == "shortformer" => Ok(Positions::Shortformer),
        Some(serde_json::Value::String(s)) if s == "off" => Ok(Positions::Off),
        Some(x) => Err(Error::config(
            "positional_embedding_type",
            format!("unsupported value {x} (toyformer runs \"standard\", \"shortformer\" and its own \"off\")"),
        )),
    }
}
