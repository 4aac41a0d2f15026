//! The engine-level simulator: meshes, the event queue, and the driver each mesh's engine
//! needs (what the node does with tokio and sockets, done here with virtual time).
//!
//! Every mesh is the real [`Engine`] over [`Store::in_memory`] with a [`MemoryLog`] as its
//! Federation scroll and a [`MemScroll`] as the data scroll (`Compliance`) it anchors every
//! cycle and its peers witness. The driver mirrors `src/node`: anchor cycles notify the
//! witnesses, witnesses ask for evidence and run [`witness::check`] (with the node's one
//! re-sync), hand the verdict to the engine, and the engine's messages travel as
//! request-response pairs whose outcome is reported back (`Delivered`, `DeliveryFailed`).
//!
//! **Cross-witness comparison.** A mesh that shows one history to some witnesses and
//! another to the rest (a split view) passes every check each witness makes alone. So a
//! witness gossips every root it verified to the mesh's other witnesses, and every witness
//! compares what it learns (pushed, pulled or gossiped) with the roots of that mesh it has
//! seen: two signed roots of one size with different hashes are a proof of equivocation
//! (`ConflictingRoots`), a gossiped root larger than the one witnessed is checked like a
//! pulled one. Gossip carries the mesh's signed root, which no forwarder can forge; its
//! anchor proof is not signed, so an anchor finding from gossip is never reported.
//!
//! Determinism: one [`ChaCha20Rng`] seeded from the run's seed draws every fate, key, offset
//! and engine seed; the queue is ordered by (time, sequence); nothing iterates a hash map.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::Map;
use vaultmesh_federation::anchor::{AnchorTrust, Batch, anchor_local};
use vaultmesh_federation::engine::{
    Command, Engine, EngineConfig, EngineError, Event, Input, Output, PeerMessage, ProposalRef,
    WitnessReport,
};
use vaultmesh_federation::federation_log::{self, MemoryLog, ReceiptLog};
use vaultmesh_federation::witness::{
    self, CheckInput, Evidence, EvidenceRequest, Verdict, choose_samples,
};
use vm_receipts::documents::{
    AnchorNotification, DiscrepancyType, ProposedTerms, SignedRoot, TrustLevel,
    VerificationFrequency, WitnessResult,
};
use vm_receipts::receipts::ProposalEvent;
use vm_receipts::{Blake3Hash, MeshId, MeshKey, PublicKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, AnchoredRoot, PeerSource, Store, WitnessState};

use crate::invariants::Invariants;
use crate::net::{Fate, Network};
use crate::scroll::MemScroll;

/// 2025-12-06T10:00:00Z, the seed document's first timestamp.
pub const START_UNIX: i64 = 1_765_015_200;
/// Samples per witness check (the node's default).
const SAMPLES: usize = 4;
/// The drift limit (seed §6: five minutes).
const DRIFT_SECS: i64 = 300;
/// Times an unanswered witness request is sent again.
const WITNESS_REQUEST_RESENDS: u32 = 2;
/// Roots of one peer remembered for comparison.
const SEEN_PER_PEER: usize = 64;

/// What one honest witness attested of one peer, in order: (ms, size, root).
pub type Attested = Vec<(u64, u64, Blake3Hash)>;

/// How a byzantine mesh misbehaves (from its start time on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byzantine {
    /// Shows one history to half its witnesses and another to the rest: two signed roots of
    /// one size.
    Equivocate,
    /// Rewrites its last receipts and carries on from the new history.
    Rewrite,
    /// Cuts its history back to half and carries on (a rollback).
    Truncate,
    /// Signs its roots with a key that is not its own, and sends notifications in another
    /// mesh's name.
    ForgeSignatures,
    /// Sends an old notification again with every new one.
    Replay,
    /// Serves no samples.
    WithholdSamples,
    /// Anchors its roots with a signature that is not its own.
    LieAboutAnchors,
}

impl Byzantine {
    /// Whether every honest witness must report it (the others are refused quietly: a
    /// forged signature proves nothing about the mesh it names, a replay is stale).
    pub fn detectable(self) -> bool {
        !matches!(self, Self::ForgeSignatures | Self::Replay)
    }

    /// Whether its detection must come with evidence that proves it on its own.
    pub fn needs_proof(self) -> bool {
        matches!(self, Self::Equivocate | Self::Rewrite | Self::Truncate)
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Equivocate => "equivocate",
            Self::Rewrite => "rewrite",
            Self::Truncate => "truncate",
            Self::ForgeSignatures => "forge-signatures",
            Self::Replay => "replay",
            Self::WithholdSamples => "withhold-samples",
            Self::LieAboutAnchors => "lie-about-anchors",
        }
    }
}

/// Where a crash hits the mesh's next input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Between inputs: nothing in flight inside the mesh.
    Idle,
    /// After the engine committed, before anything it output was carried out.
    AfterCommit,
    /// Messages sent, receipts not yet appended to the Federation scroll.
    BeforeAppend,
}

/// A scheduled crash and restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Crash {
    /// The mesh.
    pub mesh: usize,
    /// When (ms of simulated time since the start).
    pub at_ms: u64,
    /// Down for this long.
    pub down_ms: u64,
    /// Where it hits.
    pub point: CrashPoint,
}

/// Everything a run is made of.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The scenario's name (for the report and the replay command).
    pub scenario: String,
    /// Meshes.
    pub meshes: usize,
    /// Agreements per mesh.
    pub peers: usize,
    /// Simulated hours of anchor cycles.
    pub hours: u64,
    /// The seed.
    pub seed: u64,
    /// Links and partitions.
    pub network: Network,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// Byzantine meshes: (mesh, behaviour, from ms).
    pub byzantine: Vec<(usize, Byzantine, u64)>,
    /// Receipts each mesh appends per cycle (inclusive range).
    pub receipts_per_cycle: (u64, u64),
    /// Seconds between anchor cycles (and verification cycles: agreements are hourly).
    pub cycle_secs: u64,
    /// Detection must come within this many cycles.
    pub detection_budget_cycles: u64,
    /// After the last heal, every honest pair must converge within this many seconds.
    pub convergence_budget_secs: u64,
    /// Witnesses gossip what they verified and compare roots across witnesses (see the
    /// module docs). Off, a witness sees only what the mesh shows it: what the node did
    /// before the simulator found the split-view gap, kept to show the gap in a test.
    pub cross_check: bool,
    /// A request unanswered after this long has failed (the node's request timeout).
    pub rpc_timeout_ms: u64,
    /// A witness check not finished after this long is abandoned.
    pub check_timeout_ms: u64,
}

impl SimConfig {
    /// A fault-free run of `meshes` meshes with `peers` agreements each.
    pub fn new(scenario: &str, meshes: usize, seed: u64) -> Self {
        Self {
            scenario: scenario.into(),
            meshes,
            peers: 5.min(meshes.saturating_sub(1)),
            hours: 24,
            seed,
            network: Network::default(),
            crashes: Vec::new(),
            byzantine: Vec::new(),
            receipts_per_cycle: (1, 3),
            cycle_secs: 3600,
            detection_budget_cycles: 2,
            convergence_budget_secs: 2 * 3600 + 600,
            cross_check: true,
            rpc_timeout_ms: 10_000,
            check_timeout_ms: 30_000,
        }
    }

    /// The end of the run (ms since the start): the cycles, then a quiet half hour.
    pub fn end_ms(&self) -> u64 {
        self.hours * self.cycle_secs * 1000 + 1_800_000
    }
}

/// A message on the simulated wire.
#[derive(Debug, Clone)]
enum Wire {
    /// An engine message, as a request.
    Engine { rpc: u64, message: Box<PeerMessage> },
    /// Its response.
    EngineReply { rpc: u64, reply: Reply },
    /// An anchor notification (no reply: the next cycle supersedes a lost one).
    Notify(Box<AnchorNotification>),
    /// "Your latest root", for a check (`request` names this one request: a duplicated
    /// or late answer must not pass for the answer to a later one).
    RootsAsk { request: u64 },
    /// The answer.
    RootsReply {
        request: u64,
        root: Option<Box<AnchorNotification>>,
    },
    /// Evidence for a check.
    EvidenceAsk { request: u64, ask: EvidenceRequest },
    /// The answer (`None`: refused).
    EvidenceReply {
        request: u64,
        evidence: Option<Box<Evidence>>,
    },
    /// A witnessed root, passed to the mesh's other witnesses.
    Gossip(Box<AnchorNotification>),
}

impl Wire {
    fn tag(&self) -> u8 {
        match self {
            Wire::Engine { .. } => 1,
            Wire::EngineReply { .. } => 2,
            Wire::Notify(_) => 3,
            Wire::RootsAsk { .. } => 4,
            Wire::RootsReply { .. } => 5,
            Wire::EvidenceAsk { .. } => 6,
            Wire::EvidenceReply { .. } => 7,
            Wire::Gossip(_) => 8,
        }
    }
}

/// How the receiver answered an engine message.
#[derive(Debug, Clone)]
enum Reply {
    Delivered,
    Refused { reason: String, permanent: bool },
}

#[derive(Debug)]
enum Ev {
    Deliver {
        from: usize,
        to: usize,
        wire: Wire,
    },
    RpcTimeout {
        mesh: usize,
        rpc: u64,
    },
    Tick {
        mesh: usize,
    },
    Anchor {
        mesh: usize,
    },
    CheckTimeout {
        mesh: usize,
        peer: usize,
        check: u64,
    },
    /// A witness request unanswered so far: sent again if the check still waits for it.
    Resend {
        mesh: usize,
        peer: usize,
        request: u64,
        attempt: u32,
        wire: Wire,
    },
    Crash {
        mesh: usize,
        point: CrashPoint,
        down_ms: u64,
    },
    Restart {
        mesh: usize,
    },
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Why a check was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Push,
    Pull,
    Gossip,
}

/// A witness check in flight (the node's spawned task, as state).
#[derive(Debug, Clone)]
struct Check {
    id: u64,
    /// The request whose answer the check waits for.
    awaiting: u64,
    /// When what it checks arrived (a push waiting behind another check keeps its time).
    received_ms: u64,
    origin: Origin,
    notification: Option<AnchorNotification>,
    previous: Option<SignedRoot>,
    requested: Vec<u64>,
    resynced: bool,
}

/// One mesh.
pub struct Mesh {
    /// Its id.
    pub id: MeshId,
    key: MeshKey,
    /// Its public key.
    pub public: PublicKey,
    config: EngineConfig,
    engine: Option<Engine>,
    /// The store while the engine is down (what a crash keeps).
    parked: Option<Store>,
    /// The Federation scroll.
    pub log: MemoryLog,
    /// The data scroll (for an equivocator, the view of even witnesses).
    pub scroll: MemScroll,
    /// An equivocator's second view.
    pub fork: Option<MemScroll>,
    /// Every history this mesh's scroll had (for the invariants' ground truth).
    pub histories: Vec<MemScroll>,
    /// Its misbehaviour, and from when.
    pub byzantine: Option<(Byzantine, u64)>,
    /// Whether the misbehaviour began (its act recorded).
    acted: bool,
    /// Its planned agreements.
    pub peers: Vec<usize>,
    /// Its latest notification per view.
    latest: [Option<AnchorNotification>; 2],
    /// Its first notification (what a replayer sends again).
    first: Option<AnchorNotification>,
    /// Anchored sizes over time: (ms, size) of view A.
    pub anchored: Vec<(u64, u64)>,
    up: bool,
    crash_next: Option<(CrashPoint, u64)>,
    next_tick: Option<u64>,
    checks: BTreeMap<usize, Check>,
    queued: BTreeMap<usize, VecDeque<(Option<AnchorNotification>, Origin, u64)>>,
    /// Roots of each peer seen (by size), and whether a conflict at that size was reported.
    seen: BTreeMap<usize, BTreeMap<u64, (AnchorNotification, bool)>>,
    gossip_seen: BTreeSet<(usize, u64, Blake3Hash)>,
    rpcs: BTreeMap<u64, (usize, Blake3Hash)>,
    rng: ChaCha20Rng,
}

impl Mesh {
    /// Whether it behaves.
    pub fn honest(&self) -> bool {
        self.byzantine.is_none()
    }

    /// Whether it is running.
    pub fn up(&self) -> bool {
        self.up
    }

    /// Its store (running or parked).
    pub fn store(&self) -> &Store {
        match (&self.engine, &self.parked) {
            (Some(e), _) => e.store(),
            (None, Some(s)) => s,
            (None, None) => unreachable!("a mesh always has its store"),
        }
    }

    /// Its engine, if up.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    fn misbehaves(&self, b: Byzantine, now: u64) -> bool {
        matches!(self.byzantine, Some((k, from)) if k == b && now >= from)
    }

    /// Which view witness `w` gets: 1 (the fork) for every other witness of an equivocator.
    fn view_of(&self, w: usize) -> usize {
        match &self.fork {
            Some(_) => self.peers.iter().position(|p| *p == w).map_or(0, |i| i % 2),
            None => 0,
        }
    }

    fn scroll_of_view(&self, view: usize) -> &MemScroll {
        match (&self.fork, view) {
            (Some(f), 1) => f,
            _ => &self.scroll,
        }
    }
}

/// A byzantine act the honest witnesses must detect.
#[derive(Debug, Clone)]
pub struct Act {
    /// The mesh.
    pub mesh: usize,
    /// What it did.
    pub kind: Byzantine,
    /// When (ms).
    pub at_ms: u64,
    /// Honest witness → when it first recorded a discrepancy about the mesh (ms).
    pub detected: BTreeMap<usize, u64>,
}

/// Counters for the report.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Events processed.
    pub events: u64,
    /// Messages sent.
    pub messages: u64,
    /// Messages lost.
    pub dropped: u64,
    /// Verdicts handed to engines.
    pub witness_checks: u64,
    /// Verified attestations by honest meshes.
    pub attestations: u64,
    /// Discrepancies found by honest meshes.
    pub discrepancies: u64,
}

/// A simulation.
pub struct Sim {
    /// The configuration.
    pub config: SimConfig,
    /// The meshes.
    pub meshes: Vec<Mesh>,
    index: HashMap<MeshId, usize>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    next_id: u64,
    /// Simulated ms since the start.
    pub now_ms: u64,
    rng: ChaCha20Rng,
    trace: blake3::Hasher,
    /// Counters.
    pub counters: Counters,
    /// Byzantine acts.
    pub acts: Vec<Act>,
    /// The invariants.
    pub invariants: Invariants,
    /// Attestations by honest witnesses: (witness, peer) → [(ms, size, root)].
    pub attested: BTreeMap<(usize, usize), Attested>,
    /// The slowest honest pair's catch-up after the last heal (ms), once checked.
    pub convergence_ms: Option<u64>,
    scroll_name: ScrollName,
}

fn terms(scroll: &ScrollName) -> ProposedTerms {
    ProposedTerms {
        scrolls_to_share: vec![scroll.clone()],
        verification_frequency: VerificationFrequency::HOURLY,
        retention_period_days: 365,
        data_jurisdiction: None,
        audit_rights: None,
        extra: Map::new(),
    }
}

/// Each mesh's planned peers: ring neighbours on both sides, and for an odd count the mesh
/// opposite on the ring (so each has exactly `peers` when the count allows).
pub fn topology(n: usize, peers: usize) -> Vec<Vec<usize>> {
    let mut out = vec![BTreeSet::new(); n];
    if n < 2 {
        return vec![Vec::new(); n];
    }
    let half = peers / 2;
    for (i, set) in out.iter_mut().enumerate() {
        for d in 1..=half.min((n - 1) / 2) {
            set.insert((i + d) % n);
            set.insert((i + n - d) % n);
        }
    }
    if peers % 2 == 1 {
        let opposite = n / 2;
        for i in 0..n {
            let j = (i + opposite) % n;
            if j != i && (n.is_multiple_of(2) || i < n / 2) {
                out[i].insert(j);
                out[j].insert(i);
            }
        }
    }
    out.into_iter().map(|s| s.into_iter().collect()).collect()
}

impl Sim {
    /// Builds the meshes (engines opened, peers discovered) and schedules the run.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let scroll_name: ScrollName = "Compliance".parse().expect("a valid scroll name");
        let plan = topology(config.meshes, config.peers);
        let start = Timestamp::from_unix(START_UNIX).expect("start time");
        let mut meshes = Vec::with_capacity(config.meshes);
        for (i, peers) in plan.into_iter().enumerate() {
            let id = MeshId::from_name(&format!("sim-{i:05}")).expect("mesh id");
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let key = MeshKey::from_seed(&seed);
            let mut config_i = EngineConfig::new(format!("Simulated mesh {i}"));
            config_i.scrolls_available = vec![scroll_name.clone()];
            let mut engine_seed = [0u8; 32];
            rng.fill_bytes(&mut engine_seed);
            let store = Store::in_memory().expect("in-memory store");
            let engine = Engine::open(
                id.clone(),
                key.clone(),
                config_i.clone(),
                store,
                0,
                engine_seed,
            )
            .expect("engine");
            let byzantine = config
                .byzantine
                .iter()
                .find(|(m, _, _)| *m == i)
                .map(|(_, b, from)| (*b, *from));
            meshes.push(Mesh {
                public: key.public_key(),
                id,
                key,
                config: config_i,
                engine: Some(engine),
                parked: None,
                log: MemoryLog::new(),
                scroll: MemScroll::new(scroll_name.clone()),
                fork: None,
                histories: Vec::new(),
                byzantine,
                acted: false,
                peers,
                latest: [None, None],
                first: None,
                anchored: Vec::new(),
                up: true,
                crash_next: None,
                next_tick: None,
                checks: BTreeMap::new(),
                queued: BTreeMap::new(),
                seen: BTreeMap::new(),
                gossip_seen: BTreeSet::new(),
                rpcs: BTreeMap::new(),
                rng: ChaCha20Rng::seed_from_u64(rng.next_u64()),
            });
        }
        let index = meshes
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        let mut sim = Self {
            invariants: Invariants::new(),
            config,
            meshes,
            index,
            queue: BinaryHeap::new(),
            seq: 0,
            next_id: 0,
            now_ms: 0,
            rng,
            trace: blake3::Hasher::new(),
            counters: Counters::default(),
            acts: Vec::new(),
            attested: BTreeMap::new(),
            convergence_ms: None,
            scroll_name,
        };
        sim.setup(start);
        sim
    }

    /// Discovery (each mesh learns its planned peers' records, as from the DHT), the
    /// proposals (the lower index proposes), the first tick, the anchor cycles and the
    /// faults.
    fn setup(&mut self, start: Timestamp) {
        let records: Vec<_> = (0..self.meshes.len())
            .map(|i| {
                self.meshes[i]
                    .engine
                    .as_mut()
                    .expect("up")
                    .discovery_record(start)
                    .expect("discovery record")
            })
            .collect();
        for i in 0..self.meshes.len() {
            for p in self.meshes[i].peers.clone() {
                let found = Input::Discovered {
                    record: records[p].clone(),
                    source: PeerSource::Dht,
                };
                if let Err(e) = self.input(i, found) {
                    self.invariants
                        .violate("setup", format!("mesh {i} refused a peer's record: {e}"));
                }
            }
        }
        for i in 0..self.meshes.len() {
            self.schedule(0, Ev::Tick { mesh: i });
            for p in self.meshes[i].peers.clone() {
                if i < p {
                    let target = self.meshes[p].id.clone();
                    let command = Command::Propose {
                        target,
                        trust_level: TrustLevel::VERIFY,
                        terms: terms(&self.scroll_name),
                    };
                    if let Err(e) = self.input(i, Input::Command(command)) {
                        self.invariants
                            .violate("setup", format!("mesh {i} could not propose: {e}"));
                    }
                }
            }
            // Anchor cycles start in the first cycle, at a per-mesh offset.
            let offset = self.rng.random_range(0..self.config.cycle_secs * 1000);
            self.schedule(offset, Ev::Anchor { mesh: i });
        }
        for c in self.config.crashes.clone() {
            self.schedule(
                c.at_ms,
                Ev::Crash {
                    mesh: c.mesh,
                    point: c.point,
                    down_ms: c.down_ms,
                },
            );
        }
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The engine's clock: whole seconds.
    pub fn now(&self) -> Timestamp {
        self.timestamp(self.now_ms)
    }

    fn timestamp(&self, ms: u64) -> Timestamp {
        Timestamp::from_unix(START_UNIX + (ms / 1000) as i64).expect("in range")
    }

    fn record(&mut self, parts: &[u64]) {
        self.trace.update(&self.now_ms.to_le_bytes());
        for p in parts {
            self.trace.update(&p.to_le_bytes());
        }
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> String {
        self.trace.finalize().to_hex().to_string()
    }

    /// Runs until `end_ms` or an empty queue.
    pub fn run_until(&mut self, end_ms: u64) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > end_ms {
                break;
            }
            let Some(Reverse(s)) = self.queue.pop() else {
                break;
            };
            self.now_ms = s.at;
            self.counters.events += 1;
            self.step(s.ev);
        }
        self.now_ms = self.now_ms.max(end_ms);
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, wire } => {
                self.record(&[1, from as u64, to as u64, u64::from(wire.tag())]);
                if !self.meshes[to].up {
                    self.counters.dropped += 1;
                    return;
                }
                self.deliver(from, to, wire);
            }
            Ev::RpcTimeout { mesh, rpc } => {
                if let Some((to, hash)) = self.meshes[mesh].rpcs.remove(&rpc) {
                    self.record(&[2, mesh as u64, rpc]);
                    let to = self.meshes[to].id.clone();
                    let _ = self.input(
                        mesh,
                        Input::DeliveryFailed {
                            to,
                            message_hash: hash,
                            reason: "no response within the request timeout".into(),
                            permanent: false,
                        },
                    );
                }
            }
            Ev::Tick { mesh } => {
                if self.meshes[mesh].up && self.meshes[mesh].next_tick == Some(self.now_ms) {
                    self.record(&[3, mesh as u64]);
                    self.meshes[mesh].next_tick = None;
                    let _ = self.input(mesh, Input::Tick);
                }
            }
            Ev::Anchor { mesh } => {
                self.record(&[4, mesh as u64]);
                let next = self.now_ms + self.config.cycle_secs * 1000;
                if next <= self.config.hours * self.config.cycle_secs * 1000 {
                    self.schedule(next, Ev::Anchor { mesh });
                }
                if self.meshes[mesh].up {
                    self.anchor(mesh);
                }
            }
            Ev::CheckTimeout { mesh, peer, check } => {
                if self.meshes[mesh]
                    .checks
                    .get(&peer)
                    .is_some_and(|c| c.id == check)
                {
                    self.record(&[5, mesh as u64, peer as u64]);
                    self.finish_check(mesh, peer);
                }
            }
            Ev::Resend {
                mesh,
                peer,
                request,
                attempt,
                wire,
            } => {
                let waiting = self.meshes[mesh]
                    .checks
                    .get(&peer)
                    .is_some_and(|c| c.awaiting == request);
                if waiting {
                    self.record(&[8, mesh as u64, peer as u64, request]);
                    self.request(mesh, peer, request, attempt + 1, wire);
                }
            }
            Ev::Crash {
                mesh,
                point,
                down_ms,
            } => {
                self.record(&[6, mesh as u64]);
                if !self.meshes[mesh].up {
                    return;
                }
                if point == CrashPoint::Idle {
                    self.go_down(mesh, down_ms);
                } else {
                    self.meshes[mesh].crash_next = Some((point, down_ms));
                }
            }
            Ev::Restart { mesh } => {
                self.record(&[7, mesh as u64]);
                self.restart(mesh);
            }
        }
    }

    // ----- the engine, and carrying out what it outputs -----

    /// Hands `input` to mesh `i`'s engine and carries out the outputs.
    fn input(&mut self, i: usize, input: Input) -> Result<(), EngineError> {
        let now = self.now();
        let Some(engine) = self.meshes[i].engine.as_mut() else {
            return Ok(());
        };
        let outputs = match engine.handle(now, input) {
            Ok(o) => o,
            Err(e) => {
                self.record(&[20, i as u64]);
                return Err(e);
            }
        };
        self.carry_out(i, outputs);
        self.schedule_tick(i);
        Ok(())
    }

    fn schedule_tick(&mut self, i: usize) {
        let Some(engine) = self.meshes[i].engine.as_ref() else {
            return;
        };
        let Ok(Some(t)) = engine.poll_timeout() else {
            return;
        };
        let wanted = u64::try_from((t.unix() - START_UNIX).max(0)).unwrap_or(0) * 1000;
        let at = wanted.max(self.now_ms + 1000);
        if self.meshes[i].next_tick.is_none_or(|n| at < n) {
            self.meshes[i].next_tick = Some(at);
            self.schedule(at, Ev::Tick { mesh: i });
        }
    }

    fn carry_out(&mut self, i: usize, outputs: Vec<Output>) {
        let crash = self.meshes[i].crash_next.take();
        if let Some((CrashPoint::AfterCommit, down)) = crash {
            self.go_down(i, down);
            return;
        }
        let mut receipts = false;
        for out in outputs {
            match out {
                Output::Send {
                    to,
                    message,
                    message_hash,
                } => {
                    let Some(&to) = self.index.get(&to) else {
                        continue;
                    };
                    let rpc = self.id();
                    self.meshes[i].rpcs.insert(rpc, (to, message_hash));
                    self.schedule(
                        self.now_ms + self.config.rpc_timeout_ms,
                        Ev::RpcTimeout { mesh: i, rpc },
                    );
                    self.send(
                        i,
                        to,
                        Wire::Engine {
                            rpc,
                            message: Box::new(message),
                        },
                    );
                }
                Output::Receipt { .. } => receipts = true,
                Output::ExchangeRoots { peer, .. } | Output::VerificationDue { peer, .. } => {
                    if let Some(&p) = self.index.get(&peer) {
                        self.start_check(i, p, None, Origin::Pull);
                    }
                }
                Output::PublishDiscovery(_) => {}
                Output::Event(e) => self.on_event(i, e),
            }
        }
        if let Some((_, down)) = crash {
            // BeforeAppend: the messages went, the receipts did not.
            self.go_down(i, down);
            return;
        }
        if receipts {
            self.append_receipts(i);
        }
    }

    fn append_receipts(&mut self, i: usize) {
        let now = self.now();
        let mesh = &mut self.meshes[i];
        let Some(engine) = mesh.engine.as_mut() else {
            return;
        };
        if let Err(e) = federation_log::append_pending(engine, &mut mesh.log) {
            self.invariants
                .violate("federation_scrolls_verify", format!("{}: {e}", mesh.id));
            return;
        }
        let size = mesh.log.len();
        match engine.handle(now, Input::ReceiptsStored { size }) {
            Ok(outputs) if outputs.is_empty() => {}
            Ok(outputs) => self.carry_out(i, outputs),
            Err(e) => self.invariants.violate(
                "federation_scrolls_verify",
                format!("{}: {e}", self.meshes[i].id),
            ),
        }
    }

    fn on_event(&mut self, i: usize, event: Event) {
        match &event {
            Event::Proposal {
                proposal_id,
                peer,
                event: ProposalEvent::Received,
            } => {
                let Some(&p) = self.index.get(peer) else {
                    return;
                };
                if self.meshes[i].peers.contains(&p) {
                    let proposal = ProposalRef {
                        id: proposal_id.clone(),
                        proposer: Some(peer.clone()),
                    };
                    let _ = self.input(i, Input::Command(Command::Accept { proposal }));
                }
            }
            Event::Witnessed {
                peer,
                size,
                root,
                result: WitnessResult::Verified,
                ..
            } => {
                let Some(&p) = self.index.get(peer) else {
                    return;
                };
                self.record(&[30, i as u64, p as u64, *size]);
                if self.meshes[i].honest() {
                    self.counters.attestations += 1;
                    let list = self.attested.entry((i, p)).or_default();
                    let previous = list.last().map(|(_, s, r)| (*s, *r));
                    list.push((self.now_ms, *size, *root));
                    let verdict =
                        crate::invariants::consistent(&self.meshes[p], previous, (*size, *root));
                    self.invariants.check(
                        "attestations_consistent",
                        verdict.map_err(|e| {
                            format!(
                                "{} attested {}'s root at {size} after {previous:?}: {e}",
                                self.meshes[i].id, self.meshes[p].id
                            )
                        }),
                    );
                }
            }
            Event::Discrepancy {
                reporting_mesh,
                reported_mesh,
                kind,
                ..
            } if reporting_mesh == &self.meshes[i].id => {
                let Some(&p) = self.index.get(reported_mesh) else {
                    return;
                };
                self.record(&[31, i as u64, p as u64]);
                if !self.meshes[i].honest() {
                    return;
                }
                self.counters.discrepancies += 1;
                let accused_honest = self.meshes[p].honest();
                self.invariants.check(
                    "no_false_positives",
                    if accused_honest {
                        Err(format!(
                            "{} reported {kind} against honest {} at {} ms",
                            self.meshes[i].id, self.meshes[p].id, self.now_ms
                        ))
                    } else {
                        Ok(())
                    },
                );
                for act in &mut self.acts {
                    if act.mesh == p && self.now_ms >= act.at_ms {
                        act.detected.entry(i).or_insert(self.now_ms);
                    }
                }
            }
            _ => {}
        }
    }

    // ----- the network -----

    fn send(&mut self, from: usize, to: usize, wire: Wire) {
        self.counters.messages += 1;
        match self
            .config
            .network
            .fate(&mut self.rng, self.now_ms, from, to)
        {
            Fate::Dropped => self.counters.dropped += 1,
            Fate::Delivered(first, again) => {
                if let Some(d) = again {
                    self.schedule(
                        self.now_ms + d,
                        Ev::Deliver {
                            from,
                            to,
                            wire: wire.clone(),
                        },
                    );
                }
                self.schedule(self.now_ms + first, Ev::Deliver { from, to, wire });
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, wire: Wire) {
        match wire {
            Wire::Engine { rpc, message } => {
                let sender = self.meshes[from].id.clone();
                let reply = match self.input(
                    to,
                    Input::Peer {
                        from: sender,
                        message: *message,
                    },
                ) {
                    Ok(()) => Reply::Delivered,
                    Err(e) if e.is_acknowledgement() => Reply::Delivered,
                    Err(e) => Reply::Refused {
                        reason: e.to_string(),
                        permanent: e.is_permanent(),
                    },
                };
                self.send(to, from, Wire::EngineReply { rpc, reply });
            }
            Wire::EngineReply { rpc, reply } => {
                let Some((peer, hash)) = self.meshes[to].rpcs.remove(&rpc) else {
                    return;
                };
                let peer_id = self.meshes[peer].id.clone();
                let input = match reply {
                    Reply::Delivered => Input::Delivered {
                        to: peer_id,
                        message_hash: hash,
                    },
                    Reply::Refused { reason, permanent } => Input::DeliveryFailed {
                        to: peer_id,
                        message_hash: hash,
                        reason,
                        permanent,
                    },
                };
                let _ = self.input(to, input);
            }
            Wire::Notify(n) => self.on_notify(to, from, *n),
            Wire::RootsAsk { request } => {
                let view = self.meshes[to].view_of(from);
                let root = self.meshes[to].latest[view].clone().map(Box::new);
                self.send(to, from, Wire::RootsReply { request, root });
            }
            Wire::RootsReply { request, root } => {
                self.on_root(to, from, request, root.map(|r| *r));
            }
            Wire::EvidenceAsk { request, ask } => {
                let evidence = self.serve_evidence(to, from, &ask).map(Box::new);
                self.send(to, from, Wire::EvidenceReply { request, evidence });
            }
            Wire::EvidenceReply { request, evidence } => {
                self.on_evidence(to, from, request, evidence.map(|e| *e));
            }
            Wire::Gossip(n) => self.on_gossip(to, *n),
        }
    }

    // ----- anchoring (the mesh side) -----

    fn anchor(&mut self, i: usize) {
        let now = self.now();
        let now_ms = self.now_ms;
        let (lo, hi) = self.config.receipts_per_cycle;
        let count = self.rng.random_range(lo..=hi.max(lo));
        let cycle = now_ms / (self.config.cycle_secs * 1000);
        let mesh = &mut self.meshes[i];
        // The misbehaviour begins at the first cycle from its start time: recorded once as
        // the act the honest witnesses are measured against.
        let act = match mesh.byzantine {
            Some((kind, from)) if !mesh.acted && now_ms >= from => {
                mesh.acted = true;
                match kind {
                    Byzantine::Equivocate => mesh.fork = Some(mesh.scroll.clone()),
                    Byzantine::Rewrite | Byzantine::Truncate => {
                        mesh.histories.push(mesh.scroll.clone());
                        let keep = if kind == Byzantine::Rewrite {
                            mesh.scroll.len().saturating_sub(2)
                        } else {
                            mesh.scroll.len() / 2
                        };
                        mesh.scroll.truncate(keep);
                    }
                    // These act in how roots are signed, anchored, sent and served.
                    Byzantine::ForgeSignatures
                    | Byzantine::Replay
                    | Byzantine::WithholdSamples
                    | Byzantine::LieAboutAnchors => {}
                }
                Some(kind)
            }
            _ => None,
        };
        // Receipts after a rewrite differ from the ones they replace.
        let tag = if mesh.histories.is_empty() { "a" } else { "r" };
        let base = mesh.scroll.len();
        for n in 0..count {
            mesh.scroll
                .append_event(now, &format!("{tag}{cycle}"), base + n);
        }
        if let Some(f) = mesh.fork.as_mut() {
            let base = f.len();
            for n in 0..count {
                f.append_event(now, &format!("b{cycle}"), base + n);
            }
        }
        let views = if mesh.fork.is_some() { 2 } else { 1 };
        let mut notes = Vec::with_capacity(views);
        for view in 0..views {
            let key = if mesh.misbehaves(Byzantine::ForgeSignatures, now_ms) {
                MeshKey::from_seed(&[0xEE; 32])
            } else {
                mesh.key.clone()
            };
            let root = mesh.scroll_of_view(view).sign_root(&key, &mesh.id, now);
            let batch = Batch::new(vec![root.clone()]).expect("one root");
            let anchor_key = if mesh.misbehaves(Byzantine::LieAboutAnchors, now_ms) {
                MeshKey::from_seed(&[0xAA; 32])
            } else {
                mesh.key.clone()
            };
            let anchor = anchor_local(&anchor_key, &mesh.id, &batch.root(), now);
            let proof = batch.proof(0, &anchor).expect("leaf 0");
            notes.push(AnchorNotification::new(root, proof));
        }
        if mesh.first.is_none() {
            mesh.first = notes.first().cloned();
        }
        mesh.anchored.push((now_ms, notes[0].size));
        for (view, n) in notes.iter().enumerate() {
            mesh.latest[view] = Some(n.clone());
        }
        let kept = AnchoredRoot {
            notification: notes[0].clone(),
            anchored_at: now,
        };
        if let Some(e) = mesh.engine.as_ref() {
            // What `roots` serves after a restart, as the node keeps it.
            let _ = e.store().write(|tx| tx.put(&kept));
        }
        if let Some(kind) = act {
            self.acts.push(Act {
                mesh: i,
                kind,
                at_ms: now_ms,
                detected: BTreeMap::new(),
            });
        }
        self.record(&[40, i as u64, notes[0].size]);
        let replay = self.meshes[i].misbehaves(Byzantine::Replay, now_ms);
        let forge = self.meshes[i].misbehaves(Byzantine::ForgeSignatures, now_ms);
        for w in self.meshes[i].peers.clone() {
            let view = self.meshes[i].view_of(w);
            self.send(i, w, Wire::Notify(Box::new(notes[view].clone())));
            if replay && let Some(old) = self.meshes[i].first.clone() {
                self.send(i, w, Wire::Notify(Box::new(old)));
            }
            if forge {
                // A notification in the name of another mesh, signed with our key.
                let victim = self.meshes[i].peers[0];
                let mut fake = notes[view].clone();
                fake.mesh_id = self.meshes[victim].id.clone();
                self.send(i, w, Wire::Notify(Box::new(fake)));
            }
        }
    }

    /// `evidence`, as the node serves it, from the view `w` gets.
    fn serve_evidence(&self, m: usize, w: usize, ask: &EvidenceRequest) -> Option<Evidence> {
        let mesh = &self.meshes[m];
        let scroll = mesh.scroll_of_view(mesh.view_of(w));
        if ask.scroll != *scroll.name() {
            return None;
        }
        let mut evidence = witness::serve_evidence(scroll, ask, usize::MAX).ok()?;
        if mesh.misbehaves(Byzantine::WithholdSamples, self.now_ms) {
            evidence.samples.clear();
        }
        Some(evidence)
    }

    // ----- witnessing (the witness side) -----

    fn witness_state(&self, w: usize, m: usize) -> Option<WitnessState> {
        let key = vm_storage::records::witness_key(&self.meshes[m].id, &self.scroll_name);
        self.meshes[w]
            .store()
            .get::<WitnessState>(&key)
            .ok()
            .flatten()
    }

    /// A root signed by `m`, checked for sender and signature.
    fn authentic(&self, m: usize, n: &AnchorNotification) -> bool {
        n.mesh_id == self.meshes[m].id
            && n.scroll == self.scroll_name
            && n.verify_root(&self.meshes[m].public).is_ok()
    }

    fn on_notify(&mut self, w: usize, m: usize, n: AnchorNotification) {
        if !self.meshes[w].peers.contains(&m) || !self.authentic(m, &n) {
            return;
        }
        if self.compare_seen(w, m, &n) {
            return;
        }
        if self
            .witness_state(w, m)
            .is_some_and(|s| s.latest.size == n.size && s.latest.root == n.root)
        {
            return;
        }
        self.start_check(w, m, Some(n), Origin::Push);
    }

    fn on_gossip(&mut self, w: usize, n: AnchorNotification) {
        let Some(&m) = self.index.get(&n.mesh_id) else {
            return;
        };
        if m == w || !self.meshes[w].peers.contains(&m) {
            return;
        }
        // gossipsub delivers a message once however many peers forward it.
        if !self.meshes[w].gossip_seen.insert((m, n.size, n.root)) {
            return;
        }
        // A root this witness already holds (usually the one it witnessed itself) tells it
        // nothing: no signature to check.
        let known = self.meshes[w]
            .seen
            .get(&m)
            .and_then(|s| s.get(&n.size))
            .is_some_and(|(e, _)| e.root == n.root);
        if known {
            return;
        }
        if !self.authentic(m, &n) || self.compare_seen(w, m, &n) {
            return;
        }
        if self
            .witness_state(w, m)
            .is_none_or(|s| s.latest.size < n.size)
        {
            self.start_check(w, m, Some(n), Origin::Gossip);
        }
    }

    /// Compares a root of `m` that `w` just learned with the roots of `m` it saw before: two
    /// of one size with different hashes are reported at once, with both as evidence.
    /// Returns whether a conflict was reported.
    fn compare_seen(&mut self, w: usize, m: usize, n: &AnchorNotification) -> bool {
        if !self.config.cross_check {
            return false;
        }
        let seen = self.meshes[w].seen.entry(m).or_default();
        if seen.get(&n.size).is_some_and(|(e, _)| e.root == n.root) {
            return false;
        }
        let later = n.signed_root();
        // Each root seen is used in one report at most: a split view is reported once per
        // pair of roots, not again with every copy of them.
        let found = seen.values_mut().find_map(|(e, reported)| {
            let finding = (!*reported)
                .then(|| witness::compare_roots(&e.signed_root(), &later))
                .flatten()?;
            *reported = true;
            Some(finding)
        });
        let reported = found.is_some();
        seen.entry(n.size).or_insert_with(|| (n.clone(), reported));
        while seen.len() > SEEN_PER_PEER {
            seen.pop_first();
        }
        let Some(finding) = found else {
            return false;
        };
        let report = WitnessReport {
            peer: self.meshes[m].id.clone(),
            notification: n.clone(),
            expected_size: self.witness_state(w, m).map(|s| s.latest.size),
            verdict: Verdict::Discrepancy {
                anchor: None,
                samples_checked: 0,
                finding: Box::new(finding),
            },
            resynced: false,
        };
        self.counters.witness_checks += 1;
        self.input(w, Input::Witnessed(Box::new(report))).is_ok()
    }

    fn start_check(&mut self, w: usize, m: usize, n: Option<AnchorNotification>, origin: Origin) {
        self.start_check_received(w, m, n, origin, self.now_ms);
    }

    /// Starts a check of what arrived at `received_ms` (earlier than now when it waited for
    /// the check before it).
    fn start_check_received(
        &mut self,
        w: usize,
        m: usize,
        n: Option<AnchorNotification>,
        origin: Origin,
        received_ms: u64,
    ) {
        if !self.meshes[w].up {
            return;
        }
        if self.meshes[w].checks.contains_key(&m) {
            let q = self.meshes[w].queued.entry(m).or_default();
            q.push_back((n, origin, received_ms));
            while q.len() > 4 {
                q.pop_front();
            }
            return;
        }
        let previous = self.witness_state(w, m).map(|s| s.latest);
        let id = self.id();
        self.meshes[w].checks.insert(
            m,
            Check {
                id,
                awaiting: 0,
                received_ms,
                origin,
                notification: None,
                previous,
                requested: Vec::new(),
                resynced: false,
            },
        );
        self.schedule(
            self.now_ms + self.config.check_timeout_ms,
            Ev::CheckTimeout {
                mesh: w,
                peer: m,
                check: id,
            },
        );
        match n {
            None => self.ask_root(w, m),
            Some(n) => self.ask_evidence(w, m, n),
        }
    }

    fn ask_evidence(&mut self, w: usize, m: usize, n: AnchorNotification) {
        let mesh = &mut self.meshes[w];
        let Some(check) = mesh.checks.get_mut(&m) else {
            return;
        };
        let requested = choose_samples(n.size, SAMPLES, &mut mesh.rng);
        let old_size = check
            .previous
            .as_ref()
            .map(|p| p.size)
            .filter(|&s| s > 0 && s < n.size);
        let ask = EvidenceRequest {
            scroll: n.scroll.clone(),
            old_size,
            new_size: n.size,
            samples: requested.clone(),
        };
        check.requested = requested;
        check.notification = Some(n);
        self.next_id += 1;
        let request = self.next_id;
        check.awaiting = request;
        self.request(w, m, request, 0, Wire::EvidenceAsk { request, ask });
    }

    fn ask_root(&mut self, w: usize, m: usize) {
        let request = self.id();
        if let Some(c) = self.meshes[w].checks.get_mut(&m) {
            c.awaiting = request;
            self.request(w, m, request, 0, Wire::RootsAsk { request });
        }
    }

    /// Sends a witness request (idempotent: roots, evidence), and again after the request
    /// timeout while unanswered, twice at most (as the node's witness requests do).
    fn request(&mut self, w: usize, m: usize, request: u64, attempt: u32, wire: Wire) {
        if attempt < WITNESS_REQUEST_RESENDS {
            self.schedule(
                self.now_ms + self.config.rpc_timeout_ms,
                Ev::Resend {
                    mesh: w,
                    peer: m,
                    request,
                    attempt,
                    wire: wire.clone(),
                },
            );
        }
        self.send(w, m, wire);
    }

    fn on_root(&mut self, w: usize, m: usize, request: u64, root: Option<AnchorNotification>) {
        let Some(c) = self.meshes[w].checks.get(&m) else {
            return;
        };
        if c.awaiting != request {
            return;
        }
        if let Some(c) = self.meshes[w].checks.get_mut(&m) {
            c.awaiting = 0; // answered: a duplicate of this answer is ignored
        }
        let c = &self.meshes[w].checks[&m];
        let unchanged = |n: &AnchorNotification| {
            c.previous
                .as_ref()
                .is_some_and(|p| p.size == n.size && p.root == n.root)
        };
        if !c.resynced && root.as_ref().is_some_and(unchanged) {
            // Nothing new to witness (a pull of the root already witnessed): no need to
            // check a signature we would not act on.
            return self.finish_check(w, m);
        }
        let Some(n) = root.filter(|n| self.authentic(m, n)) else {
            return self.finish_check(w, m);
        };
        if self.compare_seen(w, m, &n) {
            return self.finish_check(w, m);
        }
        self.ask_evidence(w, m, n);
    }

    fn on_evidence(&mut self, w: usize, m: usize, request: u64, evidence: Option<Evidence>) {
        let Some(c) = self.meshes[w].checks.get(&m).cloned() else {
            return;
        };
        let Some(n) = c.notification.clone() else {
            return;
        };
        if c.awaiting != request {
            return;
        }
        if let Some(c) = self.meshes[w].checks.get_mut(&m) {
            c.awaiting = 0; // answered: a duplicate of this answer is ignored
        }
        let evidence = evidence.unwrap_or_else(|| Evidence {
            scroll: n.scroll.clone(),
            new_size: n.size,
            consistency: None,
            samples: Vec::new(),
        });
        if evidence.scroll != n.scroll || evidence.new_size != n.size {
            return self.finish_check(w, m);
        }
        // The anchor is `local`, signed by the mesh itself: its key is the only one needed.
        let (mesh_id, key) = (&self.meshes[m].id, self.meshes[m].public);
        let key_of = |id: &MeshId| (id == mesh_id).then_some(key);
        let trust = AnchorTrust {
            key_of: &key_of,
            tsa: None,
        };
        let pushed = c.origin == Origin::Push && !c.resynced;
        // A pushed root is judged fresh or stale by when it arrived, not by when the
        // evidence came back: a slow evidence round trip is not the mesh's drift (a false
        // positive the simulator found, `slow_evidence_round_trips_are_not_drift`).
        let judged_at = if pushed { c.received_ms } else { self.now_ms };
        let verdict = witness::check(&CheckInput {
            notification: &n,
            pushed,
            previous: c.previous.as_ref(),
            requested: &c.requested,
            evidence: &evidence,
            now: self.timestamp(judged_at),
            drift_secs: DRIFT_SECS,
            trust: &trust,
            schema_version: None,
        });
        if let Verdict::Discrepancy { finding, .. } = &verdict {
            if !c.resynced
                && matches!(
                    finding.kind,
                    DiscrepancyType::RootMismatch | DiscrepancyType::SampleMissing
                )
            {
                // Seed §6.3 step 1: re-fetch the latest root and check again.
                if let Some(c) = self.meshes[w].checks.get_mut(&m) {
                    c.resynced = true;
                    c.origin = Origin::Pull;
                }
                self.ask_root(w, m);
                return;
            }
            if c.origin == Origin::Gossip
                && matches!(
                    finding.kind,
                    DiscrepancyType::AnchorInvalid | DiscrepancyType::TimestampDrift
                )
            {
                // A forwarder could have changed the anchor proof: not the mesh's word.
                return self.finish_check(w, m);
            }
        }
        let verified = matches!(verdict, Verdict::Verified { .. });
        let report = WitnessReport {
            peer: self.meshes[m].id.clone(),
            notification: n.clone(),
            expected_size: c.previous.as_ref().map(|p| p.size),
            verdict,
            resynced: c.resynced,
        };
        self.counters.witness_checks += 1;
        let accepted = self.input(w, Input::Witnessed(Box::new(report))).is_ok();
        if accepted && verified && self.config.cross_check {
            self.compare_seen(w, m, &n);
            // Pass the root to the mesh's other witnesses.
            for x in self.meshes[m].peers.clone() {
                if x != w {
                    self.send(w, x, Wire::Gossip(Box::new(n.clone())));
                }
            }
        }
        self.finish_check(w, m);
    }

    fn finish_check(&mut self, w: usize, m: usize) {
        self.meshes[w].checks.remove(&m);
        let next = self.meshes[w]
            .queued
            .get_mut(&m)
            .and_then(VecDeque::pop_front);
        if let Some((n, origin, received)) = next {
            self.start_check_received(w, m, n, origin, received);
        }
    }

    // ----- crashes -----

    fn go_down(&mut self, i: usize, down_ms: u64) {
        let mesh = &mut self.meshes[i];
        let Some(engine) = mesh.engine.take() else {
            return;
        };
        mesh.parked = Some(engine.into_store());
        mesh.up = false;
        mesh.next_tick = None;
        mesh.checks.clear();
        mesh.queued.clear();
        mesh.seen.clear();
        mesh.gossip_seen.clear();
        mesh.rpcs.clear();
        mesh.crash_next = None;
        self.schedule(self.now_ms + down_ms.max(1), Ev::Restart { mesh: i });
    }

    fn restart(&mut self, i: usize) {
        let now = self.now();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let mesh = &mut self.meshes[i];
        let Some(store) = mesh.parked.take() else {
            return;
        };
        let engine = Engine::open(
            mesh.id.clone(),
            mesh.key.clone(),
            mesh.config.clone(),
            store,
            mesh.log.len(),
            seed,
        );
        let mut engine = match engine {
            Ok(e) => e,
            Err(e) => {
                self.invariants
                    .violate("restart", format!("{} could not reopen: {e}", mesh.id));
                return;
            }
        };
        if let Err(e) = federation_log::flush(&mut engine, &mut mesh.log, now) {
            self.invariants.violate(
                "federation_scrolls_verify",
                format!("{} could not recover its Federation scroll: {e}", mesh.id),
            );
        }
        mesh.engine = Some(engine);
        mesh.up = true;
        let _ = self.input(i, Input::Tick);
    }

    /// Ends the run: the final checks, after the quiet period.
    pub fn finish(&mut self) {
        let end = self.config.end_ms();
        self.run_until(end);
        crate::invariants::final_checks(self);
    }

    /// The agreements of mesh `i`.
    pub fn agreements(&self, i: usize) -> Vec<AgreementRecord> {
        self.meshes[i].store().all().unwrap_or_default()
    }

    /// The index of a mesh id.
    pub fn index_of(&self, id: &MeshId) -> Option<usize> {
        self.index.get(id).copied()
    }
}
