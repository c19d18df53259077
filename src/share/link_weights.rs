//! Model weights packed into a link: the `w=` value of a shared URL fragment.
//!
//! Layout (format version 1), before base64url ([`super::base64url`]):
//!
//! | bytes  | content |
//! | ------ | ------- |
//! | 0..2   | magic `tf` |
//! | 2      | format version, 1 |
//! | 3      | reserved, 0 |
//! | 4..8   | u32 LE: N, the number of values (the parameter table's total length) |
//! | 8..16  | u64 LE: the training step the weights are from |
//! | 16..   | a zlib stream of 2N bytes: the IEEE f16 bit pattern of every value, in parameter-table order, as two byte planes (the N low bytes, then the N high bytes) |
//!
//! The byte planes help deflate: a high byte holds the sign and the exponent, which vary
//! little across a weight matrix, while the low bytes are close to noise. The config is not
//! in the blob: the link's other keys give it, and N must match its parameter table.
//!
//! Decoding is total: every input string gives `Ok` or an [`Error`] saying what is wrong,
//! and nothing is allocated beyond the limit ([`MAX_LINK_WEIGHTS_CHARS`]) and what the
//! config needs.

use super::base64url;
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Weights};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use half::f16;
use std::io::{Read, Write};

/// Longest `w=` value a link may carry (64 KiB of text).
pub const MAX_LINK_WEIGHTS_CHARS: usize = 64 * 1024;
/// Models with more values than this are not even tried: 2 bytes a value would need a
/// compression ratio no trained weights reach to fit under the limit.
pub const MAX_LINK_WEIGHTS_VALUES: usize = 1 << 20;

const MAGIC: &[u8; 2] = b"tf";
const VERSION: u8 = 1;
const HEADER: usize = 16;

/// The f16 nearest to `x` (round to nearest, ties to even), as its bits. Values beyond the
/// f16 range become ±infinity, which the callers refuse.
pub fn to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// `x` rounded to f16 and back: what a link carries for `x`.
pub fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Packs `w` (from training step `step`) into the text of a link's `w=` key. Any size is
/// encoded; [`fits_link`] says whether the result may go in a link. Errors name the
/// tensor and index of a value f16 cannot hold (non-finite, or beyond ±65504).
pub fn encode_weights_link(w: &Weights, step: u64) -> Result<String> {
    let n = w.data.len();
    if n != w.table.total_len() {
        return Err(Error::Weights(format!(
            "weights hold {n} values but the parameter table needs {}",
            w.table.total_len()
        )));
    }
    let n32 = u32::try_from(n)
        .map_err(|_| Error::Weights(format!("{n} values are too many for a link")))?;
    let mut planes = vec![0u8; 2 * n]; // (2, N): low bytes, then high bytes
    for p in &w.table.params {
        for (i, &x) in w.data[p.offset..p.offset + p.len].iter().enumerate() {
            let h = f16::from_f32(x);
            if !h.is_finite() {
                return Err(Error::Weights(format!(
                    "tensor `{}` holds {x} at flat index {i}, which f16 cannot hold (|x| ≤ 65504); share the .safetensors file instead",
                    p.name
                )));
            }
            let [lo, hi] = h.to_bits().to_le_bytes();
            planes[p.offset + i] = lo;
            planes[n + p.offset + i] = hi;
        }
    }
    let mut bytes = Vec::with_capacity(HEADER + n);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[VERSION, 0]);
    bytes.extend_from_slice(&n32.to_le_bytes());
    bytes.extend_from_slice(&step.to_le_bytes());
    let mut z = ZlibEncoder::new(bytes, Compression::best());
    z.write_all(&planes)?;
    Ok(base64url::encode(&z.finish()?))
}

/// Whether an encoded `w=` value is short enough for a link.
pub fn fits_link(text: &str) -> bool {
    text.len() <= MAX_LINK_WEIGHTS_CHARS
}

/// Unpacks a link's `w=` value into weights for `cfg` and the step they are from. The
/// number of values must equal `cfg`'s parameter table; every value must be finite.
pub fn decode_weights_link(text: &str, cfg: &ModelConfig) -> Result<(Weights, u64)> {
    const WHAT: &str = "link weights (w=)";
    let err = |m: String| Error::Weights(format!("{WHAT}: {m}"));
    if text.len() > MAX_LINK_WEIGHTS_CHARS {
        return Err(err(format!(
            "{} characters, more than the limit of {MAX_LINK_WEIGHTS_CHARS}",
            text.len()
        )));
    }
    let bytes = base64url::decode(text, WHAT)?;
    if bytes.len() < HEADER {
        return Err(err(format!(
            "{} bytes is too short for the 16-byte header (the link was cut?)",
            bytes.len()
        )));
    }
    if &bytes[0..2] != MAGIC {
        return Err(err(
            "does not start with the `tf` marker: not toyformer weights".into(),
        ));
    }
    if bytes[2] != VERSION {
        return Err(err(format!(
            "format version {} is not supported by this page (it reads version {VERSION})",
            bytes[2]
        )));
    }
    let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let step = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let mut w = Weights::zeros(cfg)?;
    let want = w.table.total_len();
    if n != want {
        return Err(err(format!(
            "the link holds {n} values but the model config (n_layers {}, n_heads {}, d_model {}, d_head {}, d_vocab {}, n_ctx {}) has {want}",
            cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_vocab, cfg.n_ctx
        )));
    }
    let mut z = ZlibDecoder::new(&bytes[HEADER..]);
    let mut planes = Vec::with_capacity(2 * n);
    (&mut z)
        .take(2 * n as u64 + 1)
        .read_to_end(&mut planes)
        .map_err(|e| err(format!("the compressed data is damaged ({e})")))?;
    if planes.len() != 2 * n {
        let why = if planes.len() < 2 * n {
            "fewer"
        } else {
            "more"
        };
        return Err(err(format!("the compressed data holds {why} bytes than {n} f16 values need (the link was cut or altered)")));
    }
    if z.total_in() as usize != bytes.len() - HEADER {
        return Err(err(
            "bytes follow the end of the compressed data (the link was altered)".into(),
        ));
    }
    for p in &w.table.params {
        for i in 0..p.len {
            let j = p.offset + i;
            let x = f16::from_bits(u16::from_le_bytes([planes[j], planes[n + j]])).to_f32();
            if !x.is_finite() {
                return Err(err(format!(
                    "tensor `{}` holds a non-finite value at flat index {i}",
                    p.name
                )));
            }
            w.data[j] = x;
        }
    }
    Ok((w, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounding_by_hand() {
        // 1/3 = 0x3555 in f16 (0.333251953125); 65504 is the largest finite f16;
        // 65520 is the midpoint to 65536 and rounds to even (infinity).
        assert_eq!(to_f16_bits(1.0 / 3.0), 0x3555);
        assert_eq!(round_f16(1.0 / 3.0), 0.333_251_95);
        assert_eq!(to_f16_bits(65504.0), 0x7bff);
        assert_eq!(to_f16_bits(65519.0), 0x7bff);
        assert_eq!(to_f16_bits(65520.0), 0x7c00);
        // 2^-24 is the smallest subnormal; half of it ties to even (zero)
        assert_eq!(to_f16_bits(2f32.powi(-24)), 0x0001);
        assert_eq!(to_f16_bits(2f32.powi(-25)), 0x0000);
        assert_eq!(to_f16_bits(-0.0), 0x8000);
        // 1 + 2^-11 is halfway between 1 and the next f16 (1 + 2^-10): ties to even = 1
        assert_eq!(to_f16_bits(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
    }
}
