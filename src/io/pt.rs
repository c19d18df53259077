//! PyTorch `torch.save` files (the zip format of PyTorch ≥ 1.6) read from bytes.
//!
//! The archive holds `<dir>/data.pkl` (a pickle of the state dict, whose tensors point
//! at storages by key) and one entry `<dir>/data/<key>` of raw little-endian bytes per
//! storage. The pickle is unpickled with `candle_core::pickle::Stack`, after
//! [`check_pickle`] has walked it once to bound what that unpickler would allocate.

use super::pickle_check::check_pickle;
use super::{is_param_name, FloatDtype, NamedTensor};
use crate::error::{Error, Result};
use candle_core::pickle::{Object, Stack};
use std::collections::HashMap;
use std::io::{Cursor, Read};

/// Largest `data.pkl` we unpickle.
const MAX_PKL_BYTES: usize = 64 << 20;
/// Largest storage (in bytes) we read for one tensor.
const MAX_STORAGE_BYTES: usize = 1 << 30;

fn werr(msg: impl Into<String>) -> Error {
    Error::Weights(msg.into())
}

/// Reads a PyTorch state dict saved with `torch.save(model.state_dict(), f)` from its
/// bytes (no file system: works on wasm32). Float tensors (float32/64, float16,
/// bfloat16) are converted to f32, honouring the storage offset; a non-contiguous
/// tensor is an error. Non-float tensors (e.g. TransformerLens's bool `mask`) are
/// skipped unless their name is a parameter's, which is an error. The device a tensor
/// was saved from (`cuda:0`, ...) is ignored. A dict wrapping the state dict under
/// `state_dict` or `model_state_dict` is unwrapped. The order of the result is unspecified.
pub fn read_pt(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| werr(format!("not a readable PyTorch (zip) file: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let pkl_name = find_pkl_name(&names)?;
    let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];
    check_byteorder(&mut zip, &names, prefix)?;
    let pkl = read_entry(&mut zip, &pkl_name, MAX_PKL_BYTES)?;
    let entries = state_dict_entries(unpickle(&pkl, &pkl_name)?)?;

    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for (key, value) in &entries {
        let Object::Unicode(name) = key else { continue };
        if let Some(t) = read_tensor(&mut zip, prefix, &mut storages, name, value)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// The archive's `data.pkl` or `<dir>/data.pkl` (the shortest such name).
fn find_pkl_name(names: &[String]) -> Result<String> {
    Ok(names
        .iter()
        .filter(|n| {
            n.as_str() == "data.pkl" || (n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        })
        .min_by_key(|n| n.len())
        .ok_or_else(|| {
            werr("the zip archive has no `<dir>/data.pkl`: it is not a torch.save file")
        })?
        .clone())
}

/// Refuses a file whose `<dir>/byteorder` entry (if any) is not `little`.
fn check_byteorder(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    names: &[String],
    prefix: &str,
) -> Result<()> {
    let byteorder = format!("{prefix}byteorder");
    if names.contains(&byteorder) {
        let bo = read_entry(zip, &byteorder, 16)?;
        if bo.trim_ascii() != b"little" {
            return Err(werr(format!(
                "`{byteorder}` says {:?}; only little-endian files are supported",
                String::from_utf8_lossy(&bo)
            )));
        }
    }
    Ok(())
}

/// Checks the pickle's bounds with [`check_pickle`], then unpickles it.
fn unpickle(pkl: &[u8], pkl_name: &str) -> Result<Object> {
    check_pickle(pkl)?;
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut Cursor::new(pkl))
        .map_err(|e| werr(format!("`{pkl_name}`: cannot unpickle: {e}")))?;
    stack
        .finalize()
        .map_err(|e| werr(format!("`{pkl_name}`: cannot unpickle: {e}")))
}

/// Reads one state-dict entry as an f32 tensor: `None` for an entry that is not a tensor or a
/// non-float tensor that is not a parameter. Loads its storage into `storages` on first use.
fn read_tensor(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    prefix: &str,
    storages: &mut HashMap<String, Vec<u8>>,
    name: &str,
    value: &Object,
) -> Result<Option<NamedTensor>> {
    let Some(r) = tensor_ref(name, value)? else {
        return Ok(None);
    };
    let dtype = match storage_dtype(&r.storage_class) {
        Some(d) => d,
        None if is_param_name(name) => {
            return Err(werr(format!(
                "tensor `{name}` is stored as {}; a parameter must be a float tensor",
                r.storage_class
            )))
        }
        None => return Ok(None),
    };
    if !is_contiguous(&r.shape, &r.stride) {
        return Err(werr(format!(
            "tensor `{name}` is not contiguous (shape {:?}, stride {:?}); save it with .contiguous()",
            r.shape, r.stride
        )));
    }
    let (start, end, storage_bytes) = byte_range(name, &r, dtype.size())?;
    if !storages.contains_key(&r.storage_key) {
        let entry = format!("{prefix}data/{}", r.storage_key);
        let data = read_entry(zip, &entry, storage_bytes)?;
        if data.len() != storage_bytes {
            return Err(werr(format!(
                "tensor `{name}`: `{entry}` holds {} bytes, expected {storage_bytes}",
                data.len()
            )));
        }
        storages.insert(r.storage_key.clone(), data);
    }
    let data = dtype.decode(&storages[&r.storage_key][start..end]);
    Ok(Some(NamedTensor {
        name: name.to_string(),
        shape: r.shape,
        data,
    }))
}

/// The tensor's byte range `start..end` in its storage and the storage's size in bytes,
/// refusing overflow, a storage over [`MAX_STORAGE_BYTES`] and a range past the storage.
fn byte_range(name: &str, r: &TensorRef, es: usize) -> Result<(usize, usize, usize)> {
    let too_big = || {
        werr(format!(
            "tensor `{name}` is too large (shape {:?}, storage offset {})",
            r.shape, r.offset
        ))
    };
    let numel = r
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(too_big)?;
    let start = r.offset.checked_mul(es).ok_or_else(too_big)?;
    let end = numel
        .checked_mul(es)
        .and_then(|n| n.checked_add(start))
        .ok_or_else(too_big)?;
    let storage_bytes = r
        .storage_numel
        .checked_mul(es)
        .filter(|&b| b <= MAX_STORAGE_BYTES)
        .ok_or_else(too_big)?;
    if end > storage_bytes {
        return Err(werr(format!(
            "tensor `{name}` needs bytes {start}..{end} of storage `{}`, which holds {storage_bytes}",
            r.storage_key
        )));
    }
    Ok((start, end, storage_bytes))
}

/// Reads one zip entry, refusing more than `limit` bytes (a deflate bomb stops there).
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let file = zip
        .by_name(name)
        .map_err(|e| werr(format!("cannot open `{name}` in the zip: {e}")))?;
    let mut buf = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| werr(format!("cannot read `{name}` from the zip: {e}")))?;
    if buf.len() > limit {
        return Err(werr(format!(
            "`{name}` is larger than the {limit} bytes expected"
        )));
    }
    Ok(buf)
}

/// The (key, value) pairs of the state dict: the top-level dict, or the dict under
/// `state_dict` / `model_state_dict` of a checkpoint that holds no tensor at top level.
fn state_dict_entries(top: Object) -> Result<Vec<(Object, Object)>> {
    let Object::Dict(items) = top else {
        return Err(werr(
            "data.pkl does not hold a dict (a state dict is expected, not a whole model)",
        ));
    };
    let has_tensor = items
        .iter()
        .any(|(k, v)| matches!(k, Object::Unicode(n) if matches!(tensor_ref(n, v), Ok(Some(_)))));
    if !has_tensor {
        for (k, v) in &items {
            if matches!(k, Object::Unicode(s) if s == "state_dict" || s == "model_state_dict") {
                if let Object::Dict(inner) = v {
                    return Ok(inner.clone());
                }
            }
        }
    }
    Ok(items)
}

/// Where a pickled tensor's data lives.
struct TensorRef {
    storage_class: String,
    storage_key: String,
    storage_numel: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn storage_dtype(class: &str) -> Option<FloatDtype> {
    match class {
        "FloatStorage" => Some(FloatDtype::F32),
        "DoubleStorage" => Some(FloatDtype::F64),
        "HalfStorage" => Some(FloatDtype::F16),
        "BFloat16Storage" => Some(FloatDtype::BF16),
        _ => None,
    }
}

/// `Ok(None)` when `obj` is not a tensor; an error when it is a tensor rebuild call with
/// arguments we do not understand.
fn tensor_ref(name: &str, obj: &Object) -> Result<Option<TensorRef>> {
    let Object::Reduce { callable, args } = obj else {
        return Ok(None);
    };
    call_ref(name, callable, args)
}

fn call_ref(name: &str, callable: &Object, args: &Object) -> Result<Option<TensorRef>> {
    let (
        Object::Class {
            module_name,
            class_name,
        },
        Object::Tuple(args),
    ) = (callable, args)
    else {
        return Ok(None);
    };
    let bad = |what: &str| {
        werr(format!(
            "tensor `{name}`: unexpected pickle layout ({what})"
        ))
    };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            rebuild_tensor(args)
                .map(Some)
                .ok_or_else(|| bad("_rebuild_tensor arguments"))
        }
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => {
            let inner = args
                .first()
                .ok_or_else(|| bad("_rebuild_parameter without a tensor"))?;
            tensor_ref(name, inner)?
                .map(Some)
                .ok_or_else(|| bad("_rebuild_parameter of a non-tensor"))
        }
        ("torch._tensor", "_rebuild_from_type_v2") => match args.as_slice() {
            [func, _type, inner_args, ..] => call_ref(name, func, inner_args),
            _ => Err(bad("_rebuild_from_type_v2 arguments")),
        },
        _ => Ok(None),
    }
}

fn as_usize(o: &Object) -> Option<usize> {
    match o {
        Object::Int(i) => usize::try_from(*i).ok(),
        Object::Long(l) => usize::try_from(*l).ok(),
        _ => None,
    }
}

fn as_usizes(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(v) => v.iter().map(as_usize).collect(),
        _ => None,
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)` where storage is
/// `persistent_load(("storage", <class>, key, location, numel))`.
fn rebuild_tensor(args: &[Object]) -> Option<TensorRef> {
    let [Object::PersistentLoad(storage), offset, size, stride, ..] = args else {
        return None;
    };
    let Object::Tuple(st) = &**storage else {
        return None;
    };
    let [Object::Unicode(tag), Object::Class { class_name, .. }, Object::Unicode(key), _location, numel, ..] =
        st.as_slice()
    else {
        return None;
    };
    if tag != "storage" {
        return None;
    }
    Some(TensorRef {
        storage_class: class_name.clone(),
        storage_key: key.clone(),
        storage_numel: as_usize(numel)?,
        offset: as_usize(offset)?,
        shape: as_usizes(size)?,
        stride: as_usizes(stride)?,
    })
}

/// Row-major contiguous (strides of size-1 dimensions do not matter).
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    if shape.len() != stride.len() {
        return false;
    }
    if shape.contains(&0) {
        return true;
    }
    let mut expect = 1usize;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expect {
            return false;
        }
        expect = expect.saturating_mul(d);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity() {
        assert!(is_contiguous(&[52, 128], &[128, 1]));
        assert!(is_contiguous(&[], &[]));
        assert!(is_contiguous(&[1, 5], &[999, 1]));
        assert!(!is_contiguous(&[52, 128], &[1, 52]));
        assert!(!is_contiguous(&[4], &[2]));
    }
}
