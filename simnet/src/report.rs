//! What a run prints: counts, detection latency and convergence figures, and the result of
//! every invariant. Engine-level and swarm-level runs fill the same report.

use std::fmt;

/// One invariant's result over a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantResult {
    /// Its name (`no_false_positives`, …).
    pub name: &'static str,
    /// How many times it was checked.
    pub checks: u64,
    /// The first violation, if any.
    pub violation: Option<String>,
}

impl InvariantResult {
    /// Held on every check.
    pub fn held(&self) -> bool {
        self.violation.is_none()
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// Meshes (or swarm nodes).
    pub meshes: usize,
    /// The seed.
    pub seed: u64,
    /// Simulated seconds covered.
    pub simulated_secs: u64,
    /// Events processed (deliveries, timers, faults).
    pub events: u64,
    /// Messages sent (including those the network then lost).
    pub messages: u64,
    /// Messages the network dropped (loss, partitions, crashed receivers).
    pub dropped: u64,
    /// Witness checks that reached a verdict.
    pub witness_checks: u64,
    /// Attestations (verified) made by honest meshes.
    pub attestations: u64,
    /// Discrepancies recorded by honest meshes.
    pub discrepancies: u64,
    /// Arbitrations their finders asked of a third mesh (each verdict is checked by the
    /// `arbitration_verdicts` invariant).
    pub arbitrations: u64,
    /// Detection latency of each (byzantine act, honest witness) pair, in seconds.
    pub detection_secs: Vec<u64>,
    /// Acts not detected by some honest witness when the run ended: (act, witness).
    pub undetected: Vec<String>,
    /// Seconds from the last heal until every honest pair had converged (None: no heal,
    /// or it never converged: see the invariant).
    pub convergence_secs: Option<u64>,
    /// The invariants.
    pub invariants: Vec<InvariantResult>,
    /// blake3 of the event trace: equal for equal seeds.
    pub trace_hash: String,
    /// Wall-clock seconds the run took.
    pub wall_secs: f64,
    /// The command that replays this run.
    pub replay: String,
}

impl Report {
    /// Every invariant held.
    pub fn passed(&self) -> bool {
        self.invariants.iter().all(InvariantResult::held)
    }

    /// The `p`-th percentile (0–100) of detection latency, in seconds.
    pub fn detection_percentile(&self, p: f64) -> Option<u64> {
        percentile(&self.detection_secs, p)
    }
}

/// The nearest-rank percentile of `values`.
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |s| format!("{s} s"));
        writeln!(
            f,
            "scenario {}  meshes {}  seed {}",
            self.scenario, self.meshes, self.seed
        )?;
        writeln!(
            f,
            "  simulated {} h {} min in {:.2} s wall",
            self.simulated_secs / 3600,
            (self.simulated_secs % 3600) / 60,
            self.wall_secs
        )?;
        writeln!(
            f,
            "  events {}  messages {} (dropped {})",
            self.events, self.messages, self.dropped
        )?;
        writeln!(
            f,
            "  witness checks {}  attestations {}  discrepancies {}  arbitrations {}",
            self.witness_checks, self.attestations, self.discrepancies, self.arbitrations
        )?;
        writeln!(
            f,
            "  detection latency p50 {}  p99 {}  max {}  ({} detections, {} missed)",
            secs(self.detection_percentile(50.0)),
            secs(self.detection_percentile(99.0)),
            secs(self.detection_secs.iter().max().copied()),
            self.detection_secs.len(),
            self.undetected.len()
        )?;
        writeln!(
            f,
            "  convergence after heal {}",
            secs(self.convergence_secs)
        )?;
        writeln!(f, "  trace {}", self.trace_hash)?;
        for inv in &self.invariants {
            match &inv.violation {
                None => writeln!(f, "  ok    {} ({} checks)", inv.name, inv.checks)?,
                Some(v) => writeln!(f, "  FAIL  {}: {v}", inv.name)?,
            }
        }
        if !self.passed() {
            writeln!(
                f,
                "FAILED: seed {}; replay with:\n  {}",
                self.seed, self.replay
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
