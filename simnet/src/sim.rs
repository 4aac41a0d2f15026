//! The engine-level simulator: meshes, the event queue, and the driver each mesh needs (what
//! the node does with tokio and sockets, done here with virtual time).
//!
//! Every mesh is the real [`Engine`] over [`Store::in_memory`] with a [`MemoryLog`] as its
//! Federation scroll, a [`MemScroll`] as the data scroll (`Compliance`) it anchors every
//! cycle and its peers witness, and the real [`WitnessCore`]: the witness protocol's
//! decisions (what to check, when, what to ask, resends, deadlines, the re-sync, the
//! comparison of every root seen, what is reported, the anchor batch and whom to notify)
//! are the node's own code. This driver only carries out their outputs over the simulated
//! network and feeds back what comes in, exactly as `src/node` does with sockets; it decides
//! nothing (STYLE habit 2). What is the simulator's own is the world: the network's fates,
//! crashes, clock steps, and byzantine meshes, which tamper with what they sign, serve and
//! forward.
//!
//! Determinism: one [`ChaCha20Rng`] seeded from the run's seed draws every fate, key, offset
//! and engine and core seed; the queue is ordered by (time, sequence); nothing iterates a
//! hash map.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::Map;
use vaultmesh_federation::anchor::anchor_local;
use vaultmesh_federation::engine::policy::PeerRequest;
use vaultmesh_federation::engine::{
    Command, Engine, EngineConfig, EngineError, Event, Input, Output, PeerMessage, ProposalRef,
};
use vaultmesh_federation::federation_log::{self, MemoryLog, ReceiptLog};
use vaultmesh_federation::witness::core::{
    self as witness_core, Answer, CoreConfig, GossipCheck, Outcome, RequestId, WitnessCore,
};
use vaultmesh_federation::witness::{self, EvidenceRequest, cycle};
use vm_receipts::documents::{
    AnchorNotification, ProposedTerms, TrustLevel, VerificationFrequency, WitnessResult,
};
use vm_receipts::receipts::ProposalEvent;
use vm_receipts::{Blake3Hash, MeshId, MeshKey, PublicKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, AnchoredRoot, PeerSource, Store};

use crate::invariants::Invariants;
use crate::net::{Fate, Network};
use crate::scroll::MemScroll;

/// 2025-12-06T10:00:00Z, the seed document's first timestamp.
pub const START_UNIX: i64 = 1_765_015_200;

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
    /// A witness that passes the roots it verified on with their (unsigned) anchor proofs
    /// altered: it accuses nobody itself, and nobody may accuse the mesh for it.
    TamperGossip,
}

impl Byzantine {
    /// Whether every honest witness must report it (the others are refused quietly: a
    /// forged signature proves nothing about the mesh it names, a replay is stale).
    pub fn detectable(self) -> bool {
        !matches!(
            self,
            Self::ForgeSignatures | Self::Replay | Self::TamperGossip
        )
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
            Self::TamperGossip => "tamper-gossip",
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

/// A mesh whose clock is off for a while (an NTP step, a drifting host): everything it signs
/// and judges in that window carries the offset.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockStep {
    /// The mesh.
    pub mesh: usize,
    /// From (ms of simulated time).
    pub from_ms: u64,
    /// Until (ms), when the clock is stepped back.
    pub until_ms: u64,
    /// How far ahead (negative: behind), in seconds.
    pub offset_secs: i64,
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
    /// Honest meshes whose clocks are off for a while.
    pub clock_steps: Vec<ClockStep>,
    /// Receipts each mesh appends per cycle (inclusive range).
    pub receipts_per_cycle: (u64, u64),
    /// Seconds between anchor cycles (and verification cycles: agreements are hourly).
    pub cycle_secs: u64,
    /// Detection must come within this many cycles.
    pub detection_budget_cycles: u64,
    /// After the last heal, every honest pair must converge within this many seconds.
    pub convergence_budget_secs: u64,
    /// An engine message unanswered after this long has failed (a transport's timeout).
    pub rpc_timeout_ms: u64,
    /// The witness core's configuration: the node's defaults. `gossip_verified` off shows,
    /// in a test, what a witness misses when it sees only what the mesh shows it.
    pub witness: CoreConfig,
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
            clock_steps: Vec::new(),
            receipts_per_cycle: (1, 3),
            cycle_secs: 3600,
            detection_budget_cycles: 2,
            convergence_budget_secs: 2 * 3600 + 600,
            rpc_timeout_ms: 10_000,
            witness: CoreConfig::default(),
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
    /// A witness core's request: "your latest root of `scroll`".
    RootsAsk {
        request: RequestId,
        scroll: ScrollName,
    },
    /// A witness core's request for evidence.
    EvidenceAsk {
        request: RequestId,
        ask: EvidenceRequest,
    },
    /// The answer to either (`request` names it: a duplicated or late answer is the core's
    /// to ignore).
    Answer {
        request: RequestId,
        answer: Box<Answer>,
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
            Wire::EvidenceAsk { .. } => 6,
            Wire::Answer { .. } => 7,
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
    /// The witness core's timer (resends, deadlines).
    WitnessTimer {
        mesh: usize,
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
    /// The witness core (the node's), while up.
    witness: Option<WitnessCore>,
    next_witness_timer: Option<u64>,
    /// gossipsub delivers a message once however many peers forward it.
    gossip_seen: BTreeSet<(usize, u64, Blake3Hash, Blake3Hash)>,
    rpcs: BTreeMap<u64, (usize, Blake3Hash)>,
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
    /// Roots signed with an earlier timestamp than the same mesh's previous root (clock
    /// steps): what a witness must not take for a rollback.
    pub timestamp_inversions: u64,
    /// Tampered gossip that reached a witness before it had witnessed that size.
    pub tampered_ahead: u64,
    /// Arbitrations honest finders asked of a third mesh (seed §6.3 step 3).
    pub arbitrations: u64,
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
            let mut witness_seed = [0u8; 32];
            rng.fill_bytes(&mut witness_seed);
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
            let public = key.public_key();
            meshes.push(Mesh {
                public,
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
                witness: Some(WitnessCore::new(
                    MeshId::from_name(&format!("sim-{i:05}")).expect("mesh id"),
                    public,
                    config.witness.clone(),
                    witness_seed,
                )),
                next_witness_timer: None,
                gossip_seen: BTreeSet::new(),
                rpcs: BTreeMap::new(),
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

    /// Mesh `i`'s clock (ms of simulated time, with its clock step if one is on).
    fn clock_ms(&self, i: usize) -> u64 {
        let offset_ms = self
            .config
            .clock_steps
            .iter()
            .find(|c| c.mesh == i && c.from_ms <= self.now_ms && self.now_ms < c.until_ms)
            .map_or(0, |c| c.offset_secs * 1000);
        self.now_ms.saturating_add_signed(offset_ms)
    }

    /// Mesh `i`'s clock as the engine reads it.
    fn mesh_now(&self, i: usize) -> Timestamp {
        self.timestamp(self.clock_ms(i))
    }

    /// Mesh `i`'s clock as the witness core reads it (ms of the Unix epoch).
    fn core_ms(&self, i: usize) -> u64 {
        START_UNIX as u64 * 1000 + self.clock_ms(i)
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
            Ev::WitnessTimer { mesh } => {
                if self.meshes[mesh].up && self.meshes[mesh].next_witness_timer == Some(self.now_ms)
                {
                    self.record(&[5, mesh as u64]);
                    self.meshes[mesh].next_witness_timer = None;
                    let now = self.core_ms(mesh);
                    let m = &mut self.meshes[mesh];
                    if let (Some(core), Some(engine)) = (m.witness.as_mut(), m.engine.as_ref()) {
                        let outputs = core.handle_timeout(now, engine);
                        self.carry_out_witness(mesh, outputs);
                    }
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
        let now = self.mesh_now(i);
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
                Output::ExchangeRoots { peer, scrolls }
                | Output::VerificationDue { peer, scrolls, .. } => {
                    for scroll in scrolls {
                        let now = self.core_ms(i);
                        let m = &mut self.meshes[i];
                        if let (Some(core), Some(engine)) = (m.witness.as_mut(), m.engine.as_ref())
                        {
                            let outputs = core.on_due(now, engine, &peer, &scroll, None);
                            self.carry_out_witness(i, outputs);
                        }
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
        let now = self.mesh_now(i);
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
                    let again = list.iter().any(|(_, s, _)| s == size);
                    self.invariants.check(
                        "one_attestation_per_root",
                        if again {
                            Err(format!(
                                "{} attested {}'s root at size {size} twice",
                                self.meshes[i].id, self.meshes[p].id
                            ))
                        } else {
                            Ok(())
                        },
                    );
                    let list = self.attested.entry((i, p)).or_default();
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
                discrepancy_id,
                reporting_mesh,
                reported_mesh,
                kind,
                ..
            } if reporting_mesh == &self.meshes[i].id => {
                self.on_finding(i, reported_mesh, kind, true);
                self.arbitrate(i, reported_mesh, discrepancy_id.as_str());
            }
            // The same finding made again: the act still stands (a misbehaviour that began
            // serving before its first anchor cycle is found again after it).
            Event::DiscrepancyRepeated { reported_mesh, .. } => {
                self.on_finding(i, reported_mesh, "a finding made again", false);
            }
            _ => {}
        }
    }

    /// Witness `i` found (`first`) or found again something against `reported`.
    fn on_finding(&mut self, i: usize, reported: &MeshId, kind: &str, first: bool) {
        let Some(&p) = self.index.get(reported) else {
            return;
        };
        self.record(&[31, i as u64, p as u64, u64::from(first)]);
        if !self.meshes[i].honest() {
            return;
        }
        if first {
            self.counters.discrepancies += 1;
        }
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

    /// An honest finder asks an honest third mesh that witnesses the accused too (a common
    /// peer) to arbitrate its new finding, as an operator would with `discrepancies
    /// arbitrate`; the verdicts are checked when the run is over.
    fn arbitrate(&mut self, i: usize, reported: &MeshId, id: &str) {
        let Some(&p) = self.index.get(reported) else {
            return;
        };
        if !self.meshes[i].honest() {
            return;
        }
        let arbiter = self.meshes[i]
            .peers
            .iter()
            .copied()
            .find(|&j| j != p && self.meshes[p].peers.contains(&j) && self.meshes[j].honest());
        let Some(j) = arbiter else {
            return;
        };
        let command = Command::Arbitrate {
            discrepancy_id: id.to_owned(),
            arbiter: self.meshes[j].id.clone(),
        };
        if self.input(i, Input::Command(command)).is_ok() {
            self.counters.arbitrations += 1;
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
            Wire::Notify(n) => {
                let now = self.core_ms(to);
                let sender = self.meshes[from].id.clone();
                let m = &mut self.meshes[to];
                if let (Some(core), Some(engine)) = (m.witness.as_mut(), m.engine.as_ref()) {
                    // A refusal would be the answer; notifications are one-way here.
                    if let Ok(outputs) = core.on_notify(now, engine, &sender, *n) {
                        self.carry_out_witness(to, outputs);
                    }
                }
            }
            Wire::RootsAsk { request, scroll } => {
                let answer = Box::new(self.serve_roots(to, from, &scroll));
                self.send(to, from, Wire::Answer { request, answer });
            }
            Wire::EvidenceAsk { request, ask } => {
                let answer = Box::new(self.serve_evidence(to, from, &ask));
                self.send(to, from, Wire::Answer { request, answer });
            }
            Wire::Answer { request, answer } => {
                let now = self.core_ms(to);
                let m = &mut self.meshes[to];
                if let (Some(core), Some(engine)) = (m.witness.as_mut(), m.engine.as_ref()) {
                    let outputs = core.on_answer(now, engine, request, *answer);
                    self.carry_out_witness(to, outputs);
                }
            }
            Wire::Gossip(n) => self.on_gossip(to, *n),
        }
    }

    // ----- anchoring (the mesh side) -----

    fn anchor(&mut self, i: usize) {
        let now = self.mesh_now(i);
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
                    // These act in how roots are signed, anchored, sent, served and passed on.
                    Byzantine::ForgeSignatures
                    | Byzantine::Replay
                    | Byzantine::WithholdSamples
                    | Byzantine::LieAboutAnchors
                    | Byzantine::TamperGossip => {}
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
        let Some(engine) = mesh.engine.as_ref() else {
            return;
        };
        // The cycle's decisions are the node's (`witness::cycle`): the batch, whom to notify.
        // A byzantine mesh tampers with what it signs and anchors.
        let views = if mesh.fork.is_some() { 2 } else { 1 };
        let mut notes = Vec::with_capacity(views);
        let mut targets = Vec::new();
        let mut cross = Vec::new();
        for view in 0..views {
            let key = if mesh.misbehaves(Byzantine::ForgeSignatures, now_ms) {
                MeshKey::from_seed(&[0xEE; 32])
            } else {
                mesh.key.clone()
            };
            let root = mesh.scroll_of_view(view).sign_root(&key, &mesh.id, now);
            let anchor_key = if mesh.misbehaves(Byzantine::LieAboutAnchors, now_ms) {
                MeshKey::from_seed(&[0xAA; 32])
            } else {
                mesh.key.clone()
            };
            let done = cycle::plan(engine, vec![root], now).and_then(|plan| {
                let anchor = anchor_local(&anchor_key, &mesh.id, &plan.batch.root(), now);
                cycle::complete(engine, &plan, &anchor, now)
            });
            let done = match done {
                Ok(d) => d,
                Err(e) => {
                    self.invariants
                        .violate("anchor_cycles", format!("{}: {e}", mesh.id));
                    return;
                }
            };
            if view == 0 {
                targets = done.notify.iter().map(|(p, _)| p.clone()).collect();
                cross = done.cross;
            }
            notes.extend(done.notifications);
        }
        if mesh.first.is_none() {
            mesh.first = notes.first().cloned();
        }
        let inverted = mesh.latest[0]
            .as_ref()
            .is_some_and(|prev| notes[0].timestamp < prev.timestamp);
        mesh.anchored.push((now_ms, notes[0].size));
        for (view, n) in notes.iter().enumerate() {
            mesh.latest[view] = Some(n.clone());
        }
        let kept = AnchoredRoot {
            notification: notes[0].clone(),
            anchored_at: now,
        };
        // What `roots` serves after a restart, as the node keeps it.
        let _ = engine.store().write(|tx| tx.put(&kept));
        if let Some(kind) = act {
            self.acts.push(Act {
                mesh: i,
                kind,
                at_ms: now_ms,
                detected: BTreeMap::new(),
            });
        }
        self.record(&[40, i as u64, notes[0].size]);
        if inverted {
            self.counters.timestamp_inversions += 1;
        }
        if !cross.is_empty() {
            let _ = self.input(i, Input::Anchored(cross));
        }
        let replay = self.meshes[i].misbehaves(Byzantine::Replay, now_ms);
        let forge = self.meshes[i].misbehaves(Byzantine::ForgeSignatures, now_ms);
        for target in targets {
            let Some(&w) = self.index.get(&target) else {
                continue;
            };
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

    /// `roots`, as the node serves it (the policy, then the latest anchored root), from the
    /// view `w` gets.
    fn serve_roots(&self, m: usize, w: usize, scroll: &ScrollName) -> Answer {
        let mesh = &self.meshes[m];
        if let Some(refusal) = self.refuse(m, w, PeerRequest::Roots(std::slice::from_ref(scroll))) {
            return refusal;
        }
        Answer::Root(mesh.latest[mesh.view_of(w)].clone())
    }

    /// `evidence`, as the node serves it, from the view `w` gets.
    fn serve_evidence(&self, m: usize, w: usize, ask: &EvidenceRequest) -> Answer {
        if let Some(refusal) = self.refuse(m, w, PeerRequest::ConsistencyProof(&ask.scroll)) {
            return refusal;
        }
        let mesh = &self.meshes[m];
        let scroll = mesh.scroll_of_view(mesh.view_of(w));
        if ask.scroll != *scroll.name() {
            return Answer::Refused {
                code: "unknown_scroll".into(),
                message: format!("no scroll {} here", ask.scroll),
            };
        }
        match witness::serve_evidence(scroll, ask, usize::MAX) {
            Ok(mut evidence) => {
                if mesh.misbehaves(Byzantine::WithholdSamples, self.now_ms) {
                    evidence.samples.clear();
                }
                Answer::Evidence(evidence)
            }
            Err(e) => Answer::Refused {
                code: e.code().into(),
                message: e.to_string(),
            },
        }
    }

    /// The policy's refusal of `w`'s request to `m`, if any (the node's `authorize_read`).
    fn refuse(&self, m: usize, w: usize, request: PeerRequest<'_>) -> Option<Answer> {
        let engine = self.meshes[m].engine.as_ref()?;
        let now = self.mesh_now(m);
        engine
            .authorize(&self.meshes[w].id, request, now)
            .err()
            .map(|e| Answer::Refused {
                code: "forbidden".into(),
                message: e.to_string(),
            })
    }

    // ----- witnessing (the witness side): the core decides, this carries out -----

    /// A root another witness passed on: gossipsub's validation, then the core.
    fn on_gossip(&mut self, w: usize, n: AnchorNotification) {
        let Some(&m) = self.index.get(&n.mesh_id) else {
            return;
        };
        let key = (m, n.size, n.root, n.anchor_proof.batch_root);
        if !self.meshes[w].gossip_seen.insert(key) {
            return;
        }
        let now = self.core_ms(w);
        let mesh = &mut self.meshes[w];
        let (Some(core), Some(engine)) = (mesh.witness.as_mut(), mesh.engine.as_ref()) else {
            return;
        };
        let tampered = n.anchor_proof.batch_root == Blake3Hash::digest(b"tampered");
        if tampered
            && engine
                .witness_state(&n.mesh_id, &n.scroll)
                .ok()
                .flatten()
                .is_none_or(|s| s.latest.size < n.size)
        {
            self.counters.tampered_ahead += 1;
        }
        if let GossipCheck::Accept(root) = core.check_gossip_root(engine, n) {
            let outputs = core.on_gossip(now, engine, root);
            self.carry_out_witness(w, outputs);
        }
    }

    /// Carries out the witness core's outputs, as the node does over sockets.
    fn carry_out_witness(&mut self, i: usize, outputs: Vec<witness_core::Output>) {
        for output in outputs {
            match output {
                witness_core::Output::Request { id, peer, request } => {
                    let Some(&m) = self.index.get(&peer) else {
                        continue;
                    };
                    let wire = match request {
                        witness_core::Request::Roots { scroll } => Wire::RootsAsk {
                            request: id,
                            scroll,
                        },
                        witness_core::Request::Evidence(ask) => {
                            Wire::EvidenceAsk { request: id, ask }
                        }
                    };
                    self.send(i, m, wire);
                }
                witness_core::Output::Gossip(n) => {
                    let Some(&m) = self.index.get(&n.mesh_id) else {
                        continue;
                    };
                    let mut n = *n;
                    if self.meshes[i].misbehaves(Byzantine::TamperGossip, self.now_ms) {
                        // The anchor proof travels unsigned beside the root.
                        n.anchor_proof.batch_root = Blake3Hash::digest(b"tampered");
                    }
                    for x in self.meshes[m].peers.clone() {
                        if x != i {
                            self.send(i, x, Wire::Gossip(Box::new(n.clone())));
                        }
                    }
                }
                witness_core::Output::Finished { outcome, .. } => {
                    if let Outcome::Report(report) = outcome {
                        self.counters.witness_checks += 1;
                        let _ = self.input(i, Input::Witnessed(report));
                    }
                }
            }
        }
        self.schedule_witness_timer(i);
    }

    fn schedule_witness_timer(&mut self, i: usize) {
        let Some(at) = self.meshes[i]
            .witness
            .as_ref()
            .and_then(WitnessCore::poll_timeout)
        else {
            return;
        };
        // The core's clock is the mesh's; the queue's is the simulation's.
        let offset = self.core_ms(i).saturating_sub(self.now_ms);
        let at = at.saturating_sub(offset).max(self.now_ms + 1);
        if self.meshes[i].next_witness_timer.is_none_or(|n| at < n) {
            self.meshes[i].next_witness_timer = Some(at);
            self.schedule(at, Ev::WitnessTimer { mesh: i });
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
        mesh.witness = None;
        mesh.next_witness_timer = None;
        mesh.gossip_seen.clear();
        mesh.rpcs.clear();
        mesh.crash_next = None;
        self.schedule(self.now_ms + down_ms.max(1), Ev::Restart { mesh: i });
    }

    fn restart(&mut self, i: usize) {
        let now = self.mesh_now(i);
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let mut witness_seed = [0u8; 32];
        self.rng.fill_bytes(&mut witness_seed);
        let witness_config = self.config.witness.clone();
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
        mesh.witness = Some(WitnessCore::new(
            mesh.id.clone(),
            mesh.public,
            witness_config,
            witness_seed,
        ));
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
