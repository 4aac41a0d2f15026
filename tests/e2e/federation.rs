//! Three daemons as separate processes on 127.0.0.1: discovery through the DHT and through
//! DNS, a negotiation that survives SIGKILL, the established agreement in both Federation
//! scrolls, and its revocation.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::dns::{DnsServer, a_record, srv_record, txt_record};
use crate::support::{Daemon, poll, poll_n, run, shown};

/// The zone the test DNS server answers for, and C's domain in it.
const ZONE: &str = "mesh.test.";
const C_DOMAIN: &str = "c.mesh.test";

/// Waits for a message from one daemon to reach another: up to 30 s. A delivery normally
/// takes milliseconds, but after B's SIGKILL, A keeps B's dead QUIC connection until its idle
/// timeout (3 s, set in `vm-network`), and libp2p request-response spreads requests over all
/// connections to a peer, so a message to the restarted B can fail on the dead connection and
/// arrive only with the engine's retry (5 s, then 10 s, ±25 %).
fn poll_delivery<T>(what: &str, attempt: impl FnMut() -> Result<T, String>) -> T {
    poll_n(what, 120, Duration::from_millis(250), attempt)
}

/// The one entry of a `discover --json` answer, checked to be `mesh` found through `source`.
fn found_entry(answer: &Value, mesh: &Daemon, source: &str) -> Result<(), String> {
    let found = answer["found"].as_array().cloned().unwrap_or_default();
    match found.as_slice() {
        [entry]
            if entry["mesh_id"] == mesh.mesh_id().as_str()
                && entry["source"] == source
                && entry["peer_id"] == mesh.peer_id.as_str()
                && entry["stored"] == true =>
        {
            Ok(())
        }
        _ => Err(format!(
            "expected {} from {source} as peer {}: {answer}",
            mesh.mesh_id(),
            mesh.peer_id
        )),
    }
}

/// `discover --mesh <mesh id>` on `on`, retried until `target` is found in the DHT.
fn discover_in_dht(on: &Daemon, target: &Daemon) {
    let mesh_id = target.mesh_id();
    let answer = poll(&format!("{} to find {mesh_id} in the DHT", on.name), || {
        let answer = on.try_json(&["discover", "--mesh", &mesh_id])?;
        found_entry(&answer, target, "dht").map(|()| answer)
    });
    assert!(answer["dns"].is_null(), "no DNS for a mesh id: {answer}");
    let known = on.json(&["list-known"]);
    let entry = known
        .as_array()
        .and_then(|all| all.iter().find(|p| p["mesh_id"] == mesh_id.as_str()))
        .unwrap_or_else(|| panic!("{} does not list {mesh_id}: {known}", on.name));
    assert!(entry["sources"]["dht"].is_string(), "{entry}");
}

/// The entry for `id` in `list` (an array of objects), by `key`.
fn by_id<'a>(list: &'a Value, key: &str, id: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v[key] == id)
}

/// Polls `d` until its agreement `id` is in `state`.
fn wait_agreement_state(d: &Daemon, id: &str, state: &str) -> Value {
    poll_delivery(
        &format!("{}'s agreement {id} to be {state}", d.name),
        || {
            let list = d.try_json(&["agreements", "list"])?;
            match by_id(&list, "agreement_id", id) {
                Some(a) if a["status"]["state"] == state => Ok(a.clone()),
                _ => Err(list.to_string()),
            }
        },
    )
}

/// `scroll verify` on `d`'s data directory (the running node does not lock it out): every
/// receipt and the signed root check, and `trust` of them are trust-lifecycle receipts. The
/// agreement shares the Federation scroll at level 2, so the meshes also witness each other
/// and witness events join the scroll in the background: the check is retried until the
/// file and its ROOT file agree.
fn scroll_verify(d: &Daemon, trust: usize) {
    poll(&format!("{}'s Federation scroll to verify", d.name), || {
        let out = run(&[
            "scroll",
            "verify",
            "--data-dir",
            d.d(),
            "--scroll",
            "Federation",
            "--json",
        ]);
        if out.status.code() != Some(0) {
            return Err(format!("scroll verify: {}", shown(&out)));
        }
        let report: Value = serde_json::from_slice(&out.stdout).expect("scroll verify --json");
        let lifecycle = d
            .federation_receipts()
            .iter()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("fed_trust_"))
            })
            .count();
        let consistent = report["ok"] == true
            && report["root_file"]["state"] == "consistent"
            && report["receipts_verified"] == report["root_file"]["size"];
        if consistent && lifecycle == trust {
            Ok(())
        } else {
            Err(format!("{lifecycle} lifecycle receipts; {report}"))
        }
    });
}

/// `d`'s Federation scroll: the proposal receipts of `proposal_id` with exactly `events` in
/// order, then the establishment receipt carrying `hash`, then (`revoked`) the revocation.
fn check_scroll(d: &Daemon, proposal_id: &str, agreement_id: &str, hash: &str, events: &[&str]) {
    let receipts = d.federation_receipts();
    let shown = || {
        receipts
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let proposal_events: Vec<&str> = receipts
        .iter()
        .filter(|r| r["type"] == "fed_trust_proposal" && r["proposal_id"] == proposal_id)
        .filter_map(|r| r["event"].as_str())
        .collect();
    assert_eq!(
        proposal_events,
        events,
        "{}: proposal receipts (each once, none lost to the SIGKILL):\n{}",
        d.name,
        shown()
    );
    let established: Vec<&Value> = receipts
        .iter()
        .filter(|r| r["type"] == "fed_trust_established")
        .collect();
    assert_eq!(
        established.len(),
        1,
        "{}: one establishment receipt:\n{}",
        d.name,
        shown()
    );
    assert_eq!(established[0]["agreement_id"], agreement_id, "{}", d.name);
    assert_eq!(established[0]["agreement_hash"], hash, "{}", d.name);
}

// The scenario: C bootstraps the DHT, B finds A there by mesh id alone, A finds C
// through DNS SRV/TXT, A proposes, B is SIGKILLed with the proposal open and resumes after a
// restart, B counters, A accepts; both sides hold the same agreement hash, both Federation
// scrolls record and verify it, and revoking with no notice ends it on both.
#[test]
fn three_daemons_discover_negotiate_through_a_sigkill_establish_and_revoke() {
    let tmp = tempfile::tempdir().expect("tempdir");

    // C: the DHT bootstrap, with no configuration at all.
    let mut c = Daemon::new(tmp.path(), "mesh-c");
    c.start();

    // The DNS zone publishing C.
    let dns = DnsServer::start(
        ZONE,
        vec![
            srv_record(
                "_vaultmesh._tcp.c.mesh.test.",
                0,
                5,
                c.tcp_port,
                "c.mesh.test.",
            ),
            a_record("c.mesh.test.", Ipv4Addr::LOCALHOST),
            txt_record("_dnsaddr.c.mesh.test.", &format!("dnsaddr={}", c.tcp)),
        ],
    );

    // B bootstraps to C and announces itself as a public mesh.
    let mut b = Daemon::new(tmp.path(), "mesh-b");
    b.init();
    b.append_config(&format!(
        "\n[network]\nbootstrap = [\"{}\"]\npublic = true\n",
        c.tcp
    ));
    b.start();

    // A has no bootstrap peer, only the DNS server.
    let mut a = Daemon::new(tmp.path(), "mesh-a");
    a.init();
    a.append_config(&format!("\n[dns]\nnameserver = \"{}\"\n", dns.addr));
    a.start();
    let status = a.json(&["status"]);
    assert_eq!(status["mesh_id"], a.mesh_id().as_str(), "{status}");
    assert_eq!(status["peer_id"], a.peer_id.as_str(), "{status}");
    assert_eq!(
        status["network"]["connected_peers"],
        json!([]),
        "A starts alone: {status}"
    );

    // A finds C through DNS: SRV and TXT, then C's signed record from C itself.
    let found = a.json(&["discover", "--mesh", C_DOMAIN]);
    found_entry(&found, &c, "dns").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        found["dns"]["srv"],
        json!([{"host": C_DOMAIN, "port": c.tcp_port, "priority": 0, "weight": 5}]),
        "{found}"
    );
    assert_eq!(found["dns"]["dnsaddr"], json!([c.tcp]), "{found}");
    let known = a.json(&["list-known"]);
    let entry = by_id(&known, "mesh_id", &c.mesh_id())
        .unwrap_or_else(|| panic!("A does not list C: {known}"));
    assert!(entry["sources"]["dns"].is_string(), "{entry}");

    // Through C, A now sees the public meshes: B alone (C and A do not announce themselves).
    poll("A to find B among the public meshes", || {
        let answer = a.try_json(&["discover", "--public"])?;
        found_entry(&answer, &b, "dht")
    });

    // B finds A in the DHT by mesh id alone (A's record reached C once A connected to it),
    // and A finds B the same way.
    discover_in_dht(&b, &a);
    discover_in_dht(&a, &b);

    // A proposes to B.
    let proposed = a.json(&[
        "propose",
        "--target",
        &b.mesh_id(),
        "--trust-level",
        "2",
        "--scrolls",
        "Federation",
        "--frequency",
        "daily",
        "--retention-days",
        "90",
    ]);
    let proposal_id = proposed["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["event"] == "sent"))
        .and_then(|e| e["proposal_id"].as_str())
        .unwrap_or_else(|| panic!("propose names no sent proposal: {proposed}"))
        .to_owned();
    let open_inbound = |d: &Daemon| -> Result<Value, String> {
        let list = d.try_json(&["proposals", "list"])?;
        match by_id(&list, "proposal_id", &proposal_id) {
            Some(p)
                if p["direction"] == "inbound"
                    && p["status"]["state"] == "open"
                    && p["proposer"] == a.mesh_id().as_str() =>
            {
                Ok(p.clone())
            }
            _ => Err(list.to_string()),
        }
    };
    let received = poll_delivery("B to receive A's proposal", || open_inbound(&b));
    assert_eq!(received["responses"], 0, "{received}");
    assert_eq!(received["trust_level"], 2, "{received}");
    let size_before = b.json(&["status"])["federation_scroll"]["size"].clone();
    assert_eq!(size_before, 1, "B recorded the proposal it received");

    // SIGKILL B mid-negotiation and restart it on the same data directory: the proposal is
    // still open, and nothing was lost or recorded twice.
    b.kill();
    b.start();
    let resumed = open_inbound(&b).unwrap_or_else(|e| panic!("B lost the proposal: {e}"));
    assert_eq!(resumed["responses"], 0, "{resumed}");
    assert_eq!(
        b.json(&["status"])["federation_scroll"]["size"],
        size_before,
        "B's scroll after the restart"
    );

    // B counters with hourly verification; A sees the counter.
    let countered = b.json(&[
        "proposals",
        "counter",
        &proposal_id,
        "--frequency",
        "hourly",
    ]);
    assert!(
        countered["events"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["event"] == "countered")),
        "{countered}"
    );
    poll_delivery("A to receive B's counter", || {
        let list = a.try_json(&["proposals", "list"])?;
        match by_id(&list, "proposal_id", &proposal_id) {
            Some(p)
                if p["direction"] == "outbound"
                    && p["responses"] == 1
                    && p["status"]["state"] == "open" =>
            {
                Ok(())
            }
            _ => Err(list.to_string()),
        }
    });
    let thread = a.json(&["proposals", "show", &proposal_id]);
    let response = &thread["history"][0];
    assert_eq!(response["response_type"], "counter", "{thread}");
    assert_eq!(response["responder"], b.mesh_id().as_str(), "{thread}");
    assert_eq!(
        response["counter_terms"]["verification_frequency"], "hourly",
        "A holds B's counter terms: {thread}"
    );
    // The counter changed only what B named: the rest is what was on the table.
    assert_eq!(
        response["counter_terms"]["retention_period_days"], 90,
        "{thread}"
    );
    assert_eq!(
        response["counter_terms"]["scrolls_to_share"],
        json!(["Federation"]),
        "{thread}"
    );

    // A accepts the counter; the agreement becomes active on both sides.
    let accepted = a.json(&["proposals", "accept", &proposal_id]);
    assert!(
        accepted["events"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["event"] == "accepted")),
        "{accepted}"
    );
    let on_a = poll_delivery("an active agreement on A", || {
        let list = a.try_json(&["agreements", "list"])?;
        match list.as_array().map(Vec::as_slice) {
            Some([one]) if one["status"]["state"] == "active" => Ok(one.clone()),
            _ => Err(list.to_string()),
        }
    });
    let agreement_id = on_a["agreement_id"]
        .as_str()
        .expect("agreement_id")
        .to_owned();
    let on_b = wait_agreement_state(&b, &agreement_id, "active");
    for agreement in [&on_a, &on_b] {
        let mut parties: Vec<&str> = agreement["parties"]
            .as_array()
            .expect("parties")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        parties.sort_unstable();
        assert_eq!(
            parties,
            [a.mesh_id(), b.mesh_id()],
            "the agreement is between A and B: {agreement}"
        );
    }

    // `agreements show` prints the same agreement_hash on both sides.
    let shown_a = a.json(&["agreements", "show", &agreement_id]);
    let shown_b = b.json(&["agreements", "show", &agreement_id]);
    let hash = shown_a["agreement_hash"]
        .as_str()
        .unwrap_or_else(|| panic!("no agreement_hash on A: {shown_a}"))
        .to_owned();
    assert!(hash.starts_with("blake3:"), "{hash}");
    assert_eq!(shown_b["agreement_hash"], hash.as_str(), "B: {shown_b}");
    assert_eq!(
        shown_a["agreement"]["agreement_hash"],
        hash.as_str(),
        "{shown_a}"
    );
    assert_eq!(
        shown_b["agreement"]["agreement_hash"],
        hash.as_str(),
        "{shown_b}"
    );
    for shown in [&shown_a, &shown_b] {
        assert_eq!(
            shown["agreement"]["terms"]["verification_frequency"], "hourly",
            "the agreement carries the countered terms: {shown}"
        );
        assert_eq!(shown["agreement"]["trust_level"], 2, "{shown}");
    }

    // Both Federation scrolls hold the negotiation and the establishment, and verify.
    check_scroll(
        &a,
        &proposal_id,
        &agreement_id,
        &hash,
        &["sent", "countered", "accepted"],
    );
    check_scroll(
        &b,
        &proposal_id,
        &agreement_id,
        &hash,
        &["received", "countered", "accepted"],
    );
    scroll_verify(&a, 4);
    scroll_verify(&b, 4);

    // A revokes with no notice: the agreement ends on both sides, and both scrolls say so.
    a.json(&["agreements", "revoke", &agreement_id, "--notice-days", "0"]);
    for d in [&a, &b] {
        wait_agreement_state(d, &agreement_id, "revoked");
        let receipts = d.federation_receipts();
        let revoked: Vec<&Value> = receipts
            .iter()
            .filter(|r| r["type"] == "fed_trust_revoked")
            .collect();
        assert!(
            matches!(revoked.as_slice(), [r] if r["agreement_id"] == agreement_id.as_str()
                && r["revoked_by"] == a.mesh_id().as_str()),
            "{}: one revocation receipt: {receipts:?}",
            d.name
        );
        scroll_verify(d, 5);
    }

    // All three stop cleanly on SIGTERM.
    for d in [&mut a, &mut b, &mut c] {
        let status = d.terminate();
        assert_eq!(status.code(), Some(0), "{} after SIGTERM: {status}", d.name);
        assert!(
            !d.dir.join("control.sock").exists(),
            "{} left control.sock behind",
            d.name
        );
    }
    drop(dns);
}
