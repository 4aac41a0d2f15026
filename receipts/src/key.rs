//! Ed25519 keys and signatures in their textual forms, and domain-separated signing.
//!
//! Every signature covers `"vaultmesh-federation/v1/" + KIND + "\n" + message`, so a signature
//! made for one kind of document never verifies as another ([`Kind`]).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{EncodingError, shown, string_form};

/// The multicodec prefix of an Ed25519 public key (varint 0xed), as in did:key.
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
const KEY_PREFIX: &str = "ed25519:";

/// What a signature is for. The kind is part of the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A DiscoveryRecord.
    Discovery,
    /// A TrustProposal.
    Proposal,
    /// A ProposalResponse (accept, reject, counter).
    Response,
    /// A party's signature on a FederationAgreement.
    Agreement,
    /// A SignedRoot.
    Root,
    /// A WitnessAttestation.
    Witness,
    /// A RevocationNotice.
    Revocation,
    /// A DiscrepancyReport.
    Discrepancy,
    /// A SchemaSync.
    Schema,
    /// A DiscrepancyResolution.
    Resolution,
    /// A SuspensionNotice.
    Suspension,
    /// An ArbitrationRequest.
    Arbitration,
    /// An ArbitrationVerdict.
    Verdict,
    /// A signed HTTP request (DESIGN §8).
    Request,
    /// An anchor batch root signed by the `local` anchor backend.
    Anchor,
}

impl Kind {
    /// The name used in the signed message.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Discovery => "discovery",
            Kind::Proposal => "proposal",
            Kind::Response => "response",
            Kind::Agreement => "agreement",
            Kind::Root => "root",
            Kind::Witness => "witness",
            Kind::Revocation => "revocation",
            Kind::Discrepancy => "discrepancy",
            Kind::Schema => "schema",
            Kind::Resolution => "resolution",
            Kind::Suspension => "suspension",
            Kind::Arbitration => "arbitration",
            Kind::Verdict => "verdict",
            Kind::Request => "request",
            Kind::Anchor => "anchor",
        }
    }

    /// The exact bytes that are signed for `message` under this kind.
    pub fn signing_input(self, message: &[u8]) -> Vec<u8> {
        let mut input = Vec::with_capacity(32 + message.len());
        input.extend_from_slice(b"vaultmesh-federation/v1/");
        input.extend_from_slice(self.as_str().as_bytes());
        input.push(b'\n');
        input.extend_from_slice(message);
        input
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} signature does not verify with key {key}")]
pub struct BadSignature {
    /// The kind the signature was checked as.
    pub kind: Kind,
    /// The key it was checked against, in its text form.
    pub key: String,
}

/// An Ed25519 public key, written `ed25519:z6Mk…` (multibase base58btc of the did:key bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From the 32 raw key bytes; refuses bytes that are not a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, EncodingError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| EncodingError::PublicKey {
                value: hex::encode(bytes),
                reason: "the 32 bytes are not a valid Ed25519 point".into(),
            })
    }

    /// The 32 raw key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The multibase part, `z6Mk…`.
    pub fn multibase(&self) -> String {
        key_cache::printed(self.0.as_bytes(), || {
            let mut bytes = Vec::with_capacity(34);
            bytes.extend_from_slice(&ED25519_MULTICODEC);
            bytes.extend_from_slice(self.0.as_bytes());
            format!("z{}", bs58::encode(bytes).into_string())
        })
    }

    /// The `did:key:z6Mk…` form of this key.
    pub fn did_key(&self) -> String {
        format!("did:key:{}", self.multibase())
    }

    /// The libp2p PeerId of this key (`12D3KooW…`): the identity multihash of the protobuf
    /// encoding of an Ed25519 public key. Computed here so a DiscoveryRecord's `peer_id` can be
    /// checked without the network crate.
    pub fn peer_id(&self) -> String {
        // protobuf PublicKey { Type = Ed25519 (1), Data = 32 bytes }
        let mut proto = vec![0x08, 0x01, 0x12, 0x20];
        proto.extend_from_slice(self.0.as_bytes());
        let mut multihash = vec![0x00, u8::try_from(proto.len()).unwrap_or(u8::MAX)];
        multihash.extend_from_slice(&proto);
        bs58::encode(multihash).into_string()
    }

    /// Checks `signature` on `message` under `kind`. Uses strict verification (no small-order
    /// keys, canonical `s`), so one message has one valid signature encoding per key.
    pub fn verify(
        &self,
        kind: Kind,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), BadSignature> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(&kind.signing_input(message), &sig)
            .map_err(|_| BadSignature {
                kind,
                key: self.to_string(),
            })
    }
}

/// Keys parsed and printed recently, per thread. A key's text is base58 (quadratic to
/// encode and decode) and parsing it decompresses a curve point, which together cost about
/// what a signature check does; a node and a simulated mesh read the same few keys from
/// every stored agreement and peer entry. Both maps are pure functions of their keys, so
/// the cache is invisible but for time; each holds at most [`KEY_CACHE_ENTRIES`].
mod key_cache {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use ed25519_dalek::VerifyingKey;

    pub(super) const KEY_CACHE_ENTRIES: usize = 1024;

    thread_local! {
        static PARSED: RefCell<HashMap<String, VerifyingKey>> = RefCell::new(HashMap::new());
        static PRINTED: RefCell<HashMap<[u8; 32], String>> = RefCell::new(HashMap::new());
        /// Signatures printed recently: one signed document is written several times over
        /// (its record, its receipt, its message and the message's hash).
        static SIGNATURES: RefCell<HashMap<[u8; 64], String>> = RefCell::new(HashMap::new());
    }

    pub(super) fn signature_printed(bytes: &[u8; 64], make: impl FnOnce() -> String) -> String {
        if let Some(text) = SIGNATURES.with(|m| m.borrow().get(bytes).cloned()) {
            return text;
        }
        let text = make();
        SIGNATURES.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= KEY_CACHE_ENTRIES {
                m.clear();
            }
            m.insert(*bytes, text.clone());
        });
        text
    }

    pub(super) fn parsed(text: &str) -> Option<VerifyingKey> {
        PARSED.with(|m| m.borrow().get(text).copied())
    }

    pub(super) fn remember_parsed(text: &str, key: VerifyingKey) {
        PARSED.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= KEY_CACHE_ENTRIES {
                m.clear();
            }
            m.insert(text.to_owned(), key);
        });
    }

    pub(super) fn printed(bytes: &[u8; 32], make: impl FnOnce() -> String) -> String {
        if let Some(text) = PRINTED.with(|m| m.borrow().get(bytes).cloned()) {
            return text;
        }
        let text = make();
        PRINTED.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= KEY_CACHE_ENTRIES {
                m.clear();
            }
            m.insert(*bytes, text.clone());
        });
        text
    }
}

impl FromStr for PublicKey {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(key) = key_cache::parsed(s) {
            return Ok(Self(key));
        }
        let err = |reason: String| EncodingError::PublicKey {
            value: shown(s),
            reason,
        };
        let multibase = s
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| err("it must start with ed25519:".into()))?;
        let encoded = multibase
            .strip_prefix('z')
            .ok_or_else(|| err("expected multibase base58btc ('z') after ed25519:".into()))?;
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|e| err(format!("not base58btc: {e}")))?;
        if bytes.len() != 34 {
            return Err(err(format!(
                "expected 34 bytes (0xed 0x01 and a 32-byte key), found {}",
                bytes.len()
            )));
        }
        if bytes[..2] != ED25519_MULTICODEC {
            return Err(err(format!(
                "multicodec prefix {:02x}{:02x} is not Ed25519 (ed01)",
                bytes[0], bytes[1]
            )));
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&bytes[2..]);
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|_| err("the key bytes are not a valid Ed25519 point".into()))?;
        key_cache::remember_parsed(s, key);
        Ok(Self(key))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", self.multibase())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

string_form!(PublicKey);

/// An Ed25519 signature, written `z…` (multibase base58btc of its 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// From the 64 raw bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The 64 raw bytes.
    pub const fn to_bytes(&self) -> [u8; 64] {
        self.0
    }
}

impl FromStr for Signature {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| EncodingError::Signature {
            value: shown(s),
            reason,
        };
        let encoded = s
            .strip_prefix('z')
            .ok_or_else(|| err("expected multibase base58btc, starting with 'z'".into()))?;
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|e| err(format!("not base58btc: {e}")))?;
        let raw: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| err(format!("expected 64 bytes, found {}", bytes.len())))?;
        Ok(Self(raw))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = key_cache::signature_printed(&self.0, || {
            format!("z{}", bs58::encode(self.0).into_string())
        });
        f.write_str(&text)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

string_form!(Signature);

/// A mesh's secret signing key. The seed is zeroed on drop and never printed.
#[derive(Clone)]
pub struct MeshKey(SigningKey);

impl MeshKey {
    /// From a 32-byte seed. The caller brings the entropy (the node's clock module), so this
    /// crate touches no OS random number generator.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` under `kind`.
    pub fn sign(&self, kind: Kind, message: &[u8]) -> Signature {
        Signature(self.0.sign(&kind.signing_input(message)).to_bytes())
    }

    /// The raw 32-byte seed, for handing the same identity to libp2p (zeroed on drop).
    pub fn seed_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The seed in its storage form, `z` + base58btc of the 32 bytes.
    pub fn seed_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "z{}",
            bs58::encode(self.0.as_bytes()).into_string()
        ))
    }

    /// Parses the storage form written by [`MeshKey::seed_text`].
    pub fn from_seed_text(text: &str) -> Result<Self, EncodingError> {
        let encoded = text
            .trim()
            .strip_prefix('z')
            .ok_or_else(|| EncodingError::SecretKey {
                reason: "expected multibase base58btc, starting with 'z'".into(),
            })?;
        let bytes = Zeroizing::new(bs58::decode(encoded).into_vec().map_err(|e| {
            EncodingError::SecretKey {
                reason: format!("not base58btc: {e}"),
            }
        })?);
        let seed: &[u8; 32] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| EncodingError::SecretKey {
                    reason: format!("expected a 32-byte seed, found {} bytes", bytes.len()),
                })?;
        Ok(Self::from_seed(seed))
    }
}

impl fmt::Debug for MeshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeshKey({}, secret hidden)", self.public_key())
    }
}
