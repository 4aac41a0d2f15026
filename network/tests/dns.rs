//! DNS discovery against a real DNS server: hickory-server runs in-process on 127.0.0.1 with an
//! authoritative in-memory zone, and `DnsDiscovery` queries it over UDP (and TCP when an answer
//! is truncated).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use libp2p::{Multiaddr, PeerId};
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;
use vm_network::dns::{DnsConfig, DnsDiscovery, DnsError, SrvTarget, order_srv};

// ---------------------------------------------------------------------------------------------
// The test DNS server (self-contained: copy this block into other tests that need DNS).
// ---------------------------------------------------------------------------------------------

/// A DNS server on 127.0.0.1 answering authoritatively for one zone; stops when dropped.
struct TestDnsServer {
    /// Where it listens, on UDP and (unless started UDP-only) TCP on the same port.
    addr: SocketAddr,
    /// Dropping the server aborts its tasks.
    _server: Server<Catalog>,
}

/// Starts a DNS server for the zone `origin` (e.g. `"mesh.test."`) holding `records` plus a
/// generated SOA, listening on UDP and TCP on one free port of 127.0.0.1.
async fn start_dns_server(origin: &str, records: Vec<Record>) -> TestDnsServer {
    start_dns_server_with(origin, records, true).await
}

/// As [`start_dns_server`]; `tcp: false` leaves the TCP port closed.
async fn start_dns_server_with(origin: &str, records: Vec<Record>, tcp: bool) -> TestDnsServer {
    const SERIAL: u32 = 1;
    let origin = Name::from_ascii(origin).expect("zone origin");
    let mut zone: InMemoryZoneHandler =
        InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(
        Name::from_ascii("ns")
            .expect("ns")
            .append_domain(&origin)
            .expect("mname"),
        Name::from_ascii("hostmaster")
            .expect("rname")
            .append_domain(&origin)
            .expect("rname"),
        SERIAL,
        3600,
        600,
        86_400,
        60,
    );
    assert!(zone.upsert_mut(
        Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)),
        SERIAL
    ));
    for record in records {
        let shown = record.to_string();
        assert!(zone.upsert_mut(record, SERIAL), "zone refused {shown}");
    }
    let mut catalog = Catalog::new();
    catalog.upsert(
        LowerName::new(&origin),
        vec![Arc::new(zone) as Arc<dyn ZoneHandler>],
    );
    let mut server = Server::new(catalog);

    // UDP and TCP on the same port: take a free UDP port, then its TCP twin (retry on a clash).
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("udp addr");
        if tcp {
            let Ok(listener) = TcpListener::bind(addr).await else {
                continue;
            };
            server.register_listener(listener, Duration::from_secs(5), 64);
        }
        server.register_socket(udp);
        return TestDnsServer {
            addr,
            _server: server,
        };
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}

/// An SRV record `name` → `target:port`.
fn srv_record(name: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).expect("srv name"),
        300,
        RData::SRV(SRV::new(
            priority,
            weight,
            port,
            Name::from_ascii(target).expect("srv target"),
        )),
    )
}

/// A TXT record at `name` holding one string.
fn txt_record(name: &str, text: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).expect("txt name"),
        300,
        RData::TXT(TXT::new(vec![text.to_owned()])),
    )
}

// ---------------------------------------------------------------------------------------------

const ZONE: &str = "mesh.test.";

fn peer() -> PeerId {
    libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id()
}

/// The zone of these tests, and the two valid multiaddrs it publishes at `_dnsaddr.a`.
fn mesh_records() -> (Vec<Record>, Vec<Multiaddr>) {
    let addrs: Vec<Multiaddr> = [4001, 4002]
        .iter()
        .map(|port| {
            format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", peer())
                .parse()
                .expect("multiaddr")
        })
        .collect();
    let srv = "_vaultmesh._tcp.a.mesh.test.";
    let records = vec![
        srv_record(srv, 10, 60, 4001, "n1.mesh.test."),
        srv_record(srv, 10, 30, 4002, "n2.mesh.test."),
        srv_record(srv, 10, 10, 4003, "n3.mesh.test."),
        srv_record(srv, 1, 0, 4000, "primary.mesh.test."),
        srv_record(srv, 20, 0, 4009, "backup.mesh.test."),
        srv_record("_vaultmesh._tcp.down.mesh.test.", 0, 0, 0, "."),
        // A name that exists, with no SRV record: NODATA.
        txt_record("_vaultmesh._tcp.txtonly.mesh.test.", "hello"),
        txt_record("_dnsaddr.a.mesh.test.", &format!("dnsaddr={}", addrs[0])),
        txt_record("_dnsaddr.a.mesh.test.", &format!("dnsaddr={}", addrs[1])),
        txt_record("_dnsaddr.a.mesh.test.", "v=spf1 -all"),
        txt_record("_dnsaddr.a.mesh.test.", "dnsaddr=/ip4/999.0.0.1/tcp/1"),
        txt_record("_dnsaddr.junk.mesh.test.", "dnsaddr=/not/a/multiaddr"),
        txt_record("_dnsaddr.junk.mesh.test.", "something=else"),
    ];
    (records, addrs)
}

fn discovery(server: SocketAddr, timeout: Duration) -> DnsDiscovery {
    DnsDiscovery::new(DnsConfig {
        nameserver: Some(server),
        timeout,
    })
    .expect("resolver")
}

async fn mesh() -> (TestDnsServer, DnsDiscovery, Vec<Multiaddr>) {
    let (records, addrs) = mesh_records();
    let server = start_dns_server(ZONE, records).await;
    let dns = discovery(server.addr, Duration::from_secs(5));
    (server, dns, addrs)
}

fn hosts(targets: &[SrvTarget]) -> Vec<&str> {
    targets.iter().map(|t| t.host.as_str()).collect()
}

#[tokio::test]
async fn srv_orders_by_priority_then_weight() {
    let (_server, dns, _) = mesh().await;
    let targets = dns.srv_with_seed("a.mesh.test", 7).await.expect("srv");
    assert_eq!(targets.len(), 5, "{targets:?}");
    assert_eq!(
        targets[0],
        SrvTarget {
            host: "primary.mesh.test".to_owned(),
            port: 4000,
            priority: 1,
            weight: 0,
        }
    );
    let middle: HashSet<&str> = hosts(&targets[1..4]).into_iter().collect();
    assert_eq!(
        middle,
        HashSet::from(["n1.mesh.test", "n2.mesh.test", "n3.mesh.test"])
    );
    assert!(targets[1..4].iter().all(|t| t.priority == 10));
    assert_eq!(targets[4].host, "backup.mesh.test");
    assert_eq!((targets[4].port, targets[4].priority), (4009, 20));
    for t in &targets {
        let expected_port = match t.host.as_str() {
            "primary.mesh.test" => 4000,
            "n1.mesh.test" => 4001,
            "n2.mesh.test" => 4002,
            "n3.mesh.test" => 4003,
            _ => 4009,
        };
        assert_eq!(t.port, expected_port, "{t:?}");
    }

    // The order is the pure function's, whatever order the server sent the records in.
    assert_eq!(order_srv(targets.clone(), 7), targets);
    assert_eq!(
        dns.srv_with_seed("a.mesh.test.", 7).await.expect("srv"),
        targets
    );
}

#[tokio::test]
async fn srv_spreads_load_over_equal_priority_by_weight() {
    let (_server, dns, _) = mesh().await;
    let dns = dns.with_seed(1000);
    let mut second = std::collections::HashMap::<String, u32>::new();
    for _ in 0..300 {
        let targets = dns.srv("a.mesh.test").await.expect("srv");
        assert_eq!(targets[0].host, "primary.mesh.test");
        *second.entry(targets[1].host.clone()).or_default() += 1;
    }
    let n1 = second.get("n1.mesh.test").copied().unwrap_or(0);
    let n3 = second.get("n3.mesh.test").copied().unwrap_or(0);
    assert_eq!(second.values().sum::<u32>(), 300);
    assert!(
        n3 > 0,
        "the light node is still picked sometimes: {second:?}"
    );
    assert!(n1 > 2 * n3, "the heavy node leads: {second:?}");
}

#[tokio::test]
async fn srv_target_dot_means_unavailable() {
    let (_server, dns, _) = mesh().await;
    let err = dns.srv("down.mesh.test").await.expect_err("unavailable");
    assert_eq!(
        err,
        DnsError::Unavailable {
            domain: "down.mesh.test".to_owned()
        }
    );
    assert!(err.to_string().contains("_vaultmesh._tcp.down.mesh.test"));
}

#[tokio::test]
async fn dnsaddr_keeps_valid_entries_and_skips_the_rest() {
    let (_server, dns, addrs) = mesh().await;
    let found = dns.dnsaddr("a.mesh.test").await.expect("dnsaddr");
    let found: HashSet<Multiaddr> = found.into_iter().collect();
    let expected: HashSet<Multiaddr> = addrs.into_iter().collect();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn dnsaddr_with_only_invalid_entries_is_no_records() {
    let (_server, dns, _) = mesh().await;
    let err = dns
        .dnsaddr("junk.mesh.test")
        .await
        .expect_err("nothing valid");
    assert_eq!(
        err,
        DnsError::NoRecords {
            name: "_dnsaddr.junk.mesh.test".to_owned()
        }
    );
}

#[tokio::test]
async fn missing_names_are_no_records_naming_the_name() {
    let (_server, dns, _) = mesh().await;
    // NXDOMAIN.
    let err = dns.srv("nothere.mesh.test").await.expect_err("nxdomain");
    assert_eq!(
        err,
        DnsError::NoRecords {
            name: "_vaultmesh._tcp.nothere.mesh.test".to_owned()
        }
    );
    assert!(
        err.to_string()
            .contains("_vaultmesh._tcp.nothere.mesh.test")
    );
    let err = dns.dnsaddr("down.mesh.test").await.expect_err("nxdomain");
    assert_eq!(
        err,
        DnsError::NoRecords {
            name: "_dnsaddr.down.mesh.test".to_owned()
        }
    );
    // The name exists but holds no SRV record (NODATA).
    let err = dns.srv("txtonly.mesh.test").await.expect_err("nodata");
    assert_eq!(
        err,
        DnsError::NoRecords {
            name: "_vaultmesh._tcp.txtonly.mesh.test".to_owned()
        }
    );
}

#[tokio::test]
async fn a_zone_the_server_does_not_serve_is_a_resolve_error() {
    let (_server, dns, _) = mesh().await;
    // Not our zone: the server refuses, which is a failure, not an empty answer.
    let err = dns.srv("elsewhere.example").await.expect_err("refused");
    match err {
        DnsError::Resolve { name, message } => {
            assert_eq!(name, "_vaultmesh._tcp.elsewhere.example");
            assert!(!message.is_empty());
        }
        other => panic!("expected Resolve, got {other:?}"),
    }
}

#[tokio::test]
async fn large_answers_fall_back_to_tcp() {
    let addrs: Vec<Multiaddr> = (0..40u16)
        .map(|i| {
            format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", 5000 + i, peer())
                .parse()
                .expect("multiaddr")
        })
        .collect();
    let records: Vec<Record> = addrs
        .iter()
        .map(|a| txt_record("_dnsaddr.big.mesh.test.", &format!("dnsaddr={a}")))
        .collect();

    // Some 3.6 kB of TXT: too big for one UDP answer, so the server truncates it...
    let udp_only = start_dns_server_with(ZONE, records.clone(), false).await;
    let err = discovery(udp_only.addr, Duration::from_secs(2))
        .dnsaddr("big.mesh.test")
        .await
        .expect_err("no TCP to fall back to");
    assert!(
        matches!(&err, DnsError::Resolve { name, .. } if name == "_dnsaddr.big.mesh.test"),
        "{err:?}"
    );

    // ...and the resolver asks again over TCP.
    let server = start_dns_server(ZONE, records).await;
    let found = discovery(server.addr, Duration::from_secs(5))
        .dnsaddr("big.mesh.test")
        .await
        .expect("over TCP");
    assert_eq!(
        found.into_iter().collect::<HashSet<_>>(),
        addrs.into_iter().collect::<HashSet<_>>()
    );
}

#[tokio::test]
async fn invalid_domains_are_refused_before_any_query() {
    // A socket that counts as a name server but would only ever receive.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let dns = discovery(silent.local_addr().expect("addr"), Duration::from_secs(5));
    for bad in [
        "",
        ".mesh.test",
        "-bad.mesh.test",
        "bad-.mesh.test",
        "a..b",
        "under_score.test",
        "sp ace.test",
    ] {
        let started = Instant::now();
        let err = dns.srv(bad).await.expect_err("srv refused");
        assert!(
            matches!(&err, DnsError::InvalidDomain { domain, .. } if domain == bad),
            "{bad:?}: {err:?}"
        );
        let err = dns.dnsaddr(bad).await.expect_err("dnsaddr refused");
        assert!(
            matches!(&err, DnsError::InvalidDomain { domain, .. } if domain == bad),
            "{bad:?}: {err:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(100));
    }
    let long = format!("{}.test", "a".repeat(64));
    assert!(matches!(
        dns.srv(&long).await,
        Err(DnsError::InvalidDomain { .. })
    ));
    // Nothing reached the "server".
    let mut buf = [0u8; 512];
    let received = silent.try_recv_from(&mut buf);
    assert!(
        matches!(&received, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a query was sent: {received:?}"
    );
}

#[tokio::test]
async fn a_silent_server_is_a_resolve_error_within_the_timeout() {
    // Bound, so queries are not refused by the OS, but never read or answered.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let timeout = Duration::from_millis(500);
    let dns = discovery(silent.local_addr().expect("addr"), timeout);

    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(3), dns.srv("a.mesh.test"))
        .await
        .expect("the lookup ends by itself")
        .expect_err("no answer");
    let elapsed = started.elapsed();
    match &err {
        DnsError::Resolve { name, .. } => assert_eq!(name, "_vaultmesh._tcp.a.mesh.test"),
        other => panic!("expected Resolve, got {other:?}"),
    }
    assert!(err.to_string().contains("_vaultmesh._tcp.a.mesh.test"));
    assert!(
        elapsed < timeout * 2, // slack for a loaded machine; hickory defaults take ~15 s
        "took {elapsed:?} with a {timeout:?} timeout"
    );

    let started = Instant::now();
    let err = dns.dnsaddr("a.mesh.test").await.expect_err("no answer");
    assert!(
        matches!(&err, DnsError::Resolve { name, .. } if name == "_dnsaddr.a.mesh.test"),
        "{err:?}"
    );
    assert!(started.elapsed() < timeout * 2);
}

#[tokio::test]
async fn a_zero_timeout_is_refused() {
    let err = DnsDiscovery::new(DnsConfig {
        nameserver: Some("127.0.0.1:53".parse().expect("addr")),
        timeout: Duration::ZERO,
    })
    .expect_err("zero timeout");
    assert!(matches!(err, DnsError::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn the_system_configuration_is_read_without_querying() {
    // Only builds the resolver: no query leaves the machine.
    let has_nameserver = std::fs::read_to_string("/etc/resolv.conf").is_ok_and(|text| {
        text.lines()
            .any(|l| l.trim_start().starts_with("nameserver"))
    });
    match DnsDiscovery::new(DnsConfig::default()) {
        Ok(_) => assert!(has_nameserver),
        Err(err) => {
            assert!(!has_nameserver, "{err}");
            assert!(matches!(err, DnsError::Config { .. }), "{err:?}");
        }
    }
}
