//! Agreements (seed §3.4–§3.5, DESIGN §5–§6): drafting, countersigning, activation,
//! revocation with notice, suspension.
//!
//! - The party that accepts the final terms drafts and signs; the other verifies the draft
//!   against the terms it offered and the keys it holds, countersigns, and activates; the
//!   drafter activates when the countersigned agreement comes back.
//! - **One agreement per pair.** A mesh never drafts or countersigns while an agreement with
//!   the peer is in force. If both parties draft at once (concurrent proposals accepted on
//!   both sides), each refuses the other's draft unless it has the lower `agreement_hash`,
//!   and abandons its own when it countersigns the other's: both sides make the same
//!   comparison, so exactly one draft is countersigned.
//! - **A signature is a commitment.** A draft we signed comes into force whenever the peer's
//!   valid countersignature arrives, even after we stopped waiting for it, unless another
//!   agreement with the peer is in force by then.

use vm_receipts::documents::{
    Document, FederationAgreement, ProposedTerms, RevocationNotice, SignatureField, SignedDocument,
    SuspensionAction, SuspensionNotice, TrustLevel,
};
use vm_receipts::{DocumentId, MeshId, Timestamp};
use vm_storage::records::{agreement_id_of_index, agreement_pair_prefix};
use vm_storage::{
    AgreementRecord, AgreementStatus, OutgoingMessage, ProposalRecord, ProposalStatus, ReadTx,
    Reads, StoreError, WriteTx,
};

use super::negotiation::{self, agreement_terms};
use super::policy::{PeerRequest, authorize};
use super::{
    Ctx, EngineError, Event, Output, PeerMessage, authored_by, new_id, peer_key, receipts, retry,
};

/// How long after its proposal expired a draft of ours is still awaited before it is
/// abandoned (a countersignature made in time may be on its way).
pub const DRAFT_GRACE_SECS: i64 = 86_400;

fn is_party(a: &FederationAgreement, me: &MeshId, peer: &MeshId) -> bool {
    a.parties.contains(me) && a.parties.contains(peer)
}

/// The agreements with `peer` that are live (in force, or drafts awaiting a
/// countersignature): a prefix scan of the live-agreement index, so ended agreements cost
/// nothing.
pub(super) fn live_with(
    tx: &impl Reads,
    me: &MeshId,
    peer: &MeshId,
) -> Result<Vec<AgreementRecord>, EngineError> {
    let mut out = Vec::new();
    for (key, _) in tx.index::<AgreementRecord>(&agreement_pair_prefix(me, peer))? {
        if let Some(id) = agreement_id_of_index(&key)
            && let Some(record) = Reads::get::<AgreementRecord>(tx, id)?
        {
            out.push(record);
        }
    }
    Ok(out)
}

/// The agreement in force with `peer` (active, suspended, or revoked but within its notice).
pub fn in_force_with(
    tx: &impl Reads,
    me: &MeshId,
    peer: &MeshId,
    now: Timestamp,
) -> Result<Option<AgreementRecord>, EngineError> {
    Ok(live_with(tx, me, peer)?
        .into_iter()
        .find(|r| is_party(&r.agreement, me, peer) && r.status.in_force(now)))
}

/// What a proposal, a draft or an agreement amends: the id of the agreement in force it
/// replaces when it comes into force (`"amends"`, signed with the document).
pub fn amends_of(extra: &vm_receipts::documents::Extra) -> Result<Option<DocumentId>, EngineError> {
    match extra.get("amends") {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse::<DocumentId>().ok())
            .map(Some)
            .ok_or_else(|| {
                EngineError::Command(format!("\"amends\" must be an agreement id, not {v}"))
            }),
    }
}

/// Federating with `peer` is open: no agreement is in force, or the one in force is the one
/// `amends` names (an amendment replaces it). An amendment of an agreement that is not in
/// force is refused.
pub fn check_amendable(
    tx: &impl Reads,
    me: &MeshId,
    peer: &MeshId,
    now: Timestamp,
    amends: Option<&DocumentId>,
) -> Result<(), EngineError> {
    match (in_force_with(tx, me, peer, now)?, amends) {
        (Some(a), Some(id)) if &a.agreement.agreement_id == id => Ok(()),
        (Some(a), Some(id)) => Err(EngineError::Command(format!(
            "it amends agreement {id}, which is not in force; the one in force with {peer} is {}",
            a.agreement.agreement_id
        ))),
        (Some(a), None) => Err(EngineError::AlreadyFederated {
            peer: peer.clone(),
            agreement_id: a.agreement.agreement_id,
        }),
        (None, Some(id)) => Err(EngineError::Command(format!(
            "it amends agreement {id}, which is not in force between {me} and {peer}"
        ))),
        (None, None) => Ok(()),
    }
}

/// Our drafts with `peer` that await its countersignature.
pub fn own_drafts_with(
    tx: &WriteTx<'_>,
    me: &MeshId,
    peer: &MeshId,
) -> Result<Vec<AgreementRecord>, EngineError> {
    Ok(live_with(tx, me, peer)?
        .into_iter()
        .filter(|r| {
            is_party(&r.agreement, me, peer)
                && r.status == AgreementStatus::AwaitingCountersignature
        })
        .collect())
}

/// Drafts and signs the agreement for `terms` of the negotiation `record`, and stores it as
/// awaiting the countersignature.
pub fn draft(
    ctx: &mut Ctx<'_, '_>,
    record: &ProposalRecord,
    peer: &MeshId,
    terms: &ProposedTerms,
) -> Result<FederationAgreement, EngineError> {
    let peer_key = peer_key(ctx.tx, peer)?;
    let my_key = ctx.key.public_key();
    let agreement_id = new_id(ctx, "fed-agreement")?;
    let key_of = |mesh: &MeshId| if mesh == ctx.me { my_key } else { peer_key };
    let p = &record.proposal;
    let mut agreement = FederationAgreement::draft(
        agreement_id,
        [
            (p.proposer.clone(), key_of(&p.proposer)),
            (p.target.clone(), key_of(&p.target)),
        ],
        ctx.now,
        p.proposed_trust_level,
        agreement_terms(terms),
    )?;
    if let Some(old) = amends_of(&p.extra)? {
        // Part of the signed body: whoever reads the agreement learns what it replaced.
        agreement
            .extra
            .insert("amends".into(), serde_json::Value::String(old.to_string()));
        agreement.agreement_hash = agreement.compute_hash()?;
    }
    agreement.sign_as(ctx.me, ctx.key, ctx.now)?;
    if ctx
        .tx
        .get::<AgreementRecord>(agreement.agreement_id.as_str())?
        .is_some()
    {
        return Err(EngineError::IdReused {
            what: "agreement",
            id: agreement.agreement_id,
        });
    }
    ctx.tx.put(&AgreementRecord {
        agreement: agreement.clone(),
        status: AgreementStatus::AwaitingCountersignature,
        revocation: None,
        next_verification_at: None,
        proposal: Some(negotiation::topic(record)),
        draft_deadline: Some(record.proposal.expires_at.plus_seconds(DRAFT_GRACE_SECS)),
        peer_suspension: None,
        suspension_notices: 0,
        updated_at: ctx.now,
    })?;
    Ok(agreement)
}

/// Checks the draft `from` sent with its accept of `terms` (ours), countersigns it, stores it
/// in force and sends it back. The caller records the accept and calls [`activated`].
pub fn countersign(
    ctx: &mut Ctx<'_, '_>,
    record: &ProposalRecord,
    from: &MeshId,
    terms: &ProposedTerms,
    mut draft: FederationAgreement,
) -> Result<AgreementRecord, EngineError> {
    draft.validate()?;
    let mismatch = |reason: String| EngineError::DraftMismatch {
        agreement_id: draft.agreement_id.clone(),
        reason,
    };
    let p = &record.proposal;
    if draft.parties != [p.proposer.clone(), p.target.clone()] {
        return Err(mismatch(
            "its parties are not the proposer and the target".into(),
        ));
    }
    if draft.trust_level != p.proposed_trust_level {
        return Err(mismatch(format!(
            "trust level {} instead of {}",
            draft.trust_level, p.proposed_trust_level
        )));
    }
    if draft.terms != agreement_terms(terms) {
        return Err(mismatch("its terms are not the terms accepted".into()));
    }
    let amends = amends_of(&p.extra)?;
    if amends_of(&draft.extra)? != amends {
        return Err(mismatch(
            "it does not amend what the proposal amends".into(),
        ));
    }
    let held = peer_key(ctx.tx, from)?;
    for (mesh, expected) in [(ctx.me, ctx.key.public_key()), (from, held)] {
        match draft.key_of(mesh) {
            Some(k) if *k == expected => {}
            Some(k) => {
                return Err(EngineError::KeyMismatch {
                    mesh: mesh.clone(),
                    expected: Box::new(expected),
                    found: Box::new(*k),
                });
            }
            None => return Err(mismatch(format!("it records no key for {mesh}"))),
        }
    }
    if draft.signatures.len() != 1 || !draft.signatures.contains_key(from) {
        return Err(mismatch(format!(
            "it must carry exactly {from}'s signature"
        )));
    }
    draft.verify_party(from)?;
    ctx.check_not_future("established_at", draft.established_at)?;
    if ctx
        .tx
        .get::<AgreementRecord>(draft.agreement_id.as_str())?
        .is_some()
    {
        return Err(EngineError::IdReused {
            what: "agreement",
            id: draft.agreement_id,
        });
    }
    check_amendable(ctx.tx, ctx.me, from, ctx.now, amends.as_ref())?;
    // Both sides drafted at once: the lower hash stands, on both sides.
    let ours = own_drafts_with(ctx.tx, ctx.me, from)?;
    if let Some(lower) = ours
        .iter()
        .find(|o| o.agreement.agreement_hash.to_string() < draft.agreement_hash.to_string())
    {
        return Err(EngineError::CompetingDraft {
            ours: lower.agreement.agreement_id.clone(),
            theirs: draft.agreement_id,
        });
    }
    for o in ours {
        let reason = format!(
            "superseded by {}, which has the lower hash",
            draft.agreement_id
        );
        abandon_draft(ctx, &o.agreement.agreement_id, &reason)?;
    }
    draft.sign_as(ctx.me, ctx.key, ctx.now)?;
    draft.verify_complete()?;
    let record = AgreementRecord {
        agreement: draft.clone(),
        status: AgreementStatus::Active,
        revocation: None,
        next_verification_at: Some(next_cycle(&draft, ctx.now)),
        proposal: Some(negotiation::topic(record)),
        draft_deadline: None,
        peer_suspension: None,
        suspension_notices: 0,
        updated_at: ctx.now,
    };
    ctx.tx.put(&record)?;
    let topic = draft.agreement_id.to_string();
    retry::send(ctx, from, &topic, PeerMessage::Agreement(draft))?;
    Ok(record)
}

fn next_cycle(a: &FederationAgreement, now: Timestamp) -> Timestamp {
    now.plus_seconds(i64::from(a.terms.verification_frequency.interval_secs()))
}

/// An agreement came into force: its receipt, the root exchange, the operator's event.
pub fn activated(ctx: &mut Ctx<'_, '_>, record: &AgreementRecord) -> Result<(), EngineError> {
    if let Some(old) = amends_of(&record.agreement.extra)? {
        superseded(ctx, &old, &record.agreement.agreement_id)?;
    }
    receipts::established(ctx, record)?;
    let a = &record.agreement;
    let peer = a
        .counterparty(ctx.me)
        .cloned()
        .ok_or_else(|| EngineError::OutOfOrder("we are not a party".into()))?;
    // Only witnessing levels exchange roots (at level 1 nobody witnesses, DESIGN §6).
    if a.trust_level >= TrustLevel::VERIFY {
        ctx.out.push(Output::ExchangeRoots {
            peer: peer.clone(),
            scrolls: a.terms.scrolls_shared.clone(),
        });
    }
    ctx.event(Event::Established {
        agreement_id: a.agreement_id.clone(),
        peer,
    });
    Ok(())
}

/// Our draft, countersigned by `from`, came back.
pub fn on_countersigned(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    agreement: FederationAgreement,
) -> Result<(), EngineError> {
    let id = agreement.agreement_id.clone();
    let mut record: AgreementRecord = ctx
        .tx
        .get(id.as_str())?
        .ok_or_else(|| EngineError::UnknownAgreement(id.clone()))?;
    if !is_party(&record.agreement, ctx.me, from) {
        return Err(EngineError::UnknownAgreement(id));
    }
    if !record.agreement.signatures.contains_key(ctx.me) {
        return Err(EngineError::OutOfOrder(format!(
            "agreement {id} was not drafted by us"
        )));
    }
    agreement.validate()?;
    if agreement.agreement_hash != record.agreement.agreement_hash {
        return Err(EngineError::DraftMismatch {
            agreement_id: id,
            reason: "its body differs from the draft we signed".into(),
        });
    }
    if agreement.signatures.get(ctx.me) != record.agreement.signatures.get(ctx.me) {
        return Err(EngineError::DraftMismatch {
            agreement_id: id,
            reason: "our signature on it is not the one we made".into(),
        });
    }
    agreement.verify_party(from)?;
    agreement.verify_complete()?;
    match &record.status {
        AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. } => {}
        _ if record.agreement.signatures == agreement.signatures => {
            return Err(EngineError::AlreadyReceived(format!("agreement {id}")));
        }
        other => {
            return Err(EngineError::OutOfOrder(format!(
                "agreement {id} is {other}"
            )));
        }
    }
    let amends = amends_of(&record.agreement.extra)?;
    check_amendable(ctx.tx, ctx.me, from, ctx.now, amends.as_ref())?;
    let interval_from = ctx.now;
    record.agreement = agreement;
    record.status = AgreementStatus::Active;
    record.next_verification_at = Some(next_cycle(&record.agreement, interval_from));
    record.draft_deadline = None;
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    // The accept that carried the draft is answered: stop resending it.
    if let Some(topic) = &record.proposal {
        retry::forget(ctx, from, topic)?;
    }
    activated(ctx, &record)
}

/// Our draft will not be countersigned (as far as we know).
pub fn abandon_draft(
    ctx: &mut Ctx<'_, '_>,
    agreement_id: &DocumentId,
    reason: &str,
) -> Result<(), EngineError> {
    let Some(mut record) = ctx.tx.get::<AgreementRecord>(agreement_id.as_str())? else {
        return Ok(());
    };
    if record.status != AgreementStatus::AwaitingCountersignature {
        return Ok(());
    }
    record.status = AgreementStatus::Abandoned {
        reason: reason.to_owned(),
    };
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    if let (Some(topic), Some(peer)) = (
        record.proposal.clone(),
        record.agreement.counterparty(ctx.me).cloned(),
    ) {
        retry::forget(ctx, &peer, &topic)?;
    }
    ctx.event(Event::DraftAbandoned {
        agreement_id: agreement_id.clone(),
        reason: reason.to_owned(),
    });
    Ok(())
}

/// The peer refused for good a message of ours; if it carried our draft, the draft is
/// abandoned (a valid countersignature arriving later still counts).
pub fn on_draft_refused(
    ctx: &mut Ctx<'_, '_>,
    to: &MeshId,
    message: &OutgoingMessage,
    reason: &str,
) -> Result<(), EngineError> {
    if let Ok(PeerMessage::Response {
        agreement: Some(draft),
        ..
    }) = PeerMessage::from_value(message.message.clone())
    {
        abandon_draft(
            ctx,
            &draft.agreement_id,
            &format!("{to} refused it: {reason}"),
        )?;
    }
    Ok(())
}

// ---- revocation and suspension ----

fn get_ours(ctx: &Ctx<'_, '_>, id: &DocumentId) -> Result<AgreementRecord, EngineError> {
    let record: AgreementRecord = ctx
        .tx
        .get(id.as_str())?
        .ok_or_else(|| EngineError::UnknownAgreement(id.clone()))?;
    if !record.agreement.parties.contains(ctx.me) {
        return Err(EngineError::UnknownAgreement(id.clone()));
    }
    Ok(record)
}

fn peer_of(ctx: &Ctx<'_, '_>, record: &AgreementRecord) -> Result<MeshId, EngineError> {
    record
        .agreement
        .counterparty(ctx.me)
        .cloned()
        .ok_or_else(|| EngineError::UnknownAgreement(record.agreement.agreement_id.clone()))
}

/// Revokes an agreement with `notice_days` of notice: signs the notice, sends it, and ends
/// the agreement when the notice runs out (now, for 0 days).
pub fn revoke(
    ctx: &mut Ctx<'_, '_>,
    id: &DocumentId,
    notice_days: u32,
    reason: String,
) -> Result<(), EngineError> {
    let mut record = get_ours(ctx, id)?;
    let ours_ends = ctx.now.plus_seconds(i64::from(notice_days) * 86_400);
    match &record.status {
        AgreementStatus::Active | AgreementStatus::Suspended { .. } => {}
        AgreementStatus::Revoking { effective_at } if ours_ends < *effective_at => {}
        AgreementStatus::Revoking { effective_at } => {
            return Err(EngineError::Command(format!(
                "agreement {id} is already being revoked; it ends at {effective_at}"
            )));
        }
        other => {
            return Err(EngineError::Command(format!(
                "agreement {id} is not in force: it is {other}"
            )));
        }
    }
    let peer = peer_of(ctx, &record)?;
    let mut notice = RevocationNotice {
        agreement_id: id.clone(),
        revoked_by: ctx.me.clone(),
        reason,
        notice_days,
        effective_at: ctx.now.plus_seconds(i64::from(notice_days) * 86_400),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    notice.validate()?;
    notice.sign(ctx.key)?;
    set_revocation(&mut record, notice.clone());
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    ctx.event(Event::RevocationNoticed {
        agreement_id: id.clone(),
        revoked_by: ctx.me.clone(),
        effective_at: notice.effective_at,
    });
    retry::send(
        ctx,
        &peer,
        &format!("revoke/{id}"),
        PeerMessage::Revocation(notice),
    )?;
    if ends_by(&record, ctx.now) {
        end(ctx, &mut record)?;
    }
    Ok(())
}

/// The agreement `old` was replaced by `new` (an amendment came into force): it ends now,
/// on each side by that side's own signed notice (both sides hold the new agreement, which
/// names `old`, so no notice travels), with its `fed_trust_revoked` receipt.
fn superseded(
    ctx: &mut Ctx<'_, '_>,
    old: &DocumentId,
    new: &DocumentId,
) -> Result<(), EngineError> {
    let Some(mut record) = ctx.tx.get::<AgreementRecord>(old.as_str())? else {
        return Err(EngineError::UnknownAgreement(old.clone()));
    };
    if !record.status.in_force(ctx.now) {
        // Ended meanwhile (revoked by either side): nothing left to replace.
        return Ok(());
    }
    let mut notice = RevocationNotice {
        agreement_id: old.clone(),
        revoked_by: ctx.me.clone(),
        reason: format!("amended: superseded by {new}"),
        notice_days: 0,
        effective_at: ctx.now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    notice.validate()?;
    notice.sign(ctx.key)?;
    // A suspension ends with the agreement it suspended.
    record.status = AgreementStatus::Revoking {
        effective_at: notice.effective_at,
    };
    record.revocation = Some(notice);
    end(ctx, &mut record)
}

/// Records the notice that ends the agreement. A suspended agreement stays suspended (the
/// peer cannot lift our suspension by revoking); it ends when the notice runs out all the
/// same, and resuming it before then makes it `Revoking`.
fn set_revocation(record: &mut AgreementRecord, notice: RevocationNotice) {
    if !matches!(record.status, AgreementStatus::Suspended { .. }) {
        record.status = AgreementStatus::Revoking {
            effective_at: notice.effective_at,
        };
    }
    record.revocation = Some(notice);
}

/// Whether a revocation notice has run out.
fn ends_by(record: &AgreementRecord, now: Timestamp) -> bool {
    match &record.status {
        AgreementStatus::Revoking { effective_at } => *effective_at <= now,
        AgreementStatus::Suspended { .. } => record
            .revocation
            .as_ref()
            .is_some_and(|n| n.effective_at <= now),
        _ => false,
    }
}

/// A revocation notice from the other party.
pub fn on_revocation(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    notice: RevocationNotice,
) -> Result<(), EngineError> {
    authored_by("RevocationNotice", &notice.revoked_by, from)?;
    let mut record: AgreementRecord = ctx
        .tx
        .get(notice.agreement_id.as_str())?
        .ok_or_else(|| EngineError::UnknownAgreement(notice.agreement_id.clone()))?;
    if record.revocation.as_ref() == Some(&notice) {
        return Err(EngineError::AlreadyReceived(format!(
            "revocation of {}",
            notice.agreement_id
        )));
    }
    if matches!(
        record.status,
        AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. }
    ) {
        // The peer can only revoke what it countersigned: its countersignature is on its way
        // (messages can overtake each other). Not permanent: the notice is sent again.
        return Err(EngineError::OutOfOrder(format!(
            "agreement {} is not countersigned here yet; its countersignature must arrive first",
            notice.agreement_id
        )));
    }
    if matches!(record.status, AgreementStatus::Revoked { .. })
        && record.agreement.parties.contains(from)
    {
        return on_revocation_after_end(ctx, from, record, notice);
    }
    authorize(
        ctx.me,
        from,
        ctx.config.federation_on,
        Some(&record),
        ctx.now,
        PeerRequest::RevokeAgreement,
    )?;
    verify_notice(&record, from, &notice)?;
    // Both parties may revoke; the notice that ends it first (then the lower mesh id) counts.
    if let Some(held) = &record.revocation
        && (held.effective_at, &held.revoked_by) <= (notice.effective_at, &notice.revoked_by)
    {
        return Err(EngineError::Stale(format!(
            "agreement {} already ends at {} by {}'s notice",
            notice.agreement_id, held.effective_at, held.revoked_by
        )));
    }
    // A notice cannot have been issued in the future: its end is at most `notice_days`
    // (plus clock skew) from now, and not before the agreement began. Without this a peer
    // could sign an end in year 9999 and keep the agreement "in notice" for ever.
    let latest = ctx
        .now
        .plus_seconds(i64::from(notice.notice_days) * 86_400 + ctx.config.max_clock_skew_secs);
    if notice.effective_at > latest || notice.effective_at < record.agreement.established_at {
        return Err(EngineError::ClockSkew {
            field: "effective_at",
            value: notice.effective_at,
            now: ctx.now,
            limit_secs: i64::from(notice.notice_days) * 86_400 + ctx.config.max_clock_skew_secs,
        });
    }
    set_revocation(&mut record, notice.clone());
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    ctx.event(Event::RevocationNoticed {
        agreement_id: notice.agreement_id.clone(),
        revoked_by: from.clone(),
        effective_at: notice.effective_at,
    });
    if ends_by(&record, ctx.now) {
        end(ctx, &mut record)?;
    }
    Ok(())
}

fn verify_notice(
    record: &AgreementRecord,
    from: &MeshId,
    notice: &RevocationNotice,
) -> Result<(), EngineError> {
    notice.validate()?;
    let key = *record
        .agreement
        .key_of(from)
        .ok_or_else(|| EngineError::UnknownSender(from.clone()))?;
    notice.verify(&key)?;
    Ok(())
}

/// Both parties revoked and each ended the agreement by its own notice before it saw the
/// other's. The notice that ends it first counts, so the stored end moves to it (the receipt
/// already written stays: it records what this side knew when the agreement ended here).
fn on_revocation_after_end(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    mut record: AgreementRecord,
    notice: RevocationNotice,
) -> Result<(), EngineError> {
    verify_notice(&record, from, &notice)?;
    let earlier = record.revocation.as_ref().is_none_or(|held| {
        (notice.effective_at, &notice.revoked_by) < (held.effective_at, &held.revoked_by)
    });
    if !earlier {
        return Err(super::policy::Refusal::Revoked.into());
    }
    record.status = AgreementStatus::Revoked {
        at: notice.effective_at,
    };
    record.revocation = Some(notice);
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    Ok(())
}

/// The notice ran out: the agreement ends, with its receipt.
fn end(ctx: &mut Ctx<'_, '_>, record: &mut AgreementRecord) -> Result<(), EngineError> {
    let Some(notice) = record.revocation.clone() else {
        return Err(EngineError::OutOfOrder(
            "ending an agreement without a notice".into(),
        ));
    };
    record.status = AgreementStatus::Revoked {
        at: notice.effective_at,
    };
    record.next_verification_at = None;
    record.updated_at = ctx.now;
    ctx.tx.put(record)?;
    receipts::revoked(ctx, &notice)?;
    ctx.event(Event::Revoked {
        agreement_id: notice.agreement_id,
    });
    Ok(())
}

/// Stops witnessing under an agreement (seed §6.3 step 4): on our side now, and on the other
/// party's when our signed notice arrives. Only we can lift our suspension.
pub fn suspend(
    ctx: &mut Ctx<'_, '_>,
    id: &DocumentId,
    reason: String,
    discrepancy_id: Option<DocumentId>,
) -> Result<(), EngineError> {
    let record = get_ours(ctx, id)?;
    if !matches!(
        record.status,
        AgreementStatus::Active | AgreementStatus::Revoking { .. }
    ) {
        return Err(EngineError::Command(format!(
            "only an agreement in force can be suspended; {id} is {}",
            record.status
        )));
    }
    let peer = peer_of(ctx, &record)?;
    if let Some(d) = &discrepancy_id {
        super::resolution::check_names_finding(ctx, d, &peer)?;
    }
    give_notice(
        ctx,
        record,
        SuspensionAction::Suspend,
        reason,
        discrepancy_id,
    )
}

/// Ends our suspension (not the other party's: only it can lift its own).
pub fn resume(ctx: &mut Ctx<'_, '_>, id: &DocumentId, reason: String) -> Result<(), EngineError> {
    let record = get_ours(ctx, id)?;
    match &record.status {
        AgreementStatus::Suspended { by: Some(by), .. } if by != ctx.me => {
            return Err(EngineError::Command(format!(
                "agreement {id} was suspended by {by}; only {by} can resume it (or revoke it)"
            )));
        }
        AgreementStatus::Suspended { .. } => {}
        other => {
            return Err(EngineError::Command(format!(
                "agreement {id} is not suspended: it is {other}"
            )));
        }
    }
    if !ctx.config.federation_on {
        return Err(super::policy::Refusal::FederationOff.into());
    }
    give_notice(ctx, record, SuspensionAction::Resume, reason, None)
}

/// Our side of a suspension or resumption: the status, the signed notice in our
/// `fed_trust_suspended`/`_resumed`, and the notice on its way to the other party.
fn give_notice(
    ctx: &mut Ctx<'_, '_>,
    mut record: AgreementRecord,
    action: SuspensionAction,
    reason: String,
    discrepancy_id: Option<DocumentId>,
) -> Result<(), EngineError> {
    let peer = peer_of(ctx, &record)?;
    let id = record.agreement.agreement_id.clone();
    record.suspension_notices += 1;
    let mut notice = SuspensionNotice {
        agreement_id: id.clone(),
        suspended_by: ctx.me.clone(),
        action,
        sequence: record.suspension_notices,
        reason,
        discrepancy_id,
        timestamp: ctx.now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    notice.validate()?;
    notice.sign(ctx.key)?;
    record.apply_suspension(action, ctx.me, ctx.me, &notice.reason, ctx.now);
    ctx.tx.put(&record)?;
    receipts::suspension(ctx, &peer, &notice)?;
    ctx.event(Event::Suspension {
        agreement_id: id.clone(),
        suspended: action == SuspensionAction::Suspend,
        by: ctx.me.clone(),
    });
    retry::send(
        ctx,
        &peer,
        &format!("suspension/{id}"),
        PeerMessage::Suspension(notice),
    )
}

/// The other party's signed suspension or resumption: applied if it changes anything (a
/// suspension stops an agreement in force; a resumption lifts only its own suspension), and
/// recorded either way.
pub fn on_suspension(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    notice: SuspensionNotice,
) -> Result<(), EngineError> {
    notice.validate()?;
    authored_by("SuspensionNotice", &notice.suspended_by, from)?;
    let mut record: AgreementRecord = ctx
        .tx
        .get(notice.agreement_id.as_str())?
        .ok_or_else(|| EngineError::UnknownAgreement(notice.agreement_id.clone()))?;
    if !is_party(&record.agreement, ctx.me, from) {
        return Err(EngineError::UnknownAgreement(notice.agreement_id.clone()));
    }
    if let Some(held) = &record.peer_suspension {
        if held == &notice {
            return Err(EngineError::AlreadyReceived(format!(
                "{} notice of {}",
                notice.action, notice.agreement_id
            )));
        }
        if held.sequence >= notice.sequence {
            return Err(EngineError::Stale(format!(
                "{from} sent a later notice about {} (number {}, {} at {})",
                notice.agreement_id, held.sequence, held.action, held.timestamp
            )));
        }
    }
    match record.status {
        AgreementStatus::Active
        | AgreementStatus::Revoking { .. }
        | AgreementStatus::Suspended { .. } => {}
        AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. } => {
            return Err(EngineError::OutOfOrder(format!(
                "agreement {} is not countersigned here yet",
                notice.agreement_id
            )));
        }
        AgreementStatus::Revoked { .. } => {
            return Err(EngineError::Closed(format!(
                "agreement {} has ended",
                notice.agreement_id
            )));
        }
    }
    let key = peer_key(ctx.tx, from)?;
    notice.verify(&key)?;
    ctx.check_not_future("timestamp", notice.timestamp)?;
    let changed = record.apply_suspension(notice.action, from, ctx.me, &notice.reason, ctx.now);
    record.peer_suspension = Some(notice.clone());
    ctx.tx.put(&record)?;
    receipts::suspension(ctx, from, &notice)?;
    if changed {
        ctx.event(Event::Suspension {
            agreement_id: notice.agreement_id.clone(),
            suspended: notice.action == SuspensionAction::Suspend,
            by: from.clone(),
        });
    }
    Ok(())
}

// ---- time ----

/// Revocations take effect, stale drafts are abandoned, verification cycles fall due. Only
/// agreements with a deadline are listed in the index, so this costs what is live.
pub fn tick(ctx: &mut Ctx<'_, '_>) -> Result<(), EngineError> {
    for (key, due) in ctx.tx.index::<AgreementRecord>("")? {
        if due > ctx.now.unix() {
            continue;
        }
        let Some(mut record) = agreement_id_of_index(&key)
            .map(|id| ctx.tx.get::<AgreementRecord>(id))
            .transpose()?
            .flatten()
        else {
            // An index entry without its record would keep the timer due for ever.
            ctx.tx.remove_index_entry::<AgreementRecord>(&key)?;
            continue;
        };
        if ends_by(&record, ctx.now) {
            end(ctx, &mut record)?;
            continue;
        }
        match record.status {
            AgreementStatus::AwaitingCountersignature | AgreementStatus::Abandoned { .. } => {
                draft_expired(ctx, record)?;
            }
            AgreementStatus::Active | AgreementStatus::Revoking { .. } => {
                let a = &record.agreement;
                let peer = peer_of(ctx, &record)?;
                if a.trust_level >= TrustLevel::VERIFY {
                    ctx.out.push(Output::VerificationDue {
                        agreement_id: a.agreement_id.clone(),
                        peer,
                        scrolls: a.terms.scrolls_shared.clone(),
                    });
                }
                // Cycles missed while down are not replayed one by one.
                record.next_verification_at = Some(next_cycle(a, ctx.now));
                ctx.tx.put(&record)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Our draft was not countersigned by its deadline (the proposal's expiry plus the grace):
/// it is abandoned and its negotiation, still accepted on our side, ends as expired. A valid
/// countersignature arriving later still brings it into force (a signature is a commitment).
fn draft_expired(ctx: &mut Ctx<'_, '_>, record: AgreementRecord) -> Result<(), EngineError> {
    let id = record.agreement.agreement_id.clone();
    abandon_draft(ctx, &id, "not countersigned before its proposal expired")?;
    if let Some(key) = &record.proposal
        && let Some(mut p) = ctx.tx.get::<ProposalRecord>(key)?
        && matches!(p.status, ProposalStatus::Accepted { .. })
    {
        negotiation::expire(ctx, &mut p, Some("not countersigned in time".into()))?;
    }
    if let Some(mut done) = ctx.tx.get::<AgreementRecord>(id.as_str())? {
        done.draft_deadline = None;
        ctx.tx.put(&done)?;
    }
    Ok(())
}

/// When agreements next need the engine.
pub fn deadlines(tx: &ReadTx) -> Result<Vec<Timestamp>, StoreError> {
    Ok(tx
        .index::<AgreementRecord>("")?
        .into_iter()
        .filter_map(|(_, t)| Timestamp::from_unix(t))
        .collect())
}
