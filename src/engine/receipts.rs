//! Federation receipts, queued in the transaction of the state change they record.

use vm_receipts::documents::{
    Document, RevocationNotice, SuspensionAction, SuspensionNotice, TrustProposal,
};
use vm_receipts::jcs;
use vm_receipts::receipts::{
    FederationReceipt, ProposalEvent, TrustEstablishedReceipt, TrustProposalReceipt,
    TrustRevokedReceipt, TrustSuspensionReceipt,
};
use vm_receipts::{Blake3Hash, MeshId, ScrollName};
use vm_storage::{AgreementRecord, StoreError};

use super::{Ctx, EngineError, NEXT_SEQUENCE, Output};

/// Queues `receipt` under the next Federation scroll sequence.
pub fn queue(ctx: &mut Ctx<'_, '_>, receipt: FederationReceipt) -> Result<(), EngineError> {
    let object = receipt.to_object()?;
    let bytes = jcs::to_vec(&serde_json::Value::Object(object.clone())).map_err(|source| {
        vm_receipts::documents::DocumentError::Json {
            document: FederationReceipt::NAME,
            source,
        }
    })?;
    let sequence = ctx
        .tx
        .meta(NEXT_SEQUENCE)?
        .ok_or_else(|| StoreError::Database("the receipt sequence is not initialised".into()))?;
    ctx.tx.queue_receipt(sequence, &bytes)?;
    ctx.tx.set_meta(NEXT_SEQUENCE, sequence + 1)?;
    ctx.out.push(Output::Receipt {
        sequence,
        receipt: object,
    });
    Ok(())
}

/// The scroll holds `size` receipts: forget the queued ones below it.
pub fn stored(ctx: &mut Ctx<'_, '_>, size: u64) -> Result<(), EngineError> {
    let next = ctx.tx.meta(NEXT_SEQUENCE)?.unwrap_or(0);
    if size > next {
        return Err(EngineError::Command(format!(
            "the Federation scroll holds {size} receipts, but the state database knows of only \
             {next}: it is older than the scroll (restored from a backup, or rolled back by a \
             repair), or something else appends to the scroll. Stop the node and run \
             `vm-federation state rebuild` to rebuild the state from the scroll"
        )));
    }
    ctx.tx.receipts_stored_below(size)?;
    Ok(())
}

/// A `fed_trust_proposal` receipt for `event` on `proposal`, caused by a document with hash
/// `document_hash`, with the scrolls and level on the table.
pub fn proposal_event(
    ctx: &mut Ctx<'_, '_>,
    proposal: &TrustProposal,
    event: ProposalEvent,
    scrolls: &[ScrollName],
    document_hash: Blake3Hash,
    reason: Option<String>,
) -> Result<(), EngineError> {
    let receipt = FederationReceipt::TrustProposal(TrustProposalReceipt {
        proposal_id: proposal.proposal_id.clone(),
        proposer: proposal.proposer.clone(),
        target: proposal.target.clone(),
        event,
        trust_level: proposal.proposed_trust_level,
        scrolls: scrolls.to_vec(),
        document_hash,
        reason,
        timestamp: ctx.now,
        tags: vec![
            "federation".into(),
            "proposal".into(),
            event_tag(event).into(),
        ],
        root_hash: None,
        extra: Default::default(),
    });
    queue(ctx, receipt)?;
    let peer = if &proposal.proposer == ctx.me {
        proposal.target.clone()
    } else {
        proposal.proposer.clone()
    };
    ctx.event(super::Event::Proposal {
        proposal_id: proposal.proposal_id.clone(),
        peer,
        event,
    });
    Ok(())
}

fn event_tag(event: ProposalEvent) -> &'static str {
    match event {
        ProposalEvent::Sent => "sent",
        ProposalEvent::Received => "received",
        ProposalEvent::Countered => "countered",
        ProposalEvent::Accepted => "accepted",
        ProposalEvent::Rejected => "rejected",
        ProposalEvent::Withdrawn => "withdrawn",
        ProposalEvent::Expired => "expired",
    }
}

/// `fed_trust_established` for an agreement now in force.
pub fn established(ctx: &mut Ctx<'_, '_>, record: &AgreementRecord) -> Result<(), EngineError> {
    let a = &record.agreement;
    queue(
        ctx,
        FederationReceipt::TrustEstablished(TrustEstablishedReceipt {
            agreement_id: a.agreement_id.clone(),
            parties: a.parties.clone(),
            trust_level: a.trust_level,
            scrolls_shared: a.terms.scrolls_shared.clone(),
            agreement_hash: a.agreement_hash,
            agreement: Some(a.clone()),
            timestamp: ctx.now,
            tags: vec!["federation".into(), "trust".into(), "established".into()],
            root_hash: None,
            extra: Default::default(),
        }),
    )
}

/// `fed_trust_revoked` for an agreement that ended, carrying the signed notice that ended it.
pub fn revoked(ctx: &mut Ctx<'_, '_>, notice: &RevocationNotice) -> Result<(), EngineError> {
    queue(
        ctx,
        FederationReceipt::TrustRevoked(TrustRevokedReceipt {
            agreement_id: notice.agreement_id.clone(),
            revoked_by: notice.revoked_by.clone(),
            reason: notice.reason.clone(),
            effective_at: notice.effective_at,
            notice: Some(notice.clone()),
            timestamp: ctx.now,
            tags: vec!["federation".into(), "trust".into(), "revoked".into()],
            root_hash: None,
            extra: Default::default(),
        }),
    )
}

/// `fed_trust_suspended` or `fed_trust_resumed`.
pub fn suspension(
    ctx: &mut Ctx<'_, '_>,
    peer: &MeshId,
    notice: &SuspensionNotice,
) -> Result<(), EngineError> {
    let suspended = notice.action == SuspensionAction::Suspend;
    let body = TrustSuspensionReceipt {
        agreement_id: notice.agreement_id.clone(),
        peer: peer.clone(),
        reason: notice.reason.clone(),
        discrepancy_id: notice.discrepancy_id.clone(),
        timestamp: ctx.now,
        notice: Some(notice.clone()),
        tags: vec![
            "federation".into(),
            "trust".into(),
            if suspended { "suspended" } else { "resumed" }.into(),
        ],
        root_hash: None,
        extra: Default::default(),
    };
    queue(
        ctx,
        if suspended {
            FederationReceipt::TrustSuspended(body)
        } else {
            FederationReceipt::TrustResumed(body)
        },
    )
}
