//! `vaultmesh-federation`: the VaultMesh federation node.
//!
//! It holds the sans-IO federation [`engine`] (the whole trust lifecycle, with its request
//! policy), [`federation_log`] (engine receipts into the Federation scroll, exactly once),
//! the CLI's commands that need no daemon (`init`, `scroll …`), the data directory, the
//! configuration and the one clock module. The [`node`] runtime drives the engine over the
//! network and serves the control socket.

pub mod anchor;
pub mod cli;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod federation_log;
pub mod http;
pub mod node;
pub mod state_rebuild;
pub mod witness;
