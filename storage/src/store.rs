//! The store: opening, schema migration, and typed read and write transactions.

use std::path::Path;
use std::sync::{Mutex, RwLock};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use vm_receipts::{MeshId, Timestamp};

use crate::error::StoreError;
use crate::records::{
    AgreementRecord, AnchoredRoot, ArbitrationRecord, CasOutcome, DiscrepancyRecord,
    OutgoingMessage, PeerEntry, ProposalRecord, ReceivedAttestation, Record, WitnessState,
};

/// The schema this program writes.
pub const SCHEMA_VERSION: u32 = 5;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";
/// `origin/nonce` → Unix second after which the entry may be forgotten.
pub(crate) const REPLAY: TableDefinition<&str, i64> = TableDefinition::new("replay");
/// `<expiry, 20 digits>/origin/nonce` → (): the same entries in expiry order, for purging.
pub(crate) const REPLAY_BY_EXPIRY: TableDefinition<&str, ()> =
    TableDefinition::new("replay_by_expiry");
/// Most replay entries kept; beyond it new requests are refused until old ones expire.
pub const MAX_REPLAY_ENTRIES: u64 = 1_000_000;
/// Most expired replay entries removed per check (bounded work per request).
const PURGE_PER_CHECK: usize = 64;

/// A step of the schema: changes a database of one version into the next, inside the
/// transaction that also records the new version.
type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;

/// `MIGRATIONS[v]` takes a database from schema version `v` to `v + 1`.
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] =
    [create_v1, create_v2, create_v3, create_v4, create_v5];

/// Version 1: every table exists.
fn create_v1(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(PeerEntry::TABLE)?;
    txn.open_table(ProposalRecord::TABLE)?;
    txn.open_table(AgreementRecord::TABLE)?;
    txn.open_table(WitnessState::TABLE)?;
    txn.open_table(DiscrepancyRecord::TABLE)?;
    txn.open_table(REPLAY)?;
    txn.open_table(REPLAY_BY_EXPIRY)?;
    Ok(())
}

/// Version 2: the engine's outboxes (receipts not yet in the Federation scroll, messages not
/// yet acknowledged by their peer). Version-1 records read unchanged: the fields added to
/// agreement records have defaults.
fn create_v2(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(RECEIPT_OUTBOX)?;
    txn.open_table(OutgoingMessage::TABLE)?;
    // The indexes, filled from the records version 1 holds.
    reindex::<ProposalRecord>(txn)?;
    reindex::<AgreementRecord>(txn)?;
    Ok(())
}

/// Version 3: the witness protocol's own anchored roots and the attestations peers sent us.
fn create_v3(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(AnchoredRoot::TABLE)?;
    txn.open_table(ReceivedAttestation::TABLE)?;
    Ok(())
}

/// Version 4: the index of open findings (one record per finding; records of version 3
/// read with `times_seen` 1).
fn create_v4(txn: &WriteTransaction) -> Result<(), StoreError> {
    reindex::<DiscrepancyRecord>(txn)
}

/// Version 5: the verdicts we gave as an arbiter (records of version 4 read unchanged: the
/// fields added to discrepancy and agreement records have defaults).
fn create_v5(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(ArbitrationRecord::TABLE)?;
    Ok(())
}

/// Rebuilds `R`'s index from its table.
fn reindex<R: Record>(txn: &WriteTransaction) -> Result<(), StoreError> {
    let Some(index) = R::INDEX else {
        return Ok(());
    };
    let records: Vec<R> = all_from(&txn.open_table(R::TABLE)?)?;
    let mut table = txn.open_table(index)?;
    for r in records {
        if let Some(v) = r.index_value() {
            table.insert(r.index_key().as_str(), v)?;
        }
    }
    Ok(())
}

/// Federation scroll sequence → the receipt (JSON object, without `root_hash`) that the
/// engine decided on in the same transaction as the state change it records, and that is not
/// yet known to be in the scroll.
pub(crate) const RECEIPT_OUTBOX: TableDefinition<u64, &[u8]> =
    TableDefinition::new("receipt_outbox");

/// How a store opens its database again after a fault.
type Reopen = Box<dyn Fn() -> Result<Database, StoreError> + Send + Sync>;

/// The node's state database. Open it once per process.
///
/// **Faults.** A write that fails because the disk failed (an I/O error, no space left) or
/// because the file is damaged marks the store *degraded*: redb refuses every later write
/// until the database is closed and reopened. Until [`Store::heal`] reopens it (and checks it
/// again), every call answers [`StoreError::Unavailable`] with the cause, at once. A panic
/// inside redb (its decoding of a damaged page) is caught and treated the same way: it never
/// unwinds into the caller.
pub struct Store {
    db: RwLock<Option<Database>>,
    /// Opens the database again, checked (`None`: in memory, nothing to reopen).
    reopen: Option<Reopen>,
    /// Why the store is degraded, while it is.
    failure: Mutex<Option<StoreError>>,
    /// Commits since the last durable one, for a store in memory (see [`Store::in_memory`]).
    lazy_commits: Option<std::sync::atomic::AtomicU32>,
    /// [`Store::write_volatile`] commits since the last durable commit.
    volatile_commits: std::sync::atomic::AtomicU32,
}

/// Most [`Store::write_volatile`] commits in a row: the next one is durable. redb frees pages
/// only at durable commits, so the bound also bounds the file's growth between them.
const MAX_VOLATILE_COMMITS: u32 = 64;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// Whether a signed request's nonce was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// First time seen: remembered until its expiry.
    Fresh,
    /// Seen before and not yet expired: a replay.
    Replayed,
}

impl Store {
    /// Opens (creating if missing) the database file at `path`, checks it (redb's integrity
    /// check and every stored record decoded, see `integrity.rs`) and brings its schema
    /// up to date. redb locks the file: a second process opening it gets an error.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let reopen: Reopen =
            Box::new(move || open_checked(|| Database::create(&path).map_err(StoreError::from)));
        let db = reopen()?;
        Ok(Self::new(db, Some(reopen)))
    }

    /// A database on another redb backend (tests: an image in memory that can be damaged or
    /// made to fail), checked as [`Store::open`] checks a file. `backend` is called again for
    /// every reopen by [`Store::heal`].
    pub fn with_backend<B: redb::StorageBackend>(
        backend: impl Fn() -> B + Send + Sync + 'static,
    ) -> Result<Self, StoreError> {
        let reopen: Reopen = Box::new(move || {
            open_checked(|| {
                Database::builder()
                    .create_with_backend(backend())
                    .map_err(StoreError::from)
            })
        });
        let db = reopen()?;
        Ok(Self::new(db, Some(reopen)))
    }

    /// A database in memory (simulation, tests): same code, no file.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        init(&db)?;
        let mut store = Self::new(db, None);
        store.lazy_commits = Some(std::sync::atomic::AtomicU32::new(0));
        Ok(store)
    }

    fn new(db: Database, reopen: Option<Reopen>) -> Self {
        Self {
            db: RwLock::new(Some(db)),
            reopen,
            failure: Mutex::new(None),
            lazy_commits: None,
            volatile_commits: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Why the store is degraded, if it is (see [`Store::heal`]).
    pub fn failure(&self) -> Option<StoreError> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reopens a degraded store: closes the database, opens the file again and checks it as
    /// [`Store::open`] does. On success the store works again; on failure it stays degraded
    /// with the new cause (call again later: the caller backs off). Does nothing when the
    /// store is not degraded.
    pub fn heal(&self) -> Result<(), StoreError> {
        if self.failure().is_none() {
            return Ok(());
        }
        let Some(reopen) = &self.reopen else {
            // In memory there is no file to reopen: the failure was a panic; keep going.
            *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(());
        };
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        // Close first: redb locks the file, and the old handle holds the lock.
        drop(slot.take());
        match reopen() {
            Ok(db) => {
                *slot = Some(db);
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(())
            }
            Err(e) => {
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Runs `f` on the open database, unless the store is degraded; a panic inside becomes an
    /// error, and an error that means the database must be reopened degrades the store.
    fn with_db<T, E: From<StoreError>>(
        &self,
        what: &str,
        f: impl FnOnce(&Database) -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(cause) = self.failure() {
            return Err(StoreError::Unavailable(unavailable_cause(&cause)).into());
        }
        let slot = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = slot.as_ref() else {
            return Err(StoreError::Unavailable("the database is closed".into()).into());
        };
        let mut seen: Option<StoreError> = None;
        let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(db))) {
            Ok(out) => out,
            Err(panic) => {
                let e = crate::integrity::panicked(what, panic.as_ref());
                seen = Some(e.clone());
                Err(e.into())
            }
        };
        drop(slot);
        if let Some(e) = seen {
            self.degrade(e);
        }
        out
    }

    /// Marks the store degraded by `e` when `e` means the database must be reopened.
    fn degrade(&self, e: StoreError) {
        if e.needs_reopen() && self.lazy_commits.is_none() {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if failure.is_none() {
                tracing::error!(error = %e, "the state database failed; it will be reopened");
                *failure = Some(e);
            }
        }
    }

    /// Begins a write. A store in memory has no disk to be durable on: its commits skip
    /// redb's durable-commit work (the data stays in the `Database`, which is what survives a
    /// simulated crash), except every 64th, which lets redb free the pages older commits
    /// released.
    fn begin(&self, db: &Database, volatile: bool) -> Result<redb::WriteTransaction, StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut txn = db.begin_write()?;
        let lazy = self
            .lazy_commits
            .as_ref()
            .is_some_and(|n| n.fetch_add(1, Relaxed) % 64 != 63);
        let volatile =
            volatile && self.volatile_commits.fetch_add(1, Relaxed) < MAX_VOLATILE_COMMITS;
        if lazy || volatile {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Database(e.to_string()))?;
        } else {
            // This commit makes every volatile one before it durable too.
            self.volatile_commits.store(0, Relaxed);
        }
        Ok(txn)
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.with_db("reading", |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(META)?;
            let version = table.get(SCHEMA_KEY)?.map_or(0, |v| v.value());
            Ok(u32::try_from(version).unwrap_or(u32::MAX))
        })
    }

    /// Runs `f` in one write transaction and commits it durably; if `f` fails, nothing it did
    /// is kept.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transact(f)
    }

    /// As [`Store::write`], but the commit is not flushed by itself: it becomes durable with
    /// the next durable commit (any [`Store::write`], and every 64th of these), and a crash
    /// before that loses it. For records whose loss in a crash is harmless as long as nothing
    /// that depends on them was made durable first: the replay cache, whose entry for a
    /// request is committed before the request's effects, which are committed durably and so
    /// make the entry durable with them.
    pub fn write_volatile<T>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transact_as(true, f)
    }

    /// As [`Store::write`], for callers with their own error type: if `f` fails, with any
    /// error, nothing it did is kept. A failure of the disk or the file degrades the store.
    pub fn transact<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transact_as(false, f)
    }

    fn transact_as<T, E: From<StoreError>>(
        &self,
        volatile: bool,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut failed: Option<StoreError> = None;
        let out = self.with_db("writing", |db| {
            let txn = self
                .begin(db, volatile)
                .inspect_err(|e| failed = Some(e.clone()))?;
            let mut tx = WriteTx {
                txn: &txn,
                failed: Default::default(),
            };
            let out = f(&mut tx);
            failed = tx.failed.take();
            let out = out?;
            txn.commit()
                .map_err(StoreError::from)
                .inspect_err(|e| failed = Some(e.clone()))?;
            Ok(out)
        });
        if let Some(e) = failed {
            self.degrade(e);
        }
        out
    }

    /// Runs `f` on a consistent snapshot.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = self.with_db("reading", |db| {
            let txn = db.begin_read()?;
            f(&ReadTx { txn })
        });
        if let Err(e) = &out {
            self.degrade(e.clone());
        }
        out
    }

    /// One record by key.
    pub fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        self.read(|tx| tx.get(key))
    }

    /// Every record of a kind, in key order.
    pub fn all<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        self.read(|tx| tx.all())
    }
}

/// What an unavailable store says: the cause, without repeating "unavailable".
fn unavailable_cause(cause: &StoreError) -> String {
    match cause {
        StoreError::Unavailable(inner) => inner.clone(),
        other => other.to_string(),
    }
}

/// Opens the database, checks it and brings the schema up to date; a panic inside redb is
/// an error.
fn open_checked(
    create: impl FnOnce() -> Result<Database, StoreError>,
) -> Result<Database, StoreError> {
    crate::integrity::guard("opening", || {
        let mut db = create()?;
        crate::integrity::check(&mut db)?;
        init(&db)?;
        Ok(db)
    })
}

/// Creates or migrates the schema.
fn init(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    let found = read_version(&txn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for version in found..SCHEMA_VERSION {
        tracing::info!(
            from = version,
            to = version + 1,
            "migrating the state database"
        );
        MIGRATIONS[version as usize](&txn)?;
    }
    txn.open_table(META)?
        .insert(SCHEMA_KEY, u64::from(SCHEMA_VERSION))?;
    txn.commit()?;
    Ok(())
}

fn read_version(txn: &WriteTransaction) -> Result<u32, StoreError> {
    let table = txn.open_table(META)?;
    let version = table.get(SCHEMA_KEY)?.map_or(0, |v| v.value());
    Ok(u32::try_from(version).unwrap_or(u32::MAX))
}

fn decode<R: Record>(key: &str, bytes: &[u8]) -> Result<R, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: R::NAME,
        key: key.to_owned(),
        message: e.to_string(),
    })
}

fn get_from<R: Record>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<R>, StoreError> {
    match table.get(key)? {
        Some(bytes) => decode(key, bytes.value()).map(Some),
        None => Ok(None),
    }
}

fn all_from<R: Record>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<R>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        out.push(decode(key.value(), value.value())?);
    }
    Ok(out)
}

/// The reads both kinds of transaction offer, for code that runs inside either (a query the
/// engine answers from a snapshot and also asks inside its own write).
pub trait Reads {
    /// One record by key.
    fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError>;
    /// The entries of `R`'s index whose key starts with `prefix`.
    fn index<R: Record>(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError>;
}

impl Reads for ReadTx {
    fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        ReadTx::get(self, key)
    }
    fn index<R: Record>(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        ReadTx::index::<R>(self, prefix)
    }
}

impl Reads for WriteTx<'_> {
    fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        WriteTx::get(self, key)
    }
    fn index<R: Record>(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        WriteTx::index::<R>(self, prefix)
    }
}

/// A read snapshot.
pub struct ReadTx {
    txn: ReadTransaction,
}

impl ReadTx {
    /// One record by key.
    pub fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        get_from(&self.txn.open_table(R::TABLE)?, key)
    }

    /// Every record of a kind, in key order.
    pub fn all<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        all_from(&self.txn.open_table(R::TABLE)?)
    }

    /// A counter or marker in the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.txn.open_table(META)?.get(key)?.map(|v| v.value()))
    }

    /// The entries of `R`'s index whose key starts with `prefix`.
    pub fn index<R: Record>(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        match R::INDEX {
            Some(index) => index_from(&self.txn.open_table(index)?, prefix),
            None => Ok(Vec::new()),
        }
    }

    /// The receipts waiting for the Federation scroll, by the sequence each will have.
    pub fn pending_receipts(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        pending_from(&self.txn.open_table(RECEIPT_OUTBOX)?)
    }
}

fn index_from(
    table: &impl ReadableTable<&'static str, i64>,
    prefix: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range::<&str>(prefix..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_owned(), v.value()));
    }
    Ok(out)
}

fn pending_from(
    table: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value(), v.value().to_vec()));
    }
    Ok(out)
}

/// A write transaction: every change made through it commits together.
pub struct WriteTx<'a> {
    txn: &'a WriteTransaction,
    /// The first failure of the disk or the file seen inside the transaction, kept here
    /// because the caller's error type may not carry it out (the store degrades on it).
    failed: std::cell::RefCell<Option<StoreError>>,
}

impl WriteTx<'_> {
    /// Remembers a failure that degrades the store (see [`WriteTx::failed`]).
    fn track<T>(&self, out: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &out
            && e.needs_reopen()
        {
            self.failed.borrow_mut().get_or_insert_with(|| e.clone());
        }
        out
    }

    /// One record by key, as this transaction sees it.
    pub fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        let out = (|| -> Result<Option<R>, StoreError> {
            get_from(&self.txn.open_table(R::TABLE)?, key)
        })();
        self.track(out)
    }

    /// Every record of a kind, in key order.
    pub fn all<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        let out =
            (|| -> Result<Vec<R>, StoreError> { all_from(&self.txn.open_table(R::TABLE)?) })();
        self.track(out)
    }

    /// Inserts or replaces a record.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<(), StoreError> {
        let out = (|| -> Result<(), StoreError> {
            let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Encode {
                table: R::NAME,
                message: e.to_string(),
            })?;
            self.txn
                .open_table(R::TABLE)?
                .insert(record.key().as_str(), bytes.as_slice())?;
            if let Some(index) = R::INDEX {
                let mut table = self.txn.open_table(index)?;
                match record.index_value() {
                    Some(v) => table.insert(record.index_key().as_str(), v)?,
                    None => table.remove(record.index_key().as_str())?,
                };
            }
            Ok(())
        })();
        self.track(out)
    }

    /// A counter or marker in the `meta` table (the schema version lives there too).
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let out = (|| -> Result<Option<u64>, StoreError> {
            Ok(self.txn.open_table(META)?.get(key)?.map(|v| v.value()))
        })();
        self.track(out)
    }

    /// The entries of `R`'s index whose key starts with `prefix`.
    pub fn index<R: Record>(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let out = (|| -> Result<Vec<(String, i64)>, StoreError> {
            match R::INDEX {
                Some(index) => index_from(&self.txn.open_table(index)?, prefix),
                None => Ok(Vec::new()),
            }
        })();
        self.track(out)
    }

    /// How many entries of `R`'s index start with `prefix`, counting no further than
    /// `at_most` (a limit check costs the limit, not the table).
    pub fn count_index<R: Record>(
        &self,
        prefix: &str,
        at_most: usize,
    ) -> Result<usize, StoreError> {
        let out = (|| -> Result<usize, StoreError> {
            let Some(index) = R::INDEX else {
                return Ok(0);
            };
            let table = self.txn.open_table(index)?;
            let mut n = 0;
            for entry in table.range::<&str>(prefix..)? {
                let (k, _) = entry?;
                if n >= at_most || !k.value().starts_with(prefix) {
                    break;
                }
                n += 1;
            }
            Ok(n)
        })();
        self.track(out)
    }

    /// Removes one entry of `R`'s index (a dangling one, whose record is gone).
    pub fn remove_index_entry<R: Record>(&mut self, index_key: &str) -> Result<(), StoreError> {
        let out = (|| -> Result<(), StoreError> {
            if let Some(index) = R::INDEX {
                self.txn.open_table(index)?.remove(index_key)?;
            }
            Ok(())
        })();
        self.track(out)
    }

    /// Sets a counter or marker in the `meta` table.
    pub fn set_meta(&mut self, key: &str, value: u64) -> Result<(), StoreError> {
        let out = (|| -> Result<(), StoreError> {
            if key == SCHEMA_KEY {
                return Err(StoreError::Database(
                    "the schema version is set by migrations only".into(),
                ));
            }
            self.txn.open_table(META)?.insert(key, value)?;
            Ok(())
        })();
        self.track(out)
    }

    /// Queues a receipt for the Federation scroll under the sequence it will have; refused
    /// if that sequence is already queued (two receipts can never claim one line).
    pub fn queue_receipt(&mut self, sequence: u64, receipt: &[u8]) -> Result<(), StoreError> {
        let out = (|| -> Result<(), StoreError> {
            let mut table = self.txn.open_table(RECEIPT_OUTBOX)?;
            if table.get(sequence)?.is_some() {
                return Err(StoreError::Database(format!(
                    "receipt outbox: sequence {sequence} is already queued"
                )));
            }
            table.insert(sequence, receipt)?;
            Ok(())
        })();
        self.track(out)
    }

    /// The receipts waiting for the Federation scroll, by sequence.
    pub fn pending_receipts(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let out = (|| -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
            pending_from(&self.txn.open_table(RECEIPT_OUTBOX)?)
        })();
        self.track(out)
    }

    /// Forgets queued receipts below `size`: the scroll holds them.
    pub fn receipts_stored_below(&mut self, size: u64) -> Result<usize, StoreError> {
        let out = (|| -> Result<usize, StoreError> {
            let mut table = self.txn.open_table(RECEIPT_OUTBOX)?;
            let done: Vec<u64> = table
                .range(..size)?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for sequence in &done {
                table.remove(*sequence)?;
            }
            Ok(done.len())
        })();
        self.track(out)
    }

    /// Removes a record (and its index entry); true if it was there.
    pub fn remove<R: Record>(&mut self, key: &str) -> Result<bool, StoreError> {
        let out = (|| -> Result<bool, StoreError> {
            if let Some(index) = R::INDEX
                && let Some(old) = self.get::<R>(key)?
            {
                self.txn
                    .open_table(index)?
                    .remove(old.index_key().as_str())?;
            }
            Ok(self.txn.open_table(R::TABLE)?.remove(key)?.is_some())
        })();
        self.track(out)
    }

    /// Compare-and-swap on witness state (C2SP tlog-witness): stores `new` only if the stored
    /// size is `expected_size` (`None`: nothing stored yet) and `new` does not shrink it.
    pub fn advance_witness(
        &mut self,
        new: &WitnessState,
        expected_size: Option<u64>,
    ) -> Result<CasOutcome, StoreError> {
        let out = (|| -> Result<CasOutcome, StoreError> {
            let stored: Option<WitnessState> = self.get(&new.key())?;
            let stored_size = stored.as_ref().map(|s| s.latest.size);
            if stored_size != expected_size {
                return Ok(CasOutcome::Stale(stored.map(Box::new)));
            }
            if let Some(stored) = stored {
                if new.latest.size < stored.latest.size {
                    return Ok(CasOutcome::WouldMoveBackwards {
                        stored: stored.latest.size,
                        offered: new.latest.size,
                    });
                }
                if new.latest.size == stored.latest.size && new.latest.root != stored.latest.root {
                    // Two roots for one size cannot both be true: keep the stored one (it is
                    // evidence) and let the caller record the conflict.
                    return Ok(CasOutcome::Conflicting(Box::new(stored)));
                }
            }
            self.put(new)?;
            Ok(CasOutcome::Advanced)
        })();
        self.track(out)
    }

    /// Records a signed request's `(origin, nonce)` until `expires_at`, or reports a replay.
    /// Also forgets a bounded number of entries that expired before `now`.
    pub fn check_replay(
        &mut self,
        origin: &MeshId,
        nonce: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Replay, StoreError> {
        let out = (|| -> Result<Replay, StoreError> {
            self.purge_replay(now)?;
            let key = format!("{origin}/{nonce}");
            let mut table = self.txn.open_table(REPLAY)?;
            let previous = table.get(key.as_str())?.map(|v| v.value());
            if let Some(expiry) = previous {
                if expiry >= now.unix() {
                    return Ok(Replay::Replayed);
                }
                // Expired but not purged yet: drop its index entry with it, so a later purge of
                // that old entry cannot delete the record made now.
                let old_index = expiry_key_unix(expiry, &key);
                self.txn
                    .open_table(REPLAY_BY_EXPIRY)?
                    .remove(old_index.as_str())?;
            }
            if table.len()? >= MAX_REPLAY_ENTRIES {
                return Err(StoreError::Database(format!(
                    "replay cache holds {MAX_REPLAY_ENTRIES} unexpired entries; refusing new requests until some expire"
                )));
            }
            table.insert(key.as_str(), expires_at.unix())?;
            let by_expiry = expiry_key(expires_at, &key);
            self.txn
                .open_table(REPLAY_BY_EXPIRY)?
                .insert(by_expiry.as_str(), ())?;
            Ok(Replay::Fresh)
        })();
        self.track(out)
    }

    fn purge_replay(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let mut by_expiry = self.txn.open_table(REPLAY_BY_EXPIRY)?;
        let mut replay = self.txn.open_table(REPLAY)?;
        let upper = expiry_key(now, "");
        let expired: Vec<String> = by_expiry
            .range::<&str>(..upper.as_str())?
            .take(PURGE_PER_CHECK)
            .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
            .collect::<Result<_, _>>()?;
        for index_key in expired {
            by_expiry.remove(index_key.as_str())?;
            let Some((_, key)) = index_key.split_once('/') else {
                continue;
            };
            // Only the record this index entry was made for (same expiry) goes.
            let stored = replay.get(key)?.map(|v| v.value());
            if stored.is_some_and(|expiry| expiry_key_unix(expiry, key) == index_key) {
                replay.remove(key)?;
            }
        }
        Ok(())
    }
}

/// `<expiry as 20 digits, offset so negatives sort first>/<key>`.
fn expiry_key(expires_at: Timestamp, key: &str) -> String {
    expiry_key_unix(expires_at.unix(), key)
}

fn expiry_key_unix(unix: i64, key: &str) -> String {
    let shifted = (i128::from(unix) + i128::from(i64::MAX) + 1) as u128;
    format!("{shifted:020}/{key}")
}
