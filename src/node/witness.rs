//! The node's half of the witness protocol (DESIGN §7): serving witnesses (roots, evidence),
//! and carrying out what the witness core ([`crate::witness::core`]) decides. Every decision
//! (which root to check, when, what to ask, when to resend, what to report) is the core's;
//! this file turns network events into its inputs and its outputs into requests, gossip,
//! engine inputs and replies to the operator.

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use vm_receipts::documents::{AnchorNotification, from_value};
use vm_receipts::{MeshId, ScrollName};
use vm_storage::AnchoredRoot;

use super::control::ControlReply;
use super::wire::{FedRequest, FedResponse};
use super::{Completion, Node, err};
use crate::engine::policy::PeerRequest;
use crate::engine::{EngineError, Input};
use crate::witness::core::{self as witness_core, Answer, GossipCheck, Outcome, Output, Request};
use crate::witness::{self, EvidenceRequest, Verdict};

/// Most bytes of evidence served in one response (the transport allows 8 MiB).
const MAX_EVIDENCE_BYTES: usize = 7 * 1024 * 1024;

impl Node {
    /// Asks the policy whether `peer` may make `request`; a refusal is the response.
    pub(super) fn authorize_read(
        &self,
        peer: &MeshId,
        request: PeerRequest<'_>,
    ) -> Result<(), FedResponse> {
        match self.engine.authorize(peer, request, self.now()) {
            Ok(_) => Ok(()),
            Err(EngineError::Policy(refusal)) => {
                tracing::info!(%peer, %refusal, "request refused by policy");
                Err(FedResponse::error("forbidden", refusal.to_string(), false))
            }
            Err(e) => Err(FedResponse::error(e.code(), e.to_string(), false)),
        }
    }

    /// `notify`: a peer's anchor notification, for the witness core.
    pub(super) fn on_notify(&mut self, from: &MeshId, value: Value) -> FedResponse {
        let notification: AnchorNotification = match from_value(value) {
            Ok(n) => n,
            Err(e) => return FedResponse::error("bad_document", e.to_string(), true),
        };
        let now_ms = self.now_ms();
        match self
            .witness
            .on_notify(now_ms, &self.engine, from, notification)
        {
            Ok(outputs) => {
                self.carry_out_witness(outputs);
                FedResponse::Ack
            }
            Err(refusal) => {
                tracing::info!(%from, %refusal, "notification refused");
                FedResponse::error(refusal.code(), refusal.to_string(), refusal.permanent())
            }
        }
    }

    /// A gossiped root: the core's verdict for gossipsub, and the root to learn from.
    pub(super) fn check_gossip(
        &self,
        origin: Option<&str>,
        data: &[u8],
    ) -> witness_core::GossipCheck {
        let verdict = self.witness.check_gossip(&self.engine, data);
        self.metrics.gossip(match &verdict {
            GossipCheck::Accept(_) => "accept",
            GossipCheck::Ignore => "ignore",
            GossipCheck::Reject(_) => "reject",
        });
        if let GossipCheck::Reject(reason) = &verdict {
            tracing::warn!(?origin, %reason, "gossiped root refused");
        }
        verdict
    }

    /// A gossiped root that passed [`Self::check_gossip`].
    pub(super) fn on_gossip(&mut self, gossip: witness_core::VerifiedGossip) {
        let now_ms = self.now_ms();
        let outputs = self.witness.on_gossip(now_ms, &self.engine, gossip);
        self.carry_out_witness(outputs);
    }

    /// A check of `peer`'s `scroll` is due; `reply` waits for its outcome (`verify`).
    pub(super) fn witness_due(
        &mut self,
        peer: &MeshId,
        scroll: &ScrollName,
        reply: Option<oneshot::Sender<ControlReply>>,
    ) {
        let waiter = reply.map(|r| {
            self.next_waiter += 1;
            self.waiters.insert(self.next_waiter, r);
            self.next_waiter
        });
        let now_ms = self.now_ms();
        let outputs = self
            .witness
            .on_due(now_ms, &self.engine, peer, scroll, waiter);
        self.carry_out_witness(outputs);
    }

    /// An answer (or a transport failure) to one of the core's requests.
    pub(super) fn on_witness_answer(&mut self, id: witness_core::RequestId, answer: Answer) {
        let now_ms = self.now_ms();
        let outputs = self.witness.on_answer(now_ms, &self.engine, id, answer);
        self.carry_out_witness(outputs);
    }

    /// The core's timer.
    pub(super) fn on_witness_timeout(&mut self) {
        let now_ms = self.now_ms();
        let outputs = self.witness.handle_timeout(now_ms, &self.engine);
        self.carry_out_witness(outputs);
    }

    /// Carries out the core's outputs.
    pub(super) fn carry_out_witness(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Request { id, peer, request } => self.witness_request(id, &peer, request),
                Output::Gossip(n) => self.gossip_root(&n),
                Output::Finished {
                    peer,
                    scroll,
                    waiters,
                    outcome,
                    started_ms,
                } => {
                    let seconds =
                        started_ms.map(|at| self.now_ms().saturating_sub(at) as f64 / 1000.0);
                    self.metrics.witness_check(outcome_label(&outcome), seconds);
                    if matches!(outcome, Outcome::Report(_) | Outcome::Unchanged { .. }) {
                        let now = self.now();
                        self.last_checked
                            .insert((peer.clone(), scroll.clone()), now);
                    }
                    let answer = self.witness_finished(&peer, &scroll, outcome);
                    for w in waiters {
                        if let Some(reply) = self.waiters.remove(&w) {
                            let _ = reply.send(answer.clone());
                        }
                    }
                }
            }
        }
    }

    /// Sends one of the core's requests; its answer comes back as a completion.
    fn witness_request(&mut self, id: witness_core::RequestId, peer: &MeshId, request: Request) {
        let Some(target) = self.route(peer) else {
            let answer = Answer::Failed(format!("no key or address known for {peer}"));
            // Answered on the next turn of the loop, never from inside the core's output.
            let _ = self.completions.try_send(Completion::WitnessAnswer {
                id,
                answer: Box::new(answer),
                from: None,
            });
            return;
        };
        let body = FedRequest::from_witness(request);
        let from = Some((peer.clone(), self.outbound.transport(&target)));
        let outbound = self.outbound.clone();
        let completions = self.completions.clone();
        tokio::spawn(async move {
            let answer = match outbound.call(&target, &body).await {
                Ok(response) => response.into_witness_answer(),
                Err(e) => Answer::Failed(e),
            };
            let _ = completions
                .send(Completion::WitnessAnswer {
                    id,
                    answer: Box::new(answer),
                    from,
                })
                .await;
        });
    }

    /// A finished check: a verdict goes to the engine; the reply for whoever waits.
    fn witness_finished(
        &mut self,
        peer: &MeshId,
        scroll: &ScrollName,
        outcome: Outcome,
    ) -> ControlReply {
        match outcome {
            Outcome::Report(report) => {
                let summary = json!({
                    "peer": report.peer,
                    "scroll": report.notification.scroll,
                    "size": report.notification.size,
                    "root": report.notification.root,
                    "resynced": report.resynced,
                });
                let verdict = verdict_json(&report.verdict);
                let now = self.now();
                match self.engine.handle(now, Input::Witnessed(report)) {
                    Ok(outputs) => {
                        let events = self.apply(outputs);
                        let mut value = summary;
                        value["verdict"] = verdict;
                        value["events"] = Value::Array(events);
                        Ok(value)
                    }
                    Err(e) if e.code() == "stale" => {
                        tracing::debug!(error = %e, "witness verdict superseded");
                        let mut value = summary;
                        value["verdict"] = json!({"result": "stale", "message": e.to_string()});
                        Ok(value)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "witness verdict refused");
                        Err(super::engine_error(&e))
                    }
                }
            }
            Outcome::Unchanged { size } => Ok(json!({
                "peer": peer, "scroll": scroll, "size": size,
                "verdict": {"result": "unchanged", "message": "the root is the one already attested"},
            })),
            Outcome::Stale => Ok(json!({
                "peer": peer, "scroll": scroll,
                "verdict": {"result": "stale"},
            })),
            Outcome::NoVerdict(message) => {
                Err(err(StatusCode::BAD_GATEWAY, "unreachable", message))
            }
        }
    }

    /// Gossips an anchor notification (ours, or a peer's we verified).
    pub(super) fn gossip_root(&self, n: &AnchorNotification) {
        if let Ok(bytes) = serde_json::to_vec(n) {
            let net = self.net.clone();
            tokio::spawn(async move {
                if let Err(e) = net.gossip(bytes).await {
                    tracing::debug!(error = %e, "root not gossiped (no subscribers, or a duplicate)");
                }
            });
        }
    }

    /// `roots`: our latest anchored roots of the scrolls shared with `from`.
    pub(super) fn serve_roots(&self, from: &MeshId, scrolls: &[ScrollName]) -> FedResponse {
        let wanted: Vec<ScrollName> = if scrolls.is_empty() {
            match self.engine.agreement_with(from, self.now()) {
                Ok(a) => a
                    .map(|a| a.agreement.terms.scrolls_shared)
                    .unwrap_or_default(),
                Err(e) => return FedResponse::error(e.code(), e.to_string(), false),
            }
        } else {
            scrolls.to_vec()
        };
        if let Err(refusal) = self.authorize_read(from, PeerRequest::Roots(&wanted)) {
            return refusal;
        }
        let mut roots = Vec::new();
        for scroll in &wanted {
            match self.engine.store().get::<AnchoredRoot>(&scroll.file_stem()) {
                Ok(Some(a)) => match serde_json::to_value(&a.notification) {
                    Ok(v) => roots.push(v),
                    Err(e) => return FedResponse::error("internal", e.to_string(), false),
                },
                Ok(None) => {}
                Err(e) => return FedResponse::error("internal", e.to_string(), false),
            }
        }
        FedResponse::Roots { roots }
    }

    /// `evidence`: a consistency proof and sampled receipts of one of our scrolls.
    pub(super) fn serve_evidence(&self, from: &MeshId, ask: &EvidenceRequest) -> FedResponse {
        if let Err(refusal) = self.authorize_read(from, PeerRequest::ConsistencyProof(&ask.scroll))
        {
            return refusal;
        }
        if let Err(reason) = ask.check() {
            return FedResponse::error("bad_request", reason, true);
        }
        let Some(scroll) = self.scroll_named(&ask.scroll) else {
            return FedResponse::error(
                "unknown_scroll",
                format!("no scroll {} here", ask.scroll),
                true,
            );
        };
        match witness::serve_evidence(scroll, ask, MAX_EVIDENCE_BYTES) {
            Ok(evidence) => FedResponse::Evidence {
                evidence: Box::new(evidence),
            },
            Err(refusal) => FedResponse::error(
                refusal.code(),
                format!("scroll {}: {refusal}", ask.scroll),
                refusal.permanent(),
            ),
        }
    }

    /// An attestation of one of our roots must name a root we have at that size.
    pub(super) fn check_attested_root(
        &self,
        attestation: &vm_receipts::documents::WitnessAttestation,
    ) -> Result<(), FedResponse> {
        let ours = self
            .scroll_named(&attestation.scroll)
            .and_then(|s| s.root_at(attestation.witnessed_size).ok());
        if ours == Some(attestation.witnessed_root) {
            return Ok(());
        }
        Err(FedResponse::error(
            "not_our_root",
            format!(
                "our scroll {} has no root {} at size {}",
                attestation.scroll, attestation.witnessed_root, attestation.witnessed_size
            ),
            true,
        ))
    }
}

/// A finished check's verdict, as metrics label it.
fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Report(report) => match &report.verdict {
            Verdict::Verified { .. } => "verified",
            Verdict::Discrepancy { .. } => "discrepancy",
            Verdict::Stale => "stale",
        },
        Outcome::Unchanged { .. } => "unchanged",
        Outcome::Stale => "stale",
        Outcome::NoVerdict(_) => "no_verdict",
    }
}

fn verdict_json(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Verified {
            anchor,
            samples_checked,
        } => json!({
            "result": "verified",
            "anchor": anchor.backend,
            "anchored_at": anchor.anchored_at,
            "samples_checked": samples_checked,
        }),
        Verdict::Discrepancy {
            samples_checked,
            finding,
            ..
        } => json!({
            "result": "discrepancy",
            "discrepancy_type": finding.kind,
            "details": finding.details,
            "evidence_kind": finding.evidence.kind(),
            "samples_checked": samples_checked,
        }),
        Verdict::Stale => json!({"result": "stale"}),
    }
}
