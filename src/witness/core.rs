//! The witness protocol's decisions, sans-IO (DESIGN §7, STYLE habit 2): one core that the
//! node and the simulator both drive, so a simulated run checks the code a real one runs.
//!
//! # Contract
//!
//! ```text
//! WitnessCore::new(me, my_key, config, seed)
//! core.on_notify(now_ms, facts, from, notification) -> Result<Vec<Output>, NotifyRefusal>
//! core.check_gossip(facts, bytes)                     -> GossipCheck   (gossipsub's verdict)
//! core.on_gossip(now_ms, facts, verified)             -> Vec<Output>
//! core.on_due(now_ms, facts, peer, scroll, waiter)    -> Vec<Output>   (schedule, exchange, `verify`)
//! core.on_answer(now_ms, facts, request, answer)      -> Vec<Output>
//! core.poll_timeout()                                 -> Option<ms>    (call handle_timeout then)
//! core.handle_timeout(now_ms, facts)                  -> Vec<Output>
//! ```
//!
//! - **Inputs** are time (milliseconds of the Unix epoch, from the driver), what peers sent
//!   (notifications, gossip, answers to our requests, transport failures) and what the
//!   engine says ([`Facts`]: policy, keys, the durable witness state). Randomness (which
//!   receipts to sample) comes from the seed given at construction.
//! - **Outputs** ([`Output`]) are requests to send (each answered with
//!   [`WitnessCore::on_answer`], a transport failure included), roots to gossip, and
//!   finished checks, whose [`Outcome::Report`] the driver hands to the engine as
//!   `Input::Witnessed` (the engine's one transaction: witness state, attestation, receipts).
//!   The driver decides nothing: it carries out outputs and reports what came back.
//! - **One check per (peer, scroll)** at a time; one more waits (the newest root, a pull
//!   replacing an older root and an older root never replacing a newer one). Every request
//!   is resent when it fails or goes unanswered for `request_timeout_ms`, at most
//!   `request_resends` times, and every check ends by `check_deadline_ms`.
//! - **The re-sync** (seed §6.3 step 1): a check that fails in a way a race or a lossy link
//!   could explain (a root mismatch, a missing sample), or on material that travelled
//!   unsigned (a gossiped root's anchor proof, its freshness), fetches the mesh's latest root
//!   and checks that before anything is reported.
//! - **Every root seen is compared** (pushed, pulled, gossiped, and the durable witness
//!   state): two signed roots of one size are reported at once, as a proof. Roots of other
//!   sizes are never compared by their timestamps: a smaller root signed later is asked
//!   about (the mesh's latest root is fetched), because an honest mesh whose clock stepped
//!   back produces exactly that.
//! - **Origin-aware reporting**: a finding on a root that arrived by gossip rests on signed
//!   fields only; anchor and freshness findings are made on what the mesh itself serves.
//! - **One record per finding, one attestation per root** are the engine's (it counts a
//!   finding seen again on the open record); the core does not re-check an unchanged root.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;
use vm_receipts::documents::{AnchorNotification, DiscrepancyType, SignedRoot, parse};
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, WitnessState};

use super::{
    CheckInput, ConflictEvidence, Evidence, EvidenceRequest, Finding, Verdict, choose_samples,
};
use crate::anchor::{AnchorTrust, TsaTrust};
use crate::engine::policy::{PeerRequest, Refusal};
use crate::engine::{Engine, EngineError, WitnessReport};

/// What the core asks the engine: the policy, keys and the durable witness state. The
/// engine answers from indexed records ([`Engine`] implements it); tests may answer from a
/// table.
pub trait Facts {
    /// Whether `peer` may make `request` at `now`, with the agreement that says so.
    fn authorize(
        &self,
        peer: &MeshId,
        request: PeerRequest<'_>,
        now: Timestamp,
    ) -> Result<Option<AgreementRecord>, EngineError>;
    /// The key we hold for `peer`.
    fn peer_key(&self, peer: &MeshId) -> Result<Option<PublicKey>, EngineError>;
    /// What we last witnessed of `peer`'s `scroll`.
    fn witness_state(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
    ) -> Result<Option<WitnessState>, EngineError>;
}

impl Facts for Engine {
    fn authorize(
        &self,
        peer: &MeshId,
        request: PeerRequest<'_>,
        now: Timestamp,
    ) -> Result<Option<AgreementRecord>, EngineError> {
        Engine::authorize(self, peer, request, now)
    }
    fn peer_key(&self, peer: &MeshId) -> Result<Option<PublicKey>, EngineError> {
        Engine::peer_key(self, peer)
    }
    fn witness_state(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
    ) -> Result<Option<WitnessState>, EngineError> {
        Engine::witness_state(self, peer, scroll)
    }
}

/// How the core witnesses: the node fills it from `config.toml`; the simulator takes the
/// defaults, which are the node's.
#[derive(Clone)]
pub struct CoreConfig {
    /// Receipts sampled per check (the newest and random others).
    pub samples: usize,
    /// How far a pushed root's timestamp may be from our clock (seconds).
    pub drift_secs: i64,
    /// A request unanswered this long is sent again.
    pub request_timeout_ms: u64,
    /// A request that failed in transport is sent again after this long.
    pub resend_after_failure_ms: u64,
    /// Times one request is sent again before the check gives up.
    pub request_resends: u32,
    /// Every check ends within this long of its start, answered or not.
    pub check_deadline_ms: u64,
    /// Roots remembered per (peer, scroll) for the comparison.
    pub seen_per_scroll: usize,
    /// Pass every root we verified to the mesh's other witnesses (gossip), so that a split
    /// view is caught. Off only to show, in a simulator test, what is missed without it.
    pub gossip_verified: bool,
    /// TSA certificates for `rfc3161` anchors.
    pub tsa: Option<Arc<TsaTrust>>,
}

impl std::fmt::Debug for CoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreConfig")
            .field("samples", &self.samples)
            .field("drift_secs", &self.drift_secs)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("request_resends", &self.request_resends)
            .field("check_deadline_ms", &self.check_deadline_ms)
            .field("gossip_verified", &self.gossip_verified)
            .field("tsa", &self.tsa.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            samples: 8,
            drift_secs: 300,
            request_timeout_ms: 32_000,
            resend_after_failure_ms: 1_000,
            request_resends: 2,
            check_deadline_ms: 120_000,
            seen_per_scroll: 64,
            gossip_verified: true,
            tsa: None,
        }
    }
}

/// Names one request the core asked the driver to send (every attempt has its own).
pub type RequestId = u64;
/// Names whoever waits for a check's outcome (the driver's, e.g. an operator's `verify`).
pub type Waiter = u64;

/// Where a root to check came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The mesh sent it (`notify`): held to the freshness of a push.
    Push,
    /// We asked the mesh for its latest root (schedule, agreement start, `verify`, re-sync).
    Pull,
    /// Another witness passed it on: only its signed fields are the mesh's word.
    Gossip,
}

/// A request to the witnessed mesh.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Its latest anchored root of the scroll.
    Roots {
        /// The scroll.
        scroll: ScrollName,
    },
    /// A consistency proof and sampled receipts.
    Evidence(EvidenceRequest),
}

/// What came back for a request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The mesh's latest anchored root of the scroll (`None`: it has none yet).
    Root(Option<AnchorNotification>),
    /// The evidence.
    Evidence(Evidence),
    /// The mesh answered with an error.
    Refused {
        /// Its code (`forbidden`, `beyond_tree`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// No answer: the transport failed (dial, timeout, a malformed response).
    Failed(String),
}

/// Something for the driver to do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send `request` to `peer`; report the answer with `id`.
    Request {
        /// Names the answer.
        id: RequestId,
        /// The witnessed mesh.
        peer: MeshId,
        /// What to ask.
        request: Request,
    },
    /// Gossip a root we verified (to the mesh's other witnesses).
    Gossip(Box<AnchorNotification>),
    /// A check (or a comparison) finished.
    Finished {
        /// The witnessed mesh.
        peer: MeshId,
        /// Its scroll.
        scroll: ScrollName,
        /// Who waits for it.
        waiters: Vec<Waiter>,
        /// How it ended.
        outcome: Outcome,
    },
}

/// How a check ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A verdict: hand it to the engine (`Input::Witnessed`).
    Report(Box<WitnessReport>),
    /// The mesh's root is the one attested: nothing to do.
    Unchanged {
        /// Its size.
        size: u64,
    },
    /// The root is older than the one attested (a delayed notification).
    Stale,
    /// No verdict: unreachable, refused, out of time, or no longer witnessed.
    NoVerdict(String),
}

/// Why a notification was refused (the answer to the notifier).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyRefusal {
    /// The root is not the sender's.
    #[error("the notification is for {named}'s scroll, but {from} sent it")]
    SenderMismatch {
        /// The mesh the root names.
        named: MeshId,
        /// The sender.
        from: MeshId,
    },
    /// The policy refuses it.
    #[error("{0}")]
    Forbidden(Refusal),
    /// We hold no key for the sender.
    #[error("no key for {0}")]
    UnknownSender(MeshId),
    /// The root's signature does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// Our store could not answer.
    #[error("{0}")]
    Internal(String),
}

impl NotifyRefusal {
    /// The error code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SenderMismatch { .. } => "sender_mismatch",
            Self::Forbidden(_) => "forbidden",
            Self::UnknownSender(_) => "unknown_sender",
            Self::BadSignature(_) => "bad_signature",
            Self::Internal(_) => "internal",
        }
    }

    /// Whether sending it again can never succeed.
    pub fn permanent(&self) -> bool {
        matches!(self, Self::SenderMismatch { .. } | Self::BadSignature(_))
    }
}

/// A gossiped root whose signature the core checked with the named mesh's key: the only way
/// into [`WitnessCore::on_gossip`].
#[derive(Debug, Clone)]
pub struct VerifiedGossip(Box<AnchorNotification>);

impl VerifiedGossip {
    /// The notification.
    pub fn notification(&self) -> &AnchorNotification {
        &self.0
    }
}

/// Gossipsub's verdict on a message, and the root to learn from when accepted.
#[derive(Debug, Clone)]
pub enum GossipCheck {
    /// Valid: forward it, and compare it.
    Accept(VerifiedGossip),
    /// Not ours to judge (a mesh we hold no key for, our own roots echoed back).
    Ignore,
    /// Invalid (malformed, or wrongly signed): penalise the sender.
    Reject(String),
}

/// (peer, scroll stem).
type Slot = (MeshId, String);

/// One attempt series of one request.
#[derive(Debug, Clone)]
struct Attempts {
    request: Request,
    /// Every id sent for it (an answer to any of them will do).
    ids: Vec<RequestId>,
    /// Sends so far.
    sent: u32,
    /// When to send again (or give up) if nothing useful comes back.
    next_at_ms: u64,
}

#[derive(Debug, Clone)]
enum Step {
    Root(Attempts),
    Evidence {
        attempts: Attempts,
        notification: Box<AnchorNotification>,
        requested: Vec<u64>,
    },
}

impl Step {
    fn attempts(&self) -> &Attempts {
        match self {
            Step::Root(a) | Step::Evidence { attempts: a, .. } => a,
        }
    }
    fn attempts_mut(&mut self) -> &mut Attempts {
        match self {
            Step::Root(a) | Step::Evidence { attempts: a, .. } => a,
        }
    }
}

/// A check in flight.
#[derive(Debug, Clone)]
struct Check {
    scroll: ScrollName,
    origin: Origin,
    /// When what it checks arrived: a pushed root is judged fresh or stale then, not when
    /// its evidence came back.
    received: Timestamp,
    deadline_ms: u64,
    /// The witness state's root when the check began (the compare-and-swap expects it).
    previous: Option<SignedRoot>,
    waiters: Vec<Waiter>,
    resynced: bool,
    /// The failed first verdict, reported if the re-sync cannot run (`None` when it rests
    /// on unsigned material and must not be reported on its own).
    first: Option<(Box<AnchorNotification>, Verdict)>,
    step: Step,
}

/// A check waiting for the one in flight on its slot.
#[derive(Debug, Clone)]
struct Pending {
    scroll: ScrollName,
    notification: Option<Box<AnchorNotification>>,
    origin: Origin,
    received: Timestamp,
    waiters: Vec<Waiter>,
}

/// Distinct roots of one size remembered for the comparison (more than one is a proven
/// conflict; a few are kept so that a copy of any of them is known and not reported again).
const ROOTS_PER_SIZE: usize = 4;

/// The witness core of one mesh.
pub struct WitnessCore {
    me: MeshId,
    my_key: PublicKey,
    config: CoreConfig,
    rng: ChaCha20Rng,
    next_id: u64,
    checks: BTreeMap<Slot, Check>,
    pending: BTreeMap<Slot, Pending>,
    seen: BTreeMap<Slot, BTreeMap<u64, Vec<SignedRoot>>>,
    /// Slots whose waiting check may start: it starts from the timer, once the driver has
    /// handed the finished check's verdict to the engine (so it reads the state that
    /// verdict left).
    ready: BTreeSet<Slot>,
    /// Which slot each request in flight belongs to.
    requests: BTreeMap<RequestId, Slot>,
}

fn timestamp(now_ms: u64) -> Timestamp {
    Timestamp::EPOCH.plus_seconds(i64::try_from(now_ms / 1000).unwrap_or(i64::MAX))
}

fn slot_of(peer: &MeshId, scroll: &ScrollName) -> Slot {
    (peer.clone(), scroll.file_stem())
}

impl WitnessCore {
    /// The core of mesh `me` (whose key is `my_key`); `seed` seeds the sample choice.
    pub fn new(me: MeshId, my_key: PublicKey, config: CoreConfig, seed: [u8; 32]) -> Self {
        Self {
            me,
            my_key,
            config,
            rng: ChaCha20Rng::from_seed(seed),
            next_id: 0,
            checks: BTreeMap::new(),
            pending: BTreeMap::new(),
            seen: BTreeMap::new(),
            ready: BTreeSet::new(),
            requests: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Checks in flight.
    pub fn checks_in_flight(&self) -> usize {
        self.checks.len()
    }

    /// When [`Self::handle_timeout`] is next due (ms), if anything waits.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.ready.is_empty() {
            return Some(0);
        }
        self.checks
            .values()
            .map(|c| c.deadline_ms.min(c.step.attempts().next_at_ms))
            .min()
    }

    /// A notification the mesh `from` pushed (`notify`). `Ok` is the acknowledgement (also
    /// for a root already attested); a refusal is the answer to send back.
    pub fn on_notify(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        from: &MeshId,
        n: AnchorNotification,
    ) -> Result<Vec<Output>, NotifyRefusal> {
        let now = timestamp(now_ms);
        if &n.mesh_id != from {
            return Err(NotifyRefusal::SenderMismatch {
                named: n.mesh_id.clone(),
                from: from.clone(),
            });
        }
        match facts.authorize(from, PeerRequest::Notify(&n.scroll), now) {
            Ok(_) => {}
            Err(EngineError::Policy(r)) => return Err(NotifyRefusal::Forbidden(r)),
            Err(e) => return Err(NotifyRefusal::Internal(e.to_string())),
        }
        let key = facts
            .peer_key(from)
            .map_err(|e| NotifyRefusal::Internal(e.to_string()))?
            .ok_or_else(|| NotifyRefusal::UnknownSender(from.clone()))?;
        n.verify_root(&key)
            .map_err(|e| NotifyRefusal::BadSignature(e.to_string()))?;
        let mut out = Vec::new();
        self.learn(now_ms, facts, n, Origin::Push, &mut out);
        Ok(out)
    }

    /// Gossipsub's application validation of a message on the roots topic: parsed, and
    /// signed by the mesh it names with the key we hold (ours, for our own roots). Any
    /// publisher may pass a root on: the mesh's signature is what counts.
    pub fn check_gossip(&self, facts: &impl Facts, data: &[u8]) -> GossipCheck {
        match parse::<AnchorNotification>(data) {
            Ok(n) => self.check_gossip_root(facts, n),
            Err(e) => GossipCheck::Reject(format!("malformed root: {e}")),
        }
    }

    /// As [`Self::check_gossip`], for a root already parsed (the simulator's wire).
    pub fn check_gossip_root(&self, facts: &impl Facts, n: AnchorNotification) -> GossipCheck {
        if n.mesh_id == self.me {
            // Our own root, passed on by a witness: nothing to learn, but a forgery in our
            // name is as invalid as any other.
            return match n.verify_root(&self.my_key) {
                Ok(()) => GossipCheck::Ignore,
                Err(e) => GossipCheck::Reject(format!("a root in our name, wrongly signed: {e}")),
            };
        }
        // A signed root already held (verified when it was learned) is not verified again:
        // every witness passes each root on, so most gossip is a copy of a known root.
        let root = n.signed_root();
        let known = self
            .seen
            .get(&slot_of(&n.mesh_id, &n.scroll))
            .and_then(|s| s.get(&n.size))
            .is_some_and(|roots| roots.contains(&root));
        if known {
            return GossipCheck::Accept(VerifiedGossip(Box::new(n)));
        }
        let key = match facts.peer_key(&n.mesh_id) {
            Ok(Some(k)) => k,
            Ok(None) | Err(_) => return GossipCheck::Ignore,
        };
        match n.verify_root(&key) {
            Ok(()) => GossipCheck::Accept(VerifiedGossip(Box::new(n))),
            Err(e) => GossipCheck::Reject(format!("{}'s root wrongly signed: {e}", n.mesh_id)),
        }
    }

    /// A gossiped root (checked by [`Self::check_gossip`]): compared with what we saw of
    /// the mesh, and checked like a pulled root when it is newer than the one witnessed.
    /// Gossip about meshes we do not witness is common and ignored.
    pub fn on_gossip(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        gossip: VerifiedGossip,
    ) -> Vec<Output> {
        let n = *gossip.0;
        let now = timestamp(now_ms);
        let mut out = Vec::new();
        if facts
            .authorize(&n.mesh_id, PeerRequest::Notify(&n.scroll), now)
            .is_ok()
        {
            self.learn(now_ms, facts, n, Origin::Gossip, &mut out);
        }
        out
    }

    /// A check of `peer`'s `scroll` is due (the verification schedule, an agreement coming
    /// into force, an operator's `verify`): the mesh's latest root is fetched and checked.
    pub fn on_due(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        peer: &MeshId,
        scroll: &ScrollName,
        waiter: Option<Waiter>,
    ) -> Vec<Output> {
        let now = timestamp(now_ms);
        let mut out = Vec::new();
        if let Err(e) = facts.authorize(peer, PeerRequest::Notify(scroll), now) {
            out.push(Output::Finished {
                peer: peer.clone(),
                scroll: scroll.clone(),
                waiters: waiter.into_iter().collect(),
                outcome: Outcome::NoVerdict(format!("we do not witness {peer}'s {scroll}: {e}")),
            });
            return out;
        }
        self.enqueue(
            now_ms,
            facts,
            Pending {
                scroll: scroll.clone(),
                notification: None,
                origin: Origin::Pull,
                received: now,
                waiters: waiter.into_iter().collect(),
            },
            peer,
            &mut out,
        );
        out
    }

    /// The answer to request `id` (a late or duplicated one is ignored).
    pub fn on_answer(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        id: RequestId,
        answer: Answer,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(slot) = self.requests.get(&id).cloned() else {
            return out;
        };
        let Some(check) = self.checks.get(&slot) else {
            self.requests.remove(&id);
            return out;
        };
        let attempts = check.step.attempts();
        if !attempts.ids.contains(&id) {
            self.requests.remove(&id);
            return out;
        }
        if let Answer::Failed(reason) = &answer {
            // Only the newest attempt's failure counts: an older one was already resent.
            self.requests.remove(&id);
            if attempts.ids.last() == Some(&id) {
                let reason = reason.clone();
                self.after_failure(now_ms, &slot, reason, &mut out);
            }
            return out;
        }
        for old in &attempts.ids {
            self.requests.remove(old);
        }
        self.on_step_answer(now_ms, facts, &slot, answer, &mut out);
        out
    }

    /// Resends what went unanswered and ends checks past their deadline.
    pub fn handle_timeout(&mut self, now_ms: u64, facts: &impl Facts) -> Vec<Output> {
        let mut out = Vec::new();
        for slot in std::mem::take(&mut self.ready) {
            if !self.checks.contains_key(&slot)
                && let Some(next) = self.pending.remove(&slot)
            {
                self.start(now_ms, facts, slot, next, &mut out);
            }
        }
        let due: Vec<Slot> = self
            .checks
            .iter()
            .filter(|(_, c)| c.deadline_ms <= now_ms || c.step.attempts().next_at_ms <= now_ms)
            .map(|(s, _)| s.clone())
            .collect();
        for slot in due {
            let Some(check) = self.checks.get(&slot) else {
                continue;
            };
            if check.deadline_ms <= now_ms {
                let why = format!(
                    "the check did not finish within {} s",
                    self.config.check_deadline_ms / 1000
                );
                self.give_up(&slot, why, &mut out);
            } else {
                let why = "no answer within the request timeout".to_owned();
                self.after_failure(now_ms, &slot, why, &mut out);
            }
        }
        out
    }

    // ----- learning a root -----

    /// A root of a mesh we witness (signature checked): compared with every root of it we
    /// saw, then checked if it can tell us something new.
    fn learn(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        n: AnchorNotification,
        origin: Origin,
        out: &mut Vec<Output>,
    ) {
        let peer = n.mesh_id.clone();
        let state = match facts.witness_state(&peer, &n.scroll) {
            Ok(s) => s.map(|s| s.latest),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "witness state unreadable; root not checked");
                return;
            }
        };
        if let Some(finding) = self.compare(&n.signed_root(), state.as_ref()) {
            self.report_conflict(&n, state.as_ref(), finding, out);
            return;
        }
        if let Some(prev) = &state {
            if prev.size == n.size {
                return; // the root attested (a different one was a conflict, above)
            }
            if n.size < prev.size {
                if n.timestamp > prev.timestamp {
                    // A smaller tree signed later: a clock step, or a truncation. Only the
                    // mesh's latest root tells which; a timestamp alone proves nothing.
                    self.enqueue(
                        now_ms,
                        facts,
                        Pending {
                            scroll: n.scroll.clone(),
                            notification: None,
                            origin: Origin::Pull,
                            received: timestamp(now_ms),
                            waiters: Vec::new(),
                        },
                        &peer,
                        out,
                    );
                }
                return; // otherwise a delayed announcement: nothing new
            }
        }
        let scroll = n.scroll.clone();
        self.enqueue(
            now_ms,
            facts,
            Pending {
                scroll,
                notification: Some(Box::new(n)),
                origin,
                received: timestamp(now_ms),
                waiters: Vec::new(),
            },
            &peer,
            out,
        );
    }

    /// Compares `root` with the durable witness state and the roots seen of its mesh and
    /// scroll ([`super::compare_roots`]: one size, two hashes), and remembers it. A root
    /// already seen (a copy) is never a new conflict.
    fn compare(&mut self, root: &SignedRoot, state: Option<&SignedRoot>) -> Option<Finding> {
        let limit = self.config.seen_per_scroll.max(1);
        let seen = self
            .seen
            .entry(slot_of(&root.mesh_id, &root.scroll))
            .or_default();
        let same_size = seen.entry(root.size).or_default();
        if same_size.iter().any(|r| r.root == root.root) {
            return None;
        }
        let finding = state
            .and_then(|s| super::compare_roots(s, root))
            .or_else(|| {
                same_size
                    .iter()
                    .find_map(|held| super::compare_roots(held, root))
            });
        if same_size.len() < ROOTS_PER_SIZE {
            same_size.push(root.clone());
        }
        while seen.len() > limit {
            seen.pop_first();
        }
        finding
    }

    fn report_conflict(
        &mut self,
        n: &AnchorNotification,
        state: Option<&SignedRoot>,
        finding: Finding,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Finished {
            peer: n.mesh_id.clone(),
            scroll: n.scroll.clone(),
            waiters: Vec::new(),
            outcome: Outcome::Report(Box::new(conflict_report(n, state, finding))),
        });
    }

    // ----- the queue -----

    fn enqueue(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        mut next: Pending,
        peer: &MeshId,
        out: &mut Vec<Output>,
    ) {
        let slot = slot_of(peer, &next.scroll);
        if let Some(check) = self.checks.get(&slot) {
            // A root the running check already covers is not checked again.
            let covered = match (&check.step, &next.notification) {
                (Step::Evidence { notification, .. }, Some(n)) => n.size <= notification.size,
                _ => false,
            };
            if covered {
                if let Some(c) = self.checks.get_mut(&slot) {
                    c.waiters.append(&mut next.waiters);
                }
                return;
            }
            self.wait(slot, next);
            return;
        }
        if self.ready.contains(&slot) {
            // A check just finished here: what waits starts from the timer, and this joins it.
            self.wait(slot, next);
            return;
        }
        self.start(now_ms, facts, slot, next, out);
    }

    /// Puts `next` in the one waiting place of `slot`, keeping whichever tells more: a pull
    /// (the mesh's latest root) over any root, a larger root over a smaller one, the mesh's
    /// own push over a gossiped copy of the same size. Nobody waiting is dropped.
    fn wait(&mut self, slot: Slot, mut next: Pending) {
        let Some(waiting) = self.pending.get_mut(&slot) else {
            self.pending.insert(slot, next);
            return;
        };
        let replace = match (&waiting.notification, &next.notification) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(w), Some(n)) => {
                n.size > w.size
                    || (n.size == w.size
                        && waiting.origin == Origin::Gossip
                        && next.origin == Origin::Push)
            }
        };
        if replace {
            next.waiters.append(&mut waiting.waiters);
            *waiting = next;
        } else {
            waiting.waiters.append(&mut next.waiters);
        }
    }

    fn start(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: Slot,
        p: Pending,
        out: &mut Vec<Output>,
    ) {
        let previous = match facts.witness_state(&slot.0, &p.scroll) {
            Ok(s) => s.map(|s| s.latest),
            Err(e) => {
                out.push(Output::Finished {
                    peer: slot.0.clone(),
                    scroll: p.scroll,
                    waiters: p.waiters,
                    outcome: Outcome::NoVerdict(format!("witness state unreadable: {e}")),
                });
                return;
            }
        };
        let placeholder = Step::Root(Attempts {
            request: Request::Roots {
                scroll: p.scroll.clone(),
            },
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        });
        self.checks.insert(
            slot.clone(),
            Check {
                scroll: p.scroll.clone(),
                origin: p.origin,
                received: p.received,
                deadline_ms: now_ms.saturating_add(self.config.check_deadline_ms),
                previous,
                waiters: p.waiters,
                resynced: false,
                first: None,
                step: placeholder,
            },
        );
        match p.notification {
            Some(n) => self.examine(now_ms, facts, &slot, *n, out),
            None => self.ask_root(now_ms, &slot, out),
        }
    }

    fn finish(&mut self, slot: &Slot, outcome: Outcome, out: &mut Vec<Output>) {
        let Some(check) = self.checks.remove(slot) else {
            return;
        };
        for id in &check.step.attempts().ids {
            self.requests.remove(id);
        }
        if let Outcome::NoVerdict(why) = &outcome {
            tracing::info!(peer = %slot.0, scroll = %check.scroll, %why, "witness check ended without a verdict");
        }
        out.push(Output::Finished {
            peer: slot.0.clone(),
            scroll: check.scroll,
            waiters: check.waiters,
            outcome,
        });
        if self.pending.contains_key(slot) {
            self.ready.insert(slot.clone());
        }
    }

    // ----- requests -----

    fn send(&mut self, now_ms: u64, slot: &Slot, attempts: &mut Attempts, out: &mut Vec<Output>) {
        self.next_id += 1;
        let id = self.next_id;
        attempts.ids.push(id);
        attempts.sent += 1;
        attempts.next_at_ms = now_ms.saturating_add(self.config.request_timeout_ms);
        self.requests.insert(id, slot.clone());
        out.push(Output::Request {
            id,
            peer: slot.0.clone(),
            request: attempts.request.clone(),
        });
    }

    fn ask_root(&mut self, now_ms: u64, slot: &Slot, out: &mut Vec<Output>) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let mut attempts = Attempts {
            request: Request::Roots {
                scroll: check.scroll.clone(),
            },
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        };
        self.send(now_ms, slot, &mut attempts, out);
        if let Some(c) = self.checks.get_mut(slot) {
            c.step = Step::Root(attempts);
        }
    }

    /// The request in hand failed or went unanswered: sent again, or the check gives up.
    fn after_failure(&mut self, now_ms: u64, slot: &Slot, reason: String, out: &mut Vec<Output>) {
        let Some(mut check) = self.checks.remove(slot) else {
            return;
        };
        let attempts = check.step.attempts_mut();
        if attempts.sent > self.config.request_resends {
            self.checks.insert(slot.clone(), check);
            self.give_up(slot, reason, out);
            return;
        }
        if attempts.next_at_ms > now_ms {
            // A transport failure: send again after a short pause rather than at once (the
            // peer may be restarting), or at the timeout if that is sooner.
            attempts.next_at_ms = attempts
                .next_at_ms
                .min(now_ms.saturating_add(self.config.resend_after_failure_ms));
            self.checks.insert(slot.clone(), check);
            return;
        }
        let mut attempts = attempts.clone();
        self.send(now_ms, slot, &mut attempts, out);
        *check.step.attempts_mut() = attempts;
        self.checks.insert(slot.clone(), check);
    }

    /// The check cannot go on: no verdict. A failed first verdict waiting for its re-sync
    /// is not reported either: an unanswered re-sync is no evidence (the next cycle checks
    /// again), and proofs never wait for one.
    fn give_up(&mut self, slot: &Slot, why: String, out: &mut Vec<Output>) {
        self.finish(slot, Outcome::NoVerdict(why), out);
    }

    // ----- answers -----

    fn on_step_answer(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        answer: Answer,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let awaiting_evidence = match &check.step {
            Step::Evidence { notification, .. } => {
                Some((notification.scroll.clone(), notification.size))
            }
            Step::Root(_) => None,
        };
        let scroll = check.scroll.clone();
        match (awaiting_evidence, answer) {
            (None, Answer::Root(Some(n))) => self.on_root(now_ms, facts, slot, n, out),
            (None, Answer::Root(None)) => {
                let why = format!("{} has no anchored root of {scroll} yet", slot.0);
                self.give_up(slot, why, out);
            }
            (Some(_), Answer::Evidence(e)) => self.on_evidence(now_ms, facts, slot, e, out),
            (_, Answer::Refused { code, message }) if transient(&code) => {
                // Busy or failing for now: sent again like a lost request.
                let why = format!("{} refused for now: {code}: {message}", slot.0);
                self.after_failure(now_ms, slot, why, out);
            }
            (Some((scroll, new_size)), Answer::Refused { code, message }) if withholds(&code) => {
                // A mesh that will not serve proofs of a root it signed leaves that root
                // unproven: missing samples, a claim it can answer by serving them.
                tracing::info!(peer = %slot.0, %code, %message, "evidence refused");
                let empty = Evidence {
                    scroll,
                    new_size,
                    consistency: None,
                    samples: Vec::new(),
                };
                self.on_evidence(now_ms, facts, slot, empty, out);
            }
            (_, Answer::Refused { code, message }) => {
                let why = format!("{} refused: {code}: {message}", slot.0);
                self.give_up(slot, why, out);
            }
            (_, other) => {
                let why = format!("{} answered out of turn: {}", slot.0, answer_kind(&other));
                self.give_up(slot, why, out);
            }
        }
    }

    /// The mesh's latest root, as it served it.
    fn on_root(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        n: AnchorNotification,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        if n.mesh_id != slot.0 || n.scroll != check.scroll {
            let why = format!(
                "{} served a root of {}'s {} instead",
                slot.0, n.mesh_id, n.scroll
            );
            return self.give_up(slot, why, out);
        }
        let key = match facts.peer_key(&slot.0) {
            Ok(Some(k)) => k,
            Ok(None) => {
                let why = format!("no key for {}", slot.0);
                return self.give_up(slot, why, out);
            }
            Err(e) => return self.give_up(slot, e.to_string(), out),
        };
        if let Err(e) = n.verify_root(&key) {
            // A root not signed by the mesh proves nothing about it.
            let why = format!("{} served a wrongly signed root: {e}", slot.0);
            return self.give_up(slot, why, out);
        }
        let previous = check.previous.clone();
        if let Some(finding) = self.compare(&n.signed_root(), previous.as_ref()) {
            // Two roots of one size: the check's outcome is that proof.
            let report = conflict_report(&n, previous.as_ref(), finding);
            return self.finish(slot, Outcome::Report(Box::new(report)), out);
        }
        if previous
            .as_ref()
            .is_some_and(|p| p.size == n.size && p.root == n.root)
        {
            let size = n.size;
            let outcome = match self.checks.get_mut(slot).and_then(|c| c.first.take()) {
                // The re-sync found the mesh's latest root to be the one attested, below
                // the root it failed on: the first verdict stands.
                Some((first, verdict)) => Outcome::Report(Box::new(WitnessReport {
                    peer: slot.0.clone(),
                    notification: *first,
                    expected_size: Some(size),
                    verdict,
                    resynced: true,
                })),
                None => Outcome::Unchanged { size },
            };
            return self.finish(slot, outcome, out);
        }
        if let Some(c) = self.checks.get_mut(slot) {
            c.origin = Origin::Pull;
        }
        self.examine(now_ms, facts, slot, n, out);
    }

    /// A root to check: asks for evidence, or judges at once when none is needed.
    fn examine(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        n: AnchorNotification,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let prev_size = check.previous.as_ref().map(|p| p.size);
        if let Some(p) = &check.previous
            && p.size == n.size
            && p.root == n.root
        {
            let size = n.size;
            return self.finish(slot, Outcome::Unchanged { size }, out);
        }
        if prev_size.is_some_and(|s| n.size <= s) {
            // Smaller (a truncation, for a pulled root) or one size with another root: the
            // signed roots decide; no evidence is needed.
            let empty = Evidence {
                scroll: n.scroll.clone(),
                new_size: n.size,
                consistency: None,
                samples: Vec::new(),
            };
            self.set_evidence_step(slot, n, Vec::new(), None);
            return self.on_evidence(now_ms, facts, slot, empty, out);
        }
        let requested = choose_samples(n.size, self.config.samples, &mut self.rng);
        let ask = EvidenceRequest {
            scroll: n.scroll.clone(),
            old_size: prev_size.filter(|&s| s > 0 && s < n.size),
            new_size: n.size,
            samples: requested.clone(),
        };
        let mut attempts = Attempts {
            request: Request::Evidence(ask),
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        };
        self.send(now_ms, slot, &mut attempts, out);
        self.set_evidence_step(slot, n, requested, Some(attempts));
    }

    fn set_evidence_step(
        &mut self,
        slot: &Slot,
        n: AnchorNotification,
        requested: Vec<u64>,
        attempts: Option<Attempts>,
    ) {
        let Some(check) = self.checks.get_mut(slot) else {
            return;
        };
        let attempts = attempts.unwrap_or_else(|| Attempts {
            request: Request::Roots {
                scroll: check.scroll.clone(),
            },
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        });
        check.step = Step::Evidence {
            attempts,
            notification: Box::new(n),
            requested,
        };
    }

    /// Steps 1–4 on what the mesh served, then the re-sync or the verdict.
    fn on_evidence(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        evidence: Evidence,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let Step::Evidence {
            notification,
            requested,
            ..
        } = &check.step
        else {
            return;
        };
        let n = (**notification).clone();
        if evidence.scroll != n.scroll || evidence.new_size != n.size {
            let why = format!(
                "{} served evidence for {} at {}, not {} at {}",
                slot.0, evidence.scroll, evidence.new_size, n.scroll, n.size
            );
            return self.give_up(slot, why, out);
        }
        let now = timestamp(now_ms);
        let agreement = match facts.authorize(&slot.0, PeerRequest::Notify(&n.scroll), now) {
            Ok(a) => a,
            Err(e) => {
                let why = format!("no longer witnessing {}: {e}", slot.0);
                return self.give_up(slot, why, out);
            }
        };
        let schema_version = agreement.as_ref().and_then(|a| {
            a.agreement
                .terms
                .extra
                .get("schema_versions")
                .and_then(|v| v.get(n.scroll.as_str()))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let pushed = check.origin == Origin::Push && !check.resynced;
        let key_of = |m: &MeshId| {
            if m == &self.me {
                Some(self.my_key)
            } else {
                facts.peer_key(m).ok().flatten()
            }
        };
        let trust = AnchorTrust {
            key_of: &key_of,
            tsa: self.config.tsa.as_deref(),
        };
        let verdict = super::check(&CheckInput {
            notification: &n,
            pushed,
            previous: check.previous.as_ref(),
            requested,
            evidence: &evidence,
            // A pushed root is judged fresh or stale by when it arrived, not by when its
            // evidence came back: a slow round trip is not the mesh's drift.
            now: if pushed { check.received } else { now },
            drift_secs: self.config.drift_secs,
            trust: &trust,
            schema_version: schema_version.as_deref(),
        });
        let origin = check.origin;
        let resynced = check.resynced;
        let previous = check.previous.clone();
        if let Verdict::Discrepancy { finding, .. } = &verdict
            && !resynced
            && (raced(finding) || (origin == Origin::Gossip && unsigned(finding)))
        {
            // Seed §6.3 step 1: re-fetch the latest root and check again before reporting.
            // A finding on unsigned material from gossip is never reported on its own.
            let reportable = origin != Origin::Gossip || !unsigned(finding);
            if reportable {
                tracing::info!(peer = %slot.0, scroll = %n.scroll, kind = %finding.kind, "witness check failed; re-syncing before reporting");
            } else {
                tracing::info!(peer = %slot.0, scroll = %n.scroll, size = n.size, kind = %finding.kind, "a gossiped copy failed on unsigned material; checking what the mesh itself serves");
            }
            let deadline = now_ms.saturating_add(self.config.check_deadline_ms);
            if let Some(c) = self.checks.get_mut(slot) {
                c.resynced = true;
                c.origin = Origin::Pull;
                c.deadline_ms = deadline;
                c.first = reportable.then(|| (Box::new(n.clone()), verdict.clone()));
            }
            return self.ask_root(now_ms, slot, out);
        }
        if let Verdict::Discrepancy { finding, .. } = &verdict
            && origin == Origin::Gossip
            && unsigned(finding)
        {
            let why = format!(
                "a gossiped copy of {}'s root failed on unsigned material ({})",
                slot.0, finding.kind
            );
            return self.give_up(slot, why, out);
        }
        if matches!(verdict, Verdict::Stale) {
            return self.finish(slot, Outcome::Stale, out);
        }
        if matches!(verdict, Verdict::Verified { .. }) {
            // Remember it, and pass it to the mesh's other witnesses.
            self.compare(&n.signed_root(), previous.as_ref());
            if self.config.gossip_verified {
                out.push(Output::Gossip(Box::new(n.clone())));
            }
        }
        let report = WitnessReport {
            peer: slot.0.clone(),
            notification: n,
            expected_size: previous.as_ref().map(|p| p.size),
            verdict,
            resynced,
        };
        if let Some(c) = self.checks.get_mut(slot) {
            c.first = None;
        }
        self.finish(slot, Outcome::Report(Box::new(report)), out);
    }
}

/// Two signed roots of one size, as a verdict for the engine.
fn conflict_report(
    n: &AnchorNotification,
    state: Option<&SignedRoot>,
    finding: Finding,
) -> WitnessReport {
    tracing::warn!(peer = %n.mesh_id, scroll = %n.scroll, size = n.size, "a peer signed two roots of one size");
    WitnessReport {
        peer: n.mesh_id.clone(),
        notification: n.clone(),
        expected_size: state.map(|s| s.size),
        verdict: Verdict::Discrepancy {
            anchor: None,
            samples_checked: 0,
            finding: Box::new(finding),
        },
        resynced: false,
    }
}

/// A finding a race or a lossy link could explain: checked again on the latest root. A
/// proof (two roots of one size, an inconsistent extension) is the mesh's own signed word
/// and is reported at once: a later root could not undo it.
fn raced(f: &Finding) -> bool {
    let proof = matches!(
        f.evidence,
        ConflictEvidence::ConflictingRoots { .. } | ConflictEvidence::InconsistentExtension { .. }
    );
    !proof
        && matches!(
            f.kind,
            DiscrepancyType::RootMismatch | DiscrepancyType::SampleMissing
        )
}

/// A finding on material that travels unsigned beside a gossiped root (its anchor proof)
/// or that says more about the relay than the mesh (how old the copy is).
fn unsigned(f: &Finding) -> bool {
    matches!(
        f.kind,
        DiscrepancyType::AnchorInvalid | DiscrepancyType::TimestampDrift
    )
}

/// Refusals that may pass: the request is sent again.
fn transient(code: &str) -> bool {
    matches!(code, "rate_limited" | "unavailable" | "internal" | "busy")
}

/// Refusals that leave a root the mesh signed unproven (it says it has no such tree or
/// scroll): missing samples, a claim. Every other refusal (policy, a request it found too
/// large or malformed) is no verdict: it says nothing about the mesh's history.
fn withholds(code: &str) -> bool {
    matches!(code, "beyond_tree" | "unknown_scroll" | "not_found")
}

fn answer_kind(a: &Answer) -> &'static str {
    match a {
        Answer::Root(_) => "a root",
        Answer::Evidence(_) => "evidence",
        Answer::Refused { .. } => "a refusal",
        Answer::Failed(_) => "a failure",
    }
}
