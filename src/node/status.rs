//! `status` as an operator reads it at a glance (issue 17, item 3): a verdict (`ok`,
//! `degraded`, `alarm`) with its reasons, and one row per federated peer: level, the
//! transport it was last heard on, what we last witnessed of each shared scroll and how old
//! that is against the agreement's verification frequency, what it last attested of us, and
//! the messages still waiting for it with the last delivery error. Ended agreements are
//! left out unless asked for.
//!
//! A peer's scroll is *overdue* when our last verdict on it (an attestation, or a check that
//! found the root already attested) is older than two verification periods (one missed
//! cycle plus slack for a slow peer), counting from the agreement's start or this node's
//! start if later. Overdue peers are logged at WARN once when they
//! become overdue and at INFO when they recover, never per check.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vm_receipts::{MeshId, ScrollName, Timestamp};
use vm_storage::{
    AgreementRecord, AgreementStatus, DiscrepancyRecord, OutgoingMessage, PeerEntry,
    ProposalRecord, ReceivedAttestation, WitnessState,
};

use super::control::ControlError;
use super::{Node, agreement_summary, err, outbox};
use axum::http::StatusCode;

/// Messages to a peer still waiting after this many attempts make the node `degraded`.
const STUCK_AFTER_ATTEMPTS: u32 = 3;

/// A scroll of a peer whose witnessing is overdue.
type Overdue = (MeshId, ScrollName);

/// Whether an agreement is over (hidden from `status` unless asked for).
fn ended(a: &AgreementRecord, now: Timestamp) -> bool {
    !a.status.in_force(now)
        && !matches!(
            a.status,
            vm_storage::AgreementStatus::AwaitingCountersignature
        )
}

impl Node {
    /// Every peer bound to us by an agreement not ended (`all`: every agreement), as rows,
    /// and the overdue scrolls among them.
    fn peer_rows(&self, all: bool) -> Result<(Vec<Value>, Vec<Overdue>), ControlError> {
        let now = self.now();
        let me = self.dir.mesh_id();
        let agreements = self.all::<AgreementRecord>()?;
        let witnessed = self.all::<WitnessState>()?;
        let attested = self.all::<ReceivedAttestation>()?;
        let outbox = self.all::<OutgoingMessage>()?;
        let peers = self.all::<PeerEntry>()?;
        let mut rows = Vec::new();
        let mut overdue = Vec::new();
        for a in agreements.iter().filter(|a| all || !ended(a, now)) {
            let Some(peer) = a.agreement.parties.iter().find(|p| *p != me) else {
                continue;
            };
            let interval = i64::from(a.agreement.terms.verification_frequency.interval_secs());
            let working = a.status.working(now);
            let scrolls: Vec<Value> = a
                .agreement
                .terms
                .scrolls_shared
                .iter()
                .map(|scroll| {
                    let ours = witnessed
                        .iter()
                        .find(|w| &w.peer == peer && &w.scroll == scroll);
                    let theirs = attested.iter().find(|r| {
                        &r.attestation.witnessing_mesh == peer && &r.attestation.scroll == scroll
                    });
                    let checked = self.last_checked.get(&(peer.clone(), scroll.clone())).copied();
                    let since = [
                        Some(a.agreement.established_at),
                        Some(self.started_at),
                        ours.map(|w| w.witnessed_at),
                        checked,
                    ]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(now);
                    let late = working && now.seconds_since(since) > interval.saturating_mul(2);
                    if late {
                        overdue.push((peer.clone(), scroll.clone()));
                    }
                    json!({
                        "scroll": scroll,
                        "witnessed_size": ours.map(|w| w.latest.size),
                        "witnessed_at": ours.map(|w| w.witnessed_at),
                        "witnessed_age_secs": ours.map(|w| now.seconds_since(w.witnessed_at).max(0)),
                        "witnessed_result": ours.map(|w| w.result),
                        "last_checked_at": checked,
                        "overdue": late,
                        "their_attestation": theirs.map(|r| json!({
                            "size": r.attestation.witnessed_size,
                            "result": r.attestation.witness_result,
                            "at": r.attestation.timestamp,
                        })),
                    })
                })
                .collect();
            let waiting: Vec<&OutgoingMessage> = outbox.iter().filter(|m| &m.to == peer).collect();
            let last_error = waiting
                .iter()
                .filter(|m| m.last_error.is_some())
                .max_by_key(|m| m.attempts)
                .and_then(|m| m.last_error.clone());
            let contact = self.contacts.get(peer);
            let name = peers
                .iter()
                .find(|p| &p.mesh_id == peer)
                .and_then(|p| p.discovery_record.as_ref())
                .map(|r| r.display_name.clone());
            rows.push(json!({
                "mesh_id": peer,
                "name": name,
                "agreement_id": a.agreement.agreement_id,
                "trust_level": a.agreement.trust_level,
                "agreement_status": a.status,
                "verification_frequency": a.agreement.terms.verification_frequency,
                "transport": contact.map(|(_, t)| *t),
                "last_contact": contact.map(|(at, _)| *at),
                "scrolls": scrolls,
                "pending_messages": waiting.len(),
                "last_delivery_error": last_error,
            }));
        }
        Ok((rows, overdue))
    }

    /// The verdict: `alarm` for an open finding (ours or against us), `degraded` for a fault
    /// of our files, a peer overdue, or messages stuck; `ok` otherwise. Each reason is a line.
    fn verdict(&self, overdue: &[Overdue]) -> Result<Value, ControlError> {
        let me = self.dir.mesh_id();
        let now = self.now();
        let mut alarm = Vec::new();
        let mut degraded = Vec::new();
        for d in self
            .all::<DiscrepancyRecord>()?
            .iter()
            .filter(|d| d.resolved_at.is_none())
        {
            let b = &d.report.body;
            alarm.push(if &b.reporting_mesh == me {
                format!(
                    "open finding {} against {}: {} ({} times); see `discrepancies list`",
                    b.discrepancy_id, b.reported_mesh, b.discrepancy_type, d.times_seen
                )
            } else {
                format!(
                    "{} reports {} against us: {} ({}); see `discrepancies list`",
                    b.reporting_mesh, b.discrepancy_type, b.discrepancy_id, b.timestamp
                )
            });
        }
        degraded.extend(
            self.faults
                .describe()
                .into_iter()
                .map(|f| format!("storage fault: {f}")),
        );
        // A suspension stops witnessing both ways until the suspending party lifts it.
        for a in self.all::<AgreementRecord>()? {
            if let AgreementStatus::Suspended { reason, by } = &a.status {
                let peer = a
                    .agreement
                    .counterparty(me)
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                let by = by.as_ref().map_or(me, |b| b);
                degraded.push(format!(
                    "agreement {} with {peer} is suspended by {by} ({reason}): nothing is \
                     witnessed until {by} resumes it",
                    a.agreement.agreement_id
                ));
            }
        }
        for (peer, scroll) in overdue {
            degraded.push(format!(
                "{peer}'s {scroll} is overdue for verification (no verdict in two periods)"
            ));
        }
        for m in self
            .all::<OutgoingMessage>()?
            .iter()
            .filter(|m| m.attempts >= STUCK_AFTER_ATTEMPTS)
        {
            degraded.push(format!(
                "a {} to {} is still undelivered after {} attempts ({} s){}; see `outbox list`",
                m.message
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message"),
                m.to,
                m.attempts,
                now.seconds_since(m.created_at).max(0),
                m.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        let state = if !alarm.is_empty() {
            "alarm"
        } else if !degraded.is_empty() {
            "degraded"
        } else {
            "ok"
        };
        alarm.extend(degraded);
        Ok(json!({"state": state, "reasons": alarm}))
    }

    /// Logs peers that became overdue (WARN) or recovered (INFO) since the last look.
    pub(super) fn check_overdue(&mut self) {
        let Ok((_, overdue)) = self.peer_rows(false) else {
            return;
        };
        let now: BTreeSet<Overdue> = overdue.into_iter().collect();
        for (peer, scroll) in now.difference(&self.overdue) {
            tracing::warn!(%peer, %scroll, "a federated peer is overdue for verification: no verdict on its root in two verification periods");
        }
        for (peer, scroll) in self.overdue.difference(&now) {
            tracing::info!(%peer, %scroll, "verification of the peer is back on schedule");
        }
        self.overdue = now;
    }

    /// `status` (`all`: ended agreements too).
    pub(super) async fn status(&self, all: bool) -> Result<Value, ControlError> {
        let net = self
            .net
            .status()
            .await
            .map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "network", e.to_string()))?;
        let health = self.faults.to_json(self.now_ms());
        let base = json!({
            "mesh_id": self.dir.mesh_id(),
            "public_key": self.dir.key().public_key(),
            "peer_id": net.peer_id,
            "data_dir": self.dir.root(),
            "health": health,
            "network": net,
            "federation_scroll": {"size": self.scroll.len(), "root": self.scroll.root()},
            "scrolls": self.scroll_summaries(),
            "refusals": self.metrics.refusal_counts(),
            "recent_events": self.recent,
        });
        let now = self.now();
        let read = || -> Result<Value, ControlError> {
            let (peers, overdue) = self.peer_rows(all)?;
            let agreements: Vec<Value> = self
                .all::<AgreementRecord>()?
                .iter()
                .filter(|a| all || !ended(a, now))
                .map(agreement_summary)
                .collect();
            let outbox: Vec<Value> = self
                .all::<OutgoingMessage>()?
                .iter()
                .map(|m| outbox::message_json(m, now))
                .collect();
            Ok(json!({
                "verdict": self.verdict(&overdue)?,
                "peers": peers,
                "known_peers": self.all::<PeerEntry>()?.len(),
                "proposals": self.all::<ProposalRecord>()?.len(),
                "agreements": agreements,
                "outbox": outbox,
                "federation_api": self.federation_api,
                "anchor": self.anchor_status(),
                "witness": self.witness_status()?,
            }))
        };
        let mut value = base;
        match read() {
            Ok(Value::Object(more)) => {
                if let Value::Object(map) = &mut value {
                    map.extend(more);
                }
            }
            Ok(_) => {}
            Err(e) => {
                // The state database is down: say so, with what the node knows without it.
                value["state_unavailable"] = json!(e.message);
                value["verdict"] = json!({
                    "state": "degraded",
                    "reasons": [format!("the state database cannot be read: {}", e.message)],
                });
            }
        }
        Ok(value)
    }
}
