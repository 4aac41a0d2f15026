//! The node: the daemon `vm-federation node run`. It owns the data directory (locked), the
//! engine and its redb store, the Federation scroll, the libp2p network and the control
//! socket, and drives the engine from one task:
//!
//! - network requests become engine inputs; their outcome is the response;
//! - engine sends become network requests; their outcome goes back as delivered or failed;
//! - engine receipts go to the scroll (exactly once, `federation_log::flush`) and the signed
//!   root file is rewritten;
//! - operator requests from the control socket become engine commands;
//! - the engine's timer runs ticks.
//!
//! Every engine input commits before anything leaves, so SIGKILL at any point loses nothing:
//! the next start flushes queued receipts and the outgoing table resends what was not
//! acknowledged. SIGTERM/SIGINT stop taking input, let the loop finish the input in hand,
//! and close the socket.

mod admission;
mod anchor;
pub mod client;
pub mod control;
mod files;
mod health;
mod https;
mod metrics;
mod monitor;
mod ops;
mod outbox;
mod reads;
mod refind;
mod reload;
mod status;
mod systemd;
pub mod wire;
mod witness;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use rand::SeedableRng;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use vm_network::dns::{DnsConfig, DnsDiscovery};
use vm_network::{GossipVerdict, NetworkCommand, NetworkConfig, NetworkEvent, NetworkHandle};
use vm_receipts::documents::TrustLevel;
use vm_receipts::documents::{DiscoveryRecord, ProposedTerms};
use vm_receipts::scroll::{Scroll, write_root_file};
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, AgreementStatus, PeerEntry, PeerSource, ProposalRecord};

use crate::clock::{Clock, SystemClock, os_random_32};
use crate::data_dir::DataDir;
use crate::engine::{
    Command, Engine, EngineConfig, EngineError, Event, Input, Output, PeerMessage, ProposalRef,
};
use crate::federation_log;
use crate::witness::core::GossipCheck;
use control::{ControlError, ControlOp, ControlReply, ControlRequest};
use wire::{FedRequest, FedResponse};

/// How many recent engine events `status` shows.
const RECENT_EVENTS: usize = 50;

/// Something a spawned task finished.
enum Completion {
    Sent {
        to: MeshId,
        message_hash: vm_receipts::Blake3Hash,
        /// `https` or `libp2p`.
        transport: &'static str,
        result: Result<FedResponse, String>,
    },
    Discovered {
        target: String,
        result: Result<Found, String>,
        /// `None`: a re-find of an unreachable peer ([`refind`]).
        reply: Option<oneshot::Sender<ControlReply>>,
    },
    /// An answer (or a transport failure) to a request of the witness core.
    WitnessAnswer {
        id: crate::witness::core::RequestId,
        answer: Box<crate::witness::core::Answer>,
        /// Who answered, and over what (`None` when nothing was sent).
        from: Option<(MeshId, &'static str)>,
    },
    /// A call to a peer failed at the transport (no answer at all).
    Unreachable { peer: MeshId, error: String },
    /// Our discovery record was published (`ok`: a peer stored it).
    Published { ok: bool },
    /// The anchor backend answered.
    Anchored {
        cycle: Box<anchor::PendingCycle>,
        result: Result<crate::anchor::BackendAnchor, crate::anchor::AnchorError>,
        /// When the cycle began (`now_ms`), for its duration.
        started_ms: u64,
        reply: Option<oneshot::Sender<ControlReply>>,
    },
}

/// What a discovery turned up.
struct Found {
    records: Vec<(DiscoveryRecord, PeerSource)>,
    notes: Value,
}

/// Runs the node on `root` until `shutdown` resolves.
pub async fn run(
    root: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let dir = DataDir::open(root)?;
    let config = dir.config().clone();
    let mesh_id = dir.mesh_id().clone();
    let clock: vm_network::Clock = Arc::new(|| SystemClock.now());

    let (scroll, _) =
        Scroll::open(root, &ScrollName::federation()).context("opening the Federation scroll")?;
    files::check_federation_root(&dir, &scroll)?;
    let store = files::open_state(root, &scroll)?;
    let scrolls = files::open_scrolls(&dir)?;
    let (backend, witness_config) = anchor_settings(&config)?;

    // Trust level 0 (`isolated`, DESIGN §6): federation off, so no federation listener of
    // either transport is opened and no DHT is joined.
    let federation_on = config.federation.min_trust_level > 0;
    let mut net_config = NetworkConfig::new(dir.key().clone(), clock.clone());
    if federation_on {
        net_config.listen = config.network.listen.clone();
        net_config.bootstrap = config.network.bootstrap.clone();
    } else {
        net_config.listen = Vec::new();
        net_config.bootstrap = Vec::new();
    }
    net_config.public = config.network.public;
    net_config.target_peers = config.network.target_peers;
    net_config.max_connections = config.network.max_connections;
    net_config.allow_private_addresses = config.allows_private_addresses();
    net_config.gossip_initial_delay = Duration::from_millis(config.network.gossip_initial_delay_ms);
    net_config.request_timeout = Duration::from_secs(config.network.request_timeout_secs.max(1));
    // Ports picked by the OS on the first start are kept for the next (issue 17): peers
    // that stored our addresses find us again after a restart.
    let remembered = federation_on
        .then(|| files::remembered_listen(root, &config.network.listen))
        .flatten();
    let (net, net_events) = match remembered {
        Some(addrs) => {
            let mut again = net_config.clone();
            again.listen = addrs;
            match vm_network::spawn(again).await {
                Ok(started) => started,
                Err(e) => {
                    tracing::warn!(error = %e, "the ports used before are taken; listening on the configured addresses (peers must learn the new ones)");
                    vm_network::spawn(net_config)
                        .await
                        .context("starting the network")?
                }
            }
        }
        None => vm_network::spawn(net_config)
            .await
            .context("starting the network")?,
    };
    if federation_on {
        let bound: Vec<String> = net.listen_addrs().iter().map(|a| strip_p2p(a)).collect();
        files::remember_listen(root, &config.network.listen, &bound);
    }

    let nameserver = match &config.dns.nameserver {
        Some(text) => Some(
            text.parse::<SocketAddr>()
                .map_err(|e| anyhow::anyhow!("config.toml [dns] nameserver {text:?}: {e}"))?,
        ),
        None => None,
    };
    let dns = Arc::new(
        DnsDiscovery::new(DnsConfig {
            nameserver,
            ..DnsConfig::default()
        })
        .context("DNS resolver")?,
    );
    // HTTPS endpoints are resolved by the configured nameserver when there is one (issue
    // 17: an endpoint found through it must be reachable through it), else by the system.
    let resolver = match nameserver {
        Some(_) => crate::http::client::Resolver::Dns(dns.clone()),
        None => crate::http::client::Resolver::System,
    };

    // The HTTPS shim: our TLS identity is a self-signed certificate for the mesh key.
    let identity = vm_network::tls::TlsIdentity::new(
        &dir.key().seed_bytes(),
        mesh_id.as_str(),
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        SystemClock.now().unix() - 3600,
        365,
    )
    .map_err(|e| anyhow::anyhow!("TLS identity: {e}"))?;
    let (http_tx, http_rx) = mpsc::channel(256);
    let mut http_server = None;
    let mut advertised = config.http.advertise.clone();
    if let Some(listen) = config.http.listen.as_ref().filter(|_| federation_on) {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("config.toml [http] listen {listen:?}: {e}"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the HTTPS listener on {addr}"))?;
        let bound = listener.local_addr()?;
        let tls_clock: vm_network::tls::TlsClock = Arc::new(|| SystemClock.now().unix());
        let server_config = vm_network::tls::server_config(&identity, tls_clock)
            .map_err(|e| anyhow::anyhow!("TLS server: {e}"))?;
        http_server = Some(tokio::spawn(https::serve(
            listener,
            server_config,
            http_tx.clone(),
        )));
        advertised.get_or_insert(format!("https://{bound}"));
        println!("federation API on https://{bound}");
    }
    drop(http_tx);
    let https_client = Arc::new(https::HttpsClient::new(
        identity,
        dir.key().clone(),
        mesh_id.clone(),
        config.allows_private_addresses(),
        Duration::from_secs(config.network.request_timeout_secs.max(1)),
        resolver,
    ));

    let mut engine_config = EngineConfig::new(config.display_name.clone());
    let engine_federation_api = advertised.clone();
    engine_config.endpoints.federation = advertised;
    engine_config.multiaddrs = net.listen_addrs().iter().map(|a| strip_p2p(a)).collect();
    engine_config.scrolls_available = std::iter::once(ScrollName::federation())
        .chain(scrolls.values().map(|s| s.name().clone()))
        .collect();
    engine_config.trust_policy.accepts_proposals = config.federation.accepts_proposals;
    engine_config.federation_on = federation_on;
    engine_config.suspend_on = config.witness.suspend_on.clone();
    engine_config.trust_policy.min_trust_level =
        TrustLevel::try_from(config.federation.min_trust_level.max(1)).map_err(|e| {
            anyhow::anyhow!("config.toml [federation] min_trust_level must be 0 to 4: {e}")
        })?;
    let seed = os_random_32().map_err(|e| anyhow::anyhow!("OS random number generator: {e}"))?;
    let node_seed =
        os_random_32().map_err(|e| anyhow::anyhow!("OS random number generator: {e}"))?;
    let witness_seed =
        os_random_32().map_err(|e| anyhow::anyhow!("OS random number generator: {e}"))?;
    let engine = Engine::open(
        mesh_id.clone(),
        dir.key().clone(),
        engine_config,
        store,
        scroll.len(),
        seed,
    )
    .context("opening the engine")?;

    let (control_tx, control_rx) = mpsc::channel(64);
    let (listener, socket_path) = control::bind(root)
        .with_context(|| format!("binding {}", root.join(control::SOCKET_NAME).display()))?;
    let monitor = match config.metrics.listen {
        Some(addr) => {
            let (bound, task) = monitor::bind(addr, control_tx.clone()).await?;
            println!("metrics on http://{bound}/metrics (and /healthz, /readyz)");
            Some(task)
        }
        None => None,
    };
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, control::router(control_tx)).await {
            tracing::error!(error = %e, "control socket stopped");
        }
    });

    let (completions_tx, completions_rx) = mpsc::channel(1024);
    let net_handle_for_outbound = net.clone();
    let my_key = dir.key().public_key();
    let mut node = Node {
        dir,
        engine,
        scroll,
        net,
        dns,
        completions: completions_tx,
        recent: VecDeque::new(),
        peer_meshes: HashMap::new(),
        clock: SystemClock,
        scrolls,
        witness: crate::witness::core::WitnessCore::new(
            mesh_id.clone(),
            my_key,
            witness_config,
            witness_seed,
        ),
        waiters: HashMap::new(),
        next_waiter: 0,
        rng: rand_chacha::ChaCha20Rng::from_seed(node_seed),
        outbound: https::Outbound {
            net: net_handle_for_outbound,
            https: https_client.clone(),
            prefer_https: config.network.listen.is_empty(),
        },
        https: https_client,
        rate_limits: https::RateLimits::new(config.http.rate_per_sec, config.http.rate_burst),
        // One address may carry several meshes (a NAT, a host of meshes): four times a mesh's.
        address_limits: https::RateLimits::new(
            config.http.rate_per_sec.saturating_mul(4),
            config.http.rate_burst.saturating_mul(4),
        ),
        federation_api: engine_federation_api,
        backend,
        anchoring: false,
        anchor_interval: Duration::from_secs(config.anchor.interval_secs),
        last_anchor: None,
        faults: health::Faults::default(),
        tick_backoff_ms: 0,
        tick_retry_at_ms: None,
        contacts: HashMap::new(),
        metrics: metrics::Metrics::new(),
        overdue: std::collections::BTreeSet::new(),
        last_checked: HashMap::new(),
        started_at: SystemClock.now(),
        refind: refind::Refind::default(),
    };
    // Receipts queued before a crash reach the scroll first.
    node.flush().context("recovering the Federation scroll")?;
    node.index_peers();
    // Federated peers keep their connections through the peer manager's trimming.
    for record in node.engine.store().all::<AgreementRecord>()? {
        if matches!(
            record.status,
            AgreementStatus::Active
                | AgreementStatus::Suspended { .. }
                | AgreementStatus::Revoking { .. }
        ) {
            for party in record.agreement.parties.iter().filter(|p| *p != &mesh_id) {
                node.protect(party);
            }
        }
    }
    tracing::info!(mesh = %mesh_id, peer_id = %node.net.peer_id(), listen = ?node.net.listen_addrs(), socket = %socket_path.display(), "node running");
    println!(
        "node {} running; peer id {}; control socket {}",
        mesh_id,
        node.net.peer_id(),
        socket_path.display()
    );
    for a in node.net.listen_addrs() {
        println!("listening on {a}");
    }

    let result = node
        .run(net_events, control_rx, completions_rx, http_rx, shutdown)
        .await;
    server.abort();
    if let Some(m) = monitor {
        m.abort();
    }
    if let Some(h) = http_server {
        h.abort();
    }
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("node stopped");
    result
}

/// An address given for a peer by hand: an `https://` endpoint of its federation API, or a
/// multiaddr to dial (whose `/p2p/` part, if any, is the peer's key).
fn check_peer_address(addr: &str, key: &PublicKey) -> Result<(), String> {
    if addr.starts_with("https://") {
        let uri: hyper::Uri = addr
            .parse()
            .map_err(|e| format!("{addr:?} is not a URL: {e}"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("{addr:?} names no host"));
        }
        if uri.query().is_some() {
            return Err(format!("{addr:?}: an endpoint takes no query"));
        }
        return Ok(());
    }
    if addr.contains("://") {
        return Err(format!(
            "{addr:?}: only https:// endpoints are used (the federation API is HTTPS with mutual TLS)"
        ));
    }
    vm_network::check_dial_address(addr, &key.peer_id())
}

/// How often the node looks for peers overdue for verification.
const OVERDUE_CHECK: Duration = Duration::from_secs(1);

/// A witness result, as metrics label it.
fn result_label(result: vm_receipts::documents::WitnessResult) -> &'static str {
    match result {
        vm_receipts::documents::WitnessResult::Verified => "verified",
        vm_receipts::documents::WitnessResult::Discrepancy => "discrepancy",
    }
}

/// A request's name in logs.
fn request_kind(request: &FedRequest) -> &'static str {
    match request {
        FedRequest::Discovery => "discovery",
        FedRequest::Message { .. } => "message",
        FedRequest::Notify { .. } => "notify",
        FedRequest::Roots { .. } => "roots",
        FedRequest::Evidence { .. } => "evidence",
        FedRequest::GetProposal { .. } => "get_proposal",
        FedRequest::ListAgreements => "list_agreements",
        FedRequest::GetAgreement { .. } => "get_agreement",
        FedRequest::Receipts { .. } => "receipts",
        FedRequest::Verify { .. } => "verify",
        FedRequest::ConsistencyProof { .. } => "consistency_proof",
        FedRequest::InclusionProof { .. } => "inclusion_proof",
    }
}

/// Sleeps `d`, or for ever when there is nothing to wait for.
async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn strip_p2p(addr: &str) -> String {
    match addr.find("/p2p/") {
        Some(i) => addr[..i].to_owned(),
        None => addr.to_owned(),
    }
}

struct Node {
    dir: DataDir,
    engine: Engine,
    scroll: Scroll,
    net: NetworkHandle,
    dns: Arc<DnsDiscovery>,
    completions: mpsc::Sender<Completion>,
    recent: VecDeque<Value>,
    /// PeerId → mesh, derived from the peer book: rebuilt when the engine reports a peer
    /// update (the only way the book changes), so an inbound request costs a map lookup.
    peer_meshes: HashMap<String, MeshId>,
    clock: SystemClock,
    /// Our scrolls other than the Federation scroll, by file stem.
    scrolls: BTreeMap<String, Scroll>,
    /// The witness protocol's decisions (`crate::witness::core`); this node carries them out.
    witness: crate::witness::core::WitnessCore,
    /// Operators waiting for a witness check (`verify`), by the core's waiter id.
    waiters: HashMap<crate::witness::core::Waiter, oneshot::Sender<ControlReply>>,
    next_waiter: u64,
    /// Samples, nonces: seeded from the OS once.
    rng: rand_chacha::ChaCha20Rng,
    backend: anchor::Backend,
    /// An anchor cycle waits for its backend.
    anchoring: bool,
    anchor_interval: Duration,
    last_anchor: Option<Value>,
    /// Requests to peers over libp2p or HTTPS.
    outbound: https::Outbound,
    https: Arc<https::HttpsClient>,
    rate_limits: https::RateLimits,
    address_limits: https::RateLimits,
    /// Our HTTPS API's base URL, when it is on.
    federation_api: Option<String>,
    /// Parts of our own files that failed and are being retried (`health`).
    faults: health::Faults,
    /// After a failed engine tick, how long until the next (doubling, at most a minute), and
    /// when it is due: a tick that fails is not retried at once.
    tick_backoff_ms: u64,
    tick_retry_at_ms: Option<u64>,
    /// When each mesh was last heard from (a request it made, or an answer to ours), and how.
    contacts: HashMap<MeshId, (Timestamp, &'static str)>,
    /// What the node counts, for `[metrics]` and `status`.
    metrics: metrics::Metrics,
    /// Peers' scrolls overdue for verification at the last look (logged on change).
    overdue: std::collections::BTreeSet<(MeshId, ScrollName)>,
    /// When a check of each peer's scroll last reached a verdict (an unchanged root
    /// included, which writes nothing to the store), since this start.
    last_checked: HashMap<(MeshId, ScrollName), Timestamp>,
    /// When this node started: a peer is not overdue before two periods have passed since.
    started_at: Timestamp,
    /// Looking unreachable federated peers up again; republishing our record.
    refind: refind::Refind,
}

/// Every problem `node run` would refuse `config` for, each named (`config check`).
pub fn config_problems(config: &crate::config::Config) -> Vec<String> {
    let mut problems = range_problems(config);
    if problems.is_empty()
        && let Err(e) = anchor_settings(config)
    {
        problems.push(e.to_string());
    }
    if let Some(text) = &config.dns.nameserver
        && let Err(e) = text.parse::<SocketAddr>()
    {
        problems.push(format!("config.toml [dns] nameserver {text:?}: {e}"));
    }
    if let Some(text) = &config.http.listen
        && let Err(e) = text.parse::<SocketAddr>()
    {
        problems.push(format!("config.toml [http] listen {text:?}: {e}"));
    }
    if config.federation.min_trust_level > 4 {
        problems.push(format!(
            "config.toml [federation] min_trust_level must be 0 to 4, not {}",
            config.federation.min_trust_level
        ));
    }
    for (key, addrs) in [
        ("listen", &config.network.listen),
        ("bootstrap", &config.network.bootstrap),
    ] {
        for a in addrs.iter().filter(|a| !a.starts_with('/')) {
            problems.push(format!(
                "config.toml [network] {key} {a:?}: not a multiaddr (they start with /ip4/, /ip6/ or /dns/)"
            ));
        }
    }
    problems
}

/// The numbers of `[witness]` and `[anchor]` out of range, each named.
fn range_problems(config: &crate::config::Config) -> Vec<String> {
    let w = &config.witness;
    let mut problems = Vec::new();
    if w.samples == 0 || w.samples > crate::witness::MAX_SAMPLES {
        problems.push(format!(
            "config.toml [witness] samples must be 1 to {}, not {}",
            crate::witness::MAX_SAMPLES,
            w.samples
        ));
    }
    if w.drift_secs < 1 {
        problems.push("config.toml [witness] drift_secs must be at least 1".into());
    }
    if config.anchor.interval_secs < 1 {
        problems.push("config.toml [anchor] interval_secs must be at least 1".into());
    }
    problems
}

/// `[anchor]` and `[witness]`, checked.
fn anchor_settings(
    config: &crate::config::Config,
) -> anyhow::Result<(anchor::Backend, crate::witness::core::CoreConfig)> {
    let w = &config.witness;
    if let Some(first) = range_problems(config).into_iter().next() {
        anyhow::bail!(first);
    }
    let tsa = if w.tsa_trust.is_empty() {
        None
    } else {
        Some(Arc::new(
            crate::anchor::TsaTrust::from_pem_files(&w.tsa_trust)
                .map_err(|e| anyhow::anyhow!("config.toml [witness] tsa_trust: {e}"))?,
        ))
    };
    let backend = match config.anchor.backend.as_str() {
        "local" => anchor::Backend::Local,
        "rfc3161" => {
            let url = config.anchor.tsa_url.as_deref().ok_or_else(|| {
                anyhow::anyhow!("config.toml [anchor] backend = \"rfc3161\" needs tsa_url")
            })?;
            let timeout = Duration::from_secs(config.anchor.tsa_timeout_secs.max(1));
            anchor::Backend::Rfc3161(Arc::new(
                crate::anchor::Rfc3161Backend::new(url, timeout)
                    .map_err(|e| anyhow::anyhow!("config.toml [anchor] tsa_url: {e}"))?,
            ))
        }
        other => anyhow::bail!(
            "config.toml [anchor] backend must be \"local\" or \"rfc3161\", not {other:?}"
        ),
    };
    // A request is resent only after the transport's own timeout has had its say.
    let request_timeout_ms = config.network.request_timeout_secs.max(1) * 1000 + 2000;
    Ok((
        backend,
        crate::witness::core::CoreConfig {
            samples: w.samples,
            drift_secs: w.drift_secs,
            request_timeout_ms,
            check_deadline_ms: 4 * request_timeout_ms,
            tsa,
            ..Default::default()
        },
    ))
}

fn err(status: StatusCode, code: &str, message: impl Into<String>) -> ControlError {
    ControlError::new(status, code, message)
}

fn engine_error(e: &EngineError) -> ControlError {
    let status = match e.code() {
        "unknown_proposal" | "unknown_agreement" | "unknown_sender" | "unknown_discrepancy" => {
            StatusCode::NOT_FOUND
        }
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::CONFLICT,
    };
    ControlError::new(status, e.code(), e.to_string())
}

impl Node {
    async fn run(
        &mut self,
        mut net_events: mpsc::Receiver<NetworkEvent>,
        mut control: mpsc::Receiver<ControlRequest>,
        mut completions: mpsc::Receiver<Completion>,
        mut http: mpsc::Receiver<https::HttpCall>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut anchor_timer = tokio::time::interval(self.anchor_interval);
        anchor_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Every second: peers overdue for verification are looked for (a read of the state,
        // no write), so the WARN comes within a second; unreachable peers due for another
        // lookup of their record get one.
        let mut overdue_timer = tokio::time::interval(OVERDUE_CHECK);
        overdue_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // SIGHUP reloads config.toml (it no longer ends the node).
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("watching SIGHUP")?;
        // Every listener is bound and SIGHUP is handled: a service manager may go on.
        systemd::notify("READY=1\nSTATUS=running");
        loop {
            self.note_store_fault();
            let wake = self.next_wake();
            let witness_wake = self
                .witness
                .poll_timeout()
                .map(|at| Duration::from_millis(at.saturating_sub(self.now_ms())));
            let heal_wake = self
                .faults
                .next_retry_ms()
                .map(|at| Duration::from_millis(at.saturating_sub(self.now_ms())));
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("shutdown requested");
                    systemd::notify("STOPPING=1");
                    return Ok(());
                }
                Some(event) = net_events.recv() => { self.on_network(event).await; }
                Some(request) = control.recv() => {
                    if let ControlOp::Discover { target } = request.op {
                        // DNS and DHT lookups take time: answered by a completion.
                        self.discover(Some(target), Some(request.reply));
                    } else if let ControlOp::DiscoverPublic = request.op {
                        self.discover(None, Some(request.reply));
                    } else if let ControlOp::AnchorNow = request.op {
                        self.anchor_cycle(Some(request.reply));
                    } else if let ControlOp::Verify { mesh, scroll } = request.op {
                        self.verify_now(&mesh, &scroll, request.reply);
                    } else {
                        let reply = self.on_control(request.op).await;
                        let _ = request.reply.send(reply);
                    }
                }
                Some(done) = completions.recv() => { self.on_completion(done); }
                Some(call) = http.recv() => { self.on_http(call); }
                _ = anchor_timer.tick() => { self.anchor_cycle(None); }
                _ = overdue_timer.tick() => {
                    self.check_overdue();
                    self.refind_due();
                }
                Some(()) = hangup.recv() => {
                    systemd::notify("RELOADING=1");
                    let reloaded = self.reload();
                    systemd::notify("READY=1\nSTATUS=running");
                    if let Some(every) = reloaded {
                        anchor_timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                        anchor_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                }
                () = sleep_or_never(wake) => { self.tick(); }
                () = sleep_or_never(heal_wake) => { self.heal_due(); }
                () = sleep_or_never(witness_wake) => { self.on_witness_timeout(); }
            }
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The wall clock in milliseconds (the witness core's time).
    fn now_ms(&self) -> u64 {
        crate::clock::unix_millis()
    }

    /// How long until the engine wants a tick: never while the state database is degraded
    /// (the heal timer runs instead), and not before a failed tick's backoff.
    fn next_wake(&mut self) -> Option<Duration> {
        if self.faults.has(&health::Part::State) {
            return None;
        }
        let due = match self.engine.poll_timeout() {
            Ok(due) => due,
            Err(e) => {
                self.note_store_fault();
                tracing::warn!(error = %e, "cannot read when the engine is next due");
                return Some(Duration::from_millis(self.backoff_tick()));
            }
        };
        let mut wake = match due {
            Some(at) => {
                let secs = at.seconds_since(self.now());
                Duration::from_secs(u64::try_from(secs.clamp(0, 3600)).unwrap_or(0))
            }
            None => Duration::from_secs(3600),
        };
        if let Some(at) = self.tick_retry_at_ms {
            wake = wake.max(Duration::from_millis(at.saturating_sub(self.now_ms())));
        }
        Some(wake)
    }

    /// The engine's timer fired.
    fn tick(&mut self) {
        let now = self.now();
        match self.engine.handle(now, Input::Tick) {
            Ok(outputs) => {
                self.tick_backoff_ms = 0;
                self.tick_retry_at_ms = None;
                self.apply(outputs);
            }
            Err(e) => {
                self.note_store_fault();
                let retry_in = self.backoff_tick();
                tracing::warn!(error = %e, retry_in_ms = retry_in, "the engine's timer failed");
            }
        }
    }

    /// Doubles the failed-tick backoff (1 s to 60 s); returns it.
    fn backoff_tick(&mut self) -> u64 {
        self.tick_backoff_ms = (self.tick_backoff_ms * 2).clamp(1_000, 60_000);
        self.tick_retry_at_ms = Some(self.now_ms() + self.tick_backoff_ms);
        self.tick_backoff_ms
    }

    /// Feeds the engine one input and carries out what it asks. Errors are logged: the
    /// input changed nothing.
    fn input(&mut self, input: Input) -> Option<Vec<Value>> {
        let now = self.now();
        match self.engine.handle(now, input) {
            Ok(outputs) => Some(self.apply(outputs)),
            Err(e) => {
                tracing::warn!(error = %e, "engine refused an input");
                self.note_store_fault();
                None
            }
        }
    }

    /// Carries out engine outputs; returns the operator events among them.
    fn apply(&mut self, outputs: Vec<Output>) -> Vec<Value> {
        let mut events = Vec::new();
        let mut receipts = false;
        for output in outputs {
            match output {
                Output::Send {
                    to,
                    message,
                    message_hash,
                } => self.send(to, message, message_hash),
                Output::Receipt { .. } => receipts = true,
                Output::PublishDiscovery(record) => self.publish(&record),
                Output::ExchangeRoots { peer, scrolls } => self.exchange_roots(&peer, &scrolls),
                Output::VerificationDue {
                    agreement_id,
                    peer,
                    scrolls,
                } => {
                    tracing::debug!(%agreement_id, %peer, "verification due");
                    for scroll in scrolls {
                        self.witness_due(&peer, &scroll, None);
                    }
                }
                Output::Event(event) => {
                    let value = event_json(&event);
                    match &event {
                        // A finding, ours or against us, is what an operator must not miss:
                        // ERROR at the default log level (issue 17). Seen again, it is
                        // counted on its record and logged at INFO.
                        Event::Discrepancy { .. } => {
                            tracing::error!(event = %value, "discrepancy recorded");
                        }
                        Event::ArbitrationVerdict { .. } => {
                            tracing::warn!(event = %value, "arbitration verdict");
                        }
                        Event::DiscrepancyResolved { .. } => {
                            tracing::warn!(event = %value, "discrepancy resolved");
                        }
                        Event::Delayed { .. } => {
                            tracing::warn!(event = %value, "a message is still undelivered after its first attempts; resending with backoff");
                        }
                        Event::Undelivered { .. } => {
                            tracing::warn!(event = %value, "a message was given up");
                        }
                        _ => tracing::info!(event = %value, "federation event"),
                    }
                    match &event {
                        Event::PeerUpdated { .. } | Event::PeerRemoved { .. } => self.index_peers(),
                        Event::Witnessed { result, .. } => {
                            self.metrics.attestation_given(result_label(*result));
                        }
                        Event::Attested { result, .. } => {
                            self.metrics.attestation_received(result_label(*result));
                        }
                        _ => {}
                    }
                    if let Event::Established { peer, .. } = &event {
                        self.protect(peer);
                    }
                    self.recent
                        .push_back(json!({"at": self.now(), "event": value.clone()}));
                    while self.recent.len() > RECENT_EVENTS {
                        self.recent.pop_front();
                    }
                    events.push(value);
                }
            }
        }
        if receipts {
            self.flush_federation();
        }
        events
    }

    /// Appends queued receipts and rewrites the signed root file, while running: a failure
    /// degrades the part that failed (the receipts stay queued in the state database) and is
    /// retried by `heal_due`.
    fn flush_federation(&mut self) {
        let federation = ScrollName::federation();
        if self.faults.has(&health::Part::State)
            || self.faults.has(&health::Part::Scroll(federation.clone()))
        {
            return;
        }
        let now = self.now();
        match federation_log::flush(&mut self.engine, &mut self.scroll, now) {
            Ok(0) => {}
            Ok(_) => match self.write_root(&federation) {
                Ok(()) => self.faults.healed(&health::Part::RootFile(federation)),
                Err(e) => self.note_fault(health::Part::RootFile(federation), e),
            },
            Err(federation_log::LogError::Scroll(e)) => {
                self.note_fault(health::Part::Scroll(federation), e);
            }
            Err(e) => {
                self.note_store_fault();
                tracing::error!(error = %e, "could not append receipts to the Federation scroll; they stay queued");
            }
        }
    }

    /// Appends queued receipts and rewrites the signed root file (at start: a failure stops
    /// the node).
    fn flush(&mut self) -> anyhow::Result<()> {
        let now = self.now();
        let appended = federation_log::flush(&mut self.engine, &mut self.scroll, now)?;
        if appended > 0 {
            let root = self
                .scroll
                .sign_root(self.dir.key(), self.dir.mesh_id(), now)?;
            write_root_file(self.dir.root(), &root)?;
        }
        Ok(())
    }

    fn peer_entry(&self, mesh: &MeshId) -> Option<PeerEntry> {
        self.engine
            .store()
            .get::<PeerEntry>(mesh.as_str())
            .ok()
            .flatten()
    }

    /// The mesh whose key is `peer`'s libp2p identity.
    /// Rebuilds the PeerId → mesh map from the peer book.
    fn index_peers(&mut self) {
        match self.engine.store().all::<PeerEntry>() {
            Ok(peers) => {
                self.peer_meshes = peers
                    .into_iter()
                    .filter_map(|e| Some((e.public_key?.peer_id(), e.mesh_id)))
                    .collect();
            }
            Err(e) => tracing::error!(error = %e, "cannot read the peer book"),
        }
    }

    fn protect(&self, mesh: &MeshId) {
        if let Some(key) = self.peer_entry(mesh).and_then(|e| e.public_key) {
            let net = self.net.clone();
            tokio::spawn(async move {
                let _ = net
                    .send(NetworkCommand::Protect {
                        peer: key.peer_id(),
                    })
                    .await;
            });
        }
    }

    /// How to reach `mesh`: its key, its libp2p addresses and HTTPS endpoints (its record's
    /// and the manual ones; a manual `https://` address is an endpoint).
    fn route(&self, mesh: &MeshId) -> Option<https::Target> {
        let entry = self.peer_entry(mesh)?;
        let key = entry.public_key?;
        let mut p2p: Vec<String> = Vec::new();
        let mut endpoints: Vec<String> = Vec::new();
        if let Some(record) = &entry.discovery_record {
            p2p.extend(record.multiaddrs.iter().cloned());
            endpoints.extend(record.endpoints.federation.iter().cloned());
        }
        for a in &entry.manual_addresses {
            if a.starts_with("https://") {
                endpoints.push(a.clone());
            } else {
                p2p.push(a.clone());
            }
        }
        Some(https::Target {
            mesh: mesh.clone(),
            key,
            p2p,
            https: endpoints,
        })
    }

    /// One of our scrolls by name (the Federation scroll included).
    fn scroll_named(&self, name: &ScrollName) -> Option<&Scroll> {
        if name == &ScrollName::federation() {
            Some(&self.scroll)
        } else {
            self.scrolls.get(&name.file_stem())
        }
    }

    fn send(&mut self, to: MeshId, message: PeerMessage, message_hash: vm_receipts::Blake3Hash) {
        let Some(target) = self.route(&to) else {
            let _ = self.completions.try_send(Completion::Sent {
                to,
                message_hash,
                transport: "none",
                result: Err("no key known for the mesh".into()),
            });
            return;
        };
        let body = match message.to_value() {
            Ok(value) => FedRequest::Message { message: value },
            Err(e) => {
                tracing::error!(error = %e, "engine produced an unencodable message");
                return;
            }
        };
        let outbound = self.outbound.clone();
        let completions = self.completions.clone();
        let transport = outbound.transport(&target);
        tokio::spawn(async move {
            let result = outbound.call(&target, &body).await;
            let _ = completions
                .send(Completion::Sent {
                    to,
                    message_hash,
                    transport,
                    result,
                })
                .await;
        });
    }

    fn publish(&self, record: &DiscoveryRecord) {
        let Ok(bytes) = serde_json::to_vec(record) else {
            return;
        };
        let net = self.net.clone();
        let completions = self.completions.clone();
        tokio::spawn(async move {
            let ok = match net.publish_record(bytes).await {
                Ok(()) => {
                    tracing::info!("discovery record published in the DHT");
                    true
                }
                Err(e) => {
                    tracing::info!(error = %e, "discovery record not stored by any peer yet");
                    false
                }
            };
            let _ = completions.send(Completion::Published { ok }).await;
        });
    }

    fn on_completion(&mut self, done: Completion) {
        match done {
            Completion::Sent {
                to,
                message_hash,
                transport,
                result,
            } => {
                match &result {
                    Ok(_) => self.contacted(&to, transport),
                    Err(e) => {
                        let e = e.clone();
                        self.unreachable(&to, &e);
                    }
                }
                let input = match result {
                    Ok(FedResponse::Ack) => Input::Delivered { to, message_hash },
                    Ok(FedResponse::Error {
                        error,
                        message,
                        permanent,
                    }) => Input::DeliveryFailed {
                        to,
                        message_hash,
                        reason: format!("{error}: {message}"),
                        permanent,
                    },
                    Ok(other) => Input::DeliveryFailed {
                        to,
                        message_hash,
                        reason: format!("unexpected response {other:?}"),
                        permanent: false,
                    },
                    Err(reason) => Input::DeliveryFailed {
                        to,
                        message_hash,
                        reason,
                        permanent: false,
                    },
                };
                if let Input::DeliveryFailed {
                    to,
                    reason,
                    permanent,
                    ..
                } = &input
                {
                    tracing::info!(%to, %reason, permanent, "delivery failed; the engine retries unless permanent");
                }
                self.input(input);
            }
            Completion::Discovered {
                target,
                result,
                reply,
            } => {
                let answer = match result {
                    Err(message) => Err(err(StatusCode::BAD_GATEWAY, "not_found", message)),
                    Ok(found) => {
                        let mut stored = Vec::new();
                        for (record, source) in found.records {
                            let mesh = record.mesh_id.clone();
                            let now = self.now();
                            match self.engine.handle(now, Input::Discovered { record: record.clone(), source }) {
                                Ok(outputs) => {
                                    self.apply(outputs);
                                    stored.push(json!({"mesh_id": mesh, "source": source, "peer_id": record.peer_id, "stored": true}));
                                }
                                Err(e) if e.is_acknowledgement() => {
                                    stored.push(json!({"mesh_id": mesh, "source": source, "peer_id": record.peer_id, "stored": true, "note": "already known"}));
                                }
                                Err(e) => stored.push(json!({"mesh_id": mesh, "source": source, "stored": false, "error": e.to_string()})),
                            }
                        }
                        // New neighbours: our record can now reach the DHT.
                        if let Ok(own) = self.engine.discovery_record(self.now()) {
                            self.publish(&own);
                        }
                        if stored.iter().any(|s| s["stored"] == true) {
                            Ok(json!({"target": target, "found": stored, "dns": found.notes}))
                        } else {
                            Err(err(
                                StatusCode::BAD_GATEWAY,
                                "refused",
                                format!(
                                    "{target}: every record found was refused: {}",
                                    Value::Array(stored)
                                ),
                            ))
                        }
                    }
                };
                match reply {
                    Some(reply) => {
                        let _ = reply.send(answer);
                    }
                    None => self.refound(&target, answer.is_ok()),
                }
            }
            Completion::WitnessAnswer { id, answer, from } => {
                match (&from, &*answer) {
                    (Some((peer, _)), crate::witness::core::Answer::Failed(e)) => {
                        let (peer, e) = (peer.clone(), e.clone());
                        self.unreachable(&peer, &e);
                    }
                    (Some((peer, transport)), _) => {
                        let peer = peer.clone();
                        self.contacted(&peer, transport);
                    }
                    (None, _) => {}
                }
                self.on_witness_answer(id, *answer);
            }
            Completion::Unreachable { peer, error } => self.unreachable(&peer, &error),
            Completion::Published { ok } => self.published(ok),
            Completion::Anchored {
                cycle,
                result,
                started_ms,
                reply,
            } => self.finish_cycle(*cycle, result, started_ms, reply),
        }
    }

    async fn on_network(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Request {
                request_id,
                peer,
                body,
            } => {
                let response = self.on_request(&peer, &body);
                let _ = self
                    .net
                    .send(NetworkCommand::Respond {
                        request_id,
                        body: response.to_bytes(),
                    })
                    .await;
            }
            NetworkEvent::Gossip { id, origin, data } => {
                let (verdict, root) = match self.check_gossip(origin.as_deref(), &data) {
                    GossipCheck::Accept(root) => (GossipVerdict::Accept, Some(root)),
                    GossipCheck::Ignore => (GossipVerdict::Ignore, None),
                    GossipCheck::Reject(_) => (GossipVerdict::Reject, None),
                };
                let _ = self
                    .net
                    .send(NetworkCommand::GossipVerdict { id, verdict })
                    .await;
                if let Some(root) = root {
                    self.on_gossip(root);
                }
            }
            NetworkEvent::PeerConnected { peer } => {
                tracing::debug!(%peer, "peer connected");
                self.on_connected();
            }
            NetworkEvent::PeerDisconnected { peer } => tracing::debug!(%peer, "peer disconnected"),
            _ => {}
        }
    }

    fn penalise(&self, peer: &str, reason: String) {
        let net = self.net.clone();
        let peer = peer.to_owned();
        tokio::spawn(async move {
            let _ = net.send(NetworkCommand::Penalise { peer, reason }).await;
        });
    }

    /// One inbound federation request. Malformed, unsigned and wrongly signed requests are
    /// refused with a reason, penalise the sender, and change nothing.
    fn on_request(&mut self, peer: &str, body: &[u8]) -> FedResponse {
        let (kind, response) = self.answer_request(peer, body);
        self.count("libp2p", kind, &response);
        response
    }

    /// Counts a request answered over `transport`, and a refusal by its code.
    fn count(&mut self, transport: &'static str, kind: &str, response: &FedResponse) {
        self.metrics.request(transport, kind);
        if let FedResponse::Error { error, .. } = response {
            self.metrics.refusal(transport, error);
        }
    }

    fn answer_request(&mut self, peer: &str, body: &[u8]) -> (&'static str, FedResponse) {
        let request: FedRequest = match wire::decode(body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed federation request");
                self.penalise(peer, format!("malformed request: {e}"));
                return (
                    "malformed",
                    FedResponse::error("malformed", format!("not a federation request: {e}"), true),
                );
            }
        };
        let kind = request_kind(&request);
        // The sender is the mesh whose key the Noise-authenticated peer holds; the engine
        // then checks that this mesh signed what it sent.
        let from = match &request {
            FedRequest::Discovery => None,
            other => match self.sender(peer, request_kind(other)) {
                Ok(from) => Some(from),
                Err(refusal) => return (kind, refusal),
            },
        };
        // The limits of the HTTPS API, on this transport too: a mesh has one budget across
        // both; an anonymous request (discovery) counts against its peer id.
        let now_ms = self.now().unix().saturating_mul(1000);
        let limited = match &from {
            Some(mesh) => self.rate_limits.take(mesh.as_str(), now_ms),
            None => self.address_limits.take(&format!("p2p:{peer}"), now_ms),
        };
        if let Err(wait) = limited {
            return (
                kind,
                FedResponse::error(
                    "rate_limited",
                    format!("too many requests; retry after {wait} s"),
                    false,
                ),
            );
        }
        if let Some(mesh) = &from {
            self.contacted(mesh, "libp2p");
        }
        let (response, strike) = self.handle_fed(from.as_ref(), request);
        if let Some(reason) = strike {
            self.penalise(peer, reason);
        }
        (kind, response)
    }

    /// The one request handler of both transports (libp2p request-response and HTTPS):
    /// `from` is the mesh the transport authenticated (Noise PeerId, or mTLS key + signed
    /// request), `None` only for discovery. Returns the response and, for malformed or
    /// wrongly signed input, the reason to count a strike against the sender.
    pub(super) fn handle_fed(
        &mut self,
        from: Option<&MeshId>,
        request: FedRequest,
    ) -> (FedResponse, Option<String>) {
        let Some(from) = from else {
            return match request {
                FedRequest::Discovery => (self.serve_discovery(), None),
                _ => (
                    FedResponse::error("unauthorized", "only discovery is served to anyone", true),
                    None,
                ),
            };
        };
        match request {
            FedRequest::Discovery => (self.serve_discovery(), None),
            FedRequest::Notify { notification } => (self.on_notify(from, notification), None),
            FedRequest::Roots { scrolls } => (self.serve_roots(from, &scrolls), None),
            FedRequest::Evidence { ask } => (self.serve_evidence(from, &ask), None),
            FedRequest::GetProposal { proposal_id } => {
                (self.serve_proposal(from, &proposal_id), None)
            }
            FedRequest::ListAgreements => (self.serve_agreements(from, None), None),
            FedRequest::GetAgreement { agreement_id } => {
                (self.serve_agreements(from, Some(&agreement_id)), None)
            }
            FedRequest::Receipts {
                scroll,
                from: first,
                limit,
            } => (self.serve_receipts(from, &scroll, first, limit), None),
            FedRequest::Verify {
                scroll,
                sequence,
                receipt_hash,
            } => (
                self.serve_verify(from, &scroll, sequence, receipt_hash),
                None,
            ),
            FedRequest::ConsistencyProof {
                scroll,
                old_size,
                new_size,
            } => (
                self.serve_consistency(from, &scroll, old_size, new_size),
                None,
            ),
            FedRequest::InclusionProof {
                scroll,
                sequence,
                tree_size,
            } => (
                self.serve_inclusion(from, &scroll, sequence, tree_size),
                None,
            ),
            FedRequest::Message { message } => {
                let message = match PeerMessage::from_value(message) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(%from, error = %e, "malformed federation message");
                        let strike = format!("malformed message: {e}");
                        return (
                            FedResponse::error("bad_document", e.to_string(), true),
                            Some(strike),
                        );
                    }
                };
                if let PeerMessage::Attestation(a) = &message
                    && let Err(refusal) = self.check_attested_root(a)
                {
                    return (refusal, None);
                }
                let now = self.now();
                let from = from.clone();
                match self.engine.handle(
                    now,
                    Input::Peer {
                        from: from.clone(),
                        message,
                    },
                ) {
                    Ok(outputs) => {
                        self.apply(outputs);
                        (FedResponse::Ack, None)
                    }
                    Err(e) if e.is_acknowledgement() => (FedResponse::Ack, None),
                    Err(e) => {
                        let strike = if matches!(
                            e.code(),
                            "bad_signature" | "bad_document" | "sender_mismatch" | "key_mismatch"
                        ) {
                            tracing::warn!(%from, error = %e, "wrongly signed or invalid document");
                            Some(e.to_string())
                        } else {
                            tracing::info!(%from, error = %e, "federation message refused");
                            None
                        };
                        (
                            FedResponse::error(e.code(), e.to_string(), e.is_permanent()),
                            strike,
                        )
                    }
                }
            }
        }
    }

    fn serve_discovery(&mut self) -> FedResponse {
        match self.engine.discovery_record(self.now()) {
            Ok(record) => FedResponse::Discovery {
                record: Box::new(record),
            },
            Err(e) => FedResponse::error(e.code(), e.to_string(), false),
        }
    }

    /// The mesh whose key is the Noise-authenticated `peer`.
    fn sender(&self, peer: &str, kind: &str) -> Result<MeshId, FedResponse> {
        match self.peer_meshes.get(peer) {
            Some(mesh) => Ok(mesh.clone()),
            None => {
                tracing::info!(%peer, kind, "request from a peer we do not know");
                Err(FedResponse::error(
                    "unknown_sender",
                    format!(
                        "peer {peer} is not a mesh we know; it must be discovered (DHT, DNS) or added first"
                    ),
                    false,
                ))
            }
        }
    }

    /// An operator request. `Ok(None)` means the answer comes later (from a completion).
    async fn on_control(&mut self, op: ControlOp) -> ControlReply {
        match op {
            ControlOp::Status { all } => self.status(all).await,
            ControlOp::Metrics => self.scrape().await,
            ControlOp::Ready => Ok(self.ready().await),
            ControlOp::Health { all } => self.health(all).await,
            ControlOp::ListPeers => {
                let peers = self.all::<PeerEntry>()?;
                let agreements = self.all::<AgreementRecord>()?;
                Ok(json!(
                    peers
                        .iter()
                        .map(|p| {
                            let mut row = peer_json(p);
                            if let Some((at, transport)) = self.contacts.get(&p.mesh_id) {
                                row["last_contact"] = json!(at);
                                row["last_transport"] = json!(transport);
                            }
                            // The latest agreement with the mesh, whatever its state.
                            row["agreement"] = agreements
                                .iter()
                                .filter(|a| a.agreement.parties.contains(&p.mesh_id))
                                .max_by_key(|a| a.updated_at)
                                .map_or(Value::Null, |a| {
                                    json!({"agreement_id": a.agreement.agreement_id, "status": a.status, "trust_level": a.agreement.trust_level})
                                });
                            row
                        })
                        .collect::<Vec<_>>()
                ))
            }
            ControlOp::RemovePeer { mesh } => {
                let mesh_id = MeshId::parse_flexible(&mesh).map_err(bad)?;
                self.command(Command::RemovePeer { mesh_id })
            }
            ControlOp::Outbox => self.outbox_list(),
            ControlOp::RetryOutbox { id } => self.outbox_retry(id.as_deref()),
            ControlOp::AddPeer {
                mesh_id,
                public_key,
                addresses,
            } => {
                let mesh_id = MeshId::parse_flexible(&mesh_id).map_err(bad)?;
                let public_key: PublicKey = public_key.parse().map_err(bad)?;
                for a in &addresses {
                    check_peer_address(a, &public_key).map_err(bad)?;
                }
                self.command(Command::AddPeer {
                    mesh_id,
                    public_key,
                    addresses,
                })
            }
            ControlOp::Discover { .. } | ControlOp::DiscoverPublic => {
                Err(internal("discovery is answered asynchronously"))
            }
            ControlOp::Propose {
                target,
                trust_level,
                terms,
            } => {
                let target = MeshId::parse_flexible(&target).map_err(bad)?;
                let trust_level = TrustLevel::try_from(trust_level).map_err(bad)?;
                let terms = parse_terms(terms)?;
                self.command(Command::Propose {
                    target,
                    trust_level,
                    terms,
                })
            }
            ControlOp::ListProposals => {
                let all = self.all::<ProposalRecord>()?;
                Ok(json!(all.iter().map(proposal_summary).collect::<Vec<_>>()))
            }
            ControlOp::ShowProposal { id } => {
                let record = self.find_proposal(&id)?;
                Ok(serde_json::to_value(&record).map_err(internal)?)
            }
            ControlOp::Accept { id } => {
                let proposal = self.proposal_ref(&id)?;
                self.command(Command::Accept { proposal })
            }
            ControlOp::Reject { id, reason } => {
                let proposal = self.proposal_ref(&id)?;
                self.command(Command::Reject { proposal, reason })
            }
            ControlOp::Counter { id, terms } => {
                let proposal = self.proposal_ref(&id)?;
                let terms = parse_terms(terms)?;
                self.command(Command::Counter { proposal, terms })
            }
            ControlOp::Withdraw { id, reason } => {
                let proposal = self.proposal_ref(&id)?;
                self.command(Command::Withdraw { proposal, reason })
            }
            ControlOp::ListAgreements => {
                let all = self.all::<AgreementRecord>()?;
                Ok(json!(all.iter().map(agreement_summary).collect::<Vec<_>>()))
            }
            ControlOp::ShowAgreement { id } => {
                let record = self
                    .engine
                    .store()
                    .get::<AgreementRecord>(&id)
                    .map_err(store_error)?
                    .ok_or_else(|| {
                        err(
                            StatusCode::NOT_FOUND,
                            "unknown_agreement",
                            format!("no agreement {id}"),
                        )
                    })?;
                let mut value = serde_json::to_value(&record).map_err(internal)?;
                value["agreement_hash"] = json!(record.agreement.agreement_hash);
                Ok(value)
            }
            ControlOp::Amend {
                id,
                trust_level,
                scrolls,
                frequency,
                retention_days,
            } => self.amend(&id, trust_level, scrolls, frequency, retention_days),
            ControlOp::Revoke {
                id,
                notice_days,
                reason,
            } => {
                let agreement_id = id.parse().map_err(bad)?;
                self.command(Command::Revoke {
                    agreement_id,
                    notice_days,
                    reason,
                })
            }
            ControlOp::Suspend {
                id,
                reason,
                discrepancy_id,
            } => {
                let agreement_id = id.parse().map_err(bad)?;
                let discrepancy_id = discrepancy_id.map(|d| d.parse()).transpose().map_err(bad)?;
                self.command(Command::Suspend {
                    agreement_id,
                    reason,
                    discrepancy_id,
                })
            }
            ControlOp::Resume { id, reason } => {
                let agreement_id = id.parse().map_err(bad)?;
                self.command(Command::Resume {
                    agreement_id,
                    reason,
                })
            }
            ControlOp::AnchorNow | ControlOp::Verify { .. } => {
                Err(internal("answered asynchronously"))
            }
            ControlOp::WitnessHistory { mesh, since_secs } => {
                self.witness_history(&mesh, since_secs)
            }
            ControlOp::ListDiscrepancies => self.list_discrepancies(),
            ControlOp::ShowDiscrepancy { id } => self.show_discrepancy(&id),
            ControlOp::ArbitrateDiscrepancy { id, arbiter } => {
                let arbiter = MeshId::parse_flexible(&arbiter).map_err(bad)?;
                self.command(Command::Arbitrate {
                    discrepancy_id: id,
                    arbiter,
                })
            }
            ControlOp::ResolveDiscrepancy { id, outcome, note } => {
                let outcome = outcome.parse().map_err(bad)?;
                self.command(Command::ResolveDiscrepancy {
                    discrepancy_id: id,
                    outcome,
                    note,
                })
            }
            ControlOp::Append { scroll, receipts } => self.append(&scroll, receipts),
            ControlOp::ScrollProof { scroll, sequence } => self.scroll_proof(&scroll, sequence),
        }
    }

    /// Every stored record of one kind, for the control API.
    fn all<R: vm_storage::Record>(&self) -> Result<Vec<R>, ControlError> {
        self.engine.store().all::<R>().map_err(store_error)
    }

    fn command(&mut self, command: Command) -> Result<Value, ControlError> {
        let now = self.now();
        match self.engine.handle(now, Input::Command(command)) {
            Ok(outputs) => {
                let events = self.apply(outputs);
                Ok(json!({"ok": true, "events": events}))
            }
            Err(e) => Err(engine_error(&e)),
        }
    }

    /// `agreements amend`: the agreement's terms and level with only what is given changed,
    /// proposed to the other party as its replacement.
    fn amend(
        &mut self,
        id: &str,
        trust_level: Option<u8>,
        scrolls: Option<Vec<String>>,
        frequency: Option<String>,
        retention_days: Option<u32>,
    ) -> Result<Value, ControlError> {
        let record = self
            .engine
            .store()
            .get::<AgreementRecord>(id)
            .map_err(store_error)?
            .ok_or_else(|| {
                err(
                    StatusCode::NOT_FOUND,
                    "unknown_agreement",
                    format!("no agreement {id}"),
                )
            })?;
        let a = &record.agreement;
        let mut extra = a.terms.extra.clone();
        if let Some(d) = &a.terms.dispute_resolution {
            extra.insert("dispute_resolution".into(), json!(d));
        }
        let terms = vm_receipts::documents::ProposedTerms {
            scrolls_to_share: match scrolls {
                Some(names) => names
                    .iter()
                    .map(|n| n.parse::<ScrollName>().map_err(bad))
                    .collect::<Result<_, _>>()?,
                None => a.terms.scrolls_shared.clone(),
            },
            verification_frequency: match frequency {
                Some(f) => f.parse().map_err(bad)?,
                None => a.terms.verification_frequency,
            },
            retention_period_days: retention_days.unwrap_or(a.terms.retention_period_days),
            data_jurisdiction: a.terms.data_jurisdiction.clone(),
            audit_rights: a.terms.audit_rights,
            extra,
        };
        let trust_level = match trust_level {
            Some(level) => TrustLevel::try_from(level).map_err(bad)?,
            None => a.trust_level,
        };
        self.command(Command::Amend {
            agreement_id: a.agreement_id.clone(),
            trust_level,
            terms,
        })
    }

    fn find_proposal(&self, id: &str) -> Result<ProposalRecord, ControlError> {
        let all = self.all::<ProposalRecord>()?;
        let mut matching: Vec<ProposalRecord> = all
            .into_iter()
            .filter(|p| p.proposal.proposal_id.as_str() == id)
            .collect();
        match matching.len() {
            0 => Err(err(
                StatusCode::NOT_FOUND,
                "unknown_proposal",
                format!("no proposal {id}"),
            )),
            1 => Ok(matching.remove(0)),
            _ => Err(err(
                StatusCode::CONFLICT,
                "ambiguous",
                format!("{id} names proposals by several meshes"),
            )),
        }
    }

    fn proposal_ref(&self, id: &str) -> Result<ProposalRef, ControlError> {
        let record = self.find_proposal(id)?;
        Ok(ProposalRef {
            id: record.proposal.proposal_id.clone(),
            proposer: Some(record.proposal.proposer.clone()),
        })
    }

    /// Looks up `target` (a mesh id or domain), or the public meshes when `None`.
    fn discover(&mut self, target: Option<String>, reply: Option<oneshot::Sender<ControlReply>>) {
        let net = self.net.clone();
        let dns = self.dns.clone();
        let completions = self.completions.clone();
        let allow_private = self.dir.config().allows_private_addresses();
        tokio::spawn(async move {
            let (target, result) = match target {
                Some(target) => {
                    let result = discover_target(&net, &dns, &target, allow_private).await;
                    (target, result)
                }
                None => ("public meshes".to_owned(), discover_public(&net).await),
            };
            let _ = completions
                .send(Completion::Discovered {
                    target,
                    result,
                    reply,
                })
                .await;
        });
    }

    /// The mesh answered us or made a request of us, over `transport`.
    fn contacted(&mut self, mesh: &MeshId, transport: &'static str) {
        self.contacts.insert(mesh.clone(), (self.now(), transport));
        self.reachable(mesh);
    }

    /// Each peer's reachability: a libp2p connection, or, for a peer reached over HTTPS
    /// only, contact within two anchor intervals (at least ten minutes). Federated peers (an
    /// agreement in force) by default, every known mesh with `all`.
    async fn health(&self, all: bool) -> Result<Value, ControlError> {
        let net = self
            .net
            .status()
            .await
            .map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "network", e.to_string()))?;
        let now = self.now();
        let window = i64::try_from(self.anchor_interval.as_secs().saturating_mul(2))
            .unwrap_or(i64::MAX)
            .max(600);
        let federated: std::collections::HashSet<MeshId> = self
            .all::<AgreementRecord>()?
            .into_iter()
            .filter(|a| a.status.in_force(now))
            .flat_map(|a| a.agreement.parties)
            .filter(|p| p != self.dir.mesh_id())
            .collect();
        let peers = self.all::<PeerEntry>()?;
        let rows: Vec<Value> = peers
            .iter()
            .filter(|p| all || federated.contains(&p.mesh_id))
            .map(|p| {
                let peer_id = p.public_key.map(|k| k.peer_id());
                let connected = peer_id
                    .as_ref()
                    .is_some_and(|id| net.connected_peers.contains(id));
                let contact = self.contacts.get(&p.mesh_id);
                let recent = contact.is_some_and(|(at, _)| now.seconds_since(*at) <= window);
                let is_federated = federated.contains(&p.mesh_id);
                // A peer on the P2P network is kept connected (federated peers are
                // protected): not connected means not reachable. One we reach over HTTPS
                // only is judged by when it was last heard from.
                let https_only = self
                    .route(&p.mesh_id)
                    .is_some_and(|t| t.p2p.is_empty() && !t.https.is_empty());
                json!({
                    "mesh_id": p.mesh_id, "peer_id": peer_id, "federated": is_federated,
                    "connected": connected,
                    "last_contact": contact.map(|(at, _)| *at),
                    "last_transport": contact.map(|(_, t)| *t),
                    "healthy": connected || (https_only && recent),
                })
            })
            .collect();
        let unhealthy = rows
            .iter()
            .filter(|r| r["federated"] == true && r["healthy"] == false)
            .count();
        Ok(json!({"peers": rows, "connections": net.connections, "unhealthy_federated": unhealthy}))
    }
}

/// The meshes providing `/vaultmesh/public` in the DHT, each asked for its signed record.
async fn discover_public(net: &NetworkHandle) -> Result<Found, String> {
    let peers = net.find_public().await.map_err(|e| e.to_string())?;
    if peers.is_empty() {
        return Err("no public mesh announces itself in the DHT".into());
    }
    let (records, errors) = fetch_records(net, peers.into_iter().map(|p| (p, Vec::new()))).await;
    if records.is_empty() {
        return Err(format!(
            "no public mesh gave a record: {}",
            errors.join("; ")
        ));
    }
    Ok(Found {
        records: records.into_iter().map(|r| (r, PeerSource::Dht)).collect(),
        notes: json!({"errors": errors}),
    })
}

/// Asks each peer for its signed discovery record; keeps those signed by the key of the peer
/// that answered.
async fn fetch_records(
    net: &NetworkHandle,
    peers: impl IntoIterator<Item = (String, Vec<String>)>,
) -> (Vec<DiscoveryRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (peer, addresses) in peers {
        let body = serde_json::to_vec(&FedRequest::Discovery).unwrap_or_default();
        match net.request(&peer, addresses, body).await {
            Ok(bytes) => match wire::decode::<FedResponse>(&bytes) {
                Ok(FedResponse::Discovery { record }) if record.peer_id == peer => {
                    records.push(*record);
                }
                Ok(FedResponse::Discovery { record }) => errors.push(format!(
                    "{peer} answered with the record of another peer ({})",
                    record.peer_id
                )),
                Ok(other) => errors.push(format!("{peer}: unexpected answer {other:?}")),
                Err(e) => errors.push(format!("{peer}: malformed answer: {e}")),
            },
            Err(e) => errors.push(format!("{peer}: {e}")),
        }
    }
    (records, errors)
}

/// Finds a mesh: a mesh id through the DHT; a domain through DNS (SRV for its federation
/// endpoints, TXT `_dnsaddr` for its libp2p addresses, then its signed record from the peer
/// itself, which must be the peer the address names).
async fn discover_target(
    net: &NetworkHandle,
    dns: &DnsDiscovery,
    target: &str,
    allow_private: bool,
) -> Result<Found, String> {
    if target.starts_with("did:") || !target.contains('.') {
        let mesh = MeshId::parse_flexible(target).map_err(|e| format!("{target:?}: {e}"))?;
        let record = net.find_record(mesh).await.map_err(|e| e.to_string())?;
        return Ok(Found {
            records: vec![(record, PeerSource::Dht)],
            notes: Value::Null,
        });
    }
    let srv = dns.srv(target).await;
    let txt = dns.dnsaddr(target).await;
    let notes = json!({
        "srv": match &srv {
            Ok(targets) => json!(targets.iter().map(|t| json!({"host": t.host, "port": t.port, "priority": t.priority, "weight": t.weight})).collect::<Vec<_>>()),
            Err(e) => json!({"error": e.to_string()}),
        },
        "dnsaddr": match &txt {
            Ok(addrs) => json!(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
            Err(e) => json!({"error": e.to_string()}),
        },
    });
    let addrs = match txt {
        Ok(addrs) => addrs,
        // No libp2p addresses: the SRV targets are the mesh's HTTPS endpoints.
        Err(e) => match srv {
            Ok(targets) if !targets.is_empty() => {
                return discover_https(dns, target, &targets, allow_private, notes)
                    .await
                    .map_err(|https| format!("{target}: no _dnsaddr ({e}); over HTTPS: {https}"));
            }
            _ => return Err(format!("{target}: {e}")),
        },
    };
    let mut by_peer: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for addr in &addrs {
        let text = addr.to_string();
        match text.rsplit_once("/p2p/") {
            Some((_, peer)) => by_peer
                .entry(peer.to_owned())
                .or_default()
                .push(text.clone()),
            None => tracing::warn!(address = %text, "dnsaddr without /p2p/<peer id> skipped"),
        }
    }
    for addresses in by_peer.values() {
        // Dialled first so the peer also joins our DHT routing (A finds its bootstrap this way).
        let _ = net
            .send(NetworkCommand::Dial {
                addresses: addresses.clone(),
            })
            .await;
    }
    let (records, errors) = fetch_records(net, by_peer).await;
    let records: Vec<_> = records.into_iter().map(|r| (r, PeerSource::Dns)).collect();
    if records.is_empty() {
        return Err(format!(
            "{target}: no peer named in DNS gave a record: {}",
            errors.join("; ")
        ));
    }
    Ok(Found { records, notes })
}

/// The signed record from the first SRV target (RFC 2782 order) that serves one over HTTPS
/// whose TLS certificate is the record's own key.
async fn discover_https(
    dns: &DnsDiscovery,
    target: &str,
    srv: &[vm_network::dns::SrvTarget],
    allow_private: bool,
    notes: Value,
) -> Result<Found, String> {
    let mut errors = Vec::new();
    for t in srv {
        let ips = match dns.addresses(&t.host).await {
            Ok(ips) => ips,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        for ip in ips {
            let url = match ip {
                std::net::IpAddr::V4(v4) => format!("https://{v4}:{}", t.port),
                std::net::IpAddr::V6(v6) => format!("https://[{v6}]:{}", t.port),
            };
            // The URL holds the address the nameserver gave: nothing left to resolve.
            let system = crate::http::client::Resolver::System;
            match https::fetch_discovery(&system, &url, allow_private, Duration::from_secs(10))
                .await
            {
                Ok(record) => {
                    tracing::info!(%target, %url, mesh = %record.mesh_id, "record fetched over HTTPS");
                    return Ok(Found {
                        records: vec![(record, PeerSource::Http)],
                        notes,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
    }
    Err(errors.join("; "))
}

/// Terms from the control API, refused with the field path when they do not fit.
fn parse_terms(terms: Value) -> Result<ProposedTerms, ControlError> {
    serde_json::from_value(terms).map_err(|e| bad(format!("terms: {e}")))
}

fn bad(e: impl std::fmt::Display) -> ControlError {
    err(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
}

fn internal(e: impl std::fmt::Display) -> ControlError {
    err(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn store_error(e: vm_storage::StoreError) -> ControlError {
    err(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
}

fn peer_json(p: &PeerEntry) -> Value {
    json!({
        "mesh_id": p.mesh_id,
        "public_key": p.public_key,
        "peer_id": p.public_key.map(|k| k.peer_id()),
        "sources": p.sources,
        "display_name": p.discovery_record.as_ref().map(|r| r.display_name.clone()),
        "multiaddrs": p.discovery_record.as_ref().map(|r| r.multiaddrs.clone()).unwrap_or_default(),
        "manual_addresses": p.manual_addresses,
        "updated_at": p.updated_at,
    })
}

fn proposal_summary(p: &ProposalRecord) -> Value {
    json!({
        "proposal_id": p.proposal.proposal_id,
        "proposer": p.proposal.proposer,
        "target": p.proposal.target,
        "direction": p.direction,
        "status": p.status,
        "trust_level": p.proposal.proposed_trust_level,
        "responses": p.history.len(),
        "expires_at": p.proposal.expires_at,
        "updated_at": p.updated_at,
    })
}

fn agreement_summary(a: &AgreementRecord) -> Value {
    json!({
        "agreement_id": a.agreement.agreement_id,
        "parties": a.agreement.parties,
        "trust_level": a.agreement.trust_level,
        "status": a.status,
        "established_at": a.agreement.established_at,
        "revocation": a.revocation.as_ref().map(|r| json!({"effective_at": r.effective_at, "reason": r.reason})),
        "agreement_hash": a.agreement.agreement_hash,
    })
}

fn event_json(event: &Event) -> Value {
    match event {
        Event::PeerUpdated { mesh_id, source } => {
            json!({"type": "peer_updated", "mesh_id": mesh_id, "source": source})
        }
        Event::PeerRemoved { mesh_id } => {
            json!({"type": "peer_removed", "mesh_id": mesh_id})
        }
        Event::Proposal {
            proposal_id,
            peer,
            event,
        } => json!({"type": "proposal", "proposal_id": proposal_id, "peer": peer, "event": event}),
        Event::Established { agreement_id, peer } => {
            json!({"type": "established", "agreement_id": agreement_id, "peer": peer})
        }
        Event::RevocationNoticed {
            agreement_id,
            revoked_by,
            effective_at,
        } => {
            json!({"type": "revocation_noticed", "agreement_id": agreement_id, "revoked_by": revoked_by, "effective_at": effective_at})
        }
        Event::Revoked { agreement_id } => json!({"type": "revoked", "agreement_id": agreement_id}),
        Event::Suspension {
            agreement_id,
            suspended,
            by,
        } => {
            json!({"type": "suspension", "agreement_id": agreement_id, "suspended": suspended, "by": by})
        }
        Event::DraftAbandoned {
            agreement_id,
            reason,
        } => json!({"type": "draft_abandoned", "agreement_id": agreement_id, "reason": reason}),
        Event::Delayed {
            to,
            topic,
            attempts,
            reason,
        } => {
            json!({"type": "delayed", "to": to, "topic": topic, "attempts": attempts, "reason": reason})
        }
        Event::Undelivered { to, topic, reason } => {
            json!({"type": "undelivered", "to": to, "topic": topic, "reason": reason})
        }
        Event::Witnessed {
            peer,
            scroll,
            size,
            root,
            result,
        } => {
            json!({"type": "witnessed", "peer": peer, "scroll": scroll, "size": size, "root": root, "result": result})
        }
        Event::Attested {
            by,
            scroll,
            size,
            result,
        } => {
            json!({"type": "attested", "by": by, "scroll": scroll, "size": size, "result": result})
        }
        Event::Discrepancy {
            discrepancy_id,
            reporting_mesh,
            reported_mesh,
            kind,
            scroll,
        } => {
            json!({"type": "discrepancy", "discrepancy_id": discrepancy_id, "reporting_mesh": reporting_mesh, "reported_mesh": reported_mesh, "discrepancy_type": kind, "scroll": scroll})
        }
        Event::DiscrepancyRepeated {
            discrepancy_id,
            reported_mesh,
            times_seen,
        } => {
            json!({"type": "discrepancy_repeated", "discrepancy_id": discrepancy_id, "reported_mesh": reported_mesh, "times_seen": times_seen})
        }
        Event::DiscrepancyResolved {
            discrepancy_id,
            resolved_by,
            outcome,
            closed,
        } => {
            json!({"type": "discrepancy_resolved", "discrepancy_id": discrepancy_id, "resolved_by": resolved_by, "outcome": outcome, "closed": closed})
        }
        Event::ArbitrationRequested {
            arbitration_id,
            discrepancy_id,
            arbiter,
        } => {
            json!({"type": "arbitration_requested", "arbitration_id": arbitration_id, "discrepancy_id": discrepancy_id, "arbiter": arbiter})
        }
        Event::ArbitrationVerdict {
            arbitration_id,
            discrepancy_id,
            arbiter,
            outcome,
        } => {
            json!({"type": "arbitration_verdict", "arbitration_id": arbitration_id, "discrepancy_id": discrepancy_id, "arbiter": arbiter, "outcome": outcome})
        }
        Event::CrossAnchored { peer, scroll, size } => {
            json!({"type": "cross_anchored", "peer": peer, "scroll": scroll, "size": size})
        }
    }
}
