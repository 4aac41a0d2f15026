//! Engines wired together through an in-memory message queue with a virtual clock: the
//! driver the engine-level tests share. Each node has a real redb store (a file, or redb's
//! in-memory backend) and a Federation log (a real scroll file, or an in-memory log), and can
//! be crashed at any of the driver's steps and restarted from what is on disk.

use std::collections::VecDeque;
use std::path::PathBuf;

use serde_json::{Map, Value};
use tempfile::TempDir;
use vaultmesh_federation::engine::{
    Command, Engine, EngineConfig, EngineError, Input, Output, PeerMessage,
};
use vaultmesh_federation::federation_log::{self, LogError, MemoryLog, ReceiptLog};
use vm_receipts::receipts::{FederationReceipt, parse_receipt};
use vm_receipts::scroll::Scroll;
use vm_receipts::{Blake3Hash, MeshId, MeshKey, ScrollName, Timestamp};
use vm_storage::{
    AgreementRecord, DiscrepancyRecord, OutgoingMessage, PeerEntry, PeerSource, ProposalRecord,
    Record, Store, WitnessState,
};

/// 2025-12-06T10:00:00Z, the seed's first timestamp.
pub const START: i64 = 1_765_015_200;

pub fn mesh(name: &str) -> MeshId {
    MeshId::from_name(name).expect("mesh id")
}

/// A Federation log: the real scroll, or memory.
pub enum Log {
    File(Box<Scroll>),
    Memory(MemoryLog),
}

impl ReceiptLog for Log {
    fn len(&self) -> u64 {
        match self {
            Log::File(s) => s.len(),
            Log::Memory(m) => m.len(),
        }
    }
    fn leaf(&self, sequence: u64) -> Result<Vec<u8>, LogError> {
        match self {
            Log::File(s) => s.leaf(sequence),
            Log::Memory(m) => m.leaf(sequence),
        }
    }
    fn append(&mut self, receipts: &[Map<String, Value>]) -> Result<(), LogError> {
        match self {
            Log::File(s) => ReceiptLog::append(s.as_mut(), receipts),
            Log::Memory(m) => m.append(receipts),
        }
    }
}

pub struct Node {
    pub id: MeshId,
    pub key: MeshKey,
    pub config: EngineConfig,
    /// The data directory, for file-backed nodes.
    pub dir: Option<TempDir>,
    pub engine: Engine,
    pub log: Log,
    restarts: u8,
}

impl Node {
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_owned())
    }

    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// Every receipt of the Federation log, typed.
    pub fn receipts(&self) -> Vec<FederationReceipt> {
        (0..self.log.len())
            .map(|i| {
                let leaf = self.log.leaf(i).expect("leaf");
                parse_receipt(&leaf).expect("a Federation receipt")
            })
            .collect()
    }

    /// Everything the node's state holds, as text: equal before and after a refused input
    /// means nothing changed.
    pub fn snapshot(&self) -> String {
        fn dump<R: Record>(store: &Store) -> String {
            store
                .all::<R>()
                .expect("read")
                .iter()
                .map(|r| serde_json::to_string(r).expect("json"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        let store = self.store();
        let pending = self.engine.pending_receipts().expect("pending");
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{pending:?}\nlog={}",
            dump::<PeerEntry>(store),
            dump::<ProposalRecord>(store),
            dump::<AgreementRecord>(store),
            dump::<OutgoingMessage>(store),
            dump::<WitnessState>(store),
            dump::<DiscrepancyRecord>(store),
            dump::<vm_storage::AnchoredRoot>(store),
            dump::<vm_storage::ReceivedAttestation>(store),
            self.log.len(),
        )
    }

    pub fn agreements(&self) -> Vec<AgreementRecord> {
        self.store().all().expect("agreements")
    }

    pub fn proposals(&self) -> Vec<ProposalRecord> {
        self.store().all().expect("proposals")
    }
}

/// A message on its way.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: usize,
    pub to: usize,
    pub message: PeerMessage,
    pub hash: Blake3Hash,
}

/// Where the driver may crash a node (after the engine committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Outputs not carried out at all: messages and receipts lost.
    AfterCommit,
    /// Messages sent, receipts not appended.
    BeforeAppend,
    /// Receipts appended, the engine not told.
    BeforeAck,
}

pub struct Net {
    pub nodes: Vec<Node>,
    pub now: Timestamp,
    pub queue: VecDeque<Envelope>,
    /// Outputs other than messages and receipts, by node.
    pub observed: Vec<(usize, Output)>,
    /// Every delivery: (from, to, message kind, error code if refused).
    pub deliveries: Vec<(usize, usize, &'static str, Option<&'static str>)>,
    /// Crash the node at the n-th crash point reached (counting from 1).
    pub crash_at: Option<u64>,
    pub crash_points_seen: u64,
    pub crashes: Vec<(usize, Step)>,
}

fn open_node(
    id: &MeshId,
    key: &MeshKey,
    config: &EngineConfig,
    dir: Option<&std::path::Path>,
    seed: [u8; 32],
) -> (Engine, Log) {
    let (store, log) = match dir {
        Some(dir) => {
            let store = Store::open(&dir.join("state.redb")).expect("open store");
            let (scroll, _) = Scroll::open(dir, &ScrollName::federation()).expect("open scroll");
            (store, Log::File(Box::new(scroll)))
        }
        None => (
            Store::in_memory().expect("store"),
            Log::Memory(MemoryLog::new()),
        ),
    };
    let engine = Engine::open(
        id.clone(),
        key.clone(),
        config.clone(),
        store,
        log.len(),
        seed,
    )
    .expect("engine");
    (engine, log)
}

impl Net {
    /// Nodes named `names`, each with its own key, on files (`on_disk`) or in memory.
    pub fn new(names: &[&str], on_disk: bool) -> Self {
        Self::with_configs(
            &names
                .iter()
                .map(|n| (*n, EngineConfig::new(format!("VaultMesh {n}"))))
                .collect::<Vec<_>>(),
            on_disk,
        )
    }

    pub fn with_configs(nodes: &[(&str, EngineConfig)], on_disk: bool) -> Self {
        let nodes = nodes
            .iter()
            .enumerate()
            .map(|(i, (name, config))| {
                let id = mesh(name);
                let key = MeshKey::from_seed(&[i as u8 + 1; 32]);
                let dir = on_disk.then(|| tempfile::tempdir().expect("tempdir"));
                let (engine, log) = open_node(
                    &id,
                    &key,
                    config,
                    dir.as_ref().map(|d| d.path()),
                    [i as u8; 32],
                );
                Node {
                    id,
                    key,
                    config: config.clone(),
                    dir,
                    engine,
                    log,
                    restarts: 0,
                }
            })
            .collect();
        Self {
            nodes,
            now: Timestamp::from_unix(START).expect("time"),
            queue: VecDeque::new(),
            observed: Vec::new(),
            deliveries: Vec::new(),
            crash_at: None,
            crash_points_seen: 0,
            crashes: Vec::new(),
        }
    }

    pub fn idx(&self, name: &str) -> usize {
        let id = mesh(name);
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("known node")
    }

    pub fn node(&self, name: &str) -> &Node {
        &self.nodes[self.idx(name)]
    }

    /// Every node learns every other's discovery record (as if from the DHT).
    pub fn discover_all(&mut self) {
        let records: Vec<_> = (0..self.nodes.len())
            .map(|i| {
                let now = self.now;
                self.nodes[i].engine.discovery_record(now).expect("record")
            })
            .collect();
        for i in 0..self.nodes.len() {
            for (j, record) in records.iter().enumerate() {
                if i != j {
                    self.apply(
                        i,
                        Input::Discovered {
                            record: record.clone(),
                            source: PeerSource::Dht,
                        },
                    )
                    .expect("discovered");
                }
            }
        }
    }

    /// Hands `input` to node `i` and carries out what it outputs.
    pub fn apply(&mut self, i: usize, input: Input) -> Result<(), EngineError> {
        let now = self.now;
        let outputs = self.nodes[i].engine.handle(now, input)?;
        self.carry_out(i, outputs);
        Ok(())
    }

    pub fn command(&mut self, name: &str, command: Command) -> Result<(), EngineError> {
        let i = self.idx(name);
        self.apply(i, Input::Command(command))
    }

    fn crash_point(&mut self, i: usize, step: Step) -> bool {
        self.crash_points_seen += 1;
        if self.crash_at == Some(self.crash_points_seen) {
            self.crashes.push((i, step));
            self.restart(i);
            return true;
        }
        false
    }

    /// Drops node `i`'s engine and log with whatever was in flight inside it, then opens
    /// both again from disk and lets the Federation log catch up (the node's start-up).
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let dir = node.data_dir().expect("only file-backed nodes restart");
        node.restarts = node.restarts.wrapping_add(1);
        let seed = [100u8.wrapping_add(node.restarts); 32];
        // Drop the old handles first: redb and the scroll lock their files.
        let (placeholder_engine, placeholder_log) =
            open_node(&node.id, &node.key, &node.config, None, seed);
        drop(std::mem::replace(&mut node.engine, placeholder_engine));
        drop(std::mem::replace(&mut node.log, placeholder_log));
        let (engine, log) = open_node(&node.id, &node.key, &node.config, Some(&dir), seed);
        node.engine = engine;
        node.log = log;
        federation_log::flush(&mut node.engine, &mut node.log, self.now).expect("recover");
    }

    fn carry_out(&mut self, i: usize, outputs: Vec<Output>) {
        if self.crash_point(i, Step::AfterCommit) {
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
                    let to = self.nodes.iter().position(|n| n.id == to).expect("peer");
                    self.queue.push_back(Envelope {
                        from: i,
                        to,
                        message,
                        hash: message_hash,
                    });
                }
                Output::Receipt { .. } => receipts = true,
                other => self.observed.push((i, other)),
            }
        }
        if !receipts || self.crash_point(i, Step::BeforeAppend) {
            return;
        }
        let node = &mut self.nodes[i];
        federation_log::append_pending(&node.engine, &mut node.log).expect("append");
        if self.crash_point(i, Step::BeforeAck) {
            return;
        }
        let node = &mut self.nodes[i];
        let size = node.log.len();
        node.engine
            .handle(self.now, Input::ReceiptsStored { size })
            .expect("ack");
    }

    /// Delivers envelope `k` of the queue and reports the outcome to its sender.
    pub fn deliver(&mut self, k: usize) -> Option<&'static str> {
        let env = self.queue.remove(k).expect("envelope");
        let from_id = self.nodes[env.from].id.clone();
        let to_id = self.nodes[env.to].id.clone();
        let kind = env.message.kind();
        let result = self.apply(
            env.to,
            Input::Peer {
                from: from_id,
                message: env.message,
            },
        );
        let (report, code) = match &result {
            Ok(()) => (
                Input::Delivered {
                    to: to_id,
                    message_hash: env.hash,
                },
                None,
            ),
            Err(e) if e.is_acknowledgement() => (
                Input::Delivered {
                    to: to_id,
                    message_hash: env.hash,
                },
                Some(e.code()),
            ),
            Err(e) => (
                Input::DeliveryFailed {
                    to: to_id,
                    message_hash: env.hash,
                    reason: e.to_string(),
                    permanent: e.is_permanent(),
                },
                Some(e.code()),
            ),
        };
        self.deliveries.push((env.from, env.to, kind, code));
        self.apply(env.from, report).expect("report");
        code
    }

    /// Delivers everything in order, including what deliveries cause.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            if self.queue.is_empty() {
                return;
            }
            self.deliver(0);
        }
        panic!("messages still flowing after 10000 deliveries");
    }

    /// Moves the clock by `secs` and ticks every node.
    pub fn advance(&mut self, secs: i64) {
        self.now = self.now.plus_seconds(secs);
        for i in 0..self.nodes.len() {
            self.apply(i, Input::Tick).expect("tick");
        }
    }

    /// Delivers and ticks (jumping the clock to each next timer) until nothing is in flight
    /// and no timer is due within `horizon_secs`.
    pub fn settle(&mut self, horizon_secs: i64) {
        let until = self.now.plus_seconds(horizon_secs);
        for _ in 0..10_000 {
            self.run();
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.engine.poll_timeout().expect("timeout"))
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() {
                        self.apply(i, Input::Tick).expect("tick");
                    }
                }
                _ => return,
            }
        }
        panic!("still busy after 10000 rounds");
    }
}
