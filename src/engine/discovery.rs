//! Discovery records (seed §3.1, DESIGN §5): ours, built and signed; peers', verified and kept
//! in the peer book with where each came from. A key, once held for a mesh, is never silently
//! replaced.

use std::collections::BTreeMap;

use vm_receipts::documents::{DiscoveryRecord, Document, SignatureField, SignedDocument};
use vm_receipts::{MeshId, MeshKey, PublicKey, Timestamp};
use vm_storage::{PeerEntry, PeerSource};

use super::{Ctx, EngineConfig, EngineError, Event, messages::document_hash};

/// Builds and signs our discovery record as of `now`.
pub fn build_own(
    me: &MeshId,
    key: &MeshKey,
    config: &EngineConfig,
    now: Timestamp,
) -> Result<DiscoveryRecord, EngineError> {
    let public_key = key.public_key();
    let mut record = DiscoveryRecord {
        mesh_id: me.clone(),
        display_name: config.display_name.clone(),
        endpoints: config.endpoints.clone(),
        public_key,
        scrolls_available: config.scrolls_available.clone(),
        trust_policy: config.trust_policy.clone(),
        attestations: Vec::new(),
        peer_id: public_key.peer_id(),
        multiaddrs: config.multiaddrs.clone(),
        updated_at: now,
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    record.validate()?;
    record.sign(key)?;
    Ok(record)
}

/// Checks a peer's record (rules, signature by its own key, freshness) and stores it, unless
/// it would replace a key we hold or is older than the record we have.
pub fn on_record(
    ctx: &mut Ctx<'_, '_>,
    record: DiscoveryRecord,
    source: PeerSource,
) -> Result<(), EngineError> {
    if !ctx.config.federation_on {
        return Err(super::policy::Refusal::FederationOff.into());
    }
    if &record.mesh_id == ctx.me {
        return Err(EngineError::OutOfOrder(
            "a discovery record claiming our own mesh id".into(),
        ));
    }
    // Typed values can be built without the parser: check the rules again.
    record.validate()?;
    record.verify_self_signed()?;
    ctx.check_not_future("updated_at", record.updated_at)?;
    let age = ctx.now.seconds_since(record.updated_at);
    if age > ctx.config.discovery_max_age_secs {
        return Err(EngineError::Stale(format!(
            "discovery record of {} is {age} s old (at most {} s)",
            record.mesh_id, ctx.config.discovery_max_age_secs
        )));
    }
    let mesh_id = record.mesh_id.clone();
    let mut entry = entry_for(ctx, &mesh_id)?;
    check_key(&mesh_id, entry.public_key.as_ref(), &record.public_key)?;
    if let Some(held) = &entry.discovery_record {
        if held.updated_at > record.updated_at {
            return Err(EngineError::Stale(format!(
                "discovery record of {mesh_id} from {} is older than the one we hold ({})",
                record.updated_at, held.updated_at
            )));
        }
        if held.updated_at == record.updated_at {
            if document_hash(held)? == document_hash(&record)? {
                if entry.sources.contains_key(&source) {
                    return Err(EngineError::AlreadyReceived(format!(
                        "discovery record of {mesh_id} from {}",
                        record.updated_at
                    )));
                }
            } else {
                return Err(EngineError::Stale(format!(
                    "a different discovery record of {mesh_id} with the same updated_at {}",
                    record.updated_at
                )));
            }
        }
    }
    entry.public_key = Some(record.public_key);
    entry.discovery_record = Some(record);
    entry.sources.entry(source).or_insert(ctx.now);
    entry.updated_at = ctx.now;
    ctx.tx.put(&entry)?;
    ctx.event(Event::PeerUpdated { mesh_id, source });
    Ok(())
}

/// Adds or updates a peer the operator configured.
pub fn add_manual(
    ctx: &mut Ctx<'_, '_>,
    mesh_id: MeshId,
    public_key: PublicKey,
    addresses: Vec<String>,
) -> Result<(), EngineError> {
    if &mesh_id == ctx.me {
        return Err(EngineError::Command("that is our own mesh id".into()));
    }
    if public_key == ctx.key.public_key() {
        return Err(EngineError::Command("that is our own key".into()));
    }
    let mut entry = entry_for(ctx, &mesh_id)?;
    if entry.public_key.is_some_and(|k| k != public_key)
        && !entry.sources.contains_key(&PeerSource::Manual)
    {
        // The operator's word beats a self-signed record found on the network (the first
        // key seen could have been an impostor's): the record and its sources are dropped.
        tracing::warn!(mesh = %mesh_id, "operator replaces a key learned from the network");
        entry.discovery_record = None;
        entry.sources.clear();
    } else {
        check_key(&mesh_id, entry.public_key.as_ref(), &public_key)?;
    }
    entry.public_key = Some(public_key);
    for a in addresses {
        if !entry.manual_addresses.contains(&a) {
            entry.manual_addresses.push(a);
        }
    }
    entry.sources.entry(PeerSource::Manual).or_insert(ctx.now);
    entry.updated_at = ctx.now;
    ctx.tx.put(&entry)?;
    ctx.event(Event::PeerUpdated {
        mesh_id,
        source: PeerSource::Manual,
    });
    Ok(())
}

/// The peer-book entry of `mesh_id`, or a new empty one.
fn entry_for(ctx: &Ctx<'_, '_>, mesh_id: &MeshId) -> Result<PeerEntry, EngineError> {
    Ok(ctx
        .tx
        .get(&mesh_id.to_string())?
        .unwrap_or_else(|| PeerEntry {
            mesh_id: mesh_id.clone(),
            public_key: None,
            discovery_record: None,
            sources: BTreeMap::new(),
            manual_addresses: Vec::new(),
            updated_at: ctx.now,
        }))
}

/// A mesh's key never changes under us: a record with another key is refused (key rotation
/// needs the operator, who can see why).
fn check_key(
    mesh: &MeshId,
    held: Option<&PublicKey>,
    offered: &PublicKey,
) -> Result<(), EngineError> {
    match held {
        Some(held) if held != offered => Err(EngineError::KeyMismatch {
            mesh: mesh.clone(),
            expected: Box::new(*held),
            found: Box::new(*offered),
        }),
        _ => Ok(()),
    }
}

/// Forgets a peer, unless we are bound to it: an agreement in force or awaiting its
/// countersignature, or an open negotiation, needs its key. Ended agreements do not: their
/// signed record stays in the Federation scroll.
pub fn remove(ctx: &mut Ctx<'_, '_>, mesh_id: MeshId) -> Result<(), EngineError> {
    if ctx.tx.get::<PeerEntry>(mesh_id.as_str())?.is_none() {
        return Err(EngineError::UnknownSender(mesh_id));
    }
    if let Some(live) = super::agreements::live_with(ctx.tx, ctx.me, &mesh_id)?.first() {
        return Err(EngineError::Command(format!(
            "{mesh_id} is a party to agreement {}, which is {}: revoke it first",
            live.agreement.agreement_id, live.status
        )));
    }
    if ctx
        .tx
        .count_index::<vm_storage::ProposalRecord>(&format!("{mesh_id}/"), 1)?
        > 0
    {
        return Err(EngineError::Command(format!(
            "a negotiation with {mesh_id} is open: withdraw or reject it first"
        )));
    }
    ctx.tx.remove::<PeerEntry>(mesh_id.as_str())?;
    ctx.event(Event::PeerRemoved { mesh_id });
    Ok(())
}
