//! A check's life inside the witness core: the one place per (peer, scroll) and the one
//! waiting behind it, the requests with their resends, the answers, the re-sync and the
//! verdict. Private to [`super`]; every entry point is one of its handlers.

use serde_json::Value;
use vm_receipts::documents::{AnchorNotification, DiscrepancyType, SignedRoot};
use vm_receipts::{MeshId, ScrollName, Timestamp};

use super::{
    Answer, Facts, Origin, Outcome, Output, Request, RequestId, Slot, Waiter, WitnessCore,
    conflict_report, slot_of, timestamp,
};
use crate::anchor::AnchorTrust;
use crate::engine::WitnessReport;
use crate::engine::policy::PeerRequest;
use crate::witness::{
    CheckInput, ConflictEvidence, Evidence, EvidenceRequest, Finding, Verdict, choose_samples,
};

/// One attempt series of one request.
#[derive(Debug, Clone)]
pub(super) struct Attempts {
    pub(super) request: Request,
    /// Every id sent for it (an answer to any of them will do).
    pub(super) ids: Vec<RequestId>,
    /// Sends so far.
    pub(super) sent: u32,
    /// When to send again (or give up) if nothing useful comes back.
    pub(super) next_at_ms: u64,
}

#[derive(Debug, Clone)]
pub(super) enum Step {
    Root(Attempts),
    Evidence {
        attempts: Attempts,
        notification: Box<AnchorNotification>,
        requested: Vec<u64>,
    },
}

impl Step {
    pub(super) fn attempts(&self) -> &Attempts {
        match self {
            Step::Root(a) | Step::Evidence { attempts: a, .. } => a,
        }
    }
    pub(super) fn attempts_mut(&mut self) -> &mut Attempts {
        match self {
            Step::Root(a) | Step::Evidence { attempts: a, .. } => a,
        }
    }
}

/// A check in flight.
#[derive(Debug, Clone)]
pub(super) struct Check {
    pub(super) scroll: ScrollName,
    pub(super) origin: Origin,
    /// When what it checks arrived: a pushed root is judged fresh or stale then, not when
    /// its evidence came back.
    pub(super) received: Timestamp,
    pub(super) deadline_ms: u64,
    /// When the check began.
    pub(super) started_ms: u64,
    /// The witness state's root when the check began (the compare-and-swap expects it).
    pub(super) previous: Option<SignedRoot>,
    pub(super) waiters: Vec<Waiter>,
    pub(super) resynced: bool,
    /// The failed first verdict, reported if the re-sync cannot run (`None` when it rests
    /// on unsigned material and must not be reported on its own).
    pub(super) first: Option<(Box<AnchorNotification>, Verdict)>,
    pub(super) step: Step,
}

/// A check waiting for the one in flight on its slot.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) scroll: ScrollName,
    pub(super) notification: Option<Box<AnchorNotification>>,
    pub(super) origin: Origin,
    pub(super) received: Timestamp,
    pub(super) waiters: Vec<Waiter>,
}

impl WitnessCore {
    // ----- the queue -----

    pub(super) fn enqueue(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        mut next: Pending,
        peer: &MeshId,
        out: &mut Vec<Output>,
    ) {
        let slot = slot_of(peer, &next.scroll);
        if let Some(check) = self.checks.get(&slot) {
            // A root the running check already covers is not checked again.
            let covered = match (&check.step, &next.notification) {
                (Step::Evidence { notification, .. }, Some(n)) => n.size <= notification.size,
                _ => false,
            };
            if covered {
                if let Some(c) = self.checks.get_mut(&slot) {
                    c.waiters.append(&mut next.waiters);
                }
                return;
            }
            self.wait(slot, next);
            return;
        }
        if self.ready.contains(&slot) {
            // A check just finished here: what waits starts from the timer, and this joins it.
            self.wait(slot, next);
            return;
        }
        self.start(now_ms, facts, slot, next, out);
    }

    /// Puts `next` in the one waiting place of `slot`, keeping whichever tells more: a pull
    /// (the mesh's latest root) over any root, a larger root over a smaller one, the mesh's
    /// own push over a gossiped copy of the same size. Nobody waiting is dropped.
    pub(super) fn wait(&mut self, slot: Slot, mut next: Pending) {
        let Some(waiting) = self.pending.get_mut(&slot) else {
            self.pending.insert(slot, next);
            return;
        };
        let replace = match (&waiting.notification, &next.notification) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(w), Some(n)) => {
                n.size > w.size
                    || (n.size == w.size
                        && waiting.origin == Origin::Gossip
                        && next.origin == Origin::Push)
            }
        };
        if replace {
            next.waiters.append(&mut waiting.waiters);
            *waiting = next;
        } else {
            waiting.waiters.append(&mut next.waiters);
        }
    }

    pub(super) fn start(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: Slot,
        p: Pending,
        out: &mut Vec<Output>,
    ) {
        let previous = match facts.witness_state(&slot.0, &p.scroll) {
            Ok(s) => s.map(|s| s.latest),
            Err(e) => {
                out.push(Output::Finished {
                    peer: slot.0.clone(),
                    scroll: p.scroll,
                    waiters: p.waiters,
                    outcome: Outcome::NoVerdict(format!("witness state unreadable: {e}")),
                    started_ms: None,
                });
                return;
            }
        };
        let placeholder = Step::Root(Attempts {
            request: Request::Roots {
                scroll: p.scroll.clone(),
            },
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        });
        self.checks.insert(
            slot.clone(),
            Check {
                scroll: p.scroll.clone(),
                origin: p.origin,
                received: p.received,
                deadline_ms: now_ms.saturating_add(self.config.check_deadline_ms),
                started_ms: now_ms,
                previous,
                waiters: p.waiters,
                resynced: false,
                first: None,
                step: placeholder,
            },
        );
        match p.notification {
            Some(n) => self.examine(now_ms, facts, &slot, *n, out),
            None => self.ask_root(now_ms, &slot, out),
        }
    }

    pub(super) fn finish(&mut self, slot: &Slot, outcome: Outcome, out: &mut Vec<Output>) {
        let Some(check) = self.checks.remove(slot) else {
            return;
        };
        for id in &check.step.attempts().ids {
            self.requests.remove(id);
        }
        if let Outcome::NoVerdict(why) = &outcome {
            tracing::info!(peer = %slot.0, scroll = %check.scroll, %why, "witness check ended without a verdict");
        }
        out.push(Output::Finished {
            peer: slot.0.clone(),
            scroll: check.scroll,
            waiters: check.waiters,
            outcome,
            started_ms: Some(check.started_ms),
        });
        if self.pending.contains_key(slot) {
            self.ready.insert(slot.clone());
        }
    }

    // ----- requests -----

    pub(super) fn send(
        &mut self,
        now_ms: u64,
        slot: &Slot,
        attempts: &mut Attempts,
        out: &mut Vec<Output>,
    ) {
        self.next_id += 1;
        let id = self.next_id;
        attempts.ids.push(id);
        attempts.sent += 1;
        attempts.next_at_ms = now_ms.saturating_add(self.config.request_timeout_ms);
        self.requests.insert(id, slot.clone());
        out.push(Output::Request {
            id,
            peer: slot.0.clone(),
            request: attempts.request.clone(),
        });
    }

    pub(super) fn ask_root(&mut self, now_ms: u64, slot: &Slot, out: &mut Vec<Output>) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let mut attempts = Attempts {
            request: Request::Roots {
                scroll: check.scroll.clone(),
            },
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        };
        self.send(now_ms, slot, &mut attempts, out);
        if let Some(c) = self.checks.get_mut(slot) {
            c.step = Step::Root(attempts);
        }
    }

    /// The request in hand failed or went unanswered: sent again, or the check gives up.
    pub(super) fn after_failure(
        &mut self,
        now_ms: u64,
        slot: &Slot,
        reason: String,
        out: &mut Vec<Output>,
    ) {
        let Some(mut check) = self.checks.remove(slot) else {
            return;
        };
        let attempts = check.step.attempts_mut();
        if attempts.sent > self.config.request_resends {
            self.checks.insert(slot.clone(), check);
            self.give_up(slot, reason, out);
            return;
        }
        if attempts.next_at_ms > now_ms {
            // A transport failure: send again after a short pause rather than at once (the
            // peer may be restarting), or at the timeout if that is sooner.
            attempts.next_at_ms = attempts
                .next_at_ms
                .min(now_ms.saturating_add(self.config.resend_after_failure_ms));
            self.checks.insert(slot.clone(), check);
            return;
        }
        let mut attempts = attempts.clone();
        self.send(now_ms, slot, &mut attempts, out);
        *check.step.attempts_mut() = attempts;
        self.checks.insert(slot.clone(), check);
    }

    /// The check cannot go on: no verdict. A failed first verdict waiting for its re-sync
    /// is not reported either: an unanswered re-sync is no evidence (the next cycle checks
    /// again), and proofs never wait for one.
    pub(super) fn give_up(&mut self, slot: &Slot, why: String, out: &mut Vec<Output>) {
        self.finish(slot, Outcome::NoVerdict(why), out);
    }

    // ----- answers -----

    pub(super) fn on_step_answer(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        answer: Answer,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let awaiting_evidence = match &check.step {
            Step::Evidence { notification, .. } => {
                Some((notification.scroll.clone(), notification.size))
            }
            Step::Root(_) => None,
        };
        let scroll = check.scroll.clone();
        match (awaiting_evidence, answer) {
            (None, Answer::Root(Some(n))) => self.on_root(now_ms, facts, slot, n, out),
            (None, Answer::Root(None)) => {
                let why = format!("{} has no anchored root of {scroll} yet", slot.0);
                self.give_up(slot, why, out);
            }
            (Some(_), Answer::Evidence(e)) => self.on_evidence(now_ms, facts, slot, e, out),
            (_, Answer::Refused { code, message }) if transient(&code) => {
                // Busy or failing for now: sent again like a lost request.
                let why = format!("{} refused for now: {code}: {message}", slot.0);
                self.after_failure(now_ms, slot, why, out);
            }
            (Some((scroll, new_size)), Answer::Refused { code, message }) if withholds(&code) => {
                // A mesh that will not serve proofs of a root it signed leaves that root
                // unproven: missing samples, a claim it can answer by serving them.
                tracing::info!(peer = %slot.0, %code, %message, "evidence refused");
                let empty = Evidence::empty(scroll, new_size);
                self.on_evidence(now_ms, facts, slot, empty, out);
            }
            (_, Answer::Refused { code, message }) => {
                let why = format!("{} refused: {code}: {message}", slot.0);
                self.give_up(slot, why, out);
            }
            (_, other) => {
                let why = format!("{} answered out of turn: {}", slot.0, answer_kind(&other));
                self.give_up(slot, why, out);
            }
        }
    }

    /// The mesh's latest root, as it served it.
    pub(super) fn on_root(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        n: AnchorNotification,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        if n.mesh_id != slot.0 || n.scroll != check.scroll {
            let why = format!(
                "{} served a root of {}'s {} instead",
                slot.0, n.mesh_id, n.scroll
            );
            return self.give_up(slot, why, out);
        }
        // The root attested, byte for byte (signature included): nothing new, and no
        // signature to check again (most pulls, on the verification schedule, are this).
        if check.first.is_none()
            && check
                .previous
                .as_ref()
                .is_some_and(|p| *p == n.signed_root())
        {
            let size = n.size;
            return self.finish(slot, Outcome::Unchanged { size }, out);
        }
        let key = match facts.peer_key(&slot.0) {
            Ok(Some(k)) => k,
            Ok(None) => {
                let why = format!("no key for {}", slot.0);
                return self.give_up(slot, why, out);
            }
            Err(e) => return self.give_up(slot, e.to_string(), out),
        };
        if let Err(e) = n.verify_root(&key) {
            // A root not signed by the mesh proves nothing about it.
            let why = format!("{} served a wrongly signed root: {e}", slot.0);
            return self.give_up(slot, why, out);
        }
        let previous = check.previous.clone();
        if let Some(finding) = self.compare(&n.signed_root(), previous.as_ref()) {
            // Two roots of one size: the check's outcome is that proof.
            let report = conflict_report(&n, previous.as_ref(), finding);
            return self.finish(slot, Outcome::Report(Box::new(report)), out);
        }
        if previous
            .as_ref()
            .is_some_and(|p| p.size == n.size && p.root == n.root)
        {
            let size = n.size;
            let outcome = match self.checks.get_mut(slot).and_then(|c| c.first.take()) {
                // The re-sync found the mesh's latest root to be the one attested, below
                // the root it failed on: the first verdict stands.
                Some((first, verdict)) => Outcome::Report(Box::new(WitnessReport {
                    peer: slot.0.clone(),
                    notification: *first,
                    expected_size: Some(size),
                    verdict,
                    resynced: true,
                })),
                None => Outcome::Unchanged { size },
            };
            return self.finish(slot, outcome, out);
        }
        if let Some(c) = self.checks.get_mut(slot) {
            c.origin = Origin::Pull;
        }
        self.examine(now_ms, facts, slot, n, out);
    }

    /// A root to check: asks for evidence, or judges at once when none is needed.
    pub(super) fn examine(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        n: AnchorNotification,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let prev_size = check.previous.as_ref().map(|p| p.size);
        if let Some(p) = &check.previous
            && p.size == n.size
            && p.root == n.root
        {
            let size = n.size;
            return self.finish(slot, Outcome::Unchanged { size }, out);
        }
        if prev_size.is_some_and(|s| n.size <= s) {
            // Smaller (a truncation, for a pulled root) or one size with another root: the
            // signed roots decide; no evidence is needed.
            let empty = Evidence::empty(n.scroll.clone(), n.size);
            self.set_evidence_step(slot, n, Vec::new(), None);
            return self.on_evidence(now_ms, facts, slot, empty, out);
        }
        let requested = choose_samples(n.size, self.config.samples, &mut self.rng);
        let ask = EvidenceRequest {
            scroll: n.scroll.clone(),
            old_size: prev_size.filter(|&s| s > 0 && s < n.size),
            new_size: n.size,
            samples: requested.clone(),
        };
        let mut attempts = Attempts {
            request: Request::Evidence(ask),
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        };
        self.send(now_ms, slot, &mut attempts, out);
        self.set_evidence_step(slot, n, requested, Some(attempts));
    }

    pub(super) fn set_evidence_step(
        &mut self,
        slot: &Slot,
        n: AnchorNotification,
        requested: Vec<u64>,
        attempts: Option<Attempts>,
    ) {
        let Some(check) = self.checks.get_mut(slot) else {
            return;
        };
        let attempts = attempts.unwrap_or_else(|| Attempts {
            request: Request::Roots {
                scroll: check.scroll.clone(),
            },
            ids: Vec::new(),
            sent: 0,
            next_at_ms: u64::MAX,
        });
        check.step = Step::Evidence {
            attempts,
            notification: Box::new(n),
            requested,
        };
    }

    /// Steps 1–4 on what the mesh served, then the re-sync or the verdict.
    pub(super) fn on_evidence(
        &mut self,
        now_ms: u64,
        facts: &impl Facts,
        slot: &Slot,
        evidence: Evidence,
        out: &mut Vec<Output>,
    ) {
        let Some(check) = self.checks.get(slot) else {
            return;
        };
        let Step::Evidence {
            notification,
            requested,
            ..
        } = &check.step
        else {
            return;
        };
        let n = (**notification).clone();
        if evidence.scroll != n.scroll || evidence.new_size != n.size {
            let why = format!(
                "{} served evidence for {} at {}, not {} at {}",
                slot.0, evidence.scroll, evidence.new_size, n.scroll, n.size
            );
            return self.give_up(slot, why, out);
        }
        let now = timestamp(now_ms);
        let agreement = match facts.authorize(&slot.0, PeerRequest::Notify(&n.scroll), now) {
            Ok(a) => a,
            Err(e) => {
                let why = format!("no longer witnessing {}: {e}", slot.0);
                return self.give_up(slot, why, out);
            }
        };
        let schema_version = agreement.as_ref().and_then(|a| {
            a.agreement
                .terms
                .extra
                .get("schema_versions")
                .and_then(|v| v.get(n.scroll.as_str()))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let pushed = check.origin == Origin::Push && !check.resynced;
        let key_of = |m: &MeshId| {
            if m == &self.me {
                Some(self.my_key)
            } else {
                facts.peer_key(m).ok().flatten()
            }
        };
        let trust = AnchorTrust {
            key_of: &key_of,
            tsa: self.config.tsa.as_deref(),
        };
        let verdict = crate::witness::check(&CheckInput {
            notification: &n,
            pushed,
            previous: check.previous.as_ref(),
            requested,
            evidence: &evidence,
            // A pushed root is judged fresh or stale by when it arrived, not by when its
            // evidence came back: a slow round trip is not the mesh's drift.
            now: if pushed { check.received } else { now },
            drift_secs: self.config.drift_secs,
            trust: &trust,
            schema_version: schema_version.as_deref(),
        });
        let origin = check.origin;
        let resynced = check.resynced;
        let previous = check.previous.clone();
        if let Verdict::Discrepancy { finding, .. } = &verdict
            && !resynced
            && (raced(finding) || (origin == Origin::Gossip && unsigned(finding)))
        {
            // Seed §6.3 step 1: re-fetch the latest root and check again before reporting.
            // A finding on unsigned material from gossip is never reported on its own.
            let reportable = origin != Origin::Gossip || !unsigned(finding);
            if reportable {
                tracing::info!(peer = %slot.0, scroll = %n.scroll, kind = %finding.kind, "witness check failed; re-syncing before reporting");
            } else {
                tracing::info!(peer = %slot.0, scroll = %n.scroll, size = n.size, kind = %finding.kind, "a gossiped copy failed on unsigned material; checking what the mesh itself serves");
            }
            let deadline = now_ms.saturating_add(self.config.check_deadline_ms);
            if let Some(c) = self.checks.get_mut(slot) {
                c.resynced = true;
                c.origin = Origin::Pull;
                c.deadline_ms = deadline;
                c.first = reportable.then(|| (Box::new(n.clone()), verdict.clone()));
            }
            return self.ask_root(now_ms, slot, out);
        }
        if let Verdict::Discrepancy { finding, .. } = &verdict
            && origin == Origin::Gossip
            && unsigned(finding)
        {
            let why = format!(
                "a gossiped copy of {}'s root failed on unsigned material ({})",
                slot.0, finding.kind
            );
            return self.give_up(slot, why, out);
        }
        if matches!(verdict, Verdict::Stale) {
            return self.finish(slot, Outcome::Stale, out);
        }
        if matches!(verdict, Verdict::Verified { .. }) {
            // Remember it, and pass it to the mesh's other witnesses.
            self.compare(&n.signed_root(), previous.as_ref());
            if self.config.gossip_verified {
                out.push(Output::Gossip(Box::new(n.clone())));
            }
        }
        let report = WitnessReport {
            peer: slot.0.clone(),
            notification: n,
            expected_size: previous.as_ref().map(|p| p.size),
            verdict,
            resynced,
        };
        if let Some(c) = self.checks.get_mut(slot) {
            c.first = None;
        }
        self.finish(slot, Outcome::Report(Box::new(report)), out);
    }
}

/// A finding a race or a lossy link could explain: checked again on the latest root. A
/// proof (two roots of one size, an inconsistent extension) is the mesh's own signed word
/// and is reported at once: a later root could not undo it.
fn raced(f: &Finding) -> bool {
    let proof = matches!(
        f.evidence,
        ConflictEvidence::ConflictingRoots { .. } | ConflictEvidence::InconsistentExtension { .. }
    );
    !proof
        && matches!(
            f.kind,
            DiscrepancyType::RootMismatch | DiscrepancyType::SampleMissing
        )
}

/// A finding on material that travels unsigned beside a gossiped root (its anchor proof)
/// or that says more about the relay than the mesh (how old the copy is).
fn unsigned(f: &Finding) -> bool {
    matches!(
        f.kind,
        DiscrepancyType::AnchorInvalid | DiscrepancyType::TimestampDrift
    )
}

/// Refusals that may pass: the request is sent again.
fn transient(code: &str) -> bool {
    matches!(code, "rate_limited" | "unavailable" | "internal" | "busy")
}

/// Refusals that leave a root the mesh signed unproven (it says it has no such tree or
/// scroll): missing samples, a claim. Every other refusal (policy, a request it found too
/// large or malformed) is no verdict: it says nothing about the mesh's history.
fn withholds(code: &str) -> bool {
    matches!(code, "beyond_tree" | "unknown_scroll" | "not_found")
}

fn answer_kind(a: &Answer) -> &'static str {
    match a {
        Answer::Root(_) => "a root",
        Answer::Evidence(_) => "evidence",
        Answer::Refused { .. } => "a refusal",
        Answer::Failed(_) => "a failure",
    }
}
