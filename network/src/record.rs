//! DHT records: the key a mesh's DiscoveryRecord lives under and the checks every record
//! passes before we store it (on PUT from a peer) or believe it (on GET). Kademlia has no
//! validation hook of its own: with `StoreInserts::FilterBoth` every inbound PUT comes to us,
//! and every fetched record goes through [`validate`] before it leaves this crate.

use vm_receipts::documents::{DiscoveryRecord, parse};
use vm_receipts::{MeshId, Timestamp};

/// Largest record value we store or accept. A Kademlia packet is capped at 16 KiB and carries
/// the record with its key and framing, so the value stays well under that.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;

/// The name public meshes announce themselves under; the DHT key is its CID
/// ([`public_provider_key`]).
pub const PUBLIC_PROVIDER_KEY: &str = "/vaultmesh/public";

/// The DHT provider key of [`PUBLIC_PROVIDER_KEY`]: a CIDv1 (`0x01`), raw codec (`0x55`), over
/// the sha2-256 multihash (`0x12 0x20` + digest) of the name. Other implementations' DHT
/// servers (js-libp2p's) take `ADD_PROVIDER`/`GET_PROVIDERS` only for keys that are CIDs.
pub fn public_provider_key() -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, PUBLIC_PROVIDER_KEY.as_bytes());
    let mut key = vec![0x01, 0x55, 0x12, 0x20];
    key.extend_from_slice(digest.as_ref());
    key
}

/// The DHT key of `mesh_id`'s discovery record.
pub fn mesh_key(mesh_id: &MeshId) -> Vec<u8> {
    format!("/vaultmesh/mesh/{mesh_id}").into_bytes()
}

/// Why a DHT record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Over [`MAX_RECORD_BYTES`].
    #[error("record of {0} bytes exceeds {MAX_RECORD_BYTES}")]
    Oversized(usize),
    /// Not a valid, self-signed DiscoveryRecord.
    #[error("not a valid signed discovery record: {0}")]
    Invalid(String),
    /// Stored under a key that is not its mesh's.
    #[error("record of {mesh} stored under the key {key:?}")]
    WrongKey {
        /// The record's mesh.
        mesh: MeshId,
        /// The key it came under.
        key: String,
    },
    /// Published by a peer other than the one the record names.
    #[error("record of peer {expected} published by {publisher}")]
    WrongPublisher {
        /// The record's peer id.
        expected: String,
        /// Who published it.
        publisher: String,
    },
    /// Too old, or from the future.
    #[error("record of {mesh} updated at {updated_at} is not fresh ({reason})")]
    NotFresh {
        /// The record's mesh.
        mesh: MeshId,
        /// Its `updated_at`.
        updated_at: Timestamp,
        /// Too old or in the future.
        reason: String,
    },
    /// A record of a mesh whose fresh record, held here, is signed by another key.
    #[error("a record of {mesh} signed by another key than the one its held record is signed by")]
    KeyChanged {
        /// The record's mesh.
        mesh: MeshId,
    },
}

/// Freshness bounds for records.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// Oldest acceptable age, seconds.
    pub max_age_secs: i64,
    /// How far in the future `updated_at` may be, seconds.
    pub max_skew_secs: i64,
}

/// Checks a record fetched from or put into the DHT: size, parse and rules, self-signature
/// (which also binds its public key to its `peer_id`), key, publisher and freshness.
pub fn validate(
    key: &[u8],
    value: &[u8],
    publisher: Option<&str>,
    now: Timestamp,
    freshness: Freshness,
) -> Result<DiscoveryRecord, RecordError> {
    let record = parse_sized(value)?;
    check(&record, key, publisher, now, freshness)?;
    Ok(record)
}

/// Size, then parse and the document's own rules.
fn parse_sized(value: &[u8]) -> Result<DiscoveryRecord, RecordError> {
    if value.len() > MAX_RECORD_BYTES {
        return Err(RecordError::Oversized(value.len()));
    }
    parse(value).map_err(|e| RecordError::Invalid(e.to_string()))
}

/// Everything but size and parsing: signature, key, publisher, freshness.
fn check(
    record: &DiscoveryRecord,
    key: &[u8],
    publisher: Option<&str>,
    now: Timestamp,
    freshness: Freshness,
) -> Result<(), RecordError> {
    record
        .verify_self_signed()
        .map_err(|e| RecordError::Invalid(e.to_string()))?;
    if key != mesh_key(&record.mesh_id).as_slice() {
        return Err(RecordError::WrongKey {
            mesh: record.mesh_id.clone(),
            key: String::from_utf8_lossy(key).into_owned(),
        });
    }
    if let Some(publisher) = publisher
        && publisher != record.peer_id
    {
        return Err(RecordError::WrongPublisher {
            expected: record.peer_id.clone(),
            publisher: publisher.to_owned(),
        });
    }
    let not_fresh = |reason: String| RecordError::NotFresh {
        mesh: record.mesh_id.clone(),
        updated_at: record.updated_at,
        reason,
    };
    if record.updated_at.seconds_since(now) > freshness.max_skew_secs {
        return Err(not_fresh("in the future".into()));
    }
    let age = now.seconds_since(record.updated_at);
    if age > freshness.max_age_secs {
        return Err(not_fresh(format!(
            "{age} s old, at most {} s",
            freshness.max_age_secs
        )));
    }
    Ok(())
}

/// Checks our own record before we publish it, and returns the key it goes under.
pub fn validate_own(
    value: &[u8],
    now: Timestamp,
    freshness: Freshness,
) -> Result<Vec<u8>, RecordError> {
    let record = parse_sized(value)?;
    let key = mesh_key(&record.mesh_id);
    check(&record, &key, Some(&record.peer_id), now, freshness)?;
    Ok(key)
}

/// Whether `incoming` (validated) may replace `held` (the record our store holds under the
/// same key): a mesh's record is replaced only by one signed with the same key, while the
/// held one is fresh. Otherwise anyone could take over a mesh id in the DHT, our own
/// included, by publishing a newer self-signed record in its name: mesh ids are names, not
/// keys. A held record that has aged out may be replaced by any valid one.
pub fn may_replace(
    held: &[u8],
    incoming: &DiscoveryRecord,
    now: Timestamp,
    freshness: Freshness,
) -> Result<bool, RecordError> {
    let Ok(held) = parse::<DiscoveryRecord>(held) else {
        return Ok(true);
    };
    if now.seconds_since(held.updated_at) > freshness.max_age_secs {
        return Ok(true);
    }
    if held.public_key != incoming.public_key {
        return Err(RecordError::KeyChanged {
            mesh: incoming.mesh_id.clone(),
        });
    }
    Ok(held.updated_at < incoming.updated_at)
}

/// The `updated_at` of a stored record, if it parses (records in our store were validated).
pub fn parse_updated_at(value: &[u8]) -> Option<Timestamp> {
    parse::<DiscoveryRecord>(value).ok().map(|r| r.updated_at)
}

#[cfg(test)]
mod provider_key_tests {
    use super::public_provider_key;

    /// The CID another implementation computes for `/vaultmesh/public` (CIDv1, raw, sha2-256;
    /// the multibase base32 form is what `ipfs cid format` and js `CID.toString()` print).
    #[test]
    fn the_public_provider_key_is_the_cid_of_its_name() {
        let key = public_provider_key();
        assert_eq!(&key[..4], &[0x01, 0x55, 0x12, 0x20]);
        let hex: String = key[4..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "0d47e818ff75c331165ad3c6d140f2b25271b23bd63d00978e6751c30fda0221"
        );
        // base32 (RFC 4648, lower case, no padding) with the multibase prefix `b`.
        let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut text = String::from("b");
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in &key {
            buffer = (buffer << 8) | u32::from(*byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                text.push(char::from(alphabet[((buffer >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            text.push(char::from(alphabet[((buffer << (5 - bits)) & 31) as usize]));
        }
        assert_eq!(
            text,
            "bafkreiani7ubr73vymyrmwwty3iub4vskjy3eo6whuajpdthkhbq7wqcee"
        );
    }
}
