//! safetensors reading and writing (via the `safetensors` crate), from and to bytes.

use super::{is_param_name, FloatDtype, NamedTensor, TensorFile};
use crate::error::{Error, Result};
use crate::model::params::Weights;
use ::safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// Metadata keys written by [`save_safetensors`]; extra metadata may not reuse them.
const RESERVED_KEYS: [&str; 3] = ["format", "toyformer_config", "tl_config"];

/// Reads a safetensors file: its tensors (in file order) converted to f32, and its
/// `__metadata__`. F32, F16, BF16 and F64 are converted; tensors of other dtypes (bool,
/// integer) are skipped, unless their name is a parameter's (`W_*`, `b_*`, LayerNorm),
/// which is an error.
pub fn read_safetensors(bytes: &[u8]) -> Result<TensorFile> {
    let bad = |e: ::safetensors::SafeTensorError| {
        Error::Weights(format!("invalid safetensors file: {e}"))
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut out = Vec::new();
    for name in meta.offset_keys() {
        let view = st.tensor(&name).map_err(bad)?;
        let dtype = match view.dtype() {
            Dtype::F32 => FloatDtype::F32,
            Dtype::F64 => FloatDtype::F64,
            Dtype::F16 => FloatDtype::F16,
            Dtype::BF16 => FloatDtype::BF16,
            other if is_param_name(&name) => {
                return Err(Error::Weights(format!(
                    "tensor `{name}` has dtype {other:?}; a parameter must be F32, F16, BF16 or F64"
                )))
            }
            _ => continue,
        };
        let shape = view.shape().to_vec();
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel.and_then(|n| n.checked_mul(dtype.size())) != Some(view.data().len()) {
            return Err(Error::Weights(format!(
                "tensor `{name}`: data size does not match shape {shape:?}"
            )));
        }
        out.push(NamedTensor {
            name,
            shape,
            data: dtype.decode(view.data()),
        });
    }
    Ok((out, meta.metadata().clone()))
}

/// Writes every parameter of `w` under its TransformerLens key as F32, with metadata
/// `format = "pt"`, `toyformer_config` (serde JSON of `w.cfg`, exact), `tl_config`
/// ([`crate::model::config::ModelConfig::to_tl_json`], for Python), plus
/// `extra_metadata`. Errors if an extra key is one of those three, if `w.data` does not
/// fit its table, or if a value is not finite (the file could not be loaded back). The
/// output is deterministic: equal weights and metadata give equal bytes.
pub fn save_safetensors(w: &Weights, extra_metadata: &[(String, String)]) -> Result<Vec<u8>> {
    if w.data.len() != w.table.total_len() {
        return Err(Error::Weights(format!(
            "weights hold {} values but the parameter table needs {}",
            w.data.len(),
            w.table.total_len()
        )));
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(
        "toyformer_config".to_string(),
        serde_json::to_string(&w.cfg)?,
    );
    meta.insert("tl_config".to_string(), w.cfg.to_tl_json().to_string());
    for (k, v) in extra_metadata {
        if RESERVED_KEYS.contains(&k.as_str()) {
            return Err(Error::Weights(format!(
                "metadata key `{k}` is reserved for the saved config"
            )));
        }
        meta.insert(k.clone(), v.clone());
    }
    // The header is built as a serde_json map (sorted keys) and the data follow in table
    // order, so the same weights always give the same bytes: a replayed run's export can be
    // compared byte for byte.
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(&meta)?);
    let mut data = Vec::with_capacity(w.data.len() * 4);
    for p in &w.table.params {
        let values = &w.data[p.offset..p.offset + p.len];
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::Weights(format!(
                "cannot save: tensor `{}` holds a non-finite value ({}) at flat index {i}",
                p.name, values[i]
            )));
        }
        let begin = data.len();
        data.extend(values.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(
            p.name.clone(),
            serde_json::json!({ "dtype": "F32", "shape": p.shape, "data_offsets": [begin, data.len()] }),
        );
    }
    let mut head = serde_json::to_vec(&header)?;
    // The format pads the header with spaces to a multiple of 8 bytes (aligned data).
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + head.len() + data.len());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&data);
    Ok(out)
}
