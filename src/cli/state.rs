//! `vm-federation state …`: the state database, rebuilt from the Federation scroll.

use std::process::ExitCode;

use anyhow::Context;

use super::{DataDirArg, Output};
use crate::clock::{Clock, SystemClock};

#[derive(Debug, clap::Subcommand)]
pub(super) enum StateCommand {
    /// Rebuild state.redb from the Federation scroll and the key (the node must be stopped);
    /// the old file, if any, is kept beside it as state.redb.before-rebuild-<time>.
    Rebuild(RebuildArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct RebuildArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(cmd: StateCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Rebuild(args) => {
            let report = crate::state_rebuild::rebuild(&args.dir.data_dir, SystemClock.now())
                .context("could not rebuild the state database")?;
            if args.json {
                out.json(&report)?;
            } else {
                out.line(format!(
                    "rebuilt {} from {} receipts of the Federation scroll",
                    args.dir.data_dir.join("state.redb").display(),
                    report.receipts
                ))?;
                for (table, n) in &report.rebuilt {
                    out.line(format!("  {table}: {n}"))?;
                }
                if let Some(old) = &report.previous_state {
                    out.line(format!("the previous file is kept as {}", old.display()))?;
                }
                for skipped in &report.skipped {
                    out.line(format!("left out: {skipped}"))?;
                }
                out.line("not rebuilt, by design:")?;
                for what in &report.not_rebuilt {
                    out.line(format!("  {what}"))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
