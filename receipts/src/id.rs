//! Identifiers: mesh ids, scroll names and document ids.

use std::fmt;
use std::str::FromStr;

use crate::error::{EncodingError, shown, string_form};

const MESH_PREFIX: &str = "did:vm:mesh:";

/// A mesh identity: `did:vm:mesh:<name>`, the name 1–63 characters of `[a-z0-9.-]`, starting
/// and ending with a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeshId(String);

impl MeshId {
    /// Builds the id of a bare mesh name (`vaultmesh-berlin`).
    pub fn from_name(name: &str) -> Result<Self, EncodingError> {
        check_mesh_name(name).map_err(|reason| EncodingError::MeshId {
            value: shown(name),
            reason,
        })?;
        Ok(Self(format!("{MESH_PREFIX}{name}")))
    }

    /// Accepts either form an operator types: the full id or the bare name.
    pub fn parse_flexible(text: &str) -> Result<Self, EncodingError> {
        if text.starts_with("did:") {
            text.parse()
        } else {
            Self::from_name(text)
        }
    }

    /// The bare name after `did:vm:mesh:`.
    pub fn name(&self) -> &str {
        &self.0[MESH_PREFIX.len()..]
    }

    /// The full `did:vm:mesh:<name>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_mesh_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name after did:vm:mesh: is empty");
    }
    if name.len() > 63 {
        return Err("the name is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("the name may hold only a-z, 0-9, '.' and '-'");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err("the name must start and end with a letter or digit");
    }
    Ok(())
}

impl FromStr for MeshId {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(name) = s.strip_prefix(MESH_PREFIX) else {
            return Err(EncodingError::MeshId {
                value: shown(s),
                reason: "it must start with did:vm:mesh:",
            });
        };
        Self::from_name(name)
    }
}

impl fmt::Display for MeshId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MeshId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeshId({})", self.0)
    }
}

string_form!(MeshId);

/// A scroll name as the seed writes it (`Federation`, `Compliance`): a letter, then up to 63
/// of `[A-Za-z0-9_-]`.
///
/// Names are compared without regard to case (`Compliance` and `compliance` are one scroll):
/// files use the lower-case form, so two names differing only in case would share a log. The
/// form as written is kept for display and serialisation.
#[derive(Clone)]
pub struct ScrollName(String);

impl PartialEq for ScrollName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for ScrollName {}

impl std::hash::Hash for ScrollName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl PartialOrd for ScrollName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScrollName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let lower = |s: &Self| {
            s.0.bytes()
                .map(|b| b.to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        lower(self).cmp(&lower(other))
    }
}

impl ScrollName {
    /// The Federation scroll every node keeps.
    pub fn federation() -> Self {
        Self("Federation".to_owned())
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-case form used in file names (`receipts/<lower>/<lower>_events.jsonl`).
    pub fn file_stem(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl FromStr for ScrollName {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| EncodingError::ScrollName {
            value: shown(s),
            reason,
        };
        let Some(first) = s.bytes().next() else {
            return Err(err("it is empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(err("it must start with a letter"));
        }
        if s.len() > 64 {
            return Err(err("it is longer than 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err("it may hold only letters, digits, '_' and '-'"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ScrollName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ScrollName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScrollName({})", self.0)
    }
}

string_form!(ScrollName);

/// The id of a proposal, agreement, attestation or receipt (`fed-proposal-2025-12-06-001`):
/// 1–128 characters of `[A-Za-z0-9._:-]`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId(String);

impl DocumentId {
    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DocumentId {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| EncodingError::DocumentId {
            value: shown(s),
            reason,
        };
        let Some(first) = s.bytes().next() else {
            return Err(err("it is empty"));
        };
        if !first.is_ascii_alphanumeric() {
            return Err(err("it must start with a letter or digit"));
        }
        if s.len() > 128 {
            return Err(err("it is longer than 128 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(err(
                "it may hold only letters, digits, '.', '_', ':' and '-'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({})", self.0)
    }
}

string_form!(DocumentId);
