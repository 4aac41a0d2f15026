//! What meshes send each other about trust: one enum, one JSON form, one hash.
//!
//! The transports (libp2p request-response, the HTTP shim) carry these as they are; they do
//! not interpret them. Decoding goes through the strict parser and each document's own
//! validation, so a message that reaches the engine is well-formed (not yet trusted: the
//! engine checks signatures, senders and state).

use serde_json::{Map, Value, json};
use vm_receipts::Blake3Hash;
use vm_receipts::documents::{
    ArbitrationRequest, ArbitrationVerdict, DiscrepancyReport, DiscrepancyResolution, Document,
    DocumentError, FederationAgreement, ProposalResponse, RevocationNotice, SuspensionNotice,
    TrustProposal, WitnessAttestation, from_value,
};
use vm_receipts::jcs::{self, Numbers};

/// A trust message from one mesh to another.
// A message is built once and moved into a queue or onto the wire; boxing the agreement
// would buy nothing measurable and cost every match an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PeerMessage {
    /// A new proposal (seed §3.2).
    Proposal(TrustProposal),
    /// An answer to a proposal or counter (seed §3.3). An `accept` carries the agreement the
    /// accepter drafted and signed; nothing else carries one.
    Response {
        /// The signed answer.
        response: ProposalResponse,
        /// The draft, with the accepter's signature, for an `accept`.
        agreement: Option<FederationAgreement>,
    },
    /// A countersigned agreement going back to the party that drafted it.
    Agreement(FederationAgreement),
    /// A signed notice ending an agreement.
    Revocation(RevocationNotice),
    /// A witness's signed attestation about one of the recipient's scrolls (seed §4.1 step 5).
    Attestation(WitnessAttestation),
    /// A witness's signed discrepancy report about one of the recipient's scrolls (seed
    /// §6.2), with the evidence its `evidence_hash` names.
    Discrepancy {
        /// The signed report.
        report: Box<DiscrepancyReport>,
        /// The evidence (JSON), hashed into the report.
        evidence: Value,
    },
    /// A party's signed suspension or resumption of an agreement (seed §6.3 step 4).
    Suspension(SuspensionNotice),
    /// A party's signed request that we arbitrate its finding (seed §6.3 step 3).
    Arbitration(Box<ArbitrationRequest>),
    /// An arbiter's signed verdict on a finding between us and a peer.
    Verdict(Box<ArbitrationVerdict>),
    /// A party's signed resolution of a finding between us (seed §6.3).
    Resolution(DiscrepancyResolution),
}

/// Most bytes a trust message may have (DESIGN §8: requests ≤ 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

impl PeerMessage {
    /// The message's name in errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Proposal(_) => "proposal",
            Self::Response { .. } => "response",
            Self::Agreement(_) => "agreement",
            Self::Revocation(_) => "revocation",
            Self::Attestation(_) => "attestation",
            Self::Discrepancy { .. } => "discrepancy",
            Self::Suspension(_) => "suspension",
            Self::Resolution(_) => "resolution",
            Self::Arbitration(_) => "arbitration",
            Self::Verdict(_) => "verdict",
        }
    }

    /// The JSON form: `{"type": "<kind>", "<field>": document, …}`.
    pub fn to_value(&self) -> Result<Value, DocumentError> {
        Ok(match self {
            Self::Proposal(p) => json!({"type": "proposal", "proposal": p.to_value()?}),
            Self::Response {
                response,
                agreement,
            } => {
                let mut map = Map::new();
                map.insert("type".into(), "response".into());
                map.insert("response".into(), response.to_value()?);
                if let Some(a) = agreement {
                    map.insert("agreement".into(), a.to_value()?);
                }
                Value::Object(map)
            }
            Self::Agreement(a) => json!({"type": "agreement", "agreement": a.to_value()?}),
            Self::Revocation(n) => json!({"type": "revocation", "notice": n.to_value()?}),
            Self::Attestation(a) => json!({"type": "attestation", "attestation": a.to_value()?}),
            Self::Discrepancy { report, evidence } => json!({
                "type": "discrepancy",
                "report": report.to_value()?,
                "evidence": evidence,
            }),
            Self::Suspension(n) => json!({"type": "suspension", "notice": n.to_value()?}),
            Self::Resolution(r) => json!({"type": "resolution", "resolution": r.to_value()?}),
            Self::Arbitration(r) => json!({"type": "arbitration", "request": r.to_value()?}),
            Self::Verdict(v) => json!({"type": "verdict", "verdict": v.to_value()?}),
        })
    }

    /// The RFC 8785 bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DocumentError> {
        jcs::to_vec_integers_only(&self.to_value()?).map_err(|source| DocumentError::Json {
            document: "PeerMessage",
            source,
        })
    }

    /// blake3 of the RFC 8785 bytes: what acknowledgements and retransmissions name.
    pub fn hash(&self) -> Result<Blake3Hash, DocumentError> {
        Ok(Blake3Hash::digest(&self.to_bytes()?))
    }

    /// Decodes untrusted bytes: size limit, strict JSON, then each document's rules.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DocumentError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(message_error(
                ".",
                format!(
                    "{} bytes, more than the {MAX_MESSAGE_BYTES} a message may have",
                    bytes.len()
                ),
            ));
        }
        let value =
            jcs::parse(bytes, Numbers::IntegersOnly).map_err(|source| DocumentError::Json {
                document: "PeerMessage",
                source,
            })?;
        Self::from_value(value)
    }

    /// Decodes a value that went through the strict parser.
    pub fn from_value(value: Value) -> Result<Self, DocumentError> {
        let Value::Object(mut map) = value else {
            return Err(message_error(".", "expected a JSON object".into()));
        };
        let kind = match map.remove("type") {
            Some(Value::String(kind)) => kind,
            _ => return Err(message_error("type", "missing or not a string".into())),
        };
        let message = match kind.as_str() {
            "proposal" => Self::Proposal(from_value(take(&mut map, "proposal")?)?),
            "response" => {
                let response = from_value(take(&mut map, "response")?)?;
                let agreement = match map.remove("agreement") {
                    Some(v) => Some(from_value(v)?),
                    None => None,
                };
                Self::Response {
                    response,
                    agreement,
                }
            }
            "agreement" => Self::Agreement(from_value(take(&mut map, "agreement")?)?),
            "revocation" => Self::Revocation(from_value(take(&mut map, "notice")?)?),
            "attestation" => Self::Attestation(from_value(take(&mut map, "attestation")?)?),
            "discrepancy" => Self::Discrepancy {
                report: Box::new(from_value(take(&mut map, "report")?)?),
                evidence: take(&mut map, "evidence")?,
            },
            "suspension" => Self::Suspension(from_value(take(&mut map, "notice")?)?),
            "resolution" => Self::Resolution(from_value(take(&mut map, "resolution")?)?),
            "arbitration" => Self::Arbitration(Box::new(from_value(take(&mut map, "request")?)?)),
            "verdict" => Self::Verdict(Box::new(from_value(take(&mut map, "verdict")?)?)),
            other => {
                return Err(message_error(
                    "type",
                    format!(
                        "{:?} is not a trust message",
                        vm_receipts::error::shown(other)
                    ),
                ));
            }
        };
        if let Some(extra) = map.keys().next() {
            return Err(message_error(
                "type",
                format!("unexpected field {extra:?} in a {kind} message"),
            ));
        }
        Ok(message)
    }
}

fn take(map: &mut Map<String, Value>, field: &'static str) -> Result<Value, DocumentError> {
    map.remove(field)
        .ok_or_else(|| message_error(field, "missing".into()))
}

fn message_error(path: &str, message: String) -> DocumentError {
    DocumentError::Field {
        document: "PeerMessage",
        path: path.into(),
        message,
    }
}

/// blake3 of the RFC 8785 form of a document: how receipts and `responds_to` name it.
pub fn document_hash<D: Document>(doc: &D) -> Result<Blake3Hash, DocumentError> {
    Ok(Blake3Hash::digest(&doc.to_canonical()?))
}
