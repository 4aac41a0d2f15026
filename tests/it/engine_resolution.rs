//! Resolving findings (seed §6.3, issue 18): a signed resolution by either party, kept on
//! both sides' records and appended as `fed_discrepancy_resolved` on both; the finder's
//! resolution closes the finding everywhere, the reported mesh's only its own copy; forged,
//! misdirected, repeated and premature resolutions are refused with nothing changed;
//! `agreements suspend --discrepancy` names a finding that exists.

use vaultmesh_federation::engine::{Command, EngineConfig, Escalation, Input, PeerMessage};
use vm_receipts::documents::{
    DiscrepancyResolution, ResolutionOutcome, SignatureField, SignedDocument, TrustLevel,
};
use vm_receipts::receipts::FederationReceipt;
use vm_storage::{AgreementStatus, DiscrepancyRecord};

use crate::engine_witness::{BERLIN, DUBLIN, SINGAPORE, federated, find_conflict, net, refused};
use crate::net::{Net, mesh};

fn record(net: &Net, on: &str) -> DiscrepancyRecord {
    let mut all: Vec<DiscrepancyRecord> = net.node(on).store().all().expect("read");
    assert_eq!(all.len(), 1, "{on}: one finding");
    all.remove(0)
}

fn resolved_receipts(net: &Net, on: &str) -> Vec<DiscrepancyResolution> {
    net.node(on)
        .receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::DiscrepancyResolved(r) => Some(r.resolution),
            _ => None,
        })
        .collect()
}

fn resolve(id: &str, outcome: ResolutionOutcome, note: &str) -> Command {
    Command::ResolveDiscrepancy {
        discrepancy_id: id.into(),
        outcome,
        note: note.into(),
    }
}

/// A finding by Berlin about Dublin, received by Dublin.
fn with_finding() -> (Net, String) {
    let mut net = net(TrustLevel::VERIFY);
    find_conflict(&mut net);
    net.run();
    let id = record(&net, BERLIN).id().to_string();
    assert_eq!(record(&net, DUBLIN).id().as_str(), id);
    (net, id)
}

#[test]
fn the_finders_resolution_closes_the_finding_on_both_sides() {
    let (mut net, id) = with_finding();
    net.command(
        BERLIN,
        resolve(&id, ResolutionOutcome::FalseAlarm, "our clock was wrong"),
    )
    .expect("resolve");
    net.run();
    let berlin_key = net.node(BERLIN).key.public_key();
    for on in [BERLIN, DUBLIN] {
        let r = record(&net, on);
        assert!(r.resolved_at.is_some(), "{on}: closed");
        assert_eq!(r.resolutions.len(), 1, "{on}");
        let receipts = resolved_receipts(&net, on);
        assert_eq!(receipts.len(), 1, "{on}: one fed_discrepancy_resolved");
        let res = &receipts[0];
        assert_eq!(
            res, &r.resolutions[0],
            "{on}: the receipt is the kept resolution"
        );
        assert_eq!(res.resolved_by, mesh(BERLIN));
        assert_eq!(res.outcome, ResolutionOutcome::FalseAlarm);
        assert_eq!(res.discrepancy_id.as_str(), id);
        res.verify(&berlin_key)
            .expect("signed by Berlin under KIND resolution");
    }
    // Berlin cannot resolve it twice; the same resolution again is acknowledged, not kept.
    let e = refused(
        &mut net,
        BERLIN,
        Input::Command(resolve(&id, ResolutionOutcome::Confirmed, "again")),
    );
    assert!(e.to_string().contains("already resolved"), "{e}");
    let again = record(&net, DUBLIN).resolutions[0].clone();
    let e = refused(
        &mut net,
        DUBLIN,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Resolution(again),
        },
    );
    assert!(e.is_acknowledgement(), "{e}");
}

#[test]
fn the_reported_mesh_closes_only_its_own_copy() {
    let (mut net, id) = with_finding();
    net.command(
        DUBLIN,
        resolve(&id, ResolutionOutcome::Resynced, "re-published our root"),
    )
    .expect("resolve");
    net.run();
    let dublin = record(&net, DUBLIN);
    assert!(dublin.resolved_at.is_some(), "Dublin's copy is closed");
    let berlin = record(&net, BERLIN);
    assert!(
        berlin.resolved_at.is_none(),
        "an accused mesh cannot close its accuser's finding"
    );
    assert_eq!(
        berlin.resolutions.len(),
        1,
        "Dublin's word is kept beside it"
    );
    assert_eq!(resolved_receipts(&net, BERLIN).len(), 1);
    assert_eq!(resolved_receipts(&net, DUBLIN).len(), 1);
    // Berlin then confirms it: closed on its side, Dublin records Berlin's word too.
    net.command(
        BERLIN,
        resolve(
            &id,
            ResolutionOutcome::Confirmed,
            "two roots at size 5 stand",
        ),
    )
    .expect("confirm");
    net.run();
    assert!(record(&net, BERLIN).resolved_at.is_some());
    for on in [BERLIN, DUBLIN] {
        assert_eq!(record(&net, on).resolutions.len(), 2, "{on}");
        assert_eq!(resolved_receipts(&net, on).len(), 2, "{on}");
    }
}

#[test]
fn bad_resolutions_are_refused_and_change_nothing() {
    let (mut net, id) = with_finding();
    // Commands: an unknown id, an empty note.
    let e = refused(
        &mut net,
        BERLIN,
        Input::Command(resolve(
            "discrepancy-2099-01-01-1",
            ResolutionOutcome::Resynced,
            "x",
        )),
    );
    assert_eq!(e.code(), "unknown_discrepancy", "{e}");
    let e = refused(
        &mut net,
        BERLIN,
        Input::Command(resolve(&id, ResolutionOutcome::Resynced, "  ")),
    );
    assert!(e.to_string().contains("note"), "{e}");

    // A resolution by Berlin, as a template.
    let berlin_key = net.node(BERLIN).key.clone();
    let finding = record(&net, DUBLIN);
    let body = &finding.report.body;
    let now = net.now;
    let signed = |by: &str, key: &vm_receipts::MeshKey, id: &str| {
        let mut r = DiscrepancyResolution {
            discrepancy_id: id.parse().expect("id"),
            reporting_mesh: body.reporting_mesh.clone(),
            reported_mesh: body.reported_mesh.clone(),
            resolved_by: mesh(by),
            outcome: ResolutionOutcome::FalseAlarm,
            note: "no".into(),
            timestamp: now,
            signature: SignatureField::unsigned(),
            extra: Default::default(),
        };
        r.sign(key).expect("sign");
        r
    };
    let peer = |from: &str, r: DiscrepancyResolution| Input::Peer {
        from: mesh(from),
        message: PeerMessage::Resolution(r),
    };
    // Signed by Singapore's key in Berlin's name.
    let singapore_key = net.node(SINGAPORE).key.clone();
    let e = refused(
        &mut net,
        DUBLIN,
        peer(BERLIN, signed(BERLIN, &singapore_key, &id)),
    );
    assert_eq!(e.code(), "bad_signature", "{e}");
    // Sent by Singapore in Berlin's name.
    let e = refused(
        &mut net,
        DUBLIN,
        peer(SINGAPORE, signed(BERLIN, &berlin_key, &id)),
    );
    assert_eq!(e.code(), "sender_mismatch", "{e}");
    // Berlin's resolution of a finding Dublin does not hold (yet): not permanent.
    let e = refused(
        &mut net,
        DUBLIN,
        peer(
            BERLIN,
            signed(BERLIN, &berlin_key, "discrepancy-2099-01-01-2"),
        ),
    );
    assert_eq!(e.code(), "out_of_order", "{e}");
    assert!(!e.is_permanent());
    // Singapore, no party to the finding, resolving it.
    let e = refused(
        &mut net,
        DUBLIN,
        peer(SINGAPORE, signed(SINGAPORE, &singapore_key, &id)),
    );
    assert_eq!(e.code(), "bad_document", "{e}");
    assert!(e.to_string().contains("resolved_by"), "{e}");
    // A resolution sent to the wrong party: Dublin's own, handed back to Dublin.
    let dublin_key = net.node(DUBLIN).key.clone();
    let e = refused(
        &mut net,
        DUBLIN,
        peer(BERLIN, signed(DUBLIN, &dublin_key, &id)),
    );
    assert_eq!(e.code(), "sender_mismatch", "{e}");
    // A tampered note after signing.
    let mut tampered = signed(BERLIN, &berlin_key, &id);
    tampered.note = "yes".into();
    let e = refused(&mut net, DUBLIN, peer(BERLIN, tampered));
    assert_eq!(e.code(), "bad_signature", "{e}");
    assert!(record(&net, DUBLIN).resolutions.is_empty());
}

#[test]
fn a_suspension_names_a_finding_that_exists_between_the_parties() {
    let (mut net, id) = with_finding();
    let agreement = net.node(BERLIN).agreements()[0]
        .agreement
        .agreement_id
        .clone();
    let suspend = |d: &str| {
        Input::Command(Command::Suspend {
            agreement_id: agreement.clone(),
            reason: "under review".into(),
            discrepancy_id: Some(d.parse().expect("id")),
        })
    };
    let e = refused(&mut net, BERLIN, suspend("discrepancy-2099-01-01-3"));
    assert_eq!(e.code(), "unknown_discrepancy", "{e}");
    let b = net.idx(BERLIN);
    net.apply(b, suspend(&id)).expect("a finding that exists");
    let suspended = net
        .node(BERLIN)
        .receipts()
        .into_iter()
        .find_map(|r| match r {
            FederationReceipt::TrustSuspended(s) => Some(s),
            _ => None,
        })
        .expect("fed_trust_suspended");
    assert_eq!(suspended.discrepancy_id.map(|d| d.to_string()), Some(id));
}

#[test]
fn a_proven_finding_suspends_the_agreement_by_rule_and_the_other_side_is_told() {
    let configs: Vec<(&str, EngineConfig)> = [DUBLIN, BERLIN, SINGAPORE]
        .into_iter()
        .map(|n| {
            let mut c = EngineConfig::new(format!("VaultMesh {n}"));
            if n == BERLIN {
                c.suspend_on = vec![Escalation::Proof];
            }
            (n, c)
        })
        .collect();
    let mut ruled = federated(Net::with_configs(&configs, false), TrustLevel::VERIFY);
    find_conflict(&mut ruled);
    ruled.run();
    let id = record(&ruled, BERLIN).id().clone();
    // Both sides: suspended by Berlin, citing the finding, with Berlin's signed notice; the
    // report reached Dublin although the agreement was suspended by then.
    for on in [BERLIN, DUBLIN] {
        let status = &ruled.node(on).agreements()[0].status;
        assert!(
            matches!(status, AgreementStatus::Suspended { by: Some(by), .. } if *by == mesh(BERLIN)),
            "{on}: {status:?}"
        );
        let suspended = ruled
            .node(on)
            .receipts()
            .into_iter()
            .find_map(|r| match r {
                FederationReceipt::TrustSuspended(s) => Some(s),
                _ => None,
            })
            .expect("fed_trust_suspended");
        assert_eq!(suspended.discrepancy_id.as_ref(), Some(&id), "{on}");
        assert!(suspended.reason.contains("proof"), "{}", suspended.reason);
        assert_eq!(
            suspended.notice.map(|n| n.suspended_by),
            Some(mesh(BERLIN)),
            "{on}"
        );
    }
    assert_eq!(record(&ruled, DUBLIN).id(), &id);
    // The attestation of the finding went before the suspension, so Dublin took it.
    assert!(
        ruled.node(DUBLIN).receipts().iter().any(|r| matches!(
            r,
            FederationReceipt::WitnessEvent(w)
                if w.witnessing_mesh == mesh(BERLIN)
                    && w.verification_result == vm_receipts::documents::WitnessResult::Discrepancy
        )),
        "Dublin records Berlin's attestation of the finding"
    );
    // Without the rule, the same finding suspends nothing.
    let mut plain = net(TrustLevel::VERIFY);
    find_conflict(&mut plain);
    plain.run();
    for on in [BERLIN, DUBLIN] {
        assert_eq!(
            plain.node(on).agreements()[0].status,
            AgreementStatus::Active,
            "{on}"
        );
    }
}
