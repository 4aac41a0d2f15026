//! `config.toml`: what an operator may set. Every field has an embedded default, so a node
//! runs without the file; unknown keys are refused so a typo is not silently ignored.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vm_receipts::MeshId;

/// The node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This mesh's id (`did:vm:mesh:<name>`).
    pub mesh_id: MeshId,
    /// A human name for the discovery record.
    pub display_name: String,
    /// The P2P network.
    #[serde(default, skip_serializing_if = "is_default")]
    pub network: NetworkSection,
    /// DNS discovery.
    #[serde(default, skip_serializing_if = "is_default")]
    pub dns: DnsSection,
    /// Trust policy announced in the discovery record.
    #[serde(default, skip_serializing_if = "is_default")]
    pub federation: FederationSection,
    /// Anchor cycles.
    #[serde(default, skip_serializing_if = "is_default")]
    pub anchor: AnchorSection,
    /// Witnessing peers.
    #[serde(default, skip_serializing_if = "is_default")]
    pub witness: WitnessSection,
    /// The federation API over HTTPS with mutual TLS.
    #[serde(default, skip_serializing_if = "is_default")]
    pub http: HttpSection,
    /// The node's own files.
    #[serde(default, skip_serializing_if = "is_default")]
    pub storage: StorageSection,
    /// Prometheus metrics, `/healthz` and `/readyz` (off unless `listen` is set).
    #[serde(default, skip_serializing_if = "is_default")]
    pub metrics: MetricsSection,
}

/// `[metrics]`: a plain-HTTP listener for Prometheus (`/metrics`), liveness (`/healthz`)
/// and readiness (`/readyz`). Off by default; when on, it should stay on loopback or a
/// management network: it needs no authentication and tells what the node is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// `ip:port` to listen on (`127.0.0.1:9464`, Prometheus' default exporter port range).
    pub listen: Option<std::net::SocketAddr>,
}

/// `[storage]`: the data directory's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Appends to our scrolls are refused while the data directory's file system has less
    /// than this many MiB free (0: no reserve), so the Federation scroll and the state
    /// database keep room for what the node itself must record.
    pub min_free_mb: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self { min_free_mb: 64 }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// `[network]`: libp2p. The defaults keep a first run on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Multiaddrs to listen on.
    pub listen: Vec<String>,
    /// DHT bootstrap peers (`/ip4/…/tcp/…/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Announce this mesh under `/vaultmesh/public` in the DHT.
    pub public: bool,
    /// Connected peers the peer manager keeps (federated peers come on top).
    pub target_peers: usize,
    /// Hard limit on connections.
    pub max_connections: u32,
    /// Accept loopback and private addresses learned from peers (and resolved for HTTPS
    /// endpoints). Unset: accepted only while this node itself listens on loopback or
    /// private addresses only (a first run on one machine, a private network); a node that
    /// listens on a public or unspecified (`0.0.0.0`) address refuses them (DESIGN §8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_addresses: Option<bool>,
    /// Gossipsub's first heartbeat, milliseconds (libp2p's default is 5000).
    pub gossip_initial_delay_ms: u64,
    /// Request timeout, seconds.
    pub request_timeout_secs: u64,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".into(),
                "/ip4/127.0.0.1/udp/0/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            public: false,
            target_peers: 25,
            max_connections: 128,
            allow_private_addresses: None,
            gossip_initial_delay_ms: 5000,
            request_timeout_secs: 30,
        }
    }
}

/// `[dns]`: how `discover --mesh <domain>` resolves SRV and TXT records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// `ip:port` of the nameserver to ask; the system resolver when absent.
    pub nameserver: Option<String>,
}

/// `[federation]`: what the discovery record says about proposals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationSection {
    /// Whether proposals are taken at all.
    pub accepts_proposals: bool,
    /// The lowest trust level taken (1–4); 0 turns federation off.
    pub min_trust_level: u8,
}

impl Default for FederationSection {
    fn default() -> Self {
        Self {
            accepts_proposals: true,
            min_trust_level: 1,
        }
    }
}

/// `[anchor]`: how often our roots are signed, anchored and announced, and through what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnchorSection {
    /// Seconds between anchor cycles (`vm-federation anchor now` runs one at once).
    pub interval_secs: u64,
    /// `local` (the batch root signed by the mesh key) or `rfc3161` (a TSA's time stamp).
    pub backend: String,
    /// The TSA's URL (`http://…`), for `rfc3161`.
    pub tsa_url: Option<String>,
    /// Seconds to wait for the TSA.
    pub tsa_timeout_secs: u64,
}

impl Default for AnchorSection {
    fn default() -> Self {
        Self {
            // Hourly, the seed's faster verification cadence: a scroll that changes all the
            // time costs each peer at most 24 attestations a day (docs/operations.md, growth).
            interval_secs: 3600,
            backend: "local".into(),
            tsa_url: None,
            tsa_timeout_secs: 10,
        }
    }
}

/// `[witness]`: how we check peers' roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessSection {
    /// Receipts sampled per check: the newest plus random others (at most 64).
    pub samples: usize,
    /// How far a root's timestamp may be from our clock (seconds; the seed's 5 minutes).
    pub drift_secs: i64,
    /// PEM files of the TSA certificates we trust for `rfc3161` anchors (ours and peers').
    pub tsa_trust: Vec<std::path::PathBuf>,
    /// Which of our findings suspend the agreement with the reported mesh at once (seed
    /// §6.3 step 4): `"proof"` (evidence that is a proof on its own), `"critical"` (any
    /// critical finding). Empty (the default): the operator decides (`agreements suspend`).
    pub suspend_on: Vec<crate::engine::Escalation>,
}

impl Default for WitnessSection {
    fn default() -> Self {
        Self {
            samples: 8,
            drift_secs: 300,
            tsa_trust: Vec::new(),
            suspend_on: Vec::new(),
        }
    }
}

/// `[http]`: the federation API over HTTPS (mutual TLS, signed requests), for meshes that are
/// not on the P2P network. Off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `ip:port` to listen on (`127.0.0.1:0` for any free port).
    pub listen: Option<String>,
    /// The base URL published in our discovery record (default `https://<bound address>`).
    pub advertise: Option<String>,
    /// Requests per second one peer may make (one address: four times as many) …
    pub rate_per_sec: u32,
    /// … with bursts of this many; beyond it: 429 with `Retry-After`.
    pub rate_burst: u32,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: None,
            advertise: None,
            rate_per_sec: 50,
            rate_burst: 200,
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (TOML's message names the key and line).
        message: String,
    },
}

impl Config {
    /// The configuration `init` writes for a new mesh.
    pub fn new(mesh_id: MeshId) -> Self {
        Self {
            display_name: mesh_id.name().to_owned(),
            mesh_id,
            network: NetworkSection::default(),
            dns: DnsSection::default(),
            federation: FederationSection::default(),
            anchor: AnchorSection::default(),
            witness: WitnessSection::default(),
            http: HttpSection::default(),
            storage: StorageSection::default(),
            metrics: MetricsSection::default(),
        }
    }

    /// Whether loopback and private addresses learned from peers are used: as configured,
    /// else only when every address we listen on (libp2p and HTTPS) is loopback or private.
    pub fn allows_private_addresses(&self) -> bool {
        if let Some(allowed) = self.network.allow_private_addresses {
            return allowed;
        }
        let p2p = self.network.listen.iter().map(|a| {
            let mut parts = a.split('/').skip(1);
            match (parts.next(), parts.next()) {
                (Some("ip4" | "ip6"), Some(ip)) => ip.parse::<std::net::IpAddr>().ok(),
                // A DNS name or another protocol: not known to be private.
                _ => None,
            }
        });
        let http = self
            .http
            .listen
            .iter()
            .map(|a| a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()));
        let mut ips = p2p.chain(http).peekable();
        ips.peek().is_some()
            && ips.all(|ip| {
                ip.is_some_and(|ip| !ip.is_unspecified() && !crate::http::client::is_public(ip))
            })
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the TOML `text` of the file at `path` (named in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The TOML text `init` writes, with a header saying what the file is.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let body = toml::to_string(self).map_err(|e| ConfigError::Invalid {
            path: "config.toml".into(),
            message: e.to_string(),
        })?;
        Ok(format!(
            "# VaultMesh federation node configuration, written by `vm-federation init`.\n\
             # See README.md for what may be set here.\n{body}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!("mesh_id = \"did:vm:mesh:a\"\ndisplay_name = \"a\"\n{extra}");
        toml::from_str(&text).expect("config")
    }

    #[test]
    fn private_addresses_follow_what_the_node_listens_on_unless_configured() {
        // The embedded defaults: loopback only, so a first run on one machine works.
        assert!(config("").allows_private_addresses());
        // A private network.
        assert!(
            config("[network]\nlisten = [\"/ip4/10.0.0.5/tcp/4001\"]\n").allows_private_addresses()
        );
        // Public, unspecified, or a name: peers' private addresses are refused.
        for listen in [
            "/ip4/203.0.113.7/tcp/4001",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip6/::/tcp/4001",
            "/dns4/mesh.example.org/tcp/4001",
        ] {
            let c = config(&format!("[network]\nlisten = [\"{listen}\"]\n"));
            assert!(!c.allows_private_addresses(), "{listen}");
        }
        // An HTTPS listener on all interfaces beside loopback libp2p: refused.
        assert!(!config("[http]\nlisten = \"0.0.0.0:8443\"\n").allows_private_addresses());
        // Nothing listens: nothing is learned from peers that needs it.
        assert!(!config("[network]\nlisten = []\n").allows_private_addresses());
        // Configured either way, the setting wins.
        assert!(
            config(
                "[network]\nlisten = [\"/ip4/0.0.0.0/tcp/4001\"]\nallow_private_addresses = true\n"
            )
            .allows_private_addresses()
        );
        assert!(!config("[network]\nallow_private_addresses = false\n").allows_private_addresses());
    }
}
