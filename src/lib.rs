//! `vaultmesh-federation`: the VaultMesh federation node.
//!
//! This crate will hold the sans-IO federation engine, the node runtime that drives it, the
//! control socket and the CLI. Today it holds the CLI's first commands (`init`, `scroll …`),
//! the data directory, the configuration, the one clock module, and the first piece of the
//! engine: the request policy.

pub mod cli;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod engine;
