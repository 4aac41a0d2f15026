//! The invariants (issue 7): safety ones checked as events happen, the rest when the run
//! ends, after its faults healed.
//!
//! - `attestations_consistent`: no honest mesh attests a root inconsistent with one it
//!   attested before (both must lie on one history the mesh really had, the later no
//!   smaller).
//! - `no_false_positives`: no honest mesh records a discrepancy against an honest one.
//! - `detection`: every detectable byzantine act is reported by every honest witness of
//!   the mesh, within the budget; equivocation and rewrites with evidence that proves them
//!   alone (two signed roots, or a signed root and a consistency proof), not only claims.
//! - `evidence_verifies`: every discrepancy an honest mesh recorded carries evidence that
//!   checks with the accused mesh's key.
//! - `agreements_symmetric`: every planned agreement is in force on both sides, with the
//!   same id.
//! - `federation_scrolls_verify`: every Federation scroll holds parseable Federation
//!   receipts only, and nothing the engine decided is missing from it.
//! - `convergence`: after the last heal, every honest witness catches up with every honest
//!   peer within the budget.
//! - `one_attestation_per_root` (as events happen): no honest witness attests one size of a
//!   mesh's scroll twice.
//! - `one_record_per_finding`: no honest witness holds two open records of one finding
//!   (the same conflict seen again counts on the first).

use std::collections::{BTreeMap, BTreeSet};

use vaultmesh_federation::federation_log::ReceiptLog;
use vaultmesh_federation::witness::{ConflictEvidence, Standing};
use vm_receipts::Blake3Hash;
use vm_receipts::receipts::parse_receipt;
use vm_storage::DiscrepancyRecord;

use crate::report::InvariantResult;
use crate::sim::{Mesh, Sim};

/// Results by invariant.
#[derive(Debug, Clone, Default)]
pub struct Invariants {
    results: BTreeMap<&'static str, (u64, Option<String>)>,
}

/// Every invariant, in report order.
pub const NAMES: [&str; 9] = [
    "attestations_consistent",
    "no_false_positives",
    "detection",
    "evidence_verifies",
    "agreements_symmetric",
    "federation_scrolls_verify",
    "convergence",
    "one_attestation_per_root",
    "one_record_per_finding",
];

impl Invariants {
    /// None checked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one check of `name`; the first violation is kept.
    pub fn check(&mut self, name: &'static str, outcome: Result<(), String>) {
        let entry = self.results.entry(name).or_default();
        entry.0 += 1;
        if let Err(v) = outcome
            && entry.1.is_none()
        {
            entry.1 = Some(v);
        }
    }

    /// Records a violation of `name`.
    pub fn violate(&mut self, name: &'static str, why: String) {
        self.check(name, Err(why));
    }

    /// The results, every named invariant included.
    pub fn results(&self) -> Vec<InvariantResult> {
        let mut names: Vec<&'static str> = NAMES.to_vec();
        for k in self.results.keys() {
            if !names.contains(k) {
                names.push(k);
            }
        }
        names
            .into_iter()
            .map(|name| {
                let (checks, violation) = self.results.get(name).cloned().unwrap_or_default();
                InvariantResult {
                    name,
                    checks,
                    violation,
                }
            })
            .collect()
    }
}

/// Whether a witness that attested `previous` may attest `new` of `mesh`: some history the
/// mesh really had holds both, and the new one is no smaller.
pub fn consistent(
    mesh: &Mesh,
    previous: Option<(u64, Blake3Hash)>,
    new: (u64, Blake3Hash),
) -> Result<(), String> {
    let histories = || {
        std::iter::once(&mesh.scroll)
            .chain(mesh.fork.iter())
            .chain(mesh.histories.iter())
    };
    if !histories().any(|h| h.had(new.0, &new.1)) {
        return Err(format!(
            "{} is no root the mesh ever had at that size",
            new.1
        ));
    }
    let Some(prev) = previous else {
        return Ok(());
    };
    if new.0 < prev.0 {
        return Err("the attested size went backwards".into());
    }
    if histories().any(|h| h.had(prev.0, &prev.1) && h.had(new.0, &new.1)) {
        Ok(())
    } else {
        Err("no history of the mesh holds both roots".into())
    }
}

/// The checks made when the run is over.
pub fn final_checks(sim: &mut Sim) {
    let proofs = evidence(sim);
    detection(sim, &proofs);
    one_record_per_finding(sim);
    agreements(sim);
    scrolls(sim);
    convergence(sim);
    arbitrations(sim);
}

/// Every verdict an honest finder received: none upholds a finding against an honest mesh,
/// and every finding whose evidence is a proof is upheld (the arbiter checks what anyone can).
fn arbitrations(sim: &mut Sim) {
    let mut outcomes = Vec::new();
    for w in 0..sim.meshes.len() {
        if !sim.meshes[w].honest() {
            continue;
        }
        for r in found_by(sim, w) {
            let accused = &r.report.body.reported_mesh;
            let Some(m) = sim.index_of(accused) else {
                continue;
            };
            let proof = r
                .evidence
                .first()
                .and_then(|v| serde_json::from_value::<ConflictEvidence>(v.clone()).ok())
                .is_some_and(|e| e.verify(&sim.meshes[m].public) == Ok(Standing::Proof));
            for v in &r.arbitrations {
                let upheld = v.outcome == vm_receipts::documents::ArbitrationOutcome::Upheld;
                let outcome = if upheld && sim.meshes[m].honest() {
                    Err(format!(
                        "{} upheld {}'s finding {} against honest {accused}",
                        v.arbiter, sim.meshes[w].id, v.discrepancy_id
                    ))
                } else if proof && !upheld {
                    Err(format!(
                        "{} did not uphold {}'s proven finding {} ({}: {})",
                        v.arbiter, sim.meshes[w].id, v.discrepancy_id, v.outcome, v.reason
                    ))
                } else {
                    Ok(())
                };
                outcomes.push(outcome);
            }
        }
    }
    for o in outcomes {
        sim.invariants.check("arbitration_verdicts", o);
    }
}

/// Every act reported by every honest witness of the mesh in time; equivocation and
/// rewrites each with at least one record whose evidence proves it alone (`proofs`: the
/// (witness, mesh) pairs that have one).
fn detection(sim: &mut Sim, proofs: &BTreeSet<(usize, usize)>) {
    let budget = sim.config.detection_budget_cycles * sim.config.cycle_secs * 1000;
    let mut outcomes = Vec::new();
    for act in &sim.acts {
        if !act.kind.detectable() {
            continue;
        }
        let m = &sim.meshes[act.mesh];
        for &w in &m.peers {
            if !owed(sim, act, w) {
                continue;
            }
            let deadline = cut_off_until(sim, w, act.mesh, act.at_ms, budget) + budget;
            let outcome = match act.detected.get(&w) {
                None => Err(format!(
                    "{} never reported {}'s {} (at {} ms)",
                    sim.meshes[w].id,
                    m.id,
                    act.kind.name(),
                    act.at_ms
                )),
                Some(&t) if t > deadline => Err(format!(
                    "{} reported {}'s {} after {} s, beyond the budget of {} s (counted from {} s, when the two could first talk)",
                    sim.meshes[w].id,
                    m.id,
                    act.kind.name(),
                    (t - act.at_ms) / 1000,
                    budget / 1000,
                    (deadline - budget) / 1000,
                )),
                Some(_) if proof_owed(sim, act, w, budget) && !proofs.contains(&(w, act.mesh)) => {
                    Err(format!(
                        "{} reported {}'s {} only with claims, no proof",
                        sim.meshes[w].id,
                        m.id,
                        act.kind.name()
                    ))
                }
                Some(_) => Ok(()),
            };
            outcomes.push(outcome);
        }
    }
    for o in outcomes {
        sim.invariants.check("detection", o);
    }
}

/// Whether `w`'s report of `act` must include a proof by the end of the run. Equivocation
/// and rewrites always sign a contradicting root. A truncation is only a claim until the
/// mesh signs a tree at least as large as one the witness attested of the old history
/// (DESIGN §7: a smaller tree proves nothing on its own), so the proof is owed once the
/// mesh anchored such a size a budget before the end.
fn proof_owed(sim: &Sim, act: &crate::sim::Act, w: usize, budget: u64) -> bool {
    if !act.kind.needs_proof() {
        return false;
    }
    if act.kind != crate::sim::Byzantine::Truncate {
        return true;
    }
    let m = &sim.meshes[act.mesh];
    let attested = sim
        .attested
        .get(&(w, act.mesh))
        .and_then(|l| {
            l.iter()
                .filter(|(_, size, root)| !m.scroll.had(*size, root))
                .map(|(_, size, _)| *size)
                .max()
        })
        .unwrap_or(0);
    let end = sim.now_ms.saturating_sub(budget);
    m.anchored
        .iter()
        .any(|(t, size)| *t >= act.at_ms && *t <= end && *size >= attested)
}

/// The discrepancy records mesh `w` made itself (not the reports it received).
fn found_by(sim: &Sim, w: usize) -> Vec<DiscrepancyRecord> {
    let me = &sim.meshes[w].id;
    let records: Vec<DiscrepancyRecord> = sim.meshes[w].store().all().unwrap_or_default();
    records
        .into_iter()
        .filter(|r| &r.report.body.reporting_mesh == me)
        .collect()
}

/// No honest witness holds two open records with one finding key.
fn one_record_per_finding(sim: &mut Sim) {
    let mut outcomes = Vec::new();
    for w in 0..sim.meshes.len() {
        if !sim.meshes[w].honest() {
            continue;
        }
        let me = sim.meshes[w].id.clone();
        let mut keys = BTreeMap::new();
        for r in found_by(sim, w).iter().filter(|r| r.resolved_at.is_none()) {
            *keys.entry(r.finding_key()).or_insert(0u32) += 1;
        }
        outcomes.push(match keys.into_iter().find(|(_, n)| *n > 1) {
            Some((key, n)) => Err(format!("{me} holds {n} open records of finding {key}")),
            None => Ok(()),
        });
    }
    for o in outcomes {
        sim.invariants.check("one_record_per_finding", o);
    }
}

/// Whether honest witness `w` owes a report of `act`. A rewrite or truncation is visible
/// only to a witness that attested a root of the history that was rewritten (one not on
/// the mesh's history now): a witness that last saw the mesh before the rewritten part
/// finds the new history consistent with everything it attested. Every other act is
/// owed by every honest witness (an equivocation through the other witnesses' gossip).
pub fn owed(sim: &Sim, act: &crate::sim::Act, w: usize) -> bool {
    if !sim.meshes[w].honest() {
        return false;
    }
    let m = &sim.meshes[act.mesh];
    match act.kind {
        crate::sim::Byzantine::Rewrite | crate::sim::Byzantine::Truncate => sim
            .attested
            .get(&(w, act.mesh))
            .is_some_and(|l| l.iter().any(|(_, size, root)| !m.scroll.had(*size, root))),
        _ => true,
    }
}

/// When witness `w` and mesh `m` could first talk again after `from`: the end of every
/// partition that overlaps `[from, from + budget]` and cuts `w` from `m` or from another
/// witness of `m` (whose gossip may be what shows a split view), or crash of `w` or `m` (a
/// budget is only owed once they can talk).
fn cut_off_until(sim: &Sim, w: usize, m: usize, from: u64, budget: u64) -> u64 {
    let mut start = from;
    loop {
        let end = start + budget;
        let overlaps = |a: u64, b: u64| a <= end && b > start;
        let partitions = sim.config.network.partitions.iter().filter(|p| {
            overlaps(p.from_ms, p.until_ms)
                && std::iter::once(m)
                    .chain(sim.meshes[m].peers.iter().copied())
                    .any(|x| x != w && (p.cuts(p.from_ms, w, x) || p.cuts(p.from_ms, x, w)))
        });
        let crashes = sim
            .config
            .crashes
            .iter()
            .filter(|c| (c.mesh == w || c.mesh == m) && overlaps(c.at_ms, c.at_ms + c.down_ms));
        let later = partitions
            .map(|p| p.until_ms)
            .chain(crashes.map(|c| c.at_ms + c.down_ms))
            .max()
            .filter(|&t| t > start);
        match later {
            Some(t) => start = t,
            None => return start,
        }
    }
}

/// Checks every honest record's evidence; returns the (witness, mesh) pairs with a proof.
fn evidence(sim: &mut Sim) -> BTreeSet<(usize, usize)> {
    let mut proofs = BTreeSet::new();
    let mut outcomes = Vec::new();
    for w in 0..sim.meshes.len() {
        if !sim.meshes[w].honest() {
            continue;
        }
        let me = sim.meshes[w].id.clone();
        for r in found_by(sim, w) {
            let accused = &r.report.body.reported_mesh;
            let Some(m) = sim.index_of(accused) else {
                outcomes.push(Err(format!("{me} accused unknown {accused}")));
                continue;
            };
            let outcome = r
                .evidence
                .first()
                .ok_or_else(|| "no evidence".to_owned())
                .and_then(|v| {
                    serde_json::from_value::<ConflictEvidence>(v.clone())
                        .map_err(|e| format!("evidence does not parse: {e}"))
                })
                .and_then(|e| {
                    e.verify(&sim.meshes[m].public)
                        .map_err(|e| format!("evidence does not verify: {e}"))
                })
                .map(|standing| {
                    if standing == Standing::Proof {
                        proofs.insert((w, m));
                    }
                })
                .map_err(|e| format!("{me} about {accused}: {e}"));
            outcomes.push(outcome);
        }
    }
    for o in outcomes {
        sim.invariants.check("evidence_verifies", o);
    }
    proofs
}

fn agreements(sim: &mut Sim) {
    let now = sim.now();
    let mut outcomes = Vec::new();
    for i in 0..sim.meshes.len() {
        let mine = sim.agreements(i);
        for &p in &sim.meshes[i].peers {
            if p < i {
                continue;
            }
            let theirs = sim.agreements(p);
            let (a, b) = (&sim.meshes[i].id, &sim.meshes[p].id);
            let in_force = |list: &[vm_storage::AgreementRecord], other| {
                list.iter()
                    .filter(|r| r.agreement.parties.contains(other) && r.status.in_force(now))
                    .map(|r| r.agreement.agreement_id.clone())
                    .collect::<Vec<_>>()
            };
            let (x, y) = (in_force(&mine, b), in_force(&theirs, a));
            outcomes.push(if x.len() == 1 && x == y {
                Ok(())
            } else {
                Err(format!(
                    "{a} holds {x:?} in force with {b}, which holds {y:?}"
                ))
            });
        }
    }
    for o in outcomes {
        sim.invariants.check("agreements_symmetric", o);
    }
}

fn scrolls(sim: &mut Sim) {
    let mut outcomes = Vec::new();
    for m in &sim.meshes {
        let mut outcome = Ok(());
        for (seq, leaf) in m.log.leaves().iter().enumerate() {
            if let Err(e) = parse_receipt(leaf) {
                outcome = Err(format!("{} receipt {seq}: {e}", m.id));
                break;
            }
        }
        if outcome.is_ok()
            && let Some(engine) = m.engine()
        {
            match engine.pending_receipts() {
                Ok(p) if p.is_empty() => {}
                Ok(p) => {
                    outcome = Err(format!(
                        "{}: {} receipts decided but not in the scroll of {}",
                        m.id,
                        p.len(),
                        m.log.len()
                    ))
                }
                Err(e) => outcome = Err(format!("{}: {e}", m.id)),
            }
        }
        outcomes.push(outcome);
    }
    for o in outcomes {
        sim.invariants.check("federation_scrolls_verify", o);
    }
}

/// The heal: the end of the last partition or the last restart.
pub fn last_heal_ms(sim: &Sim) -> Option<u64> {
    let partitions = sim.config.network.last_heal_ms();
    let crashes = sim.config.crashes.iter().map(|c| c.at_ms + c.down_ms).max();
    partitions.max(crashes)
}

fn convergence(sim: &mut Sim) {
    let Some(heal) = last_heal_ms(sim) else {
        return;
    };
    let budget = sim.config.convergence_budget_secs * 1000;
    let mut worst = 0u64;
    let mut outcomes = Vec::new();
    for w in 0..sim.meshes.len() {
        if !sim.meshes[w].honest() {
            continue;
        }
        for &m in &sim.meshes[w].peers {
            if !sim.meshes[m].honest() {
                continue;
            }
            // What the peer had anchored at the heal (or its first anchor after it).
            let anchored = &sim.meshes[m].anchored;
            let target = anchored
                .iter()
                .rev()
                .find(|(t, _)| *t <= heal)
                .or_else(|| anchored.first())
                .map_or(0, |(_, s)| *s);
            let caught_up = sim
                .attested
                .get(&(w, m))
                .and_then(|l| l.iter().find(|(t, s, _)| *t >= heal && *s >= target))
                .map(|(t, _, _)| *t);
            match caught_up {
                Some(t) => {
                    worst = worst.max(t - heal);
                    outcomes.push(if t - heal <= budget {
                        Ok(())
                    } else {
                        Err(format!(
                            "{} caught up with {} {} s after the heal",
                            sim.meshes[w].id,
                            sim.meshes[m].id,
                            (t - heal) / 1000
                        ))
                    });
                }
                None => outcomes.push(Err(format!(
                    "{} never caught up with {} (size {target}) after the heal at {} ms",
                    sim.meshes[w].id, sim.meshes[m].id, heal
                ))),
            }
        }
    }
    sim.convergence_ms = Some(worst);
    for o in outcomes {
        sim.invariants.check("convergence", o);
    }
}
