//! `blake3:<64 lowercase hex>`: every hash on the wire and in receipts.

use std::fmt;
use std::str::FromStr;

use crate::error::{EncodingError, shown, string_form};

const PREFIX: &str = "blake3:";

/// A BLAKE3-256 digest in its one textual form, `blake3:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Blake3Hash([u8; 32]);

impl Blake3Hash {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Plain BLAKE3 of `data` (agreement hashes, evidence hashes; not Merkle leaves, which are
    /// domain-separated in [`crate::merkle`]).
    pub fn digest(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// Parses exactly 64 lowercase hex digits (the part after `blake3:`); `None` otherwise.
    /// The hot path of opening a scroll, so it skips the error-message machinery of `FromStr`.
    pub fn from_hex(hex_digits: &[u8]) -> Option<Self> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            }
        }
        if hex_digits.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (out, pair) in bytes.iter_mut().zip(hex_digits.chunks_exact(2)) {
            *out = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Self(bytes))
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Blake3Hash {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| EncodingError::Hash {
            value: shown(s),
            reason,
        };
        let Some(hex_part) = s.strip_prefix(PREFIX) else {
            return Err(err("it must start with blake3:".into()));
        };
        if hex_part.len() != 64 {
            return Err(err(format!(
                "expected 64 hex digits after blake3:, found {} characters",
                hex_part.chars().count()
            )));
        }
        if let Some(bad) = hex_part
            .chars()
            .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(err(format!(
                "{bad:?} is not a lowercase hex digit (0-9, a-f)"
            )));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|e| err(e.to_string()))?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Blake3Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Blake3Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

string_form!(Blake3Hash);
