//! DNS discovery of federation peers.
//!
//! Two kinds of record point at the nodes of a mesh that publishes itself under a domain:
//!
//! - SRV records at `_vaultmesh._tcp.<domain>` ([RFC 2782]): host, port, priority and weight of
//!   each node. [`DnsDiscovery::srv`] returns them in the order RFC 2782 says to try them:
//!   ascending priority, and within one priority a weighted random order. The randomness is a
//!   caller's seed run through [`order_srv`], a pure function, so discovery stays deterministic.
//! - TXT records at `_dnsaddr.<domain>` in the libp2p `dnsaddr` form, one
//!   `dnsaddr=<multiaddr>` per record. [`DnsDiscovery::dnsaddr`] returns the multiaddrs.
//!
//! Every name is checked by [`validate_domain`] before a query leaves the node, and every
//! lookup is bounded by [`DnsConfig::timeout`]. Errors name the DNS name that was queried.
//!
//! [RFC 2782]: https://www.rfc-editor.org/rfc/rfc2782

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::rdata::{SRV, TXT};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecoder, Restrict};
use libp2p::Multiaddr;
use tracing::{debug, warn};

/// The service label of VaultMesh federation SRV records: `_vaultmesh._tcp.<domain>`.
pub const SRV_PREFIX: &str = "_vaultmesh._tcp";

/// The label of libp2p `dnsaddr` TXT records: `_dnsaddr.<domain>`.
pub const DNSADDR_PREFIX: &str = "_dnsaddr";

/// The prefix of a `dnsaddr` TXT entry; what follows it is a multiaddr.
const DNSADDR_ENTRY: &[u8] = b"dnsaddr=";

/// Longest domain name accepted, in its text form without the final dot (RFC 1035's 255 octets
/// on the wire).
const MAX_NAME_LEN: usize = 253;

/// Longest label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// Tries of one query per lookup (the first and one retry); each gets an equal share of
/// [`DnsConfig::timeout`].
const TRIES: u32 = 2;

/// How a [`DnsDiscovery`] reaches DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The one name server to ask, over UDP with TCP for truncated answers. `None` uses the
    /// system configuration (`/etc/resolv.conf` on Unix), with this config's timeout.
    pub nameserver: Option<SocketAddr>,
    /// Upper bound on one lookup ([`DnsDiscovery::srv`] or [`DnsDiscovery::dnsaddr`]),
    /// retries included. Must not be zero.
    pub timeout: Duration,
}

impl Default for DnsConfig {
    /// The system name servers with a 5-second bound per lookup.
    fn default() -> Self {
        Self {
            nameserver: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why a DNS discovery lookup gave no peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN), or holds no usable record of the type asked for.
    #[error("no usable DNS records at {name}")]
    NoRecords {
        /// The DNS name queried, without the final dot.
        name: String,
    },
    /// The domain publishes a single SRV record with target `.`: the service is decidedly not
    /// available there (RFC 2782).
    #[error("{SRV_PREFIX}.{domain} says the service is decidedly not available (SRV target \".\")")]
    Unavailable {
        /// The domain as the caller gave it.
        domain: String,
    },
    /// The domain is not a valid host name; nothing was sent.
    #[error("invalid domain {domain:?}: {reason}")]
    InvalidDomain {
        /// The domain as the caller gave it.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lookup failed: no answer within the timeout, a server failure, a refusal.
    #[error("DNS lookup of {name} failed: {message}")]
    Resolve {
        /// The DNS name queried, without the final dot.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// The resolver could not be set up (unreadable system configuration, zero timeout).
    #[error("DNS resolver configuration: {message}")]
    Config {
        /// What went wrong.
        message: String,
    },
}

/// One SRV record: a node to try, in the order [`order_srv`] gives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SrvTarget {
    /// Host name of the node, without the final dot.
    pub host: String,
    /// TCP port of the node.
    pub port: u16,
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share of selections among records of one priority.
    pub weight: u16,
}

/// Looks up federation peers in DNS: SRV records and libp2p `dnsaddr` TXT records.
///
/// Answers are cached for their TTL by the underlying resolver.
#[derive(Debug)]
pub struct DnsDiscovery {
    resolver: TokioResolver,
    timeout: Duration,
    /// Seed of the next [`DnsDiscovery::srv`] ordering; advanced by one per call.
    next_seed: AtomicU64,
}

impl DnsDiscovery {
    /// Builds a resolver from `config`. Does no I/O beyond reading the system configuration
    /// when [`DnsConfig::nameserver`] is `None`.
    ///
    /// The SRV ordering seed starts at 0; see [`DnsDiscovery::with_seed`].
    pub fn new(config: DnsConfig) -> Result<Self, DnsError> {
        if config.timeout.is_zero() {
            return Err(DnsError::Config {
                message: "timeout must be greater than zero".to_owned(),
            });
        }
        let provider = TokioRuntimeProvider::default();
        let mut builder = match config.nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                // UDP is preferred; TCP is used when an answer comes back truncated.
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| DnsError::Config {
                message: format!("reading the system DNS configuration: {e}"),
            })?,
        };
        configure(builder.options_mut(), config.timeout);
        let resolver = builder.build().map_err(|e| DnsError::Config {
            message: e.to_string(),
        })?;
        Ok(Self {
            resolver,
            timeout: config.timeout,
            next_seed: AtomicU64::new(0),
        })
    }

    /// Sets the seed of the next [`DnsDiscovery::srv`] ordering (take it from the node's
    /// seeded randomness). Each call to `srv` then uses the next seed in turn.
    #[must_use]
    pub fn with_seed(self, seed: u64) -> Self {
        self.next_seed.store(seed, Ordering::Relaxed);
        self
    }

    /// The SRV records of `_vaultmesh._tcp.<domain>`, in RFC 2782 order: ascending priority,
    /// weighted random within a priority (seeded by this discovery's seed sequence, one seed
    /// per call, so successive calls spread load over equal-priority nodes).
    ///
    /// Errors: [`DnsError::InvalidDomain`] before any query; [`DnsError::Unavailable`] when
    /// the only record has target `.`; [`DnsError::NoRecords`] when the name does not exist or
    /// holds no SRV record; [`DnsError::Resolve`] when no answer comes in time or the server
    /// fails.
    pub async fn srv(&self, domain: &str) -> Result<Vec<SrvTarget>, DnsError> {
        let seed = self.next_seed.fetch_add(1, Ordering::Relaxed);
        self.srv_with_seed(domain, seed).await
    }

    /// As [`DnsDiscovery::srv`], with the weighted order drawn from `seed`: the same records
    /// and seed always give the same order.
    pub async fn srv_with_seed(&self, domain: &str, seed: u64) -> Result<Vec<SrvTarget>, DnsError> {
        let (name, shown) = query_name(SRV_PREFIX, domain)?;
        let lookup = self.lookup(name, &shown, RecordType::SRV).await?;
        let records: Vec<SRV> = lookup
            .answers()
            .iter()
            .filter_map(|record| srv_of(&record.data))
            .collect();
        if let [only] = records.as_slice()
            && only.target.is_root()
        {
            return Err(DnsError::Unavailable {
                domain: domain.to_owned(),
            });
        }
        let targets: Vec<SrvTarget> = records
            .into_iter()
            .filter_map(|srv| {
                if srv.target.is_root() {
                    warn!(name = %shown, "skipping SRV record with target \".\" among others");
                    return None;
                }
                Some(SrvTarget {
                    host: host_of(&srv.target),
                    port: srv.port,
                    priority: srv.priority,
                    weight: srv.weight,
                })
            })
            .collect();
        if targets.is_empty() {
            return Err(DnsError::NoRecords { name: shown });
        }
        Ok(order_srv(targets, seed))
    }

    /// The multiaddrs of the `dnsaddr=<multiaddr>` TXT records at `_dnsaddr.<domain>`, in
    /// answer order, without duplicates. TXT entries not starting with `dnsaddr=` are ignored;
    /// those whose multiaddr does not parse are skipped with a warning. The multiaddrs are
    /// returned as published: nested `/dnsaddr/` ones are not resolved further.
    ///
    /// Errors: [`DnsError::InvalidDomain`] before any query; [`DnsError::NoRecords`] when the
    /// name does not exist or no valid entry remains; [`DnsError::Resolve`] when no answer
    /// comes in time or the server fails.
    pub async fn dnsaddr(&self, domain: &str) -> Result<Vec<Multiaddr>, DnsError> {
        let (name, shown) = query_name(DNSADDR_PREFIX, domain)?;
        let lookup = self.lookup(name, &shown, RecordType::TXT).await?;
        let mut addrs: Vec<Multiaddr> = Vec::new();
        for txt in lookup
            .answers()
            .iter()
            .filter_map(|record| txt_of(&record.data))
        {
            if let Some(addr) = dnsaddr_entry(&txt, &shown)
                && !addrs.contains(&addr)
            {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(DnsError::NoRecords { name: shown });
        }
        Ok(addrs)
    }

    /// The IPv4 and IPv6 addresses of `host` (an SRV target) from the configured nameserver;
    /// an IP literal is returned as it is.
    pub async fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(vec![ip]);
        }
        validate_domain(host)?;
        let bare = host.strip_suffix('.').unwrap_or(host);
        let name = Name::from_ascii(format!("{bare}.")).map_err(|e| DnsError::InvalidDomain {
            domain: host.to_owned(),
            reason: e.to_string(),
        })?;
        let mut out = Vec::new();
        for kind in [RecordType::A, RecordType::AAAA] {
            match self.lookup(name.clone(), bare, kind).await {
                Ok(lookup) => out.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(std::net::IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(DnsError::NoRecords { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() {
            return Err(DnsError::NoRecords {
                name: bare.to_owned(),
            });
        }
        Ok(out)
    }

    /// One query, bounded by the configured timeout, with errors mapped to [`DnsError`].
    async fn lookup(&self, name: Name, shown: &str, kind: RecordType) -> Result<Lookup, DnsError> {
        debug!(name = %shown, ?kind, "DNS lookup");
        match tokio::time::timeout(self.timeout, self.resolver.lookup(name, kind)).await {
            Err(_elapsed) => Err(DnsError::Resolve {
                name: shown.to_owned(),
                message: format!("no answer within {:?}", self.timeout),
            }),
            Ok(Err(e)) if e.is_no_records_found() => Err(DnsError::NoRecords {
                name: shown.to_owned(),
            }),
            Ok(Err(e)) => Err(DnsError::Resolve {
                name: shown.to_owned(),
                message: e.to_string(),
            }),
            Ok(Ok(lookup)) => Ok(lookup),
        }
    }
}

/// Resolver options for discovery: bounded time and tries, no hosts file, no search list
/// (every query name is fully qualified).
fn configure(opts: &mut ResolverOpts, timeout: Duration) {
    opts.timeout = (timeout / TRIES).max(Duration::from_millis(1));
    opts.attempts = (TRIES - 1) as usize;
    opts.use_hosts_file = ResolveHosts::Never;
}

/// Checks that `domain` is a host name discovery may query: non-empty, at most 253
/// characters, labels of 1 to 63 characters from `[A-Za-z0-9-]` that neither start nor end
/// with `-`, no leading dot. One final dot (the fully qualified form) is allowed.
pub fn validate_domain(domain: &str) -> Result<(), DnsError> {
    let invalid = |reason: String| DnsError::InvalidDomain {
        domain: domain.to_owned(),
        reason,
    };
    if domain.starts_with('.') {
        return Err(invalid("starts with a dot".to_owned()));
    }
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    if bare.is_empty() {
        return Err(invalid("empty".to_owned()));
    }
    if bare.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "{} characters, more than {MAX_NAME_LEN}",
            bare.len()
        )));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label".to_owned()));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(invalid(format!(
                "label of {} characters, more than {MAX_LABEL_LEN}",
                label.len()
            )));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(invalid(format!("character {bad:?} in label {label:?}")));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(format!("label {label:?} starts or ends with '-'")));
        }
    }
    Ok(())
}

/// The fully qualified `<prefix>.<domain>.` to query, and its text form without the final
/// dot for logs and errors.
fn query_name(prefix: &str, domain: &str) -> Result<(Name, String), DnsError> {
    validate_domain(domain)?;
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    let shown = format!("{prefix}.{bare}");
    let name = Name::from_ascii(format!("{shown}.")).map_err(|e| DnsError::InvalidDomain {
        domain: domain.to_owned(),
        reason: format!("{shown}: {e}"),
    })?;
    Ok((name, shown))
}

/// A host name as text, without the final dot.
fn host_of(name: &Name) -> String {
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(bare) => bare.to_owned(),
        None => text,
    }
}

/// The SRV data of a record, whether the decoder typed it or left it generic
/// (`RData::Unknown` with type SRV and the raw RDATA).
fn srv_of(data: &RData) -> Option<SRV> {
    match data {
        RData::SRV(srv) => Some(srv.clone()),
        RData::Unknown {
            code: RecordType::SRV,
            rdata,
        } => match decode_generic(&rdata.anything, RecordType::SRV)? {
            RData::SRV(srv) => Some(srv),
            _ => None,
        },
        _ => None,
    }
}

/// The TXT data of a record, typed or generic as in [`srv_of`].
fn txt_of(data: &RData) -> Option<TXT> {
    match data {
        RData::TXT(txt) => Some(txt.clone()),
        RData::Unknown {
            code: RecordType::TXT,
            rdata,
        } => match decode_generic(&rdata.anything, RecordType::TXT)? {
            RData::TXT(txt) => Some(txt),
            _ => None,
        },
        _ => None,
    }
}

/// Decodes raw RDATA as `kind`; `None` when it does not decode.
fn decode_generic(bytes: &[u8], kind: RecordType) -> Option<RData> {
    let len = u16::try_from(bytes.len()).ok()?;
    let mut decoder = BinDecoder::new(bytes);
    match RData::read(&mut decoder, kind, Restrict::new(len)) {
        Ok(data) => Some(data),
        Err(e) => {
            warn!(%kind, error = %e, "undecodable generic record data");
            None
        }
    }
}

/// The multiaddr of one `dnsaddr=` TXT record (its strings joined, as a value longer than
/// 255 bytes is split), or `None` for another kind of entry or a malformed one (with a
/// warning naming it).
fn dnsaddr_entry(txt: &TXT, shown: &str) -> Option<Multiaddr> {
    let joined: Vec<u8> = txt
        .txt_data
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    let rest = joined.strip_prefix(DNSADDR_ENTRY)?;
    let parsed = std::str::from_utf8(rest)
        .map_err(|e| e.to_string())
        .and_then(|text| text.parse::<Multiaddr>().map_err(|e| e.to_string()))
        .and_then(|addr| {
            if addr.is_empty() {
                Err("empty multiaddr".to_owned())
            } else {
                Ok(addr)
            }
        });
    match parsed {
        Ok(addr) => Some(addr),
        Err(error) => {
            warn!(
                name = %shown,
                entry = %String::from_utf8_lossy(&joined),
                %error,
                "skipping malformed dnsaddr TXT entry"
            );
            None
        }
    }
}

/// Orders SRV records as RFC 2782 says to try them, drawing the random numbers from `seed`.
///
/// Records are grouped by ascending priority. Within a group, the RFC's selection is repeated
/// until the group is empty: with the remaining records listed zero-weight first, draw `R`
/// uniformly from `0..=sum of weights` and take the first record whose running weight sum is
/// at least `R`. A record's chance to come first is thus about its share of the group's
/// weight; zero-weight records come first only when `R` is 0.
///
/// Pure and deterministic: the output depends only on the set of records and `seed`, not on
/// the order the records come in (they are put in a canonical order first).
#[must_use]
pub fn order_srv(mut records: Vec<SrvTarget>, seed: u64) -> Vec<SrvTarget> {
    records.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then((a.weight != 0).cmp(&(b.weight != 0)))
            .then_with(|| a.host.cmp(&b.host))
            .then(a.port.cmp(&b.port))
            .then(a.weight.cmp(&b.weight))
    });
    let mut rng = SplitMix64(seed);
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = first.priority;
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.priority == priority) {
            group.push(next);
        }
        while group.len() > 1 {
            let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let pick = rng.up_to(total);
            let mut running = 0u64;
            let index = group
                .iter()
                .position(|r| {
                    running += u64::from(r.weight);
                    running >= pick
                })
                .unwrap_or(group.len() - 1);
            // `remove` keeps the rest in order, zero-weight records still first.
            ordered.push(group.remove(index));
        }
        ordered.append(&mut group);
    }
    ordered
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, plenty for spreading load.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max` (multiply-shift; the bias is below 2^-40 for SRV weight sums).
    fn up_to(&mut self, max: u64) -> u64 {
        let span = u128::from(max) + 1;
        let wide = (u128::from(self.next_u64()) * span) >> 64;
        u64::try_from(wide).unwrap_or(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::NULL;
    use hickory_resolver::proto::serialize::binary::BinEncodable;

    fn target(host: &str, priority: u16, weight: u16) -> SrvTarget {
        SrvTarget {
            host: host.to_owned(),
            port: 4001,
            priority,
            weight,
        }
    }

    fn sample() -> Vec<SrvTarget> {
        vec![
            target("c", 20, 5),
            target("a", 10, 60),
            target("z", 5, 0),
            target("b", 10, 30),
            target("d", 20, 0),
            target("e", 10, 10),
        ]
    }

    #[test]
    fn order_srv_sorts_by_ascending_priority() {
        for seed in 0..500 {
            let ordered = order_srv(sample(), seed);
            assert_eq!(ordered.len(), 6);
            let priorities: Vec<u16> = ordered.iter().map(|t| t.priority).collect();
            assert_eq!(priorities, [5, 10, 10, 10, 20, 20], "seed {seed}");
        }
    }

    #[test]
    fn order_srv_is_deterministic_and_independent_of_input_order() {
        let mut reversed = sample();
        reversed.reverse();
        for seed in [0, 1, 42, u64::MAX] {
            let once = order_srv(sample(), seed);
            assert_eq!(once, order_srv(sample(), seed));
            assert_eq!(once, order_srv(reversed.clone(), seed));
        }
        // Different seeds do give different orders.
        let distinct: std::collections::HashSet<Vec<SrvTarget>> =
            (0..50).map(|seed| order_srv(sample(), seed)).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn order_srv_first_pick_is_proportional_to_weight() {
        let records = vec![target("a", 1, 60), target("b", 1, 30), target("c", 1, 10)];
        let runs = 20_000u32;
        let mut first = [0u32; 3];
        for seed in 0..u64::from(runs) {
            let ordered = order_srv(records.clone(), seed);
            let index = ["a", "b", "c"]
                .iter()
                .position(|h| *h == ordered[0].host)
                .expect("known host");
            first[index] += 1;
        }
        // R is drawn from 0..=100, so the expected shares are 61/101, 30/101, 10/101
        // (listed by ascending host name, "a" also takes R = 0).
        for (count, expected) in first.iter().zip([61.0 / 101.0, 30.0 / 101.0, 10.0 / 101.0]) {
            let share = f64::from(*count) / f64::from(runs);
            assert!(
                (share - expected).abs() < 0.02,
                "share {share} expected {expected} ({first:?})"
            );
        }
    }

    #[test]
    fn order_srv_zero_weight_records_rarely_come_first() {
        let records = vec![target("heavy", 1, 99), target("zero", 1, 0)];
        let zero_first = (0..10_000u64)
            .filter(|seed| order_srv(records.clone(), *seed)[0].host == "zero")
            .count();
        // Only R = 0 selects it: 1 in 100.
        assert!((50..=200).contains(&zero_first), "{zero_first}");
        // All zero weights: every record still comes out, in some order.
        let zeros = vec![target("x", 1, 0), target("y", 1, 0), target("w", 1, 0)];
        let mut hosts: Vec<String> = order_srv(zeros, 3).into_iter().map(|t| t.host).collect();
        hosts.sort();
        assert_eq!(hosts, ["w", "x", "y"]);
    }

    #[test]
    fn order_srv_handles_empty_and_single() {
        assert!(order_srv(Vec::new(), 1).is_empty());
        assert_eq!(order_srv(vec![target("a", 0, 0)], 9), [target("a", 0, 0)]);
    }

    #[test]
    fn validate_domain_accepts_host_names() {
        for ok in [
            "mesh.test",
            "mesh.test.",
            "a",
            "A-1.b2.Example",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert_eq!(validate_domain(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn validate_domain_refuses_bad_names() {
        let long_name = ["abcdefghi"; 26].join(".");
        assert!(long_name.len() > 253);
        for bad in [
            "",
            ".",
            ".mesh.test",
            "mesh..test",
            "-mesh.test",
            "mesh-.test",
            "me_sh.test",
            "mesh test",
            "mesh.tést",
            &format!("{}.com", "a".repeat(64)),
            &long_name,
        ] {
            assert!(
                matches!(validate_domain(bad), Err(DnsError::InvalidDomain { ref domain, .. }) if domain == bad),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn query_name_refuses_names_too_long_with_the_prefix() {
        // Valid alone (249 characters), too long once `_vaultmesh._tcp.` is in front.
        let domain = vec!["a".repeat(62); 4].join(".");
        assert_eq!(validate_domain(&domain), Ok(()));
        assert!(matches!(
            query_name(SRV_PREFIX, &domain),
            Err(DnsError::InvalidDomain { .. })
        ));
        let (name, shown) = query_name(SRV_PREFIX, "a.mesh.test.").expect("valid");
        assert_eq!(shown, "_vaultmesh._tcp.a.mesh.test");
        assert!(name.is_fqdn());
    }

    #[test]
    fn generic_record_data_is_decoded() {
        let srv = SRV::new(
            3,
            7,
            4001,
            Name::from_ascii("node.mesh.test.").expect("name"),
        );
        let bytes = srv.to_bytes().expect("encode");
        let generic = RData::Unknown {
            code: RecordType::SRV,
            rdata: NULL::with(bytes),
        };
        assert_eq!(srv_of(&generic), Some(srv.clone()));
        assert_eq!(srv_of(&RData::SRV(srv.clone())), Some(srv));

        let txt = TXT::new(vec!["dnsaddr=/ip4/127.0.0.1/tcp/1".to_owned()]);
        let generic = RData::Unknown {
            code: RecordType::TXT,
            rdata: NULL::with(txt.to_bytes().expect("encode")),
        };
        assert_eq!(txt_of(&generic), Some(txt));
    }

    #[test]
    fn dnsaddr_entries_are_parsed_joined_or_skipped() {
        let one = TXT::new(vec!["dnsaddr=/ip4/127.0.0.1/tcp/4001".to_owned()]);
        assert_eq!(
            dnsaddr_entry(&one, "n"),
            Some("/ip4/127.0.0.1/tcp/4001".parse().expect("multiaddr"))
        );
        let split = TXT::new(vec![
            "dnsaddr=/ip4/127.0".to_owned(),
            ".0.1/tcp/1".to_owned(),
        ]);
        assert_eq!(
            dnsaddr_entry(&split, "n"),
            Some("/ip4/127.0.0.1/tcp/1".parse().expect("multiaddr"))
        );
        for other in ["v=spf1 -all", "dnsaddr=/not/a/multiaddr", "dnsaddr="] {
            assert_eq!(dnsaddr_entry(&TXT::new(vec![other.to_owned()]), "n"), None);
        }
    }

    #[test]
    fn errors_name_the_dns_name() {
        let e = DnsError::NoRecords {
            name: "_dnsaddr.x.test".to_owned(),
        };
        assert!(e.to_string().contains("_dnsaddr.x.test"));
        let e = DnsError::Unavailable {
            domain: "down.test".to_owned(),
        };
        assert!(e.to_string().contains("_vaultmesh._tcp.down.test"));
    }
}
