//! Issue 19: `scroll append` streams. Lines fed with pauses (`tail -f app.log | vm-federation
//! scroll append …`) are appended and acknowledged one group commit at a time, before stdin
//! closes, through a running node as without one; a bad line is refused with its number and
//! takes back nothing already acknowledged.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Daemon, bin};
use crate::witness::scroll_size;

/// `scroll append --json` on `d`'s Compliance scroll, its stdin open, its stdout read line by
/// line on a thread.
fn streaming_append(d: &Daemon) -> (Child, ChildStdin, mpsc::Receiver<String>) {
    let mut child = bin()
        .args([
            "scroll",
            "append",
            "--scroll",
            "Compliance",
            "--json",
            "--data-dir",
            d.d(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scroll append");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, stdin, rx)
}

fn ack(rx: &mpsc::Receiver<String>) -> Value {
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an acknowledgement while stdin is still open");
    serde_json::from_str(&line).expect("one JSON acknowledgement per line")
}

fn feed_with_pauses(d: &Daemon) {
    let start = scroll_size(d, "Compliance");
    let (child, mut stdin, rx) = streaming_append(d);
    for i in 0..3u64 {
        writeln!(stdin, "{{\"type\":\"log\",\"n\":{i}}}").expect("write a line");
        stdin.flush().expect("flush");
        // Acknowledged before the next line is even written.
        let a = ack(&rx);
        assert_eq!(a["sequence"], start + i, "{a}");
        assert!(
            a["root_hash"]
                .as_str()
                .is_some_and(|h| h.starts_with("blake3:")),
            "{a}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // A bad line is refused with its number; the three before it stay acknowledged.
    writeln!(stdin, "{{not json").expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("input line 4"), "{err}");
    assert!(err.contains("3 receipts before it were appended"), "{err}");
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "no acknowledgement of the bad line"
    );
}

#[test]
fn lines_are_acknowledged_as_they_arrive_through_a_running_node() {
    let mut d = Daemon::in_tempdir("vaultmesh-dublin");
    d.init();
    d.start();
    feed_with_pauses(&d);
    assert_eq!(scroll_size(&d, "Compliance"), 3);
}

#[test]
fn lines_are_acknowledged_as_they_arrive_without_a_node() {
    let d = Daemon::in_tempdir("vaultmesh-dublin");
    d.init();
    feed_with_pauses_offline(&d);
}

/// As [`feed_with_pauses`] with no node running (sizes read from the file).
fn feed_with_pauses_offline(d: &Daemon) {
    let (mut child, mut stdin, rx) = streaming_append(d);
    for i in 0..3u64 {
        writeln!(stdin, "{{\"type\":\"log\",\"n\":{i}}}").expect("write a line");
        stdin.flush().expect("flush");
        assert_eq!(ack(&rx)["sequence"], i);
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    let text = std::fs::read_to_string(d.dir.join("receipts/compliance/compliance_events.jsonl"))
        .expect("scroll");
    assert_eq!(text.lines().count(), 3);
}
