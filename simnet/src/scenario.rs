//! Named scenarios, and running one into a [`Report`].

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::net::{LinkConfig, Partition};
use crate::report::Report;
use crate::sim::{Byzantine, ClockStep, Crash, CrashPoint, Sim, SimConfig};

/// The engine-level scenarios.
pub const SCENARIOS: [&str; 11] = [
    "steady",
    "partition-heal",
    "churn",
    "equivocation",
    "history-rewrite",
    "loss-10",
    "byzantine-mix",
    "clock-step",
    "gossip-tamper",
    "random",
    "swarm",
];

const HOUR: u64 = 3_600_000;

/// `count` meshes spread evenly over `n` (so byzantine ones are not neighbours).
fn spread(n: usize, count: usize) -> Vec<usize> {
    (0..count)
        .map(|k| (k * n / count.max(1) + 1) % n.max(1))
        .collect()
}

/// The configuration of scenario `name`.
pub fn config(name: &str, meshes: usize, seed: u64) -> Result<SimConfig, String> {
    let mut c = SimConfig::new(name, meshes, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5151_5151);
    match name {
        "steady" => {}
        "partition-heal" => {
            // Half the meshes cut off both ways for four hours, then a quarter cut one way
            // (they hear the rest, the rest does not hear them) for two.
            let half: Vec<bool> = (0..meshes).map(|i| i < meshes / 2).collect();
            let quarter: Vec<bool> = (0..meshes).map(|i| i % 4 == 0).collect();
            c.network.partitions = vec![
                Partition {
                    from_ms: 3 * HOUR,
                    until_ms: 7 * HOUR,
                    side_a: half,
                    one_way: false,
                },
                Partition {
                    from_ms: 9 * HOUR,
                    until_ms: 11 * HOUR,
                    side_a: quarter,
                    one_way: true,
                },
            ];
        }
        "churn" => {
            // Every hour from the second to the 18th, a tenth of the meshes crash, at a
            // random point, for 5 to 90 minutes.
            for hour in 2..18 {
                for m in 0..meshes {
                    if rng.random_bool(0.1) {
                        c.crashes.push(random_crash(&mut rng, m, hour));
                    }
                }
            }
        }
        "equivocation" => {
            let count = (meshes / 20).max(1);
            for m in spread(meshes, count) {
                c.byzantine.push((m, Byzantine::Equivocate, 3 * HOUR));
            }
        }
        "history-rewrite" => {
            let count = (meshes / 20).max(2);
            for (k, m) in spread(meshes, count).into_iter().enumerate() {
                let b = if k % 2 == 0 {
                    Byzantine::Rewrite
                } else {
                    Byzantine::Truncate
                };
                c.byzantine.push((m, b, (3 + k as u64 % 5) * HOUR));
            }
        }
        "loss-10" => {
            c.network.link = LinkConfig {
                latency_ms: 40,
                jitter_ms: 200,
                loss: 0.10,
                duplicate: 0.02,
            };
        }
        "byzantine-mix" => {
            let kinds = [
                Byzantine::ForgeSignatures,
                Byzantine::Replay,
                Byzantine::WithholdSamples,
                Byzantine::LieAboutAnchors,
                Byzantine::Equivocate,
                Byzantine::Rewrite,
            ];
            let count = kinds.len().min(meshes / 3).max(1);
            for (k, m) in spread(meshes, count).into_iter().enumerate() {
                c.byzantine.push((m, kinds[k], 2 * HOUR));
            }
        }
        "clock-step" => {
            // Honest meshes whose clocks are off for one anchor cycle and then stepped back
            // (an NTP step inside the drift limit): two minutes fast for some, three behind
            // for others, at the node's default one-minute anchor interval, so that a
            // larger root carries an earlier timestamp than the one before it. Nobody may
            // accuse them (issue 14: this was recorded as a proven rollback).
            c.cycle_secs = 60;
            c.hours = 240;
            c.convergence_budget_secs = 600;
            for (k, m) in spread(meshes, (meshes / 4).max(2)).into_iter().enumerate() {
                for step in 0..6u64 {
                    let from = (30 + 30 * step + k as u64 % 7) * 60_000;
                    c.clock_steps.push(ClockStep {
                        mesh: m,
                        from_ms: from,
                        until_ms: from + 60_000,
                        offset_secs: if (k + step as usize).is_multiple_of(2) {
                            120
                        } else {
                            -180
                        },
                    });
                }
            }
        }
        "gossip-tamper" => {
            // Witnesses that pass verified roots on with altered (unsigned) anchor proofs,
            // over a jittery, lossy network so that tampered copies often arrive before the
            // mesh's own notification. Nobody may accuse the meshes whose roots they alter.
            c.network.link = LinkConfig {
                latency_ms: 20,
                jitter_ms: 3_000,
                loss: 0.2,
                duplicate: 0.0,
            };
            for m in spread(meshes, (meshes / 6).max(1)) {
                c.byzantine.push((m, Byzantine::TamperGossip, HOUR));
            }
        }
        "random" => {
            // A small topology with a fault mix drawn from the seed: what CI runs over many
            // seeds.
            c.hours = 8;
            c.network.link = LinkConfig {
                latency_ms: rng.random_range(5..100),
                jitter_ms: rng.random_range(0..500),
                loss: [0.0, 0.02, 0.1][rng.random_range(0..3)],
                duplicate: [0.0, 0.05][rng.random_range(0..2)],
            };
            if rng.random_bool(0.5) {
                let side: Vec<bool> = (0..meshes).map(|_| rng.random_bool(0.5)).collect();
                let from = rng.random_range(1..4) * HOUR;
                c.network.partitions.push(Partition {
                    from_ms: from,
                    until_ms: from + rng.random_range(1..3) * HOUR,
                    side_a: side,
                    one_way: rng.random_bool(0.5),
                });
            }
            for m in 0..meshes {
                if rng.random_bool(0.2) {
                    let hour = rng.random_range(1..4);
                    c.crashes.push(random_crash(&mut rng, m, hour));
                }
            }
            if meshes >= 4 && rng.random_bool(0.5) {
                let kinds = [
                    Byzantine::Equivocate,
                    Byzantine::Rewrite,
                    Byzantine::Truncate,
                    Byzantine::ForgeSignatures,
                    Byzantine::Replay,
                    Byzantine::WithholdSamples,
                    Byzantine::LieAboutAnchors,
                    Byzantine::TamperGossip,
                ];
                let m = rng.random_range(0..meshes);
                let kind = kinds[rng.random_range(0..kinds.len())];
                // Crashing a byzantine mesh tells nothing more; keep its faults its own.
                c.crashes.retain(|x| x.mesh != m);
                c.byzantine.push((m, kind, rng.random_range(2..4) * HOUR));
            }
            if rng.random_bool(0.3) {
                let m = rng.random_range(0..meshes);
                if !c.byzantine.iter().any(|(b, _, _)| *b == m) {
                    let from = rng.random_range(1..5) * HOUR;
                    c.clock_steps.push(ClockStep {
                        mesh: m,
                        from_ms: from,
                        until_ms: from + rng.random_range(1..3) * HOUR,
                        offset_secs: rng.random_range(-240..240),
                    });
                }
            }
        }
        other => {
            return Err(format!(
                "unknown scenario {other:?}; known: {}",
                SCENARIOS.join(", ")
            ));
        }
    }
    Ok(c)
}

fn random_crash(rng: &mut ChaCha20Rng, mesh: usize, hour: u64) -> Crash {
    Crash {
        mesh,
        at_ms: hour * HOUR + rng.random_range(0..HOUR),
        down_ms: rng.random_range(5..90) * 60_000,
        point: [
            CrashPoint::Idle,
            CrashPoint::AfterCommit,
            CrashPoint::BeforeAppend,
        ][rng.random_range(0..3)],
    }
}

/// The command that replays a run.
pub fn replay_command(c: &SimConfig) -> String {
    let mut cmd = format!(
        "cargo run --release -p vm-simnet -- run --scenario {} --meshes {} --seed {}",
        c.scenario, c.meshes, c.seed
    );
    if c.hours != SimConfig::new(&c.scenario, c.meshes, c.seed).hours {
        cmd.push_str(&format!(" --hours {}", c.hours));
    }
    cmd
}

/// Runs a configuration to the end and reports.
pub fn run(config: SimConfig) -> Report {
    let started = vaultmesh_federation::clock::Stopwatch::start();
    let replay = replay_command(&config);
    let mut sim = Sim::new(config);
    sim.finish();
    let c = &sim.config;
    let mut detection_secs = Vec::new();
    let mut undetected = Vec::new();
    for act in &sim.acts {
        if !act.kind.detectable() {
            continue;
        }
        for &w in &sim.meshes[act.mesh].peers {
            if !crate::invariants::owed(&sim, act, w) {
                continue;
            }
            match act.detected.get(&w) {
                Some(t) => detection_secs.push((t - act.at_ms) / 1000),
                None => undetected.push(format!(
                    "{} {} by {}",
                    sim.meshes[act.mesh].id,
                    act.kind.name(),
                    sim.meshes[w].id
                )),
            }
        }
    }
    Report {
        scenario: c.scenario.clone(),
        meshes: c.meshes,
        seed: c.seed,
        simulated_secs: sim.now_ms / 1000,
        events: sim.counters.events,
        messages: sim.counters.messages,
        dropped: sim.counters.dropped,
        witness_checks: sim.counters.witness_checks,
        attestations: sim.counters.attestations,
        arbitrations: sim.counters.arbitrations,
        discrepancies: sim.counters.discrepancies,
        detection_secs,
        undetected,
        convergence_secs: sim.convergence_ms.map(|m| m / 1000),
        invariants: sim.invariants.results(),
        trace_hash: sim.trace_hash(),
        wall_secs: started.elapsed_secs(),
        replay,
    }
}
