//! The `[metrics] listen` server: `/metrics` (Prometheus text exposition), `/healthz`
//! (alive: the node's main loop answers) and `/readyz` (ready: store, scrolls and network
//! open, no fault of our own files). Plain HTTP without authentication, for a loopback or
//! management address. It asks the main loop like the control socket does and decides
//! nothing itself.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::control::{ControlOp, ControlRequest};

/// How long the main loop may take to answer before the node is called not alive: a loop
/// stuck this long answers no peer either.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The OpenMetrics text format, which Prometheus reads (prometheus-client writes it).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Tx = mpsc::Sender<ControlRequest>;

/// The routes.
pub(super) fn router(tx: Tx) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(tx)
}

async fn ask(tx: &Tx, op: ControlOp) -> Result<Value, String> {
    let (reply, answer) = oneshot::channel();
    tx.send(ControlRequest { op, reply })
        .await
        .map_err(|_| "the node is shutting down".to_owned())?;
    match tokio::time::timeout(ANSWER_WITHIN, answer).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(e.message),
        Ok(Err(_)) => Err("the node is shutting down".to_owned()),
        Err(_) => Err(format!(
            "the node's main loop did not answer within {} s",
            ANSWER_WITHIN.as_secs()
        )),
    }
}

fn unavailable(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error": "unavailable", "message": message})),
    )
        .into_response()
}

async fn metrics(State(tx): State<Tx>) -> Response {
    match ask(&tx, ControlOp::Metrics).await {
        Ok(Value::String(text)) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Ok(other) => unavailable(format!("unexpected answer {other}")),
        Err(e) => unavailable(e),
    }
}

async fn healthz(State(tx): State<Tx>) -> Response {
    match ask(&tx, ControlOp::Ready).await {
        Ok(_) => axum::Json(json!({"alive": true})).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn readyz(State(tx): State<Tx>) -> Response {
    match ask(&tx, ControlOp::Ready).await {
        Ok(value) if value["ready"] == true => axum::Json(value).into_response(),
        Ok(value) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(value)).into_response(),
        Err(e) => unavailable(e),
    }
}

/// Binds `addr` and serves until the task is aborted.
pub(super) async fn bind(
    addr: std::net::SocketAddr,
    tx: Tx,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the metrics listener on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(tx)).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok((bound, task))
}
