//! `vm-receipts`: everything of the VaultMesh federation protocol that needs no network.
//!
//! - **Encodings** ([`MeshId`], [`ScrollName`], [`PublicKey`], [`Signature`], [`Blake3Hash`],
//!   [`Timestamp`]): parsed once, valid by construction, serialised in exactly one form.
//! - **Canonical JSON** ([`jcs`]): RFC 8785 output, and a strict parser that refuses duplicate
//!   keys and integers beyond ±(2^53−1) before serde sees the document.
//! - **Signing** ([`MeshKey`], [`Kind`]): Ed25519 over
//!   `"vaultmesh-federation/v1/" + KIND + "\n" + JCS(document without its signature fields)`.
//! - **Documents and receipts** ([`documents`], [`receipts`]): every protocol document and
//!   Federation receipt as a typed struct that keeps unknown fields.
//! - **Merkle log** ([`merkle`]): RFC 9162 tree, generic over the hash, blake3 in production.
//! - **Scrolls** ([`scroll`]): the append-only JSONL files, their `ROOT.<name>.txt` signed
//!   roots, crash recovery, proofs and full verification.
//!
//! This crate never uses tokio, sockets, the OS clock or an OS random number generator: time
//! and key seeds are arguments.

pub mod documents;
pub mod error;
pub mod hash;
pub mod id;
pub mod jcs;
pub mod key;
pub mod merkle;
pub mod proof;
pub mod receipts;
pub mod scroll;
pub mod timestamp;

pub use error::EncodingError;
pub use hash::Blake3Hash;
pub use id::{DocumentId, MeshId, ScrollName};
pub use key::{Kind, MeshKey, PublicKey, Signature};
pub use timestamp::Timestamp;
