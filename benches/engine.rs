//! Benchmarks of the trust engine (issue 3), each figure beside the limit it is measured
//! against in the same run:
//!
//! - inbound proposals handled per second (strict checks, Ed25519 verify, one redb write
//!   transaction with the record, its receipt and the sequence counter), on redb's in-memory
//!   backend and on a file (durable commit), against Ed25519 verification alone and against
//!   an empty durable redb transaction;
//! - whole lifecycles per second between two long-lived in-memory engines (propose, accept
//!   with a signed draft, countersign, both established, revoke, both revoked, receipts into
//!   memory logs), against the signatures such a lifecycle needs.
//!
//! Run: `cargo bench --bench engine` (VM_BENCH_QUICK=1 for a smoke run). Output is a
//! Markdown table for BENCHMARKS.md.
#![allow(clippy::disallowed_methods, missing_docs)] // wall-clock timing is what a benchmark does

use std::hint::black_box;
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};
use vaultmesh_federation::engine::{
    Command, Engine, EngineConfig, Event, Input, Output, PeerMessage, ProposalRef,
};
use vaultmesh_federation::federation_log::{self, MemoryLog};
use vm_receipts::documents::{
    ProposedTerms, SignatureField, SignedDocument, TrustLevel, TrustProposal, VerificationFrequency,
};
use vm_receipts::{Kind, MeshId, MeshKey, Timestamp};
use vm_storage::{PeerSource, Store};

const START: i64 = 1_765_015_200;

fn now() -> Timestamp {
    Timestamp::from_unix(START).expect("time")
}

fn terms() -> ProposedTerms {
    ProposedTerms {
        scrolls_to_share: vec!["Compliance".parse().expect("scroll")],
        verification_frequency: VerificationFrequency::DAILY,
        retention_period_days: 365,
        data_jurisdiction: Some("EU".into()),
        audit_rights: Some(true),
        extra: Default::default(),
    }
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn per_sec(r: f64) -> String {
    if r >= 1000.0 {
        format!("{:.1}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

struct Mesh {
    id: MeshId,
    key: MeshKey,
}

fn mesh(name: &str, seed: u8) -> Mesh {
    Mesh {
        id: MeshId::from_name(name).expect("id"),
        key: MeshKey::from_seed(&[seed; 32]),
    }
}

fn engine(m: &Mesh, store: Store) -> Engine {
    let config = EngineConfig::new(m.id.name());
    Engine::open(m.id.clone(), m.key.clone(), config, store, 0, [7; 32]).expect("engine")
}

fn learn(engine: &mut Engine, other: &mut Engine) {
    let record = other.discovery_record(now()).expect("record");
    engine
        .handle(
            now(),
            Input::Discovered {
                record,
                source: PeerSource::Manual,
            },
        )
        .expect("learn");
}

fn signed_proposals(from: &Mesh, to: &Mesh, n: u64) -> Vec<TrustProposal> {
    (0..n)
        .map(|i| {
            let mut p = TrustProposal {
                proposal_id: format!("fed-proposal-bench-{i}").parse().expect("id"),
                proposer: from.id.clone(),
                target: to.id.clone(),
                proposed_at: now(),
                expires_at: now().plus_seconds(86_400),
                proposed_trust_level: TrustLevel::VERIFY,
                proposed_terms: terms(),
                proposer_attestations: None,
                signature: SignatureField::unsigned(),
                extra: Default::default(),
            };
            p.sign(&from.key).expect("sign");
            p
        })
        .collect()
}

/// Inbound proposals into `store` from `n / 4` peers (four open proposals each, as a busy
/// public mesh would see); returns proposals/s.
fn inbound(store: Store, n: u64) -> f64 {
    let berlin = mesh("vaultmesh-berlin", 2);
    let mut b = engine(&berlin, store);
    let peers: Vec<Mesh> = (0..n.div_ceil(4))
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i + 1000).to_le_bytes());
            Mesh {
                id: MeshId::from_name(&format!("vaultmesh-peer-{i}")).expect("id"),
                key: MeshKey::from_seed(&seed),
            }
        })
        .collect();
    for p in &peers {
        b.handle(
            now(),
            Input::Command(Command::AddPeer {
                mesh_id: p.id.clone(),
                public_key: p.key.public_key(),
                addresses: Vec::new(),
            }),
        )
        .expect("add peer");
    }
    let proposals: Vec<(MeshId, TrustProposal)> = (0..n)
        .map(|i| {
            let from = &peers[(i % peers.len() as u64) as usize];
            let mut p = signed_proposals(from, &berlin, 1).remove(0);
            p.proposal_id = format!("fed-proposal-bench-{i}").parse().expect("id");
            p.sign(&from.key).expect("sign");
            (from.id.clone(), p)
        })
        .collect();
    let start = Instant::now();
    for (from, p) in proposals {
        let out = b
            .handle(
                now(),
                Input::Peer {
                    from,
                    message: PeerMessage::Proposal(p),
                },
            )
            .expect("accepted");
        black_box(out);
    }
    rate(n, start.elapsed())
}

fn verify_rate(n: u64) -> f64 {
    let key = MeshKey::from_seed(&[3; 32]);
    let message = vec![7u8; 600];
    let sig = key.sign(Kind::Proposal, &message);
    let public = key.public_key();
    let start = Instant::now();
    for _ in 0..n {
        public
            .verify(Kind::Proposal, black_box(&message), &sig)
            .expect("verifies");
    }
    rate(n, start.elapsed())
}

fn sign_rate(n: u64) -> f64 {
    let key = MeshKey::from_seed(&[3; 32]);
    let message = vec![7u8; 600];
    let start = Instant::now();
    for _ in 0..n {
        black_box(key.sign(Kind::Proposal, black_box(&message)));
    }
    rate(n, start.elapsed())
}

/// Durable redb transactions of one small row each, on a file.
fn redb_durable_rate(n: u64) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::create(dir.path().join("raw.redb")).expect("db");
    let table: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
    let row = vec![0u8; 2048];
    let start = Instant::now();
    for i in 0..n {
        let txn = db.begin_write().expect("txn");
        txn.open_table(table)
            .expect("table")
            .insert(i, row.as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    rate(n, start.elapsed())
}

/// Whole lifecycles between two long-lived in-memory engines (propose, accept with a signed
/// draft, countersign, both established, revoke with no notice, both revoked; receipts into
/// memory logs); returns lifecycles/s.
fn lifecycles(n: u64) -> f64 {
    let (dublin, berlin) = (mesh("vaultmesh-dublin", 1), mesh("vaultmesh-berlin", 2));
    let mut engines = [
        engine(&dublin, Store::in_memory().expect("store")),
        engine(&berlin, Store::in_memory().expect("store")),
    ];
    let mut logs = [MemoryLog::new(), MemoryLog::new()];
    let [d, b] = &mut engines;
    learn(d, b);
    learn(b, d);
    let ids = [&dublin.id, &berlin.id];
    let mut queue = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        let out = engines[0]
            .handle(
                now(),
                Input::Command(Command::Propose {
                    target: berlin.id.clone(),
                    trust_level: TrustLevel::VERIFY,
                    terms: terms(),
                }),
            )
            .expect("propose");
        let proposal_id = out
            .iter()
            .find_map(|o| match o {
                Output::Event(Event::Proposal { proposal_id, .. }) => Some(proposal_id.clone()),
                _ => None,
            })
            .expect("proposal id");
        route(0, out, &mut queue);
        pump(&mut engines, &mut logs, &mut queue, &ids);
        let out = engines[1]
            .handle(
                now(),
                Input::Command(Command::Accept {
                    proposal: ProposalRef {
                        id: proposal_id,
                        proposer: Some(dublin.id.clone()),
                    },
                }),
            )
            .expect("accept");
        route(1, out, &mut queue);
        let established = pump(&mut engines, &mut logs, &mut queue, &ids);
        let agreement_id = established.expect("established");
        let out = engines[0]
            .handle(
                now(),
                Input::Command(Command::Revoke {
                    agreement_id,
                    notice_days: 0,
                    reason: "bench".into(),
                }),
            )
            .expect("revoke");
        route(0, out, &mut queue);
        pump(&mut engines, &mut logs, &mut queue, &ids);
        for (e, log) in engines.iter_mut().zip(logs.iter_mut()) {
            federation_log::flush(e, log, now()).expect("flush");
        }
    }
    let took = start.elapsed();
    for log in &logs {
        // Sent or received, accepted, established, revoked: four receipts a lifecycle.
        assert_eq!(log.leaves().len() as u64, 4 * n);
    }
    rate(n, took)
}

fn route(from: usize, outputs: Vec<Output>, queue: &mut Vec<(usize, PeerMessage)>) {
    for o in outputs {
        if let Output::Send { message, .. } = o {
            queue.push((1 - from, message));
        }
    }
}

/// Delivers until the queue is empty; returns the agreement that came into force, if any.
fn pump(
    engines: &mut [Engine; 2],
    logs: &mut [MemoryLog; 2],
    queue: &mut Vec<(usize, PeerMessage)>,
    ids: &[&MeshId; 2],
) -> Option<vm_receipts::DocumentId> {
    let mut established = None;
    while let Some((to, message)) = queue.pop() {
        let out = engines[to]
            .handle(
                now(),
                Input::Peer {
                    from: ids[1 - to].clone(),
                    message,
                },
            )
            .expect("delivered");
        for o in &out {
            if let Output::Event(Event::Established { agreement_id, .. }) = o {
                established = Some(agreement_id.clone());
            }
        }
        route(to, out, queue);
        federation_log::flush(&mut engines[to], &mut logs[to], now()).expect("flush");
    }
    established
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    let scale = |full: u64, small: u64| if quick { small } else { full };
    let verify = verify_rate(scale(20_000, 2_000));
    let sign = sign_rate(scale(20_000, 2_000));
    let memory = inbound(Store::in_memory().expect("store"), scale(5_000, 500));
    let dir = tempfile::tempdir().expect("tempdir");
    let durable_n = scale(2_000, 200);
    let file = inbound(
        Store::open(&dir.path().join("state.redb")).expect("store"),
        durable_n,
    );
    let raw_durable = redb_durable_rate(durable_n);
    let lived = lifecycles(scale(2_000, 100));
    // A lifecycle signs 5 documents (proposal, accept, both agreement signatures, the
    // notice) and verifies 9 (the proposal; the accept; the draft's signature; the complete
    // agreement's two signatures on each side, plus the peer's on its return; the notice):
    // its signature work alone bounds the rate.
    let crypto_bound = 1.0 / (5.0 / sign + 9.0 / verify);

    println!("| measurement | ours | limit (same run) | ours / limit |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| inbound proposal, in-memory redb | {} | Ed25519 verify {} | {:.0}% |",
        per_sec(memory),
        per_sec(verify),
        100.0 * memory / verify
    );
    println!(
        "| inbound proposal, redb file (durable commit) | {} | empty durable redb txn {} | {:.0}% |",
        per_sec(file),
        per_sec(raw_durable),
        100.0 * file / raw_durable
    );
    println!(
        "| lifecycle (propose → accept → countersign → both established → revoke → both revoked), in memory | {} | signatures alone (5 sign + 9 verify) {} | {:.0}% |",
        per_sec(lived),
        per_sec(crypto_bound),
        100.0 * lived / crypto_bound
    );
}
