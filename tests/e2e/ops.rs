//! Operator steps on running daemons, shared by the end-to-end tests and the soak benchmark
//! (`benches/soak.rs` includes this file): add a peer, federate, append, anchor, and wait for
//! witnessing.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Daemon, poll_n, shown};

/// Witnessing is a few loopback round trips after a notification; allow a restart's worth
/// of slack (dead QUIC connections close after 3 s).
pub(crate) fn poll_witness<T>(what: &str, attempt: impl FnMut() -> Result<T, String>) -> T {
    poll_n(what, 200, Duration::from_millis(100), attempt)
}

pub(crate) fn key_of(d: &Daemon) -> String {
    d.json(&["status"])["public_key"]
        .as_str()
        .expect("status names the key")
        .to_owned()
}

pub(crate) fn add_peer(on: &Daemon, other: &Daemon, key: &str) {
    on.json(&[
        "peers",
        "add",
        "--mesh",
        &other.mesh_id(),
        "--public-key",
        key,
        "--address",
        &other.tcp,
    ]);
}

/// `proposer` proposes to `target` at `level`, sharing `scrolls`; `target` accepts; both
/// hold the agreement active.
pub(crate) fn federate(proposer: &Daemon, target: &Daemon, level: &str, scrolls: &str) -> String {
    federate_every(proposer, target, level, scrolls, "1h")
}

/// As [`federate`], verifying each other every `frequency` (`2s`, `1h`, …).
pub(crate) fn federate_every(
    proposer: &Daemon,
    target: &Daemon,
    level: &str,
    scrolls: &str,
    frequency: &str,
) -> String {
    let proposed = proposer.json(&[
        "propose",
        "--target",
        &target.mesh_id(),
        "--trust-level",
        level,
        "--scrolls",
        scrolls,
        "--frequency",
        frequency,
    ]);
    let id = proposed["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["event"] == "sent"))
        .and_then(|e| e["proposal_id"].as_str())
        .unwrap_or_else(|| panic!("no sent proposal: {proposed}"))
        .to_owned();
    poll_witness(&format!("{} to receive {id}", target.name), || {
        let list = target.try_json(&["proposals", "list"])?;
        list.as_array()
            .into_iter()
            .flatten()
            .find(|p| p["proposal_id"] == id.as_str() && p["status"]["state"] == "open")
            .map(|_| ())
            .ok_or_else(|| list.to_string())
    });
    target.json(&["proposals", "accept", &id]);
    let mut agreement = String::new();
    for d in [proposer, target] {
        agreement = poll_witness(&format!("{}'s agreement to be active", d.name), || {
            let list = d.try_json(&["agreements", "list"])?;
            list.as_array()
                .into_iter()
                .flatten()
                .find(|a| {
                    a["status"]["state"] == "active"
                        && a["parties"].as_array().is_some_and(|p| {
                            p.contains(&json!(proposer.mesh_id()))
                                && p.contains(&json!(target.mesh_id()))
                        })
                })
                .and_then(|a| a["agreement_id"].as_str().map(str::to_owned))
                .ok_or_else(|| list.to_string())
        });
    }
    agreement
}

/// Appends `n` receipts to `scroll` through the running node; returns the new size.
pub(crate) fn append(d: &Daemon, scroll: &str, n: usize, tag: &str) -> u64 {
    let file = d.dir.with_extension(format!("{tag}.jsonl"));
    let body: String = (0..n)
        .map(|i| {
            format!("{{\"type\":\"compliance_check\",\"check\":\"{tag}-{i}\",\"passed\":true}}\n")
        })
        .collect();
    fs::write(&file, body).expect("write receipts");
    let out = d.cli(&[
        "scroll",
        "append",
        "--scroll",
        scroll,
        "--file",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "append: {}", shown(&out));
    scroll_size(d, scroll)
}

pub(crate) fn scroll_size(d: &Daemon, scroll: &str) -> u64 {
    let status = d.json(&["status"]);
    status["scrolls"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["scroll"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(scroll))
        })
        .and_then(|s| s["size"].as_u64())
        .unwrap_or(0)
}

pub(crate) fn anchor(d: &Daemon) -> Value {
    d.json(&["anchor", "now"])
}

/// What `on` last witnessed of `peer`'s `scroll`.
pub(crate) fn witnessed(on: &Daemon, peer: &Daemon, scroll: &str) -> Option<Value> {
    let status = on.json(&["status"]);
    status["witness"]["witnessed"]
        .as_array()?
        .iter()
        .find(|w| {
            w["peer"] == peer.mesh_id().as_str()
                && w["scroll"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(scroll))
        })
        .cloned()
}

/// Waits until `on` has witnessed `peer`'s `scroll` at `size`, verified.
pub(crate) fn wait_witnessed(on: &Daemon, peer: &Daemon, scroll: &str, size: u64) -> Value {
    poll_witness(
        &format!("{} to witness {} {scroll} at {size}", on.name, peer.name),
        || match witnessed(on, peer, scroll) {
            Some(w) if w["size"] == size && w["result"] == "verified" => Ok(w),
            other => Err(format!("{other:?}")),
        },
    )
}

pub(crate) fn discrepancies(d: &Daemon) -> Vec<Value> {
    d.json(&["discrepancies", "list"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Dublin and Berlin under `root`, each made with `init`, then `setup` (its configuration and
/// environment), then started; three receipts each in Compliance, federated at level 2 over
/// it, and Berlin has witnessed Dublin's first three.
pub(crate) fn witnessing_pair(root: &Path, mut setup: impl FnMut(&mut Daemon)) -> (Daemon, Daemon) {
    let mut dublin = Daemon::new(root, "vaultmesh-dublin");
    let mut berlin = Daemon::new(root, "vaultmesh-berlin");
    for d in [&mut dublin, &mut berlin] {
        d.init();
        setup(d);
        d.start();
        append(d, "Compliance", 3, &format!("{}-seed", d.name));
    }
    let (dk, bk) = (key_of(&dublin), key_of(&berlin));
    add_peer(&dublin, &berlin, &bk);
    add_peer(&berlin, &dublin, &dk);
    federate(&dublin, &berlin, "2", "Compliance");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", 3);
    (dublin, berlin)
}
