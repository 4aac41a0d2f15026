//! The storage error: what failed, named, with redb's cause.

/// Why a storage operation failed. Nothing was changed by a failed write transaction.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb refused (a lock held by another process, a limit, …).
    #[error("state database: {0}")]
    Database(String),
    /// The disk failed (a write, a sync, no space left). redb refuses every later write until
    /// the database is reopened, which [`crate::Store::heal`] does once the cause is gone.
    #[error("state database: the disk failed: {0}")]
    Io(String),
    /// The file is damaged (a checksum, a page, a key or value that does not decode).
    #[error("state database is damaged: {0}")]
    Damaged(String),
    /// A disk failure or damage was seen and the database is waiting to be reopened
    /// ([`crate::Store::heal`]); nothing is read or written until then.
    #[error("state database is unavailable until it can be reopened: {0}")]
    Unavailable(String),
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

impl StoreError {
    /// Whether the database must be reopened before it is used again: the disk failed, the
    /// file is damaged, or redb panicked part way through.
    pub fn needs_reopen(&self) -> bool {
        matches!(
            self,
            Self::Io(_) | Self::Damaged(_) | Self::Unavailable(_) | Self::Corrupt { .. }
        )
    }
}

/// Sorts a redb storage error into what it means for the node.
fn storage(e: &redb::StorageError) -> StoreError {
    match e {
        redb::StorageError::Io(_)
        | redb::StorageError::PreviousIo
        | redb::StorageError::Backend(_)
        | redb::StorageError::DatabaseClosed
        | redb::StorageError::LockPoisoned(_) => StoreError::Io(e.to_string()),
        redb::StorageError::Corrupted(_) => StoreError::Damaged(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        storage(&e)
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        match &e {
            redb::TransactionError::Storage(s) => storage(s),
            _ => Self::Database(e.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        match &e {
            redb::CommitError::Storage(s) => storage(s),
            // A transaction poisoned by an earlier failure inside it.
            _ => Self::Io(e.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        match &e {
            redb::TableError::Storage(s) => storage(s),
            _ => Self::Database(e.to_string()),
        }
    }
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match &e {
            redb::DatabaseError::Storage(s) => storage(s),
            redb::DatabaseError::RepairAborted => Self::Damaged(e.to_string()),
            _ => Self::Database(e.to_string()),
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match &e {
            redb::Error::Io(_) | redb::Error::PreviousIo => Self::Io(e.to_string()),
            redb::Error::Corrupted(_) => Self::Damaged(e.to_string()),
            _ => Self::Database(e.to_string()),
        }
    }
}
