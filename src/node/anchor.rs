//! The anchor cycle (DESIGN §7, seed §4.1 steps 1–2), carried out: sign the root of every
//! scroll and write `ROOT.<name>.txt`, anchor the batch root through the configured backend,
//! keep each scroll's notification (what `roots` serves), gossip it and notify its
//! witnesses. What goes into the batch and whom to notify are [`crate::witness::cycle`]'s
//! decisions; cross-anchored peer roots become `fed_cross_anchor` receipts through the
//! engine.
//!
//! The `local` backend finishes in the loop; an `rfc3161` stamp is a network round trip, so
//! it runs as a task and the cycle finishes when it comes back. One cycle runs at a time.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use vm_receipts::Timestamp;
use vm_receipts::scroll::write_root_file;
use vm_storage::AnchoredRoot;

use super::control::ControlReply;
use super::wire::{FedRequest, FedResponse};
use super::{Completion, Node, err};
use crate::anchor::{AnchorError, BackendAnchor, Rfc3161Backend, anchor_local};
use crate::engine::Input;
use crate::witness::cycle::{self, AnchorPlan};

/// The configured backend.
pub(super) enum Backend {
    /// The batch root signed by the mesh key.
    Local,
    /// A TSA's time stamp.
    Rfc3161(Arc<Rfc3161Backend>),
}

/// A cycle between its batch and its backend's answer.
pub(super) type PendingCycle = AnchorPlan;

impl Node {
    /// Starts an anchor cycle; `reply` gets its summary (`anchor now`).
    pub(super) fn anchor_cycle(&mut self, reply: Option<oneshot::Sender<ControlReply>>) {
        if self.anchoring {
            if let Some(r) = reply {
                let _ = r.send(Err(err(
                    StatusCode::CONFLICT,
                    "anchor_busy",
                    "an anchor cycle is already running",
                )));
            }
            return;
        }
        let now = self.now();
        let started_ms = self.now_ms();
        let cycle = match self.build_batch(now) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "anchor cycle failed");
                self.metrics.anchor_cycle("failed", 0.0);
                if let Some(r) = reply {
                    let _ = r.send(Err(err(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "anchor_failed",
                        e.to_string(),
                    )));
                }
                return;
            }
        };
        match &self.backend {
            Backend::Local => {
                let anchor =
                    anchor_local(self.dir.key(), self.dir.mesh_id(), &cycle.batch.root(), now);
                self.finish_cycle(cycle, Ok(anchor), started_ms, reply);
            }
            Backend::Rfc3161(tsa) => {
                self.anchoring = true;
                let tsa = tsa.clone();
                let trust = self.witness.config().tsa.clone();
                let nonce = rand::Rng::next_u64(&mut self.rng);
                let completions = self.completions.clone();
                let root = cycle.batch.root();
                tokio::spawn(async move {
                    let result = tsa.anchor(&root, nonce, trust.as_deref(), now).await;
                    let _ = completions
                        .send(Completion::Anchored {
                            cycle: Box::new(cycle),
                            result,
                            started_ms,
                            reply,
                        })
                        .await;
                });
            }
        }
    }

    /// Signs every scroll's root (writing the ROOT files); the batch is the cycle's.
    fn build_batch(&mut self, now: Timestamp) -> anyhow::Result<PendingCycle> {
        let mut roots = Vec::new();
        let key = self.dir.key().clone();
        let me = self.dir.mesh_id().clone();
        for scroll in std::iter::once(&self.scroll).chain(self.scrolls.values()) {
            let signed = scroll.sign_root(&key, &me, now)?;
            write_root_file(self.dir.root(), &signed)?;
            roots.push(signed);
        }
        Ok(cycle::plan(&self.engine, roots, now)?)
    }

    /// The backend answered: keep, announce and notify; cross-anchor receipts.
    pub(super) fn finish_cycle(
        &mut self,
        cycle: PendingCycle,
        result: Result<BackendAnchor, AnchorError>,
        started_ms: u64,
        reply: Option<oneshot::Sender<ControlReply>>,
    ) {
        self.anchoring = false;
        let answer = self.complete(cycle, result);
        let seconds = self.now_ms().saturating_sub(started_ms) as f64 / 1000.0;
        match &answer {
            Ok(summary) => {
                self.metrics.anchor_cycle("ok", seconds);
                tracing::info!(%summary, "anchor cycle done");
            }
            Err(e) => {
                self.metrics.anchor_cycle("failed", seconds);
                tracing::error!(error = %e.message, "anchor cycle failed");
            }
        }
        if let Some(r) = reply {
            let _ = r.send(answer);
        }
    }

    fn complete(
        &mut self,
        cycle: PendingCycle,
        result: Result<BackendAnchor, AnchorError>,
    ) -> ControlReply {
        let anchor =
            result.map_err(|e| err(StatusCode::BAD_GATEWAY, "anchor_failed", e.to_string()))?;
        let now = self.now();
        let internal = |e: &dyn std::fmt::Display| {
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "anchor_failed",
                e.to_string(),
            )
        };
        let done = cycle::complete(&self.engine, &cycle, &anchor, now).map_err(|e| internal(&e))?;
        self.engine
            .store()
            .write(|tx| {
                for n in &done.notifications {
                    tx.put(&AnchoredRoot {
                        notification: n.clone(),
                        anchored_at: now,
                    })?;
                }
                Ok(())
            })
            .map_err(|e| internal(&e))?;
        for n in &done.notifications {
            self.gossip_root(n);
        }
        for (peer, i) in &done.notify {
            self.notify(peer, &done.notifications[*i]);
        }
        let notifications = done.notifications;
        let cross_count = done.cross.len();
        if !done.cross.is_empty() {
            let now = self.now();
            match self.engine.handle(now, Input::Anchored(done.cross)) {
                Ok(outputs) => {
                    self.apply(outputs);
                }
                Err(e) => tracing::warn!(error = %e, "cross-anchor receipts refused"),
            }
        }
        let summary = json!({
            "started": cycle.started,
            "backend": anchor.backend,
            "batch_root": cycle.batch.root(),
            "batch_size": cycle.batch.roots().len(),
            "cross_anchored": cross_count,
            "scrolls": notifications.iter().map(|n| json!({
                "scroll": n.scroll, "size": n.size, "root": n.root,
            })).collect::<Vec<_>>(),
        });
        self.last_anchor = Some(summary.clone());
        Ok(summary)
    }

    /// Sends one notification; no retry: the next cycle supersedes it, and the peer's
    /// scheduled verification pulls the root if notifications are lost.
    pub(super) fn notify(
        &self,
        peer: &vm_receipts::MeshId,
        n: &vm_receipts::documents::AnchorNotification,
    ) {
        let Some(target) = self.route(peer) else {
            return;
        };
        let Ok(notification) = serde_json::to_value(n) else {
            return;
        };
        let request = FedRequest::Notify { notification };
        let outbound = self.outbound.clone();
        let completions = self.completions.clone();
        let peer = peer.clone();
        let scroll = n.scroll.clone();
        tokio::spawn(async move {
            match outbound.call(&target, &request).await {
                Ok(FedResponse::Ack) => tracing::debug!(%peer, %scroll, "notified"),
                Ok(other) => {
                    tracing::info!(%peer, %scroll, response = ?other, "notification refused")
                }
                Err(error) => {
                    tracing::info!(%peer, %scroll, %error, "notification not delivered");
                    let _ = completions
                        .send(Completion::Unreachable { peer, error })
                        .await;
                }
            }
        });
    }

    /// An agreement came into force: the witness core fetches the peer's latest anchored
    /// roots of the shared scrolls and witnesses them at once, rather than waiting for its
    /// next cycle. The peer does the same with ours, so nothing is pushed here.
    pub(super) fn exchange_roots(
        &mut self,
        peer: &vm_receipts::MeshId,
        scrolls: &[vm_receipts::ScrollName],
    ) {
        for scroll in scrolls {
            self.witness_due(peer, scroll, None);
        }
    }

    /// What `status` shows of anchoring.
    pub(super) fn anchor_status(&self) -> Value {
        json!({
            "backend": match &self.backend { Backend::Local => "local", Backend::Rfc3161(_) => "rfc3161" },
            "interval_secs": self.anchor_interval.as_secs(),
            "last_cycle": self.last_anchor,
        })
    }
}
