//! The trust lifecycle between engines over an in-memory queue and a virtual clock: every
//! path of seed §3 and DESIGN §5, with state in redb files and receipts in real scrolls that
//! the foundation's independent `verify_scroll` checks.

use vaultmesh_federation::engine::policy::{PeerRequest, Refusal, authorize};
use vaultmesh_federation::engine::{Command, EngineError, Input, Output, PeerMessage, ProposalRef};
use vm_receipts::documents::{ProposedTerms, TrustLevel, VerificationFrequency};
use vm_receipts::receipts::{FederationReceipt, ProposalEvent};
use vm_receipts::scroll::verify_scroll;
use vm_receipts::{DocumentId, ScrollName};
use vm_storage::{AgreementStatus, ProposalStatus};

use crate::net::{Net, Node, mesh};

pub fn terms(scrolls: &[&str], frequency: VerificationFrequency) -> ProposedTerms {
    ProposedTerms {
        scrolls_to_share: scrolls.iter().map(|s| s.parse().expect("scroll")).collect(),
        verification_frequency: frequency,
        retention_period_days: 365,
        data_jurisdiction: Some("EU".into()),
        audit_rights: Some(true),
        extra: Default::default(),
    }
}

pub fn propose(net: &mut Net, from: &str, to: &str, level: TrustLevel) -> DocumentId {
    net.command(
        from,
        Command::Propose {
            target: mesh(to),
            trust_level: level,
            terms: terms(&["Compliance"], VerificationFrequency::HOURLY),
        },
    )
    .expect("propose");
    let node = net.node(from);
    node.proposals()
        .into_iter()
        .filter(|p| p.proposal.proposer == node.id && p.proposal.target == mesh(to))
        .max_by_key(|p| p.proposal.proposed_at)
        .expect("proposal stored")
        .proposal
        .proposal_id
}

pub fn r(id: &DocumentId) -> ProposalRef {
    ProposalRef::from(id.clone())
}

/// The proposal events in a node's Federation log, in order.
pub fn proposal_events(node: &Node) -> Vec<ProposalEvent> {
    node.receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::TrustProposal(p) => Some(p.event),
            _ => None,
        })
        .collect()
}

pub fn established(node: &Node) -> Vec<(DocumentId, vm_receipts::Blake3Hash)> {
    node.receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::TrustEstablished(e) => Some((e.agreement_id, e.agreement_hash)),
            _ => None,
        })
        .collect()
}

/// Each node's Federation scroll passes the foundation's full verification.
pub fn assert_scrolls_verify(net: &Net) {
    for node in &net.nodes {
        let dir = node.data_dir().expect("on disk");
        let report = verify_scroll(&dir, &ScrollName::federation(), None).expect("verify");
        assert!(report.is_ok(), "{}: {report:?}", node.id);
        assert_eq!(report.receipts_verified, node.receipts().len() as u64);
        assert!(node.engine.pending_receipts().expect("pending").is_empty());
    }
}

#[test]
fn two_meshes_negotiate_agree_witness_schedule_and_revoke_with_notice() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    net.discover_all();
    let id = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    net.run();
    // Berlin counters (two scrolls, daily), Dublin counters back (hourly), Berlin accepts.
    net.command(
        "vaultmesh-berlin",
        Command::Counter {
            proposal: r(&id),
            terms: terms(&["Compliance", "Drills"], VerificationFrequency::DAILY),
        },
    )
    .expect("counter");
    net.run();
    let accept_too_early = net.command("vaultmesh-berlin", Command::Accept { proposal: r(&id) });
    assert!(
        matches!(accept_too_early, Err(EngineError::Command(ref m)) if m.contains("ours")),
        "{accept_too_early:?}"
    );
    net.command(
        "vaultmesh-dublin",
        Command::Counter {
            proposal: r(&id),
            terms: terms(&["Compliance", "Drills"], VerificationFrequency::HOURLY),
        },
    )
    .expect("counter back");
    net.run();
    net.command("vaultmesh-berlin", Command::Accept { proposal: r(&id) })
        .expect("accept");
    net.run();

    let dublin = net.node("vaultmesh-dublin");
    let berlin = net.node("vaultmesh-berlin");
    let (a, b) = (dublin.agreements(), berlin.agreements());
    assert_eq!(a.len(), 1);
    assert_eq!(a, b, "both hold the same agreement, in the same state");
    assert_eq!(a[0].status, AgreementStatus::Active);
    a[0].agreement
        .verify_complete()
        .expect("two valid signatures");
    assert_eq!(
        a[0].agreement.parties,
        [dublin.id.clone(), berlin.id.clone()]
    );
    assert_eq!(
        a[0].agreement.terms.verification_frequency,
        VerificationFrequency::HOURLY
    );
    assert_eq!(a[0].agreement.terms.scrolls_shared.len(), 2);
    // Receipts agree: Dublin sent, saw Berlin's counter, countered, saw the accept; Berlin
    // the mirror image. Both logged the establishment of the same agreement.
    use ProposalEvent::*;
    assert_eq!(
        proposal_events(dublin),
        [Sent, Countered, Countered, Accepted]
    );
    assert_eq!(
        proposal_events(berlin),
        [Received, Countered, Countered, Accepted]
    );
    assert_eq!(established(dublin), established(berlin));
    assert_eq!(established(dublin).len(), 1);
    assert!(net.queue.is_empty());
    // Nothing left to resend: every message was acknowledged.
    for node in &net.nodes {
        assert!(
            node.store()
                .all::<vm_storage::OutgoingMessage>()
                .expect("outgoing")
                .is_empty(),
            "{} still has messages to resend",
            node.id
        );
    }
    // Both sides asked to exchange roots of the shared scrolls.
    let exchanges = net
        .observed
        .iter()
        .filter(|(_, o)| matches!(o, Output::ExchangeRoots { scrolls, .. } if scrolls.len() == 2))
        .count();
    assert_eq!(exchanges, 2);
    assert_scrolls_verify(&net);

    // Verification cycles fall due hourly on both sides.
    net.observed.clear();
    net.advance(3600);
    let due = net
        .observed
        .iter()
        .filter(|(_, o)| matches!(o, Output::VerificationDue { .. }))
        .count();
    assert_eq!(due, 2);

    // The policy lets Berlin notify Dublin of Compliance (level 2), not replicate it.
    let agreement_id = a[0].agreement.agreement_id.clone();
    let compliance: ScrollName = "Compliance".parse().expect("scroll");
    let record = &net.node("vaultmesh-dublin").agreements()[0];
    let ask = |req| {
        authorize(
            &mesh("vaultmesh-dublin"),
            &mesh("vaultmesh-berlin"),
            true,
            Some(record),
            net.now,
            req,
        )
    };
    assert_eq!(ask(PeerRequest::Notify(&compliance)), Ok(()));
    assert!(matches!(
        ask(PeerRequest::Replicate(&compliance)),
        Err(Refusal::LevelTooLow { .. })
    ));

    // Dublin revokes with 30 days' notice: both keep working until it runs out.
    net.command(
        "vaultmesh-dublin",
        Command::Revoke {
            agreement_id: agreement_id.clone(),
            notice_days: 30,
            reason: "restructuring".into(),
        },
    )
    .expect("revoke");
    net.run();
    for node in &net.nodes {
        let rec = &node.agreements()[0];
        assert!(
            matches!(rec.status, AgreementStatus::Revoking { .. }),
            "{}: {:?}",
            node.id,
            rec.status
        );
        assert_eq!(
            authorize(
                &node.id,
                rec.agreement.counterparty(&node.id).expect("peer"),
                true,
                Some(rec),
                net.now,
                PeerRequest::Notify(&compliance)
            ),
            Ok(()),
            "still in force during the notice"
        );
        assert!(
            !node
                .receipts()
                .iter()
                .any(|r| matches!(r, FederationReceipt::TrustRevoked(_)))
        );
    }
    // A second revocation while the notice runs is refused.
    assert!(
        net.command(
            "vaultmesh-berlin",
            Command::Revoke {
                agreement_id: agreement_id.clone(),
                notice_days: 40,
                reason: "x".into()
            }
        )
        .is_err()
    );
    net.settle(31 * 86_400);
    let revoked: Vec<_> = net
        .nodes
        .iter()
        .map(|n| {
            let rec = &n.agreements()[0];
            assert!(matches!(rec.status, AgreementStatus::Revoked { .. }));
            n.receipts()
                .into_iter()
                .filter_map(|r| match r {
                    FederationReceipt::TrustRevoked(t) => {
                        Some((t.agreement_id, t.revoked_by, t.reason, t.effective_at))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(revoked[0].len(), 1);
    assert_eq!(revoked[0], revoked[1], "both record the same revocation");
    assert_eq!(revoked[0][0].1, mesh("vaultmesh-dublin"));
    assert_scrolls_verify(&net);
    // After the end, Berlin may read the agreement but nothing else.
    let rec = &net.node("vaultmesh-dublin").agreements()[0];
    let after = |req| {
        authorize(
            &mesh("vaultmesh-dublin"),
            &mesh("vaultmesh-berlin"),
            true,
            Some(rec),
            net.now,
            req,
        )
    };
    assert_eq!(after(PeerRequest::GetAgreement), Ok(()));
    assert_eq!(
        after(PeerRequest::Notify(&compliance)),
        Err(Refusal::Revoked)
    );
}

#[test]
fn a_rejected_proposal_ends_with_the_reason_on_both_sides() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    net.discover_all();
    let id = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::OBSERVE,
    );
    net.run();
    net.command(
        "vaultmesh-berlin",
        Command::Reject {
            proposal: r(&id),
            reason: "incompatible_jurisdiction".into(),
        },
    )
    .expect("reject");
    net.run();
    for node in &net.nodes {
        let p = &node.proposals()[0];
        assert_eq!(
            p.status,
            ProposalStatus::Rejected {
                reason: "incompatible_jurisdiction".into()
            }
        );
        let last = node.receipts().pop().expect("receipt");
        let FederationReceipt::TrustProposal(last) = last else {
            panic!("expected a proposal receipt");
        };
        assert_eq!(last.event, ProposalEvent::Rejected);
        assert_eq!(last.reason.as_deref(), Some("incompatible_jurisdiction"));
        assert!(node.agreements().is_empty());
    }
    // A closed negotiation takes no more answers.
    let late = net.command("vaultmesh-dublin", Command::Accept { proposal: r(&id) });
    assert!(matches!(late, Err(EngineError::Closed(_))), "{late:?}");
    assert_scrolls_verify(&net);
}

#[test]
fn the_proposer_withdraws_and_an_unanswered_proposal_expires_on_both_sides() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    net.discover_all();
    let withdrawn = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    net.run();
    assert!(
        net.command(
            "vaultmesh-berlin",
            Command::Withdraw {
                proposal: r(&withdrawn),
                reason: None
            }
        )
        .is_err(),
        "only the proposer withdraws"
    );
    net.command(
        "vaultmesh-dublin",
        Command::Withdraw {
            proposal: r(&withdrawn),
            reason: Some("changed our mind".into()),
        },
    )
    .expect("withdraw");
    net.run();
    for node in &net.nodes {
        assert_eq!(node.proposals()[0].status, ProposalStatus::Withdrawn);
    }
    let after = net.command(
        "vaultmesh-berlin",
        Command::Accept {
            proposal: r(&withdrawn),
        },
    );
    assert!(after.is_err(), "{after:?}");

    let expiring = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    net.run();
    net.advance(7 * 86_400);
    for node in &net.nodes {
        let p = node
            .proposals()
            .into_iter()
            .find(|p| p.proposal.proposal_id == expiring)
            .expect("stored");
        assert_eq!(p.status, ProposalStatus::Expired, "{}", node.id);
        assert_eq!(proposal_events(node).last(), Some(&ProposalEvent::Expired));
    }
    let late = net.command(
        "vaultmesh-berlin",
        Command::Accept {
            proposal: r(&expiring),
        },
    );
    assert!(late.is_err(), "{late:?}");
    assert_scrolls_verify(&net);
}

#[test]
fn an_accept_that_arrives_after_expiry_is_refused_and_the_draft_abandoned() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    net.discover_all();
    let id = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    net.run();
    net.now = net.now.plus_seconds(7 * 86_400 - 1);
    net.command("vaultmesh-berlin", Command::Accept { proposal: r(&id) })
        .expect("accepted one second before expiry");
    // The accept is in flight when the proposal expires at Dublin.
    net.now = net.now.plus_seconds(2);
    let code = net.deliver(0);
    assert_eq!(code, Some("expired"));
    let berlin = net.node("vaultmesh-berlin");
    assert!(matches!(
        berlin.agreements()[0].status,
        AgreementStatus::Abandoned { .. }
    ));
    assert!(net.node("vaultmesh-dublin").agreements().is_empty());
    net.settle(3 * 86_400);
    for node in &net.nodes {
        assert!(established(node).is_empty());
    }
    assert_scrolls_verify(&net);
}

#[test]
fn suspension_stops_witnessing_until_resumed() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    let agreement_id = establish(&mut net, "vaultmesh-dublin", "vaultmesh-berlin");
    let compliance: ScrollName = "Compliance".parse().expect("scroll");
    net.command(
        "vaultmesh-dublin",
        Command::Suspend {
            agreement_id: agreement_id.clone(),
            reason: "root_mismatch under review".into(),
            discrepancy_id: None,
        },
    )
    .expect("suspend");
    // The signed notice reaches Berlin: suspended there too, by Dublin, which alone can
    // resume.
    net.run();
    let berlin = &net.node("vaultmesh-berlin").agreements()[0];
    assert_eq!(
        berlin.status,
        AgreementStatus::Suspended {
            reason: "root_mismatch under review".into(),
            by: Some(mesh("vaultmesh-dublin")),
        }
    );
    let e = net
        .command(
            "vaultmesh-berlin",
            Command::Resume {
                agreement_id: agreement_id.clone(),
                reason: "not ours to lift".into(),
            },
        )
        .expect_err("Berlin cannot lift Dublin's suspension");
    assert!(e.to_string().contains("only"), "{e}");
    let dublin = net.node("vaultmesh-dublin");
    let rec = &dublin.agreements()[0];
    assert!(matches!(rec.status, AgreementStatus::Suspended { .. }));
    assert_eq!(
        authorize(
            &dublin.id,
            &mesh("vaultmesh-berlin"),
            true,
            Some(rec),
            net.now,
            PeerRequest::Notify(&compliance)
        ),
        Err(Refusal::Suspended)
    );
    net.observed.clear();
    net.advance(2 * 3600);
    assert!(
        !net.observed
            .iter()
            .any(|(i, o)| *i == 0 && matches!(o, Output::VerificationDue { .. })),
        "no cycle while suspended"
    );
    net.command(
        "vaultmesh-dublin",
        Command::Resume {
            agreement_id,
            reason: "resolved".into(),
        },
    )
    .expect("resume");
    net.advance(1);
    assert!(
        net.observed
            .iter()
            .any(|(i, o)| *i == 0 && matches!(o, Output::VerificationDue { .. }))
    );
    let kinds: Vec<_> = net
        .node("vaultmesh-dublin")
        .receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::TrustSuspended(s) => Some(("suspended", s.discrepancy_id)),
            FederationReceipt::TrustResumed(s) => Some(("resumed", s.discrepancy_id)),
            _ => None,
        })
        .collect();
    assert_eq!(kinds.len(), 2);
    assert_eq!(kinds[0].0, "suspended");
    assert_eq!(kinds[1].0, "resumed");
    // Berlin holds both signed notices in its own receipts, and is in force again.
    net.run();
    let dublin_key = net.node("vaultmesh-dublin").key.public_key();
    let notices: Vec<_> = net
        .node("vaultmesh-berlin")
        .receipts()
        .into_iter()
        .filter_map(|r| match r {
            FederationReceipt::TrustSuspended(s) | FederationReceipt::TrustResumed(s) => s.notice,
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 2);
    for n in &notices {
        assert_eq!(n.suspended_by, mesh("vaultmesh-dublin"));
        vm_receipts::documents::SignedDocument::verify(n, &dublin_key).expect("Dublin's");
    }
    assert_eq!(
        net.node("vaultmesh-berlin").agreements()[0].status,
        AgreementStatus::Active
    );
    // The suspension again (a late copy overtaken by the resumption) changes nothing.
    let b = net.idx("vaultmesh-berlin");
    let before = net.nodes[b].snapshot();
    let e = net
        .apply(
            b,
            Input::Peer {
                from: mesh("vaultmesh-dublin"),
                message: PeerMessage::Suspension(notices[0].clone()),
            },
        )
        .expect_err("an older notice");
    assert_eq!(e.code(), "stale", "{e}");
    assert_eq!(net.nodes[b].snapshot(), before);
    assert_scrolls_verify(&net);
}

/// Dublin proposes to `to` at level 2; `to` accepts; returns the agreement id.
pub fn establish(net: &mut Net, from: &str, to: &str) -> DocumentId {
    if net
        .node(from)
        .store()
        .all::<vm_storage::PeerEntry>()
        .expect("peers")
        .is_empty()
    {
        net.discover_all();
    }
    let id = propose(net, from, to, TrustLevel::VERIFY);
    net.run();
    net.command(to, Command::Accept { proposal: r(&id) })
        .expect("accept");
    net.run();
    let agreements = net.node(from).agreements();
    let rec = agreements
        .iter()
        .find(|a| a.agreement.parties.contains(&mesh(to)) && a.status == AgreementStatus::Active)
        .expect("in force");
    rec.agreement.agreement_id.clone()
}

#[test]
fn three_meshes_federate_pairwise() {
    let names = [
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        "vaultmesh-singapore",
    ];
    let mut net = Net::new(&names, true);
    net.discover_all();
    establish(&mut net, names[0], names[1]);
    establish(&mut net, names[1], names[2]);
    establish(&mut net, names[2], names[0]);
    for node in &net.nodes {
        let agreements = node.agreements();
        assert_eq!(agreements.len(), 2, "{}", node.id);
        assert!(
            agreements
                .iter()
                .all(|a| a.status == AgreementStatus::Active)
        );
        assert_eq!(established(node).len(), 2);
    }
    // Each pair's receipts name the same agreement and hash.
    for (x, y) in [(0, 1), (1, 2), (2, 0)] {
        let (a, b) = (&net.nodes[x], &net.nodes[y]);
        let shared: Vec<_> = established(a)
            .into_iter()
            .filter(|e| established(b).contains(e))
            .collect();
        assert_eq!(shared.len(), 1, "{} and {}", a.id, b.id);
    }
    // A second proposal between federated meshes is refused on both ends.
    let again = net.command(
        names[0],
        Command::Propose {
            target: mesh(names[1]),
            trust_level: TrustLevel::ATTEST,
            terms: terms(&["Compliance"], VerificationFrequency::DAILY),
        },
    );
    assert!(
        matches!(again, Err(EngineError::AlreadyFederated { .. })),
        "{again:?}"
    );
    assert_scrolls_verify(&net);
}

#[test]
fn concurrent_proposals_both_accepted_end_in_exactly_one_agreement() {
    for deliver_berlin_first in [false, true] {
        let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
        net.discover_all();
        let from_dublin = propose(
            &mut net,
            "vaultmesh-dublin",
            "vaultmesh-berlin",
            TrustLevel::VERIFY,
        );
        let from_berlin = propose(
            &mut net,
            "vaultmesh-berlin",
            "vaultmesh-dublin",
            TrustLevel::ATTEST,
        );
        net.run();
        // Each accepts the other's proposal before hearing of the other's accept.
        net.command(
            "vaultmesh-berlin",
            Command::Accept {
                proposal: r(&from_dublin),
            },
        )
        .expect("berlin accepts");
        net.command(
            "vaultmesh-dublin",
            Command::Accept {
                proposal: r(&from_berlin),
            },
        )
        .expect("dublin accepts");
        if deliver_berlin_first {
            net.queue.make_contiguous().reverse();
        }
        net.settle(86_400);
        let active: Vec<Vec<_>> = net
            .nodes
            .iter()
            .map(|n| {
                n.agreements()
                    .into_iter()
                    .filter(|a| a.status == AgreementStatus::Active)
                    .map(|a| a.agreement)
                    .collect()
            })
            .collect();
        assert_eq!(active[0].len(), 1, "{:#?}", net.deliveries);
        assert_eq!(
            active[0], active[1],
            "the same agreement, with both signatures"
        );
        active[0][0].verify_complete().expect("signed by both");
        assert_eq!(established(&net.nodes[0]), established(&net.nodes[1]));
        assert_eq!(established(&net.nodes[0]).len(), 1);
        assert_scrolls_verify(&net);
    }
}

#[test]
fn lost_messages_are_sent_again_until_acknowledged() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    net.discover_all();
    let id = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    net.queue.clear(); // the proposal is lost
    net.settle(60);
    assert_eq!(
        net.node("vaultmesh-berlin").proposals().len(),
        1,
        "resent and received"
    );
    net.command("vaultmesh-berlin", Command::Accept { proposal: r(&id) })
        .expect("accept");
    net.queue.clear(); // the accept and its draft are lost
    net.advance(10); // Berlin resends them
    assert_eq!(net.queue.len(), 1);
    net.deliver(0); // Dublin countersigns...
    assert_eq!(
        net.node("vaultmesh-dublin").agreements()[0].status,
        AgreementStatus::Active
    );
    let countersigned = net.queue[0].clone();
    net.queue.clear(); // ...and the countersigned agreement is lost
    // Berlin resends its accept (Dublin already has it and acknowledges), and Dublin resends
    // the countersigned agreement until Berlin has it.
    net.settle(3600);
    for node in &net.nodes {
        assert_eq!(
            node.agreements()[0].status,
            AgreementStatus::Active,
            "{}",
            node.id
        );
        assert_eq!(established(node).len(), 1);
    }
    // The lost copy turns up late: acknowledged, not applied twice.
    let before = net.nodes[1].snapshot();
    net.queue.push_back(countersigned);
    assert_eq!(net.deliver(0), Some("already_received"));
    assert_eq!(net.nodes[1].snapshot(), before);
    assert_eq!(established(&net.nodes[0]), established(&net.nodes[1]));
    assert_scrolls_verify(&net);
}

#[test]
fn trust_level_zero_turns_federation_off() {
    let mut off = vaultmesh_federation::engine::EngineConfig::new("VaultMesh Berlin");
    off.federation_on = false;
    let mut net = Net::with_configs(
        &[
            (
                "vaultmesh-dublin",
                vaultmesh_federation::engine::EngineConfig::new("Dublin"),
            ),
            ("vaultmesh-berlin", off),
        ],
        true,
    );
    let berlin_record = net.nodes[1]
        .engine
        .discovery_record(net.now)
        .expect("record");
    net.apply(
        0,
        Input::Discovered {
            record: berlin_record,
            source: vm_storage::PeerSource::Manual,
        },
    )
    .expect("dublin learns berlin");
    let dublin_record = net.nodes[0]
        .engine
        .discovery_record(net.now)
        .expect("record");
    let before = net.nodes[1].snapshot();
    let refused = net.apply(
        1,
        Input::Discovered {
            record: dublin_record,
            source: vm_storage::PeerSource::Dht,
        },
    );
    assert!(matches!(
        refused,
        Err(EngineError::Policy(Refusal::FederationOff))
    ));
    propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    let code = net.deliver(0);
    assert_eq!(code, Some("forbidden"));
    let proposing = net.command(
        "vaultmesh-berlin",
        Command::Propose {
            target: mesh("vaultmesh-dublin"),
            trust_level: TrustLevel::OBSERVE,
            terms: terms(&["Compliance"], VerificationFrequency::DAILY),
        },
    );
    assert!(matches!(
        proposing,
        Err(EngineError::Policy(Refusal::FederationOff))
    ));
    assert_eq!(
        net.nodes[1].snapshot(),
        before,
        "nothing changed at the isolated mesh"
    );
    // No discovery record is published while off.
    net.observed.clear();
    net.advance(7200);
    assert!(
        !net.observed
            .iter()
            .any(|(i, o)| *i == 1 && matches!(o, Output::PublishDiscovery(_)))
    );
}

/// Found by the interleaving property test: a revocation overtaking the countersigned
/// agreement was refused for good ("not yet in force"), so the drafter kept the agreement in
/// force while the revoker had ended it.
#[test]
fn regression_revocation_overtaking_the_countersignature_is_applied_after_it() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    net.discover_all();
    let id = propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::OBSERVE,
    );
    net.run();
    net.command("vaultmesh-berlin", Command::Accept { proposal: r(&id) })
        .expect("accept");
    net.deliver(0); // Dublin countersigns; the agreement is on its way back to Berlin
    let agreement_id = net.node("vaultmesh-dublin").agreements()[0]
        .agreement
        .agreement_id
        .clone();
    net.command(
        "vaultmesh-dublin",
        Command::Revoke {
            agreement_id,
            notice_days: 0,
            reason: "changed our mind".into(),
        },
    )
    .expect("revoke");
    // The notice overtakes the countersigned agreement.
    let last = net.queue.len() - 1;
    assert_eq!(net.deliver(last), Some("out_of_order"));
    net.settle(86_400);
    for node in &net.nodes {
        let a = &node.agreements()[0];
        assert!(
            matches!(a.status, AgreementStatus::Revoked { .. }),
            "{}: {:?}",
            node.id,
            a.status
        );
        assert_eq!(established(node).len(), 1);
    }
    assert_scrolls_verify(&net);
}

/// Found by the interleaving property test: both parties revoked, each ended the agreement by
/// its own notice before it saw the other's, and they disagreed on when it ended.
#[test]
fn regression_crossing_revocations_settle_on_the_earlier_end() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    let agreement_id = establish(&mut net, "vaultmesh-dublin", "vaultmesh-berlin");
    for (who, days) in [("vaultmesh-dublin", 0), ("vaultmesh-berlin", 1)] {
        net.command(
            who,
            Command::Revoke {
                agreement_id: agreement_id.clone(),
                notice_days: days,
                reason: format!("{who} leaves"),
            },
        )
        .expect("revoke");
    }
    // Berlin's notice runs out before Dublin's (earlier) notice reaches it.
    let in_flight: Vec<_> = net.queue.drain(..).collect();
    net.advance(86_400);
    net.queue.extend(in_flight);
    net.settle(86_400);
    let ends: Vec<_> = net
        .nodes
        .iter()
        .map(|n| {
            let a = &n.agreements()[0];
            (a.status.clone(), a.revocation.clone())
        })
        .collect();
    assert_eq!(ends[0], ends[1]);
    assert_eq!(
        ends[0].1.as_ref().map(|n| n.revoked_by.clone()),
        Some(mesh("vaultmesh-dublin")),
        "the notice that ended it first"
    );
    assert_scrolls_verify(&net);
}

#[test]
fn discovery_records_are_refreshed_and_peers_keep_where_they_came_from() {
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], true);
    let berlin_key = net.nodes[1].key.public_key();
    net.command(
        "vaultmesh-dublin",
        Command::AddPeer {
            mesh_id: mesh("vaultmesh-berlin"),
            public_key: berlin_key,
            addresses: vec!["/ip4/127.0.0.2/tcp/4001".into()],
        },
    )
    .expect("manual peer");
    net.discover_all();
    let entry: vm_storage::PeerEntry = net
        .node("vaultmesh-dublin")
        .store()
        .get("did:vm:mesh:vaultmesh-berlin")
        .expect("read")
        .expect("known");
    let sources: Vec<_> = entry.sources.keys().copied().collect();
    assert_eq!(
        sources,
        [vm_storage::PeerSource::Manual, vm_storage::PeerSource::Dht]
    );
    assert_eq!(entry.manual_addresses, ["/ip4/127.0.0.2/tcp/4001"]);
    let first = entry.discovery_record.expect("record").updated_at;

    // An hour later each node signs its record again and publishes it.
    net.observed.clear();
    net.advance(3600);
    let published: Vec<_> = net
        .observed
        .iter()
        .filter_map(|(i, o)| match o {
            Output::PublishDiscovery(r) => Some((*i, r.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 2);
    let (_, berlin_record) = published
        .iter()
        .find(|(i, _)| *i == 1)
        .expect("berlin published");
    assert!(berlin_record.updated_at > first);
    berlin_record.verify_self_signed().expect("signed");
    net.apply(
        0,
        Input::Discovered {
            record: (**berlin_record).clone(),
            source: vm_storage::PeerSource::Dht,
        },
    )
    .expect("the fresher record replaces the old");
    let entry: vm_storage::PeerEntry = net
        .node("vaultmesh-dublin")
        .store()
        .get("did:vm:mesh:vaultmesh-berlin")
        .expect("read")
        .expect("known");
    assert_eq!(
        entry.discovery_record.expect("record").updated_at,
        berlin_record.updated_at
    );
}

#[test]
fn a_message_failing_its_first_attempts_is_reported_once_not_per_attempt() {
    use vaultmesh_federation::engine::Event;
    let mut net = Net::new(&["vaultmesh-dublin", "vaultmesh-berlin"], false);
    net.discover_all();
    propose(
        &mut net,
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        TrustLevel::VERIFY,
    );
    net.observed.clear();
    // Berlin is unreachable: every attempt fails (not for good), and Dublin resends.
    for _ in 0..6 {
        let Some(env) = net.queue.pop_front() else {
            net.advance(3600);
            continue;
        };
        let to = net.nodes[env.to].id.clone();
        net.apply(
            env.from,
            Input::DeliveryFailed {
                to,
                message_hash: env.hash,
                reason: "connection refused".into(),
                permanent: false,
            },
        )
        .expect("failure recorded");
        net.advance(3600);
    }
    let delayed: Vec<u32> = net
        .observed
        .iter()
        .filter_map(|(i, o)| match o {
            Output::Event(Event::Delayed { attempts, .. }) if *i == 0 => Some(*attempts),
            _ => None,
        })
        .collect();
    assert_eq!(delayed, vec![3], "said once, at the third failed attempt");
}
