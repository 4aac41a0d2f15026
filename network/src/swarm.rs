//! The libp2p swarm and the task that drives it. Everything libp2p stays in this file; the
//! node talks to it through [`crate::NetworkCommand`] and [`crate::NetworkEvent`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::Transport;
use libp2p::core::upgrade;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId};
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{self, GetRecordOk, InboundRequest, Mode, QueryId, QueryResult, Quorum, Record};
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, identify,
    identity, multiaddr::Protocol, noise, ping, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use vm_receipts::MeshId;
use vm_receipts::documents::DiscoveryRecord;

use crate::codec::{self, BytesCodec};
use crate::peer_manager::{PeerManager, Verdict};
use crate::record::{self, public_provider_key};
use crate::tcp::NewPortDials;
use crate::{
    Counters, GossipId, GossipVerdict, NetworkCommand, NetworkConfig, NetworkError, NetworkEvent,
    NetworkStatus, RequestError,
};

/// The Kademlia protocol: ours, never the IPFS one, so we do not join the public DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/vaultmesh/kad/1.0.0");
/// The gossip topic of signed roots.
pub const ROOTS_TOPIC: &str = "vaultmesh/roots/v1";
/// Largest gossip message the node looks at: a SignedRoot is well under 1 KiB.
const MAX_GOSSIP_BYTES: usize = 16 * 1024;
/// Largest gossip frame read off a stream. Larger than [`MAX_GOSSIP_BYTES`] on purpose: a
/// frame over gossipsub's transmit limit is a codec error that closes the peer's stream
/// (and js-libp2p does not open another, so all its later gossip would be lost); a message
/// between the two limits is read, dropped without a penalty, and the stream lives on.
const MAX_GOSSIP_FRAME_BYTES: usize = 256 * 1024;

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    gossip: gossipsub::Behaviour,
    rr: request_response::Behaviour<BytesCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn behaviour(
    key: &identity::Keypair,
    config: &NetworkConfig,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();

    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    // Every inbound PUT and ADD_PROVIDER comes to us for validation before it is stored.
    kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
    kad_config.set_max_packet_size(16 * 1024);
    kad_config.set_query_timeout(config.query_timeout);
    kad_config.set_record_ttl(Some(Duration::from_secs(
        u64::try_from(config.freshness.max_age_secs).unwrap_or(7 * 86_400),
    )));
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: 10_000,
            max_value_bytes: record::MAX_RECORD_BYTES,
            ..Default::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
    // Kademlia would start in client mode on loopback (no confirmed external address);
    // a node that listens is reachable, so it serves the DHT.
    kad.set_mode(Some(Mode::Server));

    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
        })
        .max_transmit_size(MAX_GOSSIP_FRAME_BYTES)
        .heartbeat_interval(config.gossip_heartbeat)
        .heartbeat_initial_delay(config.gossip_initial_delay)
        .mesh_n_low(4)
        .mesh_n(6)
        .mesh_n_high(10)
        .mesh_outbound_min(2)
        .build()
        .map_err(|e| format!("gossipsub configuration: {e}"))?;
    let mut gossip =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)
            .map_err(|e| format!("gossipsub: {e}"))?;
    let topic = IdentTopic::new(ROOTS_TOPIC);
    let mut score = gossipsub::PeerScoreParams::default();
    // Nodes on one host (tests, benchmarks, a host running several meshes) all come from
    // the loopback address; the default colocation penalty would graylist them all once
    // more than ten share it.
    score
        .ip_colocation_factor_whitelist
        .insert(std::net::Ipv4Addr::LOCALHOST.into());
    score
        .ip_colocation_factor_whitelist
        .insert(std::net::Ipv6Addr::LOCALHOST.into());
    score.topics.insert(
        topic.hash(),
        gossipsub::TopicScoreParams {
            // A rejected message (bad signature, bad root) costs its forwarder dearly.
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.5,
            // Roots are announced a few times an hour: a mesh-delivery quota (P3, 20
            // messages by default) would punish every honest peer on a quiet topic.
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            ..Default::default()
        },
    );
    gossip
        .with_peer_score(score, gossipsub::PeerScoreThresholds::default())
        .map_err(|e| format!("gossipsub scoring: {e}"))?;
    gossip.subscribe(&topic)?;

    let rr = request_response::Behaviour::with_codec(
        BytesCodec,
        [(codec::PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(256),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new("/vaultmesh/id/1.0.0".into(), key.public())
            .with_push_listen_addr_updates(true),
    );
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(64))
            .with_max_pending_outgoing(Some(64)),
    );
    Ok(Behaviour {
        blocked: Default::default(),
        limits,
        kad,
        gossip,
        rr,
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
    })
}

/// Builds the swarm, starts listening, waits until each listener has an address, dials the
/// bootstrap peers and returns the task that drives it.
pub(crate) async fn start(
    config: NetworkConfig,
    commands: mpsc::Receiver<NetworkCommand>,
    events: mpsc::Sender<NetworkEvent>,
) -> Result<(Driver, PeerId, Vec<String>), NetworkError> {
    let seed = config.key.seed_bytes();
    let mut seed_copy = *seed;
    let key = identity::Keypair::ed25519_from_bytes(&mut seed_copy)
        .map_err(|e| NetworkError::Config(format!("mesh key as libp2p identity: {e}")))?;
    let peer_id = key.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        // A peer that died leaves its QUIC connection open until the idle timeout, and
        // request-response spreads requests over all of a peer's connections: a short idle
        // timeout with frequent keep-alives bounds how long requests go into a dead one.
        .with_quic_config(|mut c| {
            c.max_idle_timeout = 3_000;
            c.keep_alive_interval = Duration::from_millis(1_000);
            c
        })
        // TCP + Noise + Yamux as `with_tcp` builds it, but dialing from fresh ports
        // (`crate::tcp` says why).
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                Ok(NewPortDials(tcp::tokio::Transport::new(
                    tcp::Config::default().nodelay(true),
                ))
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
            },
        )
        .map_err(|e| NetworkError::Config(format!("TCP transport: {e}")))?
        .with_dns()
        .map_err(|e| NetworkError::Config(format!("DNS transport: {e}")))?
        .with_behaviour(|key| behaviour(key, &config))
        .map_err(|e| NetworkError::Config(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();

    let mut listeners = 0;
    for text in &config.listen {
        let addr = parse_addr(text)?;
        swarm
            .listen_on(addr)
            .map_err(|e| NetworkError::Listen(format!("{text}: {e}")))?;
        listeners += 1;
    }
    let mut addresses = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while addresses.len() < listeners {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    swarm.add_external_address(address.clone());
                    addresses.push(address.to_string());
                }
                SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                    return Err(NetworkError::Listen(error.to_string()));
                }
                _ => {}
            },
            () = &mut deadline => return Err(NetworkError::Listen("no listen address within 10 s".into())),
        }
    }

    let mut driver = Driver {
        swarm,
        config,
        commands,
        events,
        manager: PeerManager::new(0, 1),
        routable: HashSet::new(),
        tick: 0,
        next_inbound: 0,
        inbound: HashMap::new(),
        inbound_ids: HashMap::new(),
        outbound: HashMap::new(),
        finds: HashMap::new(),
        publishes: HashMap::new(),
        providers: HashMap::new(),
        counters: Counters::default(),
        listen: addresses.clone(),
    };
    let ticks = |d: Duration| {
        (d.as_millis() / driver.config.manager_interval.as_millis().max(1)).max(1) as u64
    };
    driver.manager = PeerManager::new(driver.config.target_peers, driver.config.ban_after_strikes)
        .with_ban_timing(
            ticks(driver.config.strike_window),
            ticks(driver.config.ban_duration),
        );
    for text in driver.config.bootstrap.clone() {
        let addr = parse_addr(&text)?;
        let peer = peer_of(&addr).ok_or_else(|| {
            NetworkError::Config(format!("bootstrap address {text} has no /p2p/<peer id>"))
        })?;
        driver.manager.protect(peer);
        driver
            .swarm
            .behaviour_mut()
            .kad
            .add_address(&peer, addr.clone());
        if let Err(e) = driver.swarm.dial(addr) {
            tracing::warn!(address = %text, error = %e, "bootstrap dial failed");
        }
    }
    if !driver.config.bootstrap.is_empty() {
        let _ = driver.swarm.behaviour_mut().kad.bootstrap();
    }
    Ok((driver, peer_id, addresses))
}

fn parse_addr(text: &str) -> Result<Multiaddr, NetworkError> {
    text.parse()
        .map_err(|e| NetworkError::Address(format!("{text:?} is not a multiaddr: {e}")))
}

fn parse_peer(text: &str) -> Result<PeerId, NetworkError> {
    text.parse()
        .map_err(|e| NetworkError::Address(format!("{text:?} is not a peer id: {e}")))
}

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Whether an address is loopback or private (refused from the network unless allowed).
fn is_private(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Protocol::Ip6(ip) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
        }
        _ => false,
    })
}

type PendingProviders = (
    HashSet<PeerId>,
    oneshot::Sender<Result<Vec<String>, NetworkError>>,
);

type ResponseSender = oneshot::Sender<Result<Vec<u8>, RequestError>>;

struct PendingFind {
    mesh_id: MeshId,
    reply: oneshot::Sender<Result<DiscoveryRecord, NetworkError>>,
    rejected: usize,
}

/// The task state: the swarm and what is in flight.
pub(crate) struct Driver {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    commands: mpsc::Receiver<NetworkCommand>,
    events: mpsc::Sender<NetworkEvent>,
    manager: PeerManager<PeerId>,
    routable: HashSet<PeerId>,
    tick: u64,
    next_inbound: u64,
    inbound: HashMap<
        u64,
        (
            PeerId,
            InboundRequestId,
            request_response::ResponseChannel<Vec<u8>>,
        ),
    >,
    inbound_ids: HashMap<InboundRequestId, u64>,
    outbound: HashMap<OutboundRequestId, (PeerId, ResponseSender)>,
    finds: HashMap<QueryId, PendingFind>,
    publishes: HashMap<QueryId, oneshot::Sender<Result<(), NetworkError>>>,
    providers: HashMap<QueryId, PendingProviders>,
    counters: Counters,
    listen: Vec<String>,
}

impl Driver {
    /// Runs until the command channel closes (the node shut down).
    pub(crate) async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.manager_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = ticker.tick() => self.on_tick(),
            }
        }
        tracing::debug!("network task stopped");
    }

    fn emit(&mut self, event: NetworkEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                // The node is saturated: the peer will retry (requests time out, gossip is
                // re-announced); we never block the swarm on the node.
                self.counters.events_dropped += 1;
                false
            }
        }
    }

    fn penalise(&mut self, peer: PeerId, reason: &str) {
        self.counters.penalties += 1;
        tracing::warn!(%peer, reason, "peer penalised for bad input");
        if self.manager.strike(&peer, self.tick) == Verdict::Ban {
            self.counters.bans += 1;
            tracing::warn!(%peer, "peer banned after repeated bad input");
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    fn on_tick(&mut self) {
        self.tick += 1;
        for peer in self.manager.expired_bans(self.tick) {
            tracing::info!(%peer, "ban over");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        let topic = IdentTopic::new(ROOTS_TOPIC).hash();
        let mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossip
            .mesh_peers(&topic)
            .copied()
            .collect();
        let routable = &self.routable;
        for peer in self
            .manager
            .excess(|p| (mesh.contains(p), routable.contains(p)))
        {
            tracing::debug!(%peer, "peer manager closes an extra connection");
            self.counters.trimmed += 1;
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_command(&mut self, command: NetworkCommand) {
        match command {
            NetworkCommand::Dial { addresses } => {
                for text in addresses {
                    match parse_addr(&text) {
                        Ok(addr) => {
                            if let Some(peer) = peer_of(&addr) {
                                self.swarm
                                    .behaviour_mut()
                                    .kad
                                    .add_address(&peer, addr.clone());
                            }
                            if let Err(e) = self.swarm.dial(addr) {
                                tracing::warn!(address = %text, error = %e, "dial failed");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "dial refused"),
                    }
                }
                let _ = self.swarm.behaviour_mut().kad.bootstrap();
            }
            NetworkCommand::Protect { peer } => match parse_peer(&peer) {
                Ok(peer) => self.manager.make_immune(peer),
                Err(e) => tracing::warn!(error = %e, "protect refused"),
            },
            NetworkCommand::Request {
                peer,
                addresses,
                body,
                reply,
            } => {
                let target = match parse_peer(&peer) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(RequestError::Address(e.to_string())));
                        return;
                    }
                };
                let addrs: Vec<Multiaddr> =
                    addresses.iter().filter_map(|a| a.parse().ok()).collect();
                let id = self.swarm.behaviour_mut().rr.send_request_with_addresses(
                    &target,
                    codec::Frame::Body(body),
                    addrs,
                );
                self.counters.requests_out += 1;
                self.manager.begin(&target);
                self.outbound.insert(id, (target, reply));
            }
            NetworkCommand::Respond { request_id, body } => {
                if let Some((peer, libp2p_id, channel)) = self.inbound.remove(&request_id) {
                    self.inbound_ids.remove(&libp2p_id);
                    self.manager.end(&peer);
                    if self
                        .swarm
                        .behaviour_mut()
                        .rr
                        .send_response(channel, body)
                        .is_err()
                    {
                        tracing::debug!(%peer, "response not sent: the stream closed");
                    }
                }
            }
            NetworkCommand::PublishRecord { value, reply } => {
                let now = (self.config.clock)();
                let key = match record::validate_own(&value, now, self.config.freshness) {
                    Ok(key) => key,
                    Err(e) => {
                        let _ = reply.send(Err(NetworkError::Record(e)));
                        return;
                    }
                };
                let mut rec = Record::new(kad::RecordKey::new(&key), value);
                rec.publisher = Some(*self.swarm.local_peer_id());
                let kad = &mut self.swarm.behaviour_mut().kad;
                match kad.put_record(rec, Quorum::One) {
                    Ok(id) => {
                        self.publishes.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetworkError::Dht(e.to_string())));
                    }
                }
                if self.config.public {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .kad
                        .start_providing(kad::RecordKey::new(&public_provider_key()));
                }
            }
            NetworkCommand::FindRecord { mesh_id, reply } => {
                let key = kad::RecordKey::new(&record::mesh_key(&mesh_id));
                let id = self.swarm.behaviour_mut().kad.get_record(key);
                self.finds.insert(
                    id,
                    PendingFind {
                        mesh_id,
                        reply,
                        rejected: 0,
                    },
                );
            }
            NetworkCommand::FindPublic { reply } => {
                let key = kad::RecordKey::new(&public_provider_key());
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.providers.insert(id, (HashSet::new(), reply));
            }
            NetworkCommand::Gossip { data, reply } => {
                let topic = IdentTopic::new(ROOTS_TOPIC);
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(topic, data)
                    .map(|_| ())
                    .map_err(|e| NetworkError::Gossip(e.to_string()));
                let _ = reply.send(result);
            }
            NetworkCommand::GossipVerdict { id, verdict } => {
                let acceptance = match verdict {
                    GossipVerdict::Accept => MessageAcceptance::Accept,
                    GossipVerdict::Ignore => MessageAcceptance::Ignore,
                    GossipVerdict::Reject => {
                        self.counters.gossip_rejected += 1;
                        // gossipsub's own score for this decays within seconds; a strike
                        // counts toward a ban that lasts.
                        self.penalise(id.source, "gossip rejected by the node");
                        MessageAcceptance::Reject
                    }
                };
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&id.message_id, &id.source, acceptance);
            }
            NetworkCommand::Penalise { peer, reason } => {
                if let Ok(peer) = parse_peer(&peer) {
                    self.counters.requests_rejected += 1;
                    self.penalise(peer, &reason);
                }
            }
            NetworkCommand::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&mut self) -> NetworkStatus {
        let info = self.swarm.network_info();
        let counts = info.connection_counters();
        let mut routing_table = 0;
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            routing_table += bucket.num_entries();
        }
        let mut peers: Vec<String> = self
            .swarm
            .connected_peers()
            .map(|p| p.to_string())
            .collect();
        peers.sort();
        NetworkStatus {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addrs: self.listen.clone(),
            connected_peers: peers,
            connections: counts.num_established(),
            routing_table,
            counters: self.counters.clone(),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.on_request_response(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                // Identify's addresses do not reach Kademlia by themselves.
                for addr in info.listen_addrs {
                    if !is_private(&addr) || self.config.allow_private_addresses {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                self.manager.connected(peer_id, self.tick);
                if num_established.get() == 1 {
                    self.emit(NetworkEvent::PeerConnected {
                        peer: peer_id.to_string(),
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.manager.disconnected(&peer_id);
                self.routable.remove(&peer_id);
                self.emit(NetworkEvent::PeerDisconnected {
                    peer: peer_id.to_string(),
                });
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.swarm.add_external_address(address.clone());
                self.listen.push(address.to_string());
            }
            _ => {}
        }
    }

    fn on_request_response(&mut self, event: request_response::Event<codec::Frame, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    channel,
                    request: codec::Frame::Oversized,
                    ..
                } => {
                    self.counters.requests_oversized += 1;
                    self.penalise(peer, "oversized request");
                    let response = codec::oversized_response();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .rr
                        .send_response(channel, response);
                }
                request_response::Message::Request {
                    request_id,
                    request: codec::Frame::Body(request),
                    channel,
                } => {
                    self.counters.requests_in += 1;
                    self.manager.active(&peer, self.tick);
                    let id = self.next_inbound;
                    self.next_inbound += 1;
                    if self.emit(NetworkEvent::Request {
                        request_id: id,
                        peer: peer.to_string(),
                        body: request,
                    }) {
                        self.manager.begin(&peer);
                        self.inbound.insert(id, (peer, request_id, channel));
                        self.inbound_ids.insert(request_id, id);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.manager.active(&peer, self.tick);
                    if let Some((peer, reply)) = self.outbound.remove(&request_id) {
                        self.manager.end(&peer);
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some((peer, reply)) = self.outbound.remove(&request_id) {
                    self.manager.end(&peer);
                    tracing::info!(%peer, %error, "request failed");
                    let _ = reply.send(Err(RequestError::Failed(error.to_string())));
                } else {
                    tracing::debug!(%peer, %error, "outbound failure for an unknown request");
                }
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(id) = self.inbound_ids.remove(&request_id)
                    && self.inbound.remove(&id).is_some()
                {
                    self.manager.end(&peer);
                }
                match &error {
                    request_response::InboundFailure::Io(e) => {
                        self.counters.stream_errors += 1;
                        tracing::debug!(%peer, error = %e, "inbound request stream failed");
                    }
                    _ => tracing::debug!(%peer, %error, "inbound request failed"),
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        if let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        {
            self.manager.active(&propagation_source, self.tick);
            let id = GossipId {
                message_id,
                source: propagation_source,
            };
            if message.data.len() > MAX_GOSSIP_BYTES {
                // Dropped, not forwarded, not penalised: a compliant peer may carry it.
                self.counters.gossip_oversized += 1;
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(
                        &id.message_id,
                        &id.source,
                        MessageAcceptance::Ignore,
                    );
                return;
            }
            let origin = message.source.map(|p| p.to_string());
            if !self.emit(NetworkEvent::Gossip {
                id: id.clone(),
                origin,
                data: message.data,
            }) {
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(
                        &id.message_id,
                        &id.source,
                        MessageAcceptance::Ignore,
                    );
            }
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest { request } => self.on_kad_inbound(request),
            kad::Event::RoutingUpdated { peer, old_peer, .. } => {
                self.routable.insert(peer);
                if let Some(old) = old_peer {
                    self.routable.remove(&old);
                }
            }
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))) => {
                    self.on_found_record(id, found.peer, found.record);
                }
                QueryResult::GetRecord(Ok(GetRecordOk::FinishedWithNoAdditionalRecord {
                    ..
                })) => {
                    if let Some(find) = self.finds.remove(&id) {
                        let _ = find.reply.send(Err(NetworkError::NotFound {
                            mesh_id: find.mesh_id,
                            rejected: find.rejected,
                        }));
                    }
                }
                QueryResult::GetRecord(Err(e)) => {
                    if let Some(find) = self.finds.remove(&id) {
                        tracing::debug!(error = %e, "DHT lookup ended");
                        let _ = find.reply.send(Err(NetworkError::NotFound {
                            mesh_id: find.mesh_id,
                            rejected: find.rejected,
                        }));
                    }
                }
                QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })) => {
                    if let Some((found, _)) = self.providers.get_mut(&id) {
                        found.extend(providers);
                    }
                    if step.last {
                        self.finish_providers(id);
                    }
                }
                QueryResult::GetProviders(_) => self.finish_providers(id),
                QueryResult::PutRecord(result) => {
                    if let Some(reply) = self.publishes.remove(&id) {
                        let _ = reply.send(
                            result
                                .map(|_| ())
                                .map_err(|e| NetworkError::Dht(e.to_string())),
                        );
                    }
                }
                QueryResult::Bootstrap(result) if step.last => {
                    tracing::debug!(ok = result.is_ok(), "DHT bootstrap finished");
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn finish_providers(&mut self, id: QueryId) {
        if let Some((found, reply)) = self.providers.remove(&id) {
            let me = *self.swarm.local_peer_id();
            let mut peers: Vec<String> = found
                .into_iter()
                .filter(|p| *p != me)
                .map(|p| p.to_string())
                .collect();
            peers.sort();
            let _ = reply.send(Ok(peers));
        }
    }

    fn on_found_record(&mut self, id: QueryId, from: Option<PeerId>, rec: Record) {
        let now = (self.config.clock)();
        let publisher = rec.publisher.map(|p| p.to_string());
        let checked = record::validate(
            rec.key.as_ref(),
            &rec.value,
            publisher.as_deref(),
            now,
            self.config.freshness,
        );
        let Some(find) = self.finds.get_mut(&id) else {
            return;
        };
        match checked {
            Ok(found) if found.mesh_id == find.mesh_id => {
                if let Some(find) = self.finds.remove(&id) {
                    if let Ok(peer) = found.peer_id.parse::<PeerId>() {
                        for addr in found
                            .multiaddrs
                            .iter()
                            .filter_map(|a| a.parse::<Multiaddr>().ok())
                        {
                            self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                        }
                    }
                    self.counters.dht_records_accepted += 1;
                    let _ = find.reply.send(Ok(found));
                }
                if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                    query.finish();
                }
            }
            Ok(other) => {
                find.rejected += 1;
                self.counters.dht_records_rejected += 1;
                tracing::warn!(asked = %find.mesh_id, got = %other.mesh_id, "DHT returned another mesh's record");
                if let Some(peer) = from {
                    self.penalise(peer, "DHT record for the wrong mesh");
                }
            }
            Err(e) => {
                find.rejected += 1;
                self.counters.dht_records_rejected += 1;
                tracing::warn!(error = %e, "DHT returned an invalid record");
                if let Some(peer) = from {
                    self.penalise(peer, "invalid DHT record");
                }
            }
        }
    }

    fn on_kad_inbound(&mut self, request: InboundRequest) {
        match request {
            InboundRequest::PutRecord {
                source,
                record: Some(rec),
                ..
            } => {
                let now = (self.config.clock)();
                let publisher = rec.publisher.map(|p| p.to_string());
                let freshness = self.config.freshness;
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let held = store.get(&rec.key).map(|held| held.value.clone());
                // Valid, and then (if a record is held) from the same key and newer: a
                // replayed old record must not replace it, nor a record in the same mesh's
                // name signed by someone else.
                let checked = record::validate(
                    rec.key.as_ref(),
                    &rec.value,
                    publisher.as_deref(),
                    now,
                    freshness,
                )
                .and_then(|found| match &held {
                    Some(held) => record::may_replace(held, &found, now, freshness),
                    None => Ok(true),
                });
                match checked {
                    Ok(replace) => {
                        self.counters.dht_records_accepted += 1;
                        if replace
                            && let Err(e) = self.swarm.behaviour_mut().kad.store_mut().put(rec)
                        {
                            tracing::warn!(error = %e, "DHT store refused a record");
                        }
                    }
                    Err(e) => {
                        self.counters.dht_records_rejected += 1;
                        tracing::warn!(peer = %source, error = %e, "refused a DHT record");
                        self.penalise(source, "invalid DHT record");
                    }
                }
            }
            InboundRequest::AddProvider {
                record: Some(provider),
            } => {
                if provider.key.as_ref() == public_provider_key().as_slice() {
                    if let Err(e) = self
                        .swarm
                        .behaviour_mut()
                        .kad
                        .store_mut()
                        .add_provider(provider)
                    {
                        tracing::warn!(error = %e, "DHT store refused a provider record");
                    }
                } else {
                    self.counters.dht_records_rejected += 1;
                    tracing::warn!(peer = %provider.provider, "refused a provider record for a foreign key");
                }
            }
            _ => {}
        }
    }
}
