//! The resolution of findings (seed §6.3 step 2, "Manual: human review of divergence"):
//! either party of a finding signs how it ended (`resynced`, `false_alarm`, `confirmed`) with
//! a note; both parties keep the signed resolution on the finding's record and append it as
//! `fed_discrepancy_resolved`.
//!
//! Who closes what: the mesh that made the finding closes it on both sides; the reported mesh
//! closes only its own copy (its word is kept beside its accuser's open finding, which only
//! the accuser can close). See [`DiscrepancyRecord::resolve`].

use vm_receipts::documents::{
    DiscrepancyResolution, Document, MAX_NOTE_CHARS, ResolutionOutcome, SignatureField,
    SignedDocument,
};
use vm_receipts::receipts::{DiscrepancyResolvedReceipt, FederationReceipt};
use vm_receipts::{DocumentId, MeshId};
use vm_storage::DiscrepancyRecord;

use super::{Ctx, EngineError, Event, PeerMessage, authored_by, peer_key, receipts, retry};

/// The record of finding `id`: `id` alone, or `<reporting mesh>/<id>` when two reporters
/// used the same id. An id that names no finding, or more than one, is refused by name.
pub fn find(
    records: impl IntoIterator<Item = DiscrepancyRecord>,
    id: &str,
) -> Result<DiscrepancyRecord, EngineError> {
    let mut found: Vec<DiscrepancyRecord> = records
        .into_iter()
        .filter(|r| r.id().as_str() == id || vm_storage::Record::key(r) == id)
        .collect();
    match found.len() {
        0 => Err(EngineError::UnknownDiscrepancy(id.to_owned())),
        1 => Ok(found.remove(0)),
        _ => Err(EngineError::Command(format!(
            "{id} names {} findings; name one as <reporting mesh>/<id>: {}",
            found.len(),
            found
                .iter()
                .map(vm_storage::Record::key)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `discrepancies resolve`: signs our resolution, closes our record (see the module
/// documentation), appends `fed_discrepancy_resolved` and sends the resolution to the other
/// party.
pub fn resolve(
    ctx: &mut Ctx<'_, '_>,
    id: &str,
    outcome: ResolutionOutcome,
    note: String,
) -> Result<DocumentId, EngineError> {
    let mut record = find(ctx.tx.all::<DiscrepancyRecord>()?, id)?;
    if let Some(ours) = record.resolution_by(ctx.me) {
        return Err(EngineError::Command(format!(
            "discrepancy {} was already resolved by us at {} ({})",
            record.id(),
            ours.timestamp,
            ours.outcome
        )));
    }
    if note.trim().is_empty() {
        return Err(EngineError::Command(
            "a resolution needs a note saying what was done or found".into(),
        ));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(EngineError::Command(format!(
            "the note has {} characters, at most {MAX_NOTE_CHARS} are allowed",
            note.chars().count()
        )));
    }
    let body = &record.report.body;
    let mut resolution = DiscrepancyResolution {
        discrepancy_id: body.discrepancy_id.clone(),
        reporting_mesh: body.reporting_mesh.clone(),
        reported_mesh: body.reported_mesh.clone(),
        resolved_by: ctx.me.clone(),
        outcome,
        note,
        timestamp: ctx.now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    resolution.validate()?;
    resolution.sign(ctx.key)?;
    let peer = record.other_party(ctx.me).clone();
    let id = record.id().clone();
    keep(ctx, &mut record, resolution.clone())?;
    retry::send(
        ctx,
        &peer,
        &format!("resolution/{id}"),
        PeerMessage::Resolution(resolution),
    )?;
    Ok(id)
}

/// The other party's signed resolution of a finding between us.
pub fn on_resolution(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    resolution: DiscrepancyResolution,
) -> Result<(), EngineError> {
    // The transports decode through the same rules; a message built in-process may not.
    resolution.validate()?;
    authored_by("DiscrepancyResolution", &resolution.resolved_by, from)?;
    if resolution.other_party() != ctx.me {
        return Err(EngineError::NotForUs {
            document: "DiscrepancyResolution",
            to: resolution.other_party().clone(),
        });
    }
    let key = peer_key(ctx.tx, from)?;
    resolution.verify(&key)?;
    ctx.check_not_future("timestamp", resolution.timestamp)?;
    let record_key = format!(
        "{}/{}",
        resolution.reporting_mesh, resolution.discrepancy_id
    );
    let Some(mut record) = ctx.tx.get::<DiscrepancyRecord>(&record_key)? else {
        // Its report may still be on its way (sent on another topic): not permanent.
        return Err(EngineError::OutOfOrder(format!(
            "no discrepancy {} reported by {} is known here (yet)",
            resolution.discrepancy_id, resolution.reporting_mesh
        )));
    };
    if record.report.body.reported_mesh != resolution.reported_mesh {
        return Err(EngineError::Command(format!(
            "discrepancy {} concerns {}, not {}",
            resolution.discrepancy_id, record.report.body.reported_mesh, resolution.reported_mesh
        )));
    }
    if record.resolution_by(from).is_some() {
        return Err(EngineError::AlreadyReceived(format!(
            "a resolution of discrepancy {} by {from}",
            resolution.discrepancy_id
        )));
    }
    keep(ctx, &mut record, resolution)
}

/// Both sides: the resolution on the record, `fed_discrepancy_resolved`, an event.
fn keep(
    ctx: &mut Ctx<'_, '_>,
    record: &mut DiscrepancyRecord,
    resolution: DiscrepancyResolution,
) -> Result<(), EngineError> {
    record.resolve(resolution.clone(), ctx.me);
    ctx.tx.put(&*record)?;
    ctx.event(Event::DiscrepancyResolved {
        discrepancy_id: resolution.discrepancy_id.clone(),
        resolved_by: resolution.resolved_by.clone(),
        outcome: resolution.outcome,
        closed: record.resolved_at.is_some(),
    });
    let tags = vec![
        "federation".into(),
        "discrepancy".into(),
        "resolution".into(),
        resolution.outcome.to_string(),
    ];
    receipts::queue(
        ctx,
        FederationReceipt::DiscrepancyResolved(DiscrepancyResolvedReceipt {
            resolution,
            tags,
            root_hash: None,
        }),
    )
}

/// `agreements suspend --discrepancy D`: D must be a finding between us and `peer`.
pub fn check_names_finding(
    ctx: &Ctx<'_, '_>,
    id: &DocumentId,
    peer: &MeshId,
) -> Result<(), EngineError> {
    let record = find(ctx.tx.all::<DiscrepancyRecord>()?, id.as_str())?;
    if record.other_party(ctx.me) != peer {
        return Err(EngineError::Command(format!(
            "discrepancy {id} is between us and {}, not {peer}",
            record.other_party(ctx.me)
        )));
    }
    Ok(())
}
