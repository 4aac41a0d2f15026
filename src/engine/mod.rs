//! The federation engine: sans-IO (DESIGN §2). It never touches sockets, files, tokio, the OS
//! clock or an OS RNG: time arrives with every input, randomness as a seed when it is built,
//! and `tests/it/tidy.rs` checks this directory for it. Its state lives in a
//! [`vm_storage::Store`] (a redb file in the node, redb's in-memory backend in simulation).
//!
//! # Contract
//!
//! ```text
//! Engine::open(identity, config, store, federation_len, seed)
//! engine.handle(now, input) -> Result<Vec<Output>, EngineError>
//! engine.poll_timeout()      -> Option<Timestamp>      // call handle(t, Input::Tick) then
//! engine.pending_receipts()  -> receipts decided but not yet in the Federation scroll
//! ```
//!
//! - **One input, one transaction.** `handle` runs the input's handler inside one redb write
//!   transaction. It commits, durably, before `handle` returns `Ok`; an `Err` means the input
//!   was refused or failed and *nothing* changed (no state, no receipt, no message).
//! - **Inputs** ([`Input`]): a message from an authenticated peer, a discovery record learned
//!   from DNS/DHT/HTTP, an operator [`Command`], a timer tick, and the driver's reports (a
//!   message delivered or refused, receipts stored in the scroll).
//! - **Outputs** ([`Output`]): messages to send, receipts to append, our discovery record to
//!   publish, roots to exchange and verification cycles due (for the witness machinery), and
//!   operator-visible [`Event`]s.
//! - **Receipts, exactly once.** Every lifecycle event queues its Federation receipt *in the
//!   transaction that makes the state change*, under the scroll sequence it will take. The
//!   driver appends [`Output::Receipt`]s in sequence order and reports
//!   [`Input::ReceiptsStored`]. After a crash anywhere, [`Engine::pending_receipts`] holds
//!   what may be missing; the driver compares it with the scroll's tail (a receipt already
//!   there is acknowledged, not appended again): see `crate::federation_log`.
//! - **Messages, at least once.** Every message is kept in the store's outgoing table (one per
//!   peer and topic, the newest replacing older ones) until the peer acknowledges it
//!   ([`Input::Delivered`]) or refuses it for good; ticks resend due ones with jittered,
//!   capped backoff. Receivers refuse exact repeats with [`EngineError::AlreadyReceived`],
//!   which transports report to the sender as delivered.
//! - **Timers.** [`Engine::poll_timeout`] says when the engine next wants an
//!   [`Input::Tick`]: proposal expiry, revocations taking effect, resends, verification
//!   cycles, the discovery record's refresh.

mod agreements;
mod arbitration;
mod discovery;
mod error;
mod messages;
mod negotiation;
pub mod policy;
mod queries;
mod receipts;
mod resolution;
mod retry;
mod witness;

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{Map, Value};
use vm_receipts::documents::{DiscoveryRecord, Endpoints, ProposedTerms, TrustLevel, TrustPolicy};
use vm_receipts::{Blake3Hash, DocumentId, MeshId, MeshKey, PublicKey, ScrollName, Timestamp};
use vm_storage::{PeerSource, Store, StoreError, WriteTx};

pub use error::EngineError;
pub use messages::{MAX_MESSAGE_BYTES, PeerMessage, document_hash};
pub use resolution::find as find_discrepancy;
pub use retry::RetryPolicy;
pub use witness::{CrossAnchored, WitnessReport, evidence_hash};

/// The `meta` key holding the Federation scroll sequence the next receipt will take.
const NEXT_SEQUENCE: &str = "federation_next_sequence";

/// A receipt decided but not yet known to be in the Federation scroll: the sequence it must
/// take, and the receipt without `root_hash`.
pub type PendingReceipt = (u64, Map<String, Value>);

/// How an engine behaves; the node fills it from `config.toml` and defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// False at trust level 0 (`isolated`): no federation at all (DESIGN §6).
    pub federation_on: bool,
    /// Shown in our discovery record.
    pub display_name: String,
    /// Our HTTPS endpoints, for the discovery record.
    pub endpoints: Endpoints,
    /// Our libp2p addresses, for the discovery record.
    pub multiaddrs: Vec<String>,
    /// The scrolls we offer to share.
    pub scrolls_available: Vec<ScrollName>,
    /// What proposals we take.
    pub trust_policy: TrustPolicy,
    /// Our discovery record is signed again after this many seconds.
    pub discovery_refresh_secs: i64,
    /// Discovery records older than this are refused as stale.
    pub discovery_max_age_secs: i64,
    /// A proposal we make expires after this many seconds.
    pub proposal_ttl_secs: i64,
    /// How far a peer's timestamps may be ahead of our clock.
    pub max_clock_skew_secs: i64,
    /// Open proposals one peer may have with us at once.
    pub max_open_proposals_per_peer: usize,
    /// Resending unacknowledged messages.
    pub retry: RetryPolicy,
    /// Which of our own findings suspend the agreement with the reported mesh at once (seed
    /// §6.3 step 4, `[witness] suspend_on`); empty: none, the operator decides.
    pub suspend_on: Vec<Escalation>,
}

/// A kind of finding that suspends the agreement with the reported mesh when we make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escalation {
    /// A finding whose evidence is a proof on its own (signed roots no honest mesh makes).
    Proof,
    /// Any finding of critical severity (`root_mismatch`, `anchor_invalid`), proof or claim.
    Critical,
}

impl EngineConfig {
    /// Defaults for a mesh: federation on, seven-day proposals, 5-minute skew (the seed's
    /// drift limit), hourly discovery refresh, records valid for a week.
    pub fn new(display_name: impl Into<String>) -> Self {
        Self {
            federation_on: true,
            display_name: display_name.into(),
            endpoints: Endpoints::default(),
            multiaddrs: Vec::new(),
            scrolls_available: Vec::new(),
            trust_policy: TrustPolicy {
                accepts_proposals: true,
                min_trust_level: TrustLevel::OBSERVE,
                requires_mutual: true,
                extra: Map::new(),
            },
            discovery_refresh_secs: 3600,
            discovery_max_age_secs: 7 * 86_400,
            proposal_ttl_secs: 7 * 86_400,
            max_clock_skew_secs: 300,
            max_open_proposals_per_peer: 16,
            retry: RetryPolicy::default(),
            suspend_on: Vec::new(),
        }
    }
}

/// Something that happened to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A message from `from`, whose identity the transport authenticated.
    Peer {
        /// The sender.
        from: MeshId,
        /// What it sent.
        message: PeerMessage,
    },
    /// A discovery record found through DNS, the DHT or HTTP.
    Discovered {
        /// The record (its signature not yet checked).
        record: DiscoveryRecord,
        /// Where it was found.
        source: PeerSource,
    },
    /// An operator command.
    Command(Command),
    /// Time passed: do what is due.
    Tick,
    /// The peer acknowledged a message we sent.
    Delivered {
        /// The peer.
        to: MeshId,
        /// The message's hash.
        message_hash: Blake3Hash,
    },
    /// Sending a message failed.
    DeliveryFailed {
        /// The peer.
        to: MeshId,
        /// The message's hash.
        message_hash: Blake3Hash,
        /// Why (the peer's error or the transport's).
        reason: String,
        /// The peer refused it for good ([`EngineError::is_permanent`]): stop sending it.
        permanent: bool,
    },
    /// The Federation scroll now holds `size` receipts.
    ReceiptsStored {
        /// Its length.
        size: u64,
    },
    /// The witness checks of a peer's root ran (DESIGN §7 steps 1–4); act on the verdict.
    Witnessed(Box<WitnessReport>),
    /// Our anchor cycle included these peers' witnessed roots (cross-anchor, level 3+).
    Anchored(Vec<CrossAnchored>),
}

/// Which proposal a command means: by id, and by proposer when the id alone is ambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRef {
    /// The proposal id.
    pub id: DocumentId,
    /// Its proposer, if the id is not enough.
    pub proposer: Option<MeshId>,
}

impl From<DocumentId> for ProposalRef {
    fn from(id: DocumentId) -> Self {
        Self { id, proposer: None }
    }
}

/// What an operator asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Adds a peer by hand (manual configuration).
    AddPeer {
        /// The mesh.
        mesh_id: MeshId,
        /// Its key.
        public_key: PublicKey,
        /// Where to reach it (multiaddrs or URLs).
        addresses: Vec<String>,
    },
    /// Forgets a peer the operator no longer wants (refused while an agreement or an open
    /// negotiation binds us to it).
    RemovePeer {
        /// The mesh.
        mesh_id: MeshId,
    },
    /// Proposes federation.
    Propose {
        /// To whom.
        target: MeshId,
        /// At which level.
        trust_level: TrustLevel,
        /// On which terms.
        terms: ProposedTerms,
    },
    /// Offers other terms.
    Counter {
        /// Which proposal.
        proposal: ProposalRef,
        /// The terms.
        terms: ProposedTerms,
    },
    /// Accepts the terms on the table, drafting and signing the agreement.
    Accept {
        /// Which proposal.
        proposal: ProposalRef,
    },
    /// Rejects the terms on the table.
    Reject {
        /// Which proposal.
        proposal: ProposalRef,
        /// Why.
        reason: String,
    },
    /// Takes back our own proposal.
    Withdraw {
        /// Which proposal.
        proposal: ProposalRef,
        /// Why, if said.
        reason: Option<String>,
    },
    /// Ends an agreement after `notice_days`.
    Revoke {
        /// Which agreement.
        agreement_id: DocumentId,
        /// Days of notice (0: now).
        notice_days: u32,
        /// Why.
        reason: String,
    },
    /// Stops witnessing under an agreement until resumed.
    Suspend {
        /// Which agreement.
        agreement_id: DocumentId,
        /// Why.
        reason: String,
        /// The discrepancy behind it, if any.
        discrepancy_id: Option<DocumentId>,
    },
    /// Ends a suspension.
    Resume {
        /// Which agreement.
        agreement_id: DocumentId,
        /// Why.
        reason: String,
    },
    /// Proposes new terms for the agreement in force: when the new agreement comes into
    /// force, on both sides, it replaces this one (which ends with a receipt).
    Amend {
        /// The agreement to replace.
        agreement_id: DocumentId,
        /// The level of the new agreement.
        trust_level: TrustLevel,
        /// Its terms.
        terms: ProposedTerms,
    },
    /// Resolves a finding between us and a peer (seed §6.3): signs how it ended, keeps it
    /// and tells the other party.
    ResolveDiscrepancy {
        /// The finding: its id, or `<reporting mesh>/<id>`.
        discrepancy_id: String,
        /// How it ended.
        outcome: vm_receipts::documents::ResolutionOutcome,
        /// What was done or found.
        note: String,
    },
    /// Asks a third mesh to arbitrate a finding between us and a peer (seed §6.3 step 3).
    Arbitrate {
        /// The finding: its id, or `<reporting mesh>/<id>`.
        discrepancy_id: String,
        /// The third mesh.
        arbiter: MeshId,
    },
    /// Sends waiting messages now (`outbox retry`): to `to` (all when `None`), on `topic`
    /// (all of that mesh's when `None`).
    RetryOutbox {
        /// The recipient.
        to: Option<MeshId>,
        /// The message's topic (a proposal key or an agreement id).
        topic: Option<String>,
    },
}

/// Something the driver must do, or show.
#[allow(clippy::large_enum_variant)] // as PeerMessage: built once, moved once
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `message` to `to` and report [`Input::Delivered`] or [`Input::DeliveryFailed`].
    Send {
        /// The recipient.
        to: MeshId,
        /// The message.
        message: PeerMessage,
        /// Its hash, for the report.
        message_hash: Blake3Hash,
    },
    /// Append this receipt to the Federation scroll at `sequence`, then report
    /// [`Input::ReceiptsStored`].
    Receipt {
        /// The sequence it must take.
        sequence: u64,
        /// The receipt, without `root_hash`.
        receipt: Map<String, Value>,
    },
    /// Publish our (re-signed) discovery record (DHT, HTTP discovery endpoint).
    PublishDiscovery(Box<DiscoveryRecord>),
    /// An agreement came into force: send the peer our signed roots of these scrolls.
    ExchangeRoots {
        /// The peer.
        peer: MeshId,
        /// The shared scrolls.
        scrolls: Vec<ScrollName>,
    },
    /// A verification cycle with the peer is due (the witness machinery runs it).
    VerificationDue {
        /// The agreement.
        agreement_id: DocumentId,
        /// The peer.
        peer: MeshId,
        /// The shared scrolls.
        scrolls: Vec<ScrollName>,
    },
    /// For the operator.
    Event(Event),
}

/// What an operator sees happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer was learned or its record refreshed.
    PeerUpdated {
        /// The peer.
        mesh_id: MeshId,
        /// From where.
        source: PeerSource,
    },
    /// A peer was forgotten by the operator.
    PeerRemoved {
        /// The peer.
        mesh_id: MeshId,
    },
    /// A proposal moved (sent, received, countered, accepted, rejected, withdrawn, expired).
    Proposal {
        /// The proposal.
        proposal_id: DocumentId,
        /// The other party.
        peer: MeshId,
        /// What happened.
        event: vm_receipts::receipts::ProposalEvent,
    },
    /// An agreement came into force.
    Established {
        /// The agreement.
        agreement_id: DocumentId,
        /// The other party.
        peer: MeshId,
    },
    /// An agreement will end at `effective_at`.
    RevocationNoticed {
        /// The agreement.
        agreement_id: DocumentId,
        /// Who revoked it.
        revoked_by: MeshId,
        /// When it ends.
        effective_at: Timestamp,
    },
    /// An agreement ended.
    Revoked {
        /// The agreement.
        agreement_id: DocumentId,
    },
    /// An agreement was suspended or resumed.
    Suspension {
        /// The agreement.
        agreement_id: DocumentId,
        /// True when suspended, false when resumed.
        suspended: bool,
        /// The party that did (us, or the other party by its signed notice).
        by: MeshId,
    },
    /// A draft of ours will not come into force.
    DraftAbandoned {
        /// The agreement.
        agreement_id: DocumentId,
        /// Why.
        reason: String,
    },
    /// We witnessed a peer's root.
    Witnessed {
        /// The peer.
        peer: MeshId,
        /// Its scroll.
        scroll: ScrollName,
        /// The size witnessed.
        size: u64,
        /// The root witnessed.
        root: Blake3Hash,
        /// Verified or discrepancy.
        result: vm_receipts::documents::WitnessResult,
    },
    /// A peer attested one of our roots.
    Attested {
        /// The witness.
        by: MeshId,
        /// Our scroll.
        scroll: ScrollName,
        /// The size attested.
        size: u64,
        /// Its result.
        result: vm_receipts::documents::WitnessResult,
    },
    /// A discrepancy was found (by us) or reported (to us).
    Discrepancy {
        /// Its id.
        discrepancy_id: DocumentId,
        /// Who found it.
        reporting_mesh: MeshId,
        /// Whom it concerns.
        reported_mesh: MeshId,
        /// Its type (`root_mismatch`, …).
        kind: String,
        /// The scroll.
        scroll: ScrollName,
    },
    /// A finding was resolved, by us or by the other party.
    DiscrepancyResolved {
        /// Its id.
        discrepancy_id: DocumentId,
        /// Who resolved it.
        resolved_by: MeshId,
        /// How.
        outcome: vm_receipts::documents::ResolutionOutcome,
        /// Whether our record of it is now closed.
        closed: bool,
    },
    /// We asked a third mesh to arbitrate a finding.
    ArbitrationRequested {
        /// The request.
        arbitration_id: DocumentId,
        /// The finding.
        discrepancy_id: DocumentId,
        /// The arbiter.
        arbiter: MeshId,
    },
    /// An arbiter's verdict on a finding, given by us or received.
    ArbitrationVerdict {
        /// The request answered.
        arbitration_id: DocumentId,
        /// The finding.
        discrepancy_id: DocumentId,
        /// The arbiter.
        arbiter: MeshId,
        /// What it found.
        outcome: vm_receipts::documents::ArbitrationOutcome,
    },
    /// A finding already recorded was made again (the next cycle, another origin of the
    /// root, another witness's gossip): its record counts it; no new receipt or report.
    DiscrepancyRepeated {
        /// The open record's id.
        discrepancy_id: DocumentId,
        /// Whom it concerns.
        reported_mesh: MeshId,
        /// How many times it has been made.
        times_seen: u64,
    },
    /// A peer's witnessed root went into our anchor.
    CrossAnchored {
        /// The peer.
        peer: MeshId,
        /// Its scroll.
        scroll: ScrollName,
        /// The size anchored.
        size: u64,
    },
    /// A message has failed its first attempts and is still being resent (said once per
    /// message, when it starts failing, not per attempt).
    Delayed {
        /// The peer.
        to: MeshId,
        /// What about.
        topic: String,
        /// Attempts so far.
        attempts: u32,
        /// The latest failure.
        reason: String,
    },
    /// A peer refused a message for good, or we gave up resending it.
    Undelivered {
        /// The peer.
        to: MeshId,
        /// What about.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// The engine of one mesh.
pub struct Engine {
    me: MeshId,
    key: MeshKey,
    config: EngineConfig,
    store: Store,
    rng: ChaCha20Rng,
    /// Our signed record as last built (what `discovery_record` serves).
    own_record: Option<DiscoveryRecord>,
    /// The record last handed out for publishing, set only once its tick committed.
    published: Option<DiscoveryRecord>,
    refusals: BTreeMap<&'static str, u64>,
    /// Decoded peer keys and agreements for the queries between inputs (`queries.rs`).
    cache: std::sync::Mutex<queries::QueryCache>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("me", &self.me).finish()
    }
}

/// What a handler works with: identity, configuration, randomness, the open transaction and
/// the outputs so far (dropped if the handler fails).
pub(crate) struct Ctx<'c, 't> {
    pub me: &'c MeshId,
    pub key: &'c MeshKey,
    pub config: &'c EngineConfig,
    pub rng: &'c mut ChaCha20Rng,
    pub now: Timestamp,
    pub tx: &'c mut WriteTx<'t>,
    pub out: Vec<Output>,
}

impl Ctx<'_, '_> {
    pub fn event(&mut self, event: Event) {
        self.out.push(Output::Event(event));
    }

    /// Refuses a peer's timestamp further ahead of our clock than the skew allows.
    pub fn check_not_future(
        &self,
        field: &'static str,
        value: Timestamp,
    ) -> Result<(), EngineError> {
        let limit = self.config.max_clock_skew_secs;
        if value.seconds_since(self.now) > limit {
            return Err(EngineError::ClockSkew {
                field,
                value,
                now: self.now,
                limit_secs: limit,
            });
        }
        Ok(())
    }
}

/// Refuses a document whose author is not the mesh the transport authenticated.
pub(crate) fn authored_by(
    document: &'static str,
    author: &MeshId,
    from: &MeshId,
) -> Result<(), EngineError> {
    if author == from {
        return Ok(());
    }
    Err(EngineError::SenderMismatch {
        document,
        author: author.clone(),
        from: from.clone(),
    })
}

impl Engine {
    /// Builds the engine of mesh `me` over `store`. `federation_len` is the Federation
    /// scroll's length now (it anchors receipt sequences on first use); `seed` seeds the
    /// engine's randomness (ids, jitter): OS entropy in the node, the run's seed in simnet.
    pub fn open(
        me: MeshId,
        key: MeshKey,
        config: EngineConfig,
        store: Store,
        federation_len: u64,
        seed: [u8; 32],
    ) -> Result<Self, EngineError> {
        if config.federation_on {
            // A configuration that cannot make a valid discovery record fails here, not at
            // every tick.
            discovery::build_own(&me, &key, &config, Timestamp::EPOCH)?;
        }
        store.write(|tx| {
            if tx.meta(NEXT_SEQUENCE)?.is_none() {
                tx.set_meta(NEXT_SEQUENCE, federation_len)?;
            }
            Ok(())
        })?;
        Ok(Self {
            me,
            key,
            config,
            store,
            rng: ChaCha20Rng::from_seed(seed),
            own_record: None,
            published: None,
            refusals: BTreeMap::new(),
            cache: std::sync::Mutex::default(),
        })
    }

    /// Our mesh id.
    pub fn mesh_id(&self) -> &MeshId {
        &self.me
    }

    /// The state database (for reads: the control socket, tests). Drivers may write records the engine does not decide (our anchored roots) through
    /// it, never peers or agreements: the engine caches those between inputs.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes the store back (shutting the engine down).
    pub fn into_store(self) -> Store {
        self.store
    }

    /// Refused inputs so far, by [`EngineError::code`].
    pub fn refusals(&self) -> &BTreeMap<&'static str, u64> {
        &self.refusals
    }

    /// Receipts decided but not yet reported stored, by the sequence each must take.
    pub fn pending_receipts(&self) -> Result<Vec<PendingReceipt>, EngineError> {
        let raw = self.store.read(|tx| tx.pending_receipts())?;
        raw.into_iter()
            .map(|(seq, bytes)| {
                let value: Value =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        table: "receipt_outbox",
                        key: seq.to_string(),
                        message: e.to_string(),
                    })?;
                match value {
                    Value::Object(map) => Ok((seq, map)),
                    _ => Err(EngineError::Store(StoreError::Corrupt {
                        table: "receipt_outbox",
                        key: seq.to_string(),
                        message: "not a JSON object".into(),
                    })),
                }
            })
            .collect()
    }

    /// Our discovery record as of `now`, signed (the one last published if still fresh).
    pub fn discovery_record(&mut self, now: Timestamp) -> Result<DiscoveryRecord, EngineError> {
        if let Some(record) = &self.own_record
            && now.seconds_since(record.updated_at) < self.config.discovery_refresh_secs
        {
            return Ok(record.clone());
        }
        let record = discovery::build_own(&self.me, &self.key, &self.config, now)?;
        self.own_record = Some(record.clone());
        Ok(record)
    }

    /// When the engine next wants an [`Input::Tick`].
    pub fn poll_timeout(&self) -> Result<Option<Timestamp>, EngineError> {
        let mut next = match &self.published {
            Some(r) => Some(
                r.updated_at
                    .plus_seconds(self.config.discovery_refresh_secs),
            ),
            // Nothing published yet: the first tick publishes.
            None if self.config.federation_on => Some(Timestamp::EPOCH),
            None => None,
        };
        let mut consider = |t: Timestamp| next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        self.store.read(|tx| {
            for t in negotiation::deadlines(tx)? {
                consider(t);
            }
            for t in agreements::deadlines(tx)? {
                consider(t);
            }
            for t in retry::deadlines(tx)? {
                consider(t);
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(next)
    }

    /// Handles one input at `now`. On `Ok` every state change is durable and the outputs are
    /// the driver's to carry out; on `Err` nothing changed.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<Vec<Output>, EngineError> {
        // Emptied of what the input may change before it runs: a failed one changed
        // nothing, and a query afterwards reads what it committed either way.
        self.cache
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .before(&input, !self.config.suspend_on.is_empty());
        let result = self.dispatch(now, input);
        if let Err(e) = &result {
            *self.refusals.entry(e.code()).or_default() += 1;
            tracing::debug!(mesh = %self.me, code = e.code(), "input refused: {e}");
        }
        result
    }

    fn dispatch(&mut self, now: Timestamp, input: Input) -> Result<Vec<Output>, EngineError> {
        let mut publish = None;
        if matches!(input, Input::Tick) && self.config.federation_on {
            let stale = self.published.as_ref().is_none_or(|r| {
                now.seconds_since(r.updated_at) >= self.config.discovery_refresh_secs
            });
            if stale {
                // A record that cannot be built must not stop the tick's other work.
                match self.discovery_record(now) {
                    Ok(record) => publish = Some(record),
                    Err(e) => {
                        tracing::warn!(mesh = %self.me, "discovery record not refreshed: {e}")
                    }
                }
            }
        }
        let Self {
            me,
            key,
            config,
            store,
            rng,
            ..
        } = self;
        let mut out = store.transact(|tx| {
            let mut ctx = Ctx {
                me,
                key,
                config,
                rng,
                now,
                tx,
                out: Vec::new(),
            };
            match input {
                Input::Peer { from, message } => {
                    if !ctx.config.federation_on {
                        return Err(EngineError::Policy(policy::Refusal::FederationOff));
                    }
                    if &from == ctx.me {
                        return Err(EngineError::OutOfOrder("a message from ourselves".into()));
                    }
                    match message {
                        PeerMessage::Proposal(p) => negotiation::on_proposal(&mut ctx, &from, p)?,
                        PeerMessage::Response {
                            response,
                            agreement,
                        } => negotiation::on_response(&mut ctx, &from, response, agreement)?,
                        PeerMessage::Agreement(a) => {
                            agreements::on_countersigned(&mut ctx, &from, a)?;
                        }
                        PeerMessage::Revocation(n) => {
                            agreements::on_revocation(&mut ctx, &from, n)?;
                        }
                        PeerMessage::Attestation(a) => {
                            witness::on_attestation(&mut ctx, &from, a)?;
                        }
                        PeerMessage::Discrepancy { report, evidence } => {
                            witness::on_discrepancy(&mut ctx, &from, *report, evidence)?;
                        }
                        PeerMessage::Suspension(n) => {
                            agreements::on_suspension(&mut ctx, &from, n)?;
                        }
                        PeerMessage::Arbitration(r) => {
                            arbitration::on_request(&mut ctx, &from, *r)?;
                        }
                        PeerMessage::Verdict(v) => {
                            arbitration::on_verdict(&mut ctx, &from, *v)?;
                        }
                        PeerMessage::Resolution(r) => {
                            resolution::on_resolution(&mut ctx, &from, r)?;
                        }
                    }
                }
                Input::Discovered { record, source } => {
                    discovery::on_record(&mut ctx, record, source)?;
                }
                Input::Command(command) => run_command(&mut ctx, command)?,
                Input::Tick => {
                    negotiation::tick(&mut ctx)?;
                    agreements::tick(&mut ctx)?;
                    retry::tick(&mut ctx)?;
                }
                Input::Delivered { to, message_hash } => {
                    retry::delivered(&mut ctx, &to, &message_hash)?;
                }
                Input::DeliveryFailed {
                    to,
                    message_hash,
                    reason,
                    permanent,
                } => retry::failed(&mut ctx, &to, &message_hash, &reason, permanent)?,
                Input::ReceiptsStored { size } => receipts::stored(&mut ctx, size)?,
                Input::Witnessed(report) => {
                    if !ctx.config.federation_on {
                        return Err(EngineError::Policy(policy::Refusal::FederationOff));
                    }
                    witness::on_witnessed(&mut ctx, *report)?;
                }
                Input::Anchored(entries) => witness::on_anchored(&mut ctx, entries)?,
            }
            Ok(ctx.out)
        })?;
        if let Some(record) = publish {
            self.published = Some(record.clone());
            out.push(Output::PublishDiscovery(Box::new(record)));
        }
        Ok(out)
    }
}

fn run_command(ctx: &mut Ctx<'_, '_>, command: Command) -> Result<(), EngineError> {
    let needs_federation = !matches!(
        command,
        Command::AddPeer { .. }
            | Command::RemovePeer { .. }
            | Command::Revoke { .. }
            | Command::Suspend { .. }
            | Command::ResolveDiscrepancy { .. }
    );
    if needs_federation && !ctx.config.federation_on {
        return Err(EngineError::Policy(policy::Refusal::FederationOff));
    }
    match command {
        Command::AddPeer {
            mesh_id,
            public_key,
            addresses,
        } => discovery::add_manual(ctx, mesh_id, public_key, addresses),
        Command::RemovePeer { mesh_id } => discovery::remove(ctx, mesh_id),
        Command::Propose {
            target,
            trust_level,
            terms,
        } => negotiation::propose(ctx, target, trust_level, terms, None),
        Command::Amend {
            agreement_id,
            trust_level,
            terms,
        } => {
            let record: vm_storage::AgreementRecord = ctx
                .tx
                .get(agreement_id.as_str())?
                .ok_or_else(|| EngineError::UnknownAgreement(agreement_id.clone()))?;
            let peer = record
                .agreement
                .counterparty(ctx.me)
                .cloned()
                .ok_or_else(|| EngineError::UnknownAgreement(agreement_id.clone()))?;
            negotiation::propose(ctx, peer, trust_level, terms, Some(&agreement_id))
        }
        Command::Counter { proposal, terms } => negotiation::counter(ctx, &proposal, terms),
        Command::Accept { proposal } => negotiation::accept(ctx, &proposal),
        Command::Reject { proposal, reason } => negotiation::reject(ctx, &proposal, reason),
        Command::Withdraw { proposal, reason } => negotiation::withdraw(ctx, &proposal, reason),
        Command::Revoke {
            agreement_id,
            notice_days,
            reason,
        } => agreements::revoke(ctx, &agreement_id, notice_days, reason),
        Command::Suspend {
            agreement_id,
            reason,
            discrepancy_id,
        } => agreements::suspend(ctx, &agreement_id, reason, discrepancy_id),
        Command::Resume {
            agreement_id,
            reason,
        } => agreements::resume(ctx, &agreement_id, reason),
        Command::ResolveDiscrepancy {
            discrepancy_id,
            outcome,
            note,
        } => resolution::resolve(ctx, &discrepancy_id, outcome, note).map(|_| ()),
        Command::Arbitrate {
            discrepancy_id,
            arbiter,
        } => arbitration::request(ctx, &discrepancy_id, arbiter).map(|_| ()),
        Command::RetryOutbox { to, topic } => {
            retry::retry_now(ctx, to.as_ref(), topic.as_deref()).map(|_| ())
        }
    }
}

/// A fresh document id: `<prefix>-<YYYY-MM-DD>-<16 hex digits>`.
pub(crate) fn new_id(ctx: &mut Ctx<'_, '_>, prefix: &str) -> Result<DocumentId, EngineError> {
    use rand::RngExt;
    let date = &ctx.now.to_string()[..10];
    let n: u64 = ctx.rng.random();
    format!("{prefix}-{date}-{n:016x}")
        .parse()
        .map_err(|e| EngineError::Command(format!("generated id: {e}")))
}

/// The key we hold for `peer` (manual configuration or a verified discovery record).
pub(crate) fn peer_key(tx: &WriteTx<'_>, peer: &MeshId) -> Result<PublicKey, EngineError> {
    let entry: Option<vm_storage::PeerEntry> = tx.get(&peer.to_string())?;
    entry
        .and_then(|e| e.public_key)
        .ok_or_else(|| EngineError::UnknownSender(peer.clone()))
}
