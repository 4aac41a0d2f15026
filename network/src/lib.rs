//! `vm-network`: the transports of a VaultMesh federation node.
//!
//! - The libp2p swarm ([`spawn`]): identity = the mesh key; TCP + Noise + Yamux and QUIC;
//!   Kademlia on `/vaultmesh/kad/1.0.0` holding signed DiscoveryRecords (validated on PUT and
//!   GET, see [`record`]); gossipsub on `vaultmesh/roots/v1` with application validation;
//!   request-response `/vaultmesh/federation/1.0.0` carrying JSON bodies ([`codec`]);
//!   identify; ping; connection limits and a [`peer_manager`].
//! - DNS discovery ([`dns`]): SRV `_vaultmesh._tcp.<domain>` and TXT `_dnsaddr.<domain>`.
//!
//! The node talks to the swarm through [`NetworkHandle`] (commands) and a stream of
//! [`NetworkEvent`]s; no libp2p type crosses this crate's boundary. This crate frames, limits
//! and validates what it can check alone (sizes, DHT record signatures); protocol decisions
//! stay in the node's engine.

pub mod codec;
pub mod dns;
pub mod peer_manager;
pub mod record;
mod swarm;
mod tcp;
pub mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use vm_receipts::documents::DiscoveryRecord;
use vm_receipts::{MeshId, MeshKey, Timestamp};

pub use record::{Freshness, RecordError};
pub use swarm::{KAD_PROTOCOL, ROOTS_TOPIC};

/// The time source the network checks record freshness against (the node's clock).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How to run the swarm.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The mesh key: also the libp2p identity, so PeerId and mesh id bind.
    pub key: MeshKey,
    /// Multiaddrs to listen on (`/ip4/127.0.0.1/tcp/0`, `/ip4/0.0.0.0/udp/0/quic-v1`).
    pub listen: Vec<String>,
    /// DHT bootstrap peers, each a multiaddr ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Connected peers the peer manager holds (beyond protected ones).
    pub target_peers: usize,
    /// Hard limit on established connections.
    pub max_connections: u32,
    /// Accept loopback and private addresses learned from peers (tests, private networks).
    pub allow_private_addresses: bool,
    /// Announce under `/vaultmesh/public` in the DHT.
    pub public: bool,
    /// Gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
    /// Gossipsub's first heartbeat (5 s by default in libp2p; tests shorten it).
    pub gossip_initial_delay: Duration,
    /// Request-response timeout.
    pub request_timeout: Duration,
    /// DHT query timeout.
    pub query_timeout: Duration,
    /// Idle connections close after this.
    pub idle_timeout: Duration,
    /// How often the peer manager trims connections.
    pub manager_interval: Duration,
    /// Strikes (bad input) before a peer is banned.
    pub ban_after_strikes: u32,
    /// A strike is forgotten after this long without another.
    pub strike_window: Duration,
    /// How long a first ban lasts (the peer is disconnected and refused meanwhile); each
    /// later ban of the same peer lasts twice the one before, up to 64 times this.
    pub ban_duration: Duration,
    /// Freshness bounds for DHT records.
    pub freshness: Freshness,
    /// The clock for freshness.
    pub clock: Clock,
}

impl NetworkConfig {
    /// Defaults for `key`: loopback TCP and QUIC on any port, no bootstrap peers.
    pub fn new(key: MeshKey, clock: Clock) -> Self {
        Self {
            key,
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".into(),
                "/ip4/127.0.0.1/udp/0/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            target_peers: 25,
            max_connections: 64,
            allow_private_addresses: true,
            public: false,
            gossip_heartbeat: Duration::from_secs(1),
            gossip_initial_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            manager_interval: Duration::from_secs(1),
            ban_after_strikes: 5,
            strike_window: Duration::from_secs(3_600),
            ban_duration: Duration::from_secs(3_600),
            freshness: Freshness {
                max_age_secs: 7 * 86_400,
                max_skew_secs: 300,
            },
            clock,
        }
    }
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("peer_id", &self.key.public_key().peer_id())
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("target_peers", &self.target_peers)
            .finish_non_exhaustive()
    }
}

/// Why the network could not do something.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// Bad configuration.
    #[error("network configuration: {0}")]
    Config(String),
    /// A listener could not start.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// A malformed address or peer id.
    #[error("{0}")]
    Address(String),
    /// A DHT record failed validation.
    #[error("DHT record refused: {0}")]
    Record(RecordError),
    /// A DHT operation failed.
    #[error("DHT: {0}")]
    Dht(String),
    /// No valid record for the mesh was found.
    #[error("no valid discovery record for {mesh_id} in the DHT ({rejected} invalid ones refused)")]
    NotFound {
        /// The mesh looked up.
        mesh_id: MeshId,
        /// Invalid records seen and refused on the way.
        rejected: usize,
    },
    /// Gossip could not be published.
    #[error("gossip: {0}")]
    Gossip(String),
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The peer id or addresses were malformed.
    #[error("{0}")]
    Address(String),
    /// Dial, timeout, stream or protocol failure.
    #[error("request failed: {0}")]
    Failed(String),
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
}

/// A gossip message awaiting the node's verdict (opaque outside this crate).
#[derive(Clone)]
pub struct GossipId {
    message_id: libp2p::gossipsub::MessageId,
    source: libp2p::PeerId,
}

impl fmt::Debug for GossipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GossipId({} from {})", self.message_id, self.source)
    }
}

/// The node's verdict on a gossip message (application validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid: forward it.
    Accept,
    /// Not for us to judge (an unknown mesh): drop without penalty.
    Ignore,
    /// Invalid: drop and penalise the forwarder.
    Reject,
}

/// What the node asks of the network.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetworkCommand {
    /// Dial these multiaddrs (each ending in `/p2p/<peer id>`), adding them to the DHT routing.
    Dial {
        /// The addresses.
        addresses: Vec<String>,
    },
    /// Never let the peer manager close connections to this peer (a federated mesh).
    Protect {
        /// The peer id.
        peer: String,
    },
    /// Send a request and await its response.
    Request {
        /// The peer id.
        peer: String,
        /// Addresses to dial if not connected.
        addresses: Vec<String>,
        /// The JSON body (≤ 1 MiB).
        body: Vec<u8>,
        /// Where the response goes.
        reply: oneshot::Sender<Result<Vec<u8>, RequestError>>,
    },
    /// Answer an inbound request.
    Respond {
        /// The id from [`NetworkEvent::Request`].
        request_id: u64,
        /// The JSON body (≤ 8 MiB).
        body: Vec<u8>,
    },
    /// Publish our signed discovery record in the DHT (and announce as public if configured).
    PublishRecord {
        /// The record's JSON.
        value: Vec<u8>,
        /// Whether a peer stored it.
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    /// Look up a mesh's discovery record by mesh id.
    FindRecord {
        /// The mesh.
        mesh_id: MeshId,
        /// The first valid record found.
        reply: oneshot::Sender<Result<DiscoveryRecord, NetworkError>>,
    },
    /// List the peers providing `/vaultmesh/public` (meshes that announce themselves).
    FindPublic {
        /// Their peer ids.
        reply: oneshot::Sender<Result<Vec<String>, NetworkError>>,
    },
    /// Publish on the roots topic.
    Gossip {
        /// The message.
        data: Vec<u8>,
        /// Whether it went out.
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    /// The verdict on a gossip message.
    GossipVerdict {
        /// Which message.
        id: GossipId,
        /// Accept, ignore or reject.
        verdict: GossipVerdict,
    },
    /// The node found a peer's request malformed, unsigned or wrongly signed.
    Penalise {
        /// The peer id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Report the network's state.
    Status {
        /// Where the status goes.
        reply: oneshot::Sender<NetworkStatus>,
    },
}

/// What the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetworkEvent {
    /// A request arrived; answer with [`NetworkCommand::Respond`].
    Request {
        /// The id to respond with.
        request_id: u64,
        /// The sending peer id (authenticated by Noise).
        peer: String,
        /// The body (≤ 1 MiB; not yet parsed).
        body: Vec<u8>,
    },
    /// A gossip message on the roots topic; give a [`NetworkCommand::GossipVerdict`].
    Gossip {
        /// The message, for the verdict.
        id: GossipId,
        /// The author's peer id (signed messages only are accepted).
        origin: Option<String>,
        /// The data.
        data: Vec<u8>,
    },
    /// A peer's first connection opened.
    PeerConnected {
        /// The peer id.
        peer: String,
    },
    /// A peer's last connection closed.
    PeerDisconnected {
        /// The peer id.
        peer: String,
    },
}

/// Counters of what the network did and refused.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    /// Requests received.
    pub requests_in: u64,
    /// Requests sent.
    pub requests_out: u64,
    /// Requests refused for size.
    pub requests_oversized: u64,
    /// Requests the node refused as malformed or wrongly signed.
    pub requests_rejected: u64,
    /// Inbound streams that failed otherwise.
    pub stream_errors: u64,
    /// DHT records refused (PUT or GET).
    pub dht_records_rejected: u64,
    /// DHT records that passed validation (PUT stored or GET answered).
    pub dht_records_accepted: u64,
    /// Gossip messages rejected by the node.
    pub gossip_rejected: u64,
    /// Gossip messages over 16 KiB, dropped before the node (their stream kept).
    pub gossip_oversized: u64,
    /// Penalties given.
    pub penalties: u64,
    /// Peers banned.
    pub bans: u64,
    /// Connections the peer manager closed.
    pub trimmed: u64,
    /// Events dropped because the node was saturated.
    pub events_dropped: u64,
}

/// A snapshot of the network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStatus {
    /// Our peer id.
    pub peer_id: String,
    /// Where we listen.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub connected_peers: Vec<String>,
    /// Established connections.
    pub connections: u32,
    /// Entries in the Kademlia routing table.
    pub routing_table: usize,
    /// Counters.
    pub counters: Counters,
}

/// The node's side of the network: send commands; events arrive on the receiver [`spawn`]
/// returned. Dropping every handle stops the network task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<NetworkCommand>,
    peer_id: String,
    listen_addrs: Vec<String>,
}

impl NetworkHandle {
    /// Our peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The addresses the listeners bound, each with `/p2p/<peer id>` appended.
    pub fn listen_addrs(&self) -> Vec<String> {
        self.listen_addrs
            .iter()
            .map(|a| format!("{a}/p2p/{}", self.peer_id))
            .collect()
    }

    /// Sends a command.
    pub async fn send(&self, command: NetworkCommand) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetworkError::Stopped)
    }

    /// Sends a request to `peer` and awaits the response.
    pub async fn request(
        &self,
        peer: &str,
        addresses: Vec<String>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, RequestError> {
        let (reply, response) = oneshot::channel();
        self.send(NetworkCommand::Request {
            peer: peer.to_owned(),
            addresses,
            body,
            reply,
        })
        .await
        .map_err(|_| RequestError::Stopped)?;
        response.await.map_err(|_| RequestError::Stopped)?
    }

    /// Looks up `mesh_id`'s discovery record in the DHT.
    pub async fn find_record(&self, mesh_id: MeshId) -> Result<DiscoveryRecord, NetworkError> {
        let (reply, response) = oneshot::channel();
        self.send(NetworkCommand::FindRecord { mesh_id, reply })
            .await?;
        response.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Publishes our record in the DHT.
    pub async fn publish_record(&self, value: Vec<u8>) -> Result<(), NetworkError> {
        let (reply, response) = oneshot::channel();
        self.send(NetworkCommand::PublishRecord { value, reply })
            .await?;
        response.await.map_err(|_| NetworkError::Stopped)?
    }

    /// The peers that announce themselves as public meshes.
    pub async fn find_public(&self) -> Result<Vec<String>, NetworkError> {
        let (reply, response) = oneshot::channel();
        self.send(NetworkCommand::FindPublic { reply }).await?;
        response.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Publishes on the roots topic.
    pub async fn gossip(&self, data: Vec<u8>) -> Result<(), NetworkError> {
        let (reply, response) = oneshot::channel();
        self.send(NetworkCommand::Gossip { data, reply }).await?;
        response.await.map_err(|_| NetworkError::Stopped)?
    }

    /// The network's state.
    pub async fn status(&self) -> Result<NetworkStatus, NetworkError> {
        let (reply, response) = oneshot::channel();
        self.send(NetworkCommand::Status { reply }).await?;
        response.await.map_err(|_| NetworkError::Stopped)
    }
}

/// Starts the swarm on the current tokio runtime. Returns once every listener has an address.
pub async fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let (command_tx, command_rx) = mpsc::channel(1024);
    let (event_tx, event_rx) = mpsc::channel(4096);
    let (driver, peer_id, listen_addrs) = swarm::start(config, command_rx, event_tx).await?;
    tokio::spawn(driver.run());
    Ok((
        NetworkHandle {
            commands: command_tx,
            peer_id: peer_id.to_string(),
            listen_addrs,
        },
        event_rx,
    ))
}

/// Checks an address an operator gives for a peer (`peers add --address`): a multiaddr we
/// can dial (`/ip4`, `/ip6`, `/dns`, `/dns4` or `/dns6`, then `/tcp/<port>` or
/// `/udp/<port>/quic-v1`), whose `/p2p/<peer id>`, if present, is the peer's. The error
/// names what is wrong.
pub fn check_dial_address(addr: &str, peer_id: &str) -> Result<(), String> {
    use libp2p::multiaddr::Protocol;
    let parsed: libp2p::Multiaddr = addr
        .parse()
        .map_err(|e| format!("{addr:?} is not a multiaddr: {e}"))?;
    let mut protocols = parsed.iter();
    match protocols.next() {
        Some(
            Protocol::Ip4(_)
            | Protocol::Ip6(_)
            | Protocol::Dns(_)
            | Protocol::Dns4(_)
            | Protocol::Dns6(_),
        ) => {}
        _ => {
            return Err(format!(
                "{addr:?} must start with /ip4, /ip6, /dns, /dns4 or /dns6"
            ));
        }
    }
    let rest: Vec<Protocol<'_>> = protocols.collect();
    let transport_ok = match rest.as_slice() {
        [Protocol::Tcp(port), tail @ ..] => *port != 0 && tail.len() <= 1,
        [Protocol::Udp(port), Protocol::QuicV1, tail @ ..] => *port != 0 && tail.len() <= 1,
        _ => false,
    };
    if !transport_ok {
        return Err(format!(
            "{addr:?} must name a port to dial: /tcp/<port> or /udp/<port>/quic-v1, then optionally /p2p/<peer id>"
        ));
    }
    match rest.last() {
        Some(Protocol::P2p(id)) if id.to_string() != peer_id => Err(format!(
            "{addr:?} names peer {id}, but the key given is peer {peer_id}"
        )),
        Some(Protocol::Tcp(_) | Protocol::QuicV1 | Protocol::P2p(_)) => Ok(()),
        _ => Err(format!(
            "{addr:?} ends with something other than /p2p/<peer id>"
        )),
    }
}

#[cfg(test)]
mod address_tests {
    use super::check_dial_address;

    #[test]
    fn dialable_addresses_pass_and_others_are_named() {
        let key = vm_receipts::MeshKey::from_seed(&[3; 32]).public_key();
        let me = key.peer_id();
        let other = vm_receipts::MeshKey::from_seed(&[4; 32])
            .public_key()
            .peer_id();
        for good in [
            "/ip4/127.0.0.1/tcp/4001".to_owned(),
            format!("/ip4/10.0.0.1/udp/4001/quic-v1/p2p/{me}"),
            format!("/dns4/mesh.example.org/tcp/4001/p2p/{me}"),
            "/ip6/::1/tcp/4001".to_owned(),
        ] {
            assert_eq!(check_dial_address(&good, &me), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("ip4/127.0.0.1/tcp/4001".to_owned(), "not a multiaddr"),
            ("/tcp/4001".to_owned(), "must start with"),
            ("/ip4/127.0.0.1".to_owned(), "must name a port"),
            ("/ip4/127.0.0.1/tcp/0".to_owned(), "must name a port"),
            ("/ip4/127.0.0.1/udp/4001".to_owned(), "must name a port"),
            (
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{other}"),
                "but the key given",
            ),
        ] {
            let e = check_dial_address(&bad, &me).expect_err(&bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
