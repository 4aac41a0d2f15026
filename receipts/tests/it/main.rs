//! Integration tests of vm-receipts: one test binary for the crate (link time on 2 cores).

mod documents;
mod encoding;
mod jcs;
mod merkle;
mod scroll;
mod support;
