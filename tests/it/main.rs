//! Tests of the `vaultmesh-federation` package: the `vm-federation` binary end to end, and
//! the workspace's architecture rules (one test binary for the package).

mod anchor;
mod commands;
mod crash;
mod engine;
mod engine_arbitration;
mod engine_crash;
mod engine_props;
mod engine_refusals;
mod engine_resolution;
mod engine_witness;
mod hostile_responder;
mod https_auth;
mod net;
mod node_input;
mod openapi;
mod policy;
mod state_rebuild;
mod support;
mod tidy;
mod witness_check;
