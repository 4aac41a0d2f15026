//! The node's half of the witness protocol (DESIGN §7): serving witnesses (roots, evidence),
//! taking notifications, and running witness checks of peers' roots.
//!
//! A check runs as a spawned task, because it asks the witnessed mesh for evidence: it
//! fetches the root (when pulled), asks for a consistency proof from the size last witnessed
//! and for sampled receipts, runs [`crate::witness::check`], and on a `root_mismatch` or
//! `sample_missing` re-fetches the latest root and checks again before reporting (seed §6.3
//! step 1). The verdict comes back to the main loop, which hands it to the engine: the
//! witness state's compare-and-swap, the attestation and the receipts happen there, in one
//! transaction, before anything is sent. One check per (peer, scroll) runs at a time; a
//! notification arriving meanwhile waits as the next one (only the newest is kept).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::StatusCode;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use vm_receipts::documents::{AnchorNotification, DiscrepancyType, SignedRoot, from_value};
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, AnchoredRoot, WitnessState};

use super::control::ControlReply;
use super::https::{Outbound, Target};
use super::wire::{FedRequest, FedResponse};
use super::{Completion, Node, err};
use crate::anchor::{AnchorTrust, TsaTrust};
use crate::clock::{Clock, SystemClock};
use crate::engine::policy::{self, PeerRequest};
use crate::engine::{Input, WitnessReport};
use crate::witness::{self, CheckInput, Evidence, EvidenceRequest, Verdict, choose_samples};

/// How the node witnesses (from `[witness]`).
#[derive(Clone)]
pub(super) struct WitnessSettings {
    pub samples: usize,
    pub drift_secs: i64,
    pub tsa: Option<Arc<TsaTrust>>,
}

/// A check waiting for the one in flight on the same (peer, scroll).
pub(super) struct Queued {
    scroll: ScrollName,
    notification: Option<AnchorNotification>,
    pushed: bool,
    received: Timestamp,
    reply: Option<oneshot::Sender<ControlReply>>,
}

/// Roots of each (peer, scroll stem) seen, by size, each with whether it was already used in
/// a conflict report.
pub(super) type SeenRoots = HashMap<(MeshId, String), BTreeMap<u64, (SignedRoot, bool)>>;

/// Roots remembered per (peer, scroll): about three days of hourly anchors.
const SEEN_PER_SCROLL: usize = 64;

/// Most bytes of evidence served in one response (the transport allows 8 MiB).
const MAX_EVIDENCE_BYTES: usize = 7 * 1024 * 1024;

/// Everything a spawned check needs, copied out of the node.
struct Job {
    outbound: Outbound,
    peer: MeshId,
    key: PublicKey,
    target: Target,
    scroll: ScrollName,
    notification: Option<AnchorNotification>,
    pushed: bool,
    /// When the notification arrived: a pushed root's freshness is judged then, not when
    /// its evidence came back (a slow evidence round trip is not the mesh's drift).
    received: Timestamp,
    previous: Option<SignedRoot>,
    settings: WitnessSettings,
    keys: Arc<HashMap<MeshId, PublicKey>>,
    schema_version: Option<String>,
    rng: ChaCha20Rng,
}

impl Node {
    /// The agreement in force between us and `peer`, if any (active, suspended, or within
    /// a revocation notice).
    pub(super) fn agreement_with(&self, peer: &MeshId) -> Option<AgreementRecord> {
        let now = self.now();
        let me = self.dir.mesh_id();
        self.engine
            .store()
            .all::<AgreementRecord>()
            .ok()?
            .into_iter()
            .find(|r| {
                let parties = &r.agreement.parties;
                parties.contains(me) && parties.contains(peer) && r.status.in_force(now)
            })
    }

    /// Whether we witness `peer`'s shared scrolls: an agreement in force at level 2+ (DESIGN
    /// §6; at level 1 the peer may read ours, nobody witnesses).
    pub(super) fn we_witness(&self, peer: &MeshId) -> bool {
        self.agreement_with(peer)
            .is_some_and(|a| a.agreement.trust_level >= vm_receipts::documents::TrustLevel::VERIFY)
    }

    /// Asks the policy whether `peer` may make `request`; a refusal is the response.
    pub(super) fn authorize_read(
        &self,
        peer: &MeshId,
        request: PeerRequest<'_>,
    ) -> Result<(), FedResponse> {
        let agreement = self.agreement_with(peer);
        policy::authorize(
            self.dir.mesh_id(),
            peer,
            self.federation_on,
            agreement.as_ref(),
            self.now(),
            request,
        )
        .map_err(|refusal| {
            tracing::info!(%peer, %refusal, "witness request refused by policy");
            FedResponse::error("forbidden", refusal.to_string(), false)
        })
    }

    /// `notify`: a peer's anchor notification. Checked (document, sender, signature,
    /// policy) before anything else; a root already witnessed is acknowledged and dropped.
    pub(super) fn on_notify(&mut self, from: &MeshId, value: Value) -> FedResponse {
        let notification: AnchorNotification = match from_value(value) {
            Ok(n) => n,
            Err(e) => return FedResponse::error("bad_document", e.to_string(), true),
        };
        if &notification.mesh_id != from {
            return FedResponse::error(
                "sender_mismatch",
                format!(
                    "the notification is for {}'s scroll, but {from} sent it",
                    notification.mesh_id
                ),
                true,
            );
        }
        if let Err(refusal) = self.authorize_read(from, PeerRequest::Notify(&notification.scroll)) {
            return refusal;
        }
        let Some(key) = self.route(from).map(|t| t.key) else {
            return FedResponse::error("unknown_sender", format!("no key for {from}"), false);
        };
        if let Err(e) = notification.verify_root(&key) {
            return FedResponse::error("bad_signature", e.to_string(), true);
        }
        if self.compare_seen(&notification) {
            return FedResponse::Ack;
        }
        let stored = self.witness_state(from, &notification.scroll);
        if stored.as_ref().is_some_and(|s| {
            s.latest.size == notification.size && s.latest.root == notification.root
        }) {
            return FedResponse::Ack;
        }
        let scroll = notification.scroll.clone();
        self.witness(from.clone(), scroll, Some(notification), true, None);
        FedResponse::Ack
    }

    fn witness_state(&self, peer: &MeshId, scroll: &ScrollName) -> Option<WitnessState> {
        self.engine
            .store()
            .get::<WitnessState>(&vm_storage::records::witness_key(peer, scroll))
            .ok()
            .flatten()
    }

    /// Starts a check of `peer`'s `scroll`: of `notification` if given, else of the root the
    /// peer serves now. `reply` gets the outcome (the `verify` command).
    pub(super) fn witness(
        &mut self,
        peer: MeshId,
        scroll: ScrollName,
        notification: Option<AnchorNotification>,
        pushed: bool,
        reply: Option<oneshot::Sender<ControlReply>>,
    ) {
        let received = self.now();
        self.witness_received(peer, scroll, notification, pushed, received, reply);
    }

    /// As [`Self::witness`], for a request that arrived at `received` (a queued one waited).
    fn witness_received(
        &mut self,
        peer: MeshId,
        scroll: ScrollName,
        notification: Option<AnchorNotification>,
        pushed: bool,
        received: Timestamp,
        reply: Option<oneshot::Sender<ControlReply>>,
    ) {
        let slot = (peer.clone(), scroll.file_stem());
        if let Some(queued) = self.witnessing.get_mut(&slot) {
            // One check at a time per (peer, scroll); the newest request waits. A request
            // it replaces is answered by the one that runs.
            let previous = queued.replace(Queued {
                scroll,
                notification,
                pushed,
                received,
                reply,
            });
            if let Some(Queued { reply: Some(r), .. }) = previous {
                let _ = r.send(Err(err(
                    StatusCode::CONFLICT,
                    "superseded",
                    "a newer witness request for this scroll replaced this one",
                )));
            }
            return;
        }
        let Some(target) = self.route(&peer) else {
            if let Some(r) = reply {
                let _ = r.send(Err(err(
                    StatusCode::NOT_FOUND,
                    "unknown_peer",
                    format!("no key or address known for {peer}"),
                )));
            }
            return;
        };
        let schema_version = self.agreement_with(&peer).and_then(|a| {
            a.agreement
                .terms
                .extra
                .get("schema_versions")
                .and_then(|v| v.get(scroll.as_str()))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let keys = self.peer_keys.clone();
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut self.rng, &mut seed);
        let job = Job {
            outbound: self.outbound.clone(),
            peer: peer.clone(),
            key: target.key,
            target,
            previous: self.witness_state(&peer, &scroll).map(|s| s.latest),
            scroll,
            notification,
            pushed,
            received,
            settings: self.witness_settings.clone(),
            keys,
            schema_version,
            rng: ChaCha20Rng::from_seed(seed),
        };
        self.witnessing.insert(slot.clone(), None);
        let completions = self.completions.clone();
        tokio::spawn(async move {
            let result = run(job).await.map(Box::new);
            let _ = completions
                .send(Completion::Witnessed {
                    slot,
                    result,
                    reply,
                })
                .await;
        });
    }

    /// A check finished: the engine acts on the verdict, the waiting check starts.
    pub(super) fn on_witnessed(
        &mut self,
        slot: (MeshId, String),
        result: Result<Box<WitnessReport>, String>,
        reply: Option<oneshot::Sender<ControlReply>>,
    ) {
        let answer = match result {
            Err(message) => {
                tracing::info!(peer = %slot.0, scroll = %slot.1, %message, "witness check could not run");
                Err(err(StatusCode::BAD_GATEWAY, "unreachable", message))
            }
            Ok(report) => {
                let summary = json!({
                    "peer": report.peer,
                    "scroll": report.notification.scroll,
                    "size": report.notification.size,
                    "root": report.notification.root,
                    "resynced": report.resynced,
                });
                let verdict = verdict_json(&report.verdict);
                let verified = matches!(report.verdict, Verdict::Verified { .. })
                    .then(|| report.notification.clone());
                let now = self.now();
                match self.engine.handle(now, Input::Witnessed(report)) {
                    Ok(outputs) => {
                        let events = self.apply(outputs);
                        if let Some(n) = verified {
                            // Pass it to the mesh's other witnesses, and compare it with
                            // what they passed to us.
                            self.gossip_root(&n);
                            self.compare_seen(&n);
                        }
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
        };
        if let Some(r) = reply {
            let _ = r.send(answer);
        }
        if let Some(Some(next)) = self.witnessing.remove(&slot) {
            self.witness_received(
                slot.0,
                next.scroll,
                next.notification,
                next.pushed,
                next.received,
                next.reply,
            );
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

    /// A peer's root another witness passed on (signature already checked): compared with
    /// what we saw of that peer, and witnessed like a pulled root if it is newer than ours.
    /// This is what catches a split view: a mesh showing one history to some witnesses and
    /// another to the rest passes each witness's own checks (the simulator's
    /// `split_view_equivocation_goes_undetected_without_cross_witness_comparison`).
    pub(super) fn cross_check(&mut self, n: AnchorNotification) {
        let peer = n.mesh_id.clone();
        // The `Notify` policy is the witnessing one: an agreement in force at level 2+
        // sharing the scroll. Gossip about meshes we do not witness is common, so a refusal
        // here is not logged.
        let agreement = self.agreement_with(&peer);
        let witnessed = policy::authorize(
            self.dir.mesh_id(),
            &peer,
            self.federation_on,
            agreement.as_ref(),
            self.now(),
            PeerRequest::Notify(&n.scroll),
        );
        if witnessed.is_err() {
            return;
        }
        if self.compare_seen(&n) {
            return;
        }
        let newer = self
            .witness_state(&peer, &n.scroll)
            .is_none_or(|s| s.latest.size < n.size);
        if newer {
            let scroll = n.scroll.clone();
            self.witness(peer, scroll, Some(n), false, None);
        }
    }

    /// Compares a root of a peer we witness with the roots of it we saw before and the one
    /// we witnessed last ([`witness::compare_roots`]); a conflict is recorded at once, with
    /// both signed roots as the proof. Returns whether one was.
    fn compare_seen(&mut self, n: &AnchorNotification) -> bool {
        let peer = n.mesh_id.clone();
        let state = self.witness_state(&peer, &n.scroll);
        let later = n.signed_root();
        let seen = self
            .seen_roots
            .entry((peer.clone(), n.scroll.file_stem()))
            .or_default();
        if seen.get(&n.size).is_some_and(|(r, _)| r.root == n.root) {
            return false;
        }
        let from_state = state
            .as_ref()
            .filter(|s| !seen.get(&s.latest.size).is_some_and(|(_, used)| *used))
            .and_then(|s| witness::compare_roots(&s.latest, &later));
        let finding = from_state.or_else(|| {
            seen.values_mut().find_map(|(r, used)| {
                let f = (!*used)
                    .then(|| witness::compare_roots(r, &later))
                    .flatten()?;
                *used = true;
                Some(f)
            })
        });
        seen.entry(n.size)
            .or_insert_with(|| (later.clone(), finding.is_some()));
        if let Some(s) = &state {
            seen.entry(s.latest.size)
                .or_insert_with(|| (s.latest.clone(), finding.is_some()));
        }
        while seen.len() > SEEN_PER_SCROLL {
            seen.pop_first();
        }
        let Some(finding) = finding else {
            return false;
        };
        tracing::warn!(%peer, scroll = %n.scroll, size = n.size, kind = finding.evidence.kind(), "a peer signed two histories");
        let report = WitnessReport {
            peer,
            notification: n.clone(),
            expected_size: state.map(|s| s.latest.size),
            verdict: Verdict::Discrepancy {
                anchor: None,
                samples_checked: 0,
                finding: Box::new(finding),
            },
            resynced: false,
        };
        let now = self.now();
        match self.engine.handle(now, Input::Witnessed(Box::new(report))) {
            Ok(outputs) => {
                self.apply(outputs);
                true
            }
            Err(e) => {
                tracing::info!(error = %e, "conflicting roots not recorded");
                false
            }
        }
    }

    /// `roots`: our latest anchored roots of the scrolls shared with `from`.
    pub(super) fn serve_roots(&self, from: &MeshId, scrolls: &[ScrollName]) -> FedResponse {
        let wanted: Vec<ScrollName> = if scrolls.is_empty() {
            self.agreement_with(from)
                .map(|a| a.agreement.terms.scrolls_shared)
                .unwrap_or_default()
        } else {
            scrolls.to_vec()
        };
        if let Err(refusal) = self.authorize_read(from, PeerRequest::Roots(&wanted)) {
            return refusal;
        }
        let mut roots = Vec::new();
        for scroll in &wanted {
            if let Ok(Some(a)) = self.engine.store().get::<AnchoredRoot>(&scroll.file_stem())
                && let Ok(v) = serde_json::to_value(&a.notification)
            {
                roots.push(v);
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

/// Times a witness request that failed in transport is sent again.
const WITNESS_REQUEST_RESENDS: usize = 2;

/// One request to the witnessed mesh, over whichever transport reaches it. Roots and
/// evidence requests are reads, so one lost on the way is sent again (twice at most) rather
/// than failing the whole check: the simulator showed that on a lossy network a check of
/// four requests without resends failed about half the time, and detection slipped past
/// its two-cycle budget.
async fn ask(job: &Job, request: &FedRequest) -> Result<FedResponse, String> {
    let mut result = job.outbound.call(&job.target, request).await;
    for _ in 0..WITNESS_REQUEST_RESENDS {
        if result.is_ok() {
            break;
        }
        result = job.outbound.call(&job.target, request).await;
    }
    result
}

/// The root the mesh serves now for the job's scroll, checked like a notification.
async fn fetch_root(job: &Job) -> Result<AnchorNotification, String> {
    let response = ask(
        job,
        &FedRequest::Roots {
            scrolls: vec![job.scroll.clone()],
        },
    )
    .await?;
    let roots = match response {
        FedResponse::Roots { roots } => roots,
        FedResponse::Error { error, message, .. } => {
            return Err(format!("{} refused roots: {error}: {message}", job.peer));
        }
        other => return Err(format!("{}: unexpected response {other:?}", job.peer)),
    };
    let value = roots
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} has no anchored root of {} yet", job.peer, job.scroll))?;
    let n: AnchorNotification = from_value(value).map_err(|e| e.to_string())?;
    if n.mesh_id != job.peer || n.scroll != job.scroll {
        return Err(format!(
            "{} served a root of {}'s {} instead",
            job.peer, n.mesh_id, n.scroll
        ));
    }
    n.verify_root(&job.key).map_err(|e| e.to_string())?;
    Ok(n)
}

/// Steps 1–4 once, for `n`.
async fn check_once(job: &mut Job, n: &AnchorNotification) -> Result<Verdict, String> {
    let requested = choose_samples(n.size, job.settings.samples, &mut job.rng);
    let old_size = job
        .previous
        .as_ref()
        .map(|p| p.size)
        .filter(|&s| s > 0 && s < n.size);
    let ask_for = EvidenceRequest {
        scroll: n.scroll.clone(),
        old_size,
        new_size: n.size,
        samples: requested.clone(),
    };
    let evidence = match ask(job, &FedRequest::Evidence { ask: ask_for }).await? {
        FedResponse::Evidence { evidence } => *evidence,
        // A mesh that will not serve proofs of a root it signed leaves that root unproven:
        // recorded as missing samples, a claim it can answer by serving them.
        FedResponse::Error { error, message, .. } => Evidence {
            scroll: n.scroll.clone(),
            new_size: n.size,
            consistency: None,
            samples: {
                tracing::info!(peer = %job.peer, %error, %message, "evidence refused");
                Vec::new()
            },
        },
        other => return Err(format!("{}: unexpected response {other:?}", job.peer)),
    };
    if evidence.scroll != n.scroll || evidence.new_size != n.size {
        return Err(format!(
            "{} served evidence for {} at {}, not {} at {}",
            job.peer, evidence.scroll, evidence.new_size, n.scroll, n.size
        ));
    }
    let keys = &job.keys;
    let key_of = |m: &MeshId| keys.get(m).copied();
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: job.settings.tsa.as_deref(),
    };
    Ok(witness::check(&CheckInput {
        notification: n,
        pushed: job.pushed,
        previous: job.previous.as_ref(),
        requested: &requested,
        evidence: &evidence,
        now: if job.pushed {
            job.received
        } else {
            SystemClock.now()
        },
        drift_secs: job.settings.drift_secs,
        trust: &trust,
        schema_version: job.schema_version.as_deref(),
    }))
}

/// A whole check, with one re-sync when it fails in a way a race could explain.
async fn run(mut job: Job) -> Result<WitnessReport, String> {
    let n = match job.notification.take() {
        Some(n) => n,
        None => fetch_root(&job).await?,
    };
    let expected_size = job.previous.as_ref().map(|p| p.size);
    let verdict = check_once(&mut job, &n).await?;
    let retry = matches!(
        &verdict,
        Verdict::Discrepancy { finding, .. }
            if matches!(finding.kind, DiscrepancyType::RootMismatch | DiscrepancyType::SampleMissing)
    );
    if !retry {
        return Ok(WitnessReport {
            peer: job.peer,
            notification: n,
            expected_size,
            verdict,
            resynced: false,
        });
    }
    // Seed §6.3 step 1: re-sync and recompute before reporting. A pulled re-check is not
    // held to the freshness of a push.
    tracing::info!(peer = %job.peer, scroll = %n.scroll, "witness check failed; re-syncing before reporting");
    job.pushed = false;
    let (n, verdict) = match fetch_root(&job).await {
        Ok(latest) => {
            let v = check_once(&mut job, &latest).await?;
            (latest, v)
        }
        Err(e) => {
            tracing::info!(peer = %job.peer, error = %e, "re-sync could not fetch the latest root; reporting the first check");
            (n, verdict)
        }
    };
    Ok(WitnessReport {
        peer: job.peer,
        notification: n,
        expected_size,
        verdict,
        resynced: true,
    })
}
