//! Checking a state database before it is trusted, and keeping redb's panics out of the node.
//!
//! At every open (and every reopen after a fault) the store runs redb's own integrity check
//! (page checksums, the allocator state) and then decodes every key and value of every table,
//! so a damaged file is refused at open with the table and key named, instead of failing, or
//! panicking inside redb, on the first read that happens to touch it.

use std::any::Any;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use crate::error::StoreError;
use crate::records::{
    AgreementRecord, AnchoredRoot, ArbitrationRecord, DiscrepancyRecord, OutgoingMessage,
    PeerEntry, ProposalRecord, ReceivedAttestation, Record, WitnessState,
};

/// Runs `f`; a panic inside it (redb decoding a damaged page) becomes [`StoreError::Damaged`].
pub(crate) fn guard<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(out) => out,
        Err(panic) => Err(panicked(what, panic.as_ref())),
    }
}

/// The error for a panic caught while `what`.
pub(crate) fn panicked(what: &str, panic: &(dyn Any + Send)) -> StoreError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    // Inside redb this is a damaged page or key; inside a caller's closure, a bug: either
    // way the transaction is gone and the database is reopened and checked before reuse.
    StoreError::Damaged(format!(
        "a panic while {what} the state database ({message}): a damaged file, or a bug"
    ))
}

/// redb's integrity check, then every record decoded. A database redb had to repair is
/// accepted (it is what an unclean stop leaves) and logged; one it cannot repair, or whose
/// records do not decode, is refused.
pub(crate) fn check(db: &mut Database) -> Result<(), StoreError> {
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the state database was repaired by redb at open"),
        Err(e) => return Err(StoreError::Damaged(format!("integrity check: {e}"))),
    }
    let txn = db.begin_read()?;
    let tables: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
    for name in &tables {
        check_table(&txn, name)?;
    }
    Ok(())
}

/// Decodes every entry of the table called `name` with the types it is written with.
fn check_table(txn: &redb::ReadTransaction, name: &str) -> Result<(), StoreError> {
    macro_rules! records {
        ($($r:ty),*) => {$(
            if name == <$r as Record>::NAME {
                return records::<$r>(txn);
            }
            if let Some(index) = <$r as Record>::INDEX
                && index.name() == name
            {
                return keys(txn, index);
            }
        )*};
    }
    records!(
        PeerEntry,
        ProposalRecord,
        AgreementRecord,
        WitnessState,
        DiscrepancyRecord,
        OutgoingMessage,
        AnchoredRoot,
        ReceivedAttestation,
        ArbitrationRecord
    );
    match name {
        "meta" => keys(txn, crate::store::META),
        "replay" => keys(txn, crate::store::REPLAY),
        "replay_by_expiry" => keys(txn, crate::store::REPLAY_BY_EXPIRY),
        "receipt_outbox" => {
            let table = txn.open_table(crate::store::RECEIPT_OUTBOX)?;
            for entry in table.iter()? {
                let (key, value) = entry?;
                let sequence = key.value();
                if let Err(e) = vm_receipts::receipts::parse_receipt(value.value()) {
                    return Err(StoreError::Corrupt {
                        table: "receipt_outbox",
                        key: sequence.to_string(),
                        message: format!("not a receipt: {e}"),
                    });
                }
            }
            Ok(())
        }
        // A table of a newer schema: this program never reads it (and the schema check
        // that follows refuses a newer database with the clearer error).
        _ => Ok(()),
    }
}

fn records<R: Record>(txn: &redb::ReadTransaction) -> Result<(), StoreError> {
    let table = txn.open_table(R::TABLE)?;
    for entry in table.iter()? {
        let (key, value) = entry?;
        let key = key.value();
        let record: R = serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
            table: R::NAME,
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        if record.key() != key {
            return Err(StoreError::Corrupt {
                table: R::NAME,
                key: key.to_owned(),
                message: format!("the record stored there is {:?}'s", record.key()),
            });
        }
    }
    Ok(())
}

/// Reads every key and value of a table whose types redb decodes itself (strings must be
/// UTF-8: redb panics on one that is not, which [`guard`] turns into an error).
fn keys<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let table = txn.open_table(table)?;
    for entry in table.iter()? {
        let (key, value) = entry?;
        // Decoding is what checks them.
        let _ = (key.value(), value.value());
    }
    Ok(())
}
