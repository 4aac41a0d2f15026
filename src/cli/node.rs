//! `vm-federation node run`: the daemon.

use std::process::ExitCode;

use anyhow::Context;
use vm_receipts::MeshId;

use super::{DataDirArg, Output};
use crate::clock::{Clock, SystemClock, os_random_32};
use crate::data_dir::DataDir;

#[derive(Debug, clap::Subcommand)]
pub(super) enum NodeCommand {
    /// Run the node in the foreground until SIGTERM or SIGINT. With --init, a data directory
    /// that holds no mesh yet is initialised first with the name given by --mesh (embedded
    /// defaults: loopback addresses, no bootstrap peers, the system DNS resolver); without it,
    /// such a directory is refused (a mistyped path never starts a new mesh with a new key).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Create the mesh first if the directory holds none yet.
    #[arg(long)]
    init: bool,
    /// The mesh to create with --init.
    #[arg(long, value_parser = MeshId::parse_flexible, default_value = "vaultmesh-local")]
    mesh: MeshId,
}

pub(super) fn run(command: NodeCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    let NodeCommand::Run(args) = command;
    let root = args.dir.data_dir;
    if !root.join("config.toml").exists() {
        if !args.init {
            anyhow::bail!(
                "{} holds no mesh (no config.toml). If that is the right directory, create the \
                 mesh with `vm-federation node run --init --data-dir {} --mesh NAME` (or \
                 `vm-federation init`); if not, check the path: a new mesh has a new key, \
                 unknown to every peer",
                root.display(),
                root.display()
            );
        }
        let seed = os_random_32()
            .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
        let report = DataDir::init(&root, args.mesh, seed, SystemClock.now())
            .context("could not create the mesh")?;
        out.line(format!(
            "created mesh {} in {} (public key {})",
            report.mesh_id,
            report.data_dir.display(),
            report.public_key
        ))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot watch SIGTERM");
                        std::future::pending::<()>().await;
                        return;
                    }
                };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
            }
        };
        crate::node::run(&root, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
