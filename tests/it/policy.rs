//! The request policy (DESIGN §6): every level, state and scroll rule, table-driven.

use vaultmesh_federation::engine::policy::{PeerRequest, Refusal, authorize};
use vm_receipts::documents::{
    AgreementTerms, FederationAgreement, TrustLevel, VerificationFrequency,
};
use vm_receipts::{MeshId, MeshKey, ScrollName, Timestamp};
use vm_storage::{AgreementRecord, AgreementStatus};

fn mesh(name: &str) -> MeshId {
    MeshId::from_name(name).expect("mesh")
}

fn scroll(name: &str) -> ScrollName {
    name.parse().expect("scroll")
}

fn at(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix).expect("time")
}

fn agreement(level: TrustLevel, status: AgreementStatus) -> AgreementRecord {
    let terms = AgreementTerms {
        scrolls_shared: vec![scroll("Compliance"), scroll("Drills")],
        verification_frequency: VerificationFrequency::HOURLY,
        retention_period_days: 365,
        data_jurisdiction: None,
        audit_rights: None,
        dispute_resolution: None,
        extra: Default::default(),
    };
    let agreement = FederationAgreement::draft(
        "fed-agreement-1".parse().expect("id"),
        [
            (mesh("dublin"), MeshKey::from_seed(&[1; 32]).public_key()),
            (mesh("berlin"), MeshKey::from_seed(&[2; 32]).public_key()),
        ],
        at(1_000),
        level,
        terms,
    )
    .expect("draft");
    AgreementRecord {
        agreement,
        status,
        revocation: None,
        next_verification_at: None,
        proposal: None,
        draft_deadline: None,
        peer_suspension: None,
        suspension_notices: 0,
        updated_at: at(1_000),
    }
}

fn ask(
    record: Option<&AgreementRecord>,
    now: i64,
    request: PeerRequest<'_>,
) -> Result<(), Refusal> {
    authorize(
        &mesh("dublin"),
        &mesh("berlin"),
        true,
        record,
        at(now),
        request,
    )
}

#[test]
fn each_level_permits_what_design_section_6_says() {
    let compliance = scroll("Compliance");
    let shared = [scroll("Compliance")];
    let requests = [
        (PeerRequest::Roots(&shared), TrustLevel::OBSERVE),
        (PeerRequest::Receipts(&compliance), TrustLevel::OBSERVE),
        (
            PeerRequest::InclusionProof(&compliance),
            TrustLevel::OBSERVE,
        ),
        (
            PeerRequest::ConsistencyProof(&compliance),
            TrustLevel::OBSERVE,
        ),
        (PeerRequest::VerifyReceipt(&compliance), TrustLevel::OBSERVE),
        (
            PeerRequest::SubmitAttestation(&compliance),
            TrustLevel::OBSERVE,
        ),
        (PeerRequest::GetAgreement, TrustLevel::OBSERVE),
        (PeerRequest::RevokeAgreement, TrustLevel::OBSERVE),
        (PeerRequest::Notify(&compliance), TrustLevel::VERIFY),
        (PeerRequest::Replicate(&compliance), TrustLevel::INTEGRATE),
    ];
    for level in [
        TrustLevel::OBSERVE,
        TrustLevel::VERIFY,
        TrustLevel::ATTEST,
        TrustLevel::INTEGRATE,
    ] {
        let record = agreement(level, AgreementStatus::Active);
        for (request, required) in requests {
            let got = ask(Some(&record), 2_000, request);
            if level >= required {
                assert_eq!(got, Ok(()), "{request:?} at {level}");
            } else {
                assert_eq!(
                    got,
                    Err(Refusal::LevelTooLow {
                        required,
                        agreed: level
                    }),
                    "{request:?} at {level}"
                );
            }
        }
    }
}

#[test]
fn requests_outside_the_shared_scrolls_are_refused() {
    let record = agreement(TrustLevel::INTEGRATE, AgreementStatus::Active);
    let treasury = scroll("Treasury");
    for request in [
        PeerRequest::Receipts(&treasury),
        PeerRequest::Notify(&treasury),
        PeerRequest::InclusionProof(&treasury),
        PeerRequest::Replicate(&treasury),
    ] {
        assert_eq!(
            ask(Some(&record), 2_000, request),
            Err(Refusal::ScrollNotShared(treasury.clone()))
        );
    }
    let mixed = [scroll("Compliance"), scroll("Treasury")];
    assert_eq!(
        ask(Some(&record), 2_000, PeerRequest::Roots(&mixed)),
        Err(Refusal::ScrollNotShared(treasury.clone()))
    );
    assert_eq!(
        ask(Some(&record), 2_000, PeerRequest::Roots(&[])),
        Ok(()),
        "no list: every shared scroll"
    );
    // Scroll names ignore case, as their files do.
    let lower = scroll("compliance");
    assert_eq!(
        ask(Some(&record), 2_000, PeerRequest::Receipts(&lower)),
        Ok(())
    );
}

#[test]
fn agreement_state_gates_everything_but_reading_it() {
    let compliance = scroll("Compliance");
    let notify = PeerRequest::Notify(&compliance);
    let level = TrustLevel::VERIFY;

    let revoking = agreement(
        level,
        AgreementStatus::Revoking {
            effective_at: at(5_000),
        },
    );
    assert_eq!(
        ask(Some(&revoking), 4_999, notify),
        Ok(()),
        "works until the notice ends"
    );
    assert_eq!(ask(Some(&revoking), 5_000, notify), Err(Refusal::Revoked));
    assert_eq!(
        ask(Some(&revoking), 5_000, PeerRequest::GetAgreement),
        Ok(())
    );

    let revoked = agreement(level, AgreementStatus::Revoked { at: at(5_000) });
    assert_eq!(
        ask(Some(&revoked), 6_000, PeerRequest::Roots(&[])),
        Err(Refusal::Revoked)
    );
    assert_eq!(
        ask(Some(&revoked), 6_000, PeerRequest::RevokeAgreement),
        Err(Refusal::Revoked)
    );

    let suspended = agreement(
        level,
        AgreementStatus::Suspended {
            reason: "root_mismatch".into(),
            by: None,
        },
    );
    assert_eq!(
        ask(Some(&suspended), 2_000, notify),
        Err(Refusal::Suspended)
    );
    assert_eq!(
        ask(Some(&suspended), 2_000, PeerRequest::Receipts(&compliance)),
        Err(Refusal::Suspended)
    );
    assert_eq!(
        ask(Some(&suspended), 2_000, PeerRequest::RevokeAgreement),
        Ok(())
    );
    // The finding a suspension is about still reaches the reported mesh; attestations do not.
    assert_eq!(
        ask(
            Some(&suspended),
            2_000,
            PeerRequest::ReportDiscrepancy(&compliance)
        ),
        Ok(())
    );
    assert_eq!(
        ask(
            Some(&suspended),
            2_000,
            PeerRequest::SubmitAttestation(&compliance)
        ),
        Err(Refusal::Suspended)
    );

    let drafted = agreement(level, AgreementStatus::AwaitingCountersignature);
    assert_eq!(
        ask(Some(&drafted), 2_000, notify),
        Err(Refusal::NotYetInForce)
    );
    assert_eq!(
        ask(Some(&drafted), 2_000, PeerRequest::GetAgreement),
        Ok(())
    );
}

#[test]
fn strangers_and_federation_off() {
    let record = agreement(TrustLevel::VERIFY, AgreementStatus::Active);
    let compliance = scroll("Compliance");
    assert_eq!(
        ask(None, 2_000, PeerRequest::Receipts(&compliance)),
        Err(Refusal::NoAgreement)
    );
    assert_eq!(ask(None, 2_000, PeerRequest::Propose), Ok(()));
    assert_eq!(ask(None, 2_000, PeerRequest::Discovery), Ok(()));
    // The agreement of two other meshes gives a third nothing.
    let outsider = authorize(
        &mesh("dublin"),
        &mesh("mallory"),
        true,
        Some(&record),
        at(2_000),
        PeerRequest::GetAgreement,
    );
    assert_eq!(outsider, Err(Refusal::NotAParty));
    // Trust level 0 on this node: nothing at all, not even discovery.
    for request in [
        PeerRequest::Discovery,
        PeerRequest::Propose,
        PeerRequest::GetAgreement,
    ] {
        let got = authorize(
            &mesh("dublin"),
            &mesh("berlin"),
            false,
            Some(&record),
            at(2_000),
            request,
        );
        assert_eq!(got, Err(Refusal::FederationOff));
    }
    assert!(
        Refusal::ScrollNotShared(compliance)
            .to_string()
            .contains("Compliance")
    );
}
