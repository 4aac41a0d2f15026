//! The anchor cycle (DESIGN §7, seed §4.1 steps 1–2): sign the root of every scroll, build
//! the anchor batch (our roots, then the witnessed roots of level-3+ peers not anchored yet),
//! anchor the batch root through the configured backend, write `ROOT.<name>.txt`, keep each
//! scroll's notification (what `roots` serves), announce the signed roots on gossipsub and
//! notify every federated peer that witnesses us (level 2+, scroll shared). Cross-anchored
//! peer roots become `fed_cross_anchor` receipts through the engine.
//!
//! The `local` backend finishes in the loop; an `rfc3161` stamp is a network round trip, so
//! it runs as a task and the cycle finishes when it comes back. One cycle runs at a time.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use vm_receipts::documents::{AnchorNotification, SignedRoot, TrustLevel, WitnessResult};
use vm_receipts::scroll::write_root_file;
use vm_receipts::{MeshId, Timestamp};
use vm_storage::{AgreementRecord, AnchoredRoot, WitnessState};

use super::control::ControlReply;
use super::wire::{FedRequest, FedResponse};
use super::{Completion, Node, err};
use crate::anchor::{AnchorError, BackendAnchor, Batch, Rfc3161Backend, anchor_local};
use crate::engine::{CrossAnchored, Input};

/// The configured backend.
pub(super) enum Backend {
    /// The batch root signed by the mesh key.
    Local,
    /// A TSA's time stamp.
    Rfc3161(Arc<Rfc3161Backend>),
}

/// A cycle between its batch and its backend's answer.
pub(super) struct PendingCycle {
    pub batch: Batch,
    /// How many leaves are our own roots (the rest are cross-anchored peers').
    pub own: usize,
    /// The peer of each cross-anchored leaf.
    pub cross: Vec<MeshId>,
    pub started: Timestamp,
}

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
        let cycle = match self.build_batch(now) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "anchor cycle failed");
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
                self.finish_cycle(cycle, Ok(anchor), reply);
            }
            Backend::Rfc3161(tsa) => {
                self.anchoring = true;
                let tsa = tsa.clone();
                let trust = self.witness_settings.tsa.clone();
                let nonce = rand::Rng::next_u64(&mut self.rng);
                let completions = self.completions.clone();
                let root = cycle.batch.root();
                tokio::spawn(async move {
                    let result = tsa.anchor(&root, nonce, trust.as_deref(), now).await;
                    let _ = completions
                        .send(Completion::Anchored {
                            cycle: Box::new(cycle),
                            result,
                            reply,
                        })
                        .await;
                });
            }
        }
    }

    /// Signs every scroll's root (writing the ROOT files) and adds the peer roots to
    /// cross-anchor.
    fn build_batch(&mut self, now: Timestamp) -> anyhow::Result<PendingCycle> {
        let mut roots = Vec::new();
        let key = self.dir.key().clone();
        let me = self.dir.mesh_id().clone();
        for scroll in std::iter::once(&self.scroll).chain(self.scrolls.values()) {
            let signed = scroll.sign_root(&key, &me, now)?;
            write_root_file(self.dir.root(), &signed)?;
            roots.push(signed);
        }
        let own = roots.len();
        let mut cross = Vec::new();
        for (peer, root) in self.cross_anchor_candidates(now) {
            cross.push(peer);
            roots.push(root);
        }
        Ok(PendingCycle {
            batch: Batch::new(roots)?,
            own,
            cross,
            started: now,
        })
    }

    /// Witnessed, verified peer roots of level-3+ agreements in force that have grown since
    /// we last anchored them.
    fn cross_anchor_candidates(&self, now: Timestamp) -> Vec<(MeshId, SignedRoot)> {
        let me = self.dir.mesh_id();
        let agreements = self
            .engine
            .store()
            .all::<AgreementRecord>()
            .unwrap_or_default();
        let mut out = Vec::new();
        for a in agreements {
            if !a.status.working(now) || a.agreement.trust_level < TrustLevel::ATTEST {
                continue;
            }
            let Some(peer) = a.agreement.counterparty(me).cloned() else {
                continue;
            };
            for scroll in &a.agreement.terms.scrolls_shared {
                let key = vm_storage::records::witness_key(&peer, scroll);
                if let Ok(Some(state)) = self.engine.store().get::<WitnessState>(&key)
                    && state.result == WitnessResult::Verified
                    && state.cross_anchored_size != Some(state.latest.size)
                {
                    out.push((peer.clone(), state.latest));
                }
            }
        }
        out
    }

    /// The backend answered: keep, announce and notify; cross-anchor receipts.
    pub(super) fn finish_cycle(
        &mut self,
        cycle: PendingCycle,
        result: Result<BackendAnchor, AnchorError>,
        reply: Option<oneshot::Sender<ControlReply>>,
    ) {
        self.anchoring = false;
        let answer = self.complete(cycle, result);
        match &answer {
            Ok(summary) => tracing::info!(%summary, "anchor cycle done"),
            Err(e) => tracing::error!(error = %e.message, "anchor cycle failed"),
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
        let mut notifications = Vec::with_capacity(cycle.own);
        for (i, root) in cycle.batch.roots().iter().take(cycle.own).enumerate() {
            let proof = cycle.batch.proof(i, &anchor).map_err(|e| internal(&e))?;
            notifications.push(AnchorNotification::new(root.clone(), proof));
        }
        self.engine
            .store()
            .write(|tx| {
                for n in &notifications {
                    tx.put(&AnchoredRoot {
                        notification: n.clone(),
                        anchored_at: now,
                    })?;
                }
                Ok(())
            })
            .map_err(|e| internal(&e))?;
        for n in &notifications {
            self.announce(n);
        }
        let mut cross = Vec::new();
        for (j, peer) in cycle.cross.iter().enumerate() {
            let index = cycle.own + j;
            let proof = cycle
                .batch
                .proof(index, &anchor)
                .map_err(|e| internal(&e))?;
            cross.push(CrossAnchored {
                peer: peer.clone(),
                root: cycle.batch.roots()[index].clone(),
                proof,
            });
        }
        let cross_count = cross.len();
        if !cross.is_empty() {
            let now = self.now();
            match self.engine.handle(now, Input::Anchored(cross)) {
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

    /// Gossips the notification and notifies the peers that witness this scroll.
    fn announce(&self, n: &AnchorNotification) {
        self.gossip_root(n);
        for peer in self.witnesses_of(&n.scroll) {
            self.notify(&peer, n);
        }
    }

    /// Peers that witness our `scroll`: agreement in force at level 2+, scroll shared.
    fn witnesses_of(&self, scroll: &vm_receipts::ScrollName) -> Vec<MeshId> {
        let me = self.dir.mesh_id();
        let now = self.now();
        self.engine
            .store()
            .all::<AgreementRecord>()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a.status.working(now)
                    && a.agreement.trust_level >= TrustLevel::VERIFY
                    && a.agreement.terms.scrolls_shared.contains(scroll)
            })
            .filter_map(|a| a.agreement.counterparty(me).cloned())
            .collect()
    }

    /// Sends one notification; no retry: the next cycle supersedes it, and the peer's
    /// scheduled verification pulls the root if notifications are lost.
    pub(super) fn notify(&self, peer: &MeshId, n: &AnchorNotification) {
        let Some(target) = self.route(peer) else {
            return;
        };
        let Ok(notification) = serde_json::to_value(n) else {
            return;
        };
        let request = FedRequest::Notify { notification };
        let outbound = self.outbound.clone();
        let peer = peer.clone();
        let scroll = n.scroll.clone();
        tokio::spawn(async move {
            match outbound.call(&target, &request).await {
                Ok(FedResponse::Ack) => tracing::debug!(%peer, %scroll, "notified"),
                Ok(other) => {
                    tracing::info!(%peer, %scroll, response = ?other, "notification refused")
                }
                Err(e) => tracing::info!(%peer, %scroll, error = %e, "notification not delivered"),
            }
        });
    }

    /// An agreement came into force: fetch the peer's latest anchored roots of the shared
    /// scrolls and witness them at once (level 2+), rather than waiting for its next cycle.
    /// The peer does the same with ours, so nothing is pushed here: a push and a pull of one
    /// root would witness it twice.
    pub(super) fn exchange_roots(&mut self, peer: &MeshId, scrolls: &[vm_receipts::ScrollName]) {
        if !self.we_witness(peer) {
            return;
        }
        for scroll in scrolls {
            self.witness(peer.clone(), scroll.clone(), None, false, None);
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
