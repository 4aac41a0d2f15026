//! The simulator's scale targets (issue 7), each beside what one witness check cannot cost
//! less than, measured in the same run:
//!
//! - `steady`: N meshes, 5 agreements each, H simulated hours of hourly anchor and
//!   verification cycles (1,000 × 24 h is the target: under 60 s wall);
//! - `equivocation` and `history-rewrite` at the same scale: detection latency p50/p99;
//! - the floor: one check needs at least ~5 Ed25519 verifications (notification, anchor,
//!   the engine's own check, the attestation at the mesh, a gossiped root), 2 signatures
//!   and ~5 redb in-memory transactions; those are timed here alone.
//!
//! Run: `cargo bench -p vm-simnet --bench simnet` (`VM_BENCH_QUICK=1`: 50 meshes × 6 h;
//! `SIMNET_MESHES`, `SIMNET_HOURS` override). Output is Markdown for BENCHMARKS.md.
#![allow(clippy::disallowed_methods, missing_docs)] // wall-clock timing is what a benchmark does

use std::hint::black_box;
use std::time::Instant;

use vm_receipts::{Kind, MeshKey};
use vm_simnet::report::Report;
use vm_simnet::scenario;
use vm_storage::Store;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn run(name: &str, meshes: usize, hours: u64) -> Report {
    let mut c = scenario::config(name, meshes, 1).expect("scenario");
    c.hours = hours;
    let r = scenario::run(c);
    assert!(r.passed(), "{r}");
    r
}

/// Seconds per operation of the floor's parts.
fn floor() -> (f64, f64, f64) {
    let key = MeshKey::from_seed(&[7; 32]);
    let public = key.public_key();
    let message = vec![0x5a; 300];
    let n = 5_000;
    let sig = key.sign(Kind::Root, &message);
    let t = Instant::now();
    for _ in 0..n {
        black_box(public.verify(Kind::Root, black_box(&message), &sig)).expect("verifies");
    }
    let verify = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        black_box(key.sign(Kind::Root, black_box(&message)));
    }
    let sign = t.elapsed().as_secs_f64() / n as f64;
    let store = Store::in_memory().expect("store");
    let t = Instant::now();
    for i in 0..n {
        store
            .write(|tx| {
                tx.put(&vm_storage::AnchoredRoot {
                    notification: sample_notification(&key, i),
                    anchored_at: vm_receipts::Timestamp::from_unix(1_765_015_200).expect("t"),
                })
            })
            .expect("commit");
    }
    let commit = t.elapsed().as_secs_f64() / n as f64;
    (verify, sign, commit)
}

fn sample_notification(key: &MeshKey, i: u64) -> vm_receipts::documents::AnchorNotification {
    use vaultmesh_federation::anchor::{Batch, anchor_local};
    let me = vm_receipts::MeshId::from_name("bench").expect("id");
    let now = vm_receipts::Timestamp::from_unix(1_765_015_200).expect("t");
    let root = vm_receipts::documents::SignedRoot::new(
        key,
        me.clone(),
        "Compliance".parse().expect("scroll"),
        i,
        vm_receipts::Blake3Hash::digest(&i.to_le_bytes()),
        now,
    )
    .expect("signed");
    let batch = Batch::new(vec![root.clone()]).expect("batch");
    let anchor = anchor_local(key, &me, &batch.root(), now);
    vm_receipts::documents::AnchorNotification::new(root, batch.proof(0, &anchor).expect("proof"))
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    let meshes = env("SIMNET_MESHES").unwrap_or(if quick { 50 } else { 1000 }) as usize;
    let hours = env("SIMNET_HOURS").unwrap_or(if quick { 6 } else { 24 });
    let (verify, sign, commit) = floor();
    let per_check_floor = 5.0 * verify + 2.0 * sign + 5.0 * commit;
    println!(
        "| run | wall | events/s | checks | µs per check | floor µs per check | detection p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for name in ["steady", "equivocation", "history-rewrite"] {
        let r = run(name, meshes, hours);
        let p = |q| {
            r.detection_percentile(q)
                .map_or("-".into(), |s| format!("{s} s"))
        };
        println!(
            "| {name} {meshes} meshes × {hours} h | {:.1} s | {:.0}k | {} | {:.0} | {:.0} | {} / {} |",
            r.wall_secs,
            r.events as f64 / r.wall_secs / 1000.0,
            r.witness_checks,
            r.wall_secs * 1e6 / r.witness_checks.max(1) as f64,
            per_check_floor * 1e6,
            p(50.0),
            p(99.0),
        );
    }
    println!(
        "\nfloor parts (same run): Ed25519 verify {:.1} µs, sign {:.1} µs, redb in-memory write transaction {:.1} µs",
        verify * 1e6,
        sign * 1e6,
        commit * 1e6
    );
}
