//! Benchmarks of vm-receipts (issue 2 targets), each figure printed beside the limit it is
//! measured against in the same run:
//!
//! - in-memory append (leaf hash + tree update, and with the per-receipt root a scroll
//!   writes) of 600-byte receipts, against raw blake3 of 600 bytes;
//! - durable appends/s with group commits of 1, 64 and 1024, against the disk's fdatasync rate;
//! - inclusion and consistency proofs (build + verify) at 1M and 10M leaves, against one
//!   blake3 node hash × the path length;
//! - opening a 1M-receipt scroll, against reading and blake3-hashing the same file.
//!
//! Run: `cargo bench -p vm-receipts --bench receipts` (VM_BENCH_QUICK=1 for a smoke run with
//! smaller sizes). Output is a Markdown table for BENCHMARKS.md.
#![allow(clippy::disallowed_methods, missing_docs)] // wall-clock timing is what a benchmark does

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use vm_receipts::ScrollName;
use vm_receipts::merkle::{
    Blake3Hasher, MerkleTree, TreeHasher, verify_consistency, verify_inclusion,
};
use vm_receipts::scroll::Scroll;

struct Row {
    what: String,
    ours: String,
    limit: String,
    ratio: String,
}

fn main() {
    let quick = std::env::var_os("VM_BENCH_QUICK").is_some();
    // VM_BENCH_ONLY=open (or append, durable, proofs) runs one group, e.g. under a profiler.
    let only = std::env::var("VM_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut rows = Vec::new();
    if wanted("append") {
        in_memory_append(&mut rows, if quick { 100_000 } else { 1_000_000 });
    }
    if wanted("durable") {
        durable_append(&mut rows, quick);
    }
    if wanted("proofs") {
        for leaves in if quick {
            vec![100_000u64]
        } else {
            vec![1_000_000, 10_000_000]
        } {
            proofs(&mut rows, leaves);
        }
    }
    if wanted("open") {
        open_scroll(&mut rows, if quick { 50_000 } else { 1_000_000 });
    }

    println!("| measurement | ours | limit (same run) | ours / limit |");
    println!("| --- | --- | --- | --- |");
    for r in rows {
        println!("| {} | {} | {} | {} |", r.what, r.ours, r.limit, r.ratio);
    }
}

/// A receipt whose canonical form (with root_hash) is about 600 bytes.
fn receipt(n: u64) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "type": "compliance_check",
        "check_id": format!("check-{n:012}"),
        "timestamp": "2025-12-06T12:00:00Z",
        "mesh": "did:vm:mesh:vaultmesh-dublin",
        "result": {"passed": true, "score": n % 100, "controls": ["AC-1", "AC-2", "AU-6", "SC-13"]},
        "tags": ["compliance", "quarterly"],
        "notes": "x".repeat(330),
    }) else {
        unreachable!()
    };
    map
}

fn per_sec(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn fmt_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k/s", rate / 1e3)
    } else {
        format!("{rate:.0}/s")
    }
}

fn in_memory_append(rows: &mut Vec<Row>, n: u64) {
    let leaf = vm_receipts::jcs::to_vec(&Value::Object(receipt(7))).expect("canonical");
    let mut leaf = leaf;
    leaf.resize(600, b' ');
    let mut data = leaf.clone();

    let start = Instant::now();
    for i in 0..n {
        data[..8].copy_from_slice(&i.to_le_bytes());
        black_box(Blake3Hasher::leaf(black_box(&data)));
    }
    let raw = per_sec(n, start.elapsed());

    let mut tree: MerkleTree = MerkleTree::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        data[..8].copy_from_slice(&i.to_le_bytes());
        tree.append(&data);
    }
    let append = per_sec(n, start.elapsed());
    black_box(tree.root());

    let mut tree: MerkleTree = MerkleTree::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        data[..8].copy_from_slice(&i.to_le_bytes());
        tree.append(&data);
        black_box(tree.root());
    }
    let with_root = per_sec(n, start.elapsed());

    rows.push(Row {
        what: format!("in-memory append, 600 B leaf ({n} leaves)"),
        ours: fmt_rate(append),
        limit: format!("raw blake3(0x00‖600 B) {}", fmt_rate(raw)),
        ratio: format!("{:.0}%", 100.0 * append / raw),
    });
    rows.push(Row {
        what: format!("in-memory append + root per receipt ({n} leaves)"),
        ours: fmt_rate(with_root),
        limit: format!("raw blake3(0x00‖600 B) {}", fmt_rate(raw)),
        ratio: format!("{:.0}%", 100.0 * with_root / raw),
    });
}

fn fdatasync_rate(dir: &std::path::Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("probe file");
    let line = [b'x'; 600];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        file.write_all(&line).expect("write");
        file.sync_data().expect("sync");
        n += 1;
    }
    per_sec(n, start.elapsed())
}

fn durable_append(rows: &mut Vec<Row>, quick: bool) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let syncs = fdatasync_rate(tmp.path());
    // The CPU bound of an append without I/O: canonicalise, hash the leaf, compute the root.
    let cpu = {
        let receipts: Vec<_> = (0..50_000u64).map(receipt).collect();
        let mut tree: MerkleTree = MerkleTree::new();
        let start = Instant::now();
        for r in &receipts {
            let (leaf, _slot) =
                vm_receipts::jcs::to_vec_with_slot(r, "root_hash").expect("canonical");
            tree.append(&leaf);
            black_box(tree.root());
        }
        per_sec(receipts.len() as u64, start.elapsed())
    };
    for (group, batches) in [(1usize, 2000u64), (64, 300), (1024, 200)] {
        let batches = if quick { batches / 10 } else { batches };
        let dir = tmp.path().join(format!("g{group}"));
        let (mut scroll, _) = Scroll::open(&dir, &ScrollName::federation()).expect("open");
        let prepared: Vec<Vec<Map<String, Value>>> = (0..batches)
            .map(|b| {
                (0..group as u64)
                    .map(|i| receipt(b * group as u64 + i))
                    .collect()
            })
            .collect();
        let start = Instant::now();
        for batch in &prepared {
            scroll.append_batch(batch).expect("append");
        }
        let rate = per_sec(batches * group as u64, start.elapsed());
        rows.push(Row {
            what: format!("durable append, group commit {group} (~600 B receipts)"),
            ours: fmt_rate(rate),
            limit: format!(
                "min(fdatasync {} × {group}, CPU-only append {}) = {}",
                fmt_rate(syncs),
                fmt_rate(cpu),
                fmt_rate((syncs * group as f64).min(cpu))
            ),
            ratio: format!("{:.2}", rate / (syncs * group as f64).min(cpu)),
        });
    }
}

fn proofs(rows: &mut Vec<Row>, leaves: u64) {
    let mut tree: MerkleTree = MerkleTree::with_capacity(leaves as usize);
    for i in 0..leaves {
        tree.push_leaf_hash(*blake3::hash(&i.to_le_bytes()).as_bytes());
    }
    let root = tree.root();
    let samples = 100_000u64;
    // A fixed pseudo-random walk over indices (no RNG needed for spread).
    let index = |k: u64| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % leaves;

    let start = Instant::now();
    let mut path_len = 0;
    for k in 0..samples {
        let proof = tree.prove_inclusion(index(k), leaves).expect("proof");
        path_len = proof.path.len();
        black_box(proof);
    }
    let build = start.elapsed() / samples as u32;
    let proof = tree.prove_inclusion(index(1), leaves).expect("proof");
    let leaf = tree.leaf_hash(index(1)).expect("leaf");
    let start = Instant::now();
    for _ in 0..samples {
        verify_inclusion::<Blake3Hasher>(black_box(&proof), &leaf, &root).expect("verifies");
    }
    let verify = start.elapsed() / samples as u32;

    let start = Instant::now();
    let mut consistency_len = 0;
    for k in 0..samples {
        let old = index(k).max(1);
        let proof = tree.prove_consistency(old, leaves).expect("proof");
        consistency_len = consistency_len.max(proof.path.len());
        black_box(proof);
    }
    let c_build = start.elapsed() / samples as u32;
    let old = index(3).max(1);
    let c_proof = tree.prove_consistency(old, leaves).expect("proof");
    let old_root = tree.root_at(old).expect("root");
    let start = Instant::now();
    for _ in 0..samples {
        verify_consistency::<Blake3Hasher>(black_box(&c_proof), &old_root, &root)
            .expect("verifies");
    }
    let c_verify = start.elapsed() / samples as u32;

    let node_start = Instant::now();
    let mut h = root;
    for _ in 0..samples {
        h = Blake3Hasher::node(&h, &root);
    }
    black_box(h);
    let node = node_start.elapsed() / samples as u32;

    let m = leaves / 1_000_000;
    let label = if m > 0 {
        format!("{m}M")
    } else {
        format!("{}k", leaves / 1000)
    };
    rows.push(Row {
        what: format!("inclusion proof at {label} leaves: build / verify ({path_len} hashes)"),
        ours: format!("{build:.2?} / {verify:.2?}"),
        limit: format!("{path_len} node hashes = {:.2?}", node * path_len as u32),
        ratio: format!(
            "{:.2} (verify)",
            verify.as_secs_f64() / (node * path_len as u32).as_secs_f64()
        ),
    });
    rows.push(Row {
        what: format!(
            "consistency proof at {label} leaves: build / verify (≤{consistency_len} hashes)"
        ),
        ours: format!("{c_build:.2?} / {c_verify:.2?}"),
        limit: format!(
            "{consistency_len} node hashes = {:.2?}",
            node * consistency_len as u32
        ),
        ratio: format!(
            "{:.2} (verify)",
            c_verify.as_secs_f64() / (node * consistency_len as u32).as_secs_f64()
        ),
    });
}

fn open_scroll(rows: &mut Vec<Row>, receipts: u64) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let name = ScrollName::federation();
    {
        let (mut scroll, _) = Scroll::open(tmp.path(), &name).expect("open");
        let mut n = 0;
        while n < receipts {
            let batch: Vec<_> = (n..(n + 4096).min(receipts)).map(receipt).collect();
            scroll.append_batch(&batch).expect("append");
            n += batch.len() as u64;
        }
    }
    let path = vm_receipts::scroll::scroll_path(tmp.path(), &name);
    let bytes = std::fs::metadata(&path).expect("meta").len();

    // The limit: read the file and blake3 every byte once (no parsing, no tree).
    let start = Instant::now();
    let mut file = std::fs::File::open(&path).expect("open");
    let mut buf = vec![0u8; 8 << 20];
    let mut hasher = blake3::Hasher::new();
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    black_box(hasher.finalize());
    let limit = start.elapsed();

    // Without a checkpoint (a first open, or one after a crash before any clean close):
    // every root is recomputed.
    let checkpoint = path.with_extension("checkpoint");
    std::fs::remove_file(&checkpoint).expect("remove checkpoint");
    let start = Instant::now();
    let (scroll, report) = Scroll::open(tmp.path(), &name).expect("open");
    let full = start.elapsed();
    assert_eq!((report.receipts, report.checkpoint_receipts), (receipts, 0));
    drop(scroll);
    // With the checkpoint that open wrote: leaves hashed, roots checked through it.
    let start = Instant::now();
    let (scroll, report) = Scroll::open(tmp.path(), &name).expect("open");
    let fast = start.elapsed();
    assert_eq!(report.checkpoint_receipts, receipts);
    black_box(scroll.root());
    for (what, took) in [
        ("no checkpoint: every root recomputed", full),
        ("with checkpoint", fast),
    ] {
        rows.push(Row {
            what: format!(
                "open a {receipts}-receipt scroll ({} MB), {what}",
                bytes / 1_000_000
            ),
            ours: format!("{took:.2?}"),
            limit: format!("read + blake3 of the file {limit:.2?}"),
            ratio: format!("{:.1}×", took.as_secs_f64() / limit.as_secs_f64()),
        });
    }
}
