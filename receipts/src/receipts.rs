//! The Federation scroll's seven receipt types (seed §2, §4.2, §4.3, §6.2, §7; DESIGN §5).
//!
//! A receipt is a JSON object with a `type`; the scroll adds `root_hash` when it appends it.
//! [`FederationReceipt`] is the typed view; [`parse_receipt`] reads one from bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::documents::{
    ArbitrationVerdict, DiscrepancyBody, DiscrepancyResolution, FederationAgreement,
    RevocationNotice, SuspensionNotice,
};
use crate::documents::{
    Document, DocumentError, Extra, SchemaVersion, TrustLevel, WitnessResult, from_value,
};
use crate::hash::Blake3Hash;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::jcs::{self, Numbers};
use crate::key::Signature;
use crate::timestamp::Timestamp;

/// What happened to a proposal (one `fed_trust_proposal` receipt per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalEvent {
    /// We sent a proposal.
    Sent,
    /// We received a proposal.
    Received,
    /// A counter was sent or received.
    Countered,
    /// The proposal was accepted.
    Accepted,
    /// The proposal was rejected.
    Rejected,
    /// The proposer withdrew it.
    Withdrawn,
    /// It expired unanswered.
    Expired,
}

/// `fed_trust_proposal`: a step of a negotiation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustProposalReceipt {
    /// The proposal.
    pub proposal_id: DocumentId,
    /// Who proposed.
    pub proposer: MeshId,
    /// To whom.
    pub target: MeshId,
    /// What happened.
    pub event: ProposalEvent,
    /// The level on the table.
    pub trust_level: TrustLevel,
    /// The scrolls on the table.
    pub scrolls: Vec<ScrollName>,
    /// blake3 of the JCS of the signed document that caused the event.
    pub document_hash: Blake3Hash,
    /// A reject's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub timestamp: Timestamp,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt (set by the scroll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `fed_trust_established`: an agreement came into force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustEstablishedReceipt {
    /// The agreement.
    pub agreement_id: DocumentId,
    /// Its two parties.
    pub parties: Vec<MeshId>,
    /// Its level.
    pub trust_level: TrustLevel,
    /// Its shared scrolls.
    pub scrolls_shared: Vec<ScrollName>,
    /// Its hash.
    pub agreement_hash: Blake3Hash,
    /// The whole agreement with both signatures (seed §3.5: both meshes store it in their
    /// Federation scroll), so the scroll alone is the record of it (`state rebuild`). Absent
    /// in receipts written before issue 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<FederationAgreement>,
    /// When.
    pub timestamp: Timestamp,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `fed_trust_revoked`: an agreement ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustRevokedReceipt {
    /// The agreement.
    pub agreement_id: DocumentId,
    /// Who revoked it.
    pub revoked_by: MeshId,
    /// Why.
    pub reason: String,
    /// When it took effect.
    pub effective_at: Timestamp,
    /// The signed notice that ended it (absent in receipts written before issue 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<RevocationNotice>,
    /// When recorded.
    pub timestamp: Timestamp,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `fed_trust_suspended` / `fed_trust_resumed`: witnessing under an agreement stopped pending
/// a discrepancy's resolution (seed §6.3 step 4), or started again. Not in the seed's list;
/// see ARCHITECTURE.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustSuspensionReceipt {
    /// The agreement.
    pub agreement_id: DocumentId,
    /// The other party.
    pub peer: MeshId,
    /// Why (the operator's words, or the discrepancy).
    pub reason: String,
    /// The discrepancy that caused it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrepancy_id: Option<DocumentId>,
    /// When.
    pub timestamp: Timestamp,
    /// The signed notice of the party that suspended or resumed (ours or the peer's), the
    /// same on both sides. Absent in receipts written before issue 18.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<SuspensionNotice>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A summary of the anchor a witness checked (`witnessed_anchor`): backend plus its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorSummary {
    /// The backend.
    pub backend: String,
    /// Backend fields (`tx_hash`, `block_number`, `batch_root`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `fed_witness_event` (seed §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessEventReceipt {
    /// The attestation id.
    pub witness_id: DocumentId,
    /// Whose root.
    pub witnessed_mesh: MeshId,
    /// Who witnessed.
    pub witnessing_mesh: MeshId,
    /// When.
    pub timestamp: Timestamp,
    /// Which scroll.
    pub scroll: ScrollName,
    /// The root.
    pub witnessed_root: Blake3Hash,
    /// Its size (DESIGN addition; optional for the seed's form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed_size: Option<u64>,
    /// The anchor checked.
    pub witnessed_anchor: AnchorSummary,
    /// How (`anchor_proof_validation`, `consistency_proof`, …).
    pub verification_method: String,
    /// The result.
    pub verification_result: WitnessResult,
    /// Receipts sampled.
    pub samples_checked: u64,
    /// Ids of discrepancies found.
    #[serde(default)]
    pub discrepancies: Vec<Value>,
    /// The attestation's signature.
    pub witness_signature: Signature,
    /// On a witness's own receipt: the witnessed mesh's signed root that was checked (its
    /// signature included), so the witness state can be rebuilt from the scroll and the
    /// receipt stands as evidence on its own. Absent on the witnessed side and in receipts
    /// written before issue 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_root: Option<crate::documents::SignedRoot>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The anchor proof carried by `fed_cross_anchor`: backend, `merkle_path` and backend fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossAnchorProof {
    /// The backend of the anchoring mesh.
    pub backend: String,
    /// Inclusion path of the peer's root in the anchor batch.
    pub merkle_path: Vec<Blake3Hash>,
    /// Backend fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `fed_cross_anchor` (seed §4.3). The peer's roots sit under a key named
/// `<name>_roots_included` (the seed writes `dublin_roots_included`) or `roots_included`;
/// exactly one such key must be present, read it with [`CrossAnchorReceipt::roots_included`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossAnchorReceipt {
    /// Unique id.
    pub cross_anchor_id: DocumentId,
    /// Who anchored.
    pub anchoring_mesh: MeshId,
    /// Whose roots.
    pub anchored_mesh: MeshId,
    /// When.
    pub timestamp: Timestamp,
    /// Root of the anchor batch.
    pub combined_root: Blake3Hash,
    /// The anchor proof.
    pub anchor_proof: CrossAnchorProof,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// The `*_roots_included` map and fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CrossAnchorReceipt {
    /// The key under which [`CrossAnchorReceipt::roots_included`] is found, and the roots.
    pub fn roots_included(
        &self,
    ) -> Result<(&str, BTreeMap<ScrollName, Blake3Hash>), DocumentError> {
        let bad = |reason: String| DocumentError::Invalid {
            document: "fed_cross_anchor",
            field: "roots_included",
            reason,
        };
        let mut keys = self
            .extra
            .iter()
            .filter(|(k, _)| *k == "roots_included" || k.ends_with("_roots_included"));
        let (key, value) = match (keys.next(), keys.next()) {
            (Some(entry), None) => entry,
            (None, _) => {
                return Err(bad(
                    "no roots_included or <name>_roots_included field".into()
                ));
            }
            (Some(_), Some(_)) => return Err(bad("more than one *_roots_included field".into())),
        };
        let roots: BTreeMap<ScrollName, Blake3Hash> =
            serde_path_to_error::deserialize(value.clone())
                .map_err(|e| bad(format!("{key}.{}: {}", e.path(), e.inner())))?;
        if roots.is_empty() {
            return Err(bad(format!("{key} is empty")));
        }
        Ok((key.as_str(), roots))
    }
}

/// `fed_schema_sync` (seed §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSyncReceipt {
    /// Unique id.
    pub sync_id: DocumentId,
    /// The meshes.
    pub meshes: Vec<MeshId>,
    /// When.
    pub timestamp: Timestamp,
    /// Versions per scroll.
    pub schemas_synced: BTreeMap<ScrollName, SchemaVersion>,
    /// Whether old receipts still validate.
    pub backward_compatible: bool,
    /// Whether stored receipts must be migrated.
    pub migration_required: bool,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `fed_discrepancy` (seed §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyReceipt {
    /// The finding.
    #[serde(flatten)]
    pub body: DiscrepancyBody,
    /// The reporting mesh's signature over the body (the `DiscrepancyReport`'s), so the
    /// receipt is the signed report. Absent in receipts written before issue 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::documents::SignatureField>,
    /// The evidence itself, whose JCS hashes to `evidence_hash`. Absent in receipts written
    /// before issue 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
}

/// `fed_discrepancy_resolved` (seed §6.3): a party's signed [`DiscrepancyResolution`], as
/// both parties append it. The signature covers the resolution's fields (every field but
/// `signature`, `tags` and `root_hash`), so the receipt is the signed resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscrepancyResolvedReceipt {
    /// The signed resolution.
    #[serde(flatten)]
    pub resolution: DiscrepancyResolution,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
}

/// `fed_arbitration_verdict` (seed §6.3 step 3): an arbiter's signed [`ArbitrationVerdict`],
/// as the arbiter and both parties append it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArbitrationVerdictReceipt {
    /// The signed verdict.
    #[serde(flatten)]
    pub verdict: ArbitrationVerdict,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scroll root after this receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<Blake3Hash>,
}

/// Any receipt of the Federation scroll, by its `type`.
///
/// Deserialisation dispatches on `type` by hand (see [`receipt_from_value`]) rather than
/// through serde's internally tagged enums, which buffer the content and lose the path of a
/// bad field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum FederationReceipt {
    /// `fed_trust_proposal`
    #[serde(rename = "fed_trust_proposal")]
    TrustProposal(TrustProposalReceipt),
    /// `fed_trust_established`
    #[serde(rename = "fed_trust_established")]
    TrustEstablished(TrustEstablishedReceipt),
    /// `fed_trust_revoked`
    #[serde(rename = "fed_trust_revoked")]
    TrustRevoked(TrustRevokedReceipt),
    /// `fed_trust_suspended`
    #[serde(rename = "fed_trust_suspended")]
    TrustSuspended(TrustSuspensionReceipt),
    /// `fed_trust_resumed`
    #[serde(rename = "fed_trust_resumed")]
    TrustResumed(TrustSuspensionReceipt),
    /// `fed_witness_event`
    #[serde(rename = "fed_witness_event")]
    WitnessEvent(WitnessEventReceipt),
    /// `fed_cross_anchor`
    #[serde(rename = "fed_cross_anchor")]
    CrossAnchor(CrossAnchorReceipt),
    /// `fed_schema_sync`
    #[serde(rename = "fed_schema_sync")]
    SchemaSync(SchemaSyncReceipt),
    /// `fed_discrepancy`
    #[serde(rename = "fed_discrepancy")]
    Discrepancy(DiscrepancyReceipt),
    /// `fed_discrepancy_resolved`
    #[serde(rename = "fed_discrepancy_resolved")]
    DiscrepancyResolved(DiscrepancyResolvedReceipt),
    /// `fed_arbitration_verdict`
    #[serde(rename = "fed_arbitration_verdict")]
    ArbitrationVerdict(ArbitrationVerdictReceipt),
}

impl Document for FederationReceipt {
    const NAME: &'static str = "FederationReceipt";

    fn from_json_value(value: Value) -> Result<Self, DocumentError> {
        receipt_from_value(value)
    }

    fn validate(&self) -> Result<(), DocumentError> {
        match self {
            Self::CrossAnchor(r) => r.roots_included().map(|_| ()),
            Self::Discrepancy(r) => r.validate(),
            Self::DiscrepancyResolved(r) => r.resolution.validate(),
            Self::ArbitrationVerdict(r) => r.verdict.validate(),
            _ => Ok(()),
        }
    }
}

impl FederationReceipt {
    /// The receipt as the JSON object a scroll appends (without `root_hash` if unset).
    pub fn to_object(&self) -> Result<Map<String, Value>, DocumentError> {
        match self.to_value()? {
            Value::Object(map) => Ok(map),
            _ => Err(DocumentError::Field {
                document: Self::NAME,
                path: ".".into(),
                message: "a receipt serialises to a JSON object".into(),
            }),
        }
    }

    /// The scroll root after this receipt, once appended.
    pub fn root_hash(&self) -> Option<Blake3Hash> {
        match self {
            Self::TrustProposal(r) => r.root_hash,
            Self::TrustEstablished(r) => r.root_hash,
            Self::TrustRevoked(r) => r.root_hash,
            Self::TrustSuspended(r) | Self::TrustResumed(r) => r.root_hash,
            Self::WitnessEvent(r) => r.root_hash,
            Self::CrossAnchor(r) => r.root_hash,
            Self::SchemaSync(r) => r.root_hash,
            Self::Discrepancy(r) => r.root_hash,
            Self::DiscrepancyResolved(r) => r.root_hash,
            Self::ArbitrationVerdict(r) => r.root_hash,
        }
    }
}

macro_rules! receipt_documents {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl Document for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

receipt_documents! {
    TrustProposalReceipt => "fed_trust_proposal",
    TrustEstablishedReceipt => "fed_trust_established",
    TrustRevokedReceipt => "fed_trust_revoked",
    TrustSuspensionReceipt => "fed_trust_suspended",
    WitnessEventReceipt => "fed_witness_event",
    CrossAnchorReceipt => "fed_cross_anchor",
    SchemaSyncReceipt => "fed_schema_sync",
}

impl Document for DiscrepancyReceipt {
    const NAME: &'static str = "fed_discrepancy";

    fn from_json_value(value: Value) -> Result<Self, DocumentError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Own {
            #[serde(default)]
            tags: Vec<String>,
            #[serde(default)]
            root_hash: Option<Blake3Hash>,
            #[serde(default)]
            signature: Option<crate::documents::SignatureField>,
            #[serde(default)]
            evidence: Option<Value>,
        }
        let (body, own) = crate::documents::split_body::<Self, DiscrepancyBody>(
            value,
            &["tags", "root_hash", "signature", "evidence"],
        )?;
        let own: Own = crate::documents::own_fields::<Self, _>(own)?;
        let receipt = Self {
            body,
            tags: own.tags,
            root_hash: own.root_hash,
            signature: own.signature,
            evidence: own.evidence,
        };
        receipt.validate()?;
        Ok(receipt)
    }

    fn validate(&self) -> Result<(), DocumentError> {
        self.body.check::<Self>()?;
        if let Some(evidence) = &self.evidence {
            let bytes =
                jcs::to_vec_integers_only(evidence).map_err(|source| DocumentError::Json {
                    document: Self::NAME,
                    source,
                })?;
            let hash = Blake3Hash::digest(&bytes);
            if hash != self.body.evidence_hash {
                return Err(DocumentError::Invalid {
                    document: Self::NAME,
                    field: "evidence",
                    reason: format!(
                        "the evidence hashes to {hash}, not to evidence_hash {}",
                        self.body.evidence_hash
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Document for DiscrepancyResolvedReceipt {
    const NAME: &'static str = "fed_discrepancy_resolved";

    fn from_json_value(value: Value) -> Result<Self, DocumentError> {
        let (resolution, tags, root_hash) = signed_document_receipt::<Self, _>(value)?;
        let receipt = Self {
            resolution,
            tags,
            root_hash,
        };
        receipt.validate()?;
        Ok(receipt)
    }

    fn validate(&self) -> Result<(), DocumentError> {
        self.resolution.validate()
    }
}

impl Document for ArbitrationVerdictReceipt {
    const NAME: &'static str = "fed_arbitration_verdict";

    fn from_json_value(value: Value) -> Result<Self, DocumentError> {
        let (verdict, tags, root_hash) = signed_document_receipt::<Self, _>(value)?;
        let receipt = Self {
            verdict,
            tags,
            root_hash,
        };
        receipt.validate()?;
        Ok(receipt)
    }

    fn validate(&self) -> Result<(), DocumentError> {
        self.verdict.validate()
    }
}

/// A receipt that is a signed document plus `tags` and `root_hash` (`type` already taken
/// off): the document (every other field, unknown ones kept) and those two.
fn signed_document_receipt<T: Document, D: serde::de::DeserializeOwned>(
    value: Value,
) -> Result<(D, Vec<String>, Option<Blake3Hash>), DocumentError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        root_hash: Option<Blake3Hash>,
    }
    let (document, own) = crate::documents::split_body::<T, D>(value, &["tags", "root_hash"])?;
    let own: Own = crate::documents::own_fields::<T, _>(own)?;
    Ok((document, own.tags, own.root_hash))
}

/// Types a receipt by its `type`, with errors that name the receipt type and field.
pub fn receipt_from_value(value: Value) -> Result<FederationReceipt, DocumentError> {
    let field_err = |path: &str, message: String| DocumentError::Field {
        document: FederationReceipt::NAME,
        path: path.into(),
        message,
    };
    let Value::Object(mut map) = value else {
        return Err(field_err(".", "expected a JSON object".into()));
    };
    let kind = match map.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(field_err("type", "must be a string".into())),
        None => {
            return Err(field_err(
                "type",
                "missing; a receipt says what it is".into(),
            ));
        }
    };
    let rest = Value::Object(map);
    let receipt = match kind.as_str() {
        "fed_trust_proposal" => FederationReceipt::TrustProposal(from_value(rest)?),
        "fed_trust_established" => FederationReceipt::TrustEstablished(from_value(rest)?),
        "fed_trust_revoked" => FederationReceipt::TrustRevoked(from_value(rest)?),
        "fed_trust_suspended" => FederationReceipt::TrustSuspended(from_value(rest)?),
        "fed_trust_resumed" => FederationReceipt::TrustResumed(from_value(rest)?),
        "fed_witness_event" => FederationReceipt::WitnessEvent(from_value(rest)?),
        "fed_cross_anchor" => FederationReceipt::CrossAnchor(from_value(rest)?),
        "fed_schema_sync" => FederationReceipt::SchemaSync(from_value(rest)?),
        "fed_discrepancy" => FederationReceipt::Discrepancy(from_value(rest)?),
        "fed_discrepancy_resolved" => FederationReceipt::DiscrepancyResolved(from_value(rest)?),
        "fed_arbitration_verdict" => FederationReceipt::ArbitrationVerdict(from_value(rest)?),
        other => {
            return Err(field_err(
                "type",
                format!(
                    "{:?} is not a Federation receipt type",
                    crate::error::shown(other)
                ),
            ));
        }
    };
    receipt.validate()?;
    Ok(receipt)
}

impl<'de> Deserialize<'de> for FederationReceipt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        receipt_from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Parses a Federation receipt (floats allowed, as in any receipt; duplicate keys and
/// oversized integers refused).
pub fn parse_receipt(bytes: &[u8]) -> Result<FederationReceipt, DocumentError> {
    let value = jcs::parse(bytes, Numbers::Any).map_err(|source| DocumentError::Json {
        document: FederationReceipt::NAME,
        source,
    })?;
    receipt_from_value(value)
}
