//! `vm-simnet`: many meshes in one process.
//!
//! - **Engine level** ([`sim`]): every mesh is the real [`Engine`] over redb's in-memory
//!   backend and an in-memory Federation log, with an in-memory data scroll it anchors and
//!   its peers witness. One virtual clock and one seeded RNG drive a simulated network with
//!   latency, jitter, loss, duplication, reordering, partitions and crash/restart, and
//!   byzantine meshes. The same seed gives the same run, event for event (the trace hash).
//!   Invariants ([`invariants`]) are checked as the run goes and after faults heal.
//! - **Swarm level** ([`swarm`]): real libp2p nodes on loopback in one process.
//! - [`scenario`]: the named scenarios the `simnet` binary runs.
//!
//! [`Engine`]: vaultmesh_federation::engine::Engine

pub mod invariants;
pub mod net;
pub mod report;
pub mod scenario;
pub mod scroll;
pub mod sim;
pub mod swarm;
