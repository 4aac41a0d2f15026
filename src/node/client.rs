//! The CLI's side of the control socket: one HTTP/1.1 request per command over the Unix
//! socket in the data directory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

use super::control::SOCKET_NAME;

/// The node refused the request (or it failed there).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct NodeRefused {
    /// HTTP status.
    pub status: StatusCode,
    /// The node's error code.
    pub code: String,
    /// Its message.
    pub message: String,
}

/// The node is not running (or not reachable) on this data directory.
#[derive(Debug, thiserror::Error)]
#[error(
    "no node is running for this data directory: cannot connect to {} ({reason}); start one with `vm-federation node run --data-dir {}`",
    socket.display(),
    dir.display()
)]
pub struct NotRunning {
    socket: PathBuf,
    dir: PathBuf,
    reason: String,
}

/// Whether a node is serving this data directory's control socket right now (the CLI's
/// scroll commands then go through it: the node owns the scroll files while it runs).
pub fn node_running(dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(dir.join(SOCKET_NAME)).is_ok()
}

/// Sends one request to the node and returns its JSON answer.
pub fn call(dir: &Path, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(call_async(dir, method, path, body))
}

/// As [`call`], on the caller's runtime.
pub async fn call_async(
    dir: &Path,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let socket = dir.join(SOCKET_NAME);
    let stream = UnixStream::connect(&socket).await.map_err(|e| NotRunning {
        socket: socket.clone(),
        dir: dir.to_owned(),
        reason: e.to_string(),
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("control socket handshake")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let bytes = match &body {
        Some(v) => serde_json::to_vec(v)?,
        None => Vec::new(),
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("the node closed the control connection")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the node's answer")?
        .to_bytes();
    let value: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "the node answered {status} with something that is not JSON: {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(NodeRefused {
            status,
            code: value["error"].as_str().unwrap_or("error").to_owned(),
            message: value["message"].as_str().unwrap_or("").to_owned(),
        }
        .into())
    }
}
