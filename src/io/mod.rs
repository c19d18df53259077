//! Reading and writing weights: PyTorch `.pt` state dicts (zip + pickle) and
//! safetensors files, both from bytes (so it works in the browser, without a file
//! system), converted to toyformer's [`Weights`] by TransformerLens key.
//!
//! Reading is defensive: any input, truncated or hostile, gives an [`Error`], never a
//! panic and never an allocation sized by an untrusted header.

mod bridge;
mod pickle_check;
mod pt;
mod safetensors;

pub use self::bridge::{bridge_to_tl, is_bridge_format, tl_to_bridge};
pub use self::pt::read_pt;
pub use self::safetensors::{read_safetensors, save_safetensors};

use crate::error::{Error, Result};
use crate::model::config::{ActFn, ModelConfig, Norm};
use crate::model::params::{ParamKind, Weights};
use std::collections::HashMap;

/// A named tensor read from a file, converted to f32 (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// The state-dict key, e.g. `blocks.0.attn.W_Q`.
    pub name: String,
    /// The shape; `[]` for a 0-d tensor (which holds one value).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

/// What a weight file reads as: its tensors, and its metadata (safetensors'
/// `__metadata__`; `None` for a `.pt`).
pub type TensorFile = (Vec<NamedTensor>, Option<HashMap<String, String>>);

/// Floating-point element types we convert to f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatDtype {
    F32,
    F64,
    F16,
    BF16,
}

impl FloatDtype {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            FloatDtype::F32 => 4,
            FloatDtype::F64 => 8,
            FloatDtype::F16 | FloatDtype::BF16 => 2,
        }
    }

    /// Decodes little-endian elements (`bytes.len()` must be a multiple of `size()`;
    /// a ragged tail is ignored).
    pub(crate) fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            FloatDtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            FloatDtype::F64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            FloatDtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            FloatDtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
        }
    }
}

/// IEEE half → single (exact: every f16 is representable as an f32).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        0 => {
            // zero or subnormal: man · 2^-24
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// True for names that look like TransformerLens parameters (`W_*`, `b_*`, LayerNorm
/// `w`/`b`): a non-float tensor under such a name is an error, not a skipped buffer.
pub(crate) fn is_param_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.starts_with("W_")
        || last.starts_with("b_")
        || ((last == "w" || last == "b") && name.contains("ln"))
}

/// True for TransformerLens buffers that are in state dicts but are not parameters:
/// the causal `mask`, `IGNORE`, and anything of a hook point.
fn is_tl_buffer(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    last == "mask" || last == "IGNORE" || name.contains("hook")
}

/// Reads a weight file of either format, deciding by its first bytes: a zip
/// (`PK\x03\x04`) is read as a PyTorch `.pt`, anything else as safetensors. The
/// metadata is safetensors' `__metadata__` (always `None` for `.pt`).
pub fn read_tensors(bytes: &[u8]) -> Result<TensorFile> {
    if bytes.is_empty() {
        return Err(Error::Weights(
            "the file is empty (expected a PyTorch .pt zip or a safetensors file)".into(),
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return read_pt(bytes).map(|t| (t, None));
    }
    match read_safetensors(bytes) {
        Ok(r) => Ok(r),
        Err(e) => {
            let legacy = if bytes[0] == 0x80 {
                " (it starts like a raw pickle: the legacy pre-1.6 torch.save format is not supported; \
                 re-save it with a current PyTorch)"
            } else {
                ""
            };
            let why = match e {
                Error::Weights(m) => m,
                other => other.to_string(),
            };
            Err(Error::Weights(format!(
                "not a PyTorch .pt file (no zip signature PK\\x03\\x04) and not a safetensors file{legacy}: {why}"
            )))
        }
    }
}

fn find<'a>(tensors: &'a [NamedTensor], name: &str) -> Option<&'a NamedTensor> {
    tensors.iter().find(|t| t.name == name)
}

fn shape_of(tensors: &[NamedTensor], name: &str, rank: usize) -> Result<Option<Vec<usize>>> {
    match find(tensors, name) {
        None => Ok(None),
        Some(t) if t.shape.len() == rank => Ok(Some(t.shape.clone())),
        Some(t) => Err(Error::Weights(format!(
            "tensor `{name}` has shape {:?}; expected {rank} dimensions",
            t.shape
        ))),
    }
}

/// Guesses the config from tensor shapes: `n_layers` counts `blocks.{l}.attn.W_Q`;
/// `n_heads`, `d_model`, `d_head` come from `blocks.0.attn.W_Q` `[n_heads, d_model,
/// d_head]`, `d_vocab` from `embed.W_E`, `n_ctx` from `pos_embed.W_pos`, `d_vocab_out`
/// from `unembed.W_U`, `d_mlp` from `blocks.0.mlp.W_in` (attention-only without it),
/// LayerNorm when `ln_final.w` is present.
///
/// Shapes cannot tell the activation: a model with an MLP gets `act_fn = Relu`, which
/// the caller should override when it knows better. `seed` is 0 and `train_biases` false.
/// The result is validated; tensors are checked against it by [`weights_from_tensors`].
///
/// A TransformerLens 4.x bridge state dict ([`is_bridge_format`]) is an error: its
/// `attn.q.weight` `[n_heads·d_head, d_model]` does not say how many heads there are.
pub fn infer_config(tensors: &[NamedTensor]) -> Result<ModelConfig> {
    if is_bridge_format(tensors) {
        return Err(bridge::no_bridge_config(tensors));
    }
    let need = |name: &str, rank: usize| -> Result<Vec<usize>> {
        shape_of(tensors, name, rank)?.ok_or_else(|| {
            Error::Weights(format!(
                "cannot infer the config: tensor `{name}` is missing"
            ))
        })
    };
    let mut n_layers = 0;
    while find(tensors, &format!("blocks.{n_layers}.attn.W_Q")).is_some() {
        n_layers += 1;
    }
    let q = need("blocks.0.attn.W_Q", 3)?;
    let (n_heads, d_model, d_head) = (q[0], q[1], q[2]);
    let d_vocab = need("embed.W_E", 2)?[0];
    let n_ctx = need("pos_embed.W_pos", 2)?[0];
    let d_vocab_out = need("unembed.W_U", 2)?[1];
    let d_mlp = shape_of(tensors, "blocks.0.mlp.W_in", 2)?.map(|s| s[1]);
    let cfg = ModelConfig {
        n_layers,
        n_heads,
        d_model,
        d_head,
        d_mlp,
        act_fn: d_mlp.map(|_| ActFn::Relu),
        normalization_type: find(tensors, "ln_final.w").map(|_| Norm::LN),
        n_ctx,
        d_vocab,
        d_vocab_out,
        seed: 0,
        train_biases: false,
        positional_embedding_type: Default::default(),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Fills [`Weights`] for `cfg` from tensors, by TransformerLens key.
///
/// - Every weight (`W_*`) and LayerNorm parameter must be present
///   ([`Error::MissingTensor`] otherwise); a missing bias (`b_*`) is taken as zeros, as
///   bias-free exports exist.
/// - Shapes must match the table exactly ([`Error::ShapeMismatch`]).
/// - Values must be finite ([`Error::Weights`] naming the tensor).
/// - A tensor that appears twice is an error.
/// - Tensors not in the table (TL buffers such as `mask`/`IGNORE`, hooks, or anything
///   else) are ignored; [`unexpected_tensors`] lists the ones that are not TL buffers.
/// - A TransformerLens 4.x bridge state dict ([`is_bridge_format`]: `embed.weight`,
///   `blocks.0.attn.q.weight`, …) is converted first ([`bridge_to_tl`]); its errors name
///   the 4.x key and shape.
pub fn weights_from_tensors(tensors: &[NamedTensor], cfg: &ModelConfig) -> Result<Weights> {
    let mut w = Weights::zeros(cfg)?;
    let mut by_name: HashMap<&str, &NamedTensor> = HashMap::with_capacity(tensors.len());
    for t in tensors {
        if by_name.insert(t.name.as_str(), t).is_some() {
            return Err(Error::Weights(format!(
                "tensor `{}` appears more than once",
                t.name
            )));
        }
    }
    let converted;
    if is_bridge_format(tensors) {
        converted = bridge_to_tl(tensors, cfg)?;
        by_name = converted.iter().map(|t| (t.name.as_str(), t)).collect();
    }
    let params = w.table.params.clone();
    for p in &params {
        let Some(t) = by_name.get(p.name.as_str()) else {
            if p.kind == ParamKind::Bias {
                continue; // zeros already
            }
            return Err(Error::MissingTensor {
                name: p.name.clone(),
                expected: p.shape.clone(),
            });
        };
        if t.shape != p.shape {
            return Err(Error::ShapeMismatch {
                name: p.name.clone(),
                expected: p.shape.clone(),
                actual: t.shape.clone(),
            });
        }
        if let Some(i) = t.data.iter().position(|x| !x.is_finite()) {
            return Err(Error::Weights(format!(
                "tensor `{}` holds a non-finite value ({}) at flat index {i}",
                p.name, t.data[i]
            )));
        }
        w.set(&p.name, &t.shape, &t.data)?;
    }
    Ok(w)
}

/// Names of tensors that [`weights_from_tensors`] would ignore for `cfg` and that are not
/// TransformerLens buffers (`mask`, `IGNORE`, hooks): e.g. `blocks.1.*` when the file has
/// more layers than the config. Callers can warn about them.
pub fn unexpected_tensors(tensors: &[NamedTensor], cfg: &ModelConfig) -> Vec<String> {
    if is_bridge_format(tensors) {
        return bridge::unexpected_bridge_tensors(tensors, cfg);
    }
    let table = crate::model::params::ParamTable::new(cfg);
    tensors
        .iter()
        .filter(|t| table.get(&t.name).is_none() && !is_tl_buffer(&t.name))
        .map(|t| t.name.clone())
        .collect()
}

/// Reads a `.pt` or safetensors file and builds [`Weights`]. The config is, in order of
/// priority: `cfg` when given; the safetensors metadata `toyformer_config` (our JSON of
/// [`ModelConfig`]); the metadata `tl_config` (read with [`ModelConfig::from_tl_json`]);
/// else [`infer_config`] from the shapes (MLP activation then defaults to ReLU). A
/// metadata config that does not parse is an error, not a silent fallback.
pub fn load_weights(bytes: &[u8], cfg: Option<&ModelConfig>) -> Result<Weights> {
    let (tensors, meta) = read_tensors(bytes)?;
    let cfg = match cfg {
        Some(c) => c.clone(),
        None => config_from_metadata(meta.as_ref())?.map_or_else(|| infer_config(&tensors), Ok)?,
    };
    weights_from_tensors(&tensors, &cfg)
}

/// The config stored in safetensors metadata, if any (`toyformer_config` before `tl_config`).
pub fn config_from_metadata(meta: Option<&HashMap<String, String>>) -> Result<Option<ModelConfig>> {
    let Some(meta) = meta else { return Ok(None) };
    if let Some(s) = meta.get("toyformer_config") {
        let cfg: ModelConfig = serde_json::from_str(s).map_err(|e| {
            Error::Weights(format!(
                "metadata `toyformer_config` is not a valid config: {e}"
            ))
        })?;
        cfg.validate()?;
        return Ok(Some(cfg));
    }
    if let Some(s) = meta.get("tl_config") {
        let v: serde_json::Value = serde_json::from_str(s)
            .map_err(|e| Error::Weights(format!("metadata `tl_config` is not JSON: {e}")))?;
        return ModelConfig::from_tl_json(&v).map(Some);
    }
    Ok(None)
}

/// Which TransformerLens the Python lines are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlVersion {
    /// 3.x: `HookedTransformer(HookedTransformerConfig(**cfg))` (removed in 4.0).
    V3,
    /// 4.x: `TransformerBridge.boot_native(TransformerBridgeConfig(**cfg))`, what
    /// `pip install transformer_lens` installs today.
    V4,
}

/// The Python that loads an export into TransformerLens 3.x, given the safetensors file
/// written by [`save_safetensors`] and a JSON file holding [`ModelConfig::to_tl_json`].
/// `strict=False` because our files leave out TL's `mask`/`IGNORE` buffers.
pub fn tl_python_snippet(safetensors_name: &str, config_name: &str) -> String {
    tl_python(TlVersion::V3, safetensors_name, config_name)
}

/// The Python that loads an export into the given TransformerLens version; the first line
/// names the version and the pip command. For 4.x the 3.x-keyed file is converted with TL's
/// own `convert_tl_checkpoint` and loaded strictly (we export every bias, so nothing is
/// missing).
pub fn tl_python(version: TlVersion, safetensors_name: &str, config_name: &str) -> String {
    // A JSON string literal is a valid Python string literal.
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    let (st, cf) = (q(safetensors_name), q(config_name));
    match version {
        TlVersion::V3 => format!(
            "# TransformerLens 3.x (pip install \"transformer_lens<4\"): version 4 removed HookedTransformer\n\
             import json\n\
             from safetensors.torch import load_file\n\
             from transformer_lens import HookedTransformer, HookedTransformerConfig\n\
             model = HookedTransformer(HookedTransformerConfig(**json.load(open({cf}))))\n\
             model.load_state_dict(load_file({st}), strict=False)\n"
        ),
        TlVersion::V4 => format!(
            "# TransformerLens 4.x (pip install \"transformer_lens>=4\"): TransformerBridge\n\
             import json\n\
             from safetensors.torch import load_file\n\
             from transformer_lens import TransformerBridge, TransformerBridgeConfig\n\
             from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint\n\
             cfg = TransformerBridgeConfig(**json.load(open({cf})))\n\
             model = TransformerBridge.boot_native(cfg)\n\
             model.load_state_dict(convert_tl_checkpoint(load_file({st}), cfg), strict=True)\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_decoding() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(FloatDtype::BF16.decode(&[0x80, 0x3f]), vec![1.0]);
    }

    #[test]
    fn param_names() {
        assert!(is_param_name("blocks.0.attn.W_Q"));
        assert!(is_param_name("blocks.1.ln2.b"));
        assert!(is_param_name("unembed.b_U"));
        assert!(!is_param_name("blocks.0.attn.mask"));
        assert!(!is_param_name("blocks.0.attn.IGNORE"));
    }
}
