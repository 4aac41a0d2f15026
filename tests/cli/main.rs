//! End-to-end tests of the `vm-federation` binary (one test binary for the package).

mod commands;
mod crash;
mod support;
