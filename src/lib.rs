//! The VaultMesh federation node (placeholder while the receipts crate is built).
