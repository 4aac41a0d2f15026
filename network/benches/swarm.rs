//! The swarm benchmark (issue 4): N real nodes in one process on loopback (N = 10, 50, 100).
//!
//! For each N it reports: the time of a DHT lookup by mesh id (and how many succeed), the
//! delivery latency of gossip to every subscriber (p50/p99 over 20 messages published 250 ms
//! apart from random nodes, each node validating each message before forwarding it, as the
//! node does), and connections and memory (RSS growth) per node. Beside them,
//! measured in the same run: one request-response round trip on loopback, the floor any DHT
//! hop pays.
//!
//! Run: `cargo bench -p vm-network --bench swarm` (VM_BENCH_QUICK=1: N = 10 only;
//! VM_BENCH_SIZES=50,100 for chosen sizes; VM_BENCH_NO_MANAGER=1 without the peer manager).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, missing_docs)] // wall-clock timing is what a benchmark does

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{RngExt, SeedableRng};
use tokio::sync::mpsc;
use vm_network::{GossipVerdict, NetworkCommand, NetworkConfig, NetworkEvent, NetworkHandle};
use vm_receipts::documents::{
    DiscoveryRecord, Endpoints, SignatureField, SignedDocument, TrustPolicy,
};
use vm_receipts::{MeshId, MeshKey, Timestamp};

fn now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_unix(i64::try_from(secs).unwrap()).unwrap()
}

fn key(i: usize) -> MeshKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    MeshKey::from_seed(&seed)
}

fn mesh(i: usize) -> MeshId {
    MeshId::from_name(&format!("bench-{i}")).unwrap()
}

fn record(i: usize, addrs: Vec<String>) -> DiscoveryRecord {
    let k = key(i);
    let public_key = k.public_key();
    let mut r = DiscoveryRecord {
        mesh_id: mesh(i),
        display_name: format!("bench {i}"),
        endpoints: Endpoints::default(),
        public_key,
        scrolls_available: Vec::new(),
        trust_policy: TrustPolicy {
            accepts_proposals: true,
            min_trust_level: 1.try_into().unwrap(),
            requires_mutual: true,
            extra: Default::default(),
        },
        attestations: Vec::new(),
        peer_id: public_key.peer_id(),
        multiaddrs: addrs
            .iter()
            .map(|a| a.split("/p2p/").next().unwrap().to_owned())
            .collect(),
        updated_at: now(),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    r.sign(&k).unwrap();
    r
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Every node's events: accept gossip (so it is forwarded) and report when each message
/// arrived.
fn collect(
    mut events: mpsc::Receiver<NetworkEvent>,
    net: NetworkHandle,
    arrivals: mpsc::UnboundedSender<(Vec<u8>, Instant)>,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Gossip { id, data, .. } = event {
                let _ = arrivals.send((data, Instant::now()));
                let _ = net
                    .send(NetworkCommand::GossipVerdict {
                        id,
                        verdict: GossipVerdict::Accept,
                    })
                    .await;
            }
        }
    });
}

async fn run(n: usize, no_manager: bool, rng: &mut rand_chacha::ChaCha8Rng) {
    let before = rss_bytes();
    let (arrive_tx, mut arrive_rx) = mpsc::unbounded_channel();
    let mut nodes: Vec<NetworkHandle> = Vec::new();
    let clock: vm_network::Clock = Arc::new(now);
    for i in 0..n {
        let mut c = NetworkConfig::new(key(i), clock.clone());
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        c.gossip_initial_delay = Duration::from_millis(200);
        c.gossip_heartbeat = Duration::from_millis(500);
        c.target_peers = 20;
        if no_manager {
            // For comparison only: no trimming and no connection cap.
            c.target_peers = usize::MAX;
            c.max_connections = u32::MAX;
        }
        c.query_timeout = Duration::from_secs(10);
        if i > 0 {
            c.bootstrap.push(nodes[0].listen_addrs()[0].clone());
            let other = rng.random_range(0..i);
            if other != 0 {
                c.bootstrap.push(nodes[other].listen_addrs()[0].clone());
            }
        }
        let (handle, events) = vm_network::spawn(c).await.unwrap();
        collect(events, handle.clone(), arrive_tx.clone());
        nodes.push(handle);
    }
    // Every node publishes its record.
    let mut published = 0;
    for (i, node) in nodes.iter().enumerate() {
        let value = serde_json::to_vec(&record(i, node.listen_addrs())).unwrap();
        for _ in 0..50 {
            if node.publish_record(value.clone()).await.is_ok() {
                published += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Every node's record looked up by mesh id, each from a random other node.
    let lookups = n;
    let mut times = Vec::new();
    let mut found = 0;
    for target in 0..n {
        let mut from = rng.random_range(0..n);
        if target == from {
            from = (from + 1) % n;
        }
        let t = Instant::now();
        let result = nodes[from].find_record(mesh(target)).await;
        times.push(t.elapsed());
        if result.is_ok_and(|r| r.mesh_id == mesh(target)) {
            found += 1;
        }
    }
    times.sort();

    // Gossip: messages from random nodes; every other node should receive each.
    while arrive_rx.try_recv().is_ok() {}
    let messages = 20;
    let mut sent_at = std::collections::HashMap::new();
    for m in 0..messages {
        let from = rng.random_range(0..n);
        let payload = format!("root {n} {m}").into_bytes();
        sent_at.insert(payload.clone(), Instant::now());
        let _ = nodes[from].gossip(payload).await;
        // Four messages a second across the swarm: far above the protocol's rate (each mesh
        // announces its roots once per anchor cycle) yet spaced so that the figure is
        // delivery latency, not a queue built up by 100 nodes sharing 2 cores.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut latencies = Vec::new();
    while Instant::now() < deadline && latencies.len() < messages * (n - 1) {
        if let Ok(Some((data, at))) =
            tokio::time::timeout(Duration::from_millis(200), arrive_rx.recv()).await
            && let Some(sent) = sent_at.get(&data)
        {
            latencies.push(at.duration_since(*sent));
        }
    }
    latencies.sort();
    let delivered = latencies.len();

    let mut conns = Vec::new();
    for node in &nodes {
        conns.push(node.status().await.unwrap().connections);
    }
    let after = rss_bytes();
    let mean_conns = conns.iter().map(|c| f64::from(*c)).sum::<f64>() / n as f64;
    let max_conns = conns.iter().max().copied().unwrap_or(0);
    let mem_per_node = after.saturating_sub(before) as f64 / n as f64 / (1024.0 * 1024.0);
    println!(
        "| {n} | {published}/{n} | {found}/{lookups} | {} | {} | {delivered}/{} | {} | {} | {mean_conns:.1} / {max_conns} | {mem_per_node:.2} MB |",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        messages * (n - 1),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
    );
    drop(nodes);
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// One request-response round trip between two nodes on loopback: the floor of a DHT hop.
async fn rtt_floor() -> Duration {
    let clock: vm_network::Clock = Arc::new(now);
    let mut ca = NetworkConfig::new(key(10_000), clock.clone());
    ca.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    let mut cb = NetworkConfig::new(key(10_001), clock);
    cb.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    let (a, _ae) = vm_network::spawn(ca).await.unwrap();
    let (b, mut be) = vm_network::spawn(cb).await.unwrap();
    let responder = b.clone();
    tokio::spawn(async move {
        while let Some(e) = be.recv().await {
            if let NetworkEvent::Request { request_id, .. } = e {
                let _ = responder
                    .send(NetworkCommand::Respond {
                        request_id,
                        body: b"{}".to_vec(),
                    })
                    .await;
            }
        }
    });
    let addrs = b.listen_addrs();
    a.request(b.peer_id(), addrs.clone(), b"{}".to_vec())
        .await
        .unwrap();
    let rounds = 500;
    let t = Instant::now();
    for _ in 0..rounds {
        a.request(b.peer_id(), addrs.clone(), b"{}".to_vec())
            .await
            .unwrap();
    }
    t.elapsed() / rounds
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    // VM_BENCH_SIZES=100 runs chosen sizes; VM_BENCH_NO_MANAGER=1 turns the peer manager off,
    // to see what it saves.
    let sizes: Vec<usize> = match std::env::var("VM_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) if quick => vec![10],
        Err(_) => vec![10, 50, 100],
    };
    let no_manager = std::env::var_os("VM_BENCH_NO_MANAGER").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let floor = rtt_floor().await;
        println!("request-response round trip on loopback (the floor of one DHT hop): {}", ms(floor));
        println!();
        println!("| nodes | records published | lookups by mesh id found | lookup p50 | lookup p99 | gossip deliveries | gossip p50 | gossip p99 | connections per node (mean / max) | memory per node |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
        for &n in &sizes {
            run(n, no_manager, &mut rng).await;
        }
    });
}
