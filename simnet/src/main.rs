//! `simnet`: runs named scenarios and prints their reports.
//!
//! ```text
//! simnet run --scenario NAME --meshes N --seed S [--hours H]
//! simnet seeds --scenario random --meshes 6 --count 200 [--first S]
//! simnet list
//! ```
//!
//! The exit status is 1 when an invariant failed; the report then names the seed and the
//! command that replays the run.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vm_simnet::report::Report;
use vm_simnet::scenario::{self, SCENARIOS};

#[derive(Parser)]
#[command(
    name = "simnet",
    about = "Simulates VaultMesh federations: faults, byzantine meshes, invariants"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one scenario and prints its report.
    Run {
        /// The scenario (see `simnet list`).
        #[arg(long)]
        scenario: String,
        /// Meshes (swarm: libp2p nodes).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=100_000))]
        meshes: u64,
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated hours of anchor cycles (default: the scenario's).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=24 * 365))]
        hours: Option<u64>,
        /// Agreements per mesh.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
        peers: Option<u64>,
    },
    /// Runs a scenario over many seeds; prints one line each and the failures' reports.
    Seeds {
        /// The scenario.
        #[arg(long, default_value = "random")]
        scenario: String,
        /// Meshes.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(2..=10_000))]
        meshes: u64,
        /// How many seeds.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        first: u64,
    },
    /// Lists the scenarios.
    List,
}

fn run_one(
    name: &str,
    meshes: usize,
    seed: u64,
    hours: Option<u64>,
    peers: Option<u64>,
) -> Result<Report, String> {
    if name == "swarm" {
        return vm_simnet::swarm::run(meshes, seed).map_err(|e| format!("swarm: {e:#}"));
    }
    let mut config = scenario::config(name, meshes, seed)?;
    if let Some(h) = hours {
        config.hours = h;
    }
    if let Some(p) = peers {
        config.peers = usize::try_from(p).unwrap_or(usize::MAX).min(meshes - 1);
    }
    Ok(scenario::run(config))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::List => {
            for s in SCENARIOS {
                println!("{s}");
            }
            ExitCode::SUCCESS
        }
        Cmd::Run {
            scenario,
            meshes,
            seed,
            hours,
            peers,
        } => match run_one(&scenario, meshes as usize, seed, hours, peers) {
            Ok(report) => {
                print!("{report}");
                if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("simnet: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Seeds {
            scenario,
            meshes,
            count,
            first,
        } => {
            let mut failed = 0u64;
            for seed in first..first.saturating_add(count) {
                match run_one(&scenario, meshes as usize, seed, None, None) {
                    Ok(report) => {
                        let p99 = report
                            .detection_percentile(99.0)
                            .map_or_else(|| "-".into(), |s| format!("{s}s"));
                        println!(
                            "seed {seed}: {} events {} messages {} detections p99 {p99} trace {}",
                            if report.passed() { "ok  " } else { "FAIL" },
                            report.events,
                            report.messages,
                            &report.trace_hash[..16],
                        );
                        if !report.passed() {
                            failed += 1;
                            print!("{report}");
                        }
                    }
                    Err(e) => {
                        eprintln!("simnet: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            println!("{count} seeds, {failed} failed");
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
