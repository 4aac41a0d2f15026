//! Issue 17, item 5: the README's HTTP-only walkthrough, run from the README itself. The
//! shell block after "Here gamma is HTTP-only" is read line by line and each command is
//! carried out as printed, with only what a test must change: the ports (free ones), the
//! directories (under a temporary root), `0.0.0.0` (loopback) and a `[dns] nameserver`
//! line (a real DNS server on loopback serves the README's two names). The README's first
//! block made alpha (`node run --init --data-dir ./alpha --mesh alpha`); that start is the
//! test's first step.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::dns::{DnsServer, a_record, srv_record};
use crate::support::{Daemon, poll_n, run, shown};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn the_readme_http_only_walkthrough_runs_as_printed() {
    let root = tempfile::tempdir().expect("tempdir");
    let (gamma_port, alpha_port) = (free_port(), free_port());
    let dns = DnsServer::start(
        "example.org.",
        vec![
            srv_record(
                "_vaultmesh._tcp.federation.example.org.",
                0,
                5,
                gamma_port,
                "federation.example.org.",
            ),
            a_record("federation.example.org.", Ipv4Addr::LOCALHOST),
            srv_record(
                "_vaultmesh._tcp.alpha.example.org.",
                0,
                5,
                alpha_port,
                "alpha.example.org.",
            ),
            a_record("alpha.example.org.", Ipv4Addr::LOCALHOST),
        ],
    );
    let mut daemons: BTreeMap<String, Daemon> = BTreeMap::new();
    // The README's first block: alpha runs (`--init` creates it).
    let mut alpha = Daemon::new(root.path(), "alpha");
    alpha.start();
    let out = alpha.cli(&[
        "scroll",
        "append",
        "--scroll",
        "Compliance",
        "--file",
        &write_receipts(root.path(), "alpha", 3),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    daemons.insert("alpha".into(), alpha);

    let lines = crate::readme::blocks("Here gamma is\nHTTP-only", None)
        .into_iter()
        .next()
        .expect("the HTTP-only block");
    assert!(lines.len() >= 10, "{lines:?}");
    let mut proposal_id = String::new();
    for line in &lines {
        eprintln!("README: {line}");
        if let Some(rest) = line.strip_prefix("printf '") {
            // printf '<text>' >> ./<name>/config.toml
            let (text, target) = rest
                .split_once("' >> ./")
                .expect("printf '…' >> ./dir/file");
            let name = target.split('/').next().expect("a directory");
            let text = text
                .replace("\\n", "\n")
                .replace("0.0.0.0:", "127.0.0.1:")
                .replace(":8443", &format!(":{gamma_port}"))
                .replace(":8444", &format!(":{alpha_port}"));
            let d = daemons
                .get(name)
                .unwrap_or_else(|| panic!("printf into {name}, which the README has not made"));
            d.append_config(&text);
            d.append_config(&format!("[dns]\nnameserver = \"{}\"\n", dns.addr));
            continue;
        }
        let args: Vec<&str> = line
            .strip_prefix("$B ")
            .unwrap_or_else(|| panic!("not a vm-federation command: {line}"))
            .split_whitespace()
            .collect();
        let dir_at = args
            .iter()
            .position(|a| *a == "--data-dir")
            .expect("--data-dir");
        let name = args[dir_at + 1].trim_start_matches("./").to_owned();
        match args.as_slice() {
            ["init", ..] => {
                let d = Daemon::new(root.path(), &name);
                let mut real: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
                real[dir_at + 1] = d.d().to_owned();
                let real: Vec<&str> = real.iter().map(String::as_str).collect();
                let out = run(&real);
                assert_eq!(out.status.code(), Some(0), "{line}: {}", shown(&out));
                daemons.insert(name, d);
            }
            ["node", "run", ..] => {
                let d = daemons.get_mut(&name).expect("made");
                if d.running() {
                    assert!(d.terminate().success(), "{name} stops to restart");
                }
                let config =
                    std::fs::read_to_string(d.dir.join("config.toml")).expect("config.toml");
                d.start_with(!config.contains("listen = []"));
                if name == "gamma" {
                    let file = write_receipts(root.path(), "gamma", 4);
                    let out = d.cli(&[
                        "scroll",
                        "append",
                        "--scroll",
                        "Compliance",
                        "--file",
                        &file,
                    ]);
                    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
                }
            }
            _ => {
                let d = &daemons[&name];
                // The command as printed, minus `--data-dir` (the daemon's own is added),
                // with the proposal id noted from `proposals list`.
                let mut real: Vec<&str> = args.clone();
                real.drain(dir_at..dir_at + 2);
                for a in &mut real {
                    if *a == "ID" {
                        *a = proposal_id.as_str();
                    }
                }
                let out = if real.starts_with(&["proposals", "list"]) {
                    let list = poll_n(
                        "the proposal to arrive",
                        200,
                        Duration::from_millis(100),
                        || {
                            let v = d.json(&real);
                            v.as_array()
                                .and_then(|l| l.first())
                                .and_then(|p| p["proposal_id"].as_str().map(str::to_owned))
                                .ok_or_else(|| v.to_string())
                        },
                    );
                    proposal_id = list;
                    continue;
                } else {
                    d.cli(&real)
                };
                assert_eq!(out.status.code(), Some(0), "{line}: {}", shown(&out));
            }
        }
    }

    // What the walkthrough promises: the agreement active on both sides, gamma's Compliance
    // witnessed by alpha, and alpha last heard from gamma over HTTPS.
    let (alpha, gamma) = (&daemons["alpha"], &daemons["gamma"]);
    for d in [alpha, gamma] {
        poll_n(
            "the agreement active",
            200,
            Duration::from_millis(100),
            || {
                let list = d.json(&["agreements", "list"]);
                list.as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["status"]["state"] == "active")
                    .then_some(())
                    .ok_or_else(|| list.to_string())
            },
        );
    }
    let row = poll_n(
        "alpha to witness gamma",
        200,
        Duration::from_millis(100),
        || {
            let s = alpha.json(&["status"]);
            let row = s["peers"]
                .as_array()
                .and_then(|p| p.iter().find(|r| r["mesh_id"] == "did:vm:mesh:gamma"))
                .cloned()
                .unwrap_or(Value::Null);
            (row["scrolls"][0]["witnessed_size"] == 4)
                .then(|| row.clone())
                .ok_or_else(|| s["peers"].to_string())
        },
    );
    assert_eq!(row["transport"], "https", "{row}");
    assert_eq!(alpha.json(&["status"])["verdict"]["state"], "ok");
    assert_eq!(gamma.json(&["outbox", "list"]), serde_json::json!([]));
    // Gamma never opened a libp2p connection: it has no listener and spoke HTTPS only.
    assert_eq!(
        gamma.json(&["status"])["network"]["connected_peers"],
        serde_json::json!([])
    );
}

/// `n` receipts in a file beside the data directories; returns its path.
fn write_receipts(root: &Path, tag: &str, n: usize) -> String {
    let path = root.join(format!("{tag}-receipts.jsonl"));
    let body: String = (0..n)
        .map(|i| format!("{{\"type\":\"compliance_check\",\"control\":\"{tag}-{i}\"}}\n"))
        .collect();
    std::fs::write(&path, body).expect("receipts");
    path.to_str().expect("utf-8").to_owned()
}
