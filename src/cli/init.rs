//! `vm-federation init`.

use std::process::ExitCode;

use anyhow::Context;
use vm_receipts::MeshId;

use super::{DataDirArg, Output};
use crate::clock::{Clock, SystemClock, os_random_32};
use crate::data_dir::DataDir;

#[derive(Debug, clap::Args)]
pub(super) struct InitArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The mesh's name (`vaultmesh-berlin`) or id (`did:vm:mesh:vaultmesh-berlin`).
    #[arg(long, value_parser = MeshId::parse_flexible)]
    mesh: MeshId,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: InitArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let seed = os_random_32()
        .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
    let report = DataDir::init(&args.dir.data_dir, args.mesh, seed, SystemClock.now())
        .context("could not create the mesh")?;
    if args.json {
        out.json(&report)?;
    } else {
        out.line(format!(
            "created mesh {} in {}",
            report.mesh_id,
            report.data_dir.display()
        ))?;
        out.line(format!("mesh id:    {}", report.mesh_id))?;
        out.line(format!("public key: {}", report.public_key))?;
        out.line(format!("peer id:    {}", report.peer_id))?;
    }
    Ok(ExitCode::SUCCESS)
}
