//! Issue 17, item 7: the node as a service. The systemd unit verifies; the node speaks
//! systemd's readiness protocol (READY, RELOADING on SIGHUP, STOPPING); man pages are
//! generated from the CLI and the committed ones match it; completion scripts parse;
//! `--version` names the commit; `--log-format json` writes one JSON object per line.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{Daemon, run, shown, signal};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed man pages (`docs/man`) are what `vm-federation man` writes now;
/// `VM_WRITE_MAN=1` rewrites them after a CLI change.
#[test]
fn committed_man_pages_match_the_cli() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["man", "--out-dir", out_dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let committed = repo().join("docs/man");
    let names = |dir: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        n
    };
    let generated = names(out_dir.path());
    assert!(
        generated.contains(&"vm-federation.1".to_owned())
            && generated.contains(&"vm-federation-node-run.1".to_owned()),
        "{generated:?}"
    );
    if std::env::var_os("VM_WRITE_MAN").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        std::fs::create_dir_all(&committed).expect("docs/man");
        for name in &generated {
            std::fs::copy(out_dir.path().join(name), committed.join(name)).expect("copy");
        }
    }
    assert_eq!(
        names(&committed),
        generated,
        "docs/man is not what `vm-federation man` writes: run VM_WRITE_MAN=1 cargo test --test e2e man_pages"
    );
    for name in &generated {
        let want = std::fs::read(out_dir.path().join(name)).expect("generated");
        let have = std::fs::read(committed.join(name)).expect("committed");
        assert!(
            want == have,
            "docs/man/{name} drifted from the CLI: run VM_WRITE_MAN=1 cargo test --test e2e man_pages"
        );
    }
    // The top page lists the subcommands, in roff.
    let top = std::fs::read_to_string(committed.join("vm-federation.1")).expect("top page");
    assert!(
        top.starts_with(".ie") || top.contains(".TH vm-federation 1"),
        "{top}"
    );
    assert!(top.contains("vm\\-federation\\-scroll(1)") || top.contains("scroll"));
}

#[test]
fn completion_scripts_are_generated_and_bash_parses_its_own() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", shown(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("vm-federation") && script.contains("data-dir"),
            "{shell}: {script}"
        );
    }
    let out = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vm-federation.bash");
    std::fs::write(&path, &out.stdout).expect("write");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash");
    assert!(syntax.status.success(), "{}", shown(&syntax));
    // Completing `vm-federation pee` offers `peers`.
    let complete = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(vm-federation pee); COMP_CWORD=1; _vm__federation vm-federation pee vm-federation; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .expect("bash");
    assert!(
        String::from_utf8_lossy(&complete.stdout)
            .lines()
            .any(|l| l == "peers"),
        "{}",
        shown(&complete)
    );
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
}

#[test]
fn version_names_the_commit() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let commit = text
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no commit in {text}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        // Built in a checkout: the commit it was built from (a build after the last commit
        // of this tree, so HEAD itself unless HEAD moved since the build).
        Some(_) => assert!(
            commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{text}"
        ),
        None => assert_eq!(commit, "unknown", "{text}"),
    }
}

/// The unit in `contrib/systemd` passes `systemd-analyze verify` (with the man pages its
/// Documentation= names), with ExecStart pointing at the binary under test.
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo().join("contrib/systemd/vm-federation.service"))
        .expect("unit");
    for needed in [
        "Type=notify",
        "StateDirectory=vm-federation",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=vm-federation",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    assert!(
        unit.lines()
            .filter(|l| l.starts_with("ExecStart"))
            .all(|l| !l.contains("--init")),
        "a service must not create a mesh in a wiped directory"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vm-federation.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/vm-federation",
            env!("CARGO_BIN_EXE_vm-federation"),
        ),
    )
    .expect("write unit");
    let man1 = dir.path().join("man/man1");
    std::fs::create_dir_all(&man1).expect("man1");
    let out = run(&["man", "--out-dir", man1.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let has_man = Command::new("man").arg("--version").output().is_ok();
    let mut verify = Command::new("systemd-analyze");
    verify.arg("verify");
    if has_man {
        verify.env("MANPATH", dir.path().join("man"));
    } else {
        verify.arg("--man=no");
    }
    let out = verify.arg(&path).output().expect(
        "systemd-analyze (package systemd) runs this test; .ci/run installs it when missing",
    );
    assert!(out.status.success(), "{}", shown(&out));
}

/// Receives one datagram within `within`.
fn recv(socket: &UnixDatagram, within: Duration) -> String {
    socket.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("a systemd notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_node_tells_systemd_when_it_is_ready_reloading_and_stopping() {
    let root = tempfile::tempdir().expect("tempdir");
    let socket_path = root.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    let mut d = Daemon::new(root.path(), "vaultmesh-dublin");
    d.init();
    d.env = vec![
        (
            "NOTIFY_SOCKET".into(),
            socket_path.to_str().expect("utf-8").into(),
        ),
        ("VM_FEDERATION_LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "info".into()),
    ];
    d.start();
    // Sent once the control socket and listeners are up: the CLI works at once.
    let ready = recv(&socket, Duration::from_secs(10));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert_eq!(d.cli(&["status"]).status.code(), Some(0));

    signal(d.pid(), "HUP");
    assert_eq!(recv(&socket, Duration::from_secs(10)), "RELOADING=1");
    let again = recv(&socket, Duration::from_secs(10));
    assert!(again.lines().any(|l| l == "READY=1"), "{again}");
    assert!(d.terminate().success());
    assert_eq!(recv(&socket, Duration::from_secs(10)), "STOPPING=1");

    // `--log-format json` (here from its environment variable): every stderr line is one
    // JSON object with a timestamp, a level, the target and the event's fields.
    let logs = std::fs::read_to_string(root.path().join("vaultmesh-dublin.1.stderr.log"))
        .expect("stderr log");
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() > 3, "{logs}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string() && v["target"].is_string(),
            "{line}"
        );
    }
    assert!(logs.contains(r#""message":"node running""#), "{logs}");
}
