//! Issue 17, items 2 and 3: `status` gives a verdict with its reasons and each federated
//! peer at a glance; `outbox list` / `outbox retry` show and resend what waits; a peer
//! overdue for verification is flagged, logged at WARN once, and recovers by itself.

use serde_json::Value;

use crate::ops::{add_peer, anchor, append, federate_every, key_of, poll_witness, wait_witnessed};
use crate::support::{Daemon, shown};

fn verdict(d: &Daemon) -> Value {
    d.json(&["status"])["verdict"].clone()
}

fn warn_lines(d: &Daemon, needle: &str) -> usize {
    d.logs_text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(needle))
        .count()
}

#[test]
fn status_verdict_peer_rows_outbox_and_overdue_peers() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut dublin = Daemon::new(root.path(), "vaultmesh-dublin");
    let mut berlin = Daemon::new(root.path(), "vaultmesh-berlin");
    for d in [&mut dublin, &mut berlin] {
        d.init();
        d.append_config("\n[anchor]\ninterval_secs = 86400\n[network]\nrequest_timeout_secs = 2\n");
        d.start();
        append(d, "Compliance", 3, &format!("{}-seed", d.name));
    }
    let (dk, bk) = (key_of(&dublin), key_of(&berlin));
    add_peer(&dublin, &berlin, &bk);
    add_peer(&berlin, &dublin, &dk);
    // Verified every 2 s: a peer that stops answering is overdue after 4 s.
    federate_every(&dublin, &berlin, "2", "Compliance", "2s");
    anchor(&dublin);
    anchor(&berlin);
    wait_witnessed(&berlin, &dublin, "Compliance", 3);
    wait_witnessed(&dublin, &berlin, "Compliance", 3);

    // All well: ok, and Dublin's row on Berlin says what Berlin needs to know.
    let status = berlin.json(&["status"]);
    assert_eq!(status["verdict"]["state"], "ok", "{}", status["verdict"]);
    let row = &status["peers"][0];
    assert_eq!(row["mesh_id"], dublin.mesh_id().as_str(), "{row}");
    assert_eq!(row["trust_level"], 2, "{row}");
    assert_eq!(row["verification_frequency"], "2s", "{row}");
    assert_eq!(row["transport"], "libp2p", "{row}");
    assert_eq!(row["scrolls"][0]["scroll"], "Compliance", "{row}");
    assert_eq!(row["scrolls"][0]["witnessed_size"], 3, "{row}");
    assert_eq!(row["scrolls"][0]["overdue"], false, "{row}");
    assert_eq!(row["pending_messages"], 0, "{row}");
    poll_witness("Dublin's attestation of Berlin in Berlin's row", || {
        let s = berlin.json(&["status"]);
        let a = s["peers"][0]["scrolls"][0]["their_attestation"].clone();
        (a["size"] == 3)
            .then_some(())
            .ok_or_else(|| s["peers"].to_string())
    });

    // A proposal to a mesh that cannot be reached waits in the outbox with its error.
    let stranger = vm_receipts::MeshKey::from_seed(&[7; 32]).public_key();
    // `peers add` checks each address: a dialable multiaddr (of this key) or an https:// URL.
    for (bad, says) in [
        ("127.0.0.1:4001".to_owned(), "not a multiaddr"),
        ("http://mesh.example.org".to_owned(), "only https://"),
        ("/ip4/127.0.0.1/tcp/0".to_owned(), "must name a port"),
        (
            format!("/ip4/127.0.0.1/tcp/9/p2p/{}", dublin.peer_id),
            "but the key given",
        ),
    ] {
        let out = berlin.cli(&[
            "peers",
            "add",
            "--mesh",
            "stranger",
            "--public-key",
            &stranger.to_string(),
            "--address",
            &bad,
        ]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", shown(&out));
        assert!(shown(&out).contains(says), "{bad}: {}", shown(&out));
    }
    assert!(
        !berlin
            .json(&["peers", "list"])
            .to_string()
            .contains("did:vm:mesh:stranger"),
        "a refused add stores nothing"
    );
    berlin.json(&[
        "peers",
        "add",
        "--mesh",
        "stranger",
        "--public-key",
        &stranger.to_string(),
        "--address",
        &format!("/ip4/127.0.0.1/tcp/9/p2p/{}", stranger.peer_id()),
        "--address",
        "https://stranger.invalid:8443",
    ]);
    berlin.json(&[
        "propose",
        "--target",
        "stranger",
        "--trust-level",
        "1",
        "--scrolls",
        "Federation",
    ]);
    let waiting = poll_witness("the failed delivery in the outbox", || {
        let list = berlin.json(&["outbox", "list"]);
        list.as_array()
            .and_then(|l| l.iter().find(|m| m["to"] == "did:vm:mesh:stranger"))
            .filter(|m| m["last_error"].is_string())
            .cloned()
            .ok_or_else(|| list.to_string())
    });
    assert_eq!(waiting["type"], "proposal", "{waiting}");
    let id = waiting["id"].as_str().expect("id").to_owned();
    // Sent again on the operator's word, by id and by mesh; attempts count up.
    for target in [id.as_str(), "stranger"] {
        let out = berlin.json(&["outbox", "retry", target]);
        assert_eq!(out["resent"], 1, "{out}");
    }
    let attempts = berlin.json(&["outbox", "list"])[0]["attempts"].as_u64();
    assert!(attempts.is_some_and(|a| a >= 3), "{attempts:?}");
    let nothing = berlin.cli(&["outbox", "retry", "did:vm:mesh:nobody"]);
    assert_eq!(nothing.status.code(), Some(1), "{}", shown(&nothing));
    assert!(
        shown(&nothing).contains("no message to did:vm:mesh:nobody is waiting"),
        "{}",
        shown(&nothing)
    );
    // Three failed attempts: degraded, naming the message and the error.
    let v = poll_witness("the stuck message in the verdict", || {
        let v = verdict(&berlin);
        (v["state"] == "degraded" && v["reasons"].to_string().contains("stranger"))
            .then(|| v.clone())
            .ok_or_else(|| v.to_string())
    });
    assert!(v["reasons"].to_string().contains("outbox list"), "{v}");

    // Dublin stops answering: Berlin flags it overdue, says so once at WARN.
    assert!(dublin.terminate().success());
    poll_n_overdue(&berlin, true);
    let text = crate::support::shown(&berlin.cli(&["status"]));
    assert!(
        text.contains("DEGRADED") && text.contains("OVERDUE"),
        "{text}"
    );
    assert!(
        verdict(&berlin)["reasons"]
            .to_string()
            .contains("overdue for verification"),
        "{}",
        verdict(&berlin)
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        warn_lines(&berlin, "overdue for verification"),
        1,
        "one WARN per state change, not per check:\n{}",
        berlin.logs_text()
    );
    // Dublin is back: verification resumes with no operator action; no longer overdue.
    dublin.start();
    poll_n_overdue(&berlin, false);
    poll_witness("the recovery logged", || {
        let logs = berlin.logs_text();
        logs.contains("back on schedule").then_some(()).ok_or(logs)
    });
}

/// Waits until Berlin's row for its one peer says `overdue`.
fn poll_n_overdue(on: &Daemon, overdue: bool) {
    crate::support::poll_n(
        &format!("the peer's overdue flag to be {overdue}"),
        300,
        std::time::Duration::from_millis(100),
        || {
            let s = on.json(&["status"]);
            (s["peers"][0]["scrolls"][0]["overdue"] == overdue)
                .then_some(())
                .ok_or_else(|| s["peers"].to_string())
        },
    );
}
