//! Every kind of bad input is refused with a named error, and changes nothing: the whole
//! state (every table, the receipt queue, the Federation log) is compared before and after.

use vaultmesh_federation::engine::{Command, EngineError, Input, PeerMessage};
use vm_receipts::documents::{
    DocumentError, FederationAgreement, ProposalResponse, ResponseType, RevocationNotice,
    SignatureField, SignedDocument, TrustLevel, TrustProposal, VerificationFrequency,
};
use vm_receipts::{MeshKey, Timestamp};
use vm_storage::PeerSource;

use crate::engine::{establish, propose, r, terms};
use crate::net::{Net, mesh};

const DUBLIN: &str = "vaultmesh-dublin";
const BERLIN: &str = "vaultmesh-berlin";
const SINGAPORE: &str = "vaultmesh-singapore";

fn net() -> Net {
    let mut net = Net::new(&[DUBLIN, BERLIN, SINGAPORE], true);
    net.discover_all();
    net
}

fn proposal(net: &Net, id: &str, proposed_at: Timestamp, expires_in: i64) -> TrustProposal {
    let mut p = TrustProposal {
        proposal_id: id.parse().expect("id"),
        proposer: mesh(DUBLIN),
        target: mesh(BERLIN),
        proposed_at,
        expires_at: proposed_at.plus_seconds(expires_in),
        proposed_trust_level: TrustLevel::VERIFY,
        proposed_terms: terms(&["Compliance"], VerificationFrequency::DAILY),
        proposer_attestations: None,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    p.sign(&net.node(DUBLIN).key).expect("sign");
    p
}

/// Delivers `message` from `from` to `to` and asserts it is refused without any change.
fn refused(net: &mut Net, from: &str, to: &str, message: PeerMessage) -> EngineError {
    let i = net.idx(to);
    let before = net.nodes[i].snapshot();
    let result = net.apply(
        i,
        Input::Peer {
            from: mesh(from),
            message,
        },
    );
    assert_eq!(
        net.nodes[i].snapshot(),
        before,
        "state changed by a refused message"
    );
    result.expect_err("must be refused")
}

fn is_bad_signature(e: &EngineError) -> bool {
    matches!(e, EngineError::Document(DocumentError::Signature { .. }))
}

#[test]
fn forged_and_unsigned_documents_are_refused() {
    let mut net = net();
    let now = net.now;
    let mut forged = proposal(&net, "fed-proposal-forged", now, 3600);
    forged.sign(&MeshKey::from_seed(&[99; 32])).expect("sign");
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(forged));
    assert!(is_bad_signature(&e), "{e}");
    assert_eq!(e.code(), "bad_signature");

    let mut unsigned = proposal(&net, "fed-proposal-unsigned", now, 3600);
    unsigned.signature = SignatureField::unsigned();
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(unsigned));
    assert!(is_bad_signature(&e), "{e}");

    // Signed, then changed: the signature no longer covers it.
    let mut altered = proposal(&net, "fed-proposal-altered", now, 3600);
    altered.proposed_trust_level = TrustLevel::INTEGRATE;
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(altered));
    assert!(is_bad_signature(&e), "{e}");
    assert!(e.to_string().contains("proposal"), "names the kind: {e}");
}

#[test]
fn unknown_mismatched_and_misaddressed_senders_are_refused() {
    let mut net = Net::new(&[DUBLIN, BERLIN, SINGAPORE], true);
    // Berlin knows Dublin only.
    let record = net.nodes[0]
        .engine
        .discovery_record(net.now)
        .expect("record");
    net.apply(
        1,
        Input::Discovered {
            record,
            source: PeerSource::Dns,
        },
    )
    .expect("learn dublin");
    let now = net.now;
    let p = proposal(&net, "fed-proposal-a", now, 3600);

    let mut from_stranger = p.clone();
    from_stranger.proposer = mesh(SINGAPORE);
    from_stranger.sign(&net.node(SINGAPORE).key).expect("sign");
    let e = refused(
        &mut net,
        SINGAPORE,
        BERLIN,
        PeerMessage::Proposal(from_stranger),
    );
    assert!(
        matches!(e, EngineError::UnknownSender(ref m) if *m == mesh(SINGAPORE)),
        "{e}"
    );

    let e = refused(
        &mut net,
        SINGAPORE,
        BERLIN,
        PeerMessage::Proposal(p.clone()),
    );
    assert!(matches!(e, EngineError::SenderMismatch { .. }), "{e}");

    let mut elsewhere = p.clone();
    elsewhere.target = mesh(SINGAPORE);
    elsewhere.sign(&net.node(DUBLIN).key).expect("sign");
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(elsewhere));
    assert!(matches!(e, EngineError::NotForUs { .. }), "{e}");
}

#[test]
fn replayed_expired_future_and_reused_proposals_are_refused() {
    let mut net = net();
    let now = net.now;
    let p = proposal(&net, "fed-proposal-b", now, 3600);
    net.apply(
        1,
        Input::Peer {
            from: mesh(DUBLIN),
            message: PeerMessage::Proposal(p.clone()),
        },
    )
    .expect("first delivery");
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(p.clone()));
    assert!(matches!(e, EngineError::AlreadyReceived(_)), "{e}");
    assert!(e.is_acknowledgement());

    let mut reused = proposal(&net, "fed-proposal-b", now, 7200);
    reused.sign(&net.node(DUBLIN).key).expect("sign");
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(reused));
    assert!(matches!(e, EngineError::IdReused { .. }), "{e}");

    let old = proposal(&net, "fed-proposal-old", now.plus_seconds(-7200), 3600);
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(old));
    assert!(matches!(e, EngineError::Expired { .. }), "{e}");

    let future = proposal(&net, "fed-proposal-future", now.plus_seconds(3600), 3600);
    let e = refused(&mut net, DUBLIN, BERLIN, PeerMessage::Proposal(future));
    assert!(
        matches!(
            e,
            EngineError::ClockSkew {
                field: "proposed_at",
                ..
            }
        ),
        "{e}"
    );
}

fn response(
    net: &Net,
    by: &str,
    proposal_id: &str,
    kind: ResponseType,
    responds_to: Option<vm_receipts::Blake3Hash>,
) -> ProposalResponse {
    let mut resp = ProposalResponse {
        proposal_id: proposal_id.parse().expect("id"),
        response_type: kind,
        responder: mesh(by),
        responded_at: net.now,
        responds_to,
        reason: (kind == ResponseType::Reject).then(|| "no".into()),
        counter_terms: (kind == ResponseType::Counter)
            .then(|| terms(&["Drills"], VerificationFrequency::WEEKLY)),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    resp.sign(&net.node(by).key).expect("sign");
    resp
}

#[test]
fn out_of_order_answers_are_refused() {
    let mut net = net();
    let id = propose(&mut net, DUBLIN, BERLIN, TrustLevel::VERIFY);
    net.run();
    let proposal_hash =
        vaultmesh_federation::engine::document_hash(&net.node(DUBLIN).proposals()[0].proposal)
            .expect("hash");

    // An answer to a proposal that does not exist.
    let none = response(
        &net,
        BERLIN,
        "fed-proposal-none",
        ResponseType::Reject,
        None,
    );
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: none,
            agreement: None,
        },
    );
    assert!(matches!(e, EngineError::UnknownProposal(_)), "{e}");

    // An answer that does not say what it answers.
    let unanchored = response(&net, BERLIN, id.as_str(), ResponseType::Counter, None);
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: unanchored,
            agreement: None,
        },
    );
    assert!(matches!(e, EngineError::OutOfOrder(_)), "{e}");

    // Berlin counters for real; then a counter answering the original terms again is stale.
    net.command(
        BERLIN,
        Command::Counter {
            proposal: r(&id),
            terms: terms(&["Compliance"], VerificationFrequency::WEEKLY),
        },
    )
    .expect("counter");
    net.run();
    let stale = response(
        &net,
        BERLIN,
        id.as_str(),
        ResponseType::Counter,
        Some(proposal_hash),
    );
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: stale,
            agreement: None,
        },
    );
    assert!(matches!(e, EngineError::OutOfOrder(_)), "{e}");

    // Berlin cannot answer its own counter: it is Dublin's turn.
    let own_counter = net.node(DUBLIN).proposals()[0].history[0].clone();
    let tip = vaultmesh_federation::engine::document_hash(&own_counter).expect("hash");
    let out_of_turn = response(&net, BERLIN, id.as_str(), ResponseType::Counter, Some(tip));
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: out_of_turn,
            agreement: None,
        },
    );
    assert!(
        matches!(e, EngineError::OutOfOrder(ref m) if m.contains("own")),
        "{e}"
    );

    // The real counter, replayed: acknowledged, nothing changes.
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: own_counter,
            agreement: None,
        },
    );
    assert!(matches!(e, EngineError::AlreadyReceived(_)), "{e}");

    // A countersigned agreement nobody drafted.
    let a = FederationAgreement::draft(
        "fed-agreement-none".parse().expect("id"),
        [
            (mesh(DUBLIN), net.node(DUBLIN).key.public_key()),
            (mesh(BERLIN), net.node(BERLIN).key.public_key()),
        ],
        net.now,
        TrustLevel::VERIFY,
        vm_receipts::documents::AgreementTerms {
            scrolls_shared: vec!["Compliance".parse().expect("scroll")],
            verification_frequency: VerificationFrequency::DAILY,
            retention_period_days: 1,
            data_jurisdiction: None,
            audit_rights: None,
            dispute_resolution: None,
            extra: Default::default(),
        },
    )
    .expect("draft");
    let e = refused(&mut net, BERLIN, DUBLIN, PeerMessage::Agreement(a));
    assert!(matches!(e, EngineError::UnknownAgreement(_)), "{e}");
}

#[test]
fn a_draft_that_departs_from_the_accepted_terms_is_refused() {
    let mut net = net();
    let id = propose(&mut net, DUBLIN, BERLIN, TrustLevel::VERIFY);
    net.run();
    net.command(BERLIN, Command::Accept { proposal: r(&id) })
        .expect("accept");
    let envelope = net.queue.pop_front().expect("accept in flight");
    let PeerMessage::Response {
        response,
        agreement: Some(draft),
    } = envelope.message
    else {
        panic!("expected an accept with a draft");
    };
    let berlin_key = net.node(BERLIN).key.clone();
    // Berlin (or a man in the middle holding Berlin's key) raises the level in the draft.
    let mut raised = FederationAgreement::draft(
        draft.agreement_id.clone(),
        [
            (mesh(DUBLIN), net.node(DUBLIN).key.public_key()),
            (mesh(BERLIN), berlin_key.public_key()),
        ],
        draft.established_at,
        TrustLevel::INTEGRATE,
        draft.terms.clone(),
    )
    .expect("draft");
    raised
        .sign_as(&mesh(BERLIN), &berlin_key, net.now)
        .expect("sign");
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: response.clone(),
            agreement: Some(raised),
        },
    );
    assert!(matches!(e, EngineError::DraftMismatch { .. }), "{e}");

    // The draft with Dublin's key replaced by another.
    let mut rekeyed = FederationAgreement::draft(
        draft.agreement_id.clone(),
        [
            (mesh(DUBLIN), MeshKey::from_seed(&[77; 32]).public_key()),
            (mesh(BERLIN), berlin_key.public_key()),
        ],
        draft.established_at,
        TrustLevel::VERIFY,
        draft.terms.clone(),
    )
    .expect("draft");
    rekeyed
        .sign_as(&mesh(BERLIN), &berlin_key, net.now)
        .expect("sign");
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response: response.clone(),
            agreement: Some(rekeyed),
        },
    );
    assert!(matches!(e, EngineError::KeyMismatch { .. }), "{e}");

    // An accept without its draft.
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Response {
            response,
            agreement: None,
        },
    );
    assert!(matches!(e, EngineError::OutOfOrder(_)), "{e}");
}

#[test]
fn forged_and_foreign_revocations_are_refused() {
    let mut net = net();
    let agreement_id = establish(&mut net, DUBLIN, BERLIN);
    let mut notice = RevocationNotice {
        agreement_id: agreement_id.clone(),
        revoked_by: mesh(BERLIN),
        reason: "forged".into(),
        notice_days: 0,
        effective_at: net.now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    notice.sign(&MeshKey::from_seed(&[99; 32])).expect("sign");
    let e = refused(
        &mut net,
        BERLIN,
        DUBLIN,
        PeerMessage::Revocation(notice.clone()),
    );
    assert!(is_bad_signature(&e), "{e}");

    // Singapore is no party to it, even with a valid signature of its own.
    notice.revoked_by = mesh(SINGAPORE);
    notice.sign(&net.node(SINGAPORE).key).expect("sign");
    let e = refused(&mut net, SINGAPORE, DUBLIN, PeerMessage::Revocation(notice));
    assert!(
        matches!(
            e,
            EngineError::Policy(vaultmesh_federation::engine::policy::Refusal::NotAParty)
        ),
        "{e}"
    );
}

#[test]
fn discovery_records_with_another_key_bad_signatures_or_old_dates_are_refused() {
    let mut net = net();
    let i = net.idx(BERLIN);
    let now = net.now;
    let mut other_key = net.nodes[0].engine.discovery_record(now).expect("record");
    let imposter = MeshKey::from_seed(&[42; 32]);
    other_key.public_key = imposter.public_key();
    other_key.peer_id = imposter.public_key().peer_id();
    other_key.updated_at = now.plus_seconds(10);
    other_key.sign(&imposter).expect("sign");
    let before = net.nodes[i].snapshot();
    net.now = now.plus_seconds(10);
    let e = net
        .apply(
            i,
            Input::Discovered {
                record: other_key,
                source: PeerSource::Dht,
            },
        )
        .expect_err("key change refused");
    assert!(matches!(e, EngineError::KeyMismatch { .. }), "{e}");

    let mut tampered = net.nodes[0].engine.discovery_record(now).expect("record");
    tampered.display_name = "Evil Dublin".into();
    let e = net
        .apply(
            i,
            Input::Discovered {
                record: tampered,
                source: PeerSource::Dht,
            },
        )
        .expect_err("tampered");
    assert!(is_bad_signature(&e), "{e}");

    net.now = now.plus_seconds(8 * 86_400);
    let mut ancient = net.nodes[0].engine.discovery_record(now).expect("record");
    ancient.updated_at = now.plus_seconds(-1);
    ancient.sign(&net.nodes[0].key).expect("sign");
    let e = net
        .apply(
            i,
            Input::Discovered {
                record: ancient,
                source: PeerSource::Dht,
            },
        )
        .expect_err("stale");
    assert!(matches!(e, EngineError::Stale(_)), "{e}");
    assert_eq!(net.nodes[i].snapshot(), before);
}

/// Found in review: a notice with an end far beyond its notice period kept an agreement "in
/// notice" for ever, and a peer's notice lifted our suspension.
#[test]
fn regression_a_revocation_cannot_outlast_its_notice_or_lift_a_suspension() {
    let mut net = net();
    let agreement_id = establish(&mut net, DUBLIN, BERLIN);
    let mut forever = RevocationNotice {
        agreement_id: agreement_id.clone(),
        revoked_by: mesh(BERLIN),
        reason: "never really".into(),
        notice_days: 1,
        effective_at: Timestamp::from_unix(253_402_300_799).expect("9999"),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    forever.sign(&net.node(BERLIN).key).expect("sign");
    let e = refused(&mut net, BERLIN, DUBLIN, PeerMessage::Revocation(forever));
    assert!(
        matches!(
            e,
            EngineError::ClockSkew {
                field: "effective_at",
                ..
            }
        ),
        "{e}"
    );

    net.command(
        DUBLIN,
        Command::Suspend {
            agreement_id: agreement_id.clone(),
            reason: "under review".into(),
            discrepancy_id: None,
        },
    )
    .expect("suspend");
    net.command(
        BERLIN,
        Command::Revoke {
            agreement_id: agreement_id.clone(),
            notice_days: 2,
            reason: "leaving".into(),
        },
    )
    .expect("revoke");
    net.run();
    let rec = &net.node(DUBLIN).agreements()[0];
    assert!(
        matches!(rec.status, vm_storage::AgreementStatus::Suspended { .. }),
        "still suspended: {:?}",
        rec.status
    );
    assert!(rec.revocation.is_some());
    // The notice still runs out while suspended.
    net.settle(3 * 86_400);
    for node in &net.nodes[..2] {
        assert!(matches!(
            node.agreements()[0].status,
            vm_storage::AgreementStatus::Revoked { .. }
        ));
    }
}

/// Found in review: a withdrawal arriving after the agreement came into force rewrote the
/// closed negotiation as withdrawn.
#[test]
fn regression_a_withdrawal_after_the_agreement_is_refused() {
    let mut net = net();
    establish(&mut net, DUBLIN, BERLIN);
    let record = net.node(BERLIN).proposals()[0].clone();
    let last = record.history.last().expect("accept").clone();
    let tip = vaultmesh_federation::engine::document_hash(&last).expect("hash");
    let withdraw = response(
        &net,
        DUBLIN,
        record.proposal.proposal_id.as_str(),
        ResponseType::Withdraw,
        Some(tip),
    );
    let e = refused(
        &mut net,
        DUBLIN,
        BERLIN,
        PeerMessage::Response {
            response: withdraw,
            agreement: None,
        },
    );
    assert!(matches!(e, EngineError::Closed(_)), "{e}");
    assert!(e.is_permanent());
}

/// Found in review: proposal ids are unique per proposer only, and a response about the
/// peer's proposal went to ours when both used one id.
#[test]
fn regression_responses_go_to_the_thread_they_answer_when_ids_collide() {
    let mut net = net();
    let id = propose(&mut net, DUBLIN, BERLIN, TrustLevel::VERIFY);
    net.run();
    // Berlin proposes to Dublin under the very same id.
    let mut theirs = proposal(&net, id.as_str(), net.now, 86_400);
    theirs.proposer = mesh(BERLIN);
    theirs.target = mesh(DUBLIN);
    theirs.sign(&net.node(BERLIN).key).expect("sign");
    net.apply(
        0,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Proposal(theirs),
        },
    )
    .expect("received");
    net.queue.clear();
    net.command(
        DUBLIN,
        Command::Counter {
            proposal: vaultmesh_federation::engine::ProposalRef {
                id: id.clone(),
                proposer: Some(mesh(BERLIN)),
            },
            terms: terms(&["Drills"], VerificationFrequency::DAILY),
        },
    )
    .expect("counter berlin's");
    let ours_on_theirs = net
        .node(DUBLIN)
        .proposals()
        .into_iter()
        .find(|p| p.proposal.proposer == mesh(BERLIN))
        .expect("berlin's")
        .history[0]
        .clone();
    let tip = vaultmesh_federation::engine::document_hash(&ours_on_theirs).expect("hash");
    let back = response(&net, BERLIN, id.as_str(), ResponseType::Counter, Some(tip));
    net.apply(
        0,
        Input::Peer {
            from: mesh(BERLIN),
            message: PeerMessage::Response {
                response: back,
                agreement: None,
            },
        },
    )
    .expect("applied to Berlin's thread");
    let proposals = net.node(DUBLIN).proposals();
    let by = |who| {
        proposals
            .iter()
            .find(|p| p.proposal.proposer == mesh(who))
            .expect("thread")
            .history
            .len()
    };
    assert_eq!(by(BERLIN), 2, "counter and counter-back");
    assert_eq!(by(DUBLIN), 0, "our own thread untouched");
}
