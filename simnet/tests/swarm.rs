//! The swarm scenario end to end: real libp2p nodes on 127.0.0.1 in this process (DHT
//! discovery, gossip of roots with one forgery, a witness round). 12 nodes by default;
//! `VM_SWARM_NODES=50` (or 100) runs a bigger swarm through the same assertions, for
//! measuring.

use vm_simnet::swarm::{self, INVARIANTS, NEIGHBOURS};

/// Nodes in the run: 12, or `VM_SWARM_NODES`.
fn nodes() -> usize {
    match std::env::var("VM_SWARM_NODES") {
        Ok(text) => text
            .parse()
            .expect("VM_SWARM_NODES must be a number of nodes"),
        Err(_) => 12,
    }
}

// Every node finds its ring neighbours' records, gets every other node's root and refuses
// the forged one, and verifies each neighbour's root: all four invariants hold, with the
// counts the ring dictates.
#[test]
fn swarm_discovers_gossips_and_witnesses() {
    let n = nodes();
    let seed = 7;
    let report = swarm::run(n, seed).expect("the swarm scenario ran to the end");
    println!("{report}");
    assert!(report.passed(), "{report}");

    let names: Vec<&str> = report.invariants.iter().map(|i| i.name).collect();
    assert_eq!(names, INVARIANTS, "the four invariants, in order");
    let k = NEIGHBOURS.min(n - 1) as u64;
    let n64 = n as u64;
    let checks = |name: &str| {
        report
            .invariants
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.checks)
            .expect("the invariant is reported")
    };
    assert_eq!(
        checks("dht_discovery"),
        n64 * k,
        "one lookup per ring neighbour"
    );
    assert_eq!(
        checks("gossip_delivery"),
        n64 * (n64 - 1),
        "full delivery is what is checked"
    );
    assert!(
        checks("forged_gossip_rejected") >= 1,
        "somebody saw the forged root, so its refusal was tested"
    );
    assert_eq!(checks("witness_round"), n64 * k);
    assert_eq!(report.witness_checks, n64 * k);
    assert_eq!(report.attestations, n64 * k, "every check verified");

    assert_eq!(report.scenario, "swarm");
    assert_eq!(report.meshes, n);
    assert_eq!(report.seed, seed);
    // At least: n record puts, n·k lookups, n + 1 roots gossiped, 2 requests per check.
    assert!(
        report.messages >= n64 + n64 * k + n64 + 1 + 2 * n64 * k,
        "{}",
        report.messages
    );
    // Each node judged n − 1 honest roots and answered 2k requests.
    assert!(
        report.events >= n64 * (n64 - 1) + 2 * n64 * k,
        "{}",
        report.events
    );
    assert_eq!(report.trace_hash.len(), 64);
    assert!(report.wall_secs > 0.0);
    assert_eq!(
        report.replay,
        format!("simnet run --scenario swarm --meshes {n} --seed {seed}")
    );
}

// The outcomes, not their timing, make the trace: the same seed gives the same trace hash
// from two runs over real sockets, another seed another one.
#[test]
fn outcomes_repeat_for_a_seed() {
    let run = |seed| {
        let report = swarm::run(4, seed).expect("the swarm scenario ran to the end");
        assert!(report.passed(), "{report}");
        report.trace_hash
    };
    // Three swarms side by side, each on its own runtime and ports.
    let [first, again, other] = std::thread::scope(|s| {
        [11, 11, 12]
            .map(|seed| s.spawn(move || run(seed)))
            .map(|h| h.join().expect("a swarm run panicked"))
    });
    assert_eq!(again, first, "same seed, same outcomes");
    assert_ne!(other, first, "another seed, other keys and scrolls");
}

// A swarm without neighbours, or beyond the limit, is refused before any socket opens.
#[test]
fn sizes_outside_the_limits_are_refused() {
    for n in [0, 1, swarm::MAX_NODES + 1] {
        let refused = swarm::run(n, 1).expect_err("refused");
        assert!(
            refused.to_string().contains("the swarm scenario runs"),
            "{refused}"
        );
    }
}
