//! `vm-federation`: see `vm-federation --help`.

fn main() -> std::process::ExitCode {
    vaultmesh_federation::cli::main()
}
