//! Step 5 of the witness cycle in the engine (DESIGN §7): a verdict becomes a compare-and-
//! swap on the witness state, a signed attestation and `fed_witness_event` on both sides; a
//! finding becomes a discrepancy record, a signed report with its evidence and
//! `fed_discrepancy` on both sides; cross-anchors need level 3 and a witnessed root. Every
//! refusal changes nothing (the whole state is compared).

use vaultmesh_federation::anchor::{AnchorCheck, Batch, anchor_local};
use vaultmesh_federation::engine::{
    Command, CrossAnchored, EngineError, Input, PeerMessage, WitnessReport,
};
use vaultmesh_federation::witness::{ConflictEvidence, Finding, Verdict};
use vm_receipts::documents::{
    AnchorNotification, DiscrepancyDetails, DiscrepancyType, SignedRoot, TrustLevel,
    VerificationFrequency, WitnessResult,
};
use vm_receipts::receipts::FederationReceipt;
use vm_receipts::{Blake3Hash, MeshKey, ScrollName};
use vm_storage::{DiscrepancyRecord, ReceivedAttestation, WitnessState};

use crate::engine::{r, terms};
use crate::net::{Net, mesh};

pub(crate) const DUBLIN: &str = "vaultmesh-dublin";
pub(crate) const BERLIN: &str = "vaultmesh-berlin";
pub(crate) const SINGAPORE: &str = "vaultmesh-singapore";

pub(crate) fn compliance() -> ScrollName {
    "Compliance".parse().expect("scroll")
}

/// Dublin and Berlin federated at `level` over Compliance; Singapore known to both, not
/// federated.
pub(crate) fn net(level: TrustLevel) -> Net {
    federated(Net::new(&[DUBLIN, BERLIN, SINGAPORE], false), level)
}

/// `net` (Dublin, Berlin, Singapore) with Dublin and Berlin federated at `level` over
/// Compliance.
pub(crate) fn federated(mut net: Net, level: TrustLevel) -> Net {
    net.discover_all();
    federate(&mut net, DUBLIN, BERLIN, level);
    net
}

/// `proposer` proposes to `target` at `level` over Compliance; `target` accepts.
pub(crate) fn federate(net: &mut Net, proposer: &str, target: &str, level: TrustLevel) {
    net.command(
        proposer,
        Command::Propose {
            target: mesh(target),
            trust_level: level,
            terms: terms(&["Compliance"], VerificationFrequency::HOURLY),
        },
    )
    .expect("propose");
    net.run();
    let id = net
        .node(target)
        .proposals()
        .into_iter()
        .rev()
        .find(|p| p.proposal.proposer == mesh(proposer))
        .expect("the proposal")
        .proposal
        .proposal_id;
    net.command(target, Command::Accept { proposal: r(&id) })
        .expect("accept");
    net.run();
}

/// Dublin's signed root of `scroll` at `size`, anchored alone in a local batch.
pub(crate) fn notification(net: &Net, key: &MeshKey, size: u64, root: &str) -> AnchorNotification {
    let signed = SignedRoot::new(
        key,
        mesh(DUBLIN),
        compliance(),
        size,
        Blake3Hash::digest(root.as_bytes()),
        net.now,
    )
    .expect("sign");
    let batch = Batch::new(vec![signed.clone()]).expect("batch");
    let anchor = anchor_local(key, &mesh(DUBLIN), &batch.root(), net.now);
    AnchorNotification::new(signed, batch.proof(0, &anchor).expect("proof"))
}

pub(crate) fn verified() -> Verdict {
    Verdict::Verified {
        anchor: AnchorCheck {
            backend: "local".into(),
            anchored_at: vm_receipts::Timestamp::EPOCH,
            anchoring_mesh: None,
        },
        samples_checked: 8,
    }
}

pub(crate) fn report(n: &AnchorNotification, expected: Option<u64>, verdict: Verdict) -> Input {
    Input::Witnessed(Box::new(WitnessReport {
        peer: mesh(DUBLIN),
        notification: n.clone(),
        expected_size: expected,
        verdict,
        resynced: false,
    }))
}

fn state(net: &Net, on: &str) -> Option<WitnessState> {
    net.node(on)
        .store()
        .get::<WitnessState>(&vm_storage::records::witness_key(
            &mesh(DUBLIN),
            &compliance(),
        ))
        .expect("read")
}

fn witness_events(net: &Net, on: &str) -> Vec<(String, String, u64, WitnessResult)> {
    net.node(on)
        .receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::WitnessEvent(w) => Some((
                w.witnessing_mesh.to_string(),
                w.witnessed_mesh.to_string(),
                w.witnessed_size.unwrap_or(0),
                w.verification_result,
            )),
            _ => None,
        })
        .collect()
}

/// Applies `input` to `on` and asserts it is refused without any change.
pub(crate) fn refused(net: &mut Net, on: &str, input: Input) -> EngineError {
    let i = net.idx(on);
    let before = net.nodes[i].snapshot();
    let result = net.apply(i, input);
    assert_eq!(
        net.nodes[i].snapshot(),
        before,
        "a refused input changed state"
    );
    result.expect_err("must be refused")
}

#[test]
fn a_verified_root_is_attested_and_recorded_on_both_sides() {
    let mut net = net(TrustLevel::VERIFY);
    let key = net.node(DUBLIN).key.clone();
    let n = notification(&net, &key, 5, "five");
    let b = net.idx(BERLIN);
    net.apply(b, report(&n, None, verified()))
        .expect("witnessed");
    let s = state(&net, BERLIN).expect("state stored");
    assert_eq!(s.latest, n.signed_root());
    assert_eq!(s.result, WitnessResult::Verified);
    // The attestation is in Berlin's outgoing table before it is delivered.
    net.run();
    let event = (
        mesh(BERLIN).to_string(),
        mesh(DUBLIN).to_string(),
        5,
        WitnessResult::Verified,
    );
    assert_eq!(witness_events(&net, BERLIN), vec![event.clone()]);
    assert_eq!(witness_events(&net, DUBLIN), vec![event]);
    let attested: Vec<ReceivedAttestation> = net.node(DUBLIN).store().all().expect("read");
    assert_eq!(attested.len(), 1);
    let a = &attested[0].attestation;
    assert_eq!((a.witnessed_size, a.witnessed_root), (5, n.root));
    assert_eq!(a.extra["samples_checked"], 8);

    // The same attestation again is acknowledged and appends nothing.
    let again = refused(
        &mut net,
        DUBLIN,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Attestation(a.clone()),
        },
    );
    assert!(again.is_acknowledgement(), "{again}");
    // An attestation Berlin did not sign, or that Singapore claims as its own, is refused.
    let mut forged = a.clone();
    forged.witnessed_size = 6;
    let e = refused(
        &mut net,
        DUBLIN,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Attestation(forged),
        },
    );
    assert_eq!(e.code(), "bad_signature", "{e}");
    let e = refused(
        &mut net,
        DUBLIN,
        Input::Peer {
            from: mesh(SINGAPORE),
            message: PeerMessage::Attestation(a.clone()),
        },
    );
    assert_eq!(e.code(), "sender_mismatch", "{e}");
    // Attestations about Berlin's own scroll are not for Berlin to receive from itself.
    let e = refused(
        &mut net,
        SINGAPORE,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Attestation(a.clone()),
        },
    );
    assert_eq!(e.code(), "not_for_us", "{e}");
}

#[test]
fn witness_state_is_a_compare_and_swap_that_never_moves_backwards() {
    let mut net = net(TrustLevel::VERIFY);
    let key = net.node(DUBLIN).key.clone();
    let five = notification(&net, &key, 5, "five");
    // A check made against a state that is not the stored one is stale.
    let e = refused(&mut net, BERLIN, report(&five, Some(3), verified()));
    assert_eq!(e.code(), "stale", "{e}");
    let b = net.idx(BERLIN);
    net.apply(b, report(&five, None, verified()))
        .expect("first");
    // Two checks raced from the same state: the second is stale.
    let e = refused(&mut net, BERLIN, report(&five, None, verified()));
    assert_eq!(e.code(), "stale", "{e}");
    // A smaller root checked against the stored one is refused: the state never shrinks.
    let three = notification(&net, &key, 3, "three");
    let e = refused(&mut net, BERLIN, report(&three, Some(5), verified()));
    assert_eq!(e.code(), "stale", "{e}");
    // A verifier bug that passes another root of the same size is still caught by the
    // compare-and-swap: recorded as a discrepancy with both signed roots as evidence.
    let other = notification(&net, &key, 5, "other five");
    net.apply(b, report(&other, Some(5), verified()))
        .expect("recorded");
    let s = state(&net, BERLIN).expect("state");
    assert_eq!(s.latest, five.signed_root(), "the last good root is kept");
    assert_eq!(s.result, WitnessResult::Discrepancy);
    let records: Vec<DiscrepancyRecord> = net.node(BERLIN).store().all().expect("read");
    assert_eq!(records.len(), 1);
    let evidence: ConflictEvidence =
        serde_json::from_value(records[0].evidence[0].clone()).expect("evidence");
    assert!(
        matches!(&evidence, ConflictEvidence::ConflictingRoots { earlier, later }
            if *earlier == five.signed_root() && *later == other.signed_root()),
        "{evidence:?}"
    );
    assert_eq!(
        evidence.verify(&key.public_key()),
        Ok(vaultmesh_federation::witness::Standing::Proof)
    );
}

/// Berlin witnesses Dublin's Compliance at size 5, then is served another root at size 5:
/// a `root_mismatch` with `conflicting_roots` evidence (a proof), recorded on Berlin's side,
/// its report to Dublin still in flight.
pub(crate) fn find_conflict(net: &mut Net) {
    let key = net.node(DUBLIN).key.clone();
    let five = notification(net, &key, 5, "five");
    let b = net.idx(BERLIN);
    net.apply(b, report(&five, None, verified()))
        .expect("first");
    net.run();
    let rewritten = notification(net, &key, 5, "rewritten");
    let finding = Finding {
        kind: DiscrepancyType::RootMismatch,
        details: DiscrepancyDetails {
            scroll: compliance(),
            claimed_root: Some(five.root),
            computed_root: Some(rewritten.root),
            sample_receipts_checked: None,
            first_divergence_at: None,
            extra: Default::default(),
        },
        evidence: ConflictEvidence::ConflictingRoots {
            earlier: five.signed_root(),
            later: rewritten.signed_root(),
        },
    };
    let verdict = Verdict::Discrepancy {
        anchor: None,
        samples_checked: 0,
        finding: Box::new(finding),
    };
    net.apply(
        b,
        Input::Witnessed(Box::new(WitnessReport {
            peer: mesh(DUBLIN),
            notification: rewritten.clone(),
            expected_size: Some(5),
            verdict,
            resynced: true,
        })),
    )
    .expect("recorded");
}

#[test]
fn a_finding_is_recorded_reported_with_its_evidence_and_received() {
    let mut net = net(TrustLevel::VERIFY);
    find_conflict(&mut net);
    // Capture the report in flight, to replay it with other evidence below.
    let in_flight = net
        .queue
        .iter()
        .find_map(|e| match &e.message {
            PeerMessage::Discrepancy { report, evidence } => {
                Some((report.clone(), evidence.clone()))
            }
            _ => None,
        })
        .expect("a report is on its way to Dublin");
    net.run();
    for on in [BERLIN, DUBLIN] {
        let records: Vec<DiscrepancyRecord> = net.node(on).store().all().expect("read");
        assert_eq!(records.len(), 1, "{on}");
        let body = &records[0].report.body;
        assert_eq!(body.discrepancy_type, DiscrepancyType::RootMismatch);
        assert_eq!(body.reporting_mesh, mesh(BERLIN));
        assert_eq!(
            body.details.extra["resync"]
                .as_str()
                .map(|s| s.contains("re-fetching")),
            Some(true)
        );
        let receipts: Vec<_> = net
            .node(on)
            .receipts()
            .into_iter()
            .filter_map(|r| match r {
                FederationReceipt::Discrepancy(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(receipts.len(), 1, "{on}: one fed_discrepancy");
        assert_eq!(receipts[0].body.evidence_hash, body.evidence_hash);
    }
    assert_eq!(
        witness_events(&net, DUBLIN).last().map(|e| e.3),
        Some(WitnessResult::Discrepancy)
    );
    // The same report again is acknowledged; with evidence that is not what it hashed,
    // refused.
    let (report_doc, evidence) = in_flight;
    let e = refused(
        &mut net,
        DUBLIN,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Discrepancy {
                report: report_doc.clone(),
                evidence: evidence.clone(),
            },
        },
    );
    assert!(e.is_acknowledgement(), "{e}");
    let mut other = evidence;
    other["kind"] = "rollback".into();
    // A fresh report, properly signed by Berlin, whose evidence is not what it hashed.
    let mut fresh = report_doc;
    fresh.body.discrepancy_id = "discrepancy-2099-01-01-1".parse().expect("id");
    vm_receipts::documents::SignedDocument::sign(&mut *fresh, &net.node(BERLIN).key).expect("sign");
    let e = refused(
        &mut net,
        DUBLIN,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Discrepancy {
                report: fresh,
                evidence: other,
            },
        },
    );
    assert_eq!(e.code(), "bad_document", "{e}");
    assert!(e.to_string().contains("evidence_hash"), "{e}");
}

#[test]
fn witnessing_needs_an_agreement_at_level_two_and_the_peers_signature() {
    let mut net = net(TrustLevel::OBSERVE);
    let key = net.node(DUBLIN).key.clone();
    let n = notification(&net, &key, 5, "five");
    // Level 1: Berlin may read Dublin's roots but does not witness them.
    let e = refused(&mut net, BERLIN, report(&n, None, verified()));
    assert_eq!(e.code(), "forbidden", "{e}");
    // No agreement at all.
    let e = refused(&mut net, SINGAPORE, report(&n, None, verified()));
    assert_eq!(e.code(), "forbidden", "{e}");

    let mut net = self::net(TrustLevel::VERIFY);
    // A root signed by another key.
    let impostor = MeshKey::from_seed(&[77; 32]);
    let forged = notification(&net, &impostor, 5, "five");
    let e = refused(&mut net, BERLIN, report(&forged, None, verified()));
    assert_eq!(e.code(), "bad_signature", "{e}");
    // A root of Dublin's reported as Singapore's.
    let key = net.node(DUBLIN).key.clone();
    let n = notification(&net, &key, 5, "five");
    let mut wrong_peer = WitnessReport {
        peer: mesh(SINGAPORE),
        notification: n,
        expected_size: None,
        verdict: verified(),
        resynced: false,
    };
    let e = refused(
        &mut net,
        BERLIN,
        Input::Witnessed(Box::new(wrong_peer.clone())),
    );
    assert_eq!(e.code(), "sender_mismatch", "{e}");
    // A scroll that is not shared.
    wrong_peer.peer = mesh(DUBLIN);
    let mut drills = wrong_peer.notification.signed_root();
    drills.scroll = "Drills".parse().expect("scroll");
    let signed = SignedRoot::new(&key, drills.mesh_id, drills.scroll, 5, drills.root, net.now)
        .expect("sign");
    wrong_peer.notification =
        AnchorNotification::new(signed, wrong_peer.notification.anchor_proof.clone());
    let e = refused(&mut net, BERLIN, Input::Witnessed(Box::new(wrong_peer)));
    assert_eq!(e.code(), "forbidden", "{e}");
}

#[test]
fn cross_anchoring_needs_level_three_and_the_witnessed_root() {
    for (level, allowed) in [(TrustLevel::VERIFY, false), (TrustLevel::ATTEST, true)] {
        let mut net = net(level);
        let key = net.node(DUBLIN).key.clone();
        let n = notification(&net, &key, 5, "five");
        let b = net.idx(BERLIN);
        net.apply(b, report(&n, None, verified()))
            .expect("witnessed");
        let berlin_key = net.node(BERLIN).key.clone();
        let batch = Batch::new(vec![n.signed_root()]).expect("batch");
        let anchor = anchor_local(&berlin_key, &mesh(BERLIN), &batch.root(), net.now);
        let entry = CrossAnchored {
            peer: mesh(DUBLIN),
            root: n.signed_root(),
            proof: batch.proof(0, &anchor).expect("proof"),
        };
        if !allowed {
            let e = refused(&mut net, BERLIN, Input::Anchored(vec![entry]));
            assert_eq!(e.code(), "forbidden", "{e}");
            continue;
        }
        // A root that is not the one witnessed is not cross-anchored.
        let other = notification(&net, &key, 6, "six");
        let e = refused(
            &mut net,
            BERLIN,
            Input::Anchored(vec![CrossAnchored {
                root: other.signed_root(),
                ..entry.clone()
            }]),
        );
        assert_eq!(e.code(), "stale", "{e}");
        net.apply(b, Input::Anchored(vec![entry]))
            .expect("anchored");
        let receipts: Vec<_> = net
            .node(BERLIN)
            .receipts()
            .into_iter()
            .filter_map(|r| match r {
                FederationReceipt::CrossAnchor(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(receipts.len(), 1);
        let c = &receipts[0];
        assert_eq!(c.combined_root, batch.root());
        let (key_name, roots) = c.roots_included().expect("roots");
        assert_eq!(key_name, "vaultmesh-dublin_roots_included");
        assert_eq!(roots.get(&compliance()), Some(&n.root));
        assert_eq!(
            state(&net, BERLIN).and_then(|s| s.cross_anchored_size),
            Some(5)
        );
        // A third party rebuilds the peer anchor proof from the receipt and checks it with
        // Berlin's key alone.
        let anchored =
            vaultmesh_federation::anchor::peer_proof_from_receipt(c).expect("peer proof");
        let berlin_pub = berlin_key.public_key();
        let key_of = |m: &vm_receipts::MeshId| (m == &mesh(BERLIN)).then_some(berlin_pub);
        let trust = vaultmesh_federation::anchor::AnchorTrust {
            key_of: &key_of,
            tsa: None,
        };
        let check = vaultmesh_federation::anchor::verify_peer_anchored(&anchored, &trust, net.now)
            .expect("verifies through Berlin's anchor");
        assert_eq!(check.backend, "peer/local");
    }
}
