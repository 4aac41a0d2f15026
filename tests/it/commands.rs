//! `init` and `scroll append|verify|root|proof|check-proof` through the binary: outputs,
//! exit codes 0/1/2, and errors that say what to do.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::{init, run, run_ok};

/// `scroll append` of `input` to the Compliance scroll of data dir `d`.
fn append(d: &str, input: &str) -> std::process::Output {
    run(
        &[
            "scroll",
            "append",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
        ],
        input,
    )
}

/// `scroll verify` of the Compliance scroll of data dir `d`.
fn verify_compliance(d: &str) -> std::process::Output {
    run(
        &[
            "scroll",
            "verify",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
        ],
        "",
    )
}

/// `scroll root --json` of the Compliance scroll of data dir `d`.
fn compliance_root(d: &str) -> Value {
    serde_json::from_str(&run_ok(
        &[
            "scroll",
            "root",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
            "--json",
        ],
        "",
    ))
    .expect("json")
}

fn receipts(from: u64, to: u64) -> String {
    (from..to)
        .map(|n| format!("{{\"type\":\"compliance_check\",\"n\":{n},\"timestamp\":\"2025-12-06T12:00:00Z\"}}\n"))
        .collect()
}

#[test]
fn init_makes_a_mesh_with_a_private_key_and_an_empty_federation_scroll() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dublin");
    let report: Value = serde_json::from_str(&init(&dir, "vaultmesh-dublin")).expect("json");
    assert_eq!(report["mesh_id"], "did:vm:mesh:vaultmesh-dublin");
    let public_key = report["public_key"].as_str().expect("key");
    assert!(public_key.starts_with("ed25519:z6Mk"), "{public_key}");
    assert!(
        report["peer_id"]
            .as_str()
            .expect("peer")
            .starts_with("12D3KooW")
    );

    let key_mode = fs::metadata(dir.join("keys/mesh.key"))
        .expect("key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    assert_eq!(
        fs::read(dir.join("receipts/federation/federation_events.jsonl"))
            .expect("scroll")
            .len(),
        0
    );
    let root: Value =
        serde_json::from_slice(&fs::read(dir.join("ROOT.federation.txt")).expect("root"))
            .expect("json");
    assert_eq!(root["size"], 0);
    assert!(
        fs::read_to_string(dir.join("config.toml"))
            .expect("config")
            .contains("did:vm:mesh:vaultmesh-dublin")
    );

    let d = dir.to_str().expect("path");
    let verify: Value = serde_json::from_str(&run_ok(
        &[
            "scroll",
            "verify",
            "--data-dir",
            d,
            "--scroll",
            "Federation",
            "--json",
        ],
        "",
    ))
    .expect("json");
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["root_file"]["state"], "consistent");

    // A second init on the same directory is refused and changes nothing.
    let key_before = fs::read(dir.join("keys/mesh.key")).expect("key");
    let again = run(&["init", "--data-dir", d, "--mesh", "other"], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a mesh"));
    assert_eq!(
        fs::read(dir.join("keys/mesh.key")).expect("key"),
        key_before
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_argument() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().to_str().expect("path");
    for (args, needle) in [
        (
            vec!["init", "--data-dir", d, "--mesh", "Not_Valid"],
            "--mesh",
        ),
        (
            vec!["scroll", "verify", "--data-dir", d, "--scroll", "../etc"],
            "--scroll",
        ),
        (
            vec![
                "scroll",
                "append",
                "--data-dir",
                d,
                "--scroll",
                "C",
                "--batch",
                "0",
            ],
            "--batch",
        ),
        (
            vec!["scroll", "proof", "--data-dir", d, "--scroll", "C"],
            "--sequence",
        ),
        (
            vec!["scroll", "check-proof", "--public-key", "ed25519:z6Mk..."],
            "--public-key",
        ),
        (vec!["no-such-command"], "no-such-command"),
    ] {
        let out = run(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(run(&["--help"], "").status.code(), Some(0));
}

#[test]
fn append_verify_root_and_proofs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m");
    let report: Value = serde_json::from_str(&init(&dir, "vaultmesh-dublin")).expect("json");
    let public_key = report["public_key"].as_str().expect("key").to_owned();
    let d = dir.to_str().expect("path");

    let acks = run_ok(
        &[
            "scroll",
            "append",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
            "--json",
            "--batch",
            "7",
        ],
        &receipts(0, 40),
    );
    let acks: Vec<Value> = acks
        .lines()
        .map(|l| serde_json::from_str(l).expect("ack"))
        .collect();
    assert_eq!(acks.len(), 40);
    assert_eq!(acks[39]["sequence"], 39);
    let text = run_ok(
        &[
            "scroll",
            "append",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
        ],
        &receipts(40, 45),
    );
    assert!(
        text.contains("appended 5 receipts") && text.contains("now 45 receipts"),
        "{text}"
    );

    let root = compliance_root(d);
    assert_eq!(root["size"], 45);
    assert_eq!(root["signed_root"]["size"], 45);
    assert_eq!(root["signature_valid"], true);
    assert_eq!(root["root"], root["signed_root"]["root"]);

    // A third party checks a receipt with the proof and the public key alone.
    let proof = run_ok(
        &[
            "scroll",
            "proof",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
            "--sequence",
            "12",
        ],
        "",
    );
    let proof_path = tmp.path().join("proof.json");
    fs::write(&proof_path, &proof).expect("write");
    let p = proof_path.to_str().expect("path");
    // Made without a running node, the proof has no anchor: a signature alone, which the
    // mesh could make again for another history. Refused unless asked for, and said so.
    let unanchored = run(
        &[
            "scroll",
            "check-proof",
            "--proof",
            p,
            "--public-key",
            &public_key,
        ],
        "",
    );
    assert_eq!(unanchored.status.code(), Some(1));
    let said = String::from_utf8_lossy(&unanchored.stdout);
    assert!(
        said.contains("proof INVALID") && said.contains("no anchor proof"),
        "{said}"
    );
    let checked = run_ok(
        &[
            "scroll",
            "check-proof",
            "--proof",
            p,
            "--public-key",
            &public_key,
            "--allow-unanchored",
        ],
        "",
    );
    assert!(
        checked.contains("proof valid: receipt-sequence-12") && checked.contains("NOT ANCHORED"),
        "{checked}"
    );
    let tampered = proof.replace("\"n\":12", "\"n\":13");
    assert_ne!(tampered, proof);
    let out = run(
        &[
            "scroll",
            "check-proof",
            "--public-key",
            &public_key,
            "--allow-unanchored",
        ],
        &tampered,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("proof INVALID"));
    let other: Value =
        serde_json::from_str(&init(&tmp.path().join("other"), "other")).expect("json");
    let out = run(
        &[
            "scroll",
            "check-proof",
            "--proof",
            p,
            "--public-key",
            other["public_key"].as_str().expect("key"),
            "--allow-unanchored",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));

    let consistency: Value = serde_json::from_str(&run_ok(
        &[
            "scroll",
            "proof",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
            "--from-size",
            "10",
        ],
        "",
    ))
    .expect("json");
    assert_eq!(consistency["proof"]["old_size"], 10);
    assert_eq!(consistency["proof"]["new_size"], 45);

    // A receipt changed on disk: verify exits 1 and names the sequence.
    let path = dir.join("receipts/compliance/compliance_events.jsonl");
    let text = fs::read_to_string(&path).expect("read");
    fs::write(&path, text.replacen("\"n\":30", "\"n\":31", 1)).expect("write");
    let out = verify_compliance(d);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FIRST DIVERGENCE at receipt-sequence-30"),
        "{stdout}"
    );
    let out = append(d, &receipts(0, 1));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("receipt-sequence-30"));
}

#[test]
fn bad_input_is_refused_by_line_and_nothing_after_it_is_appended() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m");
    init(&dir, "m");
    let d = dir.to_str().expect("path");
    let input = format!(
        "{}{{\"type\":\"x\",\"a\":1,\"a\":2}}\n{}",
        receipts(0, 3),
        receipts(3, 5)
    );
    let out = append(d, &input);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input line 4") && err.contains("duplicate key \"a\""),
        "{err}"
    );
    let root = compliance_root(d);
    assert_eq!(root["size"], 3);

    for (bad, needle) in [
        ("[1,2]\n", "JSON object"),
        ("{\"no_type\":1}\n", "type"),
        (
            "{\"type\":\"x\",\"root_hash\":\"blake3:00\"}\n",
            "root_hash",
        ),
        ("{\"type\":\"x\",\"n\":9007199254740993}\n", "2^53"),
    ] {
        let out = append(d, bad);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{bad}: {err}");
    }
    let root = compliance_root(d);
    assert_eq!(root["size"], 3, "nothing was appended by refused input");
}

#[test]
fn the_federation_scroll_is_not_appended_by_hand() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m");
    init(&dir, "m");
    let d = dir.to_str().expect("path");
    let out = run(
        &[
            "scroll",
            "append",
            "--data-dir",
            d,
            "--scroll",
            "Federation",
        ],
        &receipts(0, 1),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("written by the node itself"));
    assert_eq!(
        fs::read(dir.join("receipts/federation/federation_events.jsonl"))
            .expect("read")
            .len(),
        0
    );
}

#[test]
fn errors_say_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("none");
    let d = d.to_str().expect("path");
    let out = verify_compliance(d);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `vm-federation init"));

    let dir = tmp.path().join("m");
    init(&dir, "m");
    let m = dir.to_str().expect("path");
    let out = run(
        &["scroll", "verify", "--data-dir", m, "--scroll", "Nope"],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("`scroll append` creates it"));

    let config = dir.join("config.toml");
    let original = fs::read_to_string(&config).expect("config");
    fs::write(&config, format!("{original}dispaly_name = \"typo\"\n")).expect("write");
    let out = append(m, &receipts(0, 1));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("dispaly_name"),
        "{err}"
    );
    fs::write(&config, original).expect("restore");

    fs::set_permissions(dir.join("keys/mesh.key"), fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let out = append(m, &receipts(0, 1));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[test]
fn a_data_dir_is_used_by_one_process_at_a_time() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m");
    init(&dir, "m");
    let d = dir.to_str().expect("path");
    let mut holder = crate::support::bin()
        .args([
            "scroll",
            "append",
            "--data-dir",
            d,
            "--scroll",
            "Compliance",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = holder.stdin.take().expect("stdin");
    stdin.write_all(receipts(0, 1).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    // Once the first receipt is acknowledged the holder has the lock.
    let mut ack = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut ack)
        .expect("ack");
    assert!(ack.contains("\"sequence\":0"), "{ack}");
    let out = append(d, &receipts(1, 2));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another vm-federation process")
    );
    drop(stdin);
    assert!(holder.wait().expect("wait").success());
}
