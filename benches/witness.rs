//! Benchmarks of the witness protocol (issue 5), each figure beside its limit from the same
//! run:
//!
//! - **checks per second by one witness**: one notification (its root signature, its local
//!   anchor: inclusion in the batch and the anchor signature), a consistency proof from the
//!   size witnessed before, and 8 sampled receipts with inclusion proofs, each receipt
//!   parsed strictly and re-canonicalised to recompute its leaf (`witness::check`); against
//!   raw Ed25519 verification (a check verifies two signatures, so half the raw rate is its
//!   ceiling);
//! - **append → attestation on loopback**: two nodes in this process on real sockets,
//!   federated at level 2; one receipt is appended to A's Compliance scroll through the
//!   control socket, A runs an anchor cycle, and the clock stops when A's status shows B's
//!   attestation of that size (notify, evidence request, check, attestation, both receipts
//!   durable). Against a bare request-response round trip on the same loopback.
//!
//! Run: `cargo bench --bench witness` (VM_BENCH_QUICK=1 for a smoke run). Output is a
//! Markdown table for BENCHMARKS.md.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, missing_docs)] // wall-clock timing is what a benchmark does

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{Map, Value, json};
use vaultmesh_federation::anchor::{AnchorTrust, Batch, anchor_local};
use vaultmesh_federation::clock::{Clock, SystemClock};
use vaultmesh_federation::witness::{
    CheckInput, Consistency, Evidence, Sample, Verdict, check, choose_samples,
};
use vm_receipts::documents::{AnchorNotification, SignedRoot};
use vm_receipts::scroll::Scroll;
use vm_receipts::{Kind, MeshId, MeshKey, PublicKey, ScrollName};

#[path = "support/node.rs"]
mod node_support;

use node_support::{ctl, start};

fn per_sec(r: f64) -> String {
    if r >= 1000.0 {
        format!("{:.1}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

fn receipt(i: u64) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "type": "compliance_check",
        "check": format!("control-{i}"),
        "passed": !i.is_multiple_of(7),
        "operator": "did:vm:mesh:vaultmesh-dublin",
        "details": {"framework": "ISO27001", "clause": format!("A.{}.{}", i % 18, i % 9)},
    }) else {
        unreachable!()
    };
    map
}

/// One prepared check: a notification at `size`, the previous root, the evidence.
struct Case {
    notification: AnchorNotification,
    previous: SignedRoot,
    requested: Vec<u64>,
    evidence: Evidence,
}

fn prepare(dir: &Path, key: &MeshKey, mesh: &MeshId, size: u64, cases: usize) -> Vec<Case> {
    let name: ScrollName = "Compliance".parse().unwrap();
    let (mut scroll, _) = Scroll::open(dir, &name).unwrap();
    let batch: Vec<_> = (0..size).map(receipt).collect();
    for chunk in batch.chunks(10_000) {
        scroll.append_batch(chunk).unwrap();
    }
    let now = SystemClock.now();
    let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::from_seed([5; 32]);
    (0..cases)
        .map(|c| {
            // Each case extends a different earlier size to the full one.
            let old = size / 2 + (c as u64 * 7919) % (size / 2);
            let previous = SignedRoot::new(
                key,
                mesh.clone(),
                name.clone(),
                old,
                scroll.root_at(old).unwrap(),
                now,
            )
            .unwrap();
            let root = scroll.sign_root(key, mesh, now).unwrap();
            let batch = Batch::new(vec![root.clone()]).unwrap();
            let anchor = anchor_local(key, mesh, &batch.root(), now);
            let notification = AnchorNotification::new(root, batch.proof(0, &anchor).unwrap());
            let requested = choose_samples(size, 8, &mut rng);
            let samples = requested
                .iter()
                .map(|&s| Sample {
                    sequence: s,
                    line: String::from_utf8(scroll.read_line(s).unwrap()).unwrap(),
                    inclusion: scroll.prove_inclusion(s, size).unwrap(),
                })
                .collect();
            let evidence = Evidence {
                scroll: name.clone(),
                new_size: size,
                consistency: Some(Consistency {
                    old_root: scroll.root_at(old).unwrap(),
                    proof: scroll.prove_consistency(old, size).unwrap(),
                }),
                samples,
            };
            Case {
                notification,
                previous,
                requested,
                evidence,
            }
        })
        .collect()
}

/// Checks per second: the root signature, then `witness::check`.
fn checks_per_sec(cases: &[Case], key: PublicKey, rounds: usize) -> f64 {
    let key_of = |_: &MeshId| Some(key);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let now = SystemClock.now();
    let start = Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        for c in cases {
            c.notification.verify_root(&key).unwrap();
            let verdict = check(&CheckInput {
                notification: &c.notification,
                pushed: true,
                previous: Some(&c.previous),
                requested: &c.requested,
                evidence: &c.evidence,
                now,
                drift_secs: 300,
                trust: &trust,
                schema_version: None,
            });
            assert!(
                matches!(
                    verdict,
                    Verdict::Verified {
                        samples_checked: 8,
                        ..
                    }
                ),
                "{verdict:?}"
            );
            black_box(verdict);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn ed25519_per_sec(n: u64) -> f64 {
    let key = MeshKey::from_seed(&[9; 32]);
    let public = key.public_key();
    let message = vec![7u8; 200];
    let signature = key.sign(Kind::Root, &message);
    let start = Instant::now();
    for _ in 0..n {
        public
            .verify(Kind::Root, black_box(&message), &signature)
            .unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn wait_for(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..20_000 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Append → attestation latencies (ms), and a bare request-response round trip (ms).
async fn loopback(rounds: usize) -> (Vec<f64>, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), "bench-a", 11, "").await;
    let b = start(tmp.path(), "bench-b", 12, "").await;
    let sa = ctl(&a, Method::GET, "/v1/status", None).await;
    let sb = ctl(&b, Method::GET, "/v1/status", None).await;
    let addr = |s: &Value| {
        format!(
            "{}/p2p/{}",
            s["network"]["listen_addrs"][0].as_str().unwrap(),
            s["peer_id"].as_str().unwrap()
        )
    };
    ctl(&a, Method::POST, "/v1/peers", Some(json!({"op": "add_peer", "mesh_id": "bench-b", "public_key": sb["public_key"], "addresses": [addr(&sb)]}))).await;
    ctl(&b, Method::POST, "/v1/peers", Some(json!({"op": "add_peer", "mesh_id": "bench-a", "public_key": sa["public_key"], "addresses": [addr(&sa)]}))).await;
    ctl(
        &a,
        Method::POST,
        "/v1/scrolls",
        Some(json!({"op": "append", "scroll": "Compliance", "receipts": [receipt(0)]})),
    )
    .await;
    let terms = json!({"scrolls_to_share": ["Compliance"], "verification_frequency": "hourly", "retention_period_days": 30});
    ctl(
        &a,
        Method::POST,
        "/v1/proposals",
        Some(json!({"op": "propose", "target": "bench-b", "trust_level": 2, "terms": terms})),
    )
    .await;
    let mut id = String::new();
    wait_for("the proposal to arrive", async || {
        let list = ctl(&b, Method::GET, "/v1/proposals", None).await;
        match list
            .as_array()
            .and_then(|l| l.first())
            .and_then(|p| p["proposal_id"].as_str())
        {
            Some(found) => {
                id = found.to_owned();
                true
            }
            None => false,
        }
    })
    .await;
    ctl(
        &b,
        Method::POST,
        &format!("/v1/proposals/{id}/accept"),
        None,
    )
    .await;
    wait_for("the agreement", async || {
        let list = ctl(&a, Method::GET, "/v1/agreements", None).await;
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| x["status"]["state"] == "active"))
    })
    .await;

    // The floor: one discovery request-response from B to A on the same loopback.
    let net_b = vm_network::spawn({
        let mut c = vm_network::NetworkConfig::new(
            MeshKey::from_seed(&[13; 32]),
            std::sync::Arc::new(|| SystemClock.now()),
        );
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        c
    })
    .await
    .unwrap()
    .0;
    let body = serde_json::to_vec(&json!({"request": "discovery"})).unwrap();
    let peer_a = sa["peer_id"].as_str().unwrap().to_owned();
    net_b
        .request(&peer_a, vec![addr(&sa)], body.clone())
        .await
        .unwrap();
    let rr_rounds = 200;
    let t = Instant::now();
    for _ in 0..rr_rounds {
        net_b
            .request(&peer_a, vec![addr(&sa)], body.clone())
            .await
            .unwrap();
    }
    let rtt_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(rr_rounds);

    let mut latencies = Vec::with_capacity(rounds);
    for i in 1..=rounds {
        let t = Instant::now();
        let appended = ctl(
            &a,
            Method::POST,
            "/v1/scrolls",
            Some(json!({"op": "append", "scroll": "Compliance", "receipts": [receipt(i as u64)]})),
        )
        .await;
        let size = appended["size"].as_u64().unwrap();
        ctl(&a, Method::POST, "/v1/anchor", None).await;
        wait_for("the attestation", async || {
            let st = ctl(&a, Method::GET, "/v1/status", None).await;
            st["witness"]["attested_by_peers"]
                .as_array()
                .is_some_and(|l| {
                    l.iter()
                        .any(|x| x["size"] == size && x["result"] == "verified")
                })
        })
        .await;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for n in [a, b] {
        let _ = n.stop.send(());
        n.task.await.unwrap().unwrap();
    }
    (latencies, rtt_ms)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    let (size, cases, rounds, loops) = if quick {
        (1_000, 16, 2, 5)
    } else {
        (100_000, 256, 40, 100)
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = MeshKey::from_seed(&[3; 32]);
    let mesh = MeshId::from_name("vaultmesh-dublin").unwrap();
    let prepared = prepare(tmp.path(), &key, &mesh, size, cases);
    let ed = ed25519_per_sec(if quick { 2_000 } else { 100_000 });
    let checks = checks_per_sec(&prepared, key.public_key(), rounds);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut latencies, rtt) = runtime.block_on(loopback(loops));
    latencies.sort_by(f64::total_cmp);

    println!("| measure | ours | limit in the same run |");
    println!("|---|---|---|");
    println!(
        "| witness checks, scroll of {size} receipts (notification + local anchor + consistency proof + 8 samples) | {} | Ed25519 verify {} (a check verifies 2 signatures: ceiling {}) |",
        per_sec(checks),
        per_sec(ed),
        per_sec(ed / 2.0)
    );
    println!(
        "| append → attestation on loopback, {loops} rounds | p50 {:.1} ms, p99 {:.1} ms | request-response round trip {:.2} ms |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        rtt
    );
}
