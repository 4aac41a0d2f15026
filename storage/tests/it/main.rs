//! Integration tests of vm-storage: schema and migrations, transactions against a `BTreeMap`
//! model, witness-state compare-and-swap, the replay cache, durability across reopen, and
//! refusal of damaged values. Both backends: a file, and redb's in-memory backend.

use std::collections::BTreeMap;

mod damage;

use proptest::prelude::*;
use redb::{Database, ReadableDatabase, TableDefinition};
use vm_receipts::documents::{SignedRoot, WitnessResult};
use vm_receipts::{Blake3Hash, MeshId, MeshKey, ScrollName, Timestamp};
use vm_storage::{
    CasOutcome, PeerEntry, PeerSource, Record, Replay, SCHEMA_VERSION, Store, StoreError,
    WitnessState,
};

fn mesh(name: &str) -> MeshId {
    MeshId::from_name(name).expect("mesh name")
}

fn at(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix).expect("time")
}

fn peer(name: &str, updated: i64) -> PeerEntry {
    PeerEntry {
        mesh_id: mesh(name),
        public_key: Some(MeshKey::from_seed(&[name.len() as u8; 32]).public_key()),
        discovery_record: None,
        sources: BTreeMap::from([(PeerSource::Manual, at(updated))]),
        manual_addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + updated)],
        updated_at: at(updated),
    }
}

fn witness(size: u64) -> WitnessState {
    witness_of(size, &size.to_le_bytes())
}

fn witness_of(size: u64, root_seed: &[u8]) -> WitnessState {
    let key = MeshKey::from_seed(&[9; 32]);
    let root = SignedRoot::new(
        &key,
        mesh("dublin"),
        ScrollName::federation(),
        size,
        Blake3Hash::digest(root_seed),
        at(1_765_000_000),
    )
    .expect("signed root");
    WitnessState {
        peer: mesh("dublin"),
        scroll: ScrollName::federation(),
        latest: root,
        witnessed_at: at(1_765_000_100),
        result: WitnessResult::Verified,
        cross_anchored_size: None,
    }
}

#[test]
fn a_new_store_has_the_current_schema_and_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    {
        let store = Store::open(&path).expect("open");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        store.write(|tx| tx.put(&peer("berlin", 1))).expect("write");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(
        store.get::<PeerEntry>("did:vm:mesh:berlin").expect("read"),
        Some(peer("berlin", 1))
    );
    assert_eq!(
        Store::in_memory()
            .expect("memory")
            .schema_version()
            .expect("version"),
        SCHEMA_VERSION
    );
}

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

#[test]
fn an_old_database_is_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Version 0: a redb file with nothing in it (what an interrupted first start leaves).
    let old = dir.path().join("old.redb");
    drop(Database::create(&old).expect("create"));
    let store = Store::open(&old).expect("migrates");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert!(store.all::<PeerEntry>().expect("tables exist").is_empty());
    drop(store);

    let newer = dir.path().join("newer.redb");
    {
        let db = Database::create(&newer).expect("create");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META)
            .expect("meta")
            .insert("schema_version", 99)
            .expect("insert");
        // A table only the newer program knows: not "damage", just newer.
        txn.open_table(TableDefinition::<&str, u64>::new("from_the_future"))
            .expect("table")
            .insert("k", 1)
            .expect("insert");
        txn.commit().expect("commit");
    }
    match Store::open(&newer) {
        Err(StoreError::NewerSchema { found: 99, known }) => assert_eq!(known, SCHEMA_VERSION),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    // Refusing changed nothing.
    let db = Database::create(&newer).expect("reopen raw");
    let txn = db.begin_read().expect("read");
    assert_eq!(
        txn.open_table(META)
            .expect("meta")
            .get("schema_version")
            .expect("get")
            .map(|v| v.value()),
        Some(99)
    );
}

#[test]
fn a_failed_transaction_changes_no_table() {
    let store = Store::in_memory().expect("store");
    store.write(|tx| tx.put(&peer("berlin", 1))).expect("write");
    let result: Result<(), StoreError> = store.write(|tx| {
        tx.put(&peer("dublin", 2))?;
        tx.advance_witness(&witness(5), None)?;
        tx.remove::<PeerEntry>("did:vm:mesh:berlin")?;
        Err(StoreError::Database("the engine refused halfway".into()))
    });
    assert!(result.is_err());
    assert_eq!(
        store.all::<PeerEntry>().expect("read"),
        vec![peer("berlin", 1)]
    );
    assert!(store.all::<WitnessState>().expect("read").is_empty());
}

#[test]
fn witness_state_is_compare_and_swap_and_never_moves_back() {
    let store = Store::in_memory().expect("store");
    let advance = |new: &WitnessState, expected| {
        store
            .write(|tx| tx.advance_witness(new, expected))
            .expect("cas")
    };
    assert_eq!(advance(&witness(10), None), CasOutcome::Advanced);
    // A racing update that expected nothing stored loses, and sees what is stored.
    match advance(&witness(12), None) {
        CasOutcome::Stale(Some(stored)) => assert_eq!(stored.latest.size, 10),
        other => panic!("expected Stale, got {other:?}"),
    }
    assert_eq!(
        advance(&witness(9), Some(10)),
        CasOutcome::WouldMoveBackwards {
            stored: 10,
            offered: 9
        }
    );
    assert_eq!(
        advance(&witness(10), Some(10)),
        CasOutcome::Advanced,
        "same size (a newer signature) is fine"
    );
    // Another root for the same size is a conflict: refused, the stored root kept as evidence.
    match advance(&witness_of(10, b"forked"), Some(10)) {
        CasOutcome::Conflicting(stored) => assert_eq!(stored.latest.root, witness(10).latest.root),
        other => panic!("expected Conflicting, got {other:?}"),
    }
    assert_eq!(advance(&witness(20), Some(10)), CasOutcome::Advanced);
    assert!(matches!(
        advance(&witness(30), Some(10)),
        CasOutcome::Stale(_)
    ));
    let key = witness(0).key();
    assert_eq!(
        store
            .get::<WitnessState>(&key)
            .expect("read")
            .map(|w| w.latest.size),
        Some(20)
    );
}

/// Checks `(origin, nonce)` at `now` with the 300 s window of signed requests.
fn replay(store: &Store, origin: &MeshId, nonce: &str, now: i64) -> Replay {
    store
        .write(|tx| tx.check_replay(origin, nonce, at(now), at(now + 300)))
        .expect("check")
}

#[test]
fn replayed_nonces_are_refused_until_they_expire() {
    let store = Store::in_memory().expect("store");
    let origin = mesh("berlin");
    let check = |nonce: &str, now: i64| replay(&store, &origin, nonce, now);
    assert_eq!(check("n1", 1000), Replay::Fresh);
    assert_eq!(check("n1", 1100), Replay::Replayed);
    assert_eq!(check("n2", 1100), Replay::Fresh);
    assert_eq!(
        store
            .write(|tx| tx.check_replay(&mesh("dublin"), "n1", at(1100), at(1400)))
            .expect("check"),
        Replay::Fresh,
        "a nonce is per origin"
    );
    // After expiry the entry is purged and the nonce is new again (the timestamp window
    // refuses such an old request before it gets here).
    assert_eq!(check("n1", 2000), Replay::Fresh);
}

/// Found in review: an expired nonce reused before its index entry was purged got its new
/// record deleted by the later purge of the old entry, so the new request could be replayed.
#[test]
fn regression_reused_nonce_survives_the_purge_of_its_old_entry() {
    let store = Store::in_memory().expect("store");
    let origin = mesh("berlin");
    let check = |nonce: &str, now: i64| replay(&store, &origin, nonce, now);
    // More entries than one purge removes, all expiring together; "zz" sorts last.
    for i in 0..70 {
        assert_eq!(check(&format!("a{i:02}"), 1000), Replay::Fresh);
    }
    assert_eq!(check("zz", 1000), Replay::Fresh);
    // Long after: "zz" is reused (its old entry is expired but not yet purged).
    assert_eq!(check("zz", 2000), Replay::Fresh);
    // The next purge reaches the old "zz" index entry; the new record must survive it.
    assert_eq!(check("b00", 2001), Replay::Fresh);
    assert_eq!(check("b01", 2002), Replay::Fresh);
    assert_eq!(check("zz", 2003), Replay::Replayed);
}

#[test]
fn a_damaged_value_is_refused_naming_table_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    drop(Store::open(&path).expect("create"));
    {
        let db = Database::create(&path).expect("raw");
        let txn = db.begin_write().expect("txn");
        txn.open_table(PeerEntry::TABLE)
            .expect("peers")
            .insert("did:vm:mesh:berlin", b"{not json".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    // Refused at open (every record is decoded there), naming the table and the key.
    let err = Store::open(&path).expect_err("corrupt");
    let msg = err.to_string();
    assert!(
        msg.contains("peers") && msg.contains("did:vm:mesh:berlin"),
        "{msg}"
    );
}

#[test]
fn one_process_opens_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let _first = Store::open(&path).expect("open");
    let err = Store::open(&path).expect_err("second open refused");
    assert!(err.to_string().contains("state database"), "{err}");
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, i64),
    Remove(u8),
}

fn ops() -> impl Strategy<Value = Vec<(Vec<Op>, bool)>> {
    let op = prop_oneof![
        (0u8..12, 0i64..1000).prop_map(|(k, t)| Op::Put(k, t)),
        (0u8..12).prop_map(Op::Remove),
    ];
    // Transactions of 1-6 operations, each committed or failed at its end.
    prop::collection::vec(
        (prop::collection::vec(op, 1..6), prop::bool::weighted(0.8)),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5704_e000),
        ..ProptestConfig::default()
    })]

    /// The store behaves as a `BTreeMap` that applies whole committed transactions only.
    #[test]
    fn store_matches_a_btreemap_model(transactions in ops()) {
        let store = Store::in_memory().expect("store");
        let mut model: BTreeMap<String, PeerEntry> = BTreeMap::new();
        for (ops, commit) in transactions {
            let mut staged = model.clone();
            let result = store.write(|tx| {
                for op in &ops {
                    match op {
                        Op::Put(k, t) => {
                            let p = peer(&format!("mesh{k}"), *t);
                            tx.put(&p)?;
                            staged.insert(p.key(), p);
                        }
                        Op::Remove(k) => {
                            let key = format!("did:vm:mesh:mesh{k}");
                            let was = tx.remove::<PeerEntry>(&key)?;
                            assert_eq!(was, staged.remove(&key).is_some());
                        }
                    }
                }
                if commit { Ok(()) } else { Err(StoreError::Database("abort".into())) }
            });
            if commit {
                result.expect("commit");
                model = staged;
            } else {
                prop_assert!(result.is_err());
            }
            let stored: Vec<PeerEntry> = store.all().expect("read");
            prop_assert_eq!(stored, model.values().cloned().collect::<Vec<_>>());
        }
    }
}

/// SIGKILL a writer mid-stream, many times: every commit it acknowledged is there after.
#[test]
fn acknowledged_commits_survive_sigkill() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    // Cargo builds examples beside the test binaries: target/<profile>/examples.
    let exe = std::env::current_exe().expect("test binary");
    let writer = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("crash_writer"))
        .expect("target dir");
    assert!(
        writer.is_file(),
        "{} not built (cargo test builds examples)",
        writer.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut next = 0u64;
    for round in 0..25u64 {
        let mut child = Command::new(&writer)
            .arg(&path)
            .arg(next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Let it commit a varying number of transactions, then kill it mid-stream.
        for _ in 0..(5 + round * 3) {
            let line = lines.next().expect("writer stopped early").expect("read");
            acknowledged.push(line.parse().expect("index"));
        }
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9));
        acknowledged.extend(
            lines
                .map_while(Result::ok)
                .filter_map(|l| l.parse::<u64>().ok()),
        );
        next = acknowledged.last().map_or(0, |last| last + 1);

        let store = Store::open(&path).expect("reopens after SIGKILL");
        for i in &acknowledged {
            let key = format!("did:vm:mesh:mesh-{i}");
            assert!(
                store.get::<PeerEntry>(&key).expect("read").is_some(),
                "round {round}: commit {i} lost"
            );
        }
    }
}

#[test]
fn a_version_1_database_is_migrated_with_its_records_intact() {
    use vm_receipts::documents::{AgreementTerms, FederationAgreement, TrustLevel};
    use vm_storage::{AgreementRecord, AgreementStatus};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.redb");
    let agreement = FederationAgreement::draft(
        "fed-agreement-v1".parse().expect("id"),
        [
            (mesh("dublin"), MeshKey::from_seed(&[1; 32]).public_key()),
            (mesh("berlin"), MeshKey::from_seed(&[2; 32]).public_key()),
        ],
        at(1_765_000_000),
        TrustLevel::VERIFY,
        AgreementTerms {
            scrolls_shared: vec!["Compliance".parse().expect("scroll")],
            verification_frequency: "daily".parse().expect("frequency"),
            retention_period_days: 30,
            data_jurisdiction: None,
            audit_rights: None,
            dispute_resolution: None,
            extra: Default::default(),
        },
    )
    .expect("draft");
    // The record as version 1 wrote it: without the fields version 2 added.
    let v1 = serde_json::json!({
        "agreement": agreement,
        "status": {"state": "active"},
        "updated_at": "2025-12-06T10:00:00Z",
    });
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("txn");
        for name in ["peers", "proposals", "witness_state", "discrepancies"] {
            txn.open_table(TableDefinition::<&str, &[u8]>::new(name))
                .expect("table");
        }
        let bytes = serde_json::to_vec(&v1).expect("json");
        txn.open_table(AgreementRecord::TABLE)
            .expect("agreements")
            .insert("fed-agreement-v1", bytes.as_slice())
            .expect("insert");
        txn.open_table(META)
            .expect("meta")
            .insert("schema_version", 1)
            .expect("version");
        txn.commit().expect("commit");
    }
    let store = Store::open(&path).expect("migrates 1 -> 2");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let record: AgreementRecord = store.get("fed-agreement-v1").expect("read").expect("kept");
    assert_eq!(record.status, AgreementStatus::Active);
    assert_eq!(record.revocation, None);
    assert_eq!(record.next_verification_at, None);
    assert_eq!(record.agreement, agreement);
    // The tables version 2 added work.
    store
        .write(|tx| tx.queue_receipt(0, br#"{"type":"fed_trust_established"}"#))
        .expect("queue");
    assert_eq!(
        store
            .read(|tx| tx.pending_receipts())
            .expect("pending")
            .len(),
        1
    );
}

#[test]
fn the_receipt_outbox_never_gives_one_sequence_twice() {
    let store = Store::in_memory().expect("store");
    store
        .write(|tx| {
            tx.queue_receipt(5, b"{\"a\":1}")?;
            tx.queue_receipt(6, b"{\"a\":2}")
        })
        .expect("queue");
    let again = store.write(|tx| tx.queue_receipt(6, b"{\"a\":3}"));
    assert!(
        matches!(again, Err(StoreError::Database(ref m)) if m.contains("sequence 6")),
        "{again:?}"
    );
    let pending = store.read(|tx| tx.pending_receipts()).expect("pending");
    assert_eq!(
        pending,
        vec![(5, b"{\"a\":1}".to_vec()), (6, b"{\"a\":2}".to_vec())]
    );
    let removed = store
        .write(|tx| tx.receipts_stored_below(6))
        .expect("stored");
    assert_eq!(removed, 1);
    assert_eq!(
        store
            .read(|tx| tx.pending_receipts())
            .expect("pending")
            .len(),
        1
    );
    let schema = store.write(|tx| tx.set_meta("schema_version", 99));
    assert!(schema.is_err(), "the schema version is not a counter");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
}

fn proposal_record(n: u8, open: bool) -> vm_storage::ProposalRecord {
    use vm_receipts::documents::{
        ProposedTerms, SignatureField, TrustLevel, TrustProposal, VerificationFrequency,
    };
    let proposer = mesh(if n.is_multiple_of(2) {
        "dublin"
    } else {
        "berlin"
    });
    vm_storage::ProposalRecord {
        proposal: TrustProposal {
            proposal_id: format!("fed-proposal-{n}").parse().expect("id"),
            target: mesh(if n.is_multiple_of(2) {
                "berlin"
            } else {
                "dublin"
            }),
            proposer,
            proposed_at: at(1_000),
            expires_at: at(2_000 + i64::from(n)),
            proposed_trust_level: TrustLevel::VERIFY,
            proposed_terms: ProposedTerms {
                scrolls_to_share: vec!["Compliance".parse().expect("scroll")],
                verification_frequency: VerificationFrequency::DAILY,
                retention_period_days: 1,
                data_jurisdiction: None,
                audit_rights: None,
                extra: Default::default(),
            },
            proposer_attestations: None,
            signature: SignatureField::unsigned(),
            extra: Default::default(),
        },
        direction: vm_storage::Direction::Inbound,
        history: Vec::new(),
        status: if open {
            vm_storage::ProposalStatus::Open
        } else {
            vm_storage::ProposalStatus::Withdrawn
        },
        updated_at: at(1_000),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x1d3e_0001),
        ..ProptestConfig::default()
    })]

    /// The open-proposal index always lists exactly the stored proposals that are open,
    /// whatever sequence of puts, status changes, removes and failed transactions ran.
    #[test]
    fn the_deadline_index_follows_its_table(
        steps in prop::collection::vec((0u8..8, 0u8..3, prop::bool::weighted(0.85)), 1..60)
    ) {
        let store = Store::in_memory().expect("store");
        for (n, what, commit) in steps {
            let _ = store.write(|tx| {
                let record = proposal_record(n, what == 0);
                if what == 2 {
                    tx.remove::<vm_storage::ProposalRecord>(&record.key())?;
                } else {
                    tx.put(&record)?;
                }
                if commit { Ok(()) } else { Err(StoreError::Database("abort".into())) }
            });
        }
        let (records, index) = store
            .read(|tx| {
                Ok((
                    tx.all::<vm_storage::ProposalRecord>()?,
                    tx.index::<vm_storage::ProposalRecord>("")?,
                ))
            })
            .expect("read");
        let mut expected: Vec<(String, i64)> = records
            .iter()
            .filter(|r| r.status == vm_storage::ProposalStatus::Open)
            .map(|r| (r.index_key(), r.proposal.expires_at.unix()))
            .collect();
        expected.sort();
        prop_assert_eq!(index, expected);
    }
}

/// `write_volatile` (the replay cache of reads) keeps the replay rules: an entry is seen at
/// once by volatile and durable checks alike, and is in the file after a durable commit and
/// a reopen. (What a power cut does to a volatile commit not yet followed by a durable one,
/// redb's `Durability::None`, cannot be shown in a test: a killed process leaves its pages
/// in the page cache.)
#[test]
fn volatile_replay_entries_are_seen_at_once_and_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.redb");
    let origin = mesh("berlin");
    let volatile = |store: &Store, nonce: &str| {
        store
            .write_volatile(|tx| tx.check_replay(&origin, nonce, at(1000), at(1300)))
            .expect("check")
    };
    {
        let store = Store::open(&path).expect("store");
        assert_eq!(volatile(&store, "read-1"), Replay::Fresh);
        assert_eq!(volatile(&store, "read-1"), Replay::Replayed, "seen at once");
        assert_eq!(
            replay(&store, &origin, "read-1", 1000),
            Replay::Replayed,
            "seen by a durable check"
        );
        assert_eq!(replay(&store, &origin, "write-1", 1000), Replay::Fresh);
        assert_eq!(volatile(&store, "write-1"), Replay::Replayed);
        // More reads in a row than are left volatile (64): all still counted.
        for i in 0..100 {
            assert_eq!(volatile(&store, &format!("read-{}", i + 2)), Replay::Fresh);
        }
    }
    let store = Store::open(&path).expect("reopened");
    for nonce in ["read-1", "write-1", "read-101"] {
        assert_eq!(volatile(&store, nonce), Replay::Replayed, "{nonce} kept");
    }
}
