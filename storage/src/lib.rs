//! `vm-storage`: the node's durable state in redb.
//!
//! One [`Store`] per process holds the peer book (discovery records and manual entries, with
//! where each came from), proposals with their negotiation history, agreements, witness state
//! per (peer, scroll), discrepancies, and the replay cache of signed requests. It stores and
//! returns what it is given; deciding protocol outcomes is the engine's work.
//!
//! - **Transactions**: every change goes through [`Store::write`], so changes to several tables
//!   commit together or not at all, and a commit returns only once it is durable (redb's
//!   `Durability::Immediate`, the default).
//! - **Schema**: the `meta` table holds the schema version; [`Store::open`] creates it,
//!   migrates an older database forward in one transaction, and refuses a newer one.
//! - **Backends**: a file, or redb's in-memory backend for simulation and tests.
//! - **Witness protocol** (schema 3): our latest anchored root per scroll, and the latest
//!   attestation each peer sent us per scroll.
//! - **Outboxes** (schema 2): receipts decided but not yet in the Federation scroll, keyed by
//!   the sequence each will have, and messages not yet acknowledged by their peer. The engine
//!   writes them in the same transaction as the state change, which is what makes receipts
//!   exactly-once and messages at-least-once across a crash.
//! - **Blocking**: redb calls block on disk I/O; async callers run them on a dedicated thread
//!   or `spawn_blocking`, never on the executor.
//!
//! Values are the JSON of typed records ([`records`]); keys are strings built by each
//! record type, so key order is stable and human-readable in a dump.

mod error;
mod integrity;
pub mod records;
mod store;

pub use error::StoreError;
pub use records::{
    AgreementRecord, AgreementStatus, AnchoredRoot, ArbitrationRecord, CasOutcome, Direction,
    DiscrepancyRecord, OutgoingMessage, PeerEntry, PeerSource, ProposalRecord, ProposalStatus,
    ReceivedAttestation, Record, WitnessState,
};
pub use store::{ReadTx, Reads, Replay, SCHEMA_VERSION, Store, WriteTx};
