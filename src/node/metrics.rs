//! What the node counts, in Prometheus' text exposition format (issue 17, `[metrics]`).
//!
//! Two kinds of figures: counters the node increments as things happen (requests, refusals,
//! witness checks, attestations, anchor cycles, gossip validations), and gauges read from the
//! node's state when Prometheus scrapes (`Node::scrape`): peers, connections, scroll sizes,
//! the outbox, discrepancies by type and standing, the network's own counters. Nothing here
//! decides anything; the node records what it did.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `transport` and `kind` of a request we answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub transport: &'static str,
    pub kind: String,
}

/// `transport` and `reason` of a refusal.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RefusalLabels {
    pub transport: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Verdict {
    verdict: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScrollLabel {
    scroll: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DiscrepancyLabels {
    /// `root_mismatch`, `inclusion_failure`, …
    r#type: String,
    /// `open` or `resolved`.
    standing: String,
    /// `found` (by us, of a peer) or `against_us`.
    side: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NetworkLabels {
    counter: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What the scrape reads off the node's state, set on the gauges before encoding.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    /// (state, count): `known`, `federated`, `connected`.
    pub peers: Vec<(&'static str, i64)>,
    pub connections: i64,
    /// (scroll, receipts).
    pub scrolls: Vec<(String, i64)>,
    pub outbox_messages: i64,
    pub outbox_oldest_age_secs: f64,
    /// (type, standing, side) → count.
    pub discrepancies: Vec<((String, &'static str, &'static str), i64)>,
    /// (counter name, value) of the network's counters.
    pub network: Vec<(&'static str, u64)>,
    /// Faults of our own files now open.
    pub faults: i64,
}

/// The registry and every metric in it.
pub(super) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    witness_checks: Family<Verdict, Counter>,
    witness_seconds: Histogram,
    attestations_given: Family<ResultLabel, Counter>,
    attestations_received: Family<ResultLabel, Counter>,
    anchor_cycles: Family<ResultLabel, Counter>,
    anchor_seconds: Histogram,
    gossip: Family<Outcome, Counter>,
    peers: Family<StateLabel, Gauge>,
    connections: Gauge,
    scroll_receipts: Family<ScrollLabel, Gauge>,
    outbox_messages: Gauge,
    outbox_oldest: FloatGauge,
    discrepancies: Family<DiscrepancyLabels, Gauge>,
    network: Family<NetworkLabels, Gauge>,
    faults: Gauge,
    /// The refusal counts again, readable for `status` (a `Family` cannot be listed).
    refused: BTreeMap<(&'static str, String), u64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered under the `vaultmesh_` prefix.
    pub(super) fn new() -> Self {
        let mut registry = Registry::with_prefix("vaultmesh");
        let m = Self {
            requests: Family::default(),
            refusals: Family::default(),
            witness_checks: Family::default(),
            // 1 ms to ~65 s: a loopback check takes milliseconds, a check across a lossy
            // link with a re-sync can take its whole deadline.
            witness_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            attestations_given: Family::default(),
            attestations_received: Family::default(),
            anchor_cycles: Family::default(),
            anchor_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            gossip: Family::default(),
            peers: Family::default(),
            connections: Gauge::default(),
            scroll_receipts: Family::default(),
            outbox_messages: Gauge::default(),
            outbox_oldest: FloatGauge::default(),
            discrepancies: Family::default(),
            network: Family::default(),
            faults: Gauge::default(),
            refused: BTreeMap::new(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Federation requests answered, by transport and kind",
            m.requests.clone(),
        );
        registry.register(
            "refusals",
            "Requests refused, by transport and reason (rate limits, authentication, policy, malformed input)",
            m.refusals.clone(),
        );
        registry.register(
            "witness_checks",
            "Witness checks of peers' roots finished, by verdict",
            m.witness_checks.clone(),
        );
        registry.register(
            "witness_check_duration_seconds",
            "Time from the start of a witness check to its verdict",
            m.witness_seconds.clone(),
        );
        registry.register(
            "attestations_given",
            "Witness attestations we signed of peers' roots, by result",
            m.attestations_given.clone(),
        );
        registry.register(
            "attestations_received",
            "Peers' attestations of our roots, by result",
            m.attestations_received.clone(),
        );
        registry.register(
            "anchor_cycles",
            "Anchor cycles run, by result",
            m.anchor_cycles.clone(),
        );
        registry.register(
            "anchor_cycle_duration_seconds",
            "Time an anchor cycle took",
            m.anchor_seconds.clone(),
        );
        registry.register(
            "gossip_validations",
            "Gossiped roots validated, by outcome (accept, reject, ignore)",
            m.gossip.clone(),
        );
        registry.register(
            "peers",
            "Meshes by state: known, federated (an agreement in force), connected",
            m.peers.clone(),
        );
        registry.register(
            "connections",
            "Open libp2p connections",
            m.connections.clone(),
        );
        registry.register(
            "scroll_receipts",
            "Receipts in each of our scrolls",
            m.scroll_receipts.clone(),
        );
        registry.register(
            "outbox_messages",
            "Federation messages waiting for delivery",
            m.outbox_messages.clone(),
        );
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest message waiting for delivery (0 when none)",
            m.outbox_oldest.clone(),
        );
        registry.register(
            "discrepancies",
            "Discrepancy records by type, standing (open, resolved) and side (found, against_us)",
            m.discrepancies.clone(),
        );
        registry.register(
            "network",
            "The libp2p layer's counters since start (requests in/out, refused records and gossip, penalties, bans)",
            m.network.clone(),
        );
        registry.register(
            "storage_faults",
            "Faults of the node's own files now open (0 when healthy)",
            m.faults.clone(),
        );
        Self { registry, ..m }
    }

    /// A request answered over `transport`.
    pub(super) fn request(&self, transport: &'static str, kind: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                transport,
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A request refused over `transport` for `reason` (an error code).
    pub(super) fn refusal(&mut self, transport: &'static str, reason: &str) {
        *self
            .refused
            .entry((transport, reason.to_owned()))
            .or_default() += 1;
        self.refusals
            .get_or_create(&RefusalLabels {
                transport,
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Refusals so far, by transport then reason (what `status` shows).
    pub(super) fn refusal_counts(&self) -> serde_json::Value {
        let mut by: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ((transport, reason), n) in &self.refused {
            by.entry(transport).or_default().insert(reason, *n);
        }
        serde_json::json!(by)
    }

    /// A witness check finished with `verdict`, `seconds` after it started (when it ran).
    pub(super) fn witness_check(&self, verdict: &str, seconds: Option<f64>) {
        self.witness_checks
            .get_or_create(&Verdict {
                verdict: verdict.to_owned(),
            })
            .inc();
        if let Some(s) = seconds {
            self.witness_seconds.observe(s);
        }
    }

    /// We attested a peer's root (`verified` or `discrepancy`).
    pub(super) fn attestation_given(&self, result: &str) {
        self.attestations_given
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    /// A peer attested one of our roots.
    pub(super) fn attestation_received(&self, result: &str) {
        self.attestations_received
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    /// An anchor cycle ended with `result` after `seconds`.
    pub(super) fn anchor_cycle(&self, result: &str, seconds: f64) {
        self.anchor_cycles
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        self.anchor_seconds.observe(seconds);
    }

    /// A gossiped root was validated with `outcome`.
    pub(super) fn gossip(&self, outcome: &str) {
        self.gossip
            .get_or_create(&Outcome {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the gauges from `s` and encodes everything.
    pub(super) fn encode(&self, s: &Snapshot) -> Result<String, std::fmt::Error> {
        for (state, n) in &s.peers {
            self.peers
                .get_or_create(&StateLabel {
                    state: (*state).to_owned(),
                })
                .set(*n);
        }
        self.connections.set(s.connections);
        // Gauges read off the state are set afresh: a series that went away (a resolved
        // finding's old standing) must not keep its last value.
        self.scroll_receipts.clear();
        for (scroll, n) in &s.scrolls {
            self.scroll_receipts
                .get_or_create(&ScrollLabel {
                    scroll: scroll.clone(),
                })
                .set(*n);
        }
        self.outbox_messages.set(s.outbox_messages);
        self.outbox_oldest.set(s.outbox_oldest_age_secs);
        self.discrepancies.clear();
        for ((kind, standing, side), n) in &s.discrepancies {
            self.discrepancies
                .get_or_create(&DiscrepancyLabels {
                    r#type: kind.clone(),
                    standing: (*standing).to_owned(),
                    side: (*side).to_owned(),
                })
                .set(*n);
        }
        for (counter, n) in &s.network {
            self.network
                .get_or_create(&NetworkLabels { counter })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.faults.set(s.faults);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl super::Node {
    /// `/metrics`: the gauges read off the state now, then everything encoded.
    pub(super) async fn scrape(&self) -> Result<serde_json::Value, super::ControlError> {
        use vm_storage::{AgreementRecord, DiscrepancyRecord, OutgoingMessage, PeerEntry};
        let net = self.net.status().await.ok();
        let now = self.now();
        let mut snap = Snapshot {
            connections: net.as_ref().map_or(0, |n| i64::from(n.connections)),
            faults: i64::try_from(self.faults.describe().len()).unwrap_or(i64::MAX),
            ..Snapshot::default()
        };
        snap.scrolls = std::iter::once(&self.scroll)
            .chain(self.scrolls.values())
            .map(|s| {
                (
                    s.name().to_string(),
                    i64::try_from(s.len()).unwrap_or(i64::MAX),
                )
            })
            .collect();
        if let Some(n) = &net {
            let c = &n.counters;
            snap.network = vec![
                ("requests_in", c.requests_in),
                ("requests_out", c.requests_out),
                ("requests_oversized", c.requests_oversized),
                ("requests_rejected", c.requests_rejected),
                ("stream_errors", c.stream_errors),
                ("dht_records_rejected", c.dht_records_rejected),
                ("dht_records_accepted", c.dht_records_accepted),
                ("gossip_rejected", c.gossip_rejected),
                ("gossip_oversized", c.gossip_oversized),
                ("penalties", c.penalties),
                ("bans", c.bans),
                ("trimmed", c.trimmed),
                ("events_dropped", c.events_dropped),
            ];
        }
        // The state database may be down: the counters above are still worth a scrape.
        if let Ok(peers) = self.all::<PeerEntry>() {
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            let federated: std::collections::BTreeSet<vm_receipts::MeshId> = self
                .all::<AgreementRecord>()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.status.in_force(now))
                .flat_map(|a| a.agreement.parties)
                .filter(|p| p != self.dir.mesh_id())
                .collect();
            let connected: std::collections::BTreeSet<&str> = net
                .as_ref()
                .map(|n| n.connected_peers.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let federated_connected = peers
                .iter()
                .filter(|p| federated.contains(&p.mesh_id))
                .filter(|p| {
                    p.public_key
                        .is_some_and(|k| connected.contains(k.peer_id().as_str()))
                })
                .count();
            snap.peers = vec![
                ("known", count(peers.len())),
                ("federated", count(federated.len())),
                ("federated_connected", count(federated_connected)),
            ];
        }
        if let Ok(outbox) = self.all::<OutgoingMessage>() {
            snap.outbox_messages = i64::try_from(outbox.len()).unwrap_or(i64::MAX);
            snap.outbox_oldest_age_secs = outbox
                .iter()
                .map(|m| now.seconds_since(m.created_at).max(0))
                .max()
                .unwrap_or(0) as f64;
        }
        if let Ok(findings) = self.all::<DiscrepancyRecord>() {
            let mut by: BTreeMap<(String, &'static str, &'static str), i64> = BTreeMap::new();
            for f in &findings {
                let body = &f.report.body;
                let standing = if f.resolved_at.is_some() {
                    "resolved"
                } else {
                    "open"
                };
                let side = if &body.reporting_mesh == self.dir.mesh_id() {
                    "found"
                } else {
                    "against_us"
                };
                *by.entry((body.discrepancy_type.to_string(), standing, side))
                    .or_default() += 1;
            }
            snap.discrepancies = by.into_iter().collect();
        }
        self.metrics
            .encode(&snap)
            .map(serde_json::Value::String)
            .map_err(super::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_are_encoded_with_their_labels() {
        let mut m = Metrics::new();
        m.request("https", "notify");
        m.refusal("https", "rate_limited");
        m.refusal("https", "rate_limited");
        m.refusal("libp2p", "unauthorized");
        m.witness_check("verified", Some(0.004));
        let text = m
            .encode(&Snapshot {
                scrolls: vec![("Compliance".into(), 7)],
                discrepancies: vec![(("root_mismatch".into(), "open", "found"), 1)],
                ..Snapshot::default()
            })
            .expect("encode");
        assert!(text.contains(r#"vaultmesh_requests_total{transport="https",kind="notify"} 1"#));
        assert!(
            text.contains(r#"vaultmesh_refusals_total{transport="https",reason="rate_limited"} 2"#)
        );
        assert!(text.contains(r#"vaultmesh_scroll_receipts{scroll="Compliance"} 7"#));
        assert!(text.contains(
            r#"vaultmesh_discrepancies{type="root_mismatch",standing="open",side="found"} 1"#
        ));
        assert!(text.contains("vaultmesh_witness_check_duration_seconds_count 1"));
        assert!(text.ends_with("# EOF\n"));
        let counts = m.refusal_counts();
        assert_eq!(counts["https"]["rate_limited"], 2);
        assert_eq!(counts["libp2p"]["unauthorized"], 1);
        // A series read off the state that went away is gone from the next scrape.
        let text = m.encode(&Snapshot::default()).expect("encode");
        assert!(!text.contains("root_mismatch"));
    }
}
