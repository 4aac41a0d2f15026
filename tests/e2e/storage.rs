//! Issue 15 with real daemons: faults of the disk and of the node's own files.
//!
//! - `state rebuild` restores a federated, witnessing mesh from its Federation scroll and key,
//!   which keeps witnessing its peer from the size it had reached;
//! - deleted, emptied and damaged `state.redb`, scroll, ROOT and key files each stop the node
//!   with an error that names the file and says what to do (never a panic, never a silent
//!   fresh start);
//! - a full disk (a small tmpfs) degrades the node, which says so in `status`, logs it a few
//!   times rather than in a hot loop, and heals without a restart once space is freed;
//! - a short kill -9 loop of a witnessed daemon while receipts stream in: every acknowledged
//!   receipt is present once, nobody is accused, witnessing resumes.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Daemon, bin, http_get, poll_n, shown};
use crate::witness::{
    add_peer, anchor, append, discrepancies, key_of, poll_witness, scroll_size, wait_witnessed,
    witnessed,
};

/// Cycles run on demand (`anchor now`).
const MANUAL: &str = "\n[anchor]\ninterval_secs = 86400\n";

/// Free TCP and UDP ports on 127.0.0.1, for a daemon that must keep its addresses across
/// restarts (issue 17 makes that the default; here the test pins them).
fn pin_ports(d: &Daemon) {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (t, u) = (
        tcp.local_addr().expect("addr").port(),
        udp.local_addr().expect("addr").port(),
    );
    drop((tcp, udp));
    d.append_config(&format!(
        "\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/{t}\", \"/ip4/127.0.0.1/udp/{u}/quic-v1\"]\n"
    ));
}

/// Dublin and Berlin with pinned ports, federated at level 2 over Compliance, each
/// witnessing the other; Berlin has witnessed Dublin's first three receipts.
fn pair(root: &Path) -> (Daemon, Daemon) {
    crate::ops::witnessing_pair(root, |d| {
        d.append_config(MANUAL);
        pin_ports(d);
    })
}

/// `node run` on `dir`, which must fail: its exit code (never a panic's 101) and stderr.
fn start_fails(dir: &Path) -> String {
    let mut child = bin()
        .args(["node", "run", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // 30 s at most.
    for _ in 0..600 {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(status.code(), Some(1), "exit {status}: {text}");
            assert!(!text.contains("panicked"), "{text}");
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("node run on {} started instead of refusing", dir.display());
}

/// A copy of the stopped mesh in `from`, to damage.
fn copy_of(from: &Path, to: &Path) -> PathBuf {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
    let _ = fs::remove_file(to.join(".lock"));
    to.to_owned()
}

fn assert_names(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "the error does not say {n:?}: {text}");
    }
}

#[test]
fn state_rebuild_restores_a_mesh_that_keeps_witnessing_from_where_it_was() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dublin, mut berlin) = pair(root.path());
    let before = witnessed(&berlin, &dublin, "Compliance").expect("witnessed");
    let agreements_before = berlin.json(&["agreements", "list"]);
    assert!(berlin.terminate().success());

    // Losing state.redb stops the node, naming the file and the way back.
    let state = berlin.dir.join("state.redb");
    fs::remove_file(&state).expect("remove state.redb");
    let text = start_fails(&berlin.dir);
    assert_names(&text, &["state.redb", "missing", "state rebuild"]);

    let out = berlin.cli(&["state", "rebuild", "--json"]);
    assert_eq!(out.status.code(), Some(0), "rebuild: {}", shown(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
    assert_eq!(report["rebuilt"]["agreements"], 1, "{report}");
    assert_eq!(report["rebuilt"]["witness_state"], 1, "{report}");

    berlin.start();
    // The rebuilt mesh holds what it had: the agreement, and Dublin witnessed at size 3.
    let after = witnessed(&berlin, &dublin, "Compliance").expect("witnessed after rebuild");
    for field in ["size", "root", "root_signed_at", "result"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    let agreements_after = berlin.json(&["agreements", "list"]);
    assert_eq!(
        agreements_after[0]["agreement_id"],
        agreements_before[0]["agreement_id"]
    );
    assert_eq!(agreements_after[0]["status"]["state"], "active");
    // Addresses are a cache the rebuild does not keep: the operator (or discovery) adds
    // Dublin's again.
    add_peer(&berlin, &dublin, &key_of(&dublin));

    // It keeps witnessing Dublin from there, and Dublin keeps witnessing it.
    append(&dublin, "Compliance", 2, "after-rebuild");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", 5);
    append(&berlin, "Compliance", 1, "after-rebuild");
    anchor(&berlin);
    wait_witnessed(&dublin, &berlin, "Compliance", 4);
    assert!(discrepancies(&berlin).is_empty());
    assert!(discrepancies(&dublin).is_empty());
}

#[test]
fn damaged_files_stop_the_node_with_an_error_that_says_what_to_do() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut dublin, mut berlin) = pair(root.path());
    assert!(berlin.terminate().success());
    assert!(dublin.terminate().success());
    let case = |name: &str| copy_of(&dublin.dir, &root.path().join(name));

    // state.redb emptied.
    let d = case("empty-state");
    fs::write(d.join("state.redb"), b"").expect("truncate");
    assert_names(
        &start_fails(&d),
        &["state.redb", "missing or empty", "state rebuild"],
    );

    // state.redb with a flipped byte inside a stored key (the peer's mesh id).
    let d = case("flipped-state");
    let path = d.join("state.redb");
    let mut bytes = fs::read(&path).expect("read");
    let needle = berlin.mesh_id().into_bytes();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("the peer's id is stored");
    bytes[at + 12] ^= 0xff;
    fs::write(&path, &bytes).expect("write");
    assert_names(
        &start_fails(&d),
        &["state.redb", "damaged", "state rebuild"],
    );

    // The Compliance scroll's file deleted (its checkpoint and ROOT file remain).
    let d = case("deleted-scroll");
    fs::remove_file(d.join("receipts/compliance/compliance_events.jsonl")).expect("rm");
    assert_names(
        &start_fails(&d),
        &["compliance_events.jsonl is missing", "3 receipts", "backup"],
    );

    // The scroll's file emptied.
    let d = case("emptied-scroll");
    fs::write(d.join("receipts/compliance/compliance_events.jsonl"), b"").expect("truncate");
    assert_names(&start_fails(&d), &["Compliance", "receipts were removed"]);

    // The Federation scroll deleted: never recreated empty beside its state.
    let d = case("deleted-federation");
    fs::remove_file(d.join("receipts/federation/federation_events.jsonl")).expect("rm");
    assert_names(&start_fails(&d), &["federation_events.jsonl is missing"]);

    // The key file deleted, emptied, damaged.
    let d = case("no-key");
    fs::remove_file(d.join("keys/mesh.key")).expect("rm");
    assert_names(&start_fails(&d), &["keys/mesh.key", "missing", "backup"]);
    let d = case("empty-key");
    fs::write(d.join("keys/mesh.key"), b"").expect("truncate");
    assert_names(
        &start_fails(&d),
        &["keys/mesh.key", "not a mesh key file", "backup"],
    );
    let d = case("damaged-key");
    let path = d.join("keys/mesh.key");
    let text = fs::read_to_string(&path).expect("key");
    let seed_at = text.find("\"secret_seed\": \"z").expect("seed") + 20;
    let mut bytes = text.into_bytes();
    bytes[seed_at] = if bytes[seed_at] == b'2' { b'3' } else { b'2' };
    fs::write(&path, bytes).expect("damage");
    assert_names(&start_fails(&d), &["keys/mesh.key", "damaged", "backup"]);

    // A damaged ROOT file of a scroll: refused (it alone holds the name as written), then
    // re-signed by the operator after the scroll verifies; the name keeps its case.
    let d = case("damaged-root");
    fs::write(d.join("ROOT.compliance.txt"), b"{\"not\": \"a root\"}\n").expect("damage");
    assert_names(&start_fails(&d), &["ROOT.compliance.txt", "--resign"]);
    let out = crate::support::run(&[
        "scroll",
        "root",
        "--data-dir",
        d.to_str().expect("utf-8"),
        "--scroll",
        "Compliance",
        "--resign",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let root_file = fs::read_to_string(d.join("ROOT.compliance.txt")).expect("root");
    assert!(
        root_file.contains("\"scroll\":\"Compliance\""),
        "{root_file}"
    );

    // A damaged ROOT file of the Federation scroll is re-signed, with a warning, once the
    // scroll verifies (its name is fixed); the node starts.
    let mut fed = Daemon::new(root.path(), "vaultmesh-dublin");
    fed.dir = case("damaged-federation-root");
    fs::write(fed.dir.join("ROOT.federation.txt"), b"garbage").expect("damage");
    fed.start();
    let status = fed.json(&["status"]);
    assert_eq!(status["health"]["state"], "ok", "{status}");
    assert!(
        fed.logs_text()
            .contains("re-signed after the scroll verified"),
        "{}",
        fed.logs_text()
    );
}

/// Mounts a tmpfs of `mib` MiB on `dir`; fails the test (does not skip it) when mounting is
/// not permitted: CI runs as root.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Self {
        fs::create_dir_all(dir).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (the full-disk test needs root, as CI has): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with one file until a write fails; returns the file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file
        .write_all(&block)
        .and_then(|()| file.sync_data())
        .is_ok()
    {}
    // Whatever is left below a block.
    while file
        .write_all(&block[..512])
        .and_then(|()| file.sync_data())
        .is_ok()
    {}
    path
}

fn health(d: &Daemon) -> Value {
    d.json(&["status"])["health"].clone()
}

fn stderr_lines(d: &Daemon) -> usize {
    d.logs_text().lines().count()
}

#[test]
fn a_full_disk_degrades_the_node_which_heals_without_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let mount = root.path().join("small-disk");
    let _tmpfs = Tmpfs::mount(&mount, 24);
    // The data directory on the small disk, the test's logs beside it.
    let mut d = Daemon::new(root.path(), "vaultmesh-dublin");
    d.dir = mount.join("vaultmesh-dublin");
    d.init();
    // No reserve, so the disk can be filled through the node, and a one-second anchor
    // cycle, so the engine and the Federation scroll keep writing while it is full.
    d.append_config(
        "\n[anchor]\ninterval_secs = 1\n[storage]\nmin_free_mb = 0\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    d.start();
    let pid = d.pid();
    let monitor = d.metrics_addr();
    assert_eq!(http_get(&monitor, "/readyz").0, 200);
    append(&d, "Compliance", 5, "before");
    poll_witness("an anchor cycle", || {
        let s = d.json(&["status"]);
        s["anchor"]["last_cycle"]
            .is_object()
            .then_some(())
            .ok_or_else(|| s["anchor"].to_string())
    });

    let filler = fill(&mount);
    // An append now fails with an error that says whether it may be stored and how to check.
    // A batch that needs new pages of the file.
    let file = root.path().join("during.jsonl");
    let batch: String = (0..400)
        .map(|i| {
            format!(
                "{{\"type\":\"c\",\"n\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat(100)
            )
        })
        .collect();
    fs::write(&file, batch).expect("write");
    let out = d.cli(&[
        "scroll",
        "append",
        "--scroll",
        "Compliance",
        "--file",
        file.to_str().expect("utf-8"),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        shown(&out).contains("may be in the scroll"),
        "the error says whether the receipts may be stored: {}",
        shown(&out)
    );
    // The node says it is degraded, naming what failed.
    let degraded = poll_n(
        "the node to report the full disk",
        100,
        Duration::from_millis(100),
        || {
            let h = health(&d);
            (h["state"] == "degraded")
                .then(|| h.clone())
                .ok_or_else(|| h.to_string())
        },
    );
    eprintln!("degraded: {degraded}");
    let faults = degraded["faults"].to_string();
    assert!(
        faults.contains("No space left") || faults.contains("os error 28"),
        "{faults}"
    );
    // Not ready while degraded, saying why; still alive.
    let (code, _, body) = http_get(&monitor, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("No space left") || body.contains("os error 28"),
        "{body}"
    );
    assert_eq!(http_get(&monitor, "/healthz").0, 200);
    // It logs the fault once per backoff step, not in a hot loop.
    let lines = stderr_lines(&d);
    std::thread::sleep(Duration::from_secs(3));
    let grown = stderr_lines(&d) - lines;
    eprintln!("{grown} log lines in 3 s while degraded");
    assert!(grown < 40, "{grown} log lines in 3 s while degraded");

    // Space comes back: the node heals by itself, and works.
    fs::remove_file(&filler).expect("free space");
    poll_n("the node to heal", 700, Duration::from_millis(100), || {
        let h = health(&d);
        (h["state"] == "ok")
            .then_some(())
            .ok_or_else(|| h.to_string())
    });
    assert_eq!(d.pid(), pid, "healed without a restart");
    let (code, _, body) = http_get(&monitor, "/readyz");
    assert_eq!(code, 200, "ready again once healed: {body}");
    let size = scroll_size(&d, "Compliance");
    let after = append(&d, "Compliance", 2, "after");
    assert_eq!(after, size + 2);
    assert!(d.terminate().success());
    let out = d.cli(&["scroll", "verify", "--scroll", "Compliance"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = d.cli(&["scroll", "verify", "--scroll", "Federation"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
}

#[test]
fn appends_are_refused_below_the_free_space_reserve() {
    let mut d = Daemon::in_tempdir("vaultmesh-dublin");
    d.init();
    // More than any disk has free.
    d.append_config("\n[storage]\nmin_free_mb = 1000000000\n");
    d.start();
    let file = d.dir.join("r.jsonl");
    fs::write(&file, "{\"type\":\"c\"}\n").expect("write");
    let out: Output = d.cli(&[
        "scroll",
        "append",
        "--scroll",
        "Compliance",
        "--file",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_names(&shown(&out), &["below the reserve", "min_free_mb"]);
    assert_eq!(scroll_size(&d, "Compliance"), 0);
}

#[test]
fn a_witnessed_daemon_killed_while_receipts_stream_in_loses_and_duplicates_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut dublin, berlin) = pair(root.path());
    let mut acknowledged: Vec<(String, bool)> = Vec::new();
    let mut through_node = 0;
    for round in 0..4u64 {
        // A writer appends one receipt per call, through the node while it runs; each exit 0
        // is an acknowledgement. The node is killed in the middle of the stream.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (dir, halt) = (dublin.d().to_owned(), stop.clone());
        let writer = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0;
            while !halt.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let tag = format!("r{round}-{i}");
                let mut child = bin()
                    .args([
                        "scroll",
                        "append",
                        "--scroll",
                        "Compliance",
                        "--data-dir",
                        &dir,
                    ])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn");
                {
                    use std::io::Write;
                    let mut stdin = child.stdin.take().expect("stdin");
                    let _ = writeln!(stdin, "{{\"type\":\"c\",\"tag\":\"{tag}\"}}");
                }
                match child.wait_with_output() {
                    Ok(out) if out.status.success() => {
                        let said = String::from_utf8_lossy(&out.stdout).into_owned();
                        let via_node = said.contains("running node");
                        eprintln!("{tag} acknowledged: {}", said.replace('\n', " | "));
                        acked.push((tag, via_node));
                    }
                    // Refused while the node is down (or dying): not acknowledged.
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(1200 + 250 * round));
        dublin.kill();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for (tag, via_node) in writer.join().expect("writer") {
            through_node += usize::from(via_node);
            acknowledged.push((tag, via_node));
        }
        dublin.start();
    }
    assert!(through_node > 0, "no receipt went through the node");
    eprintln!(
        "{} receipts acknowledged across 4 kills, {through_node} through the node",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());
    // Every acknowledged receipt is present, and none twice.
    let text = fs::read_to_string(
        dublin
            .dir
            .join("receipts/compliance/compliance_events.jsonl"),
    )
    .expect("scroll");
    let mut tags: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["tag"].as_str().map(str::to_owned))
        .collect();
    for (tag, _) in &acknowledged {
        if !tags.contains(tag) {
            for (i, line) in text.lines().enumerate() {
                eprintln!("line {i}: {}", &line[..line.len().min(120)]);
            }
        }
    }
    for (tag, via_node) in &acknowledged {
        assert!(
            tags.contains(tag),
            "acknowledged {tag} ({}) is missing; the scroll holds {} tagged receipts, from {:?} to {:?}; acknowledged around it: {:?}",
            if *via_node {
                "through the node"
            } else {
                "with the node down"
            },
            tags.len(),
            tags.first(),
            tags.last(),
            acknowledged
                .iter()
                .skip_while(|(t, _)| t != tag)
                .take(4)
                .collect::<Vec<_>>()
        );
    }
    let n = tags.len();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), n, "a receipt is stored twice");
    // Witnessing resumes at the size reached, and nobody is accused.
    let size = scroll_size(&dublin, "Compliance");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", size);
    assert!(discrepancies(&berlin).is_empty());
    assert!(discrepancies(&dublin).is_empty());
}
