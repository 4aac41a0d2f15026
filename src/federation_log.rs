//! Moves the receipts the engine decided into the Federation scroll, exactly once.
//!
//! The engine queues each receipt under the sequence it must take, in the transaction of the
//! state change it records. [`flush`] compares the queue with the log: a queued receipt whose
//! sequence the log already holds must be byte-for-byte that line's leaf (it was appended
//! before a crash, and is acknowledged, not appended again); the rest are appended in one
//! group commit; then the engine is told the new length. After a crash at any point (before
//! the append, between the append and the acknowledgement) a flush on restart brings the log
//! and the state back into agreement, with every receipt present once.

use serde_json::{Map, Value};
use vm_receipts::jcs;
use vm_receipts::scroll::{Scroll, ScrollError};
use vm_receipts::{ScrollName, Timestamp};

use crate::engine::{Engine, EngineError, Input};

/// An append-only receipt log (the Federation scroll, or an in-memory one in simulation).
pub trait ReceiptLog {
    /// Receipts it holds.
    fn len(&self) -> u64;
    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The leaf bytes (JCS without `root_hash`) of receipt `sequence`.
    fn leaf(&self, sequence: u64) -> Result<Vec<u8>, LogError>;
    /// Appends `receipts` durably, in order.
    fn append(&mut self, receipts: &[Map<String, Value>]) -> Result<(), LogError>;
}

impl ReceiptLog for Scroll {
    fn len(&self) -> u64 {
        Scroll::len(self)
    }
    fn leaf(&self, sequence: u64) -> Result<Vec<u8>, LogError> {
        Ok(self.read_leaf(sequence)?)
    }
    fn append(&mut self, receipts: &[Map<String, Value>]) -> Result<(), LogError> {
        self.append_batch(receipts)?;
        Ok(())
    }
}

/// Why the log and the engine's queue could not be brought into agreement.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The scroll failed.
    #[error(transparent)]
    Scroll(#[from] ScrollError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The log holds, at a sequence the engine reserved, a receipt the engine did not decide:
    /// something else wrote to the Federation scroll.
    #[error(
        "the Federation scroll holds a foreign receipt at sequence {sequence} \
         (receipt-sequence-{sequence}); only the engine appends to it"
    )]
    Foreign {
        /// Where.
        sequence: u64,
    },
    /// The engine's queue starts beyond the end of the log: receipts are missing.
    #[error(
        "the Federation scroll has {len} receipts but the next queued one is for sequence \
         {sequence}: receipts are missing (was the scroll replaced?)"
    )]
    Gap {
        /// The log's length.
        len: u64,
        /// The first queued sequence beyond it.
        sequence: u64,
    },
    /// An in-memory log refused a receipt.
    #[error("{0}")]
    Memory(String),
}

/// Appends what the engine queued and is not in `log` yet, then tells the engine; returns
/// how many were appended.
pub fn flush(
    engine: &mut Engine,
    log: &mut impl ReceiptLog,
    now: Timestamp,
) -> Result<usize, LogError> {
    let Some(appended) = append_pending(engine, log)? else {
        return Ok(0);
    };
    engine.handle(now, Input::ReceiptsStored { size: log.len() })?;
    Ok(appended)
}

/// The first half of [`flush`]: appends what is queued and missing from `log`, without
/// telling the engine (a crash right after it is what the exactly-once tests exercise).
/// `None` when nothing was queued.
pub fn append_pending(
    engine: &Engine,
    log: &mut impl ReceiptLog,
) -> Result<Option<usize>, LogError> {
    let pending = engine.pending_receipts()?;
    if pending.is_empty() {
        return Ok(None);
    }
    let mut to_append = Vec::new();
    for (sequence, receipt) in pending {
        let len = log.len() + to_append.len() as u64;
        if sequence < log.len() {
            let leaf = jcs::to_vec(&Value::Object(receipt)).map_err(|e| {
                LogError::Memory(format!(
                    "queued receipt {sequence} is not canonical JSON: {e}"
                ))
            })?;
            if log.leaf(sequence)? != leaf {
                return Err(LogError::Foreign { sequence });
            }
        } else if sequence == len {
            to_append.push(receipt);
        } else {
            return Err(LogError::Gap { len, sequence });
        }
    }
    let appended = to_append.len();
    if appended > 0 {
        log.append(&to_append)?;
    }
    Ok(Some(appended))
}

/// An in-memory receipt log for simulation and tests: the leaves, checked to be receipts of
/// the Federation scroll.
#[derive(Debug, Default, Clone)]
pub struct MemoryLog {
    leaves: Vec<Vec<u8>>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every leaf, in order.
    pub fn leaves(&self) -> &[Vec<u8>] {
        &self.leaves
    }
}

impl ReceiptLog for MemoryLog {
    fn len(&self) -> u64 {
        self.leaves.len() as u64
    }
    fn leaf(&self, sequence: u64) -> Result<Vec<u8>, LogError> {
        usize::try_from(sequence)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .cloned()
            .ok_or_else(|| LogError::Memory(format!("no receipt {sequence}")))
    }
    fn append(&mut self, receipts: &[Map<String, Value>]) -> Result<(), LogError> {
        let mut leaves = Vec::with_capacity(receipts.len());
        for r in receipts {
            let bytes = jcs::to_vec(&Value::Object(r.clone()))
                .map_err(|e| LogError::Memory(format!("not canonical JSON: {e}")))?;
            vm_receipts::receipts::parse_receipt(&bytes).map_err(|e| {
                LogError::Memory(format!("not a {} receipt: {e}", ScrollName::federation()))
            })?;
            leaves.push(bytes);
        }
        self.leaves.extend(leaves);
        Ok(())
    }
}
