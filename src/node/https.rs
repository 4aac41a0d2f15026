//! The federation API over HTTPS with mutual TLS (seed §5, DESIGN §8), for meshes that are
//! not on the P2P network: the server (an accept loop of TLS 1.3 connections, each served by
//! hyper), the node's side of it (authentication: the signed request, the replay cache, the
//! mTLS key pinned to the origin's key; per-peer rate limits), and the client (signed
//! requests over pinned mTLS, per-peer jittered backoff).
//!
//! Requests reach the one handler the libp2p transport uses ([`Node::handle_fed`]) as
//! [`FedRequest`]s: [`crate::http::routes`] is the only place that knows their HTTP form.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, HeaderValue, RETRY_AFTER};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use vm_network::tls::{self, TlsClock, TlsIdentity};
use vm_receipts::documents::DiscoveryRecord;
use vm_receipts::{MeshId, MeshKey, PublicKey, Timestamp};
use vm_storage::Replay;

use super::Node;
use super::admission::{Admission, Slot};
use super::wire::{FedRequest, FedResponse};
use crate::clock::{Clock, SystemClock, os_random_32};
use crate::http::client::{Pool, Resolver};
use crate::http::openapi;
use crate::http::routes::{self, HttpForm, MAX_REQUEST_BYTES};
use crate::http::signing::{self, AuthError, WINDOW_SECS};

/// A TLS handshake must finish in this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's head may take to arrive, and how long a kept-alive connection may
/// wait for its next request: a client that trickles bytes (slowloris) or holds a connection
/// silent is closed, and its slot freed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive once its head has (a connection serving a
/// request is never shed, so a trickled body must not hold it for ever).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest path and query we answer; longer gets 414 in the JSON error form.
const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The most header fields, and header bytes, we answer; more gets 431 in the JSON error form.
const MAX_HEADER_FIELDS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Where hyper's own parser stops (its refusals carry no body): well above ours, so every
/// head short of an outright flood gets our JSON answer instead.
const PARSER_MAX_HEADERS: usize = 256;
const PARSER_MAX_HEAD_BYTES: usize = 64 * 1024;

/// An HTTP request, as the connection task hands it to the main loop.
pub(super) struct HttpCall {
    method: Method,
    path: String,
    query: Option<String>,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
    tls_key: Option<[u8; 32]>,
    remote: IpAddr,
    reply: oneshot::Sender<HttpReply>,
}

/// Status, extra headers, JSON body.
pub(super) type HttpReply = (
    StatusCode,
    Vec<(hyper::header::HeaderName, String)>,
    Vec<u8>,
);

/// Accepts TLS connections on `listener` and hands their requests to `calls`, until the
/// listener fails or the node drops `calls`.
pub(super) async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    calls: mpsc::Sender<HttpCall>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let admission = Admission::default();
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if calls.is_closed() {
            return;
        }
        let slot = match admission.admit(remote.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                // Debug, not info: whoever floods connections would flood the log too.
                tracing::debug!(%remote, ?why, "HTTPS connection refused");
                drop(tcp);
                continue;
            }
        };
        // Small request/response exchanges: Nagle + delayed ACK would add 40 ms to each.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            let shed = slot.shed.clone();
            tokio::select! {
                () = shed.notified() => {
                    tracing::debug!(%remote, "idle HTTPS connection shed to make room");
                }
                () = connection(acceptor, tcp, remote, calls, Arc::new(slot)) => {}
            }
        });
    }
}

/// One connection: the handshake, then its requests, each marking the slot busy.
async fn connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    remote: std::net::SocketAddr,
    calls: mpsc::Sender<HttpCall>,
    slot: Arc<Slot>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // Refused before any handler runs: no certificate problem reaches one.
            tracing::info!(%remote, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::info!(%remote, "TLS handshake timed out");
            return;
        }
    };
    let tls_key = tls::peer_key_of_server(tls.get_ref().1);
    let service = hyper::service::service_fn(move |req| {
        let calls = calls.clone();
        let busy = Busy::new(slot.clone());
        async move {
            let response = call(req, tls_key, remote.ip(), &calls).await;
            drop(busy);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(PARSER_MAX_HEADERS)
        .max_header_size(PARSER_MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%remote, error = %e, "HTTPS connection ended");
    }
}

/// A request in progress on a connection: busy while it lives, idle again when dropped
/// (also when the request is cut short).
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: Arc<Slot>) -> Self {
        slot.busy();
        Self(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle();
    }
}

/// A request head over our limits, answered in the JSON error form.
fn head_too_large(parts: &hyper::http::request::Parts) -> Option<Response<Full<Bytes>>> {
    let target = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_TARGET_BYTES {
        return Some(error_response(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            &format!("the path and query are {target} bytes; at most {MAX_TARGET_BYTES}"),
        ));
    }
    let fields = parts.headers.len();
    let bytes: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if fields > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES {
        return Some(error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            &format!(
                "{fields} header fields of {bytes} bytes; at most {MAX_HEADER_FIELDS} fields and {MAX_HEADER_BYTES} bytes"
            ),
        ));
    }
    None
}

fn json_response(
    status: StatusCode,
    headers: Vec<(hyper::header::HeaderName, String)>,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        Vec::new(),
        FedResponse::error(code, message, status.is_client_error()).to_bytes(),
    )
}

/// One request: the body read within its limit, then the main loop's answer.
async fn call(
    req: Request<Incoming>,
    tls_key: Option<[u8; 32]>,
    remote: IpAddr,
    calls: &mpsc::Sender<HttpCall>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    if let Some(refused) = head_too_large(&parts) {
        return refused;
    }
    let collected = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_REQUEST_BYTES).collect(),
    );
    let body = match collected.await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "oversized",
                &format!("bodies are at most {MAX_REQUEST_BYTES} bytes"),
            );
        }
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                &format!(
                    "the body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            );
        }
    };
    let (reply, answer) = oneshot::channel();
    let call = HttpCall {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts.headers,
        body,
        tls_key,
        remote,
        reply,
    };
    if calls.send(call).await.is_err() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is stopping",
        );
    }
    match answer.await {
        Ok((status, headers, body)) => json_response(status, headers, body),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is stopping",
        ),
    }
}

/// A token bucket per peer.
#[derive(Debug)]
pub(super) struct RateLimits {
    per_sec: f64,
    burst: f64,
    buckets: HashMap<String, (f64, i64)>,
}

impl RateLimits {
    /// `per_sec` requests per second with bursts of `burst`.
    pub(super) fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `who` at `now_ms`, or says how many seconds until one is there.
    pub(super) fn take(&mut self, who: &str, now_ms: i64) -> Result<(), u64> {
        if self.buckets.len() > 10_000 {
            // Bounded memory: forget full buckets (idle peers).
            let burst = self.burst;
            self.buckets.retain(|_, (tokens, _)| *tokens < burst);
        }
        let (tokens, at) = self
            .buckets
            .entry(who.to_owned())
            .or_insert((self.burst, now_ms));
        let elapsed = (now_ms - *at).max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * self.per_sec).min(self.burst);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

fn unauthorized(e: &AuthError) -> HttpReply {
    (
        StatusCode::UNAUTHORIZED,
        Vec::new(),
        FedResponse::error("unauthorized", e.to_string(), true).to_bytes(),
    )
}

impl Node {
    /// An HTTP request from the server: route, authenticate, rate-limit, handle.
    pub(super) fn on_http(&mut self, call: HttpCall) {
        let mut kind = "unrouted";
        let answer = self.answer_http(&call, &mut kind);
        self.metrics.request("https", kind);
        if answer.0.is_client_error() || answer.0.is_server_error() {
            // Our refusals carry the JSON error form; its code is the reason.
            let reason = serde_json::from_slice::<serde_json::Value>(&answer.2)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| answer.0.as_u16().to_string());
            self.metrics.refusal("https", &reason);
        }
        let _ = call.reply.send(answer);
    }

    /// Answers one call; `kind` is set to the request's kind once it is routed.
    fn answer_http(&mut self, call: &HttpCall, kind: &mut &'static str) -> HttpReply {
        let now_ms = self.now().unix().saturating_mul(1000);
        // Every request counts against its address first (unauthenticated ones too: each
        // costs a signature check), then an authenticated one against its mesh.
        if let Err(wait) = self.address_limits.take(&call.remote.to_string(), now_ms) {
            return rate_limited(wait);
        }
        // The OpenAPI document: public, like discovery, and served here (it is no request).
        if call.path == openapi::PATH {
            *kind = "openapi";
            return match call.method {
                Method::GET => (StatusCode::OK, Vec::new(), openapi::pretty().into_bytes()),
                _ => {
                    let refused = routes::method_not_allowed(&call.method, &call.path);
                    (
                        refused.status,
                        vec![(ALLOW, "GET".into())],
                        refused.response().to_bytes(),
                    )
                }
            };
        }
        let request =
            match routes::from_http(&call.method, &call.path, call.query.as_deref(), &call.body) {
                Ok(r) => r,
                Err(refused) => {
                    // RFC 9110: a 405 lists the methods the path takes.
                    let allow = match refused.status {
                        StatusCode::METHOD_NOT_ALLOWED => {
                            vec![(ALLOW, routes::allowed_methods(&call.path).join(", "))]
                        }
                        _ => Vec::new(),
                    };
                    return (refused.status, allow, refused.response().to_bytes());
                }
            };
        *kind = super::request_kind(&request);
        if matches!(request, FedRequest::Discovery) {
            let (response, _) = self.handle_fed(None, request);
            let (status, body) = routes::response_to_http(&response);
            return (status, Vec::new(), body);
        }
        let (origin, nonce) = match self.authenticate(call) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::info!(remote = %call.remote, error = %e, "HTTPS request refused");
                return unauthorized(&e);
            }
        };
        // The mesh's rate limit comes before its nonce is remembered: a request refused with
        // 429 costs no write and may be sent again, unchanged, after `Retry-After`.
        if let Err(wait) = self.rate_limits.take(origin.as_str(), now_ms) {
            return rate_limited(wait);
        }
        match self.remember_nonce(&origin, &nonce, request.has_effects()) {
            Ok(Replay::Fresh) => {}
            Ok(Replay::Replayed) => {
                let e = AuthError::Replay(nonce);
                tracing::info!(remote = %call.remote, error = %e, "HTTPS request refused");
                return unauthorized(&e);
            }
            Err(e) => {
                // Our storage failed, not the request: 503, and the client may retry.
                tracing::warn!(%origin, error = %e, "replay cache unavailable; HTTPS request refused");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![(RETRY_AFTER, "5".into())],
                    FedResponse::error(
                        "unavailable",
                        format!("the replay cache cannot be written: {e}"),
                        false,
                    )
                    .to_bytes(),
                );
            }
        }
        // The peer reached us: whatever we backed off from it is over.
        self.https.reset(&origin);
        self.contacted(&origin, "https");
        let (response, strike) = self.handle_fed(Some(&origin), request);
        if let Some(reason) = strike {
            tracing::warn!(%origin, %reason, "bad input over HTTPS");
        }
        let (status, body) = routes::response_to_http(&response);
        (status, Vec::new(), body)
    }

    /// DESIGN §8: the signature headers, the window, the origin's key, the mTLS key equal to
    /// it, the signature for us, then the replay cache (only after the signature, so nobody
    /// can fill it with forged nonces).
    /// Checks the request's signature headers, TLS key and signature; returns the origin and
    /// the nonce (remembered only after the rate limit, by [`Node::remember_nonce`]).
    fn authenticate(&mut self, call: &HttpCall) -> Result<(MeshId, String), AuthError> {
        signing::single_headers(|name| call.headers.get_all(name).iter().count())?;
        let headers =
            signing::parse_headers(|name| call.headers.get(name).and_then(|v| v.to_str().ok()))?;
        let key = self
            .route(&headers.origin)
            .map(|t| t.key)
            .ok_or_else(|| AuthError::UnknownOrigin(headers.origin.clone()))?;
        if call.tls_key != Some(key.to_bytes()) {
            return Err(AuthError::TlsKeyMismatch(headers.origin));
        }
        let now = self.now();
        signing::verify(
            &headers,
            call.method.as_str(),
            &call.path_and_query,
            &call.body,
            self.dir.mesh_id(),
            &key,
            now,
        )?;
        Ok((headers.origin, headers.nonce))
    }

    /// Remembers a verified request's nonce until its signature window closes: durably before
    /// a request with effects is handled; for a read, in a volatile commit that the next
    /// durable one carries (see [`FedRequest::has_effects`]), which spares a read the fsync.
    fn remember_nonce(
        &self,
        origin: &MeshId,
        nonce: &str,
        durable: bool,
    ) -> Result<Replay, vm_storage::StoreError> {
        let now = self.now();
        let expires = now.plus_seconds(WINDOW_SECS + 1);
        let check = |tx: &mut vm_storage::WriteTx<'_>| tx.check_replay(origin, nonce, now, expires);
        let store = self.engine.store();
        if durable {
            store.write(check)
        } else {
            store.write_volatile(check)
        }
    }
}

fn rate_limited(wait_secs: u64) -> HttpReply {
    (
        StatusCode::TOO_MANY_REQUESTS,
        vec![(RETRY_AFTER, wait_secs.to_string())],
        FedResponse::error(
            "rate_limited",
            format!("too many requests; retry after {wait_secs} s"),
            false,
        )
        .to_bytes(),
    )
}

/// Per-peer backoff of outbound HTTPS calls.
#[derive(Debug, Default, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: i64,
}

/// The HTTPS client: signed requests over mTLS pinned to the peer's key.
pub(super) struct HttpsClient {
    identity: TlsIdentity,
    key: MeshKey,
    me: MeshId,
    clock: TlsClock,
    allow_private: bool,
    timeout: Duration,
    backoff: Mutex<HashMap<MeshId, Backoff>>,
    /// How endpoint host names are resolved (`[dns] nameserver` when set).
    resolver: Resolver,
    /// Kept-alive connections to peers.
    pool: Pool,
}

impl HttpsClient {
    pub(super) fn new(
        identity: TlsIdentity,
        key: MeshKey,
        me: MeshId,
        allow_private: bool,
        timeout: Duration,
        resolver: Resolver,
    ) -> Self {
        Self {
            identity,
            key,
            me,
            clock: Arc::new(|| SystemClock.now().unix()),
            allow_private,
            timeout,
            backoff: Mutex::new(HashMap::new()),
            resolver,
            pool: Pool::default(),
        }
    }

    /// Forgets the backoff of `peer` (it contacted us).
    pub(super) fn reset(&self, peer: &MeshId) {
        if let Ok(mut b) = self.backoff.lock() {
            b.remove(peer);
        }
    }

    fn check_backoff(&self, peer: &MeshId, now: i64) -> Result<(), String> {
        let b = self.backoff.lock().map_err(|_| "backoff lock".to_owned())?;
        match b.get(peer) {
            Some(state) if state.until > now => Err(format!(
                "backing off from {peer} for {} s after {} failures",
                state.until - now,
                state.failures
            )),
            _ => Ok(()),
        }
    }

    fn record(&self, peer: &MeshId, ok: bool, now: i64) {
        let Ok(mut b) = self.backoff.lock() else {
            return;
        };
        if ok {
            b.remove(peer);
            return;
        }
        let state = b.entry(peer.clone()).or_default();
        state.failures = state.failures.saturating_add(1);
        // 1 s doubling to 5 min, ±25 % jitter from OS randomness.
        let base = 1i64 << state.failures.min(9);
        let base = base.min(300);
        let jitter = os_random_32().map_or(0, |r| i64::from(r[0]) % (base / 2 + 1)) - base / 4;
        state.until = now + (base + jitter).max(1);
    }

    /// `request` to `peer` (key `peer_key`) at `base_url`: signed, over mTLS pinned to the key.
    pub(super) async fn call(
        &self,
        peer: &MeshId,
        peer_key: &PublicKey,
        base_url: &str,
        request: &FedRequest,
    ) -> Result<FedResponse, String> {
        let now = SystemClock.now();
        self.check_backoff(peer, now.unix())?;
        let result = self.call_once(peer, peer_key, base_url, request, now).await;
        let ok = matches!(&result, Ok((status, _)) if !status.is_server_error());
        self.record(peer, ok, now.unix());
        let (status, body) = result?;
        Ok(routes::response_from_http(request, status, &body))
    }

    async fn call_once(
        &self,
        peer: &MeshId,
        peer_key: &PublicKey,
        base_url: &str,
        request: &FedRequest,
        now: Timestamp,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        let form = routes::to_http(request)?;
        let sign = |form: &HttpForm| {
            let nonce = os_random_32().map_err(|e| format!("OS random: {e}"))?;
            signing::sign(
                &self.key,
                form.method.as_str(),
                &form.path_and_query,
                &form.body,
                &self.me,
                peer,
                now,
                &nonce[..16],
            )
            .map_err(|e| e.to_string())
        };
        let config = tls::client_config(&self.identity, peer_key.to_bytes(), self.clock.clone())
            .map_err(|e| e.to_string())?;
        let fut = self.pool.exchange(
            &self.resolver,
            config,
            peer_key.to_bytes(),
            base_url,
            form,
            sign,
            self.allow_private,
            now.unix(),
        );
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| format!("{base_url}: no answer within {:?}", self.timeout))?
    }
}

/// `GET /federation/discovery` at `base_url` without knowing the key: the record, kept
/// only if the TLS key the server proved is the record's key.
pub(super) async fn fetch_discovery(
    resolver: &Resolver,
    base_url: &str,
    allow_private: bool,
    timeout: Duration,
) -> Result<DiscoveryRecord, String> {
    let clock: TlsClock = Arc::new(|| SystemClock.now().unix());
    let config = tls::discovery_client_config(clock).map_err(|e| e.to_string())?;
    let form = routes::to_http(&FedRequest::Discovery)?;
    let (status, body, server_key) = tokio::time::timeout(
        timeout,
        crate::http::client::exchange_via(
            resolver,
            config,
            base_url,
            form,
            Vec::new(),
            allow_private,
        ),
    )
    .await
    .map_err(|_| format!("{base_url}: no answer within {timeout:?}"))??;
    match routes::response_from_http(&FedRequest::Discovery, status, &body) {
        FedResponse::Discovery { record } => {
            if Some(record.public_key.to_bytes()) != server_key {
                return Err(format!(
                    "{base_url} serves the record of {} but its TLS certificate is another key",
                    record.mesh_id
                ));
            }
            Ok(*record)
        }
        FedResponse::Error { error, message, .. } => Err(format!("{base_url}: {error}: {message}")),
        other => Err(format!("{base_url}: unexpected answer {other:?}")),
    }
}

/// Where and how to reach a peer: its key, its libp2p addresses, its HTTPS endpoints.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub mesh: MeshId,
    pub key: PublicKey,
    pub p2p: Vec<String>,
    pub https: Vec<String>,
}

/// Outbound requests over whichever transport reaches the peer. A node that is not on the
/// P2P network itself (no listen addresses) uses HTTPS whenever the peer has an endpoint;
/// otherwise libp2p when the peer has addresses there (or none anywhere: a connection may
/// already exist), else HTTPS.
#[derive(Clone)]
pub(super) struct Outbound {
    pub net: vm_network::NetworkHandle,
    pub https: Arc<HttpsClient>,
    pub prefer_https: bool,
}

impl Outbound {
    /// The transport a call to `target` goes over: HTTPS when the peer has only HTTPS
    /// endpoints, or when we have no libp2p listener and it has one; libp2p otherwise.
    pub(super) fn transport(&self, target: &Target) -> &'static str {
        if !target.https.is_empty() && (self.prefer_https || target.p2p.is_empty()) {
            "https"
        } else {
            "libp2p"
        }
    }

    pub(super) async fn call(
        &self,
        target: &Target,
        request: &FedRequest,
    ) -> Result<FedResponse, String> {
        if self.transport(target) == "https" {
            let mut last = String::new();
            for url in &target.https {
                match self
                    .https
                    .call(&target.mesh, &target.key, url, request)
                    .await
                {
                    Ok(response) => return Ok(response),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let bytes = self
            .net
            .request(&target.key.peer_id(), target.p2p.clone(), body)
            .await
            .map_err(|e| format!("{}: {e}", target.mesh))?;
        super::wire::decode(&bytes).map_err(|e| format!("{}: malformed response: {e}", target.mesh))
    }
}
