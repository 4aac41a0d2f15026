//! Issue 17, item 1: two federated nodes on the default configuration (listen ports picked by
//! the OS) both restart, and witnessing resumes with no operator action: each node listens
//! where its peer last saw it (`listen.json` keeps the ports it was given).

use crate::ops::{anchor, append, discrepancies, wait_witnessed};
use crate::support::Daemon;
use std::time::Duration;

#[test]
fn both_federated_nodes_restart_and_witnessing_resumes_without_operator_action() {
    let root = tempfile::tempdir().expect("tempdir");
    // Default listen ports (picked by the OS); short request timeouts, so the unreachable
    // peer at the end is given up on quickly.
    let (mut dublin, mut berlin) = crate::ops::witnessing_pair(root.path(), |d| {
        d.append_config("\n[anchor]\ninterval_secs = 86400\n[network]\nrequest_timeout_secs = 2\n");
    });

    let before = (dublin.tcp.clone(), berlin.tcp.clone());
    for d in [&mut dublin, &mut berlin] {
        assert!(d.terminate().success());
    }
    for d in [&mut dublin, &mut berlin] {
        d.start();
    }
    assert_eq!(
        (dublin.tcp.clone(), berlin.tcp.clone()),
        before,
        "same addresses"
    );

    append(&dublin, "Compliance", 2, "after-restart");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", 5);
    append(&berlin, "Compliance", 1, "after-restart");
    anchor(&berlin);
    wait_witnessed(&dublin, &berlin, "Compliance", 4);
    assert!(discrepancies(&dublin).is_empty());
    assert!(discrepancies(&berlin).is_empty());

    // `peers list` shows each peer's addresses and last contact; a federated peer cannot be
    // removed, a mesh we are not bound to can.
    let listed = dublin.cli(&["peers", "list"]);
    let text = crate::support::shown(&listed);
    assert!(
        text.contains("vaultmesh-berlin")
            && text.contains("over ")
            && text.contains("agreement  fed-agreement-")
            && text.contains("active"),
        "{text}"
    );
    let refused = dublin.cli(&["peers", "remove", "--mesh", "vaultmesh-berlin"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        crate::support::shown(&refused)
    );
    assert!(crate::support::shown(&refused).contains("revoke it first"));
    dublin.json(&[
        "peers",
        "add",
        "--mesh",
        "stranger",
        "--public-key",
        &dk_other(),
    ]);
    dublin.json(&["peers", "remove", "--mesh", "stranger"]);
    let peers = dublin.json(&["peers", "list"]);
    assert!(
        !peers.to_string().contains("did:vm:mesh:stranger"),
        "{peers}"
    );

    // Both see the other healthy.
    for d in [&dublin, &berlin] {
        let out = d.cli(&["health"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            crate::support::shown(&out)
        );
    }

    // A peer that does not answer is no verdict, with its own exit code (not a discrepancy's),
    // and `health` says it is unreachable, with exit 1.
    assert!(dublin.terminate().success());
    crate::support::poll("health to see Dublin gone", || {
        let out = berlin.cli(&["health", "--all-peers"]);
        let text = crate::support::shown(&out);
        (out.status.code() == Some(1) && text.contains("UNREACHABLE"))
            .then_some(())
            .ok_or(text)
    });
    let out = berlin.cli(&[
        "verify",
        "--mesh",
        "vaultmesh-dublin",
        "--scroll",
        "Compliance",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        crate::support::shown(&out)
    );
    assert!(discrepancies(&berlin).is_empty());
}

/// A key no daemon of the test holds.
fn dk_other() -> String {
    vm_receipts::MeshKey::from_seed(&[42; 32])
        .public_key()
        .to_string()
}

/// Issue 17, item 1: two federated meshes that both come back on other addresses (their
/// remembered ports gone) find each other again with no operator action: each call that
/// fails makes the node look the peer's signed record up again in the DHT (here through a
/// third node both bootstrap from, where each republished its record on reconnecting), and
/// witnessing resumes where it stopped.
#[test]
fn federated_meshes_that_both_move_find_each_other_again_through_the_dht() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut hub = Daemon::new(root.path(), "vaultmesh-hub");
    hub.init();
    hub.start();
    let bootstrap = format!(
        "\n[anchor]\ninterval_secs = 86400\n[network]\nrequest_timeout_secs = 2\nbootstrap = [\"{}\"]\n",
        hub.tcp
    );
    let (mut dublin, mut berlin) = crate::ops::witnessing_pair(root.path(), |d| {
        d.append_config(&bootstrap);
    });
    let before = (dublin.tcp.clone(), berlin.tcp.clone());
    for d in [&mut dublin, &mut berlin] {
        assert!(d.terminate().success());
        // The ports of the last start are forgotten: this start picks new ones.
        std::fs::remove_file(d.dir.join("listen.json")).expect("listen.json");
    }
    for d in [&mut dublin, &mut berlin] {
        d.start();
    }
    assert_ne!(dublin.tcp, before.0, "Dublin moved");
    assert_ne!(berlin.tcp, before.1, "Berlin moved");

    // Dublin anchors new receipts; its notification to Berlin's old address fails, so it
    // looks Berlin up, and both pick witnessing up again.
    append(&dublin, "Compliance", 2, "moved");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", 5);
    append(&berlin, "Compliance", 1, "moved");
    anchor(&berlin);
    wait_witnessed(&dublin, &berlin, "Compliance", 4);
    assert!(discrepancies(&dublin).is_empty());
    assert!(discrepancies(&berlin).is_empty());
}

/// A federated peer that does not answer is looked up again on a timer, with backoff,
/// logged once however many calls fail; when it is back, the node finds it without another
/// call of its own failing first, tells it its latest roots, and witnessing resumes.
#[test]
fn an_unreachable_federated_peer_is_looked_up_until_it_answers_and_then_resynced() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dublin, mut berlin) = crate::ops::witnessing_pair(root.path(), |d| {
        d.append_config("\n[anchor]\ninterval_secs = 86400\n[network]\nrequest_timeout_secs = 2\n");
    });
    assert!(berlin.terminate().success());
    // Three anchor cycles, each notifying Berlin, each failing.
    for i in 0..3 {
        append(&dublin, "Compliance", 1, &format!("alone-{i}"));
        anchor(&dublin);
    }
    crate::support::poll("Dublin to start looking Berlin up", || {
        let logs = dublin.logs_text();
        logs.contains("looking up its record again until it answers")
            .then_some(())
            .ok_or(logs)
    });
    std::thread::sleep(Duration::from_secs(3));
    let lines = |d: &Daemon, needle: &str| d.logs_text().matches(needle).count();
    assert_eq!(
        lines(&dublin, "looking up its record again until it answers"),
        1,
        "one line per state change:\n{}",
        dublin.logs_text()
    );
    // Berlin comes back (same ports). Dublin, making no call of its own, finds it on its
    // timer and sends it its latest roots: Berlin witnesses all six receipts.
    berlin.start();
    wait_witnessed(&berlin, &dublin, "Compliance", 6);
    crate::support::poll("Dublin to hear Berlin again", || {
        let logs = dublin.logs_text();
        logs.contains("the peer answers again")
            .then_some(())
            .ok_or(logs)
    });
    assert!(discrepancies(&berlin).is_empty());
}
