//! Operator requests of the witness protocol (`verify`, `witness-history`, discrepancies,
//! `scroll append`/`proof` while the node runs, and what `status` shows of witnessing).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use vm_receipts::scroll::{Scroll, ScrollError};
use vm_receipts::{MeshId, ScrollName, Timestamp};
use vm_storage::{AnchoredRoot, DiscrepancyRecord, ReceivedAttestation, WitnessState};

use super::control::{ControlError, ControlReply};
use super::health::Part;
use super::{Node, bad, err, internal, store_error};
use crate::engine::policy::PeerRequest;
use crate::witness::{ConflictEvidence, Standing};

/// Most witness events `witness-history` returns.
const MAX_HISTORY: usize = 10_000;

impl Node {
    /// `verify --mesh M --scroll S`: a witness cycle now; the reply is its outcome.
    pub(super) fn verify_now(
        &mut self,
        mesh: &str,
        scroll: &str,
        reply: oneshot::Sender<ControlReply>,
    ) {
        let parsed = MeshId::parse_flexible(mesh)
            .map_err(bad)
            .and_then(|m| Ok((m, scroll.parse::<ScrollName>().map_err(bad)?)));
        let (peer, scroll) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        // The refusal names why, for the operator; the core asks the same policy.
        match self
            .engine
            .authorize(&peer, PeerRequest::Notify(&scroll), self.now())
        {
            Ok(_) => self.witness_due(&peer, &scroll, Some(reply)),
            Err(e) => {
                let message = match e {
                    crate::engine::EngineError::Policy(
                        crate::engine::policy::Refusal::NoAgreement,
                    ) => format!("no agreement in force with {peer}"),
                    e => format!("not witnessing {peer}'s {scroll}: {e}"),
                };
                let _ = reply.send(Err(err(StatusCode::CONFLICT, "not_witnessing", message)));
            }
        }
    }

    /// `fed_witness_event` receipts of the Federation scroll with `mesh` on either side, in
    /// the last `since_secs` seconds, newest first.
    pub(super) fn witness_history(&self, mesh: &str, since_secs: u64) -> ControlReply {
        let mesh = MeshId::parse_flexible(mesh).map_err(bad)?;
        let since = self
            .now()
            .plus_seconds(-i64::try_from(since_secs).unwrap_or(i64::MAX / 2));
        let mut events = Vec::new();
        for sequence in (0..self.scroll.len()).rev() {
            let line = self.scroll.read_line(sequence).map_err(internal)?;
            let Ok(Value::Object(receipt)) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if receipt.get("type").and_then(Value::as_str) != Some("fed_witness_event") {
                continue;
            }
            let names =
                |field: &str| receipt.get(field).and_then(Value::as_str) == Some(mesh.as_str());
            let recent = receipt
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| t >= since);
            if (names("witnessed_mesh") || names("witnessing_mesh")) && recent {
                let mut entry = receipt.clone();
                entry.insert("sequence".into(), sequence.into());
                events.push(Value::Object(entry));
                if events.len() >= MAX_HISTORY {
                    break;
                }
            }
        }
        Ok(json!({"mesh": mesh, "since": since, "events": events}))
    }

    /// Every discrepancy, with its evidence and what the evidence amounts to when checked
    /// with the reported mesh's key.
    pub(super) fn list_discrepancies(&self) -> ControlReply {
        let records = self
            .engine
            .store()
            .all::<DiscrepancyRecord>()
            .map_err(store_error)?;
        Ok(Value::Array(
            records.iter().map(|r| self.discrepancy_json(r)).collect(),
        ))
    }

    /// `discrepancies show ID`: one finding, its evidence and what it amounts to, its
    /// resolutions, and how to check it with no node.
    pub(super) fn show_discrepancy(&self, id: &str) -> ControlReply {
        let records = self
            .engine
            .store()
            .all::<DiscrepancyRecord>()
            .map_err(store_error)?;
        let record =
            crate::engine::find_discrepancy(records, id).map_err(|e| super::engine_error(&e))?;
        let mut v = self.discrepancy_json(&record);
        let standing = v["evidence_check"]["standing"].as_str().unwrap_or("none");
        let meaning = match standing {
            "proof" => {
                "the evidence is a proof on its own: signed roots of the reported mesh that \
                 cannot all be honest (DESIGN §7 \"Findings and proofs\"); anyone with its key \
                 can check it"
            }
            "claim" => {
                "the evidence is the witness's claim (what it was served, or not): it shows \
                 what the witness saw, not that the reported mesh lied; re-sync, review, or \
                 ask a third mesh (arbitration)"
            }
            "unchecked" => "no key for the reported mesh is held here, so nothing was checked",
            _ => "the evidence does not check out: it is not evidence against the reported mesh",
        };
        v["meaning"] = meaning.into();
        v["check_offline"] = json!([
            "the finding is the fed_discrepancy receipt with this discrepancy_id in the \
             Federation scroll (receipts/federation/federation_events.jsonl) of either party",
            "evidence_hash = \"blake3:\" + hex(BLAKE3(JCS(evidence))): the receipt's evidence \
             must hash to it",
            "the signature (KIND discrepancy) is the reporting mesh's over the receipt without \
             type, tags, root_hash, evidence and signature",
            "a proof's signed roots verify with the reported mesh's key (KIND root); \
             docs/formats.md §4 has a script that checks all of it with no project code",
        ]);
        Ok(v)
    }

    /// A finding as the control API shows it.
    fn discrepancy_json(&self, r: &DiscrepancyRecord) -> Value {
        let me = self.dir.mesh_id();
        let reported = &r.report.body.reported_mesh;
        let key = if reported == me {
            Some(self.dir.key().public_key())
        } else {
            self.route(reported).map(|t| t.key)
        };
        let check = r.evidence.first().map(|v| {
            match (serde_json::from_value::<ConflictEvidence>(v.clone()), key) {
                (Ok(e), Some(k)) => match e.verify(&k) {
                    Ok(Standing::Proof) => json!({"standing": "proof", "kind": e.kind()}),
                    Ok(Standing::Claim) => json!({"standing": "claim", "kind": e.kind()}),
                    Err(x) => json!({"standing": "invalid", "error": x.to_string()}),
                },
                (Ok(_), None) => {
                    json!({"standing": "unchecked", "error": "no key for the mesh"})
                }
                (Err(x), _) => json!({"standing": "invalid", "error": x.to_string()}),
            }
        });
        json!({
            "report": r.report,
            "evidence": r.evidence,
            "evidence_check": check,
            "resolved_at": r.resolved_at,
            "resolutions": r.resolutions,
            "arbitrations": r.arbitrations,
            "times_seen": r.times_seen,
            "last_seen_at": r.last_seen_at,
        })
    }

    /// `scroll append` while the node runs (it owns the scroll files).
    pub(super) fn append(&mut self, scroll: &str, receipts: Vec<Value>) -> ControlReply {
        let name: ScrollName = scroll.parse().map_err(bad)?;
        if name == ScrollName::federation() {
            return Err(bad(
                "the Federation scroll is written by the node itself; append to another scroll",
            ));
        }
        let mut batch: Vec<Map<String, Value>> = Vec::with_capacity(receipts.len());
        for (i, r) in receipts.into_iter().enumerate() {
            match r {
                Value::Object(map) => batch.push(map),
                _ => return Err(bad(format!("receipt {i} is not a JSON object"))),
            }
        }
        let stem = name.file_stem();
        let part = Part::Scroll(name.clone());
        self.check_free_space()
            .map_err(|e| err(StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage", e))?;
        if self.faults.has(&part) {
            return Err(err(
                StatusCode::SERVICE_UNAVAILABLE,
                "degraded",
                format!(
                    "scroll {name} had a failed write; the node reopens and re-checks it with \
                     backoff (see `status`): try again later"
                ),
            ));
        }
        if !self.scrolls.contains_key(&stem) {
            let (opened, _) = Scroll::open(self.dir.root(), &name).map_err(internal)?;
            self.scrolls.insert(stem.clone(), opened);
        }
        let Some(target) = self.scrolls.get_mut(&stem) else {
            return Err(internal("the scroll just opened is gone"));
        };
        let before = target.len();
        // A refused receipt stops the batch before anything is written.
        let appended = match target.append_batch(&batch) {
            Ok(appended) => appended,
            Err(e @ ScrollError::InvalidReceipt { .. }) => {
                return Err(ControlError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "refused",
                    e.to_string(),
                ));
            }
            Err(e) => {
                let message = format!(
                    "the write failed: {e}. None of these {} receipts is acknowledged, but a \
                     failed write or sync leaves the file unknown: some may be in the scroll. \
                     The scroll held {before} receipts; once `status` shows it healthy again, \
                     run `vm-federation scroll verify --scroll {name}` (or read its size in \
                     `status`) before appending them again",
                    batch.len()
                );
                self.note_fault(part, &e);
                return Err(err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "write_failed",
                    message,
                ));
            }
        };
        let (size, root) = (target.len(), target.root());
        let scroll_name = target.name().clone();
        // The receipts are durable: they are acknowledged whatever happens to the ROOT file,
        // which is retried until it is written.
        let root_file = match self.write_root(&name) {
            Ok(()) => {
                self.faults.healed(&Part::RootFile(name));
                json!({"written": true})
            }
            Err(e) => {
                self.note_fault(Part::RootFile(name), &e);
                json!({"written": false, "error": e, "note": "retried by the node until written"})
            }
        };
        Ok(json!({
            "scroll": scroll_name,
            "size": size,
            "root": root,
            "root_file": root_file,
            "appended": appended.iter().map(|a| json!({"sequence": a.sequence, "root_hash": a.root_hash})).collect::<Vec<_>>(),
        }))
    }

    /// An inclusion proof of receipt `sequence` against our latest *anchored* root, with its
    /// anchor proof: a third party checks it with our key (and, for `rfc3161`, the TSA's
    /// certificate) alone.
    pub(super) fn scroll_proof(&self, scroll: &str, sequence: u64) -> ControlReply {
        let name: ScrollName = scroll.parse().map_err(bad)?;
        let target = self.scroll_named(&name).ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                "unknown_scroll",
                format!("no scroll {name}"),
            )
        })?;
        let anchored = self
            .engine
            .store()
            .get::<AnchoredRoot>(&name.file_stem())
            .map_err(store_error)?
            .ok_or_else(|| {
                err(
                    StatusCode::CONFLICT,
                    "not_anchored",
                    format!(
                        "scroll {name} has not been anchored yet: run `vm-federation anchor now`"
                    ),
                )
            })?;
        let proof = crate::anchor::anchored_receipt_proof(target, &anchored.notification, sequence)
            .map_err(|e| match e {
                crate::anchor::AnchoredProofError::NotCovered { .. } => {
                    err(StatusCode::CONFLICT, "not_anchored", e.to_string())
                }
                crate::anchor::AnchoredProofError::Scroll(_) => internal(e),
            })?;
        serde_json::to_value(&proof).map_err(internal)
    }

    /// Sizes and roots of our scrolls.
    pub(super) fn scroll_summaries(&self) -> Vec<Value> {
        std::iter::once(&self.scroll)
            .chain(self.scrolls.values())
            .map(|s| json!({"scroll": s.name(), "size": s.len(), "root": s.root()}))
            .collect()
    }

    /// What `status` shows of witnessing: what we last witnessed of each peer, what each
    /// peer last attested of us, and the discrepancies.
    pub(super) fn witness_status(&self) -> Result<Value, ControlError> {
        let store = self.engine.store();
        let witnessed: Vec<Value> = store
            .all::<WitnessState>()
            .map_err(store_error)?
            .into_iter()
            .map(|s| {
                json!({
                    "peer": s.peer, "scroll": s.scroll, "size": s.latest.size,
                    "root": s.latest.root, "root_signed_at": s.latest.timestamp,
                    "witnessed_at": s.witnessed_at, "result": s.result,
                    "cross_anchored_size": s.cross_anchored_size,
                })
            })
            .collect();
        let attested: Vec<Value> = store
            .all::<ReceivedAttestation>()
            .map_err(store_error)?
            .into_iter()
            .map(|r| {
                let a = r.attestation;
                json!({
                    "by": a.witnessing_mesh, "scroll": a.scroll, "size": a.witnessed_size,
                    "root": a.witnessed_root, "result": a.witness_result,
                    "timestamp": a.timestamp, "received_at": r.received_at,
                })
            })
            .collect();
        let discrepancies = store.all::<DiscrepancyRecord>().map_err(store_error)?;
        let me = self.dir.mesh_id();
        let found = discrepancies
            .iter()
            .filter(|d| &d.report.body.reporting_mesh == me)
            .count();
        Ok(json!({
            "witnessed": witnessed,
            "attested_by_peers": attested,
            "checks_in_flight": self.witness.checks_in_flight(),
            "discrepancies": {
                "found_by_us": found,
                "reported_to_us": discrepancies.len() - found,
                "unresolved": discrepancies.iter().filter(|d| d.resolved_at.is_none()).count(),
            },
        }))
    }
}
