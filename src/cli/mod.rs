//! The `vm-federation` command line: a thin typed shell (clap derive). It parses arguments,
//! calls the library, and renders results; protocol decisions live elsewhere.
//!
//! Exit codes: 0 success, 1 an error or a failed check, 2 a usage error; `verify`: 3 a
//! discrepancy found, 4 the peer unreachable (no verdict).

mod config;
mod init;
mod node;
mod output;
mod remote;
mod scroll;
mod state;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::Output;

/// VaultMesh federation node: find other meshes, sign trust agreements, witness each other's
/// receipt logs.
#[derive(Debug, Parser)]
#[command(name = "vm-federation", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new mesh: key (0600), config.toml and an empty Federation scroll.
    Init(init::InitArgs),
    /// Work on a scroll directly on disk, without a running node.
    #[command(subcommand)]
    Scroll(scroll::ScrollCommand),
    /// The daemon.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// The configuration: check it without starting the node.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// The state database: rebuild it from the Federation scroll.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Find a mesh by id (DHT) or domain (DNS SRV/TXT) and store its signed record.
    Discover(remote::DiscoverArgs),
    /// Meshes this node knows, with where each came from.
    ListKnown(remote::ReadArgs),
    /// Add a mesh by hand.
    #[command(subcommand)]
    Peers(remote::PeersCommand),
    /// Propose federation to a known mesh.
    Propose(remote::ProposeArgs),
    /// Proposals: list, show, accept, reject, counter, withdraw.
    #[command(subcommand)]
    Proposals(remote::ProposalsCommand),
    /// Agreements: list, show, revoke, suspend, resume.
    #[command(subcommand)]
    Agreements(remote::AgreementsCommand),
    /// Witness a peer's scroll now: fetch its latest root, check it, attest (exit 3 on a
    /// discrepancy, 4 when the peer does not answer).
    Verify(witness::VerifyArgs),
    /// Witness events with a peer (both directions), newest first.
    WitnessHistory(witness::HistoryArgs),
    /// Anchor cycles.
    #[command(subcommand)]
    Anchor(witness::AnchorCommand),
    /// Discrepancies found or reported, with their evidence.
    #[command(subcommand)]
    Discrepancies(witness::DiscrepanciesCommand),
    /// The node's state.
    Status(remote::ReadArgs),
    /// Connectivity of known meshes.
    Health(remote::HealthArgs),
}

/// Where the mesh lives; every command that touches one takes it.
#[derive(Debug, clap::Args)]
struct DataDirArg {
    /// The mesh's data directory.
    #[arg(long, env = "VM_FEDERATION_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and exit 0; usage errors exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    let mut out = Output::stdout();
    let result = match cli.command {
        Command::Init(args) => init::run(args, &mut out),
        Command::Scroll(cmd) => scroll::run(cmd, &mut out),
        Command::Node(cmd) => node::run(cmd, &mut out),
        Command::State(cmd) => state::run(cmd, &mut out),
        Command::Config(cmd) => config::run(cmd, &mut out),
        Command::Discover(args) => remote::discover(args, &mut out),
        Command::ListKnown(args) => remote::list_known(args, &mut out),
        Command::Peers(cmd) => remote::peers(cmd, &mut out),
        Command::Propose(args) => remote::propose(args, &mut out),
        Command::Proposals(cmd) => remote::proposals(cmd, &mut out),
        Command::Agreements(cmd) => remote::agreements(cmd, &mut out),
        Command::Verify(args) => witness::verify(args, &mut out),
        Command::WitnessHistory(args) => witness::history(args, &mut out),
        Command::Anchor(cmd) => witness::anchor(cmd, &mut out),
        Command::Discrepancies(cmd) => witness::discrepancies(cmd, &mut out),
        Command::Status(args) => remote::status(args, &mut out),
        Command::Health(args) => remote::health(args, &mut out),
    };
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if json_requested() {
                // A program that asked for JSON gets its errors as JSON too (on stderr).
                let code = e
                    .downcast_ref::<crate::node::client::NodeRefused>()
                    .map_or("error", |r| r.code.as_str());
                eprintln!(
                    "{}",
                    serde_json::json!({"error": code, "message": render_error(&e)})
                );
            } else {
                eprintln!("error: {}", render_error(&e));
            }
            ExitCode::from(1)
        }
    }
}

/// Whether the command line asked for JSON output.
fn json_requested() -> bool {
    std::env::args_os().skip(1).any(|a| a == "--json")
}

/// The error and its causes, leaving out a cause whose text the message already holds (our
/// errors name their source in their own message).
fn render_error(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only for a person at a terminal: log files and journals get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
