//! The federation engine: sans-IO, driven by `handle(now, input) -> outputs` (DESIGN §2; its
//! lifecycle is issue 3). It never touches sockets, files, tokio, the OS clock or an OS RNG:
//! time and randomness arrive as inputs, and `tests/it/tidy.rs` checks this directory for it.
//!
//! Built so far: [`policy`], the one function that decides whether a peer may make a request.

pub mod policy;
