//! Benchmark of the HTTPS shim (issue 6): signed-request round trips per second over mutual
//! TLS on loopback, against a plain axum handler with no TLS and no signature in the same run.
//!
//! - **ours**: a running node with `[http]` on; a peer it knows sends `GET /federation/roots`
//!   (the mesh has no agreement with it, so the answer is the policy's 403 after everything
//!   before the handler: the TLS 1.3 handshake with both certificates checked, the request
//!   signature, the window, the pin of the TLS key to the origin, the replay cache (a durable
//!   redb write), the rate limits). Each request on a fresh connection, as the node's client
//!   makes them; and, separately, the same signed requests on one kept-alive mTLS connection.
//! - **limit**: axum answering a small JSON on plain TCP, each request on a fresh connection,
//!   and on one kept-alive connection.
//!
//! Run: `cargo bench --bench https` (VM_BENCH_QUICK=1 for a smoke run).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, missing_docs)] // wall-clock timing is what a benchmark does

#[path = "support/node.rs"]
mod node_support;

use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::json;
use vaultmesh_federation::clock::{Clock, SystemClock};
use vaultmesh_federation::http::client::exchange;
use vaultmesh_federation::http::routes::HttpForm;
use vaultmesh_federation::http::signing;
use vm_network::tls::{self, TlsClock, TlsIdentity};
use vm_receipts::{MeshId, MeshKey, PublicKey};

use node_support::{ctl, start};

fn clock() -> TlsClock {
    Arc::new(|| SystemClock.now().unix())
}

fn roots() -> HttpForm {
    HttpForm {
        method: Method::GET,
        path_and_query: "/federation/roots".into(),
        body: Vec::new(),
    }
}

fn signed(key: &MeshKey, me: &MeshId, node: &MeshId, i: u64) -> Vec<(&'static str, String)> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&i.to_le_bytes());
    nonce[8..].copy_from_slice(&(SystemClock.now().unix() as u64).to_le_bytes());
    signing::sign(
        key,
        "GET",
        "/federation/roots",
        b"",
        me,
        node,
        SystemClock.now(),
        &nonce,
    )
    .unwrap()
}

/// Signed requests on one kept-alive mTLS connection.
async fn keepalive_signed(
    url: &str,
    config: Arc<rustls::ClientConfig>,
    key: &MeshKey,
    me: &MeshId,
    node: &MeshId,
    n: u64,
) -> f64 {
    let addr = url.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap().into(),
    );
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let start = Instant::now();
    for i in 0..n {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri("/federation/roots")
            .header("host", &addr);
        for (h, v) in signed(key, me, node, 1_000_000 + i) {
            req = req.header(h, v);
        }
        sender.ready().await.unwrap();
        let resp = sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        resp.into_body().collect().await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn plain(n: u64, keepalive: bool) -> f64 {
    let app = axum::Router::new().route(
        "/federation/roots",
        axum::routing::get(|| async { axum::Json(json!({"response": "roots", "roots": []})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let request = || {
        Request::builder()
            .uri("/federation/roots")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let start = Instant::now();
    if keepalive {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        for _ in 0..n {
            sender.ready().await.unwrap();
            let resp = sender.send_request(request()).await.unwrap();
            resp.into_body().collect().await.unwrap();
        }
    } else {
        for _ in 0..n {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender.ready().await.unwrap();
            let resp = sender.send_request(request()).await.unwrap();
            resp.into_body().collect().await.unwrap();
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn per_sec(r: f64) -> String {
    if r >= 1000.0 {
        format!("{:.1}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

async fn run(n: u64) -> [(f64, f64); 2] {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(
        tmp.path(),
        "bench-https",
        21,
        "\n[http]\nlisten = \"127.0.0.1:0\"\nrate_per_sec = 1000000\nrate_burst = 1000000\n",
    )
    .await;
    let st = ctl(&node, Method::GET, "/v1/status", None).await;
    let url = st["federation_api"].as_str().unwrap().to_owned();
    let node_mesh: MeshId = serde_json::from_value(st["mesh_id"].clone()).unwrap();
    let node_key: PublicKey = serde_json::from_value(st["public_key"].clone()).unwrap();
    let key = MeshKey::from_seed(&[22; 32]);
    let me: MeshId = "did:vm:mesh:bench-client".parse().unwrap();
    ctl(&node, Method::POST, "/v1/peers", Some(json!({"op": "add_peer", "mesh_id": "bench-client", "public_key": key.public_key().to_string()}))).await;
    let identity = TlsIdentity::new(
        &key.seed_bytes(),
        me.as_str(),
        &["localhost".into()],
        SystemClock.now().unix() - 60,
        1,
    )
    .unwrap();
    let config = tls::client_config(&identity, node_key.to_bytes(), clock()).unwrap();

    let start_t = Instant::now();
    for i in 0..n {
        let (status, _, _) = exchange(
            config.clone(),
            &url,
            roots(),
            signed(&key, &me, &node_mesh, i),
            true,
        )
        .await
        .unwrap();
        assert_eq!(status, 403);
    }
    let fresh = n as f64 / start_t.elapsed().as_secs_f64();
    let kept = keepalive_signed(&url, config, &key, &me, &node_mesh, n).await;
    let _ = node.stop.send(());
    node.task.await.unwrap().unwrap();
    let plain_fresh = plain(n, false).await;
    let plain_kept = plain(n, true).await;
    [(fresh, plain_fresh), (kept, plain_kept)]
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    let n = if quick { 50 } else { 2_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let [(fresh, plain_fresh), (kept, plain_kept)] = runtime.block_on(run(n));
    println!(
        "| {n} requests | ours: signed, mTLS, pinned, replay-checked | plain axum, no TLS, no signature | ours / plain |"
    );
    println!("|---|---|---|---|");
    println!(
        "| a new connection per request | {} | {} | {:.1}% |",
        per_sec(fresh),
        per_sec(plain_fresh),
        100.0 * fresh / plain_fresh
    );
    println!(
        "| one kept-alive connection | {} | {} | {:.1}% |",
        per_sec(kept),
        per_sec(plain_kept),
        100.0 * kept / plain_kept
    );
}
