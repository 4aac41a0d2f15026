//! Arbitration (seed §6.3 step 3, "third-party mesh verification"): a party of a finding
//! sends the signed report and its evidence to a third mesh that witnesses the reported
//! mesh's scroll; that arbiter checks the evidence with the reported mesh's key and against
//! its own latest witnessed root of the scroll, and answers both parties with a signed
//! verdict. All three append it as `fed_arbitration_verdict`; the parties keep it on the
//! finding's record.
//!
//! The arbiter's rule, in order:
//! - the evidence does not check out (a bad signature, roots of another mesh): `not_upheld`;
//! - the evidence is a proof on its own (two roots no append-only log has): `upheld`;
//! - a claim (what the witness was or was not served): `upheld` if the arbiter's own root at
//!   the size in question differs from the reported mesh's, else `inconclusive`. The arbiter
//!   does not re-run the witness check here: that needs the network, which the engine has not
//!   (its own witness cycles keep its view current).

use vm_receipts::documents::{
    ArbitrationOutcome, ArbitrationRequest, ArbitrationVerdict, Document, DocumentError,
    SignatureField, SignedDocument, SignedRoot, TrustLevel,
};
use vm_receipts::receipts::{ArbitrationVerdictReceipt, FederationReceipt};
use vm_receipts::{DocumentId, MeshId};
use vm_storage::records::{arbitration_key, witness_key};
use vm_storage::{ArbitrationRecord, DiscrepancyRecord, WitnessState};

use super::{
    Ctx, EngineError, Event, PeerMessage, agreements, authored_by, new_id, peer_key, receipts,
    retry, witness::evidence_hash,
};
use crate::witness::{ConflictEvidence, Standing};

/// `discrepancies arbitrate ID --arbiter M`: signs a request carrying the finding's signed
/// report and evidence, and sends it to `arbiter`.
pub fn request(
    ctx: &mut Ctx<'_, '_>,
    id: &str,
    arbiter: MeshId,
) -> Result<DocumentId, EngineError> {
    let record = super::resolution::find(ctx.tx.all::<DiscrepancyRecord>()?, id)?;
    let other = record.other_party(ctx.me).clone();
    if &arbiter == ctx.me || arbiter == other {
        return Err(EngineError::Command(
            "the arbiter must be a third mesh, not a party to the finding".into(),
        ));
    }
    // Its key, to check the verdict with; an unknown mesh is named, not guessed.
    peer_key(ctx.tx, &arbiter)?;
    let Some(evidence) = record.evidence.first().cloned() else {
        return Err(EngineError::Command(format!(
            "discrepancy {} has no evidence to send",
            record.id()
        )));
    };
    let mut request = ArbitrationRequest {
        arbitration_id: new_id(ctx, "arbitration")?,
        requested_by: ctx.me.clone(),
        arbiter: arbiter.clone(),
        report: record.report.clone(),
        evidence,
        timestamp: ctx.now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    request.validate()?;
    request.sign(ctx.key)?;
    let arbitration_id = request.arbitration_id.clone();
    ctx.event(Event::ArbitrationRequested {
        arbitration_id: arbitration_id.clone(),
        discrepancy_id: record.id().clone(),
        arbiter: arbiter.clone(),
    });
    retry::send(
        ctx,
        &arbiter,
        &format!("arbitration/{arbitration_id}"),
        PeerMessage::Arbitration(Box::new(request)),
    )?;
    Ok(arbitration_id)
}

/// The arbiter's side: checks the request, decides, signs the verdict, records it and sends
/// it to both parties.
pub fn on_request(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    request: ArbitrationRequest,
) -> Result<(), EngineError> {
    request.validate()?;
    authored_by("ArbitrationRequest", &request.requested_by, from)?;
    if &request.arbiter != ctx.me {
        return Err(EngineError::NotForUs {
            document: "ArbitrationRequest",
            to: request.arbiter.clone(),
        });
    }
    let key = arbitration_key(from, &request.arbitration_id);
    if ctx.tx.get::<ArbitrationRecord>(&key)?.is_some() {
        return Err(EngineError::AlreadyReceived(format!(
            "arbitration {}",
            request.arbitration_id
        )));
    }
    request.verify(&peer_key(ctx.tx, from)?)?;
    ctx.check_not_future("timestamp", request.timestamp)?;
    let body = &request.report.body;
    let reported = body.reported_mesh.clone();
    let scroll = body.details.scroll.clone();
    // Only a mesh that witnesses the reported mesh's scroll has a view to check against, and
    // only a mesh we are federated with may ask.
    agreements::in_force_with(ctx.tx, ctx.me, from, ctx.now)?.ok_or_else(|| {
        EngineError::Command(format!(
            "no agreement in force with {from}: we arbitrate only for meshes we are federated with"
        ))
    })?;
    let witnessing = agreements::in_force_with(ctx.tx, ctx.me, &reported, ctx.now)?.filter(|a| {
        a.agreement.trust_level >= TrustLevel::VERIFY
            && a.agreement.terms.scrolls_shared.contains(&scroll)
    });
    if witnessing.is_none() {
        return Err(EngineError::Command(format!(
            "we do not witness {reported}'s {scroll} scroll, so we cannot arbitrate a finding \
             about it"
        )));
    }
    request
        .report
        .verify(&peer_key(ctx.tx, &body.reporting_mesh)?)?;
    let hash = evidence_hash(&request.evidence)?;
    if hash != body.evidence_hash {
        return Err(EngineError::Document(DocumentError::Invalid {
            document: "ArbitrationRequest",
            field: "evidence",
            reason: format!(
                "the evidence hashes to {hash}, not to the report's evidence_hash {}",
                body.evidence_hash
            ),
        }));
    }
    let view = ctx
        .tx
        .get::<WitnessState>(&witness_key(&reported, &scroll))?
        .map(|s| s.latest);
    let (outcome, standing, reason) = decide(
        &request.evidence,
        &peer_key(ctx.tx, &reported)?,
        view.as_ref(),
    );
    let mut verdict = ArbitrationVerdict {
        arbitration_id: request.arbitration_id.clone(),
        requested_by: from.clone(),
        discrepancy_id: body.discrepancy_id.clone(),
        reporting_mesh: body.reporting_mesh.clone(),
        reported_mesh: reported,
        scroll,
        arbiter: ctx.me.clone(),
        outcome,
        evidence_standing: standing.into(),
        reason,
        arbiter_view: view,
        timestamp: ctx.now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    verdict.validate()?;
    verdict.sign(ctx.key)?;
    ctx.tx.put(&ArbitrationRecord {
        verdict: verdict.clone(),
    })?;
    record_verdict(ctx, verdict.clone())?;
    for party in [&verdict.reporting_mesh, &verdict.reported_mesh] {
        retry::send(
            ctx,
            party,
            &format!("verdict/{}", verdict.arbitration_id),
            PeerMessage::Verdict(Box::new(verdict.clone())),
        )?;
    }
    Ok(())
}

/// The arbiter's decision (see the module documentation): outcome, evidence standing, why.
fn decide(
    evidence: &serde_json::Value,
    reported_key: &vm_receipts::PublicKey,
    view: Option<&SignedRoot>,
) -> (ArbitrationOutcome, &'static str, String) {
    let evidence: ConflictEvidence = match serde_json::from_value(evidence.clone()) {
        Ok(e) => e,
        Err(e) => {
            return (
                ArbitrationOutcome::NotUpheld,
                "invalid",
                format!("the evidence is not evidence of a known kind: {e}"),
            );
        }
    };
    match evidence.verify(reported_key) {
        Err(e) => (
            ArbitrationOutcome::NotUpheld,
            "invalid",
            format!("the evidence does not check out with the reported mesh's key: {e}"),
        ),
        Ok(Standing::Proof) => (
            ArbitrationOutcome::Upheld,
            "proof",
            format!(
                "the {} evidence is a proof on its own: roots signed by the reported mesh \
                 that no append-only log has",
                evidence.kind()
            ),
        ),
        Ok(Standing::Claim) => match view.map(|ours| {
            let contradicted = evidence
                .signed_roots()
                .into_iter()
                .find(|r| r.size == ours.size && r.root != ours.root);
            (ours, contradicted)
        }) {
            // Both roots verify with the reported mesh's key (the evidence was checked above;
            // our view is a root we witnessed): it signed two roots at one size.
            Some((ours, Some(theirs))) => (
                ArbitrationOutcome::Upheld,
                "claim",
                format!(
                    "our own witnessed root at size {} is {}, the reported mesh's root in the \
                     evidence is {}: it signed both",
                    ours.size, ours.root, theirs.root
                ),
            ),
            Some((ours, None)) => (
                ArbitrationOutcome::Inconclusive,
                "claim",
                format!(
                    "the evidence is the witness's account; our own view (size {}, root {}) \
                     neither confirms nor refutes it",
                    ours.size, ours.root
                ),
            ),
            None => (
                ArbitrationOutcome::Inconclusive,
                "claim",
                "the evidence is the witness's account, and we hold no root of the scroll to \
                 compare"
                    .into(),
            ),
        },
    }
}

/// A party's side: the arbiter's verdict on a finding between us.
pub fn on_verdict(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    verdict: ArbitrationVerdict,
) -> Result<(), EngineError> {
    verdict.validate()?;
    authored_by("ArbitrationVerdict", &verdict.arbiter, from)?;
    if &verdict.reporting_mesh != ctx.me && &verdict.reported_mesh != ctx.me {
        return Err(EngineError::NotForUs {
            document: "ArbitrationVerdict",
            to: verdict.reported_mesh.clone(),
        });
    }
    verdict.verify(&peer_key(ctx.tx, from)?)?;
    ctx.check_not_future("timestamp", verdict.timestamp)?;
    let key = format!("{}/{}", verdict.reporting_mesh, verdict.discrepancy_id);
    let Some(mut record) = ctx.tx.get::<DiscrepancyRecord>(&key)? else {
        return Err(EngineError::OutOfOrder(format!(
            "no discrepancy {} reported by {} is known here (yet)",
            verdict.discrepancy_id, verdict.reporting_mesh
        )));
    };
    if record
        .arbitrations
        .iter()
        .any(|v| v.arbitration_id == verdict.arbitration_id && v.arbiter == verdict.arbiter)
    {
        return Err(EngineError::AlreadyReceived(format!(
            "verdict {} by {from}",
            verdict.arbitration_id
        )));
    }
    record.arbitrations.push(verdict.clone());
    ctx.tx.put(&record)?;
    record_verdict(ctx, verdict)
}

/// All three sides: `fed_arbitration_verdict` and an event.
fn record_verdict(ctx: &mut Ctx<'_, '_>, verdict: ArbitrationVerdict) -> Result<(), EngineError> {
    ctx.event(Event::ArbitrationVerdict {
        arbitration_id: verdict.arbitration_id.clone(),
        discrepancy_id: verdict.discrepancy_id.clone(),
        arbiter: verdict.arbiter.clone(),
        outcome: verdict.outcome,
    });
    let tags = vec![
        "federation".into(),
        "discrepancy".into(),
        "arbitration".into(),
        verdict.outcome.to_string(),
    ];
    receipts::queue(
        ctx,
        FederationReceipt::ArbitrationVerdict(ArbitrationVerdictReceipt {
            verdict,
            tags,
            root_hash: None,
        }),
    )
}
