//! The records the store keeps, one table each. They are plain data: what was received, sent
//! or decided, and when. The engine decides; these remember.

use std::collections::BTreeMap;

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vm_receipts::documents::{
    AnchorNotification, ArbitrationVerdict, DiscoveryRecord, DiscrepancyReport,
    DiscrepancyResolution, FederationAgreement, ProposalResponse, RevocationNotice, SignedRoot,
    SuspensionAction, SuspensionNotice, TrustProposal, WitnessAttestation, WitnessResult,
};
use vm_receipts::{Blake3Hash, DocumentId, MeshId, PublicKey, ScrollName, Timestamp};

/// A kind of record: its table and its key.
pub trait Record: Serialize + DeserializeOwned {
    /// The record's table (string keys, JSON values).
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]>;
    /// The table's name, for errors.
    const NAME: &'static str;
    /// This record's key.
    fn key(&self) -> String;

    /// A secondary index the store keeps in step with this table on every `put` and
    /// `remove`: string keys, a Unix-second value (a deadline). Records list themselves in it
    /// only while they need the engine's attention, so scanning it costs what is live, not
    /// what ever was.
    const INDEX: Option<TableDefinition<'static, &'static str, i64>> = None;

    /// This record's key in [`Record::INDEX`] (stable for the record's life).
    fn index_key(&self) -> String {
        self.key()
    }

    /// The index value while the record is listed, `None` when it is not.
    fn index_value(&self) -> Option<i64> {
        None
    }
}

/// Where the node learned of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerSource {
    /// Configured by the operator.
    Manual,
    /// DNS SRV/TXT discovery.
    Dns,
    /// The Kademlia DHT.
    Dht,
    /// The HTTP discovery endpoint.
    Http,
}

/// A known mesh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The mesh.
    pub mesh_id: MeshId,
    /// Its key, once known (from a verified discovery record or manual configuration).
    pub public_key: Option<PublicKey>,
    /// The newest verified discovery record.
    pub discovery_record: Option<DiscoveryRecord>,
    /// When the peer was first learned from each source.
    pub sources: BTreeMap<PeerSource, Timestamp>,
    /// Manual endpoints (multiaddrs or URLs) given by the operator.
    #[serde(default)]
    pub manual_addresses: Vec<String>,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Record for PeerEntry {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("peers");
    const NAME: &'static str = "peers";
    fn key(&self) -> String {
        self.mesh_id.to_string()
    }
}

/// Which side proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// We proposed.
    Outbound,
    /// A peer proposed to us.
    Inbound,
}

/// Where a negotiation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProposalStatus {
    /// Awaiting an answer (after the proposal or the last counter).
    Open,
    /// Terms accepted; the agreement follows.
    Accepted {
        /// The agreement drafted for it, once known.
        agreement_id: Option<DocumentId>,
    },
    /// Rejected, with the reason given.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Withdrawn by the proposer.
    Withdrawn,
    /// Passed `expires_at` unanswered.
    Expired,
}

/// A proposal and every answer to it, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// The signed proposal.
    pub proposal: TrustProposal,
    /// Who proposed.
    pub direction: Direction,
    /// Every signed response (counters, the final accept or reject), oldest first.
    pub history: Vec<ProposalResponse>,
    /// Where it stands.
    pub status: ProposalStatus,
    /// Last change.
    pub updated_at: Timestamp,
}

impl ProposalRecord {
    /// The other party, seen from the side that stores the record.
    pub fn peer(&self) -> &MeshId {
        match self.direction {
            Direction::Outbound => &self.proposal.target,
            Direction::Inbound => &self.proposal.proposer,
        }
    }
}

impl Record for ProposalRecord {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("proposals");
    const NAME: &'static str = "proposals";
    fn key(&self) -> String {
        // Proposal ids are unique per proposer, so the key holds both.
        proposal_key(&self.proposal.proposer, &self.proposal.proposal_id)
    }
    /// Open negotiations, `<peer>/<proposer>/<id>` → `expires_at`.
    const INDEX: Option<TableDefinition<'static, &'static str, i64>> =
        Some(TableDefinition::new("open_proposals"));
    fn index_key(&self) -> String {
        format!("{}/{}", self.peer(), self.key())
    }
    fn index_value(&self) -> Option<i64> {
        (self.status == ProposalStatus::Open).then(|| self.proposal.expires_at.unix())
    }
}

/// The proposal key inside an `open_proposals` index key (`<peer>/<proposer>/<id>`).
pub fn proposal_key_of_index(index_key: &str) -> Option<&str> {
    index_key.split_once('/').map(|(_, rest)| rest)
}

/// The key of a proposal: proposer, then id.
pub fn proposal_key(proposer: &MeshId, proposal_id: &DocumentId) -> String {
    format!("{proposer}/{proposal_id}")
}

/// Where an agreement stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AgreementStatus {
    /// Drafted and signed by one party, awaiting the countersignature.
    AwaitingCountersignature,
    /// Both signatures verified; in force.
    Active,
    /// Witnessing stopped pending resolution of a discrepancy.
    Suspended {
        /// Why.
        reason: String,
        /// The party that suspended it, which alone can resume it (absent in records written
        /// before issue 18: we did).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MeshId>,
    },
    /// Never countersigned and no longer awaited: the peer refused it, its proposal expired
    /// long ago, or a competing agreement with the same peer came into force. A late
    /// countersignature may still bring it into force (a signature is a commitment) unless
    /// another agreement with the peer is in force.
    Abandoned {
        /// Why.
        reason: String,
    },
    /// Revoked with notice; in force until `effective_at`.
    Revoking {
        /// When it ends.
        effective_at: Timestamp,
    },
    /// Ended.
    Revoked {
        /// When it ended.
        at: Timestamp,
    },
}

/// What an operator reads (never Rust's debug form).
impl std::fmt::Display for AgreementStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AwaitingCountersignature => f.write_str("awaiting the countersignature"),
            Self::Active => f.write_str("active"),
            Self::Suspended {
                reason,
                by: Some(by),
            } => write!(f, "suspended by {by} ({reason})"),
            Self::Suspended { reason, by: None } => write!(f, "suspended ({reason})"),
            Self::Abandoned { reason } => write!(f, "abandoned ({reason})"),
            Self::Revoking { effective_at } => write!(f, "being revoked (ends {effective_at})"),
            Self::Revoked { at } => write!(f, "revoked (ended {at})"),
        }
    }
}

impl AgreementStatus {
    /// Whether the agreement binds both parties at `now`: active, suspended, or revoked but
    /// within its notice.
    pub fn in_force(&self, now: Timestamp) -> bool {
        match self {
            Self::Active | Self::Suspended { .. } => true,
            Self::Revoking { effective_at } => now < *effective_at,
            _ => false,
        }
    }

    /// In force and not suspended: witnessing and cross-anchoring run under it.
    pub fn working(&self, now: Timestamp) -> bool {
        self.in_force(now) && !matches!(self, Self::Suspended { .. })
    }
}

/// An agreement and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRecord {
    /// The agreement, with the signatures it has so far.
    pub agreement: FederationAgreement,
    /// Where it stands.
    pub status: AgreementStatus,
    /// The signed notice that is ending it, once either party revoked it.
    #[serde(default)]
    pub revocation: Option<RevocationNotice>,
    /// When the next verification cycle with the peer is due (while in force).
    #[serde(default)]
    pub next_verification_at: Option<Timestamp>,
    /// The key of the negotiation it came from.
    #[serde(default)]
    pub proposal: Option<String>,
    /// For our own drafts: when to stop waiting for the countersignature (cleared once done).
    #[serde(default)]
    pub draft_deadline: Option<Timestamp>,
    /// The last signed suspension notice the other party sent (a repeat or an older one is
    /// refused against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_suspension: Option<SuspensionNotice>,
    /// How many suspension notices we gave under this agreement (the last one's `sequence`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspension_notices: u64,
    /// Last change.
    pub updated_at: Timestamp,
}

impl AgreementRecord {
    /// A suspension or resumption by `by` (`me` or the other party) at `at`, as the engine
    /// and the state rebuild both apply it: a suspension stops an agreement in force; only the
    /// party that suspended can resume. Returns whether the status changed (a notice that
    /// changes nothing, such as the peer suspending what we already suspended, is still
    /// recorded by the caller).
    pub fn apply_suspension(
        &mut self,
        action: SuspensionAction,
        by: &MeshId,
        me: &MeshId,
        reason: &str,
        at: Timestamp,
    ) -> bool {
        let changed = match (action, &self.status) {
            (
                SuspensionAction::Suspend,
                AgreementStatus::Active | AgreementStatus::Revoking { .. },
            ) => {
                self.status = AgreementStatus::Suspended {
                    reason: reason.to_owned(),
                    by: Some(by.clone()),
                };
                true
            }
            (SuspensionAction::Resume, AgreementStatus::Suspended { by: suspender, .. })
                if suspender.as_ref().unwrap_or(me) == by =>
            {
                self.status = match &self.revocation {
                    Some(notice) => AgreementStatus::Revoking {
                        effective_at: notice.effective_at,
                    },
                    None => AgreementStatus::Active,
                };
                self.next_verification_at = Some(at);
                true
            }
            _ => false,
        };
        if changed {
            self.updated_at = at;
        }
        changed
    }

    /// When the engine must next look at this agreement: the end of a revocation notice,
    /// the next verification cycle, or a draft's deadline.
    pub fn wake_at(&self) -> Option<Timestamp> {
        match &self.status {
            AgreementStatus::Revoking { effective_at } => Some(
                self.next_verification_at
                    .map_or(*effective_at, |v| v.min(*effective_at)),
            ),
            AgreementStatus::Active => self.next_verification_at,
            AgreementStatus::Suspended { .. } => self.revocation.as_ref().map(|n| n.effective_at),
            AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. } => {
                self.draft_deadline
            }
            _ => None,
        }
    }
}

impl Record for AgreementRecord {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("agreements");
    const NAME: &'static str = "agreements";
    fn key(&self) -> String {
        self.agreement.agreement_id.to_string()
    }
    /// Live agreements (in force, or our drafts awaiting a countersignature), keyed
    /// `<pair>/<agreement id>` (see [`agreement_pair_prefix`]) so those with one peer are a
    /// prefix scan; the value is [`AgreementRecord::wake_at`], or `i64::MAX` for none.
    const INDEX: Option<TableDefinition<'static, &'static str, i64>> =
        Some(TableDefinition::new("live_agreements"));
    fn index_key(&self) -> String {
        let parties = &self.agreement.parties;
        let pair = match parties.as_slice() {
            [a, b] => agreement_pair_prefix(a, b),
            _ => String::from("?/"),
        };
        format!("{pair}{}", self.agreement.agreement_id)
    }
    fn index_value(&self) -> Option<i64> {
        let live = match &self.status {
            AgreementStatus::Revoked { .. } => false,
            AgreementStatus::Abandoned { .. } => self.draft_deadline.is_some(),
            _ => true,
        };
        live.then(|| self.wake_at().map_or(i64::MAX, Timestamp::unix))
    }
}

/// The index prefix of the agreements between `a` and `b` (either order).
pub fn agreement_pair_prefix(a: &MeshId, b: &MeshId) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{x}|{y}/")
}

/// The agreement id inside a `live_agreements` index key.
pub fn agreement_id_of_index(index_key: &str) -> Option<&str> {
    index_key.rsplit_once('/').map(|(_, id)| id)
}

/// What a witness last attested for one (peer, scroll): the full signed root (C2SP
/// tlog-witness), never just size and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WitnessState {
    /// The peer witnessed.
    pub peer: MeshId,
    /// Its scroll.
    pub scroll: ScrollName,
    /// The latest signed root witnessed.
    pub latest: SignedRoot,
    /// When.
    pub witnessed_at: Timestamp,
    /// The outcome of the latest check (a failed check keeps `latest`, the last good root).
    pub result: WitnessResult,
    /// The size of `latest` when we last cross-anchored it (level 3+), so an unchanged root
    /// is not anchored again every cycle.
    #[serde(default)]
    pub cross_anchored_size: Option<u64>,
}

impl Record for WitnessState {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("witness_state");
    const NAME: &'static str = "witness_state";
    fn key(&self) -> String {
        witness_key(&self.peer, &self.scroll)
    }
}

/// The key of a witness state: peer, then scroll (lower case: scroll names ignore case).
pub fn witness_key(peer: &MeshId, scroll: &ScrollName) -> String {
    format!("{peer}/{}", scroll.file_stem())
}

/// The outcome of a compare-and-swap on witness state.
#[derive(Debug, Clone, PartialEq)]
pub enum CasOutcome {
    /// Stored.
    Advanced,
    /// The stored size was not the expected one (a racing update, or a stale expectation);
    /// nothing changed. Carries what is stored.
    Stale(Option<Box<WitnessState>>),
    /// Same size, different root: two roots that cannot both be true. Refused, nothing
    /// changed; carries the stored state (half of the evidence).
    Conflicting(Box<WitnessState>),
    /// The new root is smaller than the stored one: refused, nothing changed.
    WouldMoveBackwards {
        /// Stored size.
        stored: u64,
        /// Offered size.
        offered: u64,
    },
}

/// A discrepancy found or reported, and whether it is resolved.
///
/// One record per finding: the same conflict seen again (the next cycle, another origin of
/// the root, another witness's gossip) raises `times_seen` and `last_seen_at` of the open
/// record with the same [`finding_key`]; it is not a new record, receipt or report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscrepancyRecord {
    /// The signed report.
    pub report: DiscrepancyReport,
    /// Evidence kept verbatim (e.g. both conflicting signed roots).
    #[serde(default)]
    pub evidence: Vec<serde_json::Value>,
    /// When resolved, if it is.
    pub resolved_at: Option<Timestamp>,
    /// How many times the finding was made (1 when first recorded).
    #[serde(default = "one")]
    pub times_seen: u64,
    /// When it was last made again (absent until it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
    /// The signed resolutions of either party (seed §6.3), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolutions: Vec<DiscrepancyResolution>,
    /// Arbiters' signed verdicts on it (seed §6.3 step 3), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arbitrations: Vec<ArbitrationVerdict>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn one() -> u64 {
    1
}

impl DiscrepancyRecord {
    /// A new open record of `report`, seen once.
    pub fn new(report: DiscrepancyReport, evidence: serde_json::Value) -> Self {
        Self {
            report,
            evidence: vec![evidence],
            resolved_at: None,
            times_seen: 1,
            last_seen_at: None,
            resolutions: Vec::new(),
            arbitrations: Vec::new(),
        }
    }

    /// The discrepancy id.
    pub fn id(&self) -> &DocumentId {
        &self.report.body.discrepancy_id
    }

    /// The party other than `me`.
    pub fn other_party(&self, me: &MeshId) -> &MeshId {
        let b = &self.report.body;
        if &b.reporting_mesh == me {
            &b.reported_mesh
        } else {
            &b.reporting_mesh
        }
    }

    /// Keeps `resolution` (already checked: signed by its `resolved_by`, about this finding)
    /// and closes the record if it ends the finding for `me`: a resolution by the mesh that
    /// made the finding closes it on both sides; one by the reported mesh closes only the
    /// reported mesh's own copy (an accused mesh cannot close its accuser's finding).
    pub fn resolve(&mut self, resolution: DiscrepancyResolution, me: &MeshId) {
        let closes = resolution.resolved_by == self.report.body.reporting_mesh
            || &resolution.resolved_by == me;
        if closes && self.resolved_at.is_none() {
            self.resolved_at = Some(resolution.timestamp);
        }
        self.resolutions.push(resolution);
    }

    /// `resolved_by`'s resolution, if it gave one.
    pub fn resolution_by(&self, mesh: &MeshId) -> Option<&DiscrepancyResolution> {
        self.resolutions.iter().find(|r| &r.resolved_by == mesh)
    }

    /// The evidence kind the report's details name (`evidence_kind`), or `""`.
    pub fn evidence_kind(&self) -> &str {
        self.report
            .body
            .details
            .extra
            .get("evidence_kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    }

    /// What identifies the finding (see [`finding_key`]).
    pub fn finding_key(&self) -> String {
        let b = &self.report.body;
        finding_key(
            &b.reporting_mesh,
            &b.reported_mesh,
            &b.details.scroll,
            &b.discrepancy_type.to_string(),
            self.evidence_kind(),
        )
    }
}

/// What makes two findings one: who reports whom, about which scroll, of which type and
/// evidence kind. While a record with this key is open (unresolved), a finding with the same
/// key updates it instead of making another.
pub fn finding_key(
    reporting: &MeshId,
    reported: &MeshId,
    scroll: &ScrollName,
    discrepancy_type: &str,
    evidence_kind: &str,
) -> String {
    format!(
        "{reporting}|{reported}|{}|{discrepancy_type}|{evidence_kind}/",
        scroll.file_stem()
    )
}

impl Record for DiscrepancyRecord {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("discrepancies");
    const NAME: &'static str = "discrepancies";
    fn key(&self) -> String {
        format!(
            "{}/{}",
            self.report.body.reporting_mesh, self.report.body.discrepancy_id
        )
    }
    /// Open findings, `<finding key><record key>` → when first reported (Unix seconds): a
    /// prefix scan by [`finding_key`] finds the open record of a finding.
    const INDEX: Option<TableDefinition<'static, &'static str, i64>> =
        Some(TableDefinition::new("open_findings"));
    fn index_key(&self) -> String {
        format!("{}{}", self.finding_key(), self.key())
    }
    fn index_value(&self) -> Option<i64> {
        self.resolved_at
            .is_none()
            .then(|| self.report.body.timestamp.unix())
    }
}

/// A verdict we gave as the arbiter of another mesh's finding (seed §6.3 step 3): kept so a
/// request sent again is answered with the same verdict, not a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArbitrationRecord {
    /// The signed verdict.
    pub verdict: ArbitrationVerdict,
}

impl Record for ArbitrationRecord {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("arbitrations");
    const NAME: &'static str = "arbitrations";
    fn key(&self) -> String {
        arbitration_key(&self.verdict.requested_by, &self.verdict.arbitration_id)
    }
}

/// The key of an arbitration: the requesting mesh, then the request's id.
pub fn arbitration_key(requested_by: &MeshId, arbitration_id: &DocumentId) -> String {
    format!("{requested_by}/{arbitration_id}")
}

/// A message to a peer that it has not acknowledged yet. One per (peer, topic): a newer
/// message on the same negotiation or agreement replaces the older one, which no longer
/// matters. Sent again, with backoff, until acknowledged, refused, or given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// The recipient.
    pub to: MeshId,
    /// What it is about (a proposal key or an agreement id).
    pub topic: String,
    /// The message, as the engine encodes it.
    pub message: serde_json::Value,
    /// blake3 of the JCS of the message: what an acknowledgement names.
    pub message_hash: Blake3Hash,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is due again.
    pub next_attempt_at: Timestamp,
    /// When it was first queued.
    pub created_at: Timestamp,
    /// Why the last attempt failed (absent until one does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Record for OutgoingMessage {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("outgoing");
    const NAME: &'static str = "outgoing";
    fn key(&self) -> String {
        outgoing_key(&self.to, &self.topic)
    }
}

/// The key of an outgoing message: recipient, then topic.
pub fn outgoing_key(to: &MeshId, topic: &str) -> String {
    format!("{to}/{topic}")
}

/// Our latest anchored root of one of our own scrolls: the signed root with its anchor proof,
/// exactly as it was sent to witnesses. Replaced on every anchor cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchoredRoot {
    /// The notification (signed root + anchor proof).
    pub notification: AnchorNotification,
    /// When the anchor cycle made it.
    pub anchored_at: Timestamp,
}

impl Record for AnchoredRoot {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("anchored_roots");
    const NAME: &'static str = "anchored_roots";
    fn key(&self) -> String {
        self.notification.scroll.file_stem()
    }
}

/// The latest attestation a peer sent us about one of our scrolls (what `status` shows as
/// "witnessed by"). Older ones live in the Federation scroll as `fed_witness_event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedAttestation {
    /// The signed attestation.
    pub attestation: WitnessAttestation,
    /// When it arrived.
    pub received_at: Timestamp,
}

impl Record for ReceivedAttestation {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("received_attestations");
    const NAME: &'static str = "received_attestations";
    fn key(&self) -> String {
        witness_key(&self.attestation.witnessing_mesh, &self.attestation.scroll)
    }
}
