//! Arbitration (seed §6.3 step 3, issue 18): a party sends a finding to a third mesh that
//! witnesses the reported mesh; the arbiter checks the signed report and evidence with the
//! reported mesh's key and against its own witnessed root, and answers both parties with a
//! signed verdict that all three record. Requests the arbiter cannot or must not answer are
//! refused with nothing changed.

use vaultmesh_federation::engine::{Command, Input, PeerMessage, WitnessReport};
use vaultmesh_federation::witness::{ConflictEvidence, Finding, Verdict};
use vm_receipts::documents::{
    ArbitrationOutcome, ArbitrationRequest, ArbitrationVerdict, DiscrepancyDetails,
    DiscrepancyType, SignedDocument, TrustLevel,
};
use vm_receipts::receipts::FederationReceipt;
use vm_storage::{ArbitrationRecord, DiscrepancyRecord};

use crate::engine_witness::{
    BERLIN, DUBLIN, SINGAPORE, compliance, federate, find_conflict, net, notification, report,
    verified,
};
use crate::net::{Net, mesh};

/// Dublin–Berlin and Dublin–Singapore at level 2, Berlin–Singapore at 1; Singapore has
/// witnessed Dublin's Compliance at size 5 ("five").
fn three() -> Net {
    let mut net = net(TrustLevel::VERIFY);
    federate(&mut net, DUBLIN, SINGAPORE, TrustLevel::VERIFY);
    federate(&mut net, BERLIN, SINGAPORE, TrustLevel::OBSERVE);
    let key = net.node(DUBLIN).key.clone();
    let five = notification(&net, &key, 5, "five");
    let s = net.idx(SINGAPORE);
    net.apply(s, report(&five, None, verified()))
        .expect("Singapore witnesses Dublin");
    net.run();
    net
}

fn finding_of(net: &Net, on: &str) -> DiscrepancyRecord {
    let all: Vec<DiscrepancyRecord> = net.node(on).store().all().expect("read");
    all.into_iter()
        .find(|d| d.report.body.reporting_mesh == mesh(BERLIN))
        .expect("Berlin's finding")
}

fn verdicts(net: &Net, on: &str) -> Vec<ArbitrationVerdict> {
    net.node(on)
        .receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::ArbitrationVerdict(v) => Some(v.verdict),
            _ => None,
        })
        .collect()
}

fn arbitrate(id: &str, arbiter: &str) -> Command {
    Command::Arbitrate {
        discrepancy_id: id.into(),
        arbiter: mesh(arbiter),
    }
}

/// The request in flight to the arbiter, taken off the queue.
fn request_in_flight(net: &mut Net) -> ArbitrationRequest {
    let k = net
        .queue
        .iter()
        .position(|e| matches!(e.message, PeerMessage::Arbitration(_)))
        .expect("a request on its way");
    match net.queue.remove(k).map(|e| e.message) {
        Some(PeerMessage::Arbitration(r)) => *r,
        _ => unreachable!(),
    }
}

#[test]
fn a_proven_finding_is_upheld_by_the_arbiter_and_recorded_by_all_three() {
    let mut net = three();
    find_conflict(&mut net);
    net.run();
    let id = finding_of(&net, BERLIN).id().to_string();
    net.command(BERLIN, arbitrate(&id, SINGAPORE))
        .expect("arbitrate");
    let request = net
        .queue
        .iter()
        .find_map(|e| match &e.message {
            PeerMessage::Arbitration(r) => Some((**r).clone()),
            _ => None,
        })
        .expect("in flight");
    net.run();
    let singapore_key = net.node(SINGAPORE).key.public_key();
    for on in [BERLIN, DUBLIN, SINGAPORE] {
        let v = verdicts(&net, on);
        assert_eq!(v.len(), 1, "{on}: one fed_arbitration_verdict");
        assert_eq!(v[0].outcome, ArbitrationOutcome::Upheld, "{on}");
        assert_eq!(v[0].evidence_standing, "proof", "{on}");
        assert_eq!(v[0].discrepancy_id.as_str(), id, "{on}");
        v[0].verify(&singapore_key).expect("signed by Singapore");
        // The arbiter's own view of Dublin's scroll goes with it.
        assert_eq!(v[0].arbiter_view.as_ref().map(|r| r.size), Some(5), "{on}");
    }
    for on in [BERLIN, DUBLIN] {
        assert_eq!(
            finding_of(&net, on).arbitrations,
            verdicts(&net, on),
            "{on}: kept on the finding"
        );
    }
    let kept: Vec<ArbitrationRecord> = net.node(SINGAPORE).store().all().expect("read");
    assert_eq!(kept.len(), 1);
    // The same request again is acknowledged, not answered twice.
    let s = net.idx(SINGAPORE);
    let before = net.nodes[s].snapshot();
    let e = net
        .apply(
            s,
            Input::Peer {
                from: mesh(BERLIN),
                message: PeerMessage::Arbitration(Box::new(request)),
            },
        )
        .expect_err("answered already");
    assert!(e.is_acknowledgement(), "{e}");
    assert_eq!(net.nodes[s].snapshot(), before);
}

#[test]
fn a_claim_is_upheld_when_the_arbiters_own_root_contradicts_it() {
    let mut net = three();
    let key = net.node(DUBLIN).key.clone();
    let five = notification(&net, &key, 5, "five");
    let b = net.idx(BERLIN);
    net.apply(b, report(&five, None, verified())).expect("five");
    net.run();
    // Berlin is served another root at size 5 and a sample that is not in it: a claim (the
    // witness's account), not a proof on its own.
    let other = notification(&net, &key, 6, "six");
    let claim = Finding {
        kind: DiscrepancyType::RootMismatch,
        details: DiscrepancyDetails {
            scroll: compliance(),
            claimed_root: Some(other.root),
            computed_root: None,
            sample_receipts_checked: Some(1),
            first_divergence_at: Some("receipt-sequence-3".into()),
            extra: Default::default(),
        },
        evidence: ConflictEvidence::BadSample {
            root: notification(&net, &key, 5, "rewritten five").signed_root(),
            sequence: 3,
            line: None,
            inclusion: None,
            error: "the sample is not in the tree".into(),
        },
    };
    net.apply(
        b,
        Input::Witnessed(Box::new(WitnessReport {
            peer: mesh(DUBLIN),
            notification: other,
            expected_size: Some(5),
            verdict: Verdict::Discrepancy {
                anchor: None,
                samples_checked: 0,
                finding: Box::new(claim),
            },
            resynced: false,
        })),
    )
    .expect("recorded");
    net.run();
    let id = finding_of(&net, BERLIN).id().to_string();
    net.command(BERLIN, arbitrate(&id, SINGAPORE))
        .expect("arbitrate");
    net.run();
    let v = verdicts(&net, DUBLIN);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].evidence_standing, "claim");
    assert_eq!(v[0].outcome, ArbitrationOutcome::Upheld, "{}", v[0].reason);
    assert!(v[0].reason.contains("signed both"), "{}", v[0].reason);
}

#[test]
fn requests_the_arbiter_cannot_answer_are_refused_with_nothing_changed() {
    // Singapore knows Dublin and Berlin but witnesses neither.
    let mut net = net(TrustLevel::VERIFY);
    find_conflict(&mut net);
    net.run();
    let id = finding_of(&net, BERLIN).id().to_string();
    // A party is no arbiter; an unknown mesh cannot be asked.
    let e = net
        .command(BERLIN, arbitrate(&id, DUBLIN))
        .expect_err("a party");
    assert!(e.to_string().contains("third mesh"), "{e}");
    let e = net
        .command(BERLIN, arbitrate(&id, "vaultmesh-nowhere"))
        .expect_err("unknown");
    assert_eq!(e.code(), "unknown_sender", "{e}");
    let e = net
        .command(BERLIN, arbitrate("discrepancy-2099-01-01-1", SINGAPORE))
        .expect_err("no such finding");
    assert_eq!(e.code(), "unknown_discrepancy", "{e}");

    net.command(BERLIN, arbitrate(&id, SINGAPORE))
        .expect("asked");
    let request = request_in_flight(&mut net);
    let s = net.idx(SINGAPORE);
    let refused = |net: &mut Net, from: &str, request: ArbitrationRequest| {
        let before = net.nodes[s].snapshot();
        let e = net
            .apply(
                s,
                Input::Peer {
                    from: mesh(from),
                    message: PeerMessage::Arbitration(Box::new(request)),
                },
            )
            .expect_err("refused");
        assert_eq!(net.nodes[s].snapshot(), before, "a refusal changed state");
        e
    };
    let e = refused(&mut net, BERLIN, request.clone());
    assert!(e.to_string().contains("federated"), "{e}");
    // Federated with Berlin, still not witnessing Dublin.
    federate(&mut net, BERLIN, SINGAPORE, TrustLevel::OBSERVE);
    let e = refused(&mut net, BERLIN, request.clone());
    assert!(e.to_string().contains("do not witness"), "{e}");
    federate(&mut net, DUBLIN, SINGAPORE, TrustLevel::VERIFY);
    // Sent by Dublin in Berlin's name; signed by another key; evidence that is not what the
    // report hashed (re-signed by Berlin).
    let e = refused(&mut net, DUBLIN, request.clone());
    assert_eq!(e.code(), "sender_mismatch", "{e}");
    let mut forged = request.clone();
    forged.sign(&net.node(DUBLIN).key.clone()).expect("sign");
    let e = refused(&mut net, BERLIN, forged);
    assert_eq!(e.code(), "bad_signature", "{e}");
    let mut swapped = request.clone();
    swapped.evidence["kind"] = "rollback".into();
    swapped.sign(&net.node(BERLIN).key.clone()).expect("sign");
    let e = refused(&mut net, BERLIN, swapped);
    assert_eq!(e.code(), "bad_document", "{e}");
    assert!(e.to_string().contains("evidence"), "{e}");
    // The genuine request, now answerable.
    let s = net.idx(SINGAPORE);
    net.apply(
        s,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Arbitration(Box::new(request)),
        },
    )
    .expect("answered");
    net.run();
    assert_eq!(verdicts(&net, BERLIN).len(), 1);
}
