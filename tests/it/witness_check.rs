//! The witness's pure checks (DESIGN §7 steps 1–4, `src/witness`) over real scrolls: evidence
//! is served exactly as the node serves it (`serve_evidence` in `src/node/witness.rs`), and
//! every finding's evidence is checked again the way a third party would, with the mesh key.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use vaultmesh_federation::anchor::{AnchorCheck, AnchorTrust, Batch, anchor_local};
use vaultmesh_federation::witness::{
    CheckInput, ConflictEvidence, Consistency, Evidence, EvidenceError, EvidenceRequest, Finding,
    MAX_SAMPLES, Sample, Standing, Verdict, check, choose_samples, serve_evidence,
};
use vm_receipts::documents::{AnchorNotification, DiscrepancyType, SignedRoot};
use vm_receipts::scroll::Scroll;
use vm_receipts::{Blake3Hash, MeshId, MeshKey, PublicKey, ScrollName, Timestamp};

/// The witness's clock: 2025-12-06T10:00:00Z, the seed's first timestamp.
const NOW: i64 = 1_765_015_200;
/// The drift limit (the seed's 5 minutes).
const DRIFT: i64 = 300;
/// When the previous root was signed, and the new one.
const PREV_TS: i64 = NOW - 3600;
const NEW_TS: i64 = NOW - 30;

fn at(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix).expect("time")
}

fn dublin() -> MeshId {
    "did:vm:mesh:dublin".parse().expect("mesh id")
}

fn mesh_key() -> MeshKey {
    MeshKey::from_seed(&[1; 32])
}

fn other_key() -> MeshKey {
    MeshKey::from_seed(&[9; 32])
}

fn compliance() -> ScrollName {
    "Compliance".parse().expect("scroll")
}

fn flipped(hash: &Blake3Hash) -> Blake3Hash {
    let mut bytes = *hash.as_bytes();
    bytes[0] ^= 1;
    Blake3Hash::from_bytes(bytes)
}

/// The `i`-th receipt of a test scroll.
fn receipt(i: u64) -> Map<String, Value> {
    json!({
        "type": "compliance_check",
        "control": format!("AC-{i}"),
        "passed": true,
        "timestamp": at(PREV_TS - 7200 + i64::try_from(i).expect("small")).to_string(),
    })
    .as_object()
    .cloned()
    .expect("an object literal")
}

/// A real scroll of Dublin's in a temporary data dir.
struct Log {
    // Declared before the directory so it is dropped (and checkpointed) first.
    scroll: Scroll,
    _dir: TempDir,
}

impl Log {
    /// `n` receipts, each passed through `edit`.
    fn new(n: u64, edit: impl Fn(u64, &mut Map<String, Value>)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut scroll, report) = Scroll::open(dir.path(), &compliance()).expect("open scroll");
        assert_eq!(report.receipts, 0);
        let receipts: Vec<_> = (0..n)
            .map(|i| {
                let mut r = receipt(i);
                edit(i, &mut r);
                r
            })
            .collect();
        scroll.append_batch(&receipts).expect("append");
        assert_eq!(scroll.len(), n);
        Self { scroll, _dir: dir }
    }

    fn plain(n: u64) -> Self {
        Self::new(n, |_, _| {})
    }

    /// Dublin's signed root of this scroll at `size`, signed at `ts`.
    fn signed(&self, size: u64, ts: i64) -> SignedRoot {
        if size == self.scroll.len() {
            return self
                .scroll
                .sign_root(&mesh_key(), &dublin(), at(ts))
                .expect("sign root");
        }
        SignedRoot::new(
            &mesh_key(),
            dublin(),
            compliance(),
            size,
            self.scroll.root_at(size).expect("root at"),
            at(ts),
        )
        .expect("sign root")
    }

    /// What the node serves for `old → new` and `samples` (`serve_evidence`).
    fn evidence(&self, old: Option<u64>, new: u64, samples: &[u64]) -> Evidence {
        let ask = EvidenceRequest {
            scroll: compliance(),
            old_size: old,
            new_size: new,
            samples: samples.to_vec(),
        };
        serve_evidence(&self.scroll, &ask, usize::MAX).expect("an honest witness's request")
    }
}

/// `root` anchored in a batch of its own, signed locally by `anchor_key`.
fn notify_anchored_by(root: &SignedRoot, anchor_key: &MeshKey) -> AnchorNotification {
    let batch = Batch::new(vec![root.clone()]).expect("batch");
    let anchor = anchor_local(anchor_key, &root.mesh_id, &batch.root(), root.timestamp);
    AnchorNotification::new(root.clone(), batch.proof(0, &anchor).expect("proof"))
}

fn notify(root: &SignedRoot) -> AnchorNotification {
    notify_anchored_by(root, &mesh_key())
}

/// 8 samples of a tree of `size`, the newest first (seeded).
fn samples(size: u64) -> Vec<u64> {
    let chosen = choose_samples(size, 8, &mut ChaCha20Rng::seed_from_u64(size));
    assert_eq!(chosen.first(), Some(&(size - 1)));
    chosen
}

/// One check by a witness holding Dublin's key, at NOW.
struct Run<'a> {
    notification: &'a AnchorNotification,
    pushed: bool,
    previous: Option<&'a SignedRoot>,
    requested: &'a [u64],
    evidence: &'a Evidence,
    schema_version: Option<&'a str>,
}

impl<'a> Run<'a> {
    fn new(
        notification: &'a AnchorNotification,
        previous: Option<&'a SignedRoot>,
        requested: &'a [u64],
        evidence: &'a Evidence,
    ) -> Self {
        Self {
            notification,
            pushed: true,
            previous,
            requested,
            evidence,
            schema_version: None,
        }
    }

    fn pulled(mut self) -> Self {
        self.pushed = false;
        self
    }

    fn schema(mut self, version: &'a str) -> Self {
        self.schema_version = Some(version);
        self
    }

    fn check(&self) -> Verdict {
        let (id, key) = (dublin(), mesh_key().public_key());
        let key_of = move |m: &MeshId| (m == &id).then_some(key);
        let trust = AnchorTrust {
            key_of: &key_of,
            tsa: None,
        };
        check(&CheckInput {
            notification: self.notification,
            pushed: self.pushed,
            previous: self.previous,
            requested: self.requested,
            evidence: self.evidence,
            now: at(NOW),
            drift_secs: DRIFT,
            trust: &trust,
            schema_version: self.schema_version,
        })
    }
}

fn local_anchor(ts: i64) -> AnchorCheck {
    AnchorCheck {
        backend: "local".into(),
        anchored_at: at(ts),
        anchoring_mesh: None,
    }
}

/// The finding of a discrepancy verdict, with the anchor and sample count it reports.
fn discrepancy(verdict: Verdict) -> (Option<AnchorCheck>, u64, Finding) {
    match verdict {
        Verdict::Discrepancy {
            anchor,
            samples_checked,
            finding,
        } => (anchor, samples_checked, *finding),
        other => panic!("expected a discrepancy, got {other:?}"),
    }
}

fn assert_verified(verdict: &Verdict, samples: u64, anchored_at: i64) {
    assert_eq!(
        verdict,
        &Verdict::Verified {
            anchor: local_anchor(anchored_at),
            samples_checked: samples,
        }
    );
}

// ---- Verified and Stale ----

#[test]
fn an_honest_extension_is_verified() {
    let log = Log::plain(25);
    let previous = log.signed(10, PREV_TS);
    let new = log.signed(25, NEW_TS);
    let n = notify(&new);
    let requested = samples(25);
    assert_eq!(requested.len(), 8);
    let evidence = log.evidence(Some(10), 25, &requested);
    assert!(evidence.consistency.is_some());
    let run = Run::new(&n, Some(&previous), &requested, &evidence);
    assert_verified(&run.check(), 8, NEW_TS);
    assert_verified(&run.pulled().check(), 8, NEW_TS);

    // The evidence as it crosses the wire.
    let text = serde_json::to_string(&evidence).expect("json");
    let back: Evidence = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, evidence);

    // Samples served in another order are found by sequence.
    let mut shuffled = evidence.clone();
    shuffled.samples.reverse();
    assert_verified(
        &Run::new(&n, Some(&previous), &requested, &shuffled).check(),
        8,
        NEW_TS,
    );

    // The same root witnessed again: nothing to prove, samples still checked.
    let again = log.evidence(Some(25), 25, &requested);
    assert_verified(
        &Run::new(&n, Some(&new), &requested, &again).check(),
        8,
        NEW_TS,
    );
}

#[test]
fn a_first_witness_is_verified_without_a_consistency_proof() {
    let log = Log::plain(25);
    let n = notify(&log.signed(25, NEW_TS));
    let requested = samples(25);
    let evidence = log.evidence(None, 25, &requested);
    assert!(evidence.consistency.is_none());
    assert_verified(
        &Run::new(&n, None, &requested, &evidence).check(),
        8,
        NEW_TS,
    );
    // With fewer samples, or none, samples_checked counts them.
    for count in [0, 1, 3] {
        let few = &requested[..count];
        let evidence = log.evidence(None, 25, few);
        assert_verified(
            &Run::new(&n, None, few, &evidence).check(),
            u64::try_from(count).expect("small"),
            NEW_TS,
        );
    }
    // A scroll of one receipt: its one sample is the newest, whose root_hash is the root.
    let tiny = Log::plain(1);
    let n = notify(&tiny.signed(1, NEW_TS));
    let evidence = tiny.evidence(None, 1, &[0]);
    assert_verified(&Run::new(&n, None, &[0], &evidence).check(), 1, NEW_TS);
}

#[test]
fn an_older_root_is_stale() {
    let log = Log::plain(25);
    let previous = log.signed(25, NOW - 60);
    let requested = samples(10);
    let evidence = log.evidence(None, 10, &requested);
    for ts in [NOW - 120, NOW - 60] {
        let n = notify(&log.signed(10, ts));
        assert_eq!(
            Run::new(&n, Some(&previous), &requested, &evidence).check(),
            Verdict::Stale,
            "a root of size 10 signed at {ts}"
        );
    }
}

// ---- TimestampDrift ----

#[test]
fn a_root_from_the_future_drifts_pushed_or_pulled() {
    let log = Log::plain(25);
    let requested = samples(25);
    let evidence = log.evidence(None, 25, &requested);
    let new = log.signed(25, NOW + 600);
    let n = notify(&new);
    for run in [
        Run::new(&n, None, &requested, &evidence),
        Run::new(&n, None, &requested, &evidence).pulled(),
    ] {
        let (anchor, checked, finding) = discrepancy(run.check());
        assert_eq!(anchor, None);
        assert_eq!(checked, 0);
        assert_eq!(finding.kind, DiscrepancyType::TimestampDrift);
        assert_eq!(
            finding.evidence,
            ConflictEvidence::TimestampDrift {
                root: new.clone(),
                witness_time: at(NOW),
                limit_secs: DRIFT,
            }
        );
        assert_eq!(
            finding.details.extra.get("root_timestamp"),
            Some(&json!(at(NOW + 600).to_string()))
        );
        assert_eq!(
            finding.details.extra.get("witness_time"),
            Some(&json!(at(NOW).to_string()))
        );
    }
}

#[test]
fn an_old_root_drifts_only_when_pushed() {
    let log = Log::plain(25);
    let requested = samples(25);
    let evidence = log.evidence(None, 25, &requested);
    let n = notify(&log.signed(25, NOW - 600));
    let (_, _, finding) = discrepancy(Run::new(&n, None, &requested, &evidence).check());
    assert_eq!(finding.kind, DiscrepancyType::TimestampDrift);
    assert_verified(
        &Run::new(&n, None, &requested, &evidence).pulled().check(),
        8,
        NOW - 600,
    );
}

#[test]
fn the_drift_limit_is_inclusive() {
    let log = Log::plain(25);
    let requested = samples(25);
    let evidence = log.evidence(None, 25, &requested);
    for (offset, drifts) in [
        (DRIFT, false),
        (DRIFT + 1, true),
        (-DRIFT, false),
        (-DRIFT - 1, true),
    ] {
        let n = notify(&log.signed(25, NOW + offset));
        let verdict = Run::new(&n, None, &requested, &evidence).check();
        let drifted = matches!(&verdict, Verdict::Discrepancy { finding, .. }
            if finding.kind == DiscrepancyType::TimestampDrift);
        assert_eq!(drifted, drifts, "offset {offset}: {verdict:?}");
    }
}

// ---- AnchorInvalid ----

#[test]
fn an_anchor_signed_by_another_key_is_invalid() {
    let log = Log::plain(25);
    let previous = log.signed(10, PREV_TS);
    let new = log.signed(25, NEW_TS);
    let n = notify_anchored_by(&new, &other_key());
    let requested = samples(25);
    let evidence = log.evidence(Some(10), 25, &requested);
    let (anchor, checked, finding) =
        discrepancy(Run::new(&n, Some(&previous), &requested, &evidence).check());
    assert_eq!((anchor, checked), (None, 0));
    assert_eq!(finding.kind, DiscrepancyType::AnchorInvalid);
    assert_eq!(finding.details.claimed_root, Some(new.root));
    let ConflictEvidence::AnchorInvalid {
        notification,
        error,
    } = &finding.evidence
    else {
        panic!("{:?}", finding.evidence)
    };
    assert_eq!(**notification, n);
    assert!(error.contains("signature"), "{error}");
    assert_eq!(
        finding.details.extra.get("error"),
        Some(&json!(error.clone()))
    );
}

// ---- RootMismatch: conflicting signed roots ----

fn conflicting_roots() -> (SignedRoot, SignedRoot, Finding) {
    let log = Log::plain(25);
    let previous = SignedRoot::new(
        &mesh_key(),
        dublin(),
        compliance(),
        25,
        Blake3Hash::digest(b"a fork of the scroll"),
        at(PREV_TS),
    )
    .expect("sign");
    let new = log.signed(25, NEW_TS);
    let n = notify(&new);
    let requested = samples(25);
    let evidence = log.evidence(Some(25), 25, &requested);
    let (anchor, checked, finding) =
        discrepancy(Run::new(&n, Some(&previous), &requested, &evidence).check());
    assert_eq!((anchor, checked), (Some(local_anchor(NEW_TS)), 0));
    (previous, new, finding)
}

#[test]
fn another_root_of_the_same_size_conflicts() {
    let (previous, new, finding) = conflicting_roots();
    assert_eq!(finding.kind, DiscrepancyType::RootMismatch);
    assert_eq!(finding.details.claimed_root, Some(previous.root));
    assert_eq!(finding.details.computed_root, Some(new.root));
    assert_eq!(
        finding.details.extra.get("witnessed_size"),
        Some(&json!(25))
    );
    assert_eq!(finding.details.extra.get("new_size"), Some(&json!(25)));
    assert_eq!(
        finding.evidence,
        ConflictEvidence::ConflictingRoots {
            earlier: previous,
            later: new,
        }
    );
}

/// The mesh served, as its latest root (a pull), a smaller tree than one it signed.
fn truncation() -> (SignedRoot, SignedRoot, Finding) {
    let log = Log::plain(25);
    let previous = log.signed(25, PREV_TS);
    let new = log.signed(10, NEW_TS);
    let n = notify(&new);
    let requested = samples(10);
    let evidence = log.evidence(None, 10, &requested);
    let (anchor, checked, finding) = discrepancy(
        Run::new(&n, Some(&previous), &requested, &evidence)
            .pulled()
            .check(),
    );
    assert_eq!((anchor, checked), (Some(local_anchor(NEW_TS)), 0));
    (previous, new, finding)
}

/// Issue 14: a smaller tree is a truncation claim, never a proof, whatever the timestamps
/// say (an honest mesh whose clock stepped back signs smaller trees later too).
#[test]
fn a_smaller_root_the_mesh_serves_is_a_truncation_claim() {
    let (previous, new, finding) = truncation();
    assert_eq!(finding.kind, DiscrepancyType::RootMismatch);
    assert_eq!(finding.details.claimed_root, Some(previous.root));
    assert_eq!(
        finding.evidence,
        ConflictEvidence::Truncation {
            earlier: previous,
            later: new,
        }
    );
    assert_eq!(finding.evidence.verify(&dublin_key()), Ok(Standing::Claim));
}

/// A pushed root older than the one witnessed is a delayed notification: nothing to attest.
#[test]
fn a_smaller_older_pushed_root_is_stale() {
    let log = Log::plain(25);
    let previous = log.signed(25, NEW_TS);
    let n = notify(&log.signed(10, NEW_TS - 60));
    let requested = samples(10);
    let evidence = log.evidence(None, 10, &requested);
    assert_eq!(
        Run::new(&n, Some(&previous), &requested, &evidence).check(),
        Verdict::Stale
    );
}

/// Dublin signed its scroll at 10 receipts, then rewrote receipt 3 and signed 30.
struct Rewritten {
    honest: Log,
    forged: Log,
    previous: SignedRoot,
    new: SignedRoot,
    finding: Finding,
}

fn rewritten() -> Rewritten {
    let honest = Log::plain(25);
    let forged = Log::new(30, |i, r| {
        if i == 3 {
            r.insert("passed".into(), json!(false));
        }
    });
    assert_eq!(
        honest.scroll.root_at(3).expect("root"),
        forged.scroll.root_at(3).expect("root"),
        "identical before receipt 3"
    );
    assert_ne!(
        honest.scroll.root_at(10).expect("root"),
        forged.scroll.root_at(10).expect("root")
    );
    let previous = honest.signed(10, PREV_TS);
    let new = forged.signed(30, NEW_TS);
    let n = notify(&new);
    let requested = samples(30);
    let evidence = forged.evidence(Some(10), 30, &requested);
    let (anchor, checked, finding) =
        discrepancy(Run::new(&n, Some(&previous), &requested, &evidence).check());
    assert_eq!((anchor, checked), (Some(local_anchor(NEW_TS)), 0));
    Rewritten {
        honest,
        forged,
        previous,
        new,
        finding,
    }
}

#[test]
fn rewritten_history_is_an_inconsistent_extension() {
    let r = rewritten();
    let old_root = r.forged.scroll.root_at(10).expect("root");
    assert_eq!(r.finding.kind, DiscrepancyType::RootMismatch);
    assert_eq!(r.finding.details.claimed_root, Some(r.previous.root));
    assert_eq!(r.finding.details.computed_root, Some(old_root));
    assert_eq!(
        r.finding.details.extra.get("first_divergence_before"),
        Some(&json!(10))
    );
    assert_eq!(
        r.finding.evidence,
        ConflictEvidence::InconsistentExtension {
            earlier: r.previous.clone(),
            later: r.new.clone(),
            old_root,
            proof: r.forged.scroll.prove_consistency(10, 30).expect("proof"),
        }
    );
    // The honest scroll extended to 25 is fine against the same previous root.
    let honest_new = r.honest.signed(25, NEW_TS);
    let requested = samples(25);
    let evidence = r.honest.evidence(Some(10), 25, &requested);
    assert_verified(
        &Run::new(
            &notify(&honest_new),
            Some(&r.previous),
            &requested,
            &evidence,
        )
        .check(),
        8,
        NEW_TS,
    );
}

// ---- RootMismatch: no consistency proof ----

/// The check of Dublin's honest 10 → 25 extension with `evidence` changed by `edit`.
fn without_consistency(edit: impl Fn(&Log, &mut Evidence)) -> (SignedRoot, SignedRoot, Finding) {
    let log = Log::plain(25);
    let previous = log.signed(10, PREV_TS);
    let new = log.signed(25, NEW_TS);
    let n = notify(&new);
    let requested = samples(25);
    let mut evidence = log.evidence(Some(10), 25, &requested);
    edit(&log, &mut evidence);
    let (anchor, checked, finding) =
        discrepancy(Run::new(&n, Some(&previous), &requested, &evidence).check());
    assert_eq!((anchor, checked), (Some(local_anchor(NEW_TS)), 0));
    assert_eq!(finding.kind, DiscrepancyType::RootMismatch);
    assert_eq!(finding.details.claimed_root, Some(previous.root));
    assert_eq!(finding.details.computed_root, None);
    (previous, new, finding)
}

fn assert_no_consistency_proof(
    (previous, new, finding): (SignedRoot, SignedRoot, Finding),
    expected_proof: Option<&vm_receipts::proof::ConsistencyProofJson>,
) {
    let ConflictEvidence::NoConsistencyProof {
        earlier,
        later,
        proof,
        error,
    } = &finding.evidence
    else {
        panic!("{:?}", finding.evidence)
    };
    assert_eq!(earlier, &previous);
    assert_eq!(later, &new);
    assert_eq!(proof.as_ref(), expected_proof);
    assert!(!error.is_empty());
}

#[test]
fn a_missing_consistency_proof_is_a_mismatch() {
    let found = without_consistency(|_, e| e.consistency = None);
    assert_no_consistency_proof(found, None);
}

#[test]
fn a_consistency_proof_for_other_sizes_is_a_mismatch() {
    for (old, new) in [(11, 25), (9, 25), (10, 24), (1, 25)] {
        let log = Log::plain(25);
        let served = Consistency {
            old_root: log.scroll.root_at(old).expect("root"),
            proof: log.scroll.prove_consistency(old, new).expect("proof"),
        };
        let proof = served.proof.clone();
        let found = without_consistency(move |_, e| e.consistency = Some(served.clone()));
        let ConflictEvidence::NoConsistencyProof { error, .. } = &found.2.evidence else {
            panic!("{:?}", found.2.evidence)
        };
        assert!(error.contains(&format!("{old} → {new}")), "{error}");
        assert_no_consistency_proof(found, Some(&proof));
    }
}

#[test]
fn a_consistency_proof_that_does_not_verify_is_a_mismatch() {
    let log = Log::plain(25);
    let proof = log.scroll.prove_consistency(10, 25).expect("proof");
    for h in 0..proof.path.len() {
        let mut bad = proof.clone();
        bad.path[h] = flipped(&bad.path[h]);
        let served = bad.clone();
        let found = without_consistency(move |_, e| {
            e.consistency.as_mut().expect("served").proof = served.clone();
        });
        assert_no_consistency_proof(found, Some(&bad));
    }
    // A made-up old root with the honest path does not verify either: a mesh cannot pass
    // off an invented old root (nor can a witness: see
    // an_inconsistent_extension_the_proof_does_not_support_is_refused).
    let found = without_consistency(|_, e| {
        let c = e.consistency.as_mut().expect("served");
        c.old_root = flipped(&c.old_root);
    });
    assert_no_consistency_proof(found, Some(&proof));
    // A path one hash short.
    let mut short = proof.clone();
    short.path.pop();
    let served = short.clone();
    let found = without_consistency(move |_, e| {
        e.consistency.as_mut().expect("served").proof = served.clone();
    });
    assert_no_consistency_proof(found, Some(&short));
}

// ---- RootMismatch and SampleMissing: samples ----

/// The honest 10 → 25 check with the sample at position `k` of the request changed by
/// `edit`; returns the finding after asserting the counts.
fn with_bad_sample(k: usize, edit: impl Fn(&Log, &mut Sample)) -> (SignedRoot, u64, Finding) {
    let log = Log::plain(25);
    let previous = log.signed(10, PREV_TS);
    let new = log.signed(25, NEW_TS);
    let n = notify(&new);
    let requested = samples(25);
    let mut evidence = log.evidence(Some(10), 25, &requested);
    edit(&log, &mut evidence.samples[k]);
    let (anchor, checked, finding) =
        discrepancy(Run::new(&n, Some(&previous), &requested, &evidence).check());
    assert_eq!(anchor, Some(local_anchor(NEW_TS)));
    assert_eq!(checked, u64::try_from(k).expect("small"));
    assert_eq!(finding.details.sample_receipts_checked, Some(checked + 1));
    assert_eq!(
        finding.details.first_divergence_at,
        Some(format!("receipt-sequence-{}", requested[k]))
    );
    assert_eq!(finding.details.claimed_root, Some(new.root));
    (new, requested[k], finding)
}

fn assert_bad_sample(
    (root, sequence, finding): &(SignedRoot, u64, Finding),
    kind: DiscrepancyType,
    line: Option<&str>,
) {
    assert_eq!(finding.kind, kind);
    let ConflictEvidence::BadSample {
        root: r,
        sequence: s,
        line: l,
        inclusion,
        error,
    } = &finding.evidence
    else {
        panic!("{:?}", finding.evidence)
    };
    assert_eq!((r, s), (root, sequence));
    assert_eq!(l.as_deref(), line);
    assert_eq!(inclusion.is_some(), line.is_some());
    assert_eq!(
        finding.details.extra.get("error"),
        Some(&json!(error.clone()))
    );
}

#[test]
fn a_sample_changed_by_one_byte_is_a_mismatch() {
    for k in [0, 1, 7] {
        let changed = std::cell::RefCell::new(String::new());
        let found = with_bad_sample(k, |_, s| {
            assert!(s.line.contains("\"passed\":true"), "{}", s.line);
            s.line = s.line.replace("\"passed\":true", "\"passed\":false");
            changed.replace(s.line.clone());
        });
        assert_bad_sample(
            &found,
            DiscrepancyType::RootMismatch,
            Some(changed.borrow().as_str()),
        );
    }
}

#[test]
fn a_sample_proven_in_another_tree_is_a_mismatch() {
    // Positions 1.. are below the newest (24), so a smaller tree holds them.
    for k in [1, 4] {
        let found = with_bad_sample(k, |log, s| {
            s.inclusion = log
                .scroll
                .prove_inclusion(s.sequence, s.sequence + 1)
                .expect("inclusion");
        });
        let line = found.2.evidence.clone();
        let ConflictEvidence::BadSample { line: Some(l), .. } = line else {
            panic!("{line:?}")
        };
        assert_bad_sample(&found, DiscrepancyType::RootMismatch, Some(&l));
    }
    // Another receipt's line and proof in place of the one asked for.
    let found = with_bad_sample(2, |log, s| {
        let other = if s.sequence == 0 { 1 } else { s.sequence - 1 };
        s.line = String::from_utf8(log.scroll.read_line(other).expect("line")).expect("utf-8");
        s.inclusion = log.scroll.prove_inclusion(other, 25).expect("inclusion");
    });
    assert_eq!(found.2.kind, DiscrepancyType::RootMismatch);
}

#[test]
fn a_newest_receipt_that_does_not_name_the_signed_root_is_a_mismatch() {
    // Position 0 is the newest receipt (24): its root_hash must be the signed root.
    let found = with_bad_sample(0, |log, s| {
        let real = log.scroll.root().to_string();
        let fake = flipped(&log.scroll.root()).to_string();
        assert!(s.line.contains(&real));
        s.line = s.line.replace(&real, &fake);
    });
    assert_eq!(found.1, 24);
    assert_eq!(found.2.kind, DiscrepancyType::RootMismatch);
    // Lines that are not receipts.
    for garbage in ["not json", "[1,2]", "{\"type\":\"x\"}"] {
        let found = with_bad_sample(3, |_, s| s.line = garbage.into());
        assert_bad_sample(&found, DiscrepancyType::RootMismatch, Some(garbage));
    }
}

#[test]
fn a_requested_sample_that_is_not_served_is_missing() {
    for k in [0, 5] {
        let log = Log::plain(25);
        let previous = log.signed(10, PREV_TS);
        let new = log.signed(25, NEW_TS);
        let n = notify(&new);
        let requested = samples(25);
        let mut evidence = log.evidence(Some(10), 25, &requested);
        evidence.samples.remove(k);
        let (anchor, checked, finding) =
            discrepancy(Run::new(&n, Some(&previous), &requested, &evidence).check());
        assert_eq!(anchor, Some(local_anchor(NEW_TS)));
        assert_eq!(checked, u64::try_from(k).expect("small"));
        assert_eq!(
            finding.details.first_divergence_at,
            Some(format!("receipt-sequence-{}", requested[k]))
        );
        assert_bad_sample(
            &(new, requested[k], finding),
            DiscrepancyType::SampleMissing,
            None,
        );
    }
}

// ---- SchemaIncompatible ----

/// Receipts at version 2.1.0, except receipt 7 at `seventh`.
fn versioned(seventh: &'static str) -> Log {
    Log::new(25, move |i, r| {
        let v = if i == 7 { seventh } else { "2.1.0" };
        r.insert("schema_version".into(), json!(v));
    })
}

#[test]
fn a_sampled_receipt_of_another_major_version_is_incompatible() {
    let log = versioned("1.4.0");
    let new = log.signed(25, NEW_TS);
    let n = notify(&new);
    let requested = [24, 3, 7, 12];
    let evidence = log.evidence(None, 25, &requested);
    let (anchor, checked, finding) = discrepancy(
        Run::new(&n, None, &requested, &evidence)
            .schema("2.0.0")
            .check(),
    );
    assert_eq!(anchor, Some(local_anchor(NEW_TS)));
    assert_eq!(checked, 3);
    assert_eq!(finding.kind, DiscrepancyType::SchemaIncompatible);
    assert_eq!(finding.details.sample_receipts_checked, Some(3));
    assert_eq!(
        finding.details.first_divergence_at.as_deref(),
        Some("receipt-sequence-7")
    );
    assert_eq!(
        finding.details.extra.get("found_version"),
        Some(&json!("1.4.0"))
    );
    assert_eq!(
        finding.evidence,
        ConflictEvidence::SchemaIncompatible {
            root: new,
            sequence: 7,
            agreed: "2.0.0".into(),
            found: "1.4.0".into(),
        }
    );
    // Without an agreed version nothing is compared; unsampled receipts are not looked at.
    assert_verified(
        &Run::new(&n, None, &requested, &evidence).check(),
        4,
        NEW_TS,
    );
    let unsampled = [24, 3, 12];
    let evidence = log.evidence(None, 25, &unsampled);
    assert_verified(
        &Run::new(&n, None, &unsampled, &evidence)
            .schema("2.0.0")
            .check(),
        3,
        NEW_TS,
    );
}

#[test]
fn a_minor_version_difference_is_compatible() {
    let log = versioned("2.1.0");
    let n = notify(&log.signed(25, NEW_TS));
    let requested = [24, 3, 7, 12];
    let evidence = log.evidence(None, 25, &requested);
    assert_verified(
        &Run::new(&n, None, &requested, &evidence)
            .schema("2.0.0")
            .check(),
        4,
        NEW_TS,
    );
}

// ---- choose_samples and EvidenceRequest ----

#[test]
fn chosen_samples_hold_the_newest_and_distinct_others() {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    for size in [2u64, 9, 25, 64, 65, 100, 1_000, 1 << 40] {
        for count in [1usize, 2, 8, 64, 65, 500] {
            let chosen = choose_samples(size, count, &mut rng);
            let expected = count
                .min(MAX_SAMPLES)
                .min(usize::try_from(size).unwrap_or(usize::MAX));
            assert_eq!(chosen.len(), expected, "size {size} count {count}");
            assert!(chosen.contains(&(size - 1)), "size {size} count {count}");
            assert!(chosen.iter().all(|s| *s < size));
            let mut sorted = chosen.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), chosen.len(), "distinct: {chosen:?}");
        }
    }
}

#[test]
fn small_trees_are_sampled_whole_and_empty_ones_not_at_all() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for size in 1u64..=8 {
        let mut chosen = choose_samples(size, 8, &mut rng);
        assert_eq!(chosen.first(), Some(&(size - 1)));
        chosen.sort_unstable();
        assert_eq!(chosen, (0..size).collect::<Vec<_>>());
    }
    assert_eq!(choose_samples(0, 8, &mut rng), Vec::<u64>::new());
    assert_eq!(choose_samples(10, 0, &mut rng), Vec::<u64>::new());
}

#[test]
fn chosen_samples_are_deterministic_for_a_seed() {
    let a = choose_samples(10_000, 16, &mut ChaCha20Rng::seed_from_u64(7));
    let b = choose_samples(10_000, 16, &mut ChaCha20Rng::seed_from_u64(7));
    let c = choose_samples(10_000, 16, &mut ChaCha20Rng::seed_from_u64(8));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn an_evidence_request_no_honest_witness_makes_is_refused() {
    let ask = |old: Option<u64>, new: u64, samples: Vec<u64>| EvidenceRequest {
        scroll: compliance(),
        old_size: old,
        new_size: new,
        samples,
    };
    assert_eq!(
        ask(Some(10), 25, (0..25).step_by(3).collect()).check(),
        Ok(())
    );
    assert_eq!(ask(None, 0, Vec::new()).check(), Ok(()));
    assert_eq!(ask(Some(25), 25, vec![24]).check(), Ok(()));
    let max = u64::try_from(MAX_SAMPLES).expect("small");
    assert_eq!(ask(None, 1_000, (0..max).collect()).check(), Ok(()));
    assert!(ask(None, 1_000, (0..=max).collect()).check().is_err());
    assert!(ask(None, 25, vec![3, 25]).check().is_err());
    assert!(ask(None, 0, vec![0]).check().is_err());
    assert!(ask(Some(26), 25, vec![24]).check().is_err());
    // Unknown fields are refused on the wire.
    let text = r#"{"scroll":"Compliance","new_size":3,"samples":[2],"extra":1}"#;
    assert!(serde_json::from_str::<EvidenceRequest>(text).is_err());
    let text = r#"{"scroll":"Compliance","new_size":3,"samples":[2]}"#;
    assert_eq!(
        serde_json::from_str::<EvidenceRequest>(text).expect("parse"),
        ask(None, 3, vec![2])
    );
}

// ---- ConflictEvidence: what a third party checks ----

/// The evidence of every kind of finding, as `check` produced it.
fn every_finding() -> Vec<ConflictEvidence> {
    let drift = {
        let log = Log::plain(5);
        let n = notify(&log.signed(5, NOW + 600));
        let evidence = log.evidence(None, 5, &[4]);
        discrepancy(Run::new(&n, None, &[4], &evidence).check()).2
    };
    let anchor_invalid = {
        let log = Log::plain(5);
        let n = notify_anchored_by(&log.signed(5, NEW_TS), &other_key());
        let evidence = log.evidence(None, 5, &[4]);
        discrepancy(Run::new(&n, None, &[4], &evidence).check()).2
    };
    let schema = {
        let log = versioned("1.4.0");
        let n = notify(&log.signed(25, NEW_TS));
        let evidence = log.evidence(None, 25, &[7]);
        discrepancy(Run::new(&n, None, &[7], &evidence).schema("2.0.0").check()).2
    };
    let bad_sample = with_bad_sample(1, |_, s| {
        s.line = s.line.replace("\"passed\":true", "\"passed\":false");
    })
    .2;
    let missing = with_bad_sample(1, |_, s| s.sequence = 1_000).2;
    assert_eq!(missing.kind, DiscrepancyType::SampleMissing);
    let found: Vec<ConflictEvidence> = [
        conflicting_roots().2,
        truncation().2,
        rewritten().finding,
        without_consistency(|_, e| e.consistency = None).2,
        without_consistency(|_, e| {
            let c = e.consistency.as_mut().expect("served");
            c.proof.path[0] = flipped(&c.proof.path[0]);
        })
        .2,
        bad_sample,
        missing,
        schema,
        anchor_invalid,
        drift,
    ]
    .into_iter()
    .map(|f| f.evidence)
    .collect();
    let kinds: Vec<&str> = found.iter().map(ConflictEvidence::kind).collect();
    assert_eq!(
        kinds,
        [
            "conflicting_roots",
            "truncation",
            "inconsistent_extension",
            "no_consistency_proof",
            "no_consistency_proof",
            "bad_sample",
            "bad_sample",
            "schema_incompatible",
            "anchor_invalid",
            "timestamp_drift",
        ]
    );
    found
}

fn dublin_key() -> PublicKey {
    mesh_key().public_key()
}

#[test]
fn every_finding_s_evidence_verifies_with_the_mesh_key() {
    for evidence in every_finding() {
        let expected = match evidence.kind() {
            "conflicting_roots" | "inconsistent_extension" => Standing::Proof,
            _ => Standing::Claim,
        };
        assert_eq!(
            evidence.verify(&dublin_key()),
            Ok(expected),
            "{}",
            evidence.kind()
        );
        // With another mesh's key, none of it holds.
        assert!(
            matches!(
                evidence.verify(&other_key().public_key()),
                Err(EvidenceError::Signature(_))
            ),
            "{}",
            evidence.kind()
        );
    }
}

#[test]
fn every_kind_of_evidence_survives_a_json_round_trip() {
    for evidence in every_finding() {
        let text = serde_json::to_string(&evidence).expect("json");
        let value: Value = serde_json::from_str(&text).expect("json value");
        assert_eq!(value["kind"], json!(evidence.kind()), "{text}");
        let back: ConflictEvidence = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, evidence, "{text}");
        assert_eq!(back.verify(&dublin_key()), evidence.verify(&dublin_key()));
    }
}

/// A root of Dublin's Compliance scroll signed by `key`.
fn root_by(key: &MeshKey, size: u64, root: &[u8], ts: i64) -> SignedRoot {
    SignedRoot::new(
        key,
        dublin(),
        compliance(),
        size,
        Blake3Hash::digest(root),
        at(ts),
    )
    .expect("sign")
}

#[test]
fn evidence_signed_by_another_key_is_refused() {
    let k = mesh_key();
    let stranger = other_key();
    let cases = [
        ConflictEvidence::ConflictingRoots {
            earlier: root_by(&k, 25, b"a", PREV_TS),
            later: root_by(&stranger, 25, b"b", NEW_TS),
        },
        ConflictEvidence::ConflictingRoots {
            earlier: root_by(&stranger, 25, b"a", PREV_TS),
            later: root_by(&k, 25, b"b", NEW_TS),
        },
        ConflictEvidence::Rollback {
            earlier: root_by(&k, 25, b"a", PREV_TS),
            later: root_by(&stranger, 10, b"b", NEW_TS),
        },
        ConflictEvidence::TimestampDrift {
            root: root_by(&stranger, 25, b"a", NOW + 600),
            witness_time: at(NOW),
            limit_secs: DRIFT,
        },
    ];
    for evidence in cases {
        assert!(
            matches!(
                evidence.verify(&dublin_key()),
                Err(EvidenceError::Signature(_))
            ),
            "{evidence:?}"
        );
    }
    // A root whose fields were changed after signing.
    let (previous, mut new, _) = conflicting_roots();
    new.size = 26;
    new.root = flipped(&new.root);
    let evidence = ConflictEvidence::ConflictingRoots {
        earlier: previous,
        later: new,
    };
    assert!(matches!(
        evidence.verify(&dublin_key()),
        Err(EvidenceError::Signature(_))
    ));
}

#[test]
fn conflicting_roots_that_do_not_conflict_are_refused() {
    let k = mesh_key();
    let same = ConflictEvidence::ConflictingRoots {
        earlier: root_by(&k, 25, b"a", PREV_TS),
        later: root_by(&k, 25, b"a", NEW_TS),
    };
    assert!(matches!(
        same.verify(&dublin_key()),
        Err(EvidenceError::NoConflict(_))
    ));
    let sizes = ConflictEvidence::ConflictingRoots {
        earlier: root_by(&k, 25, b"a", PREV_TS),
        later: root_by(&k, 26, b"b", NEW_TS),
    };
    assert!(matches!(
        sizes.verify(&dublin_key()),
        Err(EvidenceError::NoConflict(_))
    ));
}

/// A truncation (or a rollback recorded before issue 14) whose later root is not smaller is
/// no conflict; a smaller one is a claim whatever its timestamp, never a proof.
#[test]
fn a_truncation_is_a_claim_and_one_that_is_not_smaller_is_refused() {
    let (previous, new, _) = truncation();
    let k = mesh_key();
    for make in [
        |earlier, later| ConflictEvidence::Truncation { earlier, later },
        |earlier, later| ConflictEvidence::Rollback { earlier, later },
    ] {
        // Swapped: the "later" one is the larger root.
        let swapped = make(new.clone(), previous.clone());
        assert!(matches!(
            swapped.verify(&dublin_key()),
            Err(EvidenceError::NoConflict(_))
        ));
        for later_size in [25, 30] {
            let evidence = make(previous.clone(), root_by(&k, later_size, b"later", NEW_TS));
            assert!(
                matches!(
                    evidence.verify(&dublin_key()),
                    Err(EvidenceError::NoConflict(_))
                ),
                "later size {later_size}"
            );
        }
        // Smaller, signed later or earlier: a claim either way.
        for later_ts in [NEW_TS, PREV_TS - 1] {
            let evidence = make(previous.clone(), root_by(&k, 10, b"later", later_ts));
            assert_eq!(evidence.verify(&dublin_key()), Ok(Standing::Claim));
        }
    }
}

#[test]
fn an_inconsistent_extension_the_proof_does_not_support_is_refused() {
    let r = rewritten();
    let ConflictEvidence::InconsistentExtension {
        earlier,
        later,
        old_root,
        proof,
    } = r.finding.evidence.clone()
    else {
        panic!("{:?}", r.finding.evidence)
    };
    let forge = |old_root: Blake3Hash, proof: vm_receipts::proof::ConsistencyProofJson| {
        ConflictEvidence::InconsistentExtension {
            earlier: earlier.clone(),
            later: later.clone(),
            old_root,
            proof,
        }
        .verify(&dublin_key())
    };
    assert_eq!(forge(old_root, proof.clone()), Ok(Standing::Proof));
    // The old root replaced by the root the mesh signed: no conflict to show.
    assert!(matches!(
        forge(earlier.root, proof.clone()),
        Err(EvidenceError::NoConflict(_))
    ));
    // Any other old root does not lead to the later signed root.
    assert!(matches!(
        forge(flipped(&old_root), proof.clone()),
        Err(EvidenceError::NoConflict(_))
    ));
    // A proof path altered anywhere.
    for h in 0..proof.path.len() {
        let mut bad = proof.clone();
        bad.path[h] = flipped(&bad.path[h]);
        assert!(
            matches!(forge(old_root, bad), Err(EvidenceError::NoConflict(_))),
            "path hash {h}"
        );
    }
    let mut short = proof.clone();
    short.path.pop();
    assert!(matches!(
        forge(old_root, short),
        Err(EvidenceError::NoConflict(_))
    ));
    // A proof for other sizes.
    let other_sizes = r.forged.scroll.prove_consistency(11, 30).expect("proof");
    let old_11 = r.forged.scroll.root_at(11).expect("root");
    assert!(matches!(
        forge(old_11, other_sizes),
        Err(EvidenceError::NoConflict(_))
    ));
    // The honest scroll's own consistency proof with its own old root: nothing conflicts
    // (it leads to the honest root, not the forged later one).
    let honest_proof = r.honest.scroll.prove_consistency(10, 25).expect("proof");
    assert!(matches!(
        forge(r.honest.scroll.root_at(10).expect("root"), honest_proof),
        Err(EvidenceError::NoConflict(_))
    ));
}

#[test]
fn roots_of_two_scrolls_or_meshes_are_mixed() {
    let k = mesh_key();
    let drills = SignedRoot::new(
        &k,
        dublin(),
        "Drills".parse().expect("scroll"),
        25,
        Blake3Hash::digest(b"b"),
        at(NEW_TS),
    )
    .expect("sign");
    let berlin = SignedRoot::new(
        &k,
        "did:vm:mesh:berlin".parse().expect("mesh"),
        compliance(),
        25,
        Blake3Hash::digest(b"b"),
        at(NEW_TS),
    )
    .expect("sign");
    let compliance_root = root_by(&k, 25, b"a", PREV_TS);
    for other in [drills, berlin] {
        let conflicting = ConflictEvidence::ConflictingRoots {
            earlier: compliance_root.clone(),
            later: other.clone(),
        };
        assert_eq!(conflicting.verify(&dublin_key()), Err(EvidenceError::Mixed));
        let mut smaller = other.clone();
        smaller.size = 10;
        smaller.signature = SignedRoot::new(
            &k,
            smaller.mesh_id.clone(),
            smaller.scroll.clone(),
            10,
            smaller.root,
            smaller.timestamp,
        )
        .expect("sign")
        .signature;
        let rollback = ConflictEvidence::Rollback {
            earlier: compliance_root.clone(),
            later: smaller,
        };
        assert_eq!(rollback.verify(&dublin_key()), Err(EvidenceError::Mixed));
        let claim = ConflictEvidence::NoConsistencyProof {
            earlier: compliance_root.clone(),
            later: other,
            proof: None,
            error: "none".into(),
        };
        assert_eq!(claim.verify(&dublin_key()), Err(EvidenceError::Mixed));
    }
}

#[test]
fn samples_with_fractions_exponents_and_unicode_are_recomputed_exactly() {
    // Receipts written by other engines may hold any JSON: the witness recomputes the leaf
    // from the served line, so its canonical form must be the scroll's byte for byte.
    let log = Log::new(25, |i, r| {
        r.insert(
            "score".into(),
            json!(0.1 * f64::from(u32::try_from(i).expect("small"))),
        );
        r.insert("large".into(), json!(1e21));
        r.insert("tiny".into(), json!(-5e-7));
        r.insert("max_safe".into(), json!(9_007_199_254_740_991_i64));
        r.insert(
            "note".into(),
            json!("é \u{2028} \u{1F600} \"quoted\" \\ \n\t\u{7f}\u{1}"),
        );
        r.insert(
            "nested".into(),
            json!({"b": [1, 2.5, null, true], "a": {"\u{e9}": "", "e": 1}}),
        );
    });
    let previous = log.signed(10, PREV_TS);
    let n = notify(&log.signed(25, NEW_TS));
    let requested: Vec<u64> = (0..25).rev().collect();
    let evidence = log.evidence(Some(10), 25, &requested);
    assert_verified(
        &Run::new(&n, Some(&previous), &requested, &evidence).check(),
        25,
        NEW_TS,
    );
}

fn signed(size: u64, root: &[u8], ts: i64) -> SignedRoot {
    SignedRoot::new(
        &mesh_key(),
        dublin(),
        compliance(),
        size,
        Blake3Hash::digest(root),
        at(ts),
    )
    .expect("signed")
}

/// Split views are caught by comparing what witnesses saw: two roots of one size prove it
/// with the mesh's signatures alone. Roots of different sizes are never a conflict on their
/// own, whatever their timestamps (issue 14: a clock step back signs a larger tree with an
/// earlier timestamp, and was recorded as a proven rollback).
#[test]
fn compare_roots_proves_split_views_and_nothing_else() {
    use vaultmesh_federation::witness::compare_roots;
    let key = mesh_key().public_key();
    let a = signed(10, b"a", NOW - 100);
    let b = signed(10, b"b", NOW - 90);
    let f = compare_roots(&a, &b).expect("a split view");
    assert_eq!(f.kind, DiscrepancyType::RootMismatch);
    assert!(matches!(
        f.evidence,
        ConflictEvidence::ConflictingRoots { .. }
    ));
    assert_eq!(f.evidence.verify(&key), Ok(Standing::Proof));

    // Smaller and signed later, in either order of learning: a clock step or a truncation,
    // which only the mesh's consistency proofs can tell apart.
    let small_later = signed(7, b"c", NOW - 10);
    for (held, other) in [(&a, &small_later), (&small_later, &a)] {
        assert!(compare_roots(held, other).is_none(), "{held:?} {other:?}");
    }

    // What an honest log produces: the same root signed again, growth, an older smaller root.
    let again = signed(10, b"a", NOW - 50);
    let grown = signed(12, b"d", NOW - 40);
    let older_smaller = signed(7, b"c", NOW - 200);
    for other in [&again, &grown, &older_smaller] {
        assert!(compare_roots(&a, other).is_none(), "{other:?}");
    }
    // Another scroll or mesh is never compared.
    let mut elsewhere = b.clone();
    elsewhere.scroll = "Drills".parse().expect("scroll");
    assert!(compare_roots(&a, &elsewhere).is_none());
}
