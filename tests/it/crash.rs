//! SIGKILL mid-append, 200 times: every acknowledged receipt survives and the scroll opens
//! cleanly each time (DESIGN §4 durability; issue 2 item 5).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use vm_receipts::ScrollName;
use vm_receipts::scroll::{Scroll, verify_scroll};

use crate::support::{bin, init};

const ROUNDS: u64 = 200;
const ACK_TIMEOUT: Duration = Duration::from_secs(20);

struct Acked {
    sequence: u64,
    root_hash: String,
    round: u64,
    n: u64,
}

#[test]
fn sigkill_mid_append_loses_no_acknowledged_receipt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m");
    init(&dir, "crash");
    let d = dir.to_str().expect("path").to_owned();
    let scroll_name: ScrollName = "Compliance".parse().expect("name");
    // Seeded: the same kill schedule every run.
    let mut rng = ChaCha8Rng::seed_from_u64(0x5c_7011_c4a5);
    let mut acked: Vec<Acked> = Vec::new();
    let mut torn_cuts = 0u64;
    // The scroll as the previous round left it: its size and root. Checking that the new
    // scroll has the same root at that size covers every earlier receipt at once.
    let mut previous: Option<(u64, vm_receipts::Blake3Hash)> = None;

    for round in 0..ROUNDS {
        let batch = rng.random_range(1..=64u32).to_string();
        let mut child = bin()
            .args([
                "scroll",
                "append",
                "--data-dir",
                &d,
                "--scroll",
                "Compliance",
                "--json",
                "--batch",
                &batch,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // Feed receipts until the child dies (the pipe breaks).
        let mut stdin = child.stdin.take().expect("stdin");
        let feeder = std::thread::spawn(move || {
            for n in 0..100_000u64 {
                let line = format!(
                    "{{\"type\":\"crash_test\",\"round\":{round},\"n\":{n},\"pad\":\"{}\"}}\n",
                    "x".repeat(200)
                );
                if stdin.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        // Read acknowledgements on a thread so the wait is bounded.
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let target = rng.random_range(0..60usize);
        let mut lines = Vec::new();
        while lines.len() < target {
            lines.push(
                rx.recv_timeout(ACK_TIMEOUT)
                    .expect("the child stopped acknowledging"),
            );
        }
        // Land the kill at a random point: between syncs, mid-write, mid-fsync.
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child was not killed by SIGKILL"
        );
        reader.join().expect("reader");
        feeder.join().expect("feeder");
        // Everything printed before the kill was acknowledged.
        lines.extend(rx.try_iter());
        for line in &lines {
            let v: Value = serde_json::from_str(line).expect("ack json");
            acked.push(Acked {
                sequence: v["sequence"].as_u64().expect("sequence"),
                root_hash: v["root_hash"].as_str().expect("root").to_owned(),
                round,
                n: acked_n(line, &acked, round),
            });
        }

        let (scroll, report) = Scroll::open(&dir, &scroll_name).unwrap_or_else(|e| {
            panic!("round {round}: the scroll did not open after SIGKILL: {e}")
        });
        torn_cuts += u64::from(report.torn_bytes_cut > 0);
        if let Some((size, root)) = previous {
            assert_eq!(
                scroll.root_at(size).expect("root"),
                root,
                "round {round}: earlier history changed"
            );
        }
        previous = Some((scroll.len(), scroll.root()));
        for a in acked.iter().filter(|a| a.round == round) {
            let line: Value =
                serde_json::from_slice(&scroll.read_line(a.sequence).unwrap_or_else(|e| {
                    panic!(
                        "round {round}: acknowledged receipt {} is gone: {e}",
                        a.sequence
                    )
                }))
                .expect("json");
            assert_eq!(
                line["root_hash"],
                a.root_hash.as_str(),
                "round {round}: sequence {}",
                a.sequence
            );
            assert_eq!(line["round"], a.round, "sequence {}", a.sequence);
            assert_eq!(line["n"], a.n, "sequence {}", a.sequence);
            assert_eq!(
                scroll.root_at(a.sequence + 1).expect("root").to_string(),
                a.root_hash
            );
        }
        drop(scroll);
        if round % 25 == 24 {
            let report = verify_scroll(&dir, &scroll_name, None).expect("verify");
            assert!(
                report.divergence.is_none(),
                "round {round}: {:?}",
                report.divergence
            );
        }
    }
    let report = verify_scroll(&dir, &scroll_name, None).expect("verify");
    assert!(report.divergence.is_none(), "{:?}", report.divergence);
    assert!(
        acked.len() as u64 >= ROUNDS,
        "too few acknowledgements to mean anything: {}",
        acked.len()
    );
    eprintln!(
        "crash test: {ROUNDS} kills, {} acknowledged receipts, {} receipts on disk, {torn_cuts} torn tails cut",
        acked.len(),
        report.receipts_verified
    );
}

/// The `n` of an acknowledged receipt: acknowledgements of one round come in input order,
/// starting from n = 0.
fn acked_n(_line: &str, acked: &[Acked], round: u64) -> u64 {
    acked.iter().rev().take_while(|a| a.round == round).count() as u64
}
