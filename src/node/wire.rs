//! The bodies of `/vaultmesh/federation/1.0.0` requests and responses: one JSON enum each,
//! mirroring the HTTP endpoints of seed §5 that this transport carries.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vm_receipts::ScrollName;
use vm_receipts::documents::DiscoveryRecord;

use crate::witness::{Evidence, EvidenceRequest};

/// Decodes a request or response a peer sent, through the strict parser both transports
/// share (`vm_receipts::jcs::parse`: duplicate keys and integers that do not fit refused),
/// then into its type. `serde_json` alone keeps the last of two duplicate keys, so another
/// implementation reading the first could see another document than the one we checked
/// (found by issue 16's hostile-JSON test over libp2p; the HTTPS side parsed strictly already).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value = vm_receipts::jcs::parse(bytes, vm_receipts::jcs::Numbers::Any)
        .map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

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
    /// A proposal thread the sender is a party to, `GET /federation/proposals/{id}`.
    GetProposal {
        /// The proposal id.
        proposal_id: String,
    },
    /// The agreements between the sender and us, `GET /federation/agreements`.
    ListAgreements,
    /// One of them, `GET /federation/agreements/{id}`.
    GetAgreement {
        /// The agreement id.
        agreement_id: String,
    },
    /// Receipts of a shared scroll from sequence `from`, at most `limit` (≤ 100),
    /// `GET /federation/receipts/{scroll}`.
    Receipts {
        /// The scroll.
        scroll: ScrollName,
        /// The first sequence.
        #[serde(default)]
        from: u64,
        /// How many (default 100).
        #[serde(default = "default_limit")]
        limit: u64,
    },
    /// One receipt proven against our latest anchored root, with the anchor proof,
    /// `POST /federation/verify`.
    Verify {
        /// The scroll.
        scroll: ScrollName,
        /// The receipt's sequence.
        sequence: u64,
        /// If given, the receipt's leaf hash (blake3 of its canonical JSON without
        /// `root_hash`) must be this.
        #[serde(default)]
        receipt_hash: Option<vm_receipts::Blake3Hash>,
    },
    /// A consistency proof, `GET /federation/proofs/consistency`.
    ConsistencyProof {
        /// The scroll.
        scroll: ScrollName,
        /// The older size.
        old_size: u64,
        /// The newer size.
        new_size: u64,
    },
    /// An inclusion proof, `GET /federation/proofs/inclusion`.
    InclusionProof {
        /// The scroll.
        scroll: ScrollName,
        /// The receipt's sequence.
        sequence: u64,
        /// The tree size.
        tree_size: u64,
    },
}

fn default_limit() -> u64 {
    100
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
    /// What a read request asked for (a proposal thread, agreements, receipts, a proof).
    Data {
        /// The JSON.
        data: Value,
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

impl FedRequest {
    /// Whether serving the request changes what we store (a message, a notification to
    /// witness). The replay cache entry of such a request is made durable before the request
    /// is handled; a read's entry rides on the next durable commit (a crash can forget it,
    /// and a replayed read changes nothing).
    pub fn has_effects(&self) -> bool {
        match self {
            Self::Message { .. } | Self::Notify { .. } => true,
            Self::Discovery
            | Self::Roots { .. }
            | Self::Evidence { .. }
            | Self::GetProposal { .. }
            | Self::ListAgreements
            | Self::GetAgreement { .. }
            | Self::Receipts { .. }
            | Self::Verify { .. }
            | Self::ConsistencyProof { .. }
            | Self::InclusionProof { .. } => false,
        }
    }

    /// The request a witness core asked for, as it goes on the wire.
    pub fn from_witness(request: crate::witness::core::Request) -> Self {
        match request {
            crate::witness::core::Request::Roots { scroll } => Self::Roots {
                scrolls: vec![scroll],
            },
            crate::witness::core::Request::Evidence(ask) => Self::Evidence { ask },
        }
    }
}

impl FedResponse {
    /// A peer's response to a witness core's request, as the core takes it.
    pub fn into_witness_answer(self) -> crate::witness::core::Answer {
        use crate::witness::core::Answer;
        match self {
            Self::Roots { roots } => match roots.into_iter().next() {
                None => Answer::Root(None),
                Some(value) => match vm_receipts::documents::from_value(value) {
                    Ok(n) => Answer::Root(Some(n)),
                    Err(e) => Answer::Failed(format!("the root served does not parse: {e}")),
                },
            },
            Self::Evidence { evidence } => Answer::Evidence(*evidence),
            Self::Error { error, message, .. } => Answer::Refused {
                code: error,
                message,
            },
            Self::Ack | Self::Discovery { .. } | Self::Data { .. } => {
                Answer::Failed("an answer of another kind than the request".into())
            }
        }
    }

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
