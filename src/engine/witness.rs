//! Step 5 of the witness cycle (DESIGN §7) and what follows from it, in one transaction:
//! the witness state's compare-and-swap, the signed attestation to the witnessed mesh, the
//! `fed_witness_event` receipt, and for a failed check the discrepancy (record, signed report
//! to the mesh, `fed_discrepancy`). Also the other side of each: attestations and discrepancy
//! reports received about our scrolls, and the `fed_cross_anchor` receipts of an anchor
//! cycle that included peers' roots.
//!
//! The checks themselves (steps 1–4) are [`crate::witness::check`]; the driver runs them
//! (they need the network) and hands the verdict in as [`WitnessReport`].

use serde_json::{Map, Value, json};
use vm_receipts::documents::{
    AnchorNotification, AnchorProof, DiscrepancyBody, DiscrepancyReport, Severity, SignatureField,
    SignedDocument, SignedRoot, TrustLevel, WitnessAttestation, WitnessResult,
};
use vm_receipts::receipts::{
    AnchorSummary, CrossAnchorProof, CrossAnchorReceipt, DiscrepancyReceipt, FederationReceipt,
    WitnessEventReceipt,
};
use vm_receipts::{Blake3Hash, DocumentId, MeshId, ScrollName, Signature, jcs};
use vm_storage::records::{finding_key, witness_key};
use vm_storage::{CasOutcome, DiscrepancyRecord, ReceivedAttestation, WitnessState};

use super::policy::{self, PeerRequest};
use super::{
    Ctx, EngineError, Escalation, Event, PeerMessage, agreements, authored_by, new_id, peer_key,
};
use super::{receipts, retry};
use crate::anchor::AnchorCheck;
use crate::witness::{ConflictEvidence, Finding, Standing, Verdict};

/// The outcome of steps 1–4 for one notification, for the engine to act on.
#[derive(Debug, Clone, PartialEq)]
pub struct WitnessReport {
    /// The mesh witnessed (the transport-authenticated sender, or the peer we pulled from).
    pub peer: MeshId,
    /// What it announced.
    pub notification: AnchorNotification,
    /// The size of the witness state the check was made against (`None`: none yet). The
    /// update is a compare-and-swap on it.
    pub expected_size: Option<u64>,
    /// The checks' outcome.
    pub verdict: Verdict,
    /// Whether the finding stood after a re-sync (seed §6.3 step 1).
    pub resynced: bool,
}

/// A peer root that went into our anchor batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossAnchored {
    /// The peer.
    pub peer: MeshId,
    /// Its root, as witnessed.
    pub root: SignedRoot,
    /// Its leaf in our batch, with our backend's anchor of the batch.
    pub proof: AnchorProof,
}

/// How attestations describe the method.
const METHOD: &str = "anchor_proof_validation+consistency_proof+inclusion_samples";

fn in_force_for(
    ctx: &Ctx<'_, '_>,
    peer: &MeshId,
    request: PeerRequest<'_>,
) -> Result<vm_storage::AgreementRecord, EngineError> {
    let record = agreements::in_force_with(ctx.tx, ctx.me, peer, ctx.now)?;
    policy::authorize(
        ctx.me,
        peer,
        ctx.config.federation_on,
        record.as_ref(),
        ctx.now,
        request,
    )?;
    record.ok_or(EngineError::Policy(policy::Refusal::NoAgreement))
}

fn anchor_summary(anchor: Option<&AnchorCheck>, proof: &AnchorProof) -> AnchorSummary {
    let mut extra = Map::new();
    extra.insert("batch_root".into(), json!(proof.batch_root));
    if let Some(a) = anchor {
        extra.insert("anchored_at".into(), json!(a.anchored_at));
        extra.insert("verified_as".into(), json!(a.backend));
    }
    AnchorSummary {
        backend: proof.backend.clone(),
        extra,
    }
}

/// The witness's side: acts on a verdict.
pub fn on_witnessed(ctx: &mut Ctx<'_, '_>, report: WitnessReport) -> Result<(), EngineError> {
    let WitnessReport {
        peer,
        notification: n,
        expected_size,
        verdict,
        resynced,
    } = report;
    authored_by("AnchorNotification", &n.mesh_id, &peer)?;
    in_force_for(ctx, &peer, PeerRequest::Notify(&n.scroll))?;
    let key = peer_key(ctx.tx, &peer)?;
    n.verify_root(&key)?;
    let stored: Option<WitnessState> = ctx.tx.get(&witness_key(&peer, &n.scroll))?;
    if stored.as_ref().map(|s| s.latest.size) != expected_size {
        return Err(EngineError::Stale(format!(
            "the witness state of {peer}/{} moved while the check ran",
            n.scroll
        )));
    }
    let root = n.signed_root();
    let (anchor, samples, finding) = match verdict {
        Verdict::Stale => {
            return Err(EngineError::Stale(format!(
                "{peer}'s root of {} at size {} is older than the one witnessed",
                n.scroll, n.size
            )));
        }
        Verdict::Discrepancy {
            anchor,
            samples_checked,
            finding,
        } => (anchor, samples_checked, Some(*finding)),
        Verdict::Verified {
            anchor,
            samples_checked,
        } => {
            // A root is attested once per size (DESIGN §7): the same root again is not news.
            if let Some(s) = &stored
                && s.latest.size == n.size
                && s.latest.root == n.root
            {
                return Err(EngineError::Stale(format!(
                    "{peer}'s root of {} at size {} is already attested",
                    n.scroll, n.size
                )));
            }
            let new = WitnessState {
                peer: peer.clone(),
                scroll: n.scroll.clone(),
                latest: root.clone(),
                witnessed_at: ctx.now,
                result: WitnessResult::Verified,
                cross_anchored_size: stored.as_ref().and_then(|s| s.cross_anchored_size),
            };
            match ctx.tx.advance_witness(&new, expected_size)? {
                CasOutcome::Advanced => (Some(anchor), samples_checked, None),
                CasOutcome::Stale(_) => {
                    return Err(EngineError::Stale("the witness state moved".into()));
                }
                // The check saw these too; the compare-and-swap is the last word.
                CasOutcome::Conflicting(old) => (
                    Some(anchor),
                    samples_checked,
                    Some(conflict(
                        &n.scroll,
                        ConflictEvidence::ConflictingRoots {
                            earlier: old.latest,
                            later: root.clone(),
                        },
                    )),
                ),
                CasOutcome::WouldMoveBackwards { .. } => {
                    return Err(EngineError::Stale(
                        "the root is smaller than the one witnessed".into(),
                    ));
                }
            }
        }
    };
    let result = if finding.is_some() {
        WitnessResult::Discrepancy
    } else {
        WitnessResult::Verified
    };
    let mut discrepancy_ids = Vec::new();
    // A suspension by rule is given last, after the report and the attestation, so the
    // peer receives those first (a suspended agreement takes no attestation).
    let mut escalated = None;
    if let Some(finding) = finding {
        // One finding, one record: the same conflict seen again is counted on the open
        // record, with no new attestation, receipt or report (the first report is resent
        // until the mesh acknowledges it).
        if let Some(mut open) = open_finding(ctx, &peer, &finding)? {
            open.times_seen += 1;
            open.last_seen_at = Some(ctx.now);
            ctx.tx.put(&open)?;
            ctx.event(Event::DiscrepancyRepeated {
                discrepancy_id: open.report.body.discrepancy_id.clone(),
                reported_mesh: peer,
                times_seen: open.times_seen,
            });
            return Ok(());
        }
        let escalation = escalation(ctx, &peer, &finding)?;
        let id = record_discrepancy(ctx, &peer, finding, resynced)?;
        escalated = escalation.map(|rule| (id.clone(), rule));
        discrepancy_ids.push(id);
        // The last good root stays; the state says the latest check failed.
        if let Some(mut s) = stored {
            s.result = WitnessResult::Discrepancy;
            s.witnessed_at = ctx.now;
            ctx.tx.put(&s)?;
        }
    }
    let summary = anchor_summary(anchor.as_ref(), &n.anchor_proof);
    let mut attestation = WitnessAttestation {
        witness_id: new_id(ctx, "witness")?,
        witnessed_mesh: peer.clone(),
        witnessing_mesh: ctx.me.clone(),
        scroll: n.scroll.clone(),
        witnessed_root: n.root,
        witnessed_size: n.size,
        witness_result: result,
        timestamp: ctx.now,
        witness_signature: Signature::from_bytes([0; 64]),
        extra: Map::new(),
    };
    attestation.extra.insert(
        "witnessed_anchor".into(),
        to_json("witnessed_anchor", &summary)?,
    );
    attestation
        .extra
        .insert("samples_checked".into(), samples.into());
    attestation
        .extra
        .insert("verification_method".into(), METHOD.into());
    attestation
        .extra
        .insert("discrepancies".into(), json!(discrepancy_ids));
    attestation.sign(ctx.key)?;
    receipts::queue(
        ctx,
        FederationReceipt::WitnessEvent(WitnessEventReceipt {
            witness_id: attestation.witness_id.clone(),
            witnessed_mesh: peer.clone(),
            witnessing_mesh: ctx.me.clone(),
            timestamp: ctx.now,
            scroll: n.scroll.clone(),
            witnessed_root: n.root,
            witnessed_size: Some(n.size),
            witnessed_anchor: summary,
            verification_method: METHOD.into(),
            verification_result: result,
            samples_checked: samples,
            discrepancies: discrepancy_ids.iter().map(|d| json!(d)).collect(),
            witness_signature: attestation.witness_signature,
            signed_root: Some(root.clone()),
            tags: witness_tags(&n.scroll, result),
            root_hash: None,
            extra: Map::new(),
        }),
    )?;
    // One unacknowledged attestation per scroll: a newer one replaces an older one.
    let topic = format!("witness/{}", n.scroll.file_stem());
    retry::send(ctx, &peer, &topic, PeerMessage::Attestation(attestation))?;
    ctx.event(Event::Witnessed {
        peer: peer.clone(),
        scroll: n.scroll,
        size: n.size,
        root: n.root,
        result,
    });
    if let Some((id, rule)) = escalated {
        escalate(ctx, &peer, &id, rule)?;
    }
    Ok(())
}

fn witness_tags(scroll: &ScrollName, result: WitnessResult) -> Vec<String> {
    vec![
        "federation".into(),
        "witness".into(),
        scroll.file_stem(),
        match result {
            WitnessResult::Verified => "verified",
            WitnessResult::Discrepancy => "discrepancy",
        }
        .into(),
    ]
}

fn conflict(scroll: &ScrollName, evidence: ConflictEvidence) -> Finding {
    let (claimed, computed) = match &evidence {
        ConflictEvidence::ConflictingRoots { earlier, later } => {
            (Some(earlier.root), Some(later.root))
        }
        _ => (None, None),
    };
    Finding {
        kind: vm_receipts::documents::DiscrepancyType::RootMismatch,
        details: vm_receipts::documents::DiscrepancyDetails {
            scroll: scroll.clone(),
            claimed_root: claimed,
            computed_root: computed,
            sample_receipts_checked: None,
            first_divergence_at: None,
            extra: Map::new(),
        },
        evidence,
    }
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<Value, EngineError> {
    serde_json::to_value(value).map_err(|e| EngineError::Command(format!("encoding {what}: {e}")))
}

/// blake3 of the JCS of the evidence: what the report and receipt name.
pub fn evidence_hash(evidence: &Value) -> Result<Blake3Hash, EngineError> {
    let bytes = jcs::to_vec_integers_only(evidence).map_err(|source| {
        vm_receipts::documents::DocumentError::Json {
            document: "ConflictEvidence",
            source,
        }
    })?;
    Ok(Blake3Hash::digest(&bytes))
}

/// The open (unresolved) record of the same finding as `finding` about `peer`, if any.
fn open_finding(
    ctx: &Ctx<'_, '_>,
    peer: &MeshId,
    finding: &Finding,
) -> Result<Option<DiscrepancyRecord>, EngineError> {
    let prefix = finding_key(
        ctx.me,
        peer,
        &finding.details.scroll,
        &finding.kind.to_string(),
        finding.evidence.kind(),
    );
    for (index_key, _) in ctx.tx.index::<DiscrepancyRecord>(&prefix)? {
        let Some(key) = index_key.strip_prefix(&prefix) else {
            continue;
        };
        if let Some(record) = ctx.tx.get::<DiscrepancyRecord>(key)?
            && record.resolved_at.is_none()
        {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// The `[witness] suspend_on` rule a new finding of ours meets, if any.
fn escalation(
    ctx: &Ctx<'_, '_>,
    peer: &MeshId,
    finding: &Finding,
) -> Result<Option<Escalation>, EngineError> {
    for rule in &ctx.config.suspend_on {
        let meets = match rule {
            Escalation::Critical => finding.kind.severity() == Severity::Critical,
            Escalation::Proof => {
                let key = peer_key(ctx.tx, peer)?;
                matches!(finding.evidence.verify(&key), Ok(Standing::Proof))
            }
        };
        if meets {
            return Ok(Some(*rule));
        }
    }
    Ok(None)
}

/// Seed §6.3 step 4, by rule: suspends the agreement in force with `peer` citing finding
/// `id` (our signed notice tells the peer). An agreement already suspended stays as it is.
fn escalate(
    ctx: &mut Ctx<'_, '_>,
    peer: &MeshId,
    id: &DocumentId,
    rule: Escalation,
) -> Result<(), EngineError> {
    let Some(record) = agreements::in_force_with(ctx.tx, ctx.me, peer, ctx.now)? else {
        return Ok(());
    };
    if matches!(record.status, vm_storage::AgreementStatus::Suspended { .. }) {
        return Ok(());
    }
    let why = match rule {
        Escalation::Proof => "its evidence is a proof",
        Escalation::Critical => "it is critical",
    };
    agreements::suspend(
        ctx,
        &record.agreement.agreement_id,
        format!("suspended automatically ([witness] suspend_on): finding {id}, {why}"),
        Some(id.clone()),
    )
}

/// Records a finding: the record with its evidence, the signed report to the mesh, and
/// `fed_discrepancy`. Returns the discrepancy id.
fn record_discrepancy(
    ctx: &mut Ctx<'_, '_>,
    peer: &MeshId,
    finding: Finding,
    resynced: bool,
) -> Result<DocumentId, EngineError> {
    let Finding {
        kind,
        mut details,
        evidence,
    } = finding;
    if resynced {
        details.extra.insert(
            "resync".into(),
            "the finding stood after re-fetching the latest root and recomputing".into(),
        );
    }
    details
        .extra
        .insert("evidence_kind".into(), evidence.kind().into());
    let evidence = to_json("evidence", &evidence)?;
    let body = DiscrepancyBody {
        discrepancy_id: new_id(ctx, "discrepancy")?,
        reporting_mesh: ctx.me.clone(),
        reported_mesh: peer.clone(),
        timestamp: ctx.now,
        discrepancy_type: kind,
        severity: kind.severity(),
        details,
        evidence_hash: evidence_hash(&evidence)?,
        resolution_requested: true,
        extra: Map::new(),
    };
    let mut report = DiscrepancyReport {
        body,
        signature: SignatureField::unsigned(),
    };
    report.sign(ctx.key)?;
    let id = report.body.discrepancy_id.clone();
    ctx.tx
        .put(&DiscrepancyRecord::new(report.clone(), evidence.clone()))?;
    receipts::queue(
        ctx,
        FederationReceipt::Discrepancy(DiscrepancyReceipt {
            body: report.body.clone(),
            signature: Some(report.signature),
            evidence: Some(evidence.clone()),
            tags: vec![
                "federation".into(),
                "discrepancy".into(),
                kind.to_string(),
                "found".into(),
            ],
            root_hash: None,
        }),
    )?;
    ctx.event(Event::Discrepancy {
        discrepancy_id: id.clone(),
        reporting_mesh: ctx.me.clone(),
        reported_mesh: peer.clone(),
        kind: kind.to_string(),
        scroll: report.body.details.scroll.clone(),
    });
    let topic = format!("discrepancy/{id}");
    retry::send(
        ctx,
        peer,
        &topic,
        PeerMessage::Discrepancy {
            report: Box::new(report),
            evidence,
        },
    )?;
    Ok(id)
}

/// The witnessed side: a peer's attestation about one of our scrolls. The driver has checked
/// that the attested root is ours at that size.
pub fn on_attestation(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    attestation: WitnessAttestation,
) -> Result<(), EngineError> {
    let a = attestation;
    authored_by("WitnessAttestation", &a.witnessing_mesh, from)?;
    if &a.witnessed_mesh != ctx.me {
        return Err(EngineError::NotForUs {
            document: "WitnessAttestation",
            to: a.witnessed_mesh.clone(),
        });
    }
    in_force_for(ctx, from, PeerRequest::SubmitAttestation(&a.scroll))?;
    let key = peer_key(ctx.tx, from)?;
    a.verify(&key)?;
    ctx.check_not_future("timestamp", a.timestamp)?;
    let slot = witness_key(from, &a.scroll);
    if let Some(stored) = ctx.tx.get::<ReceivedAttestation>(&slot)?
        && (stored.attestation.witness_id == a.witness_id
            || stored.attestation.timestamp > a.timestamp
            || (stored.attestation.witnessed_size == a.witnessed_size
                && stored.attestation.witnessed_root == a.witnessed_root
                && stored.attestation.witness_result == a.witness_result))
    {
        return Err(EngineError::AlreadyReceived(format!(
            "attestation {} (or a newer one)",
            a.witness_id
        )));
    }
    let anchor: AnchorSummary = a
        .extra
        .get("witnessed_anchor")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(AnchorSummary {
            backend: "unknown".into(),
            extra: Map::new(),
        });
    let samples = a
        .extra
        .get("samples_checked")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let method = a
        .extra
        .get("verification_method")
        .and_then(Value::as_str)
        .unwrap_or("witness_attestation")
        .to_owned();
    let discrepancies = match a.extra.get("discrepancies") {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };
    receipts::queue(
        ctx,
        FederationReceipt::WitnessEvent(WitnessEventReceipt {
            witness_id: a.witness_id.clone(),
            witnessed_mesh: ctx.me.clone(),
            witnessing_mesh: from.clone(),
            timestamp: a.timestamp,
            scroll: a.scroll.clone(),
            witnessed_root: a.witnessed_root,
            witnessed_size: Some(a.witnessed_size),
            witnessed_anchor: anchor,
            verification_method: method,
            verification_result: a.witness_result,
            samples_checked: samples,
            discrepancies,
            witness_signature: a.witness_signature,
            signed_root: None,
            tags: witness_tags(&a.scroll, a.witness_result),
            root_hash: None,
            extra: Map::new(),
        }),
    )?;
    ctx.event(Event::Attested {
        by: from.clone(),
        scroll: a.scroll.clone(),
        size: a.witnessed_size,
        result: a.witness_result,
    });
    ctx.tx.put(&ReceivedAttestation {
        attestation: a,
        received_at: ctx.now,
    })?;
    Ok(())
}

/// The reported side: a peer's signed discrepancy report about one of our scrolls, with its
/// evidence. Kept and recorded as `fed_discrepancy`; resolving it is the operator's (seed
/// §6.3 steps 2–4).
pub fn on_discrepancy(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    report: DiscrepancyReport,
    evidence: Value,
) -> Result<(), EngineError> {
    let body = &report.body;
    authored_by("DiscrepancyReport", &body.reporting_mesh, from)?;
    if &body.reported_mesh != ctx.me {
        return Err(EngineError::NotForUs {
            document: "DiscrepancyReport",
            to: body.reported_mesh.clone(),
        });
    }
    in_force_for(
        ctx,
        from,
        PeerRequest::ReportDiscrepancy(&body.details.scroll),
    )?;
    let key = peer_key(ctx.tx, from)?;
    report.verify(&key)?;
    ctx.check_not_future("timestamp", body.timestamp)?;
    let hash = evidence_hash(&evidence)?;
    if hash != body.evidence_hash {
        return Err(EngineError::Document(
            vm_receipts::documents::DocumentError::Invalid {
                document: "DiscrepancyReport",
                field: "evidence_hash",
                reason: format!("the evidence sent hashes to {hash}"),
            },
        ));
    }
    let record = DiscrepancyRecord::new(report.clone(), evidence);
    if ctx
        .tx
        .get::<DiscrepancyRecord>(&vm_storage::Record::key(&record))?
        .is_some()
    {
        return Err(EngineError::AlreadyReceived(format!(
            "discrepancy {}",
            body.discrepancy_id
        )));
    }
    ctx.tx.put(&record)?;
    receipts::queue(
        ctx,
        FederationReceipt::Discrepancy(DiscrepancyReceipt {
            body: body.clone(),
            signature: Some(report.signature),
            evidence: record.evidence.first().cloned(),
            tags: vec![
                "federation".into(),
                "discrepancy".into(),
                body.discrepancy_type.to_string(),
                "reported".into(),
            ],
            root_hash: None,
        }),
    )?;
    ctx.event(Event::Discrepancy {
        discrepancy_id: body.discrepancy_id.clone(),
        reporting_mesh: from.clone(),
        reported_mesh: ctx.me.clone(),
        kind: body.discrepancy_type.to_string(),
        scroll: body.details.scroll.clone(),
    });
    Ok(())
}

/// Our anchor cycle included these peers' witnessed roots: a `fed_cross_anchor` receipt each,
/// only for roots we witnessed and peers we federate with at level 3+ (DESIGN §6).
pub fn on_anchored(ctx: &mut Ctx<'_, '_>, entries: Vec<CrossAnchored>) -> Result<(), EngineError> {
    for entry in entries {
        let record = agreements::in_force_with(ctx.tx, ctx.me, &entry.peer, ctx.now)?
            .filter(|r| {
                r.status.working(ctx.now)
                    && r.agreement.trust_level >= TrustLevel::ATTEST
                    && r.agreement
                        .terms
                        .scrolls_shared
                        .contains(&entry.root.scroll)
            })
            .ok_or(EngineError::Policy(policy::Refusal::LevelTooLow {
                required: TrustLevel::ATTEST,
                agreed: TrustLevel::OBSERVE,
            }))?;
        let slot = witness_key(&entry.peer, &entry.root.scroll);
        let mut state: WitnessState = ctx
            .tx
            .get(&slot)?
            .filter(|s: &WitnessState| s.latest == entry.root)
            .ok_or_else(|| {
                EngineError::Stale(format!(
                    "{}'s root of {} is not the one last witnessed",
                    entry.peer, entry.root.scroll
                ))
            })?;
        let mut roots = Map::new();
        roots.insert(entry.root.scroll.to_string(), json!(entry.root.root));
        let mut extra = Map::new();
        extra.insert(
            format!("{}_roots_included", entry.peer.name()),
            Value::Object(roots),
        );
        extra.insert("anchored_size".into(), entry.root.size.into());
        extra.insert("agreement_id".into(), json!(record.agreement.agreement_id));
        let mut proof_extra = entry.proof.extra.clone();
        proof_extra.insert("leaf_index".into(), entry.proof.leaf_index.into());
        proof_extra.insert("batch_size".into(), entry.proof.batch_size.into());
        let cross_anchor_id = new_id(ctx, "cross-anchor")?;
        receipts::queue(
            ctx,
            FederationReceipt::CrossAnchor(CrossAnchorReceipt {
                cross_anchor_id,
                anchoring_mesh: ctx.me.clone(),
                anchored_mesh: entry.peer.clone(),
                timestamp: ctx.now,
                combined_root: entry.proof.batch_root,
                anchor_proof: CrossAnchorProof {
                    backend: entry.proof.backend.clone(),
                    merkle_path: entry.proof.merkle_path.clone(),
                    extra: proof_extra,
                },
                tags: vec![
                    "federation".into(),
                    "cross-anchor".into(),
                    entry.proof.backend.clone(),
                ],
                root_hash: None,
                extra,
            }),
        )?;
        state.cross_anchored_size = Some(entry.root.size);
        ctx.tx.put(&state)?;
        ctx.event(Event::CrossAnchored {
            peer: entry.peer,
            scroll: entry.root.scroll,
            size: entry.root.size,
        });
    }
    Ok(())
}
