//! Soak (issue 19): three nodes, each a process of the binary under bench, witnessing each
//! other (Compliance shared by every pair; Dublin–Berlin at level 3, so they cross-anchor,
//! the other pairs at level 2) at a 1 s anchor interval for
//! `VM_SOAK_CYCLES` cycles (default 10,000; `VM_BENCH_QUICK=1`: 20), while a streaming
//! `scroll append` feeds each one's Compliance scroll a receipt every `VM_SOAK_FEED_MS`
//! (default 400 ms; 0: nothing is appended, so no cycle has anything new to witness).
//!
//! Sampled through the run, per node: RSS, open files, `state.redb` size, Federation scroll
//! receipts and bytes. At the end: growth per cycle after warm-up (the first quarter), the
//! Federation scroll's bytes per receipt by type, and the findings (there must be none).
//!
//! Run: `cargo bench --bench soak` (`VM_SOAK_CYCLES=N` for another length). Output is
//! Markdown for BENCHMARKS.md.
#![allow(clippy::disallowed_methods, missing_docs, dead_code)] // wall-clock sampling is what a soak does

#[path = "../tests/e2e/ops.rs"]
mod ops;
#[path = "../tests/e2e/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use ops::{add_peer, append, discrepancies, federate, key_of, wait_witnessed};
use support::{Daemon, bin};

/// One sample of one node.
#[derive(Clone, Copy, Default)]
struct Sample {
    rss_kib: u64,
    open_files: u64,
    state_bytes: u64,
    federation_receipts: u64,
    federation_bytes: u64,
}

fn sample(d: &Daemon) -> Sample {
    let pid = d.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    let size = |p: &str| std::fs::metadata(d.dir.join(p)).map_or(0, |m| m.len());
    let federation = d.dir.join("receipts/federation/federation_events.jsonl");
    let federation_receipts =
        std::fs::read(&federation).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64);
    Sample {
        rss_kib,
        open_files,
        state_bytes: size("state.redb"),
        federation_receipts,
        federation_bytes: size("receipts/federation/federation_events.jsonl"),
    }
}

/// A `scroll append` reading stdin, fed one receipt every `every` until `stop`.
fn feeder(d: &Daemon, every: Duration, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let mut child: Child = bin()
        .args([
            "scroll",
            "append",
            "--scroll",
            "Compliance",
            "--data-dir",
            d.d(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn scroll append");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            if writeln!(stdin, "{{\"type\":\"soak\",\"n\":{n},\"status\":\"ok\"}}").is_err() {
                break;
            }
            std::thread::sleep(every);
        }
        drop(stdin);
        let _ = child.wait();
        n
    })
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    let cycles: u64 = std::env::var("VM_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20 } else { 10_000 });
    let root = tempfile::tempdir().expect("tempdir");
    let names = [
        "vaultmesh-dublin",
        "vaultmesh-berlin",
        "vaultmesh-singapore",
    ];
    let mut nodes: Vec<Daemon> = names.iter().map(|n| Daemon::new(root.path(), n)).collect();
    for d in &mut nodes {
        d.init();
        d.append_config("\n[anchor]\ninterval_secs = 1\n");
        d.env = vec![("RUST_LOG".into(), "warn".into())];
        d.start();
        append(d, "Compliance", 1, "seed");
    }
    let keys: Vec<String> = nodes.iter().map(key_of).collect();
    for (i, a) in nodes.iter().enumerate() {
        for (j, b) in nodes.iter().enumerate() {
            if i != j {
                add_peer(a, b, &keys[j]);
            }
        }
    }
    // Dublin and Berlin at level 3 (they cross-anchor each other's roots), the others at 2.
    for (i, j, level) in [(0, 1, "3"), (0, 2, "2"), (1, 2, "2")] {
        federate(&nodes[i], &nodes[j], level, "Compliance");
    }
    for (i, j) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)] {
        wait_witnessed(&nodes[j], &nodes[i], "Compliance", 1);
    }

    // `VM_SOAK_FEED_MS=0`: no receipts streamed in (what a cycle costs when nothing changes).
    let feed_ms: u64 = std::env::var("VM_SOAK_FEED_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let stop = Arc::new(AtomicBool::new(false));
    let feeders: Vec<_> = nodes
        .iter()
        .filter(|_| feed_ms > 0)
        .map(|d| feeder(d, Duration::from_millis(feed_ms), stop.clone()))
        .collect();
    let samples = 20u64.min(cycles);
    let every = Duration::from_secs(cycles) / u32::try_from(samples).unwrap_or(1);
    let start = Instant::now();
    let mut series: Vec<(u64, Vec<Sample>)> = Vec::new();
    println!(
        "| cycle | node | RSS (KiB) | open files | state.redb (KiB) | Federation receipts | Federation (KiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for k in 1..=samples {
        let due = every * u32::try_from(k).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let cycle = start.elapsed().as_secs();
        let row: Vec<Sample> = nodes.iter().map(sample).collect();
        for (d, s) in nodes.iter().zip(&row) {
            println!(
                "| {cycle} | {} | {} | {} | {} | {} | {} |",
                d.name.trim_start_matches("vaultmesh-"),
                s.rss_kib,
                s.open_files,
                s.state_bytes / 1024,
                s.federation_receipts,
                s.federation_bytes / 1024
            );
        }
        series.push((cycle, row));
    }
    stop.store(true, Ordering::SeqCst);
    let mut fed: Vec<u64> = feeders.into_iter().map(|f| f.join().unwrap_or(0)).collect();
    fed.resize(nodes.len(), 0);

    // Growth per cycle after warm-up: from the first sample past a quarter of the run
    // (allocator pools, connection buffers and caches fill during the first minutes).
    let warm = series
        .iter()
        .position(|(c, _)| *c * 4 >= cycles)
        .unwrap_or(0);
    let (c0, first) = &series[warm];
    let (c1, last) = &series[series.len() - 1];
    let span = (c1 - c0).max(1) as f64;
    println!();
    println!("After warm-up (cycle {c0} to {c1}), per cycle:");
    println!();
    println!(
        "| node | RSS growth (bytes/cycle) | open files (start → end) | state.redb growth (bytes/cycle) | Federation receipts/cycle | Federation bytes/cycle | receipts fed |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, d) in nodes.iter().enumerate() {
        let (a, b) = (first[i], last[i]);
        println!(
            "| {} | {:.0} | {} → {} | {:.0} | {:.2} | {:.0} | {} |",
            d.name.trim_start_matches("vaultmesh-"),
            (b.rss_kib as f64 - a.rss_kib as f64) * 1024.0 / span,
            a.open_files,
            b.open_files,
            (b.state_bytes as f64 - a.state_bytes as f64) / span,
            (b.federation_receipts as f64 - a.federation_receipts as f64) / span,
            (b.federation_bytes as f64 - a.federation_bytes as f64) / span,
            fed[i],
        );
    }

    // Bytes per receipt, by type, over the three Federation scrolls.
    let mut by_type: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for d in &nodes {
        let path = d.dir.join("receipts/federation/federation_events.jsonl");
        for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_default();
            let mut kind = v["type"].as_str().unwrap_or_default().to_owned();
            if kind == "fed_witness_event" {
                kind.push_str(if v["witnessing_mesh"] == d.mesh_id().as_str() {
                    " (ours, with the peer's signed root)"
                } else {
                    " (a peer's, of us)"
                });
            }
            let e = by_type.entry(kind).or_default();
            e.0 += 1;
            e.1 += line.len() as u64 + 1;
        }
    }
    println!();
    println!("| receipt type | count (3 nodes) | mean bytes |");
    println!("|---|---|---|");
    for (kind, (n, bytes)) in &by_type {
        println!("| {kind} | {n} | {} |", bytes / n.max(&1));
    }
    let findings: usize = nodes.iter().map(|d| discrepancies(d).len()).sum();
    println!();
    println!("findings: {findings}");
    assert_eq!(findings, 0, "a soak of honest meshes recorded a finding");
}
