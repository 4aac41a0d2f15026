//! What checking a state database at open costs (issue 15): `Store::open` runs redb's
//! integrity check and decodes every key and value of every table before the node trusts the
//! file; `Store::heal` reopens the same way after a fault. Measured beside the limit in the
//! same run: redb opening the same file with no checks of ours.
//!
//! The state is live state, not history: agreements, witness states and peers in the
//! hundreds to thousands, and a replay cache of signed-request nonces (one per HTTPS request
//! in the signature window, up to a million).
//!
//! Run: `cargo bench -p vm-storage --bench open` (VM_BENCH_QUICK=1 for a smoke run). Output
//! is a Markdown table for BENCHMARKS.md.
#![allow(clippy::disallowed_methods, missing_docs)] // wall-clock timing is what a benchmark does

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use vm_receipts::documents::{SignedRoot, WitnessResult};
use vm_receipts::{Blake3Hash, MeshId, MeshKey, ScrollName, Timestamp};
use vm_storage::{PeerEntry, PeerSource, Store, WitnessState};

fn at(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix).expect("time")
}

/// A state database with `records` peers and as many witness states, and `nonces` replay
/// entries.
fn build(path: &Path, records: usize, nonces: usize) {
    let store = Store::open(path).expect("create");
    let key = MeshKey::from_seed(&[7; 32]);
    for chunk in (0..records).collect::<Vec<_>>().chunks(500) {
        store
            .write(|tx| {
                for i in chunk {
                    let mesh = MeshId::from_name(&format!("mesh-{i:06}")).expect("mesh");
                    tx.put(&PeerEntry {
                        mesh_id: mesh.clone(),
                        public_key: Some(key.public_key()),
                        discovery_record: None,
                        sources: BTreeMap::from([(PeerSource::Manual, at(1_765_000_000))]),
                        manual_addresses: vec![format!("/ip4/10.0.0.1/tcp/{}", 4000 + i)],
                        updated_at: at(1_765_000_000),
                    })?;
                    let root = SignedRoot::new(
                        &key,
                        mesh.clone(),
                        ScrollName::federation(),
                        *i as u64,
                        Blake3Hash::digest(&i.to_le_bytes()),
                        at(1_765_000_000),
                    )
                    .expect("root");
                    tx.put(&WitnessState {
                        peer: mesh,
                        scroll: ScrollName::federation(),
                        latest: root,
                        witnessed_at: at(1_765_000_100),
                        result: WitnessResult::Verified,
                        cross_anchored_size: None,
                    })?;
                }
                Ok(())
            })
            .expect("records");
    }
    let origin = MeshId::from_name("client").expect("mesh");
    for chunk in (0..nonces).collect::<Vec<_>>().chunks(10_000) {
        store
            .write(|tx| {
                for n in chunk {
                    tx.check_replay(
                        &origin,
                        &format!("nonce-{n:012}"),
                        at(1_765_000_000),
                        at(1_765_000_300),
                    )?;
                }
                Ok(())
            })
            .expect("nonces");
    }
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    let sizes: &[(usize, usize)] = if quick {
        &[(100, 1_000)]
    } else {
        &[(100, 10_000), (1_000, 100_000), (1_000, 1_000_000)]
    };
    let reps = if quick { 3 } else { 7 };
    println!(
        "| records (peers + witness states) | replay entries | file | `Store::open` (checked) | redb open alone | checks cost |"
    );
    println!("|---|---|---|---|---|---|");
    for &(records, nonces) in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        build(&path, records, nonces);
        let size = std::fs::metadata(&path).expect("size").len();
        let mut checked = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            drop(Store::open(&path).expect("open"));
            checked.push(t.elapsed());
            let t = Instant::now();
            drop(redb::Database::create(&path).expect("open"));
            plain.push(t.elapsed());
        }
        let (c, p) = (median(checked), median(plain));
        println!(
            "| {} | {nonces} | {:.1} MiB | {:.1} ms | {:.2} ms | {:.1} ms |",
            2 * records,
            size as f64 / (1024.0 * 1024.0),
            c.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            (c.saturating_sub(p)).as_secs_f64() * 1e3,
        );
    }
}
