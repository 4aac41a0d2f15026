//! The `vm-federation` command line: a thin typed shell (clap derive). It parses arguments,
//! calls the library, and renders results; protocol decisions live elsewhere.
//!
//! Exit codes: 0 success, 1 an error or a failed check, 2 a usage error; `verify`: 3 a
//! discrepancy found, 4 the peer unreachable (no verdict).

mod config;
mod init;
mod node;
mod outbox;
mod output;
mod remote;
mod scroll;
mod state;
mod status;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use output::Output;

/// VaultMesh federation node: find other meshes, sign trust agreements, witness each other's
/// receipt logs.
#[derive(Debug, Parser)]
#[command(name = "vm-federation", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "VM_FEDERATION_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable; colour only on a terminal.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
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
    /// Agreements: list, show, amend, revoke, suspend, resume.
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
    /// Messages to peers waiting for delivery: list, retry.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// The node at a glance: a verdict (ok / degraded / alarm) with its reasons, each
    /// federated peer, our scrolls and anchor.
    Status(status::StatusArgs),
    /// Connectivity of known meshes.
    Health(remote::HealthArgs),
    /// Print a shell completion script (`vm-federation completions bash > /etc/bash_completion.d/vm-federation`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (one per command) into a directory.
    Man {
        /// Where to write `vm-federation.1`, `vm-federation-scroll-append.1`, ….
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
}

/// Where the mesh lives; every command that touches one takes it.
#[derive(Debug, clap::Args)]
struct DataDirArg {
    /// The mesh's data directory.
    #[arg(long, env = "VM_FEDERATION_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
}

/// The command line's definition, with `version` as `--version` prints it.
pub fn command(version: &'static str) -> clap::Command {
    Cli::command().version(version)
}

/// Every man page: (file name, roff text), the top command's first.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    // The pages carry no version: they are committed and checked for drift.
    let mut cmd = Cli::command().version(None::<&str>);
    cmd.build();
    let mut pages = Vec::new();
    man_page(&cmd, &mut pages)?;
    Ok(pages)
}

fn man_page(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut roff)?;
    pages.push((format!("{name}.1"), roff));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        man_page(sub, pages)?;
    }
    Ok(())
}

/// Runs the command line and returns the process exit code; `version` is what `--version`
/// prints (the binary's, with its commit).
pub fn main(version: &'static str) -> ExitCode {
    let parsed = command(version)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
    init_logging(cli.log_format);
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
        Command::Outbox(cmd) => outbox::run(cmd, &mut out),
        Command::Status(args) => status::status(args, &mut out),
        Command::Health(args) => remote::health(args, &mut out),
        Command::Completions { shell } => completions(shell, version, &mut out),
        Command::Man { out_dir } => write_man_pages(&out_dir, &mut out),
    };
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if json_requested() {
                // A program that asked for JSON gets its errors as JSON too (on stderr).
                let code = match e.downcast_ref::<crate::node::client::NodeRefused>() {
                    Some(refused) => refused.code.as_str(),
                    None if e.is::<crate::node::client::NotRunning>() => "not_running",
                    None => "error",
                };
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

/// The completion script for `shell` on stdout (written whole, so a closed pipe is an error
/// and not a panic inside the generator).
fn completions(
    shell: clap_complete::Shell,
    version: &'static str,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    use clap_complete::Generator;
    let mut cmd = command(version).bin_name("vm-federation");
    cmd.build();
    let mut script = Vec::new();
    shell
        .try_generate(&cmd, &mut script)
        .map_err(|e| anyhow::anyhow!("generating the {shell} completions: {e}"))?;
    out.raw(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_man_pages(dir: &std::path::Path, out: &mut Output) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let pages = man_pages().map_err(|e| anyhow::anyhow!("rendering the man pages: {e}"))?;
    for (name, roff) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, roff)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    out.line(format!(
        "{} man pages written to {}",
        pages.len(),
        dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => {
            // Colour only for a person at a terminal: log files and journals get plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(ansi).try_init()
        }
    };
}
