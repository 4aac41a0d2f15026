//! Shared helpers: deterministic keys and times.

use vm_receipts::{MeshId, MeshKey, Timestamp};

/// A mesh key from a one-byte seed pattern (deterministic tests need no OS randomness).
pub fn key(n: u8) -> MeshKey {
    MeshKey::from_seed(&[n; 32])
}

/// A mesh id from a bare name.
pub fn mesh(name: &str) -> MeshId {
    MeshId::from_name(name).expect("valid mesh name")
}

/// A timestamp from its text.
pub fn at(text: &str) -> Timestamp {
    text.parse().expect("valid timestamp")
}
