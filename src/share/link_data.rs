//! A custom task's data file packed into a link: the `d=` value of a shared URL fragment.
//!
//! Layout (format version 1), before base64url ([`super::base64url`]): the magic `td`, the
//! version byte 1, then a zlib stream of the file's UTF-8 text. Decoding is total: every
//! string gives the text or an [`Error`] saying what is wrong, and never more than the
//! data limit ([`crate::tasks::custom::decode::MAX_BYTES`]) is inflated.

use super::base64url;
use crate::error::{Error, Result};
use crate::tasks::custom::decode::MAX_BYTES;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::{Read, Write};

/// Longest `d=` value a link may carry (the weights' 64 KiB and this stay under the
/// fragment's 96 KiB).
pub const MAX_LINK_DATA_CHARS: usize = 24 * 1024;

const MAGIC: &[u8; 2] = b"td";
const VERSION: u8 = 1;

/// Packs a data file's text for a link; [`fits_data_link`] says whether it may go in one.
pub fn encode_data_link(text: &str) -> Result<String> {
    let header = vec![MAGIC[0], MAGIC[1], VERSION];
    let mut z = ZlibEncoder::new(header, Compression::best());
    z.write_all(text.as_bytes())?;
    Ok(base64url::encode(&z.finish()?))
}

/// Whether a packed data file fits a link's budget.
pub fn fits_data_link(packed: &str) -> bool {
    packed.len() <= MAX_LINK_DATA_CHARS
}

/// The text of a `d=` value; errors name what is wrong.
pub fn decode_data_link(packed: &str) -> Result<String> {
    let bad = |m: String| Error::Io(format!("the link's data (d=): {m}"));
    if packed.len() > MAX_LINK_DATA_CHARS {
        return Err(bad(format!(
            "{} characters, more than {MAX_LINK_DATA_CHARS}",
            packed.len()
        )));
    }
    let bytes = base64url::decode(packed, "base64url").map_err(|e| {
        let m = e.to_string();
        bad(m.strip_prefix("weights: ").unwrap_or(&m).to_string())
    })?;
    if bytes.len() < 3 || &bytes[..2] != MAGIC || bytes[2] != VERSION {
        return Err(bad(
            "not a packed data file (no 'td' version 1 header)".into()
        ));
    }
    let mut out = Vec::new();
    ZlibDecoder::new(&bytes[3..])
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("the compressed text is damaged ({e})")))?;
    if out.len() > MAX_BYTES {
        return Err(bad(format!("it inflates to more than {MAX_BYTES} bytes")));
    }
    String::from_utf8(out).map_err(|_| bad("the text is not UTF-8".into()))
}
