//! Why the engine refused an input. Every refusal leaves the store as it was: the handler ran
//! inside one transaction, and an error discards it.

use vm_receipts::documents::DocumentError;
use vm_receipts::{DocumentId, MeshId, PublicKey, Timestamp};
use vm_storage::StoreError;

use super::policy::Refusal;

/// A refused input, named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The policy refuses this peer the request (DESIGN §6).
    #[error("refused by policy: {0}")]
    Policy(#[from] Refusal),
    /// We hold no key for the sender, so nothing it signs can be checked.
    #[error("unknown sender {0}: no discovery record or configured key for it")]
    UnknownSender(MeshId),
    /// The document names another author than the mesh that sent it.
    #[error("{document} is by {author}, but {from} sent it")]
    SenderMismatch {
        /// What was sent.
        document: &'static str,
        /// Its author as written.
        author: MeshId,
        /// The authenticated sender.
        from: MeshId,
    },
    /// The document is addressed to another mesh.
    #[error("{document} is addressed to {to}, not to us")]
    NotForUs {
        /// What was sent.
        document: &'static str,
        /// Its addressee.
        to: MeshId,
    },
    /// Malformed, or its signature does not verify (forged, unsigned, wrong kind or key).
    #[error("{0}")]
    Document(#[from] DocumentError),
    /// A key differs from the one we already hold for that mesh.
    #[error("{mesh} presents key {found}, but we hold {expected} for it")]
    KeyMismatch {
        /// The mesh.
        mesh: MeshId,
        /// The key we hold.
        expected: Box<PublicKey>,
        /// The key presented.
        found: Box<PublicKey>,
    },
    /// We already have exactly this document (a retransmission or a replay): nothing changes.
    /// Transports acknowledge it like a success, so the sender stops sending it.
    #[error("already received: {0}")]
    AlreadyReceived(String),
    /// An id already names a different document.
    #[error("{what} {id} already names a different document")]
    IdReused {
        /// Which kind of id.
        what: &'static str,
        /// The id.
        id: DocumentId,
    },
    /// The document does not follow from the state we hold (superseded, answered already,
    /// not this party's turn, refers to something we never saw).
    #[error("out of order: {0}")]
    OutOfOrder(String),
    /// The negotiation is over (accepted, rejected, withdrawn or expired): nothing more can
    /// be said in it.
    #[error("closed: {0}")]
    Closed(String),
    /// The proposal can no longer be answered.
    #[error("proposal {id} expired at {expires_at}")]
    Expired {
        /// The proposal.
        id: DocumentId,
        /// When it expired.
        expires_at: Timestamp,
    },
    /// A time in the document is too far from our clock.
    #[error("{field} {value} is too far from our clock ({now}; at most {limit_secs} s)")]
    ClockSkew {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: Timestamp,
        /// Our time.
        now: Timestamp,
        /// The tolerance.
        limit_secs: i64,
    },
    /// The document is older than one we already hold.
    #[error("stale: {0}")]
    Stale(String),
    /// An agreement with this mesh is already in force (or drafted with a stronger claim).
    #[error("already federated with {peer} under {agreement_id}")]
    AlreadyFederated {
        /// The peer.
        peer: MeshId,
        /// The agreement in force.
        agreement_id: DocumentId,
    },
    /// Both parties drafted an agreement at once; the one with the lower hash stands.
    #[error(
        "agreement {theirs} competes with our draft {ours}, which has the lower hash and stands"
    )]
    CompetingDraft {
        /// Ours, which stands.
        ours: DocumentId,
        /// Theirs, refused.
        theirs: DocumentId,
    },
    /// The drafted agreement is not the one the accepted terms call for.
    #[error("agreement {agreement_id} does not match the accepted terms: {reason}")]
    DraftMismatch {
        /// The draft.
        agreement_id: DocumentId,
        /// What differs.
        reason: String,
    },
    /// Our trust policy does not take this proposal.
    #[error("not accepted by our trust policy: {0}")]
    PolicyDeclined(String),
    /// Too many open negotiations with one peer.
    #[error("{peer} already has {open} open proposals with us (at most {limit})")]
    TooManyProposals {
        /// The peer.
        peer: MeshId,
        /// How many are open.
        open: usize,
        /// The limit.
        limit: usize,
    },
    /// No such proposal.
    #[error("no proposal {0}")]
    UnknownProposal(String),
    /// No such agreement.
    #[error("no agreement {0}")]
    UnknownAgreement(DocumentId),
    /// No such finding.
    #[error("no discrepancy {0} is known here (`discrepancies list` shows them)")]
    UnknownDiscrepancy(String),
    /// An operator command that cannot be carried out as given.
    #[error("{0}")]
    Command(String),
    /// The state database failed; nothing was changed.
    #[error("state database: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    /// Whether the sender should treat this as delivered: we already hold the document.
    pub fn is_acknowledgement(&self) -> bool {
        matches!(self, Self::AlreadyReceived(_))
    }

    /// Whether sending the same message again cannot succeed (everything but our own storage
    /// failing, a clock disagreement, or a message we cannot place yet).
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            Self::Store(_)
                | Self::ClockSkew { .. }
                | Self::OutOfOrder(_)
                | Self::UnknownSender(_)
                | Self::AlreadyReceived(_)
        )
    }

    /// A short stable code for counters, logs and the `error` field of HTTP errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Policy(_) => "forbidden",
            Self::UnknownSender(_) => "unknown_sender",
            Self::SenderMismatch { .. } => "sender_mismatch",
            Self::NotForUs { .. } => "not_for_us",
            Self::Document(DocumentError::Signature { .. }) => "bad_signature",
            Self::Document(_) => "bad_document",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::AlreadyReceived(_) => "already_received",
            Self::IdReused { .. } => "id_reused",
            Self::OutOfOrder(_) => "out_of_order",
            Self::Closed(_) => "closed",
            Self::Expired { .. } => "expired",
            Self::ClockSkew { .. } => "clock_skew",
            Self::Stale(_) => "stale",
            Self::AlreadyFederated { .. } => "already_federated",
            Self::CompetingDraft { .. } => "competing_draft",
            Self::DraftMismatch { .. } => "draft_mismatch",
            Self::PolicyDeclined(_) => "declined",
            Self::TooManyProposals { .. } => "too_many_proposals",
            Self::UnknownProposal(_) => "unknown_proposal",
            Self::UnknownAgreement(_) => "unknown_agreement",
            Self::UnknownDiscrepancy(_) => "unknown_discrepancy",
            Self::Command(_) => "bad_command",
            Self::Store(_) => "internal",
        }
    }
}
