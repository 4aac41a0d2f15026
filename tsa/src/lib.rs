//! RFC 3161 time stamps for VaultMesh anchors (DESIGN §7, the `rfc3161` anchor backend):
//! a client that asks a Time-Stamping Authority for a token over some bytes, and an offline
//! verifier a witness runs against the TSA certificates it trusts.
//!
//! # Code map
//! - [`TsaClient`] (`client.rs`): RFC 3161 over HTTP (§3.4): POST a TimeStampReq, check the
//!   TimeStampResp status, nonce and imprint, return the token.
//! - [`verify_token`] (`verify.rs`): the CMS signature, the ESSCertID binding, the
//!   time-stamping key usage, the chain to a [`TsaTrust`] anchor, genTime against a `now`
//!   the caller passes, the imprint against the data.
//! - `token.rs`: the RFC 3161 and CMS structures, parsed into borrowed views;
//!   `der.rs`: the strict DER reader under them; `crypto.rs`: digests and signatures
//!   (`ring`); `oid.rs`: the object identifiers.
//! - `testing` (feature `testing`): a real TSA built from `openssl ts`, on loopback HTTP.
//!
//! # Invariants
//! - No clock and no randomness are read here: the verifier takes `now_unix`, the client
//!   takes its `nonce`. Verification is a pure function of its inputs.
//! - No input panics: every DER read is bounds-checked, nothing is indexed, tokens and
//!   responses over [`MAX_TOKEN_BYTES`] / [`MAX_RESPONSE_BYTES`] are refused before parsing.
//! - Signatures and digests are checked over the bytes as received, never a re-encoding.
//! - A token is evidence only through [`verify_token`]: [`TsaClient::timestamp`] checks that
//!   the answer matches the question, not that the TSA is trusted.

use std::path::PathBuf;
use std::time::Duration;

mod client;
mod crypto;
mod der;
mod oid;
mod token;
mod verify;

#[cfg(feature = "testing")]
pub mod testing;

pub use client::TsaClient;
pub use verify::{
    DEFAULT_MAX_SKEW_SECS, TsaTrust, VerifiedToken, verify_token, verify_token_with_skew,
};

/// The largest time-stamp token accepted (DER bytes). Real tokens are 1 to 8 KiB (a
/// signature and a few certificates); the bound keeps a hostile token from costing much.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The largest HTTP response body accepted from a TSA (a TimeStampResp is a token plus a
/// few bytes of status).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a time stamp could not be obtained or was refused. Each variant names one problem,
/// so a witness can report `anchor_invalid` with the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// The bytes are not the expected DER structure; the text names the field.
    #[error("malformed {0}")]
    Malformed(String),
    /// An input over its size limit, refused before parsing.
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A hash, signature or key algorithm this crate does not verify (named by OID).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The token's messageImprint is not the hash of the data: a token for other bytes.
    #[error("the token's message imprint is not the hash of the data")]
    ImprintMismatch,
    /// The TSA answered with a token whose nonce is not the one we sent (a replayed or
    /// misrouted answer).
    #[error("the token's nonce is not the request's")]
    NonceMismatch,
    /// The signed message-digest attribute is not the hash of the TSTInfo: the TSTInfo was
    /// changed after signing.
    #[error("the signed message digest does not match the TSTInfo (altered content)")]
    ContentDigestMismatch,
    /// The TSA's signature over the signed attributes does not verify.
    #[error("the TSA signature does not verify")]
    BadSignature,
    /// No certificate, in the token or the trust store, matches the SignerInfo.
    #[error("the signer certificate is neither in the token nor trusted")]
    SignerNotFound,
    /// The ESSCertID / ESSCertIDv2 signed attribute names another certificate than the one
    /// that verified the signature.
    #[error("the signing-certificate attribute does not name the signer certificate")]
    SignerCertMismatch,
    /// The signer certificate is not a time-stamping certificate (RFC 3161 §2.3).
    #[error("signer certificate {subject:?} is not a TSA certificate: {reason}")]
    NotTimeStamping {
        /// The signer certificate's subject.
        subject: String,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// The signer certificate does not chain to a trusted certificate.
    #[error("signer certificate {0:?} does not chain to a trusted TSA certificate")]
    UntrustedSigner(String),
    /// A certificate on the chain had expired at genTime.
    #[error("certificate {subject:?} expired at {not_after} (Unix s), before genTime {gen_time}")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its notAfter, Unix seconds.
        not_after: i64,
        /// The token's genTime, Unix seconds.
        gen_time: i64,
    },
    /// A certificate on the chain was not yet valid at genTime.
    #[error(
        "certificate {subject:?} is valid from {not_before} (Unix s), after genTime {gen_time}"
    )]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore, Unix seconds.
        not_before: i64,
        /// The token's genTime, Unix seconds.
        gen_time: i64,
    },
    /// A certificate on the chain may not play its role (not a CA, an unknown critical
    /// extension, a path length exceeded).
    #[error("certificate {subject:?} refused: {reason}")]
    BadCertificate {
        /// The certificate's subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// genTime is later than the verifier's now plus the allowed skew.
    #[error("genTime {gen_time} (Unix s) is after now {now_unix} plus {max_skew_secs} s of skew")]
    FutureTime {
        /// The token's genTime, Unix seconds.
        gen_time: i64,
        /// The verifier's clock.
        now_unix: i64,
        /// The allowed skew.
        max_skew_secs: i64,
    },
    /// The TSA answered without granting a token.
    #[error("the TSA refused: status {status} ({name}): {text}", name = token::status_name(*status))]
    Rejected {
        /// PKIStatus (2 rejection, 3 waiting, …).
        status: u64,
        /// The TSA's statusString and failInfo, rendered.
        text: String,
    },
    /// The trust store could not be built from the given PEM.
    #[error("invalid TSA trust: {0}")]
    InvalidTrust(String),
    /// The TSA URL is not one this client can use.
    #[error("invalid TSA URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP exchange failed (connection, status, content type).
    #[error("TSA HTTP exchange failed: {0}")]
    Http(String),
    /// The TSA did not answer in time.
    #[error("the TSA did not answer within {0:?}")]
    Timeout(Duration),
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
