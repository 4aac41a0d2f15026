//! The node's HTTPS client facing a hostile server (issue 16): a server with the pinned key
//! that answers with 9 MiB, with bytes that are not HTTP, with a body cut short, or not at
//! all. Each call fails with a clear error, within the limits, and the connection is not
//! kept for the next call.

#![allow(clippy::unwrap_used)] // a failed step is the test failing

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vaultmesh_federation::clock::{Clock, SystemClock};
use vaultmesh_federation::http::client::{Pool, Resolver};
use vaultmesh_federation::http::routes::{HttpForm, MAX_RESPONSE_BYTES};
use vm_network::tls;
use vm_receipts::MeshKey;

use super::https_auth::{clock, identity, roots};

#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// A 200 with a body of 9 MiB (the limit is 8 MiB).
    Huge,
    /// Bytes that are not an HTTP response.
    Garbage,
    /// A body shorter than its Content-Length, then the connection closed.
    Truncated,
    /// Reads the request and never answers.
    Silent,
}

/// A TLS server with key seed 9 that treats every request as `mode` says; returns its URL.
async fn hostile_server(mode: Hostile) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let acceptor = tokio_rustls::TlsAcceptor::from(
        tls::server_config(&identity(9, "hostile"), clock()).unwrap(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // The request head (small GETs here).
                let mut head = vec![0u8; 16 * 1024];
                let _ = tls.read(&mut head).await;
                match mode {
                    Hostile::Huge => {
                        let len = MAX_RESPONSE_BYTES + (1 << 20);
                        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                        let _ = tls.write_all(head.as_bytes()).await;
                        let chunk = vec![b'x'; 64 * 1024];
                        for _ in 0..(len / chunk.len() + 1) {
                            if tls.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    Hostile::Garbage => {
                        let _ = tls.write_all(b"\x00\xffSMTP ready\r\n\r\n").await;
                    }
                    Hostile::Truncated => {
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{\"resp")
                            .await;
                        let _ = tls.shutdown().await;
                    }
                    Hostile::Silent => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                }
            });
        }
    });
    url
}

/// One call through `pool` to `url`, pinned to key seed 9, with no signature headers.
async fn call(pool: &Pool, url: &str) -> Result<(hyper::StatusCode, Vec<u8>), String> {
    let server_key = MeshKey::from_seed(&[9; 32]).public_key().to_bytes();
    let config = tls::client_config(&identity(7, "xray"), server_key, clock()).unwrap();
    pool.exchange(
        &Resolver::System,
        config,
        server_key,
        url,
        roots(),
        |_: &HttpForm| Ok(Vec::new()),
        true,
        SystemClock.now().unix(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_fail_clearly_and_are_not_kept() {
    for (mode, says) in [
        (Hostile::Huge, "length limit"),
        (Hostile::Garbage, "HTTP with"),
        (Hostile::Truncated, "reading the answer"),
    ] {
        let url = hostile_server(mode).await;
        let pool = Pool::default();
        for attempt in 1..=2 {
            let result = tokio::time::timeout(Duration::from_secs(20), call(&pool, &url))
                .await
                .unwrap_or_else(|_| panic!("{mode:?}: no error within 20 s"));
            let error = result.expect_err("a hostile answer is an error");
            assert!(error.contains(says), "{mode:?}: {error}");
            assert_eq!(
                pool.connections_opened(),
                attempt,
                "{mode:?}: a failed connection is never reused"
            );
        }
    }
    // A server that never answers: the caller's deadline ends the call (the node's client
    // wraps every call in its `[http] timeout`), and nothing is left to reuse.
    let url = hostile_server(Hostile::Silent).await;
    let pool = Pool::default();
    for _ in 0..2 {
        let timed_out = tokio::time::timeout(Duration::from_millis(500), call(&pool, &url)).await;
        assert!(timed_out.is_err(), "a silent server gives no answer");
    }
    assert_eq!(
        pool.connections_opened(),
        2,
        "the silent connection was not kept"
    );
}
