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
//! - **One check per (peer, scroll)** at a time; one more waits (a pull over any root, a
//!   larger root over a smaller one, a push over a gossiped copy; whoever waits on either
//!   gets the outcome of the one that runs). It starts from the timer once the finished
//!   check's verdict was handed to the engine, so it reads the state that verdict left.
//!   Every request is resent after a transport failure, a transient refusal or
//!   `request_timeout_ms` of silence, at most `request_resends` times, and every check ends
//!   by `check_deadline_ms` (extended once for its re-sync). No answer is no verdict.
//! - **The re-sync** (seed §6.3 step 1): a check that fails with a claim a race or a lossy
//!   link could explain (a root mismatch that is not a proof, a missing sample), or on
//!   material that travelled unsigned (a gossiped root's anchor proof, its freshness),
//!   fetches the mesh's latest root and checks that before anything is reported. A proof
//!   (two roots of one size, an inconsistent extension) is reported at once.
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
use vm_receipts::documents::{AnchorNotification, SignedRoot, parse};
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, WitnessState};

use super::{Evidence, EvidenceRequest, Finding, Verdict};
use crate::anchor::TsaTrust;
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
        /// When the check began (`now_ms`), if one ran (its duration, for metrics).
        started_ms: Option<u64>,
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

mod check;

use check::{Check, Pending};

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

    /// Replaces the settings (a configuration reload): checks started from now on use them;
    /// checks in flight keep the deadlines they were given.
    pub fn set_config(&mut self, config: CoreConfig) {
        self.config = config;
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
        // The root attested, byte for byte (signature included), announced again by the next
        // cycle: acknowledged without checking its signature a second time.
        let attested = facts
            .witness_state(from, &n.scroll)
            .ok()
            .flatten()
            .is_some_and(|s| s.latest == n.signed_root());
        if attested {
            return Ok(Vec::new());
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
                started_ms: None,
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
            started_ms: None,
        });
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
