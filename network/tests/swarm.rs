//! The swarm on real loopback sockets: request-response, DHT lookups by mesh id, gossip
//! validation, and refusal of oversized requests and invalid DHT records (each counted,
//! penalised, and changing nothing). Raw libp2p peers stand in for misbehaving nodes, since
//! our own network refuses to send invalid records.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::kad::{self, Quorum, Record, RecordKey, store::MemoryStore, store::RecordStore};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identity, noise, tcp, yamux};
use tokio::sync::mpsc;
use tokio::time::timeout;
use vm_network::record::mesh_key;
use vm_network::{
    GossipVerdict, KAD_PROTOCOL, NetworkCommand, NetworkConfig, NetworkError, NetworkEvent,
    NetworkHandle, ROOTS_TOPIC, spawn,
};
use vm_receipts::documents::{
    DiscoveryRecord, Endpoints, SignatureField, SignedDocument, TrustPolicy,
};
use vm_receipts::{MeshId, MeshKey, Timestamp};

const NOW: i64 = 1_790_000_000;

fn now() -> Timestamp {
    Timestamp::from_unix(NOW).unwrap()
}

fn key(n: u8) -> MeshKey {
    MeshKey::from_seed(&[n; 32])
}

fn config(n: u8) -> NetworkConfig {
    let mut c = NetworkConfig::new(key(n), Arc::new(now));
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.gossip_initial_delay = Duration::from_millis(100);
    c.gossip_heartbeat = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(5);
    c.query_timeout = Duration::from_secs(5);
    c
}

async fn node(
    n: u8,
    bootstrap: &[&NetworkHandle],
) -> (NetworkHandle, mpsc::Receiver<NetworkEvent>) {
    let mut c = config(n);
    c.bootstrap = bootstrap
        .iter()
        .map(|h| h.listen_addrs()[0].clone())
        .collect();
    spawn(c).await.unwrap()
}

fn record(n: u8, name: &str) -> DiscoveryRecord {
    let k = key(n);
    let public_key = k.public_key();
    let mut r = DiscoveryRecord {
        mesh_id: MeshId::from_name(name).unwrap(),
        display_name: name.into(),
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
        multiaddrs: Vec::new(),
        updated_at: now(),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    r.sign(&k).unwrap();
    r
}

/// Waits for the first event matching `pick`, up to 10 s.
async fn next<T>(
    events: &mut mpsc::Receiver<NetworkEvent>,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.expect("network task ended");
            if let Some(t) = pick(event) {
                return t;
            }
        }
    })
    .await
    .expect("no matching network event within 10 s")
}

// A request reaches the peer with the sender's authenticated peer id, and the answer comes
// back; a request over 1 MiB is refused by the reader, counted and penalised, and the node
// never sees it.
#[tokio::test]
async fn requests_round_trip_and_oversized_ones_are_refused() {
    let (a, _a_events) = node(1, &[]).await;
    let (b, mut b_events) = node(2, &[]).await;
    let b_addrs = b.listen_addrs();
    let b_peer = b.peer_id().to_owned();
    let a_peer = a.peer_id().to_owned();

    let asking = tokio::spawn({
        let a = a.clone();
        let (b_peer, b_addrs) = (b_peer.clone(), b_addrs.clone());
        async move {
            a.request(&b_peer, b_addrs, br#"{"request":"discovery"}"#.to_vec())
                .await
        }
    });
    let (id, from, body) = next(&mut b_events, |e| match e {
        NetworkEvent::Request {
            request_id,
            peer,
            body,
        } => Some((request_id, peer, body)),
        _ => None,
    })
    .await;
    assert_eq!(from, a_peer);
    assert_eq!(body, br#"{"request":"discovery"}"#);
    b.send(NetworkCommand::Respond {
        request_id: id,
        body: b"{\"response\":\"ack\"}".to_vec(),
    })
    .await
    .unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), b"{\"response\":\"ack\"}");

    let huge = vec![b'x'; vm_network::codec::MAX_REQUEST_BYTES as usize + 1];
    let refused = a.request(&b_peer, b_addrs.clone(), huge).await;
    let refused = String::from_utf8(refused.expect("answered with a reason")).unwrap();
    assert!(refused.contains(r#""error":"oversized""#), "{refused}");
    // The reader's failure event may come just after the writer's.
    let mut status = b.status().await.unwrap();
    for _ in 0..50 {
        if status.counters.requests_oversized > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = b.status().await.unwrap();
    }
    assert_eq!(status.counters.requests_oversized, 1);
    assert_eq!(status.counters.penalties, 1);
    assert_eq!(
        status.counters.requests_in, 1,
        "the oversized request never reached the node"
    );
    // Exactly the limit is fine.
    let limit = vec![b' '; vm_network::codec::MAX_REQUEST_BYTES as usize];
    let asking = tokio::spawn({
        let a = a.clone();
        async move { a.request(&b_peer, b_addrs, limit).await }
    });
    let (id, body) = next(&mut b_events, |e| match e {
        NetworkEvent::Request {
            request_id, body, ..
        } => Some((request_id, body.len())),
        _ => None,
    })
    .await;
    assert_eq!(body as u64, vm_network::codec::MAX_REQUEST_BYTES);
    b.send(NetworkCommand::Respond {
        request_id: id,
        body: b"{}".to_vec(),
    })
    .await
    .unwrap();
    asking.await.unwrap().unwrap();
}

// B finds A's signed record by mesh id alone, through a bootstrap node C it shares with A,
// and finds A (which announces itself as public) among the `/vaultmesh/public` providers.
#[tokio::test]
async fn dht_lookup_by_mesh_id() {
    let (c, _ce) = node(3, &[]).await;
    let mut a_config = config(1);
    a_config.bootstrap = c.listen_addrs();
    a_config.public = true;
    let (a, _ae) = spawn(a_config).await.unwrap();
    let (b, _be) = node(2, &[&c]).await;
    let mine = record(1, "alpha");
    // Publishing needs A connected to C: retry briefly while the bootstrap completes.
    let mut published = Err(NetworkError::Stopped);
    for _ in 0..40 {
        published = a.publish_record(serde_json::to_vec(&mine).unwrap()).await;
        if published.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    published.unwrap();
    let found = b.find_record(mine.mesh_id.clone()).await.unwrap();
    assert_eq!(found, mine);
    let public = b.find_public().await.unwrap();
    assert_eq!(
        public,
        vec![a.peer_id().to_owned()],
        "only A announces itself as public"
    );
    let missing = b.find_record(MeshId::from_name("nobody").unwrap()).await;
    assert!(
        matches!(missing, Err(NetworkError::NotFound { .. })),
        "{missing:?}"
    );
    // Our own node refuses to publish a record that is not validly signed.
    let mut forged = record(1, "alpha");
    forged.display_name = "changed after signing".into();
    let refused = a.publish_record(serde_json::to_vec(&forged).unwrap()).await;
    assert!(
        matches!(refused, Err(NetworkError::Record(_))),
        "{refused:?}"
    );
}

/// A bare Kademlia peer speaking our protocol, with no validation of its own.
fn raw_kad(n: u8) -> Swarm<kad::Behaviour<MemoryStore>> {
    let mut seed = [n; 32];
    let id = identity::Keypair::ed25519_from_bytes(&mut seed).unwrap();
    libp2p::SwarmBuilder::with_existing_identity(id)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|k| {
            let peer = k.public().to_peer_id();
            let mut b = kad::Behaviour::with_config(
                peer,
                MemoryStore::new(peer),
                kad::Config::new(KAD_PROTOCOL),
            );
            b.set_mode(Some(kad::Mode::Server));
            b
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

async fn drive_until<T>(
    swarm: &mut Swarm<kad::Behaviour<MemoryStore>>,
    mut done: impl FnMut(&SwarmEvent<kad::Event>) -> Option<T>,
) -> T {
    timeout(Duration::from_secs(10), async {
        loop {
            let event = swarm.select_next_some().await;
            if let Some(t) = done(&event) {
                return t;
            }
        }
    })
    .await
    .expect("raw peer: no expected event within 10 s")
}

// Records PUT by a raw peer that are unsigned, wrongly signed, under another mesh's key or
// oversized are refused by the filtered store, counted and penalised; a later GET finds none.
// A record served on GET that is forged is refused too.
/// A raw peer PUTs `rec` to `target` and waits for the answer.
async fn put_to(raw: &mut Swarm<kad::Behaviour<MemoryStore>>, target: PeerId, rec: Record) {
    raw.behaviour_mut()
        .put_record_to(rec, std::iter::once(target), Quorum::One);
    drive_until(raw, |e| match e {
        SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::PutRecord(_),
            ..
        }) => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn dht_refuses_invalid_records_on_put_and_get() {
    let (target, _te) = node(4, &[]).await;
    let target_peer: PeerId = target.peer_id().parse().unwrap();
    let target_addr: Multiaddr = target.listen_addrs()[0].parse().unwrap();
    let mut raw = raw_kad(9);
    raw.behaviour_mut().add_address(&target_peer, target_addr);

    let good = record(9, "mallory");
    let mut unsigned = serde_json::to_value(&good).unwrap();
    unsigned.as_object_mut().unwrap().remove("signature");
    let mut wrongly_signed = record(9, "mallory");
    wrongly_signed.display_name = "tampered".into();
    let other_mesh = record(9, "mallory");
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (
            mesh_key(&good.mesh_id),
            serde_json::to_vec(&unsigned).unwrap(),
        ),
        (
            mesh_key(&good.mesh_id),
            serde_json::to_vec(&wrongly_signed).unwrap(),
        ),
        (
            mesh_key(&MeshId::from_name("victim").unwrap()),
            serde_json::to_vec(&other_mesh).unwrap(),
        ),
        (mesh_key(&good.mesh_id), vec![b'{'; 9000]),
        (mesh_key(&good.mesh_id), b"not json".to_vec()),
    ];
    let n = cases.len() as u64;
    for (key, value) in cases {
        put_to(
            &mut raw,
            target_peer,
            Record::new(RecordKey::new(&key), value),
        )
        .await;
    }
    let status = target.status().await.unwrap();
    assert_eq!(status.counters.dht_records_rejected, n);
    assert_eq!(status.counters.penalties, n);
    assert!(status.counters.bans >= 1, "five strikes ban the raw peer");
    let lookup = target.find_record(good.mesh_id.clone()).await;
    assert!(
        matches!(lookup, Err(NetworkError::NotFound { .. })),
        "{lookup:?}"
    );

    // GET: a fresh node asks a raw peer that serves a forged record from its own store.
    let mut liar = raw_kad(10);
    liar.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let liar_addr = drive_until(&mut liar, |e| match e {
        SwarmEvent::NewListenAddr { address, .. } => Some(address.clone()),
        _ => None,
    })
    .await;
    let victim = record(11, "victim");
    let mut forged = serde_json::to_value(&victim).unwrap();
    forged["display_name"] = "forged".into();
    liar.behaviour_mut()
        .store_mut()
        .put(Record::new(
            RecordKey::new(&mesh_key(&victim.mesh_id)),
            serde_json::to_vec(&forged).unwrap(),
        ))
        .unwrap();
    let liar_peer = *liar.local_peer_id();
    let (asker, _ae) = node(12, &[]).await;
    asker
        .send(NetworkCommand::Dial {
            addresses: vec![format!("{liar_addr}/p2p/{liar_peer}")],
        })
        .await
        .unwrap();
    let lookup = tokio::spawn({
        let asker = asker.clone();
        let mesh = victim.mesh_id.clone();
        async move { asker.find_record(mesh).await }
    });
    let result = timeout(Duration::from_secs(15), async {
        loop {
            tokio::select! {
                _ = liar.select_next_some() => {}
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    if lookup.is_finished() {
                        return lookup.await.unwrap();
                    }
                }
            }
        }
    })
    .await
    .expect("lookup did not end");
    match result {
        Err(NetworkError::NotFound { rejected, .. }) => {
            assert!(rejected >= 1, "the forged record was seen and refused")
        }
        other => panic!("a forged record must not be returned: {other:?}"),
    }
    assert!(asker.status().await.unwrap().counters.dht_records_rejected >= 1);
}

// Gossip reaches subscribers only through application validation: a rejected message is
// counted; a message without a signature (anonymous publisher) is dropped by gossipsub's strict
// mode, and a signed one over 16 KiB by the size check: neither reaches the node, and the
// oversized one does not cost its sender the stream.
#[tokio::test]
async fn gossip_is_validated_before_it_reaches_the_node() {
    let (a, _ae) = node(21, &[]).await;
    let (b, mut b_events) = node(22, &[&a]).await;
    let a_peer = a.peer_id().to_owned();
    // Wait for the mesh: publish until B sees a message.
    let (id, origin, data) = timeout(Duration::from_secs(10), async {
        loop {
            let _ = a
                .gossip(format!("hello {}", rand_suffix()).into_bytes())
                .await;
            if let Ok(Some(NetworkEvent::Gossip { id, origin, data })) =
                timeout(Duration::from_millis(300), b_events.recv()).await
            {
                return (id, origin, data);
            }
        }
    })
    .await
    .expect("gossip mesh did not form");
    assert_eq!(origin.as_deref(), Some(a_peer.as_str()));
    assert!(data.starts_with(b"hello"));
    b.send(NetworkCommand::GossipVerdict {
        id,
        verdict: GossipVerdict::Reject,
    })
    .await
    .unwrap();
    assert_eq!(b.status().await.unwrap().counters.gossip_rejected, 1);

    // An anonymous (unsigned) publisher and a signed one sending 20 KiB, connected to B.
    let mut anon = raw_gossip(23, false);
    let mut big = raw_gossip(24, true);
    let b_addr: Multiaddr = b.listen_addrs()[0].parse().unwrap();
    anon.dial(b_addr.clone()).unwrap();
    big.dial(b_addr).unwrap();
    let topic = gossipsub::IdentTopic::new(ROOTS_TOPIC);
    anon.behaviour_mut().subscribe(&topic).unwrap();
    big.behaviour_mut().subscribe(&topic).unwrap();
    let oversized = vec![b'r'; 20 * 1024];
    let mut published = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = anon.select_next_some() => {}
            _ = big.select_next_some() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if anon.behaviour_mut().publish(topic.clone(), b"unsigned root".to_vec()).is_ok() {
                    published.0 += 1;
                }
                if big.behaviour_mut().publish(topic.clone(), oversized.clone()).is_ok() {
                    published.1 += 1;
                }
            }
        }
        while let Ok(event) = b_events.try_recv() {
            if let NetworkEvent::Gossip { data, .. } = event {
                assert_ne!(
                    data, b"unsigned root",
                    "an unsigned message reached the node"
                );
                assert!(
                    data.len() < 16 * 1024,
                    "an oversized message reached the node"
                );
            }
        }
    }
    assert!(
        published.0 > 0 && published.1 > 0,
        "both raw publishers sent: {published:?}"
    );
    // The oversized messages were read and dropped, and the publisher's stream lives on:
    // its next message of a normal size reaches the node (js-libp2p does not reopen a
    // stream a peer closed, so closing it would lose all its later gossip).
    assert!(b.status().await.unwrap().counters.gossip_oversized > 0);
    let arrived = timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                _ = big.select_next_some() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    let small = format!("small after big {}", rand_suffix()).into_bytes();
                    let _ = big.behaviour_mut().publish(topic.clone(), small);
                }
            }
            while let Ok(event) = b_events.try_recv() {
                if let NetworkEvent::Gossip { data, .. } = event
                    && data.starts_with(b"small after big")
                {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "the peer that sent oversized gossip is still heard"
    );
}

fn rand_suffix() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A bare gossipsub peer: anonymous (no signatures) or signed, with a 64 KiB size limit.
fn raw_gossip(n: u8, signed: bool) -> Swarm<gossipsub::Behaviour> {
    let mut seed = [n; 32];
    let id = identity::Keypair::ed25519_from_bytes(&mut seed).unwrap();
    libp2p::SwarmBuilder::with_existing_identity(id)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|k| {
            let (mode, authenticity) = if signed {
                (
                    gossipsub::ValidationMode::Strict,
                    gossipsub::MessageAuthenticity::Signed(k.clone()),
                )
            } else {
                (
                    gossipsub::ValidationMode::Anonymous,
                    gossipsub::MessageAuthenticity::Anonymous,
                )
            };
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(mode)
                .max_transmit_size(64 * 1024)
                .heartbeat_initial_delay(Duration::from_millis(100))
                .heartbeat_interval(Duration::from_millis(200))
                .build()
                .unwrap();
            gossipsub::Behaviour::new(authenticity, config).unwrap()
        })
        .unwrap()
        .build()
}

/// Issue 16, item 6: every gossip message the node rejects is a strike against the peer
/// that sent it; enough strikes within the window ban it (disconnected, refused), and the
/// ban ends by itself. (gossipsub's own penalty decays in about a second.)
#[tokio::test]
async fn rejected_gossip_strikes_add_up_to_a_ban_that_ends() {
    let (a, _a_events) = node(31, &[]).await;
    let mut c = config(32);
    c.bootstrap = vec![a.listen_addrs()[0].clone()];
    c.ban_after_strikes = 3;
    c.ban_duration = Duration::from_secs(5);
    let (b, mut b_events) = spawn(c).await.unwrap();
    let a_peer = a.peer_id().to_owned();
    let rejected = timeout(Duration::from_secs(15), async {
        let mut rejected = 0;
        while b.status().await.unwrap().counters.bans == 0 {
            let _ = a
                .gossip(format!("forged root {}", rand_suffix()).into_bytes())
                .await;
            while let Ok(Some(event)) = timeout(Duration::from_millis(200), b_events.recv()).await {
                if let NetworkEvent::Gossip { id, .. } = event {
                    b.send(NetworkCommand::GossipVerdict {
                        id,
                        verdict: GossipVerdict::Reject,
                    })
                    .await
                    .unwrap();
                    rejected += 1;
                }
            }
        }
        rejected
    })
    .await
    .expect("three rejected messages ban their sender");
    assert_eq!(rejected, 3, "banned at the third strike");
    let status = b.status().await.unwrap();
    assert_eq!(status.counters.bans, 1);
    assert!(status.counters.penalties >= 3);
    // Banned: disconnected, and B refuses it meanwhile.
    timeout(Duration::from_secs(5), async {
        while b.status().await.unwrap().connected_peers.contains(&a_peer) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the banned peer is disconnected");
    let b_addrs = b.listen_addrs();
    let refused = a
        .request(
            b.peer_id(),
            b_addrs.clone(),
            br#"{"request":"discovery"}"#.to_vec(),
        )
        .await;
    assert!(refused.is_err(), "a banned peer's request goes nowhere");
    // The ban ends (5 s, counted in manager ticks): the same peer's request reaches B
    // again. Asked again until it does (a dial refused while the ban lasts fails fast), for
    // at most 20 s.
    let served = timeout(Duration::from_secs(20), async {
        loop {
            let asking = tokio::spawn({
                let a = a.clone();
                let (b_peer, b_addrs) = (b.peer_id().to_owned(), b_addrs.clone());
                async move {
                    a.request(&b_peer, b_addrs, br#"{"request":"discovery"}"#.to_vec())
                        .await
                }
            });
            let arrived = timeout(Duration::from_secs(2), async {
                loop {
                    match b_events.recv().await {
                        Some(NetworkEvent::Request {
                            request_id, peer, ..
                        }) => return Some((request_id, peer)),
                        Some(_) => {}
                        None => return None,
                    }
                }
            })
            .await;
            if let Ok(Some((id, from))) = arrived {
                assert_eq!(from, a_peer);
                b.send(NetworkCommand::Respond {
                    request_id: id,
                    body: b"{\"response\":\"ack\"}".to_vec(),
                })
                .await
                .unwrap();
                return asking.await.unwrap().is_ok();
            }
            asking.abort();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert_eq!(served, Ok(true), "after its ban the peer is served again");
}

// Mesh ids are names: anyone can sign a record "in the name of" a mesh with their own key.
// A peer putting such a record (newer, validly self-signed) over the fresh record this node
// holds for that mesh (here its own) is refused, counted and penalised; the held record is
// still what a lookup finds.
#[tokio::test]
async fn a_record_signed_by_another_key_cannot_take_over_a_mesh_id() {
    let (target, _te) = node(4, &[]).await;
    let target_peer: PeerId = target.peer_id().parse().unwrap();
    let target_addr: Multiaddr = target.listen_addrs()[0].parse().unwrap();
    let own = record(4, "target");
    // Stored locally even though no other DHT server takes it yet.
    let _ = target
        .publish_record(serde_json::to_vec(&own).unwrap())
        .await;

    let mut raw = raw_kad(9);
    raw.behaviour_mut().add_address(&target_peer, target_addr);
    let mut squat = record(9, "target");
    squat.updated_at = Timestamp::from_unix(NOW + 60).unwrap();
    squat.sign(&key(9)).unwrap();
    let rec = Record::new(
        RecordKey::new(&mesh_key(&own.mesh_id)),
        serde_json::to_vec(&squat).unwrap(),
    );
    put_to(&mut raw, target_peer, rec).await;
    let status = target.status().await.unwrap();
    assert_eq!(status.counters.dht_records_rejected, 1);
    assert_eq!(status.counters.penalties, 1);
    let found = target.find_record(own.mesh_id.clone()).await.unwrap();
    assert_eq!(found, own, "the held record stays");
}
