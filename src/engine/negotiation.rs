//! Proposals and their negotiation (seed §3.2–§3.3, DESIGN §5).
//!
//! A negotiation is a thread: the proposal, then signed responses. Its **tip** is the
//! proposal or the last counter: the terms on the table, offered by the tip's author. Only
//! the other party may accept or counter them (turns alternate, so two crossing offers are
//! impossible); either party may reject, the proposer may withdraw. Every response names the
//! tip it answers (`responds_to`), so an answer to terms that are no longer on the table is
//! refused instead of being applied to the wrong ones.

use vm_receipts::documents::{
    AgreementTerms, Document, ProposalResponse, ProposedTerms, ResponseType, SignatureField,
    SignedDocument, TrustLevel, TrustProposal,
};
use vm_receipts::receipts::ProposalEvent;
use vm_receipts::{Blake3Hash, MeshId, Timestamp};
use vm_storage::records::{proposal_key, proposal_key_of_index};
use vm_storage::{Direction, ProposalRecord, ProposalStatus, ReadTx, StoreError, WriteTx};

use super::messages::document_hash;
use super::policy::{PeerRequest, authorize};
use super::{
    Ctx, EngineError, PeerMessage, ProposalRef, agreements, authored_by, new_id, peer_key,
    receipts, retry,
};

/// The shortest life a proposal to us may have: short-lived proposals would let a peer
/// churn through the open-proposal limit, leaving records and receipts behind.
pub const MIN_PROPOSAL_TTL_SECS: i64 = 3600;

/// The terms on the table and who offered them.
pub struct Tip<'a> {
    /// Who offered them.
    pub author: &'a MeshId,
    /// The terms.
    pub terms: &'a ProposedTerms,
    /// The hash of the document that offered them.
    pub hash: Blake3Hash,
}

/// The tip of a negotiation that is still open.
pub fn tip(record: &ProposalRecord) -> Result<Tip<'_>, EngineError> {
    match record.history.last() {
        Some(last) => {
            let terms = last.counter_terms.as_ref().ok_or_else(|| {
                EngineError::OutOfOrder(format!(
                    "proposal {} is closed (its last answer was {})",
                    record.proposal.proposal_id, last.response_type
                ))
            })?;
            Ok(Tip {
                author: &last.responder,
                terms,
                hash: document_hash(last)?,
            })
        }
        None => Ok(Tip {
            author: &record.proposal.proposer,
            terms: &record.proposal.proposed_terms,
            hash: document_hash(&record.proposal)?,
        }),
    }
}

/// The other party of a negotiation.
pub fn other_party<'a>(record: &'a ProposalRecord, me: &MeshId) -> &'a MeshId {
    if &record.proposal.proposer == me {
        &record.proposal.target
    } else {
        &record.proposal.proposer
    }
}

/// The retransmission topic of a negotiation.
pub fn topic(record: &ProposalRecord) -> String {
    proposal_key(&record.proposal.proposer, &record.proposal.proposal_id)
}

/// The agreement terms that accepting `terms` commits both parties to. Extra proposal
/// terms (`dispute_resolution`, `additional_requirement`, …) carry over as they are.
pub fn agreement_terms(terms: &ProposedTerms) -> AgreementTerms {
    let mut extra = terms.extra.clone();
    let dispute_resolution = match extra.remove("dispute_resolution") {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => {
            extra.insert("dispute_resolution".into(), other);
            None
        }
        None => None,
    };
    AgreementTerms {
        scrolls_shared: terms.scrolls_to_share.clone(),
        verification_frequency: terms.verification_frequency,
        retention_period_days: terms.retention_period_days,
        data_jurisdiction: terms.data_jurisdiction.clone(),
        audit_rights: terms.audit_rights,
        dispute_resolution,
        extra,
    }
}

fn expired(record: &ProposalRecord, now: Timestamp) -> bool {
    now >= record.proposal.expires_at
}

fn expired_error(record: &ProposalRecord) -> EngineError {
    EngineError::Expired {
        id: record.proposal.proposal_id.clone(),
        expires_at: record.proposal.expires_at,
    }
}

/// Finds the proposal an operator means.
fn find(tx: &WriteTx<'_>, which: &ProposalRef) -> Result<ProposalRecord, EngineError> {
    if let Some(proposer) = &which.proposer {
        return tx
            .get::<ProposalRecord>(&proposal_key(proposer, &which.id))?
            .ok_or_else(|| EngineError::UnknownProposal(which.id.to_string()));
    }
    let mut matches: Vec<ProposalRecord> = tx
        .all::<ProposalRecord>()?
        .into_iter()
        .filter(|r| {
            r.proposal.proposal_id == which.id
                && which
                    .proposer
                    .as_ref()
                    .is_none_or(|p| p == &r.proposal.proposer)
        })
        .collect();
    match matches.len() {
        0 => Err(EngineError::UnknownProposal(which.id.to_string())),
        1 => Ok(matches.remove(0)),
        _ => Err(EngineError::Command(format!(
            "{} names proposals of several proposers; say which proposer",
            which.id
        ))),
    }
}

fn require_open(record: &ProposalRecord) -> Result<(), EngineError> {
    match &record.status {
        ProposalStatus::Open => Ok(()),
        other => Err(EngineError::Closed(format!(
            "proposal {} is {}",
            record.proposal.proposal_id,
            status_name(other)
        ))),
    }
}

/// The status in words.
pub fn status_name(status: &ProposalStatus) -> &'static str {
    match status {
        ProposalStatus::Open => "open",
        ProposalStatus::Accepted { .. } => "accepted",
        ProposalStatus::Rejected { .. } => "rejected",
        ProposalStatus::Withdrawn => "withdrawn",
        ProposalStatus::Expired => "expired",
    }
}

fn respond(
    ctx: &mut Ctx<'_, '_>,
    record: &ProposalRecord,
    response_type: ResponseType,
    reason: Option<String>,
    counter_terms: Option<ProposedTerms>,
) -> Result<ProposalResponse, EngineError> {
    let mut response = ProposalResponse {
        proposal_id: record.proposal.proposal_id.clone(),
        response_type,
        responder: ctx.me.clone(),
        responded_at: ctx.now,
        responds_to: Some(tip_hash(record)?),
        reason,
        counter_terms,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    response.validate()?;
    response.sign(ctx.key)?;
    Ok(response)
}

/// The hash of the last document of the thread (the tip while open).
fn tip_hash(record: &ProposalRecord) -> Result<Blake3Hash, EngineError> {
    Ok(match record.history.last() {
        Some(last) => document_hash(last)?,
        None => document_hash(&record.proposal)?,
    })
}

// ---- operator commands ----

/// Proposes federation to `target` (`amends`: to replace the agreement in force with it).
pub fn propose(
    ctx: &mut Ctx<'_, '_>,
    target: MeshId,
    trust_level: TrustLevel,
    terms: ProposedTerms,
    amends: Option<&vm_receipts::DocumentId>,
) -> Result<(), EngineError> {
    if &target == ctx.me {
        return Err(EngineError::Command(
            "a mesh cannot propose to itself".into(),
        ));
    }
    peer_key(ctx.tx, &target).map_err(|_| {
        EngineError::Command(format!(
            "no key for {target}: discover it or add it by hand first"
        ))
    })?;
    agreements::check_amendable(ctx.tx, ctx.me, &target, ctx.now, amends)?;
    let mut extra = vm_receipts::documents::Extra::default();
    if let Some(old) = amends {
        extra.insert("amends".into(), serde_json::Value::String(old.to_string()));
    }
    let mut proposal = TrustProposal {
        proposal_id: new_id(ctx, "fed-proposal")?,
        proposer: ctx.me.clone(),
        target: target.clone(),
        proposed_at: ctx.now,
        expires_at: ctx.now.plus_seconds(ctx.config.proposal_ttl_secs),
        proposed_trust_level: trust_level,
        proposed_terms: terms,
        proposer_attestations: None,
        signature: SignatureField::unsigned(),
        extra,
    };
    proposal.validate()?;
    proposal.sign(ctx.key)?;
    if ctx
        .tx
        .get::<ProposalRecord>(&proposal_key(ctx.me, &proposal.proposal_id))?
        .is_some()
    {
        return Err(EngineError::IdReused {
            what: "proposal",
            id: proposal.proposal_id,
        });
    }
    let record = ProposalRecord {
        proposal: proposal.clone(),
        direction: Direction::Outbound,
        history: Vec::new(),
        status: ProposalStatus::Open,
        updated_at: ctx.now,
    };
    ctx.tx.put(&record)?;
    let hash = document_hash(&proposal)?;
    let scrolls = proposal.proposed_terms.scrolls_to_share.clone();
    receipts::proposal_event(ctx, &proposal, ProposalEvent::Sent, &scrolls, hash, None)?;
    retry::send(
        ctx,
        &target,
        &topic(&record),
        PeerMessage::Proposal(proposal),
    )
}

/// Offers other terms.
pub fn counter(
    ctx: &mut Ctx<'_, '_>,
    which: &ProposalRef,
    terms: ProposedTerms,
) -> Result<(), EngineError> {
    let mut record = find(ctx.tx, which)?;
    require_open(&record)?;
    if expired(&record, ctx.now) {
        return Err(expired_error(&record));
    }
    let peer = other_party(&record, ctx.me).clone();
    if tip(&record)?.author == ctx.me {
        return Err(EngineError::Command(format!(
            "the terms on the table are ours; waiting for {peer} to answer"
        )));
    }
    let response = respond(
        ctx,
        &record,
        ResponseType::Counter,
        None,
        Some(terms.clone()),
    )?;
    let hash = document_hash(&response)?;
    record.history.push(response.clone());
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    let proposal = record.proposal.clone();
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Countered,
        &terms.scrolls_to_share,
        hash,
        None,
    )?;
    send_response(ctx, &record, &peer, response, None)
}

fn send_response(
    ctx: &mut Ctx<'_, '_>,
    record: &ProposalRecord,
    peer: &MeshId,
    response: ProposalResponse,
    agreement: Option<vm_receipts::documents::FederationAgreement>,
) -> Result<(), EngineError> {
    retry::send(
        ctx,
        peer,
        &topic(record),
        PeerMessage::Response {
            response,
            agreement,
        },
    )
}

/// Accepts the terms on the table: drafts and signs the agreement and sends both.
pub fn accept(ctx: &mut Ctx<'_, '_>, which: &ProposalRef) -> Result<(), EngineError> {
    let mut record = find(ctx.tx, which)?;
    require_open(&record)?;
    if expired(&record, ctx.now) {
        return Err(expired_error(&record));
    }
    let peer = other_party(&record, ctx.me).clone();
    let terms = {
        let tip = tip(&record)?;
        if tip.author == ctx.me {
            return Err(EngineError::Command(format!(
                "the terms on the table are ours; only {peer} can accept them"
            )));
        }
        tip.terms.clone()
    };
    let amends = agreements::amends_of(&record.proposal.extra)?;
    agreements::check_amendable(ctx.tx, ctx.me, &peer, ctx.now, amends.as_ref())?;
    if let Some(draft) = agreements::own_drafts_with(ctx.tx, ctx.me, &peer)?.first() {
        return Err(EngineError::Command(format!(
            "our draft {} with {peer} awaits its countersignature; it must fail first",
            draft.agreement.agreement_id
        )));
    }
    let response = respond(ctx, &record, ResponseType::Accept, None, None)?;
    let hash = document_hash(&response)?;
    let draft = agreements::draft(ctx, &record, &peer, &terms)?;
    record.history.push(response.clone());
    record.status = ProposalStatus::Accepted {
        agreement_id: Some(draft.agreement_id.clone()),
    };
    record.updated_at = ctx.now;
    ctx.tx.put(&record)?;
    let proposal = record.proposal.clone();
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Accepted,
        &terms.scrolls_to_share,
        hash,
        None,
    )?;
    send_response(ctx, &record, &peer, response, Some(draft))
}

/// Rejects the terms on the table (either party, while open).
pub fn reject(
    ctx: &mut Ctx<'_, '_>,
    which: &ProposalRef,
    reason: String,
) -> Result<(), EngineError> {
    let mut record = find(ctx.tx, which)?;
    require_open(&record)?;
    let peer = other_party(&record, ctx.me).clone();
    let response = respond(
        ctx,
        &record,
        ResponseType::Reject,
        Some(reason.clone()),
        None,
    )?;
    close(
        ctx,
        &mut record,
        &response,
        ProposalStatus::Rejected {
            reason: reason.clone(),
        },
    )?;
    let proposal = record.proposal.clone();
    let scrolls = tip_scrolls(&record);
    let hash = document_hash(&response)?;
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Rejected,
        &scrolls,
        hash,
        Some(reason),
    )?;
    send_response(ctx, &record, &peer, response, None)
}

/// Takes back our own proposal (while open).
pub fn withdraw(
    ctx: &mut Ctx<'_, '_>,
    which: &ProposalRef,
    reason: Option<String>,
) -> Result<(), EngineError> {
    let mut record = find(ctx.tx, which)?;
    if &record.proposal.proposer != ctx.me {
        return Err(EngineError::Command(
            "only the proposer withdraws a proposal; reject it instead".into(),
        ));
    }
    require_open(&record)?;
    let peer = other_party(&record, ctx.me).clone();
    let response = respond(ctx, &record, ResponseType::Withdraw, reason.clone(), None)?;
    close(ctx, &mut record, &response, ProposalStatus::Withdrawn)?;
    let proposal = record.proposal.clone();
    let scrolls = tip_scrolls(&record);
    let hash = document_hash(&response)?;
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Withdrawn,
        &scrolls,
        hash,
        reason,
    )?;
    send_response(ctx, &record, &peer, response, None)
}

fn close(
    ctx: &mut Ctx<'_, '_>,
    record: &mut ProposalRecord,
    response: &ProposalResponse,
    status: ProposalStatus,
) -> Result<(), EngineError> {
    record.history.push(response.clone());
    record.status = status;
    record.updated_at = ctx.now;
    ctx.tx.put(record)?;
    Ok(())
}

/// The scrolls of the last terms offered (for receipts after the thread closed).
fn tip_scrolls(record: &ProposalRecord) -> Vec<vm_receipts::ScrollName> {
    record
        .history
        .iter()
        .rev()
        .find_map(|r| r.counter_terms.as_ref())
        .unwrap_or(&record.proposal.proposed_terms)
        .scrolls_to_share
        .clone()
}

// ---- inbound ----

/// A proposal from `from`.
pub fn on_proposal(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    proposal: TrustProposal,
) -> Result<(), EngineError> {
    authorize(
        ctx.me,
        from,
        ctx.config.federation_on,
        None,
        ctx.now,
        PeerRequest::Propose,
    )?;
    authored_by("TrustProposal", &proposal.proposer, from)?;
    if &proposal.target != ctx.me {
        return Err(EngineError::NotForUs {
            document: "TrustProposal",
            to: proposal.target,
        });
    }
    let key = peer_key(ctx.tx, from)?;
    proposal.validate()?;
    proposal.verify(&key)?;
    let hash = document_hash(&proposal)?;
    let store_key = proposal_key(from, &proposal.proposal_id);
    if let Some(held) = ctx.tx.get::<ProposalRecord>(&store_key)? {
        return Err(if document_hash(&held.proposal)? == hash {
            EngineError::AlreadyReceived(format!("proposal {}", proposal.proposal_id))
        } else {
            EngineError::IdReused {
                what: "proposal",
                id: proposal.proposal_id,
            }
        });
    }
    ctx.check_not_future("proposed_at", proposal.proposed_at)?;
    if proposal.expires_at.seconds_since(proposal.proposed_at) < MIN_PROPOSAL_TTL_SECS {
        return Err(EngineError::PolicyDeclined(format!(
            "a proposal must stay open at least {MIN_PROPOSAL_TTL_SECS} s"
        )));
    }
    if ctx.now >= proposal.expires_at {
        return Err(EngineError::Expired {
            id: proposal.proposal_id,
            expires_at: proposal.expires_at,
        });
    }
    let policy = &ctx.config.trust_policy;
    if !policy.accepts_proposals {
        return Err(EngineError::PolicyDeclined(
            "this mesh takes no proposals".into(),
        ));
    }
    if proposal.proposed_trust_level < policy.min_trust_level {
        return Err(EngineError::PolicyDeclined(format!(
            "trust level {} is below our minimum {}",
            proposal.proposed_trust_level, policy.min_trust_level
        )));
    }
    let amends = agreements::amends_of(&proposal.extra)?;
    agreements::check_amendable(ctx.tx, ctx.me, from, ctx.now, amends.as_ref())?;
    // The open-proposal index is keyed by peer, and the count stops at the limit.
    let limit = ctx.config.max_open_proposals_per_peer;
    let open = ctx
        .tx
        .count_index::<ProposalRecord>(&format!("{from}/"), limit)?;
    if open >= limit {
        return Err(EngineError::TooManyProposals {
            peer: from.clone(),
            open,
            limit,
        });
    }
    let record = ProposalRecord {
        proposal: proposal.clone(),
        direction: Direction::Inbound,
        history: Vec::new(),
        status: ProposalStatus::Open,
        updated_at: ctx.now,
    };
    ctx.tx.put(&record)?;
    let scrolls = proposal.proposed_terms.scrolls_to_share.clone();
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Received,
        &scrolls,
        hash,
        None,
    )
}

/// An answer from `from` to a proposal between us.
pub fn on_response(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    response: ProposalResponse,
    agreement: Option<vm_receipts::documents::FederationAgreement>,
) -> Result<(), EngineError> {
    authorize(
        ctx.me,
        from,
        ctx.config.federation_on,
        None,
        ctx.now,
        PeerRequest::RespondToProposal,
    )?;
    authored_by("ProposalResponse", &response.responder, from)?;
    // Proposal ids are unique per proposer only: if both of us used this id, the response
    // belongs to the thread holding the document it answers.
    let candidates: Vec<ProposalRecord> = [ctx.me, from]
        .into_iter()
        .map(|proposer| {
            ctx.tx
                .get::<ProposalRecord>(&proposal_key(proposer, &response.proposal_id))
        })
        .collect::<Result<Vec<_>, StoreError>>()?
        .into_iter()
        .flatten()
        .filter(|r| other_party(r, ctx.me) == from)
        .collect();
    let mut chosen = None;
    for r in &candidates {
        let answers_it = match response.responds_to {
            Some(h) => record_thread(r)?.iter().any(|(_, d)| *d == h),
            None => false,
        };
        if answers_it {
            chosen = Some(r.clone());
            break;
        }
    }
    let mut record = chosen
        .or_else(|| candidates.into_iter().next())
        .ok_or_else(|| {
            EngineError::UnknownProposal(format!("{} between us and {from}", response.proposal_id))
        })?;
    let key = peer_key(ctx.tx, from)?;
    response.validate()?;
    response.verify(&key)?;
    let hash = document_hash(&response)?;
    if record_thread(&record)?.iter().any(|(_, h)| *h == hash) {
        return Err(EngineError::AlreadyReceived(format!(
            "{} on proposal {}",
            response.response_type, response.proposal_id
        )));
    }
    if agreement.is_some() && response.response_type != ResponseType::Accept {
        return Err(EngineError::OutOfOrder(
            "only an accept carries an agreement".into(),
        ));
    }
    ctx.check_not_future("responded_at", response.responded_at)?;
    if response.response_type == ResponseType::Withdraw {
        return on_withdraw(ctx, from, record, response, hash);
    }
    if response.response_type == ResponseType::Reject
        && crossed_our_accept(ctx, &record, &response)?
    {
        return on_reject_after_accept(ctx, from, record, response, hash);
    }
    require_open(&record)?;
    let Some(answers) = response.responds_to else {
        return Err(EngineError::OutOfOrder(
            "the response does not say which terms it answers (responds_to)".into(),
        ));
    };
    let (tip_author, tip_terms) = {
        let tip = tip(&record)?;
        if tip.hash != answers {
            return Err(EngineError::OutOfOrder(format!(
                "the response answers {answers}, but the terms on the table are {}",
                tip.hash
            )));
        }
        (tip.author.clone(), tip.terms.clone())
    };
    let proposal = record.proposal.clone();
    let topic = topic(&record);
    match response.response_type {
        ResponseType::Reject => {
            let reason = response.reason.clone();
            let scrolls = tip_terms.scrolls_to_share.clone();
            close(
                ctx,
                &mut record,
                &response,
                ProposalStatus::Rejected {
                    reason: reason.clone().unwrap_or_default(),
                },
            )?;
            retry::forget(ctx, from, &topic)?;
            receipts::proposal_event(
                ctx,
                &proposal,
                ProposalEvent::Rejected,
                &scrolls,
                hash,
                reason,
            )
        }
        ResponseType::Counter | ResponseType::Accept => {
            if &tip_author != ctx.me {
                return Err(EngineError::OutOfOrder(format!(
                    "the terms on the table are {from}'s own; it cannot answer them"
                )));
            }
            if expired(&record, ctx.now) {
                return Err(expired_error(&record));
            }
            if response.response_type == ResponseType::Counter {
                let scrolls = response
                    .counter_terms
                    .as_ref()
                    .map(|t| t.scrolls_to_share.clone())
                    .unwrap_or_default();
                record.history.push(response);
                record.updated_at = ctx.now;
                ctx.tx.put(&record)?;
                retry::forget(ctx, from, &topic)?;
                return receipts::proposal_event(
                    ctx,
                    &proposal,
                    ProposalEvent::Countered,
                    &scrolls,
                    hash,
                    None,
                );
            }
            let Some(draft) = agreement else {
                return Err(EngineError::OutOfOrder(
                    "an accept must carry the agreement its sender drafted".into(),
                ));
            };
            let agreement_id = draft.agreement_id.clone();
            let established = agreements::countersign(ctx, &record, from, &tip_terms, draft)?;
            close(
                ctx,
                &mut record,
                &response,
                ProposalStatus::Accepted {
                    agreement_id: Some(agreement_id),
                },
            )?;
            retry::forget(ctx, from, &topic)?;
            receipts::proposal_event(
                ctx,
                &proposal,
                ProposalEvent::Accepted,
                &tip_terms.scrolls_to_share,
                hash,
                None,
            )?;
            agreements::activated(ctx, &established)
        }
        ResponseType::Withdraw => Ok(()),
    }
}

/// Whether `answer` (a reject or a withdrawal) answers the terms we accepted, crossing our
/// accept on the way, while our draft is not in force (sent before the peer saw our accept).
fn crossed_our_accept(
    ctx: &Ctx<'_, '_>,
    record: &ProposalRecord,
    answer: &ProposalResponse,
) -> Result<bool, EngineError> {
    let ProposalStatus::Accepted {
        agreement_id: Some(id),
    } = &record.status
    else {
        return Ok(false);
    };
    let thread = record_thread(record)?;
    let [.., before, ours] = thread.as_slice() else {
        return Ok(false);
    };
    let draft_pending = ctx
        .tx
        .get::<vm_storage::AgreementRecord>(id.as_str())?
        .is_some_and(|a| {
            matches!(
                a.status,
                vm_storage::AgreementStatus::AwaitingCountersignature
                    | vm_storage::AgreementStatus::Abandoned { .. }
            )
        });
    Ok(draft_pending && ours.0 == *ctx.me && answer.responds_to == Some(before.1))
}

/// The thread as (author, document hash), proposal first.
fn record_thread(record: &ProposalRecord) -> Result<Vec<(MeshId, Blake3Hash)>, EngineError> {
    let mut thread = vec![(
        record.proposal.proposer.clone(),
        document_hash(&record.proposal)?,
    )];
    for r in &record.history {
        thread.push((r.responder.clone(), document_hash(r)?));
    }
    Ok(thread)
}

/// The peer rejected the terms we had just accepted: our draft will never be countersigned.
fn on_reject_after_accept(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    mut record: ProposalRecord,
    response: ProposalResponse,
    hash: Blake3Hash,
) -> Result<(), EngineError> {
    if let ProposalStatus::Accepted {
        agreement_id: Some(id),
    } = &record.status
    {
        agreements::abandon_draft(
            ctx,
            id,
            "the peer rejected the terms before our accept reached it",
        )?;
    }
    let topic = topic(&record);
    let scrolls = tip_scrolls(&record);
    let reason = response.reason.clone();
    close(
        ctx,
        &mut record,
        &response,
        ProposalStatus::Rejected {
            reason: reason.clone().unwrap_or_default(),
        },
    )?;
    retry::forget(ctx, from, &topic)?;
    let proposal = record.proposal.clone();
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Rejected,
        &scrolls,
        hash,
        reason,
    )
}

/// The proposer takes its proposal back. If we had already accepted it, our draft will not
/// be countersigned: it is abandoned.
fn on_withdraw(
    ctx: &mut Ctx<'_, '_>,
    from: &MeshId,
    mut record: ProposalRecord,
    response: ProposalResponse,
    hash: Blake3Hash,
) -> Result<(), EngineError> {
    if &record.proposal.proposer != from {
        return Err(EngineError::OutOfOrder(format!(
            "{from} did not make proposal {}; only its proposer withdraws it",
            record.proposal.proposal_id
        )));
    }
    // Open: the withdrawal must follow the last document. Accepted by us with our draft not
    // in force: it may have crossed our accept (it then follows the terms we accepted).
    // Anything else is over, for good.
    match &record.status {
        ProposalStatus::Open if response.responds_to == Some(tip_hash(&record)?) => {}
        ProposalStatus::Open => {
            return Err(EngineError::OutOfOrder(
                "the withdrawal does not follow the last document of the negotiation".into(),
            ));
        }
        ProposalStatus::Accepted {
            agreement_id: Some(id),
        } if crossed_our_accept(ctx, &record, &response)? => {
            let id = id.clone();
            agreements::abandon_draft(ctx, &id, "the proposer withdrew the proposal")?;
        }
        other => {
            return Err(EngineError::Closed(format!(
                "proposal {} is {}",
                record.proposal.proposal_id,
                status_name(other)
            )));
        }
    }
    let topic = topic(&record);
    let scrolls = tip_scrolls(&record);
    let reason = response.reason.clone();
    close(ctx, &mut record, &response, ProposalStatus::Withdrawn)?;
    retry::forget(ctx, from, &topic)?;
    let proposal = record.proposal.clone();
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Withdrawn,
        &scrolls,
        hash,
        reason,
    )
}

// ---- time ----

/// Open proposals past `expires_at` expire (on both sides, each by its own clock).
pub fn tick(ctx: &mut Ctx<'_, '_>) -> Result<(), EngineError> {
    for (index_key, expires_at) in ctx.tx.index::<ProposalRecord>("")? {
        if expires_at > ctx.now.unix() {
            continue;
        }
        let record = proposal_key_of_index(&index_key)
            .map(|key| ctx.tx.get::<ProposalRecord>(key))
            .transpose()?
            .flatten();
        match record {
            Some(mut record) if record.status == ProposalStatus::Open => {
                expire(ctx, &mut record, None)?;
            }
            // An index entry without an open record would keep the timer due for ever.
            _ => ctx.tx.remove_index_entry::<ProposalRecord>(&index_key)?,
        }
    }
    Ok(())
}

/// Marks a proposal expired, with its receipt.
pub fn expire(
    ctx: &mut Ctx<'_, '_>,
    record: &mut ProposalRecord,
    reason: Option<String>,
) -> Result<(), EngineError> {
    record.status = ProposalStatus::Expired;
    record.updated_at = ctx.now;
    ctx.tx.put(record)?;
    let peer = other_party(record, ctx.me).clone();
    retry::forget(ctx, &peer, &topic(record))?;
    let hash = tip_hash(record)?;
    let scrolls = tip_scrolls(record);
    let proposal = record.proposal.clone();
    receipts::proposal_event(
        ctx,
        &proposal,
        ProposalEvent::Expired,
        &scrolls,
        hash,
        reason,
    )
}

/// When open proposals expire.
pub fn deadlines(tx: &ReadTx) -> Result<Vec<Timestamp>, StoreError> {
    Ok(tx
        .index::<ProposalRecord>("")?
        .into_iter()
        .filter_map(|(_, t)| Timestamp::from_unix(t))
        .collect())
}
