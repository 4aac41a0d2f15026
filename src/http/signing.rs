//! Signed requests (DESIGN §8). The seed signs `METHOD|PATH|TIMESTAMP|BODY_HASH`, which binds
//! neither sender, receiver nor a nonce; we sign those fields and the three more:
//!
//! ```text
//! Ed25519(key, "vaultmesh-federation/v1/request\n" +
//!              METHOD|PATH_AND_QUERY|TIMESTAMP|BODY_HASH|ORIGIN|DESTINATION|NONCE)
//! ```
//!
//! exactly as sent on the wire (no re-encoding), `BODY_HASH` = `blake3:<hex>` of the body
//! bytes (`blake3("")` without a body), `DESTINATION` = the receiving mesh. Headers:
//! `X-Mesh-ID` (origin), `X-Timestamp`, `X-Nonce` (16+ random bytes, base58), `X-Signature`
//! (base58btc multibase). A field holding `|` or a line break is refused, so no two requests
//! share a signing input. The receiver also checks the time window, the replay cache and
//! that the TLS client key is the origin's key; those need state and live in the node.

use vm_receipts::{Blake3Hash, Kind, MeshId, MeshKey, PublicKey, Signature, Timestamp};

/// The header names.
pub const MESH_ID: &str = "x-mesh-id";
/// When the request was signed (RFC 3339, whole seconds).
pub const TIMESTAMP: &str = "x-timestamp";
/// A fresh random value per request.
pub const NONCE: &str = "x-nonce";
/// The Ed25519 signature.
pub const SIGNATURE: &str = "x-signature";

/// How far a request's timestamp may be from the receiver's clock (DESIGN §8).
pub const WINDOW_SECS: i64 = 300;

/// Nonces are 16 to 64 bytes, base58 (at most 88 characters).
const MAX_NONCE_CHARS: usize = 88;

/// Why a request's signature headers are refused (each an HTTP 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A header is absent.
    #[error("missing header {0}")]
    Missing(&'static str),
    /// A signature header is given more than once (which one would count is a guess no
    /// signer should leave to the server).
    #[error("header {0} appears more than once")]
    Duplicate(&'static str),
    /// A header is not in its form.
    #[error("header {header}: {reason}")]
    Malformed {
        /// Which.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A signed field holds `|` or a line break.
    #[error("{0} holds a '|' or a line break")]
    Separator(&'static str),
    /// The timestamp is outside the window.
    #[error("timestamp {timestamp} is more than {WINDOW_SECS} s from our clock ({now})")]
    Stale {
        /// Signed at.
        timestamp: Timestamp,
        /// Our clock.
        now: Timestamp,
    },
    /// The signature does not verify for the origin's key and this destination.
    #[error("the signature does not verify for {origin} → {destination}")]
    BadSignature {
        /// Who claims to sign.
        origin: MeshId,
        /// Whom it must be for (us).
        destination: MeshId,
    },
    /// The (origin, nonce) was seen within the window.
    #[error("replayed request (nonce {0} already used)")]
    Replay(String),
    /// The TLS client certificate is not the origin's key.
    #[error("the TLS client certificate is not {0}'s key")]
    TlsKeyMismatch(MeshId),
    /// The origin is not a mesh we hold a key for.
    #[error("unknown origin {0}")]
    UnknownOrigin(MeshId),
}

/// The signature headers of one request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Mesh-ID`.
    pub origin: MeshId,
    /// `X-Timestamp`, as sent.
    pub timestamp_text: String,
    /// Parsed.
    pub timestamp: Timestamp,
    /// `X-Nonce`.
    pub nonce: String,
    /// `X-Signature`.
    pub signature: Signature,
}

fn field(name: &'static str, value: &str) -> Result<(), AuthError> {
    if value.contains('|') || value.contains('\n') || value.contains('\r') {
        return Err(AuthError::Separator(name));
    }
    Ok(())
}

/// The message signed for a request.
#[allow(clippy::too_many_arguments)]
pub fn signing_message(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    body: &[u8],
    origin: &MeshId,
    destination: &MeshId,
    nonce: &str,
) -> Result<Vec<u8>, AuthError> {
    field("method", method)?;
    field("path", path_and_query)?;
    field("timestamp", timestamp)?;
    field("nonce", nonce)?;
    let body_hash = Blake3Hash::digest(body).to_string();
    Ok(
        format!("{method}|{path_and_query}|{timestamp}|{body_hash}|{origin}|{destination}|{nonce}")
            .into_bytes(),
    )
}

/// The four headers for a request from `origin` to `destination`; `nonce_bytes` must be
/// fresh random bytes (16 or more).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    key: &MeshKey,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    origin: &MeshId,
    destination: &MeshId,
    now: Timestamp,
    nonce_bytes: &[u8],
) -> Result<Vec<(&'static str, String)>, AuthError> {
    let nonce = bs58::encode(nonce_bytes).into_string();
    let timestamp = now.to_string();
    let message = signing_message(
        method,
        path_and_query,
        &timestamp,
        body,
        origin,
        destination,
        &nonce,
    )?;
    let signature = key.sign(Kind::Request, &message);
    Ok(vec![
        (MESH_ID, origin.to_string()),
        (TIMESTAMP, timestamp),
        (NONCE, nonce),
        (SIGNATURE, signature.to_string()),
    ])
}

/// Parses the signature headers (`get` looks one up by lower-case name).
/// Refuses a request that gives any of the four signature headers more than once; `count`
/// says how many times a header (lower-case name) appears.
pub fn single_headers(count: impl Fn(&str) -> usize) -> Result<(), AuthError> {
    for name in [MESH_ID, TIMESTAMP, NONCE, SIGNATURE] {
        if count(name) > 1 {
            return Err(AuthError::Duplicate(name));
        }
    }
    Ok(())
}

/// Parses the four signature headers (each given once: see [`single_headers`]).
pub fn parse_headers<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<SignedHeaders, AuthError> {
    let need = |name: &'static str| get(name).ok_or(AuthError::Missing(name));
    let malformed = |header: &'static str, reason: String| AuthError::Malformed { header, reason };
    let origin_text = need(MESH_ID)?;
    field("X-Mesh-ID", origin_text)?;
    let origin: MeshId = origin_text
        .parse()
        .map_err(|e: vm_receipts::EncodingError| malformed(MESH_ID, e.to_string()))?;
    let timestamp_text = need(TIMESTAMP)?;
    field("X-Timestamp", timestamp_text)?;
    let timestamp: Timestamp = timestamp_text
        .parse()
        .map_err(|e: vm_receipts::EncodingError| malformed(TIMESTAMP, e.to_string()))?;
    let nonce = need(NONCE)?;
    field("X-Nonce", nonce)?;
    if nonce.len() > MAX_NONCE_CHARS {
        return Err(malformed(NONCE, "longer than 64 bytes".into()));
    }
    let decoded = bs58::decode(nonce)
        .into_vec()
        .map_err(|e| malformed(NONCE, format!("not base58: {e}")))?;
    if !(16..=64).contains(&decoded.len()) {
        return Err(malformed(
            NONCE,
            "must be 16 to 64 random bytes, base58".into(),
        ));
    }
    let signature: Signature = need(SIGNATURE)?
        .parse()
        .map_err(|e: vm_receipts::EncodingError| malformed(SIGNATURE, e.to_string()))?;
    Ok(SignedHeaders {
        origin,
        timestamp_text: timestamp_text.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        signature,
    })
}

/// Checks the window and the signature of a request to `destination` whose origin holds
/// `key`. The replay cache and the TLS key are the caller's.
pub fn verify(
    headers: &SignedHeaders,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    destination: &MeshId,
    key: &PublicKey,
    now: Timestamp,
) -> Result<(), AuthError> {
    if headers.timestamp.seconds_since(now).abs() > WINDOW_SECS {
        return Err(AuthError::Stale {
            timestamp: headers.timestamp,
            now,
        });
    }
    let message = signing_message(
        method,
        path_and_query,
        &headers.timestamp_text,
        body,
        &headers.origin,
        destination,
        &headers.nonce,
    )?;
    key.verify(Kind::Request, &message, &headers.signature)
        .map_err(|_| AuthError::BadSignature {
            origin: headers.origin.clone(),
            destination: destination.clone(),
        })
}
