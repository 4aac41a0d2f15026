//! Exactly-once receipts across crashes: the whole lifecycle (propose, counter, accept,
//! countersign, revoke with notice, revocation taking effect) is run once per crash point,
//! crashing a node at that point (after its engine committed but before it carried out the
//! outputs, after sending but before appending receipts, after appending but before telling
//! the engine) and restarting it from its redb file and scroll. Every run must end with each
//! Federation scroll holding each lifecycle receipt exactly once and verifying.

use std::collections::BTreeMap;

use vaultmesh_federation::engine::{Command, EngineConfig};
use vm_receipts::documents::{TrustLevel, VerificationFrequency};
use vm_receipts::receipts::FederationReceipt;
use vm_storage::{AgreementStatus, ProposalStatus};

use crate::engine::{assert_scrolls_verify, r, terms};
use crate::net::{Net, Step, mesh};

const DUBLIN: &str = "vaultmesh-dublin";
const BERLIN: &str = "vaultmesh-berlin";

fn config(name: &str) -> EngineConfig {
    let mut c = EngineConfig::new(name);
    // Fewer timers: this test is about crashes, not refreshes.
    c.discovery_refresh_secs = 30 * 86_400;
    c
}

/// The operator's next action, decided from stored state so that it survives restarts;
/// false once the lifecycle is complete.
fn operator_step(net: &mut Net) -> bool {
    let dublin = net.node(DUBLIN);
    let berlin = net.node(BERLIN);
    let Some(ours) = dublin.proposals().into_iter().next() else {
        net.command(
            DUBLIN,
            Command::Propose {
                target: mesh(BERLIN),
                trust_level: TrustLevel::VERIFY,
                terms: terms(&["Compliance"], VerificationFrequency::WEEKLY),
            },
        )
        .expect("propose");
        return true;
    };
    let id = ours.proposal.proposal_id.clone();
    if let Some(theirs) = berlin.proposals().into_iter().next()
        && theirs.status == ProposalStatus::Open
        && theirs.history.is_empty()
    {
        net.command(
            BERLIN,
            Command::Counter {
                proposal: r(&id),
                terms: terms(&["Compliance", "Drills"], VerificationFrequency::WEEKLY),
            },
        )
        .expect("counter");
        return true;
    }
    if ours.status == ProposalStatus::Open && ours.history.len() == 1 {
        net.command(DUBLIN, Command::Accept { proposal: r(&id) })
            .expect("accept");
        return true;
    }
    let (a, b) = (dublin.agreements(), berlin.agreements());
    if let ([a], [b]) = (a.as_slice(), b.as_slice())
        && a.status == AgreementStatus::Active
        && b.status == AgreementStatus::Active
    {
        net.command(
            DUBLIN,
            Command::Revoke {
                agreement_id: a.agreement.agreement_id.clone(),
                notice_days: 1,
                reason: "end of the pilot".into(),
            },
        )
        .expect("revoke");
        return true;
    }
    false
}

fn done(net: &Net) -> bool {
    net.nodes.iter().all(|n| {
        n.agreements()
            .first()
            .is_some_and(|a| matches!(a.status, AgreementStatus::Revoked { .. }))
    })
}

/// What each receipt is about, counted.
fn receipt_counts(net: &Net, node: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in net.nodes[node].receipts() {
        let key = match r {
            FederationReceipt::TrustProposal(p) => format!("proposal/{:?}", p.event),
            FederationReceipt::TrustEstablished(_) => "established".into(),
            FederationReceipt::TrustRevoked(_) => "revoked".into(),
            other => format!("unexpected {other:?}"),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn lifecycle(crash_at: Option<u64>) -> Net {
    let mut net = Net::with_configs(&[(DUBLIN, config(DUBLIN)), (BERLIN, config(BERLIN))], true);
    net.discover_all();
    net.crash_at = crash_at;
    for _ in 0..200 {
        if done(&net) {
            return net;
        }
        if !operator_step(&mut net) {
            // Nothing for the operators to do: let messages, resends and notices run.
            net.settle(2 * 86_400);
        }
        net.settle(600);
    }
    panic!(
        "lifecycle did not complete (crash at {crash_at:?}: {:?}); deliveries {:?}",
        net.crashes, net.deliveries
    );
}

#[test]
fn every_receipt_is_in_the_scroll_exactly_once_whatever_step_a_node_crashes_at() {
    let clean = lifecycle(None);
    let expected: Vec<BTreeMap<String, usize>> =
        (0..2).map(|i| receipt_counts(&clean, i)).collect();
    for counts in &expected {
        assert_eq!(counts.values().sum::<usize>(), 5, "{counts:?}");
        assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    }
    let points = clean.crash_points_seen;
    assert!(points > 20, "the lifecycle passes {points} crash points");
    let mut steps_crashed = BTreeMap::<String, u32>::new();
    for crash_at in 1..=points {
        let net = lifecycle(Some(crash_at));
        let Some(&(node, step)) = net.crashes.first() else {
            continue; // the run took a shorter path and never reached this point
        };
        *steps_crashed.entry(format!("{step:?}")).or_default() += 1;
        for (i, expected) in expected.iter().enumerate() {
            assert_eq!(
                &receipt_counts(&net, i),
                expected,
                "crash of node {node} at {step:?} (point {crash_at}): {}",
                net.nodes[i].id
            );
        }
        assert_scrolls_verify(&net);
        let a: Vec<Vec<_>> = net
            .nodes
            .iter()
            .map(|n| {
                n.agreements()
                    .into_iter()
                    .map(|r| (r.agreement, r.status, r.revocation))
                    .collect()
            })
            .collect();
        assert_eq!(a[0], a[1], "both sides hold the same agreement");
    }
    eprintln!("{points} crash points; crashed at {steps_crashed:?}");
    for step in [Step::AfterCommit, Step::BeforeAppend, Step::BeforeAck] {
        assert!(
            steps_crashed.contains_key(&format!("{step:?}")),
            "never crashed at {step:?}: {steps_crashed:?}"
        );
    }
}
