//! What the drivers and the witness core ask the engine between inputs: read-only, indexed
//! queries over one snapshot each. They answer from the same records and the same policy
//! ([`policy::authorize`]) the engine's own handlers use, so "may this peer ask this" and
//! "whom do we witness" have one answer in the node, the simulator and the engine.
//!
//! The witness core asks these for every root it hears of, and decoding an agreement or a
//! peer entry (base58 keys and signatures, a key decompressed per parse) cost more than a
//! signature check. So answers about peers and agreements are kept in [`QueryCache`] between
//! inputs: the engine is the store's only writer of those tables, and it empties the cache
//! whenever an input could have changed them ([`invalidates`]).

use std::collections::HashMap;
use std::sync::Arc;

use vm_receipts::documents::{SignedRoot, TrustLevel, WitnessResult};
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::records::{agreement_id_of_index, witness_key};
use vm_storage::{AgreementRecord, PeerEntry, Reads, WitnessState};

use super::policy::{self, PeerRequest};
use super::{Engine, EngineError, Input, PeerMessage, agreements};

/// Decoded answers about peers and agreements, valid until the next input that could
/// change them.
#[derive(Debug, Default)]
pub(super) struct QueryCache {
    keys: HashMap<MeshId, Option<PublicKey>>,
    /// The live agreements with each peer (whether one is in force depends on the time
    /// asked, so that is decided per query).
    live: HashMap<MeshId, Arc<[AgreementRecord]>>,
    /// Every live agreement.
    all_live: Option<Arc<[AgreementRecord]>>,
    /// Witness states read, by key: emptied by every input that may move one (see
    /// [`moves_witness_state`]).
    states: HashMap<String, Option<WitnessState>>,
}

impl QueryCache {
    /// Most peers remembered (a public node hears of many meshes; bounded like everything).
    const MAX_PEERS: usize = 4096;

    fn bound(&mut self) {
        if self.keys.len() > Self::MAX_PEERS {
            self.keys.clear();
        }
        if self.live.len() > Self::MAX_PEERS {
            self.live.clear();
        }
        if self.states.len() > Self::MAX_PEERS {
            self.states.clear();
        }
    }

    /// Empties what `input` may change.
    /// `witnessing_suspends`: a verdict may suspend an agreement (`[witness] suspend_on`).
    pub(super) fn before(&mut self, input: &Input, witnessing_suspends: bool) {
        if invalidates(input) || (witnessing_suspends && matches!(input, Input::Witnessed(_))) {
            *self = Self::default();
        } else if moves_witness_state(input) {
            self.states.clear();
        }
    }
}

/// Whether `input` may change a witness state: a verdict, a cross-anchor, or anything that
/// [`invalidates`] the rest.
fn moves_witness_state(input: &Input) -> bool {
    matches!(input, Input::Witnessed(_) | Input::Anchored(_)) || invalidates(input)
}

/// Whether `input` may change the peer book or an agreement: every input but the witness
/// protocol's own (verdicts, attestations, reports, cross-anchors) and the driver's reports
/// of stored receipts and delivered messages, none of which touch those tables.
fn invalidates(input: &Input) -> bool {
    !matches!(
        input,
        Input::Witnessed(_)
            | Input::Anchored(_)
            | Input::ReceiptsStored { .. }
            | Input::Delivered { .. }
            | Input::Peer {
                message: PeerMessage::Attestation(_) | PeerMessage::Discrepancy { .. },
                ..
            }
    )
}

impl Engine {
    /// Whether federation is on (trust level 1+; DESIGN §6 level 0 is `isolated`).
    pub fn federation_on(&self) -> bool {
        self.config.federation_on
    }

    /// The agreement that governs what `peer` may do at `now`: the one in force, else the
    /// newest live one (a draft awaiting its countersignature), else none.
    pub fn agreement_with(
        &self,
        peer: &MeshId,
        now: Timestamp,
    ) -> Result<Option<AgreementRecord>, EngineError> {
        let cached = self.cache().live.get(peer).cloned();
        let live = match cached {
            Some(live) => live,
            None => {
                let live: Arc<[AgreementRecord]> = self
                    .store
                    .read(|tx| agreements::live_with(tx, &self.me, peer).map_err(store_only))?
                    .into();
                let mut cache = self.cache();
                cache.bound();
                cache.live.insert(peer.clone(), live.clone());
                live
            }
        };
        let in_force = live.iter().find(|r| r.status.in_force(now));
        Ok(in_force
            .or_else(|| live.iter().max_by_key(|r| r.updated_at))
            .cloned())
    }

    /// Whether `peer` may make `request` of us at `now` ([`policy::authorize`] over the
    /// agreement between us); returns that agreement when there is one.
    pub fn authorize(
        &self,
        peer: &MeshId,
        request: PeerRequest<'_>,
        now: Timestamp,
    ) -> Result<Option<AgreementRecord>, EngineError> {
        let agreement = self.agreement_with(peer, now)?;
        policy::authorize(
            &self.me,
            peer,
            self.config.federation_on,
            agreement.as_ref(),
            now,
            request,
        )?;
        Ok(agreement)
    }

    /// The key we hold for `peer` (manual, or from a verified discovery record).
    pub fn peer_key(&self, peer: &MeshId) -> Result<Option<PublicKey>, EngineError> {
        if let Some(key) = self.cache().keys.get(peer) {
            return Ok(*key);
        }
        let key = self
            .store
            .get::<PeerEntry>(peer.as_str())?
            .and_then(|e| e.public_key);
        let mut cache = self.cache();
        cache.bound();
        cache.keys.insert(peer.clone(), key);
        Ok(key)
    }

    /// What we last witnessed of `peer`'s `scroll`.
    pub fn witness_state(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
    ) -> Result<Option<WitnessState>, EngineError> {
        let key = witness_key(peer, scroll);
        if let Some(state) = self.cache().states.get(&key) {
            return Ok(state.clone());
        }
        let state = self.store.get::<WitnessState>(&key)?;
        let mut cache = self.cache();
        cache.bound();
        cache.states.insert(key, state.clone());
        Ok(state)
    }

    /// The peers that witness our `scroll` at `now`: an agreement working (in force, not
    /// suspended) at level 2+ that shares it. A scan of the live agreements only.
    pub fn witnesses_of(
        &self,
        scroll: &ScrollName,
        now: Timestamp,
    ) -> Result<Vec<MeshId>, EngineError> {
        let live = self.live_agreements()?;
        Ok(live
            .iter()
            .filter(|r| {
                r.status.working(now)
                    && r.agreement.trust_level >= TrustLevel::VERIFY
                    && r.agreement.terms.scrolls_shared.contains(scroll)
            })
            .filter_map(|r| r.agreement.counterparty(&self.me).cloned())
            .collect())
    }

    /// The peers' roots our next anchor batch includes (DESIGN §6 level 3 `attest`): for
    /// every working agreement at level 3+, each shared scroll whose latest witnessed root
    /// verified and has not been cross-anchored at its size.
    pub fn cross_anchor_candidates(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(MeshId, SignedRoot)>, EngineError> {
        let mut out = Vec::new();
        for r in self.live_agreements()?.iter() {
            if !r.status.working(now) || r.agreement.trust_level < TrustLevel::ATTEST {
                continue;
            }
            let Some(peer) = r.agreement.counterparty(&self.me).cloned() else {
                continue;
            };
            for scroll in &r.agreement.terms.scrolls_shared {
                if let Some(state) = self.witness_state(&peer, scroll)?
                    && state.result == WitnessResult::Verified
                    && state.cross_anchored_size != Some(state.latest.size)
                {
                    out.push((peer.clone(), state.latest));
                }
            }
        }
        Ok(out)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, QueryCache> {
        // A panic while holding it left at worst a partial cache of correct answers.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every live agreement (in force, or a draft awaiting its countersignature) we are a
    /// party of: the live-agreement index, so ended ones cost nothing.
    fn live_agreements(&self) -> Result<Arc<[AgreementRecord]>, EngineError> {
        if let Some(all) = self.cache().all_live.clone() {
            return Ok(all);
        }
        let all: Arc<[AgreementRecord]> = self
            .store
            .read(|tx| {
                let mut out = Vec::new();
                for (key, _) in Reads::index::<AgreementRecord>(tx, "")? {
                    if let Some(id) = agreement_id_of_index(&key)
                        && let Some(r) = Reads::get::<AgreementRecord>(tx, id)?
                        && r.agreement.parties.contains(&self.me)
                    {
                        out.push(r);
                    }
                }
                Ok(out)
            })?
            .into();
        self.cache().all_live = Some(all.clone());
        Ok(all)
    }
}

/// `live_with` reports store errors as engine errors; inside a store read they are store
/// errors again.
fn store_only(e: EngineError) -> vm_storage::StoreError {
    match e {
        EngineError::Store(s) => s,
        other => vm_storage::StoreError::Database(other.to_string()),
    }
}
