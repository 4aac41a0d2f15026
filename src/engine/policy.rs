//! What a peer may ask of us (DESIGN §6). Every request handler, on every transport, asks
//! [`authorize`] first; a refusal maps to HTTP 403 (or its libp2p equivalent), is counted and
//! logged, and nothing of the request is served.
//!
//! | level | the peer may |
//! | --- | --- |
//! | 0 `isolated` | nothing: federation is off |
//! | 1 `observe` | read our roots, receipt samples and proofs of shared scrolls; send attestations |
//! | 2 `verify` | as 1, and notify us of its anchors (we witness its shared scrolls) |
//! | 3 `attest` | as 2 (we cross-anchor its roots) |
//! | 4 `integrate` | as 3, and replicate our shared scrolls |

use std::fmt;

use vm_receipts::documents::TrustLevel;
use vm_receipts::{MeshId, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, AgreementStatus};

/// A request a peer makes of us, with what the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRequest<'a> {
    /// Our discovery record (public).
    Discovery,
    /// A trust proposal to us.
    Propose,
    /// An answer to a proposal (the engine checks it is from the proposal's other party).
    RespondToProposal,
    /// A proposal thread (served only to its parties).
    GetProposal,
    /// The agreement we share.
    GetAgreement,
    /// Revocation of the agreement we share.
    RevokeAgreement,
    /// An anchor notification for one of its scrolls (we witness it).
    Notify(&'a ScrollName),
    /// A witness attestation about one of our scrolls.
    SubmitAttestation(&'a ScrollName),
    /// A witness's discrepancy report about one of our scrolls: accepted while the agreement
    /// is suspended too (the finding is what the suspension is about).
    ReportDiscrepancy(&'a ScrollName),
    /// Our current roots of these scrolls (empty: every shared scroll).
    Roots(&'a [ScrollName]),
    /// Receipt samples of a scroll.
    Receipts(&'a ScrollName),
    /// An inclusion proof in a scroll.
    InclusionProof(&'a ScrollName),
    /// A consistency proof of a scroll.
    ConsistencyProof(&'a ScrollName),
    /// Verification of one receipt of a scroll.
    VerifyReceipt(&'a ScrollName),
    /// Ranges of a scroll for a replica (level 4).
    Replicate(&'a ScrollName),
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Federation is off on this node (trust level 0).
    FederationOff,
    /// The request needs an agreement and there is none with this peer.
    NoAgreement,
    /// The agreement offered is not between us and this peer.
    NotAParty,
    /// The agreement is drafted but not yet signed by both parties.
    NotYetInForce,
    /// The agreement is suspended pending a discrepancy's resolution.
    Suspended,
    /// The agreement has ended.
    Revoked,
    /// The agreement's level does not permit the request.
    LevelTooLow {
        /// Level the request needs.
        required: TrustLevel,
        /// Level agreed.
        agreed: TrustLevel,
    },
    /// The scroll is not shared under the agreement.
    ScrollNotShared(ScrollName),
}

impl std::error::Error for Refusal {}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FederationOff => f.write_str("federation is off on this node (trust level 0)"),
            Self::NoAgreement => f.write_str("no agreement with this mesh"),
            Self::NotAParty => f.write_str("the agreement is not between this mesh and us"),
            Self::NotYetInForce => f.write_str("the agreement is not signed by both parties yet"),
            Self::Suspended => f.write_str("the agreement is suspended pending a discrepancy"),
            Self::Revoked => f.write_str("the agreement has been revoked"),
            Self::LevelTooLow { required, agreed } => {
                write!(
                    f,
                    "the request needs trust level {required}; the agreement is at {agreed}"
                )
            }
            Self::ScrollNotShared(scroll) => {
                write!(f, "scroll {scroll} is not shared under the agreement")
            }
        }
    }
}

/// Decides whether `peer` may make `request` of `me` at `now`, given the agreement between
/// them (if any) and whether federation is on at all.
pub fn authorize(
    me: &MeshId,
    peer: &MeshId,
    federation_on: bool,
    agreement: Option<&AgreementRecord>,
    now: Timestamp,
    request: PeerRequest<'_>,
) -> Result<(), Refusal> {
    if !federation_on {
        return Err(Refusal::FederationOff);
    }
    let (required, scrolls): (TrustLevel, &[ScrollName]) = match request {
        PeerRequest::Discovery
        | PeerRequest::Propose
        | PeerRequest::RespondToProposal
        | PeerRequest::GetProposal => {
            return Ok(());
        }
        PeerRequest::GetAgreement | PeerRequest::RevokeAgreement => (TrustLevel::OBSERVE, &[]),
        PeerRequest::SubmitAttestation(s)
        | PeerRequest::ReportDiscrepancy(s)
        | PeerRequest::Receipts(s)
        | PeerRequest::InclusionProof(s)
        | PeerRequest::ConsistencyProof(s)
        | PeerRequest::VerifyReceipt(s) => (TrustLevel::OBSERVE, std::slice::from_ref(s)),
        PeerRequest::Roots(list) => (TrustLevel::OBSERVE, list),
        PeerRequest::Notify(s) => (TrustLevel::VERIFY, std::slice::from_ref(s)),
        PeerRequest::Replicate(s) => (TrustLevel::INTEGRATE, std::slice::from_ref(s)),
    };
    let record = agreement.ok_or(Refusal::NoAgreement)?;
    let parties = &record.agreement.parties;
    if !(parties.contains(me) && parties.contains(peer) && me != peer) {
        return Err(Refusal::NotAParty);
    }
    let managing = matches!(
        request,
        PeerRequest::GetAgreement
            | PeerRequest::RevokeAgreement
            | PeerRequest::ReportDiscrepancy(_)
    );
    match &record.status {
        AgreementStatus::Active => {}
        // Revocation takes effect after the notice; until then the agreement works.
        AgreementStatus::Revoking { effective_at } if now < *effective_at => {}
        AgreementStatus::Revoking { .. } | AgreementStatus::Revoked { .. } => {
            // The ended agreement can still be read (it is history), not used.
            return if request == PeerRequest::GetAgreement {
                Ok(())
            } else {
                Err(Refusal::Revoked)
            };
        }
        AgreementStatus::Suspended { .. } if managing => {}
        AgreementStatus::Suspended { .. } => return Err(Refusal::Suspended),
        AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. }
            if request == PeerRequest::GetAgreement => {}
        AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. } => {
            return Err(Refusal::NotYetInForce);
        }
    }
    let agreed = record.agreement.trust_level;
    if agreed < required {
        return Err(Refusal::LevelTooLow { required, agreed });
    }
    let shared = &record.agreement.terms.scrolls_shared;
    if let Some(missing) = scrolls.iter().find(|s| !shared.contains(s)) {
        return Err(Refusal::ScrollNotShared(missing.clone()));
    }
    Ok(())
}
