//! `vm-federation config check`: every problem of a data directory's configuration and key,
//! named, without starting anything (exit 0 when there is none, 1 otherwise).

use std::process::ExitCode;

use serde_json::json;

use super::{DataDirArg, Output};
use crate::config::Config;
use crate::data_dir::DataDir;

#[derive(Debug, clap::Subcommand)]
pub(super) enum ConfigCommand {
    /// Check config.toml and the key as `node run` would, listing every problem.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Print the result as JSON (`{"ok", "problems"}`).
    #[arg(long)]
    json: bool,
}

pub(super) fn run(cmd: ConfigCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check(args) = cmd;
    let root = &args.dir.data_dir;
    let mut problems: Vec<String> = Vec::new();
    match Config::load(&root.join("config.toml")) {
        Ok(config) => problems.extend(crate::node::config_problems(&config)),
        Err(e) => problems.push(e.to_string()),
    }
    if let Err(e) = DataDir::read_identity(root) {
        let text = e.to_string();
        if !problems.contains(&text) {
            problems.push(text);
        }
    }
    if args.json {
        out.json(&json!({"ok": problems.is_empty(), "problems": problems}))?;
    } else if problems.is_empty() {
        out.line(format!("{}: configuration and key ok", root.display()))?;
    } else {
        for p in &problems {
            out.line(p)?;
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
