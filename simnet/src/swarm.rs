//! Swarm level: `nodes` real libp2p nodes ([`vm_network`]) on 127.0.0.1 in this process,
//! taken through one round of the federation's network life, and the same [`Report`] as
//! the engine level.
//!
//! The steps, each bounded (a step that overruns fails the run with an error naming it):
//!
//! 1. **start** and **settle**: every node's network starts on a loopback TCP port; node
//!    `i > 0` bootstraps to node 0 and to one earlier node chosen by the seed, so the
//!    Kademlia DHT forms from two seeds rather than a star; then the run waits until the
//!    swarm's connections and routing tables stop changing (`settle`). The peer manager
//!    has room for every peer (`peer_limits`), so the swarm forms a full mesh.
//! 2. **publish** and **discovery**: every node publishes the signed DiscoveryRecord its
//!    real [`Engine`] builds, then looks up its ring neighbours `i+1 ..= i+k` (`k =
//!    min(5, n-1)`) by mesh id through the DHT. Invariant `dht_discovery`.
//! 3. **gossip**: every node gossips the anchor notification of a small in-memory scroll's
//!    [`SignedRoot`]; every node validates every gossiped root as the node does
//!    (`check_gossip`: parsed, signed by the key of the mesh it names) and gives gossipsub
//!    the verdict, so only validated roots are forwarded. Invariant `gossip_delivery` asks
//!    for *full* delivery: every node accepted every other node's root. Then one node,
//!    chosen by the seed, gossips a forged root (its own mesh id, a root it never signed,
//!    signed by another key); invariant `forged_gossip_rejected`: nobody accepted it, and
//!    somebody saw it (else the invariant would hold vacuously).
//! 4. **witness**: each node witnesses its ring neighbours' roots over request-response
//!    with the node's own wire types ([`FedRequest::Roots`], then [`FedRequest::Evidence`]
//!    with samples chosen by the seed), addressing each neighbour by the peer id and
//!    addresses of the record the DHT returned, and checks with the real
//!    [`witness::check`] against a `local` anchor. Invariant `witness_round`: every
//!    check verified, and the root it verified is the one gossiped.
//! 5. **shutdown**: every node's event loop stops and drops its handle; dropping the last
//!    handle stops the network task; the runtime then waits a bounded time for the tasks.
//!
//! Unlike the engine level this is not deterministic in timing: the OS schedules real
//! sockets. The seed fixes everything else (keys, scrolls, bootstrap choices, the forger,
//! the samples), and time inside the swarm is one fixed instant (records, roots, anchors and
//! freshness checks all read it), so the *outcomes* repeat; the trace hash is over the
//! sorted outcomes, not over an event order.
//!
//! [`Engine`]: vaultmesh_federation::engine::Engine

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use vaultmesh_federation::anchor::{Batch, anchor_local};
use vaultmesh_federation::engine::EngineError;
use vaultmesh_federation::engine::policy::PeerRequest;
use vaultmesh_federation::engine::{Engine, EngineConfig};
use vaultmesh_federation::node::wire::{FedRequest, FedResponse};
use vaultmesh_federation::witness::core::{
    Answer, CoreConfig, Facts, Outcome, Output as CoreOutput, WitnessCore,
};
use vaultmesh_federation::witness::{self, EvidenceRequest, Verdict};
use vm_network::{
    GossipVerdict, NetworkCommand, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle,
    RequestError,
};
use vm_receipts::documents::{
    AnchorNotification, DiscoveryRecord, SignedDocument, SignedRoot, parse,
};
use vm_receipts::merkle::MerkleTree;
use vm_receipts::{Blake3Hash, MeshId, MeshKey, PublicKey, ScrollName, Timestamp, jcs};
use vm_storage::Store;

use crate::report::{InvariantResult, Report};

/// The scenario's name in reports and on the command line.
pub const SCENARIO: &str = "swarm";
/// Ring neighbours each node looks up and witnesses (all others in a smaller swarm).
pub const NEIGHBOURS: usize = 5;
/// Fewest nodes: a node needs a neighbour to look up and witness.
pub const MIN_NODES: usize = 2;
/// Most nodes: the hundred. The swarm is a full mesh (`peer_limits`): at 100 nodes
/// ~11,000 connections, 1.2 GB and ~45 s to form on 2 cores; beyond that the figures
/// measure the host, not the protocol.
pub const MAX_NODES: usize = 100;
/// The invariants every run reports, in order.
pub const INVARIANTS: [&str; 4] = [
    "dht_discovery",
    "gossip_delivery",
    "forged_gossip_rejected",
    "witness_round",
];

/// The scroll each node gossips and is witnessed on.
const SCROLL: &str = "Compliance";
/// The one instant of the swarm (2026-09-21): records, roots, anchors and freshness checks
/// all read it, so no outcome depends on the OS clock.
const NOW_UNIX: i64 = 1_790_000_000;
/// Receipts sampled per witness check (the newest always among them).
const SAMPLES: usize = 3;
/// The witness drift limit (the seed's five minutes).
const DRIFT_SECS: i64 = 300;
/// Lookups per (node, neighbour) before it counts as failed: a record put a moment ago may
/// not have reached the peers a lookup walks yet; the node itself retries the same way.
const LOOKUP_ATTEMPTS: u32 = 3;
/// Attempts of one witness request when the transport fails.
const REQUEST_ATTEMPTS: u32 = 3;
/// Pause between retries of a publish, a lookup or a first gossip (the mesh is forming).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Gossip timing: a short first heartbeat so the mesh forms within a second, then the
/// node's own heartbeat (1 s): at 250 ms the heartbeats of 100 nodes with 99 peers each
/// (peer scores, IHAVE) kept both cores busy.
const GOSSIP_INITIAL_DELAY: Duration = Duration::from_millis(100);
const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(1000);
/// Between two nodes' first gossip of their roots. A burst of 100 publications at once
/// left a few deliveries missing for good (gossipsub drops forwards when a peer's send
/// queue is full, and its IHAVE history is three heartbeats); the protocol's own rate is
/// one root per mesh per anchor cycle, far below this.
const GOSSIP_SPACING: Duration = Duration::from_millis(20);
/// Request timeout inside the swarm.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// DHT query timeout: above Kademlia's 10 s peer timeout, so a query that waited on an
/// unresponsive peer still ends with what it found rather than failing.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the swarm's connections and routing tables must stay unchanged to count as
/// formed.
const SETTLE_QUIET: Duration = Duration::from_secs(1);
/// After the forged root was first refused, how long other nodes have to receive it (and,
/// if validation were broken, to accept it and forward it).
const FORGED_GRACE: Duration = Duration::from_secs(1);

/// The budget of each step.
const START_BUDGET: Duration = Duration::from_secs(30);
/// Forming takes tens of seconds at 100 nodes (see [`settle`]).
const SETTLE_BUDGET: Duration = Duration::from_secs(90);
const PUBLISH_BUDGET: Duration = Duration::from_secs(60);
const DISCOVERY_BUDGET: Duration = Duration::from_secs(20);
const GOSSIP_PUBLISH_BUDGET: Duration = Duration::from_secs(20);
/// Waiting for delivery ends the step without an error: what is missing then is the
/// `gossip_delivery` invariant's finding, reported with the rest.
const GOSSIP_DELIVERY_BUDGET: Duration = Duration::from_secs(20);
const FORGED_BUDGET: Duration = Duration::from_secs(10);
const WITNESS_BUDGET: Duration = Duration::from_secs(20);
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// Runs the swarm scenario: `nodes` real libp2p nodes on 127.0.0.1 in this process, on a
/// multi-thread tokio runtime of its own. An error means a step could not finish (its name
/// and the replay command are in the message); a failed invariant is in the report.
pub fn run(nodes: usize, seed: u64) -> anyhow::Result<Report> {
    let started = vaultmesh_federation::clock::Stopwatch::start();
    if !(MIN_NODES..=MAX_NODES).contains(&nodes) {
        bail!("the swarm scenario runs {MIN_NODES} to {MAX_NODES} nodes, not {nodes}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(scenario(nodes, seed));
    // Every handle is gone by now (dropped on success, or with the failed future): the
    // network tasks are ending; give them a bounded time rather than abandoning sockets.
    runtime.shutdown_timeout(SHUTDOWN_BUDGET);
    let mut report = result.with_context(|| format!("replay with: {}", replay(nodes, seed)))?;
    report.wall_secs = started.elapsed_secs();
    Ok(report)
}

/// The command that replays a run.
fn replay(nodes: usize, seed: u64) -> String {
    format!("simnet run --scenario swarm --meshes {nodes} --seed {seed}")
}

/// Runs `future` as the step `name`, within `budget`.
async fn step<T>(
    name: &str,
    budget: Duration,
    future: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(budget, future)
        .await
        .map_err(|_| {
            anyhow!(
                "swarm step `{name}` did not finish within {} s",
                budget.as_secs()
            )
        })?
        .with_context(|| format!("swarm step `{name}`"))
}

/// 32 bytes for `label` and node `index`, from the seed: keys, engine seeds, scroll
/// contents and sample choices are all drawn this way, each from its own stream.
fn derive(seed: u64, label: &str, index: usize) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("vm-simnet swarm 2026-11");
    h.update(&seed.to_le_bytes());
    h.update(label.as_bytes());
    h.update(&(index as u64).to_le_bytes());
    *h.finalize().as_bytes()
}

fn now() -> anyhow::Result<Timestamp> {
    Timestamp::from_unix(NOW_UNIX).ok_or_else(|| anyhow!("{NOW_UNIX} is not a timestamp"))
}

fn scroll_name() -> anyhow::Result<ScrollName> {
    SCROLL
        .parse()
        .with_context(|| format!("scroll name {SCROLL}"))
}

/// One mesh of the swarm: who it is.
struct Member {
    mesh_id: MeshId,
    key: MeshKey,
    public_key: PublicKey,
    peer_id: String,
}

impl Member {
    fn new(seed: u64, index: usize) -> anyhow::Result<Self> {
        let key = MeshKey::from_seed(&derive(seed, "mesh key", index));
        let public_key = key.public_key();
        Ok(Self {
            mesh_id: MeshId::from_name(&format!("swarm-{index:03}"))?,
            peer_id: public_key.peer_id(),
            key,
            public_key,
        })
    }
}

/// A node's Compliance scroll, in memory: the tree, the stored lines, and the root it
/// signed, anchored (`local`) and gossips.
struct MemScroll {
    tree: MerkleTree,
    lines: Vec<String>,
    root: SignedRoot,
    root_json: Vec<u8>,
    notification: AnchorNotification,
}

impl MemScroll {
    /// 3 to 8 receipts (the count from the seed), each line the receipt's JCS with the
    /// `root_hash` after it, as a scroll stores them, so the witness's sample check
    /// recomputes leaves exactly as it does for a real scroll.
    fn build(member: &Member, seed: u64, index: usize, now: Timestamp) -> anyhow::Result<Self> {
        let mut rng = ChaCha20Rng::from_seed(derive(seed, "scroll", index));
        let size: u64 = rng.random_range(3..=8);
        let mut tree = MerkleTree::new();
        let mut lines = Vec::new();
        for sequence in 0..size {
            let mut receipt = Map::new();
            receipt.insert("type".into(), json!("swarm_sample"));
            receipt.insert("mesh_id".into(), json!(member.mesh_id));
            receipt.insert("sequence".into(), json!(sequence));
            receipt.insert("timestamp".into(), json!(now));
            let payload = Blake3Hash::from_bytes(rng.random::<[u8; 32]>());
            receipt.insert("payload".into(), json!(payload.to_string()));
            tree.append(&jcs::to_vec(&Value::Object(receipt.clone()))?);
            let root = Blake3Hash::from_bytes(tree.root());
            receipt.insert("root_hash".into(), json!(root.to_string()));
            lines.push(String::from_utf8(jcs::to_vec(&Value::Object(receipt))?)?);
        }
        let root = SignedRoot::new(
            &member.key,
            member.mesh_id.clone(),
            scroll_name()?,
            tree.len(),
            Blake3Hash::from_bytes(tree.root()),
            now,
        )?;
        let batch = Batch::new(vec![root.clone()])?;
        let anchor = anchor_local(&member.key, &member.mesh_id, &batch.root(), now);
        let notification = AnchorNotification::new(root.clone(), batch.proof(0, &anchor)?);
        // As the node gossips it (`announce`): the anchor notification's JSON.
        let root_json = serde_json::to_vec(&notification)?;
        Ok(Self {
            tree,
            lines,
            root,
            root_json,
            notification,
        })
    }

    /// The evidence for `ask`, served as the node serves it ([`witness::serve_evidence`]).
    fn evidence(&self, ask: &EvidenceRequest) -> FedResponse {
        if ask.scroll != self.root.scroll {
            return FedResponse::error("unknown_scroll", format!("no scroll {}", ask.scroll), true);
        }
        match witness::serve_evidence(self, ask, usize::MAX) {
            Ok(evidence) => FedResponse::Evidence {
                evidence: Box::new(evidence),
            },
            Err(refusal) => {
                FedResponse::error(refusal.code(), refusal.to_string(), refusal.permanent())
            }
        }
    }
}

/// What every node's event loop shares: the keys it validates with, which gossip is whose,
/// and the counters.
struct Shared {
    /// The key of every mesh, as operators who federated them all would hold: gossip from
    /// a mesh a node holds no key for is *ignored* (not forwarded), so a partial directory
    /// would measure the directory rather than the network.
    keys: HashMap<MeshId, PublicKey>,
    /// Mesh of each peer id (who may ask for evidence).
    meshes_by_peer: HashMap<String, MeshId>,
    /// blake3 of each honest root's gossip bytes → its node.
    honest: HashMap<[u8; 32], usize>,
    /// blake3 of the forged root's gossip bytes.
    forged: [u8; 32],
    /// Network events the loops handled.
    events: AtomicU64,
    /// Verdicts on honest roots (each node judges each other node's root once).
    honest_judged: AtomicU64,
    /// Verdicts on the forged root.
    forged_judged: AtomicU64,
    /// Wakes the coordinator when a verdict is logged (a permit is kept if it is not
    /// waiting, so a check-then-wait loop misses nothing).
    progress: Notify,
}

/// What one node decided about gossip.
#[derive(Default)]
struct GossipLog {
    /// Verdict on each honest node's root.
    honest: HashMap<usize, GossipVerdict>,
    /// Verdicts on the forged root (once, unless it arrived twice: that would be a bug).
    forged: Vec<GossipVerdict>,
    /// Messages that were neither: nobody in the swarm publishes such.
    stray: u64,
}

/// A node's event loop: answers requests and judges gossip, until told to stop.
struct Server {
    handle: NetworkHandle,
    scroll: Arc<MemScroll>,
    record: DiscoveryRecord,
    shared: Arc<Shared>,
    log: Arc<Mutex<GossipLog>>,
}

impl Server {
    async fn run(self, mut events: mpsc::Receiver<NetworkEvent>, mut stop: watch::Receiver<bool>) {
        loop {
            let event = tokio::select! {
                _ = stop.changed() => break,
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
            };
            self.shared.events.fetch_add(1, Ordering::Relaxed);
            // A failed send means the network task stopped: the run is ending.
            let sent = match event {
                NetworkEvent::Request {
                    request_id,
                    peer,
                    body,
                } => {
                    let body = self.answer(&peer, &body).to_bytes();
                    self.handle
                        .send(NetworkCommand::Respond { request_id, body })
                        .await
                }
                NetworkEvent::Gossip { id, data, .. } => {
                    let verdict = self.judge(&data);
                    self.handle
                        .send(NetworkCommand::GossipVerdict { id, verdict })
                        .await
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
    }

    /// A request from the Noise-authenticated `peer`: the read requests a witness makes.
    fn answer(&self, peer: &str, body: &[u8]) -> FedResponse {
        if !self.shared.meshes_by_peer.contains_key(peer) {
            return FedResponse::error(
                "unknown_sender",
                format!("peer {peer} is not a mesh we know"),
                false,
            );
        }
        let request: FedRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return FedResponse::error("malformed", e.to_string(), true),
        };
        match request {
            FedRequest::Discovery => FedResponse::Discovery {
                record: Box::new(self.record.clone()),
            },
            FedRequest::Roots { scrolls } => {
                let ours = &self.scroll.notification;
                let roots = if scrolls.is_empty() || scrolls.contains(&ours.scroll) {
                    serde_json::to_value(ours).map(|v| vec![v])
                } else {
                    Ok(Vec::new())
                };
                match roots {
                    Ok(roots) => FedResponse::Roots { roots },
                    Err(e) => FedResponse::error("internal", e.to_string(), false),
                }
            }
            FedRequest::Evidence { ask } => self.scroll.evidence(&ask),
            _ => FedResponse::error(
                "unsupported",
                "a swarm node serves discovery, roots and evidence only",
                true,
            ),
        }
    }

    /// The node's `check_gossip`, then the verdict logged against the root it concerns.
    fn judge(&self, data: &[u8]) -> GossipVerdict {
        let verdict = check_gossip(&self.shared.keys, data);
        let hash = *blake3::hash(data).as_bytes();
        let shared = &self.shared;
        {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(&from) = shared.honest.get(&hash) {
                log.honest.insert(from, verdict);
                shared.honest_judged.fetch_add(1, Ordering::Relaxed);
            } else if hash == shared.forged {
                log.forged.push(verdict);
                shared.forged_judged.fetch_add(1, Ordering::Relaxed);
            } else {
                log.stray += 1;
            }
        }
        shared.progress.notify_one();
        verdict
    }
}

/// Application validation of a gossiped anchor notification, as the node's `check_gossip`:
/// parsed, its root signed by the mesh it names (a key we hold); a mesh we hold no key for
/// is ignored. Any peer may publish it (witnesses pass on the roots they verified): the
/// mesh's signature is what counts, not the publisher.
fn check_gossip(keys: &HashMap<MeshId, PublicKey>, data: &[u8]) -> GossipVerdict {
    let Ok(n) = parse::<AnchorNotification>(data) else {
        return GossipVerdict::Reject;
    };
    let Some(key) = keys.get(&n.mesh_id) else {
        return GossipVerdict::Ignore;
    };
    if n.verify_root(key).is_err() {
        return GossipVerdict::Reject;
    }
    GossipVerdict::Accept
}

impl witness::ProvingLog for MemScroll {
    fn size(&self) -> u64 {
        self.tree.len()
    }
    fn root_at(&self, size: u64) -> Result<Blake3Hash, String> {
        self.tree
            .root_at(size)
            .map(Blake3Hash::from_bytes)
            .map_err(|e| e.to_string())
    }
    fn prove_consistency(
        &self,
        old: u64,
        new: u64,
    ) -> Result<vm_receipts::proof::ConsistencyProofJson, String> {
        self.tree
            .prove_consistency(old, new)
            .map(Into::into)
            .map_err(|e| e.to_string())
    }
    fn line(&self, sequence: u64) -> Result<String, String> {
        usize::try_from(sequence)
            .ok()
            .and_then(|s| self.lines.get(s))
            .cloned()
            .ok_or_else(|| format!("no receipt {sequence}"))
    }
    fn prove_inclusion(
        &self,
        sequence: u64,
        size: u64,
    ) -> Result<vm_receipts::proof::InclusionProofJson, String> {
        self.tree
            .prove_inclusion(sequence, size)
            .map(Into::into)
            .map_err(|e| e.to_string())
    }
}

/// A started node, as the coordinator holds it.
struct Node {
    handle: NetworkHandle,
    record: DiscoveryRecord,
    log: Arc<Mutex<GossipLog>>,
    server: tokio::task::JoinHandle<()>,
}

/// The scenario on the current runtime.
async fn scenario(n: usize, seed: u64) -> anyhow::Result<Report> {
    let k = NEIGHBOURS.min(n - 1);
    let now = now()?;
    let members = (0..n)
        .map(|i| Member::new(seed, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scrolls = members
        .iter()
        .enumerate()
        .map(|(i, m)| MemScroll::build(m, seed, i, now).map(Arc::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rng = ChaCha20Rng::from_seed(derive(seed, "scenario", 0));
    let forger = rng.random_range(0..n);
    let forged = forge(&members[forger], &scrolls[forger], seed, now)?;
    let shared = Arc::new(Shared {
        keys: members
            .iter()
            .map(|m| (m.mesh_id.clone(), m.public_key))
            .collect(),
        meshes_by_peer: members
            .iter()
            .map(|m| (m.peer_id.clone(), m.mesh_id.clone()))
            .collect(),
        honest: scrolls
            .iter()
            .enumerate()
            .map(|(i, s)| (*blake3::hash(&s.root_json).as_bytes(), i))
            .collect(),
        forged: *blake3::hash(&forged).as_bytes(),
        events: AtomicU64::new(0),
        honest_judged: AtomicU64::new(0),
        forged_judged: AtomicU64::new(0),
        progress: Notify::new(),
    });
    let (stop, stopped) = watch::channel(false);
    // Requests sent (DHT puts and gets, request-response) and gossip messages published.
    let mut messages = 0u64;

    let nodes = step(
        "start",
        START_BUDGET,
        start(&members, &scrolls, &shared, &stopped, &mut rng, now, seed),
    )
    .await?;
    step("settle", SETTLE_BUDGET, settle(&nodes)).await?;
    // The step's own budget reports which records are missing; the outer one is a backstop.
    messages += step(
        "publish",
        PUBLISH_BUDGET + SHUTDOWN_BUDGET,
        publish_records(&nodes, PUBLISH_BUDGET),
    )
    .await?;
    let (lookups, sent) = step("discovery", DISCOVERY_BUDGET, discover(&nodes, k)).await?;
    messages += sent;
    let dht_discovery = check_lookups(&members, &lookups);

    messages += step(
        "gossip",
        GOSSIP_PUBLISH_BUDGET,
        gossip_roots(&nodes, &scrolls),
    )
    .await?;
    let expected = (n * (n - 1)) as u64;
    let all_judged = wait_for(&shared, GOSSIP_DELIVERY_BUDGET, |s| {
        s.honest_judged.load(Ordering::Relaxed) >= expected
    })
    .await;
    let gossip_delivery = check_delivery(&nodes, all_judged);

    messages += step(
        "forged gossip",
        FORGED_BUDGET,
        gossip_forged(&nodes[forger].handle, forged),
    )
    .await?;
    if wait_for(&shared, FORGED_BUDGET, |s| {
        s.forged_judged.load(Ordering::Relaxed) > 0
    })
    .await
    {
        tokio::time::sleep(FORGED_GRACE).await;
    }
    let forged_gossip_rejected = check_forged(&nodes, forger);

    let witnessed = step(
        "witness",
        WITNESS_BUDGET,
        witness_round(&nodes, &scrolls, &lookups, k, seed, now),
    )
    .await?;
    messages += 2 * witnessed.len() as u64;
    let (witness_round, verified) = check_witnessing(&witnessed);

    let mut dropped = 0;
    for node in &nodes {
        if let Ok(status) = node.handle.status().await {
            dropped += status.counters.events_dropped;
        }
    }
    step("shutdown", SHUTDOWN_BUDGET, shutdown(nodes, stop)).await?;

    let mut outcomes: Vec<String> = Vec::new();
    outcomes.extend(lookups.iter().map(|l| {
        format!(
            "lookup {} {} {}",
            l.from,
            l.target,
            if l.found.is_ok() { "found" } else { "missing" }
        )
    }));
    outcomes.extend(gossip_delivery.1.iter().cloned());
    outcomes.push(format!(
        "forged by {forger}: accepted {}",
        forged_gossip_rejected.1
    ));
    outcomes.extend(witnessed.iter().map(|w| {
        // The root names the run's content (sizes and receipts come from the seed).
        let root = &scrolls[w.target].root;
        let head = format!(
            "witness {} {} root {} {}",
            w.witness, w.target, root.size, root.root
        );
        match &w.verdict {
            Ok(Verdict::Verified {
                samples_checked, ..
            }) => format!("{head}: verified {samples_checked} samples"),
            Ok(other) => format!("{head}: {other:?}"),
            Err(e) => format!("{head}: error {e}"),
        }
    }));
    outcomes.sort();
    let trace_hash = blake3::hash(outcomes.join("\n").as_bytes())
        .to_hex()
        .to_string();

    Ok(Report {
        scenario: SCENARIO.into(),
        meshes: n,
        seed,
        events: shared.events.load(Ordering::Relaxed),
        messages,
        dropped,
        witness_checks: witnessed.iter().filter(|w| w.verdict.is_ok()).count() as u64,
        attestations: verified,
        invariants: vec![
            dht_discovery,
            gossip_delivery.0,
            forged_gossip_rejected.0,
            witness_round,
        ],
        trace_hash,
        replay: replay(n, seed),
        ..Report::default()
    })
}

/// The forged root: the forger's own mesh id (so only the signature check can catch it), a
/// root its scroll never had, signed by another key, anchored like a real one.
fn forge(
    member: &Member,
    scroll: &MemScroll,
    seed: u64,
    now: Timestamp,
) -> anyhow::Result<Vec<u8>> {
    let wrong_key = MeshKey::from_seed(&derive(seed, "forger's wrong key", 0));
    let root = SignedRoot::new(
        &wrong_key,
        member.mesh_id.clone(),
        scroll.root.scroll.clone(),
        scroll.root.size,
        Blake3Hash::from_bytes(derive(seed, "forged root", 0)),
        now,
    )?;
    let batch = Batch::new(vec![root.clone()])?;
    let anchor = anchor_local(&wrong_key, &member.mesh_id, &batch.root(), now);
    let notification = AnchorNotification::new(root, batch.proof(0, &anchor)?);
    Ok(serde_json::to_vec(&notification)?)
}

/// The peer manager's target and the connection limit for a swarm of `n`: room for every
/// peer (two connections each, the per-peer limit), so the manager never trims.
///
/// With a target below the swarm size (the node's default is 25, the swarm benchmark's 20)
/// the swarm churns: Kademlia's queries dial peers the manager closes again within a
/// second (it protects peers with requests in flight, not with DHT queries in flight). The
/// runs that chose this, with target 20 on 2 cores: at 50 nodes 17–50 s of churn (about 20
/// connections closed per node per second), DHT puts of 2–10 s meanwhile and requests
/// failing with "connection closed"; at 100 nodes ~400 connections closed per second with
/// no end within 90 s, Noise handshakes (X25519) on top of the profile and status round
/// trips of 200 ms. That is the network crate's to settle; this scenario measures the
/// protocol flows over a formed swarm.
fn peer_limits(n: usize) -> (usize, u32) {
    (n, u32::try_from(2 * n).unwrap_or(u32::MAX))
}

/// Step 1: the networks, their discovery records (built by the real engine over an
/// in-memory store, as the node builds its own), and their event loops.
async fn start(
    members: &[Member],
    scrolls: &[Arc<MemScroll>],
    shared: &Arc<Shared>,
    stopped: &watch::Receiver<bool>,
    rng: &mut ChaCha20Rng,
    now: Timestamp,
    seed: u64,
) -> anyhow::Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        let mut config = NetworkConfig::new(member.key.clone(), Arc::new(move || now));
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        config.gossip_initial_delay = GOSSIP_INITIAL_DELAY;
        config.gossip_heartbeat = GOSSIP_HEARTBEAT;
        // No trimming inside the swarm: see [`peer_limits`].
        (config.target_peers, config.max_connections) = peer_limits(members.len());
        config.request_timeout = REQUEST_TIMEOUT;
        config.query_timeout = QUERY_TIMEOUT;
        if i > 0 {
            let mut seeds = vec![0];
            let other = rng.random_range(0..i);
            if other != 0 {
                seeds.push(other);
            }
            for s in seeds {
                let addr = nodes[s].handle.listen_addrs().into_iter().next();
                config
                    .bootstrap
                    .push(addr.ok_or_else(|| anyhow!("node {s} listens on no address"))?);
            }
        }
        let (handle, events) = vm_network::spawn(config)
            .await
            .with_context(|| format!("starting node {i}'s network"))?;
        let record = discovery_record(member, i, &handle, now, seed).await?;
        let log = Arc::new(Mutex::new(GossipLog::default()));
        let server = Server {
            handle: handle.clone(),
            scroll: scrolls[i].clone(),
            record: record.clone(),
            shared: shared.clone(),
            log: log.clone(),
        };
        let server = tokio::spawn(server.run(events, stopped.clone()));
        nodes.push(Node {
            handle,
            record,
            log,
            server,
        });
    }
    Ok(nodes)
}

/// The record the node's engine signs: its listen addresses (without `/p2p/`), the
/// Compliance scroll offered. redb runs on a blocking thread even in memory (the node
/// keeps redb off the executor too).
async fn discovery_record(
    member: &Member,
    index: usize,
    handle: &NetworkHandle,
    now: Timestamp,
    seed: u64,
) -> anyhow::Result<DiscoveryRecord> {
    let mut config = EngineConfig::new(format!("swarm node {index}"));
    config.multiaddrs = handle
        .listen_addrs()
        .iter()
        .map(|a| a.split("/p2p/").next().unwrap_or(a).to_owned())
        .collect();
    config.scrolls_available = vec![scroll_name()?];
    let (mesh_id, key) = (member.mesh_id.clone(), member.key.clone());
    let engine_seed = derive(seed, "engine", index);
    tokio::task::spawn_blocking(move || -> anyhow::Result<DiscoveryRecord> {
        let store = Store::in_memory().context("in-memory store")?;
        let mut engine = Engine::open(mesh_id, key, config, store, 0, engine_seed)
            .context("opening the engine")?;
        Ok(engine.discovery_record(now)?)
    })
    .await
    .context("the engine task panicked")?
    .with_context(|| format!("node {index}'s discovery record"))
}

/// Step 1b: waits until the swarm has formed: Kademlia's bootstrap dials peer after peer
/// for seconds after the nodes start (tens of seconds at 100 nodes on 2 cores, most of it
/// Noise handshakes), and DHT queries, gossip and requests made meanwhile queue behind it.
/// Formed: over [`SETTLE_QUIET`], no routing table in the swarm changed and its connections
/// changed by at most 0.2 % (a few close and reopen all the time: simultaneous dials, idle
/// timeouts; while forming they grow by 3–5 % a second).
async fn settle(nodes: &[Node]) -> anyhow::Result<()> {
    let mut last: Option<(u64, usize)> = None;
    loop {
        // All at once: on a loaded runtime each answer waits for its node's task, and one
        // after the other a poll of 100 nodes took 20 s.
        let mut polls = JoinSet::new();
        for node in nodes {
            let handle = node.handle.clone();
            polls.spawn(async move { handle.status().await });
        }
        let (mut connections, mut routing) = (0u64, 0usize);
        while let Some(status) = polls.join_next().await {
            let status = status.context("a status task panicked")??;
            connections += u64::from(status.connections);
            routing += status.routing_table;
        }
        if let Some((c, r)) = last
            && r == routing
            && c.abs_diff(connections) <= (c / 500).max(2)
        {
            return Ok(());
        }
        last = Some((connections, routing));
        tokio::time::sleep(SETTLE_QUIET).await;
    }
}

/// Step 2a: every node publishes its record, retrying until a peer stores it. Returns the
/// puts sent. If the budget runs out, the error names the nodes still trying and why.
async fn publish_records(nodes: &[Node], budget: Duration) -> anyhow::Result<u64> {
    let pending: Arc<Mutex<HashMap<usize, String>>> = Arc::new(Mutex::new(
        (0..nodes.len())
            .map(|i| (i, "no answer yet".to_owned()))
            .collect(),
    ));
    let mut tasks = JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let handle = node.handle.clone();
        let value = serde_json::to_vec(&node.record)?;
        let pending = pending.clone();
        tasks.spawn(async move {
            let mut attempts = 0u64;
            loop {
                attempts += 1;
                let result = handle.publish_record(value.clone()).await;
                {
                    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(()) => {
                            pending.remove(&i);
                            return Ok(attempts);
                        }
                        // Our own record refused: no retry mends that.
                        Err(e @ NetworkError::Record(_)) => {
                            return Err(anyhow!("node {i}'s record was refused: {e}"));
                        }
                        // No peer stored it yet: the DHT is still forming.
                        Err(e) => {
                            pending.insert(i, e.to_string());
                        }
                    }
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        });
    }
    let all = async {
        let mut sent = 0;
        while let Some(done) = tasks.join_next().await {
            sent += done.context("a publishing task panicked")??;
        }
        Ok::<_, anyhow::Error>(sent)
    };
    match tokio::time::timeout(budget, all).await {
        Ok(sent) => sent,
        Err(_) => {
            let pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            let mut left: Vec<_> = pending.iter().collect();
            left.sort();
            Err(anyhow!(
                "{} records not stored by any peer within {} s; first: {:?}",
                left.len(),
                budget.as_secs(),
                &left[..left.len().min(5)]
            ))
        }
    }
}

/// One DHT lookup of a ring neighbour's record.
struct Lookup {
    from: usize,
    target: usize,
    found: Result<DiscoveryRecord, String>,
}

/// The `k` ring neighbours of `i` in a swarm of `n`.
fn ring(i: usize, n: usize, k: usize) -> impl Iterator<Item = usize> {
    (1..=k).map(move |d| (i + d) % n)
}

/// Step 2b: every node looks up its ring neighbours by mesh id. Returns the lookups and
/// the gets sent.
async fn discover(nodes: &[Node], k: usize) -> anyhow::Result<(Vec<Lookup>, u64)> {
    let n = nodes.len();
    let mut tasks = JoinSet::new();
    for (from, node) in nodes.iter().enumerate() {
        for target in ring(from, n, k) {
            let handle = node.handle.clone();
            let mesh_id = nodes[target].record.mesh_id.clone();
            tasks.spawn(async move {
                let mut attempts = 0u64;
                let found = loop {
                    attempts += 1;
                    match handle.find_record(mesh_id.clone()).await {
                        Ok(record) => break Ok(record),
                        Err(e) if attempts >= u64::from(LOOKUP_ATTEMPTS) => {
                            break Err(e.to_string());
                        }
                        Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
                    }
                };
                (
                    Lookup {
                        from,
                        target,
                        found,
                    },
                    attempts,
                )
            });
        }
    }
    let mut lookups = Vec::with_capacity(n * k);
    let mut sent = 0;
    while let Some(done) = tasks.join_next().await {
        let (lookup, attempts) = done.context("a lookup task panicked")?;
        lookups.push(lookup);
        sent += attempts;
    }
    lookups.sort_by_key(|l| (l.from, l.target));
    Ok((lookups, sent))
}

/// `dht_discovery`: every lookup returned the neighbour's record, signed by the key the
/// neighbour holds, for its mesh and peer.
fn check_lookups(members: &[Member], lookups: &[Lookup]) -> InvariantResult {
    let mut violation = None;
    for l in lookups {
        let expected = &members[l.target];
        let problem = match &l.found {
            Err(e) => Some(format!("not found: {e}")),
            Ok(r) if r.mesh_id != expected.mesh_id => Some(format!("record of {}", r.mesh_id)),
            Ok(r) if r.public_key != expected.public_key || r.peer_id != expected.peer_id => {
                Some("record under another key".to_owned())
            }
            Ok(r) => r
                .verify(&expected.public_key)
                .err()
                .map(|e| format!("signature: {e}")),
        };
        if let Some(problem) = problem {
            violation = Some(format!(
                "node {} looking up node {} ({}): {problem}",
                l.from, l.target, expected.mesh_id
            ));
            break;
        }
    }
    InvariantResult {
        name: INVARIANTS[0],
        checks: lookups.len() as u64,
        violation,
    }
}

/// Step 3a: every node gossips its root, node `i` [`GOSSIP_SPACING`]` × i` after the first,
/// each retrying while it has no subscribed peer yet. Returns the messages published.
async fn gossip_roots(nodes: &[Node], scrolls: &[Arc<MemScroll>]) -> anyhow::Result<u64> {
    let mut tasks = JoinSet::new();
    for (i, (node, scroll)) in nodes.iter().zip(scrolls).enumerate() {
        let handle = node.handle.clone();
        let data = scroll.root_json.clone();
        let delay = GOSSIP_SPACING * u32::try_from(i).unwrap_or(u32::MAX);
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            while handle.gossip(data.clone()).await.is_err() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a gossiping task panicked")?;
    }
    Ok(nodes.len() as u64)
}

/// Step 3c: the forger publishes the forged root.
async fn gossip_forged(forger: &NetworkHandle, data: Vec<u8>) -> anyhow::Result<u64> {
    while forger.gossip(data.clone()).await.is_err() {
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    Ok(1)
}

/// Waits until `done` holds, at most `budget`; whether it came to hold.
async fn wait_for(shared: &Shared, budget: Duration, done: impl Fn(&Shared) -> bool) -> bool {
    tokio::time::timeout(budget, async {
        while !done(shared) {
            shared.progress.notified().await;
        }
    })
    .await
    .is_ok()
}

/// `gossip_delivery` (full delivery): every node accepted every other node's root and
/// rejected none. Also returns the delivery outcomes for the trace.
fn check_delivery(nodes: &[Node], all_judged: bool) -> (InvariantResult, Vec<String>) {
    let n = nodes.len();
    let mut outcomes = Vec::with_capacity(n * n);
    let mut missing = 0usize;
    let mut first: Option<String> = None;
    for (to, node) in nodes.iter().enumerate() {
        let log = node.log.lock().unwrap_or_else(PoisonError::into_inner);
        for from in (0..n).filter(|&f| f != to) {
            let verdict = log.honest.get(&from).copied();
            outcomes.push(format!("gossip {from} to {to}: {verdict:?}"));
            let problem = match verdict {
                Some(GossipVerdict::Accept) => None,
                Some(v) => Some(format!("node {to} judged node {from}'s honest root {v:?}")),
                None => {
                    missing += 1;
                    Some(format!("node {to} never received node {from}'s root"))
                }
            };
            if first.is_none() {
                first = problem;
            }
        }
        if log.stray > 0 && first.is_none() {
            first = Some(format!("node {to} received {} stray messages", log.stray));
        }
    }
    let violation = first.map(|f| {
        let waited = if all_judged {
            String::new()
        } else {
            format!(
                " (after {} s, {missing} of {} deliveries missing)",
                GOSSIP_DELIVERY_BUDGET.as_secs(),
                n * (n - 1)
            )
        };
        format!("{f}{waited}")
    });
    (
        InvariantResult {
            name: INVARIANTS[1],
            checks: (n * (n - 1)) as u64,
            violation,
        },
        outcomes,
    )
}

/// `forged_gossip_rejected`: no node accepted the forged root, and at least one judged it.
/// Also returns how many accepted it.
fn check_forged(nodes: &[Node], forger: usize) -> (InvariantResult, usize) {
    let mut seen = 0u64;
    let mut accepted = 0usize;
    let mut first = None;
    for (i, node) in nodes.iter().enumerate() {
        let log = node.log.lock().unwrap_or_else(PoisonError::into_inner);
        seen += log.forged.len() as u64;
        for v in log.forged.iter().filter(|v| **v != GossipVerdict::Reject) {
            if *v == GossipVerdict::Accept {
                accepted += 1;
            }
            first.get_or_insert_with(|| format!("node {i} judged the forged root {v:?}"));
        }
    }
    if seen == 0 {
        first = Some(format!(
            "no node received node {forger}'s forged root within {} s: the check proved nothing",
            FORGED_BUDGET.as_secs()
        ));
    }
    (
        InvariantResult {
            name: INVARIANTS[2],
            checks: seen,
            violation: first,
        },
        accepted,
    )
}

/// One witness check of a ring neighbour's root.
struct Witnessed {
    witness: usize,
    target: usize,
    verdict: Result<Verdict, String>,
}

/// Step 4: every node witnesses its ring neighbours, all checks at once.
async fn witness_round(
    nodes: &[Node],
    scrolls: &[Arc<MemScroll>],
    lookups: &[Lookup],
    k: usize,
    seed: u64,
    now: Timestamp,
) -> anyhow::Result<Vec<Witnessed>> {
    let found: HashMap<(usize, usize), &DiscoveryRecord> = lookups
        .iter()
        .filter_map(|l| l.found.as_ref().ok().map(|r| ((l.from, l.target), r)))
        .collect();
    let n = nodes.len();
    let mut tasks = JoinSet::new();
    for (witness, node) in nodes.iter().enumerate() {
        for target in ring(witness, n, k) {
            let Some(record) = found.get(&(witness, target)) else {
                tasks.spawn(async move {
                    Witnessed {
                        witness,
                        target,
                        verdict: Err("its record was not found in the DHT".into()),
                    }
                });
                continue;
            };
            let handle = node.handle.clone();
            let record = (*record).clone();
            let gossiped = scrolls[target].root.clone();
            let rng = ChaCha20Rng::from_seed(derive(seed, "samples", witness * n + target));
            tasks.spawn(async move {
                let verdict = witness_one(&handle, &record, &gossiped, rng, now).await;
                Witnessed {
                    witness,
                    target,
                    verdict,
                }
            });
        }
    }
    let mut done = Vec::with_capacity(n * k);
    while let Some(w) = tasks.join_next().await {
        done.push(w.context("a witness task panicked")?);
    }
    done.sort_by_key(|w| (w.witness, w.target));
    Ok(done)
}

/// What the swarm's witness core is told: the keys from the DHT records; every mesh may
/// be witnessed (the swarm scenario has no agreements) and nothing was witnessed before.
struct RecordFacts {
    keys: BTreeMap<MeshId, PublicKey>,
}

impl Facts for RecordFacts {
    fn authorize(
        &self,
        _peer: &MeshId,
        _request: PeerRequest<'_>,
        _now: Timestamp,
    ) -> Result<Option<vm_storage::AgreementRecord>, EngineError> {
        Ok(None)
    }
    fn peer_key(&self, peer: &MeshId) -> Result<Option<PublicKey>, EngineError> {
        Ok(self.keys.get(peer).copied())
    }
    fn witness_state(
        &self,
        _peer: &MeshId,
        _scroll: &ScrollName,
    ) -> Result<Option<vm_storage::WitnessState>, EngineError> {
        Ok(None)
    }
}

/// One check, run by the node's witness core over real request-response: the root the
/// mesh serves now, evidence for samples, the verdict. This drives the core's outputs and
/// decides nothing; the scenario's own assertion is that the root checked is the one the
/// mesh gossiped.
async fn witness_one(
    handle: &NetworkHandle,
    record: &DiscoveryRecord,
    gossiped: &SignedRoot,
    rng: ChaCha20Rng,
    now: Timestamp,
) -> Result<Verdict, String> {
    let ask = |request: FedRequest| async move {
        let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let mut attempt = 1;
        let response = loop {
            match handle
                .request(&record.peer_id, record.multiaddrs.clone(), body.clone())
                .await
            {
                Ok(response) => break response,
                // The connection went under the request (two dials raced, a connection
                // closed): the node's outbound queue resends the same way.
                Err(RequestError::Failed(_)) if attempt < REQUEST_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        serde_json::from_slice::<FedResponse>(&response).map_err(|e| e.to_string())
    };
    let facts = RecordFacts {
        keys: BTreeMap::from([(record.mesh_id.clone(), record.public_key)]),
    };
    let mut rng = rng;
    let mut seed = [0u8; 32];
    rand::Rng::fill_bytes(&mut rng, &mut seed);
    let me = MeshKey::from_seed(&seed);
    let config = CoreConfig {
        samples: SAMPLES,
        drift_secs: DRIFT_SECS,
        gossip_verified: false,
        ..CoreConfig::default()
    };
    let mut core = WitnessCore::new(
        MeshId::from_name("swarm-witness").map_err(|e| e.to_string())?,
        me.public_key(),
        config,
        seed,
    );
    let now_ms = u64::try_from(now.unix()).unwrap_or(0) * 1000;
    let mut outputs = core.on_due(now_ms, &facts, &record.mesh_id, &gossiped.scroll, None);
    loop {
        let mut next = Vec::new();
        for output in outputs {
            match output {
                CoreOutput::Request { id, request, .. } => {
                    let answer = match ask(FedRequest::from_witness(request)).await {
                        Ok(response) => response.into_witness_answer(),
                        Err(e) => Answer::Failed(e),
                    };
                    next.extend(core.on_answer(now_ms, &facts, id, answer));
                }
                CoreOutput::Gossip(_) => {}
                CoreOutput::Finished { outcome, .. } => {
                    return match outcome {
                        Outcome::Report(report) => {
                            if report.notification.signed_root() != *gossiped {
                                return Err("the anchored root is not the one gossiped".into());
                            }
                            Ok(report.verdict)
                        }
                        Outcome::NoVerdict(e) => Err(e),
                        other => Err(format!("no verdict: {other:?}")),
                    };
                }
            }
        }
        if next.is_empty() {
            return Err("the witness core stopped without an outcome".into());
        }
        outputs = next;
    }
}

/// `witness_round`: every check verified. Also returns the attestations (verified checks).
fn check_witnessing(witnessed: &[Witnessed]) -> (InvariantResult, u64) {
    let mut verified = 0;
    let mut first = None;
    for w in witnessed {
        let problem = match &w.verdict {
            Ok(Verdict::Verified { .. }) => {
                verified += 1;
                None
            }
            Ok(Verdict::Discrepancy { finding, .. }) => Some(format!(
                "discrepancy {:?}: {:?}",
                finding.kind, finding.details
            )),
            Ok(Verdict::Stale) => Some("stale".to_owned()),
            Err(e) => Some(format!("no verdict: {e}")),
        };
        if let Some(problem) = problem {
            first.get_or_insert_with(|| {
                format!("node {} witnessing node {}: {problem}", w.witness, w.target)
            });
        }
    }
    (
        InvariantResult {
            name: INVARIANTS[3],
            checks: witnessed.len() as u64,
            violation: first,
        },
        verified,
    )
}

/// Step 5: every event loop stops and drops its handle; the coordinator drops the rest.
async fn shutdown(nodes: Vec<Node>, stop: watch::Sender<bool>) -> anyhow::Result<()> {
    // A send error means every loop has ended already.
    let _ = stop.send(true);
    for (i, node) in nodes.into_iter().enumerate() {
        drop(node.handle);
        node.server
            .await
            .with_context(|| format!("node {i}'s event loop panicked"))?;
    }
    Ok(())
}
