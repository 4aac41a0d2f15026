//! One daemon each: the data-directory lock, the control socket's mode, SIGTERM, and the
//! exit codes of commands that cannot be served.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use crate::support::{Daemon, run, shown};

/// A running daemon in a temporary directory of its own.
fn running(name: &str) -> Daemon {
    let mut d = Daemon::in_tempdir(name);
    d.start();
    d
}

// A second `node run` on a directory a node already uses exits 1 saying the directory is in
// use, and the first node keeps running and answering.
#[test]
fn a_second_node_on_the_same_directory_is_refused() {
    let mut d = running("locked");
    let second = run(&["node", "run", "--data-dir", d.d(), "--mesh", "locked"]);
    assert_eq!(second.status.code(), Some(1), "{}", shown(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(d.d()) && stderr.contains("is in use"),
        "{}",
        shown(&second)
    );
    assert!(d.try_wait().is_none(), "the first node stopped");
    let status = d.json(&["status"]);
    assert_eq!(status["peer_id"], d.peer_id.as_str(), "{status}");
    assert!(d.dir.join("control.sock").exists());
}

// The control socket is a socket only its owner may use (mode 0600).
#[test]
fn the_control_socket_is_owner_only() {
    let d = running("sockmode");
    let meta = std::fs::symlink_metadata(d.dir.join("control.sock")).expect("control.sock");
    assert!(meta.file_type().is_socket(), "{meta:?}");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

// SIGTERM stops the daemon with exit 0 and removes control.sock; the directory is then free
// for the next node.
#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = running("term");
    assert!(d.dir.join("control.sock").exists());
    let status = d.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!d.dir.join("control.sock").exists(), "control.sock remains");
    // The lock went with the process: the same directory starts again.
    d.start();
    assert_eq!(d.json(&["status"])["mesh_id"], "did:vm:mesh:term");
}

// A command against a directory with no running node exits 1 and names the socket it tried.
#[test]
fn status_without_a_node_names_the_control_socket() {
    let d = Daemon::in_tempdir("idle");
    d.init();
    let out = d.cli(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let socket = d.dir.join("control.sock");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(socket.to_str().expect("utf-8 path")),
        "stderr does not name {}: {}",
        socket.display(),
        shown(&out)
    );
    assert!(out.stdout.is_empty(), "{}", shown(&out));
}

// `verify` exits 1 saying the witness protocol is not built, and the node keeps running.
#[test]
fn verify_without_an_agreement_names_the_problem() {
    let mut d = running("witness");
    let out = d.cli(&["verify", "--mesh", "x", "--scroll", "Federation"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no agreement in force with did:vm:mesh:x"),
        "{}",
        shown(&out)
    );
    assert!(d.try_wait().is_none(), "the node stopped");
}

// A usage error (`propose` without --target) exits 2 before reaching the node.
#[test]
fn a_usage_error_exits_2() {
    let mut d = running("usage");
    let out = d.cli(&["propose", "--trust-level", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--target"),
        "{}",
        shown(&out)
    );
    assert_eq!(d.json(&["proposals", "list"]), serde_json::json!([]));
    assert!(d.try_wait().is_none(), "the node stopped");
}

// Witness and HTTPS settings out of range stop `node run` at once, naming the key; nothing
// is left running.
#[test]
fn bad_anchor_witness_and_http_settings_are_refused_at_start() {
    for (section, says) in [
        ("[anchor]\nbackend = \"bitcoin\"\n", "backend must be"),
        ("[anchor]\nbackend = \"rfc3161\"\n", "needs tsa_url"),
        (
            "[anchor]\nbackend = \"rfc3161\"\ntsa_url = \"ftp://tsa\"\n",
            "tsa_url",
        ),
        ("[witness]\nsamples = 0\n", "samples must be 1 to 64"),
        (
            "[witness]\ntsa_trust = [\"/nonexistent/ca.pem\"]\n",
            "tsa_trust",
        ),
        ("[http]\nlisten = \"not an address\"\n", "[http] listen"),
    ] {
        let d = Daemon::in_tempdir("settings");
        d.init();
        d.append_config(&format!("\n{section}"));
        let out = run(&["node", "run", "--data-dir", d.d()]);
        assert_eq!(out.status.code(), Some(1), "{section}: {}", shown(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{section}: {}", shown(&out));
        assert!(
            !d.dir.join("control.sock").exists(),
            "{section}: a socket was left"
        );
    }
}

// Trust level 0 (`isolated`, DESIGN §6): federation off, so the node opens no federation
// listener of either transport (no libp2p address, no HTTPS API even when configured) and
// still answers its operator.
#[test]
fn a_node_at_trust_level_0_opens_no_federation_listener() {
    let d = Daemon::in_tempdir("isolated");
    d.init();
    d.append_config("\n[federation]\nmin_trust_level = 0\n[http]\nlisten = \"127.0.0.1:0\"\n");
    let stdout = d.dir.with_extension("stdout.log");
    let mut child = crate::support::bin()
        .args(["node", "run", "--data-dir", d.d(), "--mesh", "isolated"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn node run");
    let printed = crate::support::poll("the isolated node to start", || {
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(format!("exited: {status}"));
        }
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        if out.contains(" running; ") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    let status = d.try_json(&["status"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!printed.contains("exited"), "{printed}");
    assert!(!printed.contains("listening on"), "{printed}");
    assert!(!printed.contains("federation API on"), "{printed}");
    let status = status.expect("status answers");
    assert_eq!(
        status["network"]["listen_addrs"],
        serde_json::json!([]),
        "{status}"
    );
    assert_eq!(
        status["federation_api"],
        serde_json::Value::Null,
        "{status}"
    );
}

#[test]
fn node_run_on_a_directory_with_no_mesh_refuses_unless_told_to_init() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let typo = tmp.path().join("alpah");
    let out = run(&["node", "run", "--data-dir", typo.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let text = shown(&out);
    assert!(
        text.contains("holds no mesh") && text.contains("--init"),
        "{text}"
    );
    assert!(!typo.join("config.toml").exists(), "nothing is created");
    assert!(!typo.join("keys").exists(), "no key is made");
}

#[test]
fn init_makes_the_data_directory_owner_only() {
    let d = Daemon::in_tempdir("private");
    d.init();
    let mode = std::fs::metadata(&d.dir).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data directory mode {mode:o}");
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let d = Daemon::in_tempdir("plain");
    d.init();
    // Without NO_COLOR: the node itself must see that stderr is a file, not a terminal.
    let stderr = d.dir.with_extension("stderr.log");
    let mut child = crate::support::bin()
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .args(["node", "run", "--data-dir", d.d()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr log"))
        .spawn()
        .expect("spawn");
    let logged = crate::support::poll("the node to log that it runs", || {
        let text = std::fs::read_to_string(&stderr).unwrap_or_default();
        if text.contains("node running") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !logged.contains('\u{1b}'),
        "ANSI escape codes in a log file: {logged:?}"
    );
}

#[test]
fn sighup_reloads_what_it_can_names_what_needs_a_restart_and_keeps_running() {
    let mut d = Daemon::in_tempdir("reload");
    d.init();
    d.append_config("\n[anchor]\ninterval_secs = 86400\n");
    d.start();
    let pid = d.pid();
    let interval = |d: &Daemon| d.json(&["status"])["anchor"]["interval_secs"].clone();
    assert_eq!(interval(&d), 86400);

    let config = d.dir.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let changed = text.replace("interval_secs = 86400", "interval_secs = 30")
        + "\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n";
    std::fs::write(&config, &changed).expect("write config");
    crate::support::signal(pid, "HUP");
    crate::support::poll("the anchor interval to be reloaded", || {
        let v = interval(&d);
        (v == 30).then_some(()).ok_or_else(|| v.to_string())
    });
    assert!(d.try_wait().is_none(), "SIGHUP ended the node");
    crate::support::poll("the log to name what needs a restart", || {
        let logs = d.logs_text();
        (logs.contains("applied only by a restart") && logs.contains("[network]"))
            .then_some(())
            .ok_or(logs)
    });

    // A configuration that does not check is refused whole; the node keeps running on the
    // one it has.
    std::fs::write(
        &config,
        changed.replace("interval_secs = 30", "interval_secs = 0"),
    )
    .expect("write config");
    crate::support::signal(pid, "HUP");
    crate::support::poll("the refusal to be logged", || {
        let logs = d.logs_text();
        logs.contains("config.toml refused")
            .then_some(())
            .ok_or(logs)
    });
    assert!(d.try_wait().is_none(), "SIGHUP ended the node");
    assert_eq!(interval(&d), 30);
}

#[test]
fn config_check_names_every_problem_without_starting_anything() {
    let d = Daemon::in_tempdir("checked");
    d.init();
    let out = d.cli(&["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    d.append_config(
        "\n[anchor]\ninterval_secs = 0\n[witness]\nsamples = 0\n[dns]\nnameserver = \"nowhere\"\n",
    );
    let out = d.cli(&["config", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let problems = v["problems"].to_string();
    for needle in ["interval_secs", "samples", "nameserver"] {
        assert!(problems.contains(needle), "{needle} not named: {problems}");
    }
    assert_eq!(v["ok"], false);
    assert!(!d.dir.join("control.sock").exists(), "nothing was started");
}

#[test]
fn errors_of_a_json_command_are_json() {
    let d = Daemon::in_tempdir("jsonerr");
    d.init();
    // No node runs: the error names the socket, as JSON on stderr.
    let out = d.cli(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value =
        serde_json::from_slice(&out.stderr).unwrap_or_else(|e| panic!("{e}: {}", shown(&out)));
    assert_eq!(err["error"], "not_running", "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("control.sock")),
        "{err}"
    );
}

// `scroll proof` with the node stopped proves against the latest anchored root and carries
// its anchor proof, as the running node does: `check-proof` accepts it with the mesh key
// alone. A receipt after the anchor gets a proof without one, refused unless asked for.
#[test]
fn an_offline_proof_carries_the_latest_anchor() {
    use crate::ops::{anchor, append, key_of};
    let mut d = running("oslo");
    append(&d, "Compliance", 3, "offline");
    anchor(&d);
    append(&d, "Compliance", 1, "late");
    let key = key_of(&d);
    d.terminate();
    let check = |sequence: &str, extra: &[&str]| {
        let out = d.cli(&[
            "scroll",
            "proof",
            "--scroll",
            "Compliance",
            "--sequence",
            sequence,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
        let file = d.dir.with_extension(format!("proof-{sequence}.json"));
        std::fs::write(&file, &out.stdout).expect("proof");
        let mut args = vec![
            "scroll",
            "check-proof",
            "--proof",
            file.to_str().expect("utf-8"),
            "--public-key",
            &key,
        ];
        args.extend_from_slice(extra);
        (
            String::from_utf8_lossy(&out.stderr).into_owned(),
            run(&args),
        )
    };
    let (note, anchored) = check("2", &[]);
    assert!(note.is_empty(), "{note}");
    assert_eq!(anchored.status.code(), Some(0), "{}", shown(&anchored));
    let said = String::from_utf8_lossy(&anchored.stdout);
    assert!(
        said.contains("proof valid: receipt-sequence-2") && said.contains("anchored"),
        "{said}"
    );
    let (note, late) = check("3", &[]);
    assert!(note.contains("not covered by the latest anchor"), "{note}");
    assert_eq!(late.status.code(), Some(1), "{}", shown(&late));
}
