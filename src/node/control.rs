//! The control socket: `control.sock` in the data directory, HTTP+JSON over a Unix socket,
//! owner-only. Every operator command of the CLI goes through it to the running node.
//!
//! The socket is bound inside a fresh 0700 directory, set to 0600, and only then renamed into
//! place, so no other user can connect even in the moment between bind and chmod.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "control.sock";

/// An operator request, as the node's main loop receives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlOp {
    /// Node, network and federation state (`all`: ended agreements too).
    Status {
        /// Ended agreements and their peers too.
        #[serde(default)]
        all: bool,
    },
    /// Prometheus text exposition (the `[metrics]` listener's `/metrics`).
    Metrics,
    /// Whether the node is ready: store, scrolls and network open, no fault of our own
    /// files (`/readyz`; any answer at all is `/healthz`).
    Ready,
    /// Known meshes.
    ListPeers,
    /// Add a mesh by hand.
    AddPeer {
        /// `did:vm:mesh:…` or a bare name.
        mesh_id: String,
        /// `ed25519:z6Mk…`.
        public_key: String,
        /// Multiaddrs.
        #[serde(default)]
        addresses: Vec<String>,
    },
    /// Find a mesh by id (DHT) or domain (DNS).
    Discover {
        /// A mesh id or a domain.
        target: String,
    },
    /// Find the meshes that announce themselves as public in the DHT.
    DiscoverPublic,
    /// Propose federation.
    Propose {
        /// The mesh.
        target: String,
        /// 1–4.
        trust_level: u8,
        /// The proposed terms.
        terms: Value,
    },
    /// Proposals.
    ListProposals,
    /// One proposal.
    ShowProposal {
        /// Its id.
        id: String,
    },
    /// Accept a proposal or counter.
    Accept {
        /// Proposal id.
        id: String,
    },
    /// Reject.
    Reject {
        /// Proposal id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Propose new terms replacing an agreement in force (only what is given changes).
    Amend {
        /// Agreement id.
        id: String,
        /// The new level (default: the agreement's).
        #[serde(default)]
        trust_level: Option<u8>,
        /// Scrolls to share (default: the agreement's).
        #[serde(default)]
        scrolls: Option<Vec<String>>,
        /// `hourly`, `daily`, `<n>s|m|h|d` (default: the agreement's).
        #[serde(default)]
        frequency: Option<String>,
        /// Days witnessed material is kept (default: the agreement's).
        #[serde(default)]
        retention_days: Option<u32>,
    },
    /// Counter.
    Counter {
        /// Proposal id.
        id: String,
        /// Counter terms.
        terms: Value,
    },
    /// Withdraw our proposal.
    Withdraw {
        /// Proposal id.
        id: String,
        /// Why.
        reason: Option<String>,
    },
    /// Agreements.
    ListAgreements,
    /// One agreement.
    ShowAgreement {
        /// Its id.
        id: String,
    },
    /// Revoke with notice.
    Revoke {
        /// Agreement id.
        id: String,
        /// Days of notice.
        notice_days: u32,
        /// Why.
        reason: String,
    },
    /// Stop witnessing under an agreement pending a discrepancy (seed §6.3 step 4).
    Suspend {
        /// Agreement id.
        id: String,
        /// Why.
        reason: String,
        /// The discrepancy behind it.
        #[serde(default)]
        discrepancy_id: Option<String>,
    },
    /// End a suspension.
    Resume {
        /// Agreement id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Messages waiting for delivery.
    Outbox,
    /// Send waiting messages now: `id` is one message (`<mesh>/<topic>`, as `outbox list`
    /// shows it) or a mesh (every message to it); none: every waiting message.
    RetryOutbox {
        /// Which.
        #[serde(default)]
        id: Option<String>,
    },
    /// Forget a known mesh.
    RemovePeer {
        /// Its mesh id or name.
        mesh: String,
    },
    /// Reachability of federated peers (`all`: of every known mesh).
    Health {
        /// Every known mesh, not only federated ones.
        all: bool,
    },
    /// Run an anchor cycle now.
    AnchorNow,
    /// Witness a peer's scroll now (pull its latest root, check it, attest).
    Verify {
        /// The mesh.
        mesh: String,
        /// Its scroll.
        scroll: String,
    },
    /// Witness events with a mesh (either direction) in the last `since_secs` seconds.
    WitnessHistory {
        /// The mesh.
        mesh: String,
        /// How far back.
        since_secs: u64,
    },
    /// Discrepancies found by us or reported to us, with their evidence.
    ListDiscrepancies,
    /// One discrepancy: its evidence, what it amounts to, its resolutions.
    ShowDiscrepancy {
        /// Its id (or `<reporting mesh>/<id>`).
        id: String,
    },
    /// Ask a third mesh to arbitrate a discrepancy (seed §6.3 step 3).
    ArbitrateDiscrepancy {
        /// Its id (or `<reporting mesh>/<id>`).
        id: String,
        /// The arbiter (mesh id or name).
        arbiter: String,
    },
    /// Resolve a discrepancy (seed §6.3): signed, recorded on both sides.
    ResolveDiscrepancy {
        /// Its id (or `<reporting mesh>/<id>`).
        id: String,
        /// `resynced`, `false_alarm` (or `false-alarm`), `confirmed`.
        outcome: String,
        /// What was done or found.
        note: String,
    },
    /// Append receipts to one of our scrolls (not the Federation scroll).
    Append {
        /// The scroll.
        scroll: String,
        /// The receipts (JSON objects with a string `type`, no `root_hash`).
        receipts: Vec<Value>,
    },
    /// An inclusion proof of a receipt against our latest anchored root, with its anchor.
    ScrollProof {
        /// The scroll.
        scroll: String,
        /// The receipt's sequence.
        sequence: u64,
    },
}

/// A refusal, with the HTTP status it is served with.
#[derive(Debug, Clone)]
pub struct ControlError {
    /// 400, 404, 409, 422, 500, 502, 503.
    pub status: StatusCode,
    /// A stable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl ControlError {
    /// A refusal.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// What the main loop answers.
pub type ControlReply = Result<Value, ControlError>;

/// A request with its reply channel.
#[derive(Debug)]
pub struct ControlRequest {
    /// The operation.
    pub op: ControlOp,
    /// Where the answer goes.
    pub reply: oneshot::Sender<ControlReply>,
}

/// Binds `control.sock` in `dir` with mode 0600, replacing a stale socket from a crashed run
/// (the data-dir lock, already held, proves no live node owns it).
pub fn bind(dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    let path = dir.join(SOCKET_NAME);
    let staging = dir.join(".control-staging");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging)?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))?;
    let staged = staging.join(SOCKET_NAME);
    let listener = UnixListener::bind(&staged)?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o600))?;
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::rename(&staged, &path)?;
    fs::remove_dir(&staging)?;
    Ok((listener, path))
}

type Tx = mpsc::Sender<ControlRequest>;

/// Most bytes of a control request body (an append batch included): the CLI splits larger
/// inputs into several requests.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

async fn ask(tx: &Tx, op: ControlOp) -> Response {
    let (reply, answer) = oneshot::channel();
    if tx.send(ControlRequest { op, reply }).await.is_err() {
        return ControlError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is shutting down",
        )
        .into_response();
    }
    match answer.await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => ControlError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is shutting down",
        )
        .into_response(),
    }
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    body.map(|Json(v)| v).map_err(|e| {
        Box::new(
            ControlError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
                .into_response(),
        )
    })
}

/// A route whose body is an operation: only the kinds `allowed` accepts are passed on.
async fn op_body(
    tx: &Tx,
    b: Result<Json<ControlOp>, JsonRejection>,
    expected: &str,
    allowed: fn(&ControlOp) -> bool,
) -> Response {
    match body(b) {
        Ok(op) if allowed(&op) => ask(tx, op).await,
        Ok(_) => ControlError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("expected an {expected} operation"),
        )
        .into_response(),
        Err(r) => *r,
    }
}

/// Request bodies of the routes that take one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsBody {
    terms: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    reason: String,
    #[serde(default)]
    discrepancy_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    notice_days: u32,
    reason: String,
}

/// The routes.
pub fn router(tx: Tx) -> Router {
    Router::new()
        .route(
            "/v1/status",
            get(|State(tx): State<Tx>| async move {
                ask(&tx, ControlOp::Status { all: false }).await
            }),
        )
        .route(
            "/v1/status/all",
            get(|State(tx): State<Tx>| async move {
                ask(&tx, ControlOp::Status { all: true }).await
            }),
        )
        .route(
            "/v1/health",
            get(|State(tx): State<Tx>| async move {
                ask(&tx, ControlOp::Health { all: false }).await
            }),
        )
        .route(
            "/v1/health/all",
            get(|State(tx): State<Tx>| async move {
                ask(&tx, ControlOp::Health { all: true }).await
            }),
        )
        .route(
            "/v1/peers",
            get(|State(tx): State<Tx>| async move { ask(&tx, ControlOp::ListPeers).await }).post(
                |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                    op_body(&tx, b, "add_peer", |op| {
                        matches!(op, ControlOp::AddPeer { .. })
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/outbox",
            get(|State(tx): State<Tx>| async move { ask(&tx, ControlOp::Outbox).await }),
        )
        .route(
            "/v1/outbox/retry",
            post(
                |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                    op_body(&tx, b, "retry_outbox", |op| {
                        matches!(op, ControlOp::RetryOutbox { .. })
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/peers/{mesh}",
            axum::routing::delete(
                |State(tx): State<Tx>, UrlPath(mesh): UrlPath<String>| async move {
                    ask(&tx, ControlOp::RemovePeer { mesh }).await
                },
            ),
        )
        .route(
            "/v1/discover",
            post(
                |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                    op_body(&tx, b, "discover or discover_public", |op| {
                        matches!(op, ControlOp::Discover { .. } | ControlOp::DiscoverPublic)
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/proposals",
            get(|State(tx): State<Tx>| async move { ask(&tx, ControlOp::ListProposals).await })
                .post(
                    |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                        op_body(&tx, b, "propose", |op| {
                            matches!(op, ControlOp::Propose { .. })
                        })
                        .await
                    },
                ),
        )
        .route(
            "/v1/proposals/{id}",
            get(
                |State(tx): State<Tx>, UrlPath(id): UrlPath<String>| async move {
                    ask(&tx, ControlOp::ShowProposal { id }).await
                },
            ),
        )
        .route(
            "/v1/proposals/{id}/accept",
            post(
                |State(tx): State<Tx>, UrlPath(id): UrlPath<String>| async move {
                    ask(&tx, ControlOp::Accept { id }).await
                },
            ),
        )
        .route(
            "/v1/proposals/{id}/reject",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<ReasonBody>, JsonRejection>| async move {
                    match body(b) {
                        Ok(ReasonBody {
                            reason: Some(reason),
                        }) => ask(&tx, ControlOp::Reject { id, reason }).await,
                        Ok(_) => ControlError::new(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            "a rejection needs a reason",
                        )
                        .into_response(),
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/proposals/{id}/withdraw",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<ReasonBody>, JsonRejection>| async move {
                    match body(b) {
                        Ok(ReasonBody { reason }) => {
                            ask(&tx, ControlOp::Withdraw { id, reason }).await
                        }
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/proposals/{id}/counter",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<TermsBody>, JsonRejection>| async move {
                    match body(b) {
                        Ok(TermsBody { terms }) => ask(&tx, ControlOp::Counter { id, terms }).await,
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/agreements",
            get(|State(tx): State<Tx>| async move { ask(&tx, ControlOp::ListAgreements).await }),
        )
        .route(
            "/v1/agreements/{id}",
            get(
                |State(tx): State<Tx>, UrlPath(id): UrlPath<String>| async move {
                    ask(&tx, ControlOp::ShowAgreement { id }).await
                },
            ),
        )
        .route(
            "/v1/agreements/{id}/amend",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<ControlOp>, JsonRejection>| async move {
                    match body(b) {
                        Ok(ControlOp::Amend {
                            trust_level,
                            scrolls,
                            frequency,
                            retention_days,
                            ..
                        }) => {
                            ask(
                                &tx,
                                ControlOp::Amend {
                                    id,
                                    trust_level,
                                    scrolls,
                                    frequency,
                                    retention_days,
                                },
                            )
                            .await
                        }
                        Ok(_) => ControlError::new(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            "expected an amend operation",
                        )
                        .into_response(),
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/agreements/{id}/revoke",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<RevokeBody>, JsonRejection>| async move {
                    match body(b) {
                        Ok(RevokeBody {
                            notice_days,
                            reason,
                        }) => {
                            ask(
                                &tx,
                                ControlOp::Revoke {
                                    id,
                                    notice_days,
                                    reason,
                                },
                            )
                            .await
                        }
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/agreements/{id}/suspend",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<SuspendBody>, JsonRejection>| async move {
                    match body(b) {
                        Ok(SuspendBody {
                            reason,
                            discrepancy_id,
                        }) => {
                            ask(
                                &tx,
                                ControlOp::Suspend {
                                    id,
                                    reason,
                                    discrepancy_id,
                                },
                            )
                            .await
                        }
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/agreements/{id}/resume",
            post(
                |State(tx): State<Tx>,
                 UrlPath(id): UrlPath<String>,
                 b: Result<Json<ReasonBody>, JsonRejection>| async move {
                    match body(b) {
                        Ok(ReasonBody { reason }) => {
                            let reason = reason.unwrap_or_else(|| "resumed by the operator".into());
                            ask(&tx, ControlOp::Resume { id, reason }).await
                        }
                        Err(r) => *r,
                    }
                },
            ),
        )
        .route(
            "/v1/anchor",
            post(|State(tx): State<Tx>| async move { ask(&tx, ControlOp::AnchorNow).await }),
        )
        .route(
            "/v1/discrepancies",
            get(|State(tx): State<Tx>| async move { ask(&tx, ControlOp::ListDiscrepancies).await })
                .post(
                    |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                        op_body(
                            &tx,
                            b,
                            "show_discrepancy, resolve_discrepancy or arbitrate_discrepancy",
                            |op| {
                                matches!(
                                    op,
                                    ControlOp::ShowDiscrepancy { .. }
                                        | ControlOp::ResolveDiscrepancy { .. }
                                        | ControlOp::ArbitrateDiscrepancy { .. }
                                )
                            },
                        )
                        .await
                    },
                ),
        )
        .route(
            "/v1/witness",
            post(
                |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                    op_body(&tx, b, "verify or witness_history", |op| {
                        matches!(
                            op,
                            ControlOp::Verify { .. } | ControlOp::WitnessHistory { .. }
                        )
                    })
                    .await
                },
            ),
        )
        .route(
            "/v1/scrolls",
            post(
                |State(tx): State<Tx>, b: Result<Json<ControlOp>, JsonRejection>| async move {
                    op_body(&tx, b, "append or scroll_proof", |op| {
                        matches!(op, ControlOp::Append { .. } | ControlOp::ScrollProof { .. })
                    })
                    .await
                },
            ),
        )
        .fallback(|| async {
            ControlError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such control endpoint",
            )
            .into_response()
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(tx)
}
