//! `state rebuild` (issue 15): the state database rebuilt from the Federation scroll alone
//! equals the original, table by table, except for what the rebuild documents as not
//! rebuilt (outboxes, caches, schedules, bookkeeping times and counters).

use vaultmesh_federation::anchor::{Batch, anchor_local};
use vaultmesh_federation::engine::{Command, CrossAnchored, Input};
use vaultmesh_federation::federation_log::ReceiptLog;
use vaultmesh_federation::state_rebuild::{NOT_REBUILT, rebuild_into};
use vm_receipts::documents::{TrustLevel, VerificationFrequency};
use vm_storage::{
    AgreementRecord, AgreementStatus, DiscrepancyRecord, PeerEntry, ReceivedAttestation, Record,
    Store, WitnessState,
};

use crate::engine::{r, terms};
use crate::engine_witness::{BERLIN, DUBLIN, SINGAPORE, net, notification, report, verified};
use crate::net::{Net, Node, mesh};

/// Dublin and Berlin at level 3: two verified roots, a cross-anchor, a conflicting root (a
/// discrepancy on both sides), a suspension and its lifting; Dublin and Singapore federated
/// and revoked.
fn history() -> Net {
    let mut net = net(TrustLevel::ATTEST);
    let key = net.node(DUBLIN).key.clone();
    let b = net.idx(BERLIN);
    let five = notification(&net, &key, 5, "five");
    net.apply(b, report(&five, None, verified())).expect("five");
    net.run();
    let berlin_key = net.node(BERLIN).key.clone();
    let batch = Batch::new(vec![five.signed_root()]).expect("batch");
    let anchor = anchor_local(&berlin_key, &mesh(BERLIN), &batch.root(), net.now);
    net.apply(
        b,
        Input::Anchored(vec![CrossAnchored {
            peer: mesh(DUBLIN),
            root: five.signed_root(),
            proof: batch.proof(0, &anchor).expect("proof"),
        }]),
    )
    .expect("cross-anchored");
    net.advance(60);
    let eight = notification(&net, &key, 8, "eight");
    net.apply(b, report(&eight, Some(5), verified()))
        .expect("eight");
    net.run();
    let other = notification(&net, &key, 8, "another eight");
    net.apply(b, report(&other, Some(8), verified()))
        .expect("conflict recorded");
    net.run();
    let agreement = net.node(BERLIN).agreements()[0]
        .agreement
        .agreement_id
        .clone();
    net.command(
        BERLIN,
        Command::Suspend {
            agreement_id: agreement.clone(),
            reason: "root_mismatch under review".into(),
            discrepancy_id: None,
        },
    )
    .expect("suspend");
    net.command(
        BERLIN,
        Command::Resume {
            agreement_id: agreement,
            reason: "resolved".into(),
        },
    )
    .expect("resume");
    net.run();
    // Dublin, the reported mesh, resolves its copy of the finding: closed on its side, kept
    // beside Berlin's open finding.
    let finding = all::<DiscrepancyRecord>(net.node(DUBLIN).store())[0]
        .id()
        .to_string();
    net.command(
        DUBLIN,
        Command::ResolveDiscrepancy {
            discrepancy_id: finding,
            outcome: vm_receipts::documents::ResolutionOutcome::Resynced,
            note: "re-published the root after a restore".into(),
        },
    )
    .expect("resolve");
    net.run();

    net.command(
        DUBLIN,
        Command::Propose {
            target: mesh(SINGAPORE),
            trust_level: TrustLevel::VERIFY,
            terms: terms(&["Compliance"], VerificationFrequency::HOURLY),
        },
    )
    .expect("propose");
    net.run();
    let id = net.node(SINGAPORE).proposals()[0]
        .proposal
        .proposal_id
        .clone();
    net.command(SINGAPORE, Command::Accept { proposal: r(&id) })
        .expect("accept");
    net.run();
    // Singapore witnesses Dublin too, and arbitrates Berlin's finding (its verdict is kept by
    // all three).
    crate::engine_witness::federate(&mut net, BERLIN, SINGAPORE, TrustLevel::OBSERVE);
    let s = net.idx(SINGAPORE);
    net.apply(s, report(&eight, None, verified()))
        .expect("Singapore witnesses");
    net.run();
    let finding = all::<DiscrepancyRecord>(net.node(BERLIN).store())[0]
        .id()
        .to_string();
    net.command(
        BERLIN,
        Command::Arbitrate {
            discrepancy_id: finding,
            arbiter: mesh(SINGAPORE),
        },
    )
    .expect("arbitrate");
    net.run();
    let with_singapore = net
        .node(DUBLIN)
        .agreements()
        .into_iter()
        .find(|a| a.agreement.parties.contains(&mesh(SINGAPORE)))
        .expect("agreement")
        .agreement
        .agreement_id;
    net.command(
        DUBLIN,
        Command::Revoke {
            agreement_id: with_singapore,
            notice_days: 0,
            reason: "ended".into(),
        },
    )
    .expect("revoke");
    net.run();
    net
}

/// `node`'s state rebuilt from its Federation log alone.
fn rebuilt(node: &Node) -> Store {
    let store = Store::in_memory().expect("store");
    let leaves = (0..node.log.len()).map(|i| Ok((i, node.log.leaf(i).expect("leaf"))));
    let report = rebuild_into(
        &store,
        &node.id,
        &node.key.public_key(),
        leaves,
        vm_receipts::Timestamp::EPOCH,
    )
    .expect("rebuild");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.not_rebuilt, NOT_REBUILT);
    store
}

fn all<R: Record>(store: &Store) -> Vec<R> {
    store.all().expect("read")
}

#[test]
fn a_rebuilt_state_equals_the_original_table_by_table() {
    let net = history();
    for name in [DUBLIN, BERLIN, SINGAPORE] {
        let node = net.node(name);
        let (original, rebuilt) = (node.store(), rebuilt(node));

        // Agreements that came into force: equal but for schedules and bookkeeping.
        let schedule_free = |mut a: AgreementRecord| {
            a.next_verification_at = None;
            a.updated_at = vm_receipts::Timestamp::EPOCH;
            a.proposal = None;
            a.draft_deadline = None;
            a
        };
        let expected: Vec<AgreementRecord> = all::<AgreementRecord>(original)
            .into_iter()
            .filter(|a| {
                !matches!(
                    a.status,
                    AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. }
                )
            })
            .map(schedule_free)
            .collect();
        let got: Vec<AgreementRecord> = all::<AgreementRecord>(&rebuilt)
            .into_iter()
            .map(schedule_free)
            .collect();
        assert!(!expected.is_empty(), "{name}: the history made agreements");
        assert_eq!(got, expected, "{name}: agreements");

        // Peers: the federated ones, with their keys (discovery records are a cache).
        let federated: Vec<(String, Option<vm_receipts::PublicKey>)> = all::<PeerEntry>(original)
            .into_iter()
            .filter(|p| {
                expected
                    .iter()
                    .any(|a| a.agreement.parties.contains(&p.mesh_id))
            })
            .map(|p| (p.mesh_id.to_string(), p.public_key))
            .collect();
        let got: Vec<_> = all::<PeerEntry>(&rebuilt)
            .into_iter()
            .map(|p| (p.mesh_id.to_string(), p.public_key))
            .collect();
        assert_eq!(got, federated, "{name}: peers");

        // Witness state: exactly.
        assert_eq!(
            all::<WitnessState>(&rebuilt),
            all::<WitnessState>(original),
            "{name}: witness state"
        );

        // Attestations received: equal but for when they arrived.
        let arrival_free = |mut a: ReceivedAttestation| {
            a.received_at = vm_receipts::Timestamp::EPOCH;
            a
        };
        assert_eq!(
            all::<ReceivedAttestation>(&rebuilt)
                .into_iter()
                .map(arrival_free)
                .collect::<Vec<_>>(),
            all::<ReceivedAttestation>(original)
                .into_iter()
                .map(arrival_free)
                .collect::<Vec<_>>(),
            "{name}: received attestations"
        );

        // Discrepancies: the signed reports and their evidence, but not the counters.
        let counter_free = |mut d: DiscrepancyRecord| {
            d.times_seen = 1;
            d.last_seen_at = None;
            d
        };
        assert_eq!(
            all::<DiscrepancyRecord>(&rebuilt)
                .into_iter()
                .map(counter_free)
                .collect::<Vec<_>>(),
            all::<DiscrepancyRecord>(original)
                .into_iter()
                .map(counter_free)
                .collect::<Vec<_>>(),
            "{name}: discrepancies"
        );
        assert_eq!(
            all::<vm_storage::ArbitrationRecord>(&rebuilt),
            all::<vm_storage::ArbitrationRecord>(original),
            "{name}: arbitrations"
        );
    }
    // The history reached every table the rebuild fills, on the side that holds it.
    let berlin = net.node(BERLIN).store();
    assert!(
        all::<WitnessState>(berlin)
            .iter()
            .any(|s| s.cross_anchored_size == Some(5))
    );
    let found = all::<DiscrepancyRecord>(berlin);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].arbitrations.len(),
        1,
        "Singapore's verdict is kept"
    );
    assert_eq!(
        all::<vm_storage::ArbitrationRecord>(net.node(SINGAPORE).store()).len(),
        1
    );
    assert!(
        found[0].resolved_at.is_none(),
        "only Berlin closes its finding"
    );
    assert_eq!(found[0].resolutions.len(), 1, "Dublin's word is kept");
    let dublin = net.node(DUBLIN).store();
    assert!(!all::<ReceivedAttestation>(dublin).is_empty());
    let reported = all::<DiscrepancyRecord>(dublin);
    assert_eq!(reported.len(), 1);
    assert!(reported[0].resolved_at.is_some(), "Dublin closed its copy");
    assert!(
        all::<AgreementRecord>(dublin)
            .iter()
            .any(|a| matches!(a.status, AgreementStatus::Revoked { .. }) && a.revocation.is_some())
    );
}
