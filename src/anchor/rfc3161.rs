//! The `rfc3161` anchor backend: a time-stamp token from a TSA over the batch root.
//!
//! The token's message imprint is SHA-256 of the 32 raw bytes of the batch root (a TSA hashes
//! what it stamps with a hash it knows; blake3 is not one). The proof carries the token
//! (`tsa_token`, base64 of its DER) and, for the operator, the TSA's URL. Verification is
//! offline ([`vm_tsa::verify_token`]): imprint, CMS signature, the signer's certificate chain
//! up to a TSA certificate the verifier trusts, the time-stamping key usage, and a time not
//! in the future.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use vm_receipts::{Blake3Hash, Timestamp};

use super::{AnchorError, BackendAnchor, field};

pub use vm_tsa::TsaTrust;

/// Most bytes of a token we accept in a proof (the TSA crate refuses larger ones too).
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// How far a TSA's clock may run ahead of ours.
const TSA_SKEW_SECS: i64 = 300;

/// A configured TSA.
#[derive(Debug)]
pub struct Rfc3161Backend {
    client: vm_tsa::TsaClient,
    url: String,
}

impl Rfc3161Backend {
    /// A backend for the TSA at `url` (`http://`).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, AnchorError> {
        let client = vm_tsa::TsaClient::new(url, timeout).map_err(|e| AnchorError::Backend {
            backend: "rfc3161",
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// Stamps `batch_root`. When `trust` is given the token is verified before it is used, so
    /// a misconfigured TSA fails the cycle here rather than at every witness.
    pub async fn anchor(
        &self,
        batch_root: &Blake3Hash,
        nonce: u64,
        trust: Option<&TsaTrust>,
        now: Timestamp,
    ) -> Result<BackendAnchor, AnchorError> {
        let token = self
            .client
            .timestamp(batch_root.as_bytes(), nonce)
            .await
            .map_err(|e| AnchorError::Backend {
                backend: "rfc3161",
                reason: e.to_string(),
            })?;
        if let Some(trust) = trust {
            vm_tsa::verify_token(&token, batch_root.as_bytes(), trust, now.unix()).map_err(
                |e| AnchorError::Backend {
                    backend: "rfc3161",
                    reason: format!("the TSA's token does not verify: {e}"),
                },
            )?;
        }
        let mut fields = Map::new();
        fields.insert("tsa_token".into(), json!(STANDARD.encode(&token)));
        fields.insert("tsa_url".into(), json!(self.url));
        Ok(BackendAnchor {
            backend: "rfc3161".into(),
            fields,
        })
    }
}

/// Verifies the `rfc3161` fields of a proof over `batch_root`; returns the TSA's time.
pub(super) fn verify_fields(
    fields: &Map<String, Value>,
    batch_root: &Blake3Hash,
    trust: &TsaTrust,
    now: Timestamp,
) -> Result<Timestamp, AnchorError> {
    let Some(Value::String(text)) = fields.get("tsa_token") else {
        return Err(field("tsa_token", "missing or not a string"));
    };
    if text.len() > MAX_TOKEN_BYTES * 4 / 3 + 4 {
        return Err(field(
            "tsa_token",
            format!("longer than {MAX_TOKEN_BYTES} bytes"),
        ));
    }
    let token = STANDARD
        .decode(text)
        .map_err(|e| field("tsa_token", format!("not base64: {e}")))?;
    let verified = vm_tsa::verify_token_with_skew(
        &token,
        batch_root.as_bytes(),
        trust,
        now.unix(),
        TSA_SKEW_SECS,
    )
    .map_err(|e| AnchorError::Tsa(e.to_string()))?;
    Timestamp::from_unix(verified.gen_time.unix_timestamp())
        .ok_or_else(|| AnchorError::Tsa("the token's time is outside 0000-9999".into()))
}
