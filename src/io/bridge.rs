//! The state-dict format of TransformerLens 4.x: what `TransformerBridge.state_dict()`
//! saves for a model built with `TransformerBridge.boot_native(cfg)`, converted to and
//! from the TransformerLens 3.x keys toyformer uses everywhere else.
//!
//! 4.x keeps `nn.Linear` / `nn.Embedding` tensors under their module names: W_Q
//! `[n_heads, d_model, d_head]` is `blocks.{l}.attn.q.weight` `[n_heads·d_head, d_model]`,
//! W_O `[n_heads, d_head, d_model]` is `blocks.{l}.attn.o.weight` `[d_model, n_heads·d_head]`,
//! W_in / W_out / W_U are stored transposed (`mlp.in.weight` `[d_mlp, d_model]`, …), and
//! LayerNorm `w`/`b` are `weight`/`bias`. This is the inverse of TL 4.x's
//! `transformer_lens.utilities.tl_checkpoint_conversion.convert_tl_checkpoint`.

use super::NamedTensor;
use crate::error::{Error, Result};
use crate::model::config::ModelConfig;
use crate::model::params::{ParamKind, ParamTable};
use std::collections::HashMap;

/// How a 3.x tensor's values sit in its 4.x counterpart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// The same values in the same order (embeddings, LayerNorm, b_O, b_in, b_out, b_U).
    Same,
    /// 3.x `[a, b]` is 4.x `[b, a]` (W_in, W_out, W_U).
    Transpose,
    /// 3.x W_Q/W_K/W_V `[NH, C, HS]` is 4.x `[NH·HS, C]`.
    HeadsIn,
    /// 3.x W_O `[NH, HS, C]` is 4.x `[C, NH·HS]`.
    HeadsOut,
}

/// The 4.x key, 4.x shape and layout of the 3.x parameter `name` of shape `shape`.
fn bridge_key(name: &str, shape: &[usize]) -> (String, Vec<usize>, Layout) {
    let (stem, last) = name.rsplit_once('.').unwrap_or(("", name));
    let lower = |s: &str| s.to_ascii_lowercase();
    let (key, layout) = match last {
        "W_E" | "W_pos" => (format!("{stem}.weight"), Layout::Same),
        "w" => (format!("{stem}.weight"), Layout::Same),
        "b" => (format!("{stem}.bias"), Layout::Same),
        "W_Q" | "W_K" | "W_V" => (
            format!("{stem}.{}.weight", lower(&last[2..])),
            Layout::HeadsIn,
        ),
        "b_Q" | "b_K" | "b_V" => (format!("{stem}.{}.bias", lower(&last[2..])), Layout::Same),
        "W_O" => (format!("{stem}.o.weight"), Layout::HeadsOut),
        "b_O" => (format!("{stem}.o.bias"), Layout::Same),
        "W_in" | "W_out" => (format!("{stem}.{}.weight", &last[2..]), Layout::Transpose),
        "b_in" | "b_out" => (format!("{stem}.{}.bias", &last[2..]), Layout::Same),
        "W_U" => (format!("{stem}.weight"), Layout::Transpose),
        _ => (format!("{stem}.bias"), Layout::Same), // b_U
    };
    let bshape = match (layout, shape) {
        (Layout::Transpose, [a, b]) => vec![*b, *a],
        (Layout::HeadsIn, [nh, c, hs]) => vec![nh * hs, *c],
        (Layout::HeadsOut, [nh, hs, c]) => vec![*c, nh * hs],
        (_, s) if name.contains(".b_") && s.len() == 2 => vec![s[0] * s[1]], // b_Q/K/V
        (_, s) => s.to_vec(),
    };
    (key, bshape, layout)
}

/// True when the tensors look like a 4.x bridge state dict: `embed.weight` is there and
/// the 3.x `embed.W_E` is not.
pub fn is_bridge_format(tensors: &[NamedTensor]) -> bool {
    let has = |n: &str| tensors.iter().any(|t| t.name == n);
    has("embed.weight") && !has("embed.W_E")
}

/// Values of a 4.x tensor rearranged into the 3.x layout of shape `shape` (`src` holds
/// exactly `shape.iter().product()` values).
fn to_tl_layout<T: Copy + Default>(src: &[T], shape: &[usize], layout: Layout) -> Vec<T> {
    let mut out = vec![T::default(); src.len()];
    match (layout, shape) {
        (Layout::Transpose, &[a, b]) => {
            // src (b, a) -> out (a, b)
            for i in 0..a {
                for j in 0..b {
                    out[i * b + j] = src[j * a + i];
                }
            }
        }
        (Layout::HeadsIn, &[nh, c, hs]) => {
            // src (NH·HS, C) -> out (NH, C, HS)
            for h in 0..nh {
                for ci in 0..c {
                    for d in 0..hs {
                        out[(h * c + ci) * hs + d] = src[(h * hs + d) * c + ci];
                    }
                }
            }
        }
        (Layout::HeadsOut, &[nh, hs, c]) => {
            // src (C, NH·HS) -> out (NH, HS, C)
            for h in 0..nh {
                for d in 0..hs {
                    for ci in 0..c {
                        out[(h * hs + d) * c + ci] = src[ci * nh * hs + h * hs + d];
                    }
                }
            }
        }
        _ => out.copy_from_slice(src),
    }
    out
}

/// Converts a 4.x bridge state dict to the 3.x tensors of `cfg`'s table (3.x names and
/// shapes). A missing weight or LayerNorm tensor is [`Error::MissingTensor`] and a wrong
/// shape [`Error::ShapeMismatch`], both naming the 4.x key and 4.x shape; a missing bias
/// is left out (the caller takes it as zeros, as for 3.x files).
pub fn bridge_to_tl(tensors: &[NamedTensor], cfg: &ModelConfig) -> Result<Vec<NamedTensor>> {
    let by_name: HashMap<&str, &NamedTensor> =
        tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = Vec::new();
    for p in ParamTable::new(cfg).params {
        let (key, bshape, layout) = bridge_key(&p.name, &p.shape);
        let Some(t) = by_name.get(key.as_str()) else {
            if p.kind == ParamKind::Bias {
                continue;
            }
            return Err(Error::MissingTensor {
                name: key,
                expected: bshape,
            });
        };
        if t.shape != bshape {
            return Err(Error::ShapeMismatch {
                name: key,
                expected: bshape,
                actual: t.shape.clone(),
            });
        }
        if t.data.len() != p.len {
            return Err(Error::Weights(format!(
                "tensor `{key}` holds {} values; its shape {bshape:?} needs {}",
                t.data.len(),
                p.len
            )));
        }
        out.push(NamedTensor {
            name: p.name.clone(),
            data: to_tl_layout(&t.data, &p.shape, layout),
            shape: p.shape,
        });
    }
    Ok(out)
}

/// The 4.x state dict of 3.x tensors (names and shapes of `cfg`'s table): what
/// `convert_tl_checkpoint` computes in Python. Tensors not in the table are left out.
pub fn tl_to_bridge(tensors: &[NamedTensor], cfg: &ModelConfig) -> Vec<NamedTensor> {
    let table = ParamTable::new(cfg);
    let mut out = Vec::new();
    for t in tensors {
        let Some(p) = table
            .get(&t.name)
            .filter(|p| p.shape == t.shape && p.len == t.data.len())
        else {
            continue;
        };
        let (key, bshape, layout) = bridge_key(&p.name, &p.shape);
        // Inverse of to_tl_layout: 3.x element i came from 4.x element order[i].
        let probe: Vec<usize> = (0..p.len).collect();
        let order = to_tl_layout(&probe, &p.shape, layout);
        let mut data = vec![0.0; p.len];
        for (i, &src) in order.iter().enumerate() {
            data[src] = t.data[i];
        }
        out.push(NamedTensor {
            name: key,
            shape: bshape,
            data,
        });
    }
    out
}

/// Names of bridge tensors that `cfg`'s table has no place for.
pub fn unexpected_bridge_tensors(tensors: &[NamedTensor], cfg: &ModelConfig) -> Vec<String> {
    let known: Vec<String> = ParamTable::new(cfg)
        .params
        .iter()
        .map(|p| bridge_key(&p.name, &p.shape).0)
        .collect();
    tensors
        .iter()
        .filter(|t| !known.contains(&t.name))
        .map(|t| t.name.clone())
        .collect()
}

/// Why a bridge state dict's config cannot come from its shapes alone: the
/// `n_heads·d_head` rows of `blocks.0.attn.q.weight` do not say how many heads there are
/// (every factoring gives a valid model, and different logits).
pub fn no_bridge_config(tensors: &[NamedTensor]) -> Error {
    let q = tensors
        .iter()
        .find(|t| t.name == "blocks.0.attn.q.weight")
        .map_or_else(|| "(missing)".to_string(), |t| format!("{:?}", t.shape));
    Error::Weights(format!(
        "this is a TransformerLens 4.x (TransformerBridge) state dict: `blocks.0.attn.q.weight` has shape \
         {q} = [n_heads·d_head, d_model], which does not say how many heads there are. Load it together \
         with its config JSON (TransformerBridgeConfig fields, with n_heads and d_head), or save it as \
         .safetensors with metadata tl_config"
    ))
}
