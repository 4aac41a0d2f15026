//! `vm-federation`: see `vm-federation --help`.

fn main() -> std::process::ExitCode {
    vaultmesh_federation::cli::main(concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("VM_GIT_COMMIT"),
        ")"
    ))
}
