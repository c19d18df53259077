//! base64url without padding (RFC 4648 §5): the alphabet `A-Z a-z 0-9 - _`, every character
//! of which may stand in a URL fragment unescaped.
//!
//! Decoding is strict and total: any character outside the alphabet, a length that no
//! encoding has (4k + 1), or non-zero bits left over in the last character is an error
//! naming the position, never a panic.

use crate::error::{Error, Result};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The 6-bit value of an alphabet character.
fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a') as u32 + 26),
        b'0'..=b'9' => Some((c - b'0') as u32 + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Encodes bytes as base64url, without `=` padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        // n bytes give n + 1 characters
        for i in 0..=n {
            out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url without padding. `what` names the text in error messages.
pub fn decode(text: &str, what: &str) -> Result<Vec<u8>> {
    let s = text.as_bytes();
    if s.len() % 4 == 1 {
        return Err(Error::Weights(format!(
            "{what}: {} characters is not a possible base64url length",
            s.len()
        )));
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    for (ci, chunk) in s.chunks(4).enumerate() {
        let mut v = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let x = value(c).ok_or_else(|| {
                let pos = ci * 4 + i;
                // the character at byte `pos` (text may hold multi-byte characters)
                let shown = text.get(pos..).and_then(|t| t.chars().next()).map_or("a non-ASCII byte".to_string(), |ch| format!("{ch:?}"));
                Error::Weights(format!("{what}: character {shown} at position {pos} is not base64url (A-Z a-z 0-9 - _)"))
            })?;
            v |= x << (18 - 6 * i);
        }
        let n = chunk.len() - 1; // bytes this chunk holds
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        if n < 3 && bytes[n..].iter().any(|&b| b != 0) {
            return Err(Error::Weights(format!(
                "{what}: the last character has stray bits (the text was cut or altered)"
            )));
        }
        out.extend_from_slice(&bytes[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        // RFC 4648 §10, padding removed (these strings use no '+' or '/', so they are the same in base64url)
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc, "t").unwrap(), plain.as_bytes());
        }
        // the two characters that differ from standard base64: 0xfb 0xff → "+/8" there, "-_8" here
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8", "t").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn rejects_bad_text() {
        assert!(decode("Zm9v=", "t")
            .unwrap_err()
            .to_string()
            .contains("length"));
        assert!(decode("Zm+v", "t")
            .unwrap_err()
            .to_string()
            .contains("'+' at position 2"));
        assert!(decode("Zmé", "t")
            .unwrap_err()
            .to_string()
            .contains("'é' at position 2"));
        // "Zh" decodes to 0x66 plus stray low bits
        assert!(decode("Zh", "t")
            .unwrap_err()
            .to_string()
            .contains("stray bits"));
    }
}
