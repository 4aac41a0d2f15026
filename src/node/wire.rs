//! The bodies of `/vaultmesh/federation/1.0.0` requests and responses: one JSON enum each,
//! mirroring the HTTP endpoints of seed §5 that this transport carries.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vm_receipts::ScrollName;
use vm_receipts::documents::DiscoveryRecord;

use crate::witness::{Evidence, EvidenceRequest};

/// A federation request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum FedRequest {
    /// A federation document (proposal, response, agreement, revocation), `POST /federation/…`.
    Message {
        /// The [`crate::engine::PeerMessage`] as JSON.
        message: Value,
    },
    /// The receiver's signed discovery record, `GET /federation/discovery`.
    Discovery,
    /// An anchor notification (a signed root and its anchor proof) for the receiver to
    /// witness, `POST /federation/notify`.
    Notify {
        /// The [`vm_receipts::documents::AnchorNotification`] as JSON.
        notification: Value,
    },
    /// The receiver's latest anchored roots of shared scrolls (all shared ones when empty),
    /// `GET /federation/roots`.
    Roots {
        /// Which scrolls.
        #[serde(default)]
        scrolls: Vec<ScrollName>,
    },
    /// A consistency proof and sampled receipts with inclusion proofs, for a witness
    /// (`GET /federation/receipts/{scroll}` and the proof endpoints in one round trip).
    Evidence {
        /// What is asked.
        ask: EvidenceRequest,
    },
}

/// A federation response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum FedResponse {
    /// The message was taken (or had been before).
    Ack,
    /// The receiver's discovery record.
    Discovery {
        /// The record.
        record: Box<DiscoveryRecord>,
    },
    /// Anchored roots.
    Roots {
        /// [`vm_receipts::documents::AnchorNotification`]s as JSON.
        roots: Vec<Value>,
    },
    /// Proofs for a witness.
    Evidence {
        /// The proofs and samples.
        evidence: Box<Evidence>,
    },
    /// Refused.
    Error {
        /// A stable code (`policy`, `malformed`, `document`, …).
        error: String,
        /// What was wrong.
        message: String,
        /// Whether resending the same message can never succeed.
        permanent: bool,
    },
}

impl FedResponse {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>, permanent: bool) -> Self {
        Self::Error {
            error: code.to_owned(),
            message: message.into(),
            permanent,
        }
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising these plain types cannot fail; an empty body would surface as an
        // error at the peer rather than a panic here.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
