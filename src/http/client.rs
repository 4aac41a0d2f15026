//! One federation request over a fresh TLS connection (the HTTPS shim's client side, and
//! what tests use to speak to a node as a peer would).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
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
    let port = uri.port_u16().unwrap_or(443);
    let addrs = resolver.resolve(&host, port).await?;
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
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let base_path = uri.path().trim_end_matches('/');
    let mut request = Request::builder()
        .method(form.method)
        .uri(format!("{base_path}{}", form.path_and_query))
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(form.body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP with {addr}: {e}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {addr}: {e}"))?
        .to_bytes()
        .to_vec();
    Ok((status, body, server_key))
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
