//! A real DNS server for the tests: hickory-server on 127.0.0.1 (UDP and TCP on one port)
//! answering authoritatively for one in-memory zone. It runs on its own thread and tokio
//! runtime, so the tests can block on CLI commands while it answers; dropping it stops it.
//!
//! The zone code is copied from `network/tests/dns.rs`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;

/// A DNS server answering for one zone until dropped.
pub struct DnsServer {
    /// Where it listens, on UDP and TCP.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Starts a server for the zone `origin` (e.g. `"mesh.test."`) holding `records` plus a
    /// generated SOA.
    pub fn start(origin: &str, records: Vec<Record>) -> Self {
        let origin = origin.to_owned();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("DNS server runtime");
            runtime.block_on(async move {
                let server = start_dns_server(&origin, records).await;
                let _ = addr_tx.send(server.0);
                // Serve until told to stop (or the handle is dropped).
                let _ = stopped.await;
                drop(server);
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the DNS server starts");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the server on the current runtime: its address, and the server (dropping it
/// aborts its tasks).
async fn start_dns_server(origin: &str, records: Vec<Record>) -> (SocketAddr, Server<Catalog>) {
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
        let Ok(listener) = TcpListener::bind(addr).await else {
            continue;
        };
        server.register_listener(listener, Duration::from_secs(5), 64);
        server.register_socket(udp);
        return (addr, server);
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}

/// An SRV record `name` → `target:port`.
pub fn srv_record(name: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
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
pub fn txt_record(name: &str, text: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).expect("txt name"),
        300,
        RData::TXT(TXT::new(vec![text.to_owned()])),
    )
}

/// An A record `name` → `ip`.
pub fn a_record(name: &str, ip: Ipv4Addr) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).expect("a name"),
        300,
        RData::A(A::from(ip)),
    )
}
