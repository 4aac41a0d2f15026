//! The storage error: what failed, named, with redb's cause.

/// Why a storage operation failed. Nothing was changed by a failed write transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb refused (I/O error, corruption, a lock held by another process, …).
    #[error("state database: {0}")]
    Database(String),
    /// The database was written by a newer version of this program.
    #[error(
        "state database has schema version {found}; this program knows up to {known}: upgrade the program"
    )]
    NewerSchema {
        /// Version on disk.
        found: u32,
        /// Newest version this program migrates to.
        known: u32,
    },
    /// A stored value does not decode (the database was damaged or written by other code).
    #[error("state database: table {table}, key {key:?}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
        /// The decode error.
        message: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode a {table} record: {message}")]
    Encode {
        /// The table.
        table: &'static str,
        /// The encode error.
        message: String,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.to_string())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
