//! The node's own files going wrong, and healing when the cause goes away (issue 15).
//!
//! A fault of one part (the state database, a scroll, a ROOT file) is recorded once, logged
//! at ERROR once, shown by `status` (`health`), and retried with backoff (1 s, doubling to 60
//! s; a WARN line per failed retry, never a hot loop). A retry reopens what failed and checks
//! it again as a start would (redb's integrity check and every record; a scroll's every line
//! and root), so nothing read back after a fault is trusted unchecked. While the state
//! database is degraded the engine's timer waits for it instead of spinning.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use vm_receipts::scroll::{Scroll, write_root_file};
use vm_receipts::{ScrollName, Timestamp};

use super::Node;

/// First retry after a fault.
const FIRST_RETRY_MS: u64 = 1_000;
/// Longest wait between retries.
const MAX_RETRY_MS: u64 = 60_000;

/// What failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Part {
    /// `state.redb`.
    State,
    /// A scroll's file (a write or sync failed: its state on disk is unknown until reopened).
    Scroll(ScrollName),
    /// A scroll's `ROOT.<name>.txt` (the receipts are durable; the signed root is behind).
    RootFile(ScrollName),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::State => f.write_str("state.redb"),
            Self::Scroll(name) => write!(f, "scroll {name}"),
            Self::RootFile(name) => write!(f, "ROOT.{}.txt", name.file_stem()),
        }
    }
}

#[derive(Debug)]
struct Fault {
    error: String,
    since: Timestamp,
    attempts: u32,
    retry_at_ms: u64,
}

/// The parts that are degraded now.
#[derive(Debug, Default)]
pub(super) struct Faults {
    faults: BTreeMap<Part, Fault>,
}

impl Faults {
    /// `part` failed with `error`. A part already degraded keeps its retry schedule (so a
    /// failing caller cannot make the node retry, or log, faster).
    pub(super) fn record(&mut self, part: Part, error: String, now: Timestamp, now_ms: u64) {
        if let Some(fault) = self.faults.get_mut(&part) {
            fault.error = error;
            return;
        }
        tracing::error!(%part, %error, retry_in_ms = FIRST_RETRY_MS, "degraded: the node retries with backoff, no restart needed");
        self.faults.insert(
            part,
            Fault {
                error,
                since: now,
                attempts: 0,
                retry_at_ms: now_ms + FIRST_RETRY_MS,
            },
        );
    }

    /// A retry of `part` failed again: the next waits twice as long (at most a minute).
    fn retry_failed(&mut self, part: &Part, error: String, now_ms: u64) {
        if let Some(fault) = self.faults.get_mut(part) {
            fault.attempts = fault.attempts.saturating_add(1);
            let delay = FIRST_RETRY_MS
                .saturating_mul(1 << fault.attempts.min(16))
                .min(MAX_RETRY_MS);
            fault.retry_at_ms = now_ms + delay;
            tracing::warn!(%part, %error, attempts = fault.attempts, retry_in_ms = delay, "still degraded");
            fault.error = error;
        }
    }

    pub(super) fn healed(&mut self, part: &Part) {
        if let Some(fault) = self.faults.remove(part) {
            tracing::info!(%part, attempts = fault.attempts + 1, since = %fault.since, "healed");
        }
    }

    /// Whether `part` is degraded.
    pub(super) fn has(&self, part: &Part) -> bool {
        self.faults.contains_key(part)
    }

    /// Each degraded part with its error (`/readyz`), in a stable order.
    pub(super) fn describe(&self) -> Vec<String> {
        self.faults
            .iter()
            .map(|(part, f)| format!("{part}: {}", f.error))
            .collect()
    }

    /// When the next retry is due (ms), if anything is degraded.
    pub(super) fn next_retry_ms(&self) -> Option<u64> {
        self.faults.values().map(|f| f.retry_at_ms).min()
    }

    fn due(&self, now_ms: u64) -> Vec<Part> {
        self.faults
            .iter()
            .filter(|(_, f)| f.retry_at_ms <= now_ms)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// What `status` shows.
    pub(super) fn to_json(&self, now_ms: u64) -> Value {
        let faults: Vec<Value> = self
            .faults
            .iter()
            .map(|(part, f)| {
                json!({
                    "part": part.to_string(),
                    "error": f.error,
                    "since": f.since,
                    "retries": f.attempts,
                    "next_retry_in_ms": f.retry_at_ms.saturating_sub(now_ms),
                })
            })
            .collect();
        json!({
            "state": if faults.is_empty() { "ok" } else { "degraded" },
            "faults": faults,
        })
    }
}

impl Node {
    /// `/readyz`: the network task answers and no fault of our own files (the state
    /// database, a scroll, a ROOT file) is being retried.
    pub(super) async fn ready(&self) -> Value {
        let mut problems = self.faults.describe();
        if let Err(e) = self.net.status().await {
            problems.push(format!("network: {e}"));
        }
        json!({"ready": problems.is_empty(), "problems": problems})
    }

    /// Records a failure of the state database, if the store reports one.
    pub(super) fn note_store_fault(&mut self) {
        if let Some(e) = self.engine.store().failure() {
            let (now, now_ms) = (self.now(), self.now_ms());
            self.faults.record(Part::State, e.to_string(), now, now_ms);
        }
    }

    /// Records a failure of `part`.
    pub(super) fn note_fault(&mut self, part: Part, error: impl std::fmt::Display) {
        let (now, now_ms) = (self.now(), self.now_ms());
        self.faults.record(part, error.to_string(), now, now_ms);
    }

    /// Retries every degraded part that is due.
    pub(super) fn heal_due(&mut self) {
        let now_ms = self.now_ms();
        for part in self.faults.due(now_ms) {
            let result = match &part {
                Part::State => self.engine.store().heal().map_err(|e| e.to_string()),
                Part::Scroll(name) => self.reopen_scroll(name),
                Part::RootFile(name) => self.write_root(name),
            };
            match result {
                Ok(()) => {
                    self.faults.healed(&part);
                    // Receipts the engine queued while the scroll or the store was down.
                    if matches!(part, Part::State) || part == Part::Scroll(ScrollName::federation())
                    {
                        self.flush_federation();
                    }
                }
                Err(error) => self.faults.retry_failed(&part, error, self.now_ms()),
            }
        }
    }

    /// Closes and reopens a scroll whose write or sync failed; the open checks every line
    /// (and cuts a torn last one, which was never acknowledged).
    fn reopen_scroll(&mut self, name: &ScrollName) -> Result<(), String> {
        let (scroll, report) = Scroll::open(self.dir.root(), name).map_err(|e| e.to_string())?;
        tracing::info!(scroll = %name, receipts = report.receipts, torn_bytes_cut = report.torn_bytes_cut, "scroll reopened and checked");
        if name == &ScrollName::federation() {
            self.scroll = scroll;
        } else {
            self.scrolls.insert(name.file_stem(), scroll);
        }
        // Its ROOT file may be behind what was durable before the fault.
        self.write_root(name)
    }

    /// Signs the scroll's current root into its ROOT file.
    pub(super) fn write_root(&mut self, name: &ScrollName) -> Result<(), String> {
        let scroll = self
            .scroll_named(name)
            .ok_or_else(|| format!("no scroll {name}"))?;
        let signed = scroll
            .sign_root(self.dir.key(), self.dir.mesh_id(), self.now())
            .map_err(|e| e.to_string())?;
        write_root_file(self.dir.root(), &signed).map_err(|e| e.to_string())
    }

    /// Refuses an append when the file system of the data directory has less free space than
    /// `[storage] min_free_mb`: a full disk is a fault to avoid, not to heal from.
    pub(super) fn check_free_space(&self) -> Result<(), String> {
        let reserve_mb = self.dir.config().storage.min_free_mb;
        check_free_space(self.dir.root(), reserve_mb)
    }
}

/// `Err` naming the free space and the reserve when `dir`'s file system has less than
/// `reserve_mb` MiB available to us.
pub fn check_free_space(dir: &Path, reserve_mb: u64) -> Result<(), String> {
    if reserve_mb == 0 {
        return Ok(());
    }
    let stat = rustix::fs::statvfs(dir)
        .map_err(|e| format!("cannot read the free space of {}: {e}", dir.display()))?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let reserve = reserve_mb.saturating_mul(1024 * 1024);
    if free < reserve {
        return Err(format!(
            "refusing to append: {:.1} MiB free on the file system of {}, below the reserve of \
             {reserve_mb} MiB ([storage] min_free_mb in config.toml); free some space, or lower \
             the reserve",
            free as f64 / (1024.0 * 1024.0),
            dir.display()
        ));
    }
    Ok(())
}
