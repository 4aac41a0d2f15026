//! Federation requests over TLS: the node's client keeps connections alive in a [`Pool`];
//! [`exchange`] makes one request over a fresh connection (discovery, where no key is known
//! yet, and what tests use to speak to a node as a peer would).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use vm_network::tls;

use super::routes::{HttpForm, MAX_RESPONSE_BYTES};

/// How an endpoint's host name becomes addresses.
#[derive(Debug, Clone, Default)]
pub enum Resolver {
    /// The system's resolver (the hosts file, resolv.conf).
    #[default]
    System,
    /// The configured nameserver (`[dns] nameserver`), the one discovery asks: an endpoint
    /// learned from a record is reached through the same DNS that found it.
    Dns(Arc<vm_network::dns::DnsDiscovery>),
}

impl Resolver {
    /// The addresses of `host` (an IP literal is itself).
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        match self {
            Self::System => Ok(tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("{host}: {e}"))?
                .collect()),
            Self::Dns(dns) => Ok(dns
                .addresses(host)
                .await
                .map_err(|e| format!("{host}: {e}"))?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
        }
    }
}

/// One request over a fresh TLS connection; returns status, body and the server's key.
/// Host names are resolved by the system's resolver.
pub async fn exchange(
    config: Arc<rustls::ClientConfig>,
    base_url: &str,
    form: HttpForm,
    headers: Vec<(&'static str, String)>,
    allow_private: bool,
) -> Result<(StatusCode, Vec<u8>, Option<[u8; 32]>), String> {
    exchange_via(
        &Resolver::System,
        config,
        base_url,
        form,
        headers,
        allow_private,
    )
    .await
}

/// As [`exchange`], resolving host names with `resolver`.
pub async fn exchange_via(
    resolver: &Resolver,
    config: Arc<rustls::ClientConfig>,
    base_url: &str,
    form: HttpForm,
    headers: Vec<(&'static str, String)>,
    allow_private: bool,
) -> Result<(StatusCode, Vec<u8>, Option<[u8; 32]>), String> {
    let endpoint = Endpoint::parse(base_url)?;
    let mut conn = Conn::open(resolver, config, &endpoint, allow_private).await?;
    let request = endpoint.request(form, headers)?;
    let (status, body) = conn.send(request).await.map_err(|(e, _)| e)?;
    Ok((status, body, conn.server_key))
}

/// Where a base URL points: host, port and path prefix.
struct Endpoint {
    base_url: String,
    host: String,
    port: u16,
    base_path: String,
}

impl Endpoint {
    fn parse(base_url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = base_url
            .parse()
            .map_err(|e| format!("{base_url}: not a URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("{base_url}: only https:// endpoints are used"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{base_url}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            base_url: base_url.to_owned(),
            host,
            port: uri.port_u16().unwrap_or(443),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn request(
        &self,
        form: HttpForm,
        headers: Vec<(&'static str, String)>,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut request = Request::builder()
            .method(form.method)
            .uri(format!("{}{}", self.base_path, form.path_and_query))
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
            .body(Full::new(Bytes::from(form.body)))
            .map_err(|e| e.to_string())
    }
}

/// One HTTP/1.1 connection over TLS.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    /// The key the server's certificate proved.
    server_key: Option<[u8; 32]>,
}

impl Conn {
    async fn open(
        resolver: &Resolver,
        config: Arc<rustls::ClientConfig>,
        endpoint: &Endpoint,
        allow_private: bool,
    ) -> Result<Self, String> {
        let Endpoint { host, port, .. } = endpoint;
        let addrs = resolver.resolve(host, *port).await?;
        let addr = addrs
            .into_iter()
            .find(|a| allow_private || is_public(a.ip()))
            .ok_or_else(|| format!("{host} resolves only to private or loopback addresses (allow_private_addresses is off)"))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        // Small request/response exchanges: Nagle + delayed ACK would add 40 ms to each.
        let _ = tcp.set_nodelay(true);
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("{host}: {e}"))?,
        };
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        let server_key = tls::peer_key_of_client(tls.get_ref().1);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP with {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            addr,
            server_key,
        })
    }

    /// Sends `request` and reads the answer (at most [`MAX_RESPONSE_BYTES`]). On failure, the
    /// request comes back if it was never written (the connection had closed).
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Vec<u8>), (String, Option<Request<Full<Bytes>>>)> {
        let addr = self.addr;
        // A kept-alive connection takes its next request once the last answer is done.
        if let Err(e) = self.sender.ready().await {
            return Err((format!("HTTP with {addr}: {e}"), Some(request)));
        }
        let response = match self.sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut e) => {
                let unsent = e.take_message();
                return Err((format!("HTTP with {addr}: {}", e.into_error()), unsent));
            }
        };
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| (format!("reading the answer of {addr}: {e}"), None))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }
}

/// How long an idle kept-alive connection is reused: half the server's wait for a next
/// request (the node's is 10 s, its header deadline), so a pooled connection is rarely one
/// the server is closing. The exchanges of one witness check or anchor cycle reuse one
/// connection; calls a cycle apart open a new one.
pub const POOL_IDLE_SECS: i64 = 5;

/// A pooled connection's endpoint (its base URL) and the key its server must prove.
type PoolKey = (String, [u8; 32]);

/// Kept-alive mTLS connections of the node's client: at most one idle connection per
/// endpoint and pinned key. A federation peer is called on every anchor cycle and witness
/// check; a fresh connection costs a TLS 1.3 handshake (an Ed25519 signature each way and
/// X25519) on top of the request. The pin is part of the key, so a peer whose key changed
/// is never reached over a connection authenticated for the old one.
#[derive(Default)]
pub struct Pool {
    /// By (base URL, pinned key): the connection and since when it is idle (Unix seconds).
    idle: Mutex<HashMap<PoolKey, (Conn, i64)>>,
    /// Connections opened or tried, for tests.
    opened: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("opened", &self.connections_opened())
            .finish()
    }
}

impl Pool {
    /// Connections this pool has opened or tried to open.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn take(&self, key: &PoolKey, now: i64) -> Option<Conn> {
        let (conn, since) = self.idle.lock().ok()?.remove(key)?;
        (now - since < POOL_IDLE_SECS && !conn.sender.is_closed()).then_some(conn)
    }

    fn give_back(&self, key: PoolKey, conn: Conn, now: i64) {
        if conn.sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.insert(key, (conn, now));
        }
    }

    /// One request to the server at `base_url` whose TLS key must be `pin` (`config` pins
    /// it), over an idle kept-alive connection when there is one. `sign` makes the request's
    /// headers; a request that fails on a reused connection before an answer is sent once
    /// more on a fresh connection, signed again (a new nonce: the server may have taken the
    /// first one, and repeats of a message or a read change nothing).
    #[allow(clippy::too_many_arguments)]
    pub async fn exchange(
        &self,
        resolver: &Resolver,
        config: Arc<rustls::ClientConfig>,
        pin: [u8; 32],
        base_url: &str,
        form: HttpForm,
        sign: impl Fn(&HttpForm) -> Result<Vec<(&'static str, String)>, String>,
        allow_private: bool,
        now: i64,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        let endpoint = Endpoint::parse(base_url)?;
        let key = (endpoint.base_url.clone(), pin);
        if let Some(mut conn) = self.take(&key, now) {
            let request = endpoint.request(form.clone(), sign(&form)?)?;
            match conn.send(request).await {
                Ok(answer) => {
                    self.give_back(key, conn, now);
                    return Ok(answer);
                }
                Err((e, _)) => {
                    tracing::debug!(%base_url, error = %e, "a kept-alive connection failed; trying a fresh one");
                }
            }
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        let mut conn = Conn::open(resolver, config, &endpoint, allow_private).await?;
        let request = endpoint.request(form.clone(), sign(&form)?)?;
        let answer = conn.send(request).await.map_err(|(e, _)| e)?;
        self.give_back(key, conn, now);
        Ok(answer)
    }
}

/// Neither loopback, private, link-local nor unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}
