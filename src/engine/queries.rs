//! What the drivers and the witness core ask the engine between inputs: read-only, indexed
//! queries over one snapshot each. They answer from the same records and the same policy
//! ([`policy::authorize`]) the engine's own handlers use, so "may this peer ask this" and
//! "whom do we witness" have one answer in the node, the simulator and the engine.

use vm_receipts::documents::{SignedRoot, TrustLevel, WitnessResult};
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::records::{agreement_id_of_index, witness_key};
use vm_storage::{AgreementRecord, PeerEntry, Reads, WitnessState};

use super::policy::{self, PeerRequest};
use super::{Engine, EngineError, agreements};

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
        Ok(self.store.read(|tx| {
            let live = agreements::live_with(tx, &self.me, peer).map_err(store_only)?;
            let in_force = live.iter().find(|r| r.status.in_force(now)).cloned();
            Ok(in_force.or_else(|| live.into_iter().max_by_key(|r| r.updated_at)))
        })?)
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
        Ok(self
            .store
            .get::<PeerEntry>(peer.as_str())?
            .and_then(|e| e.public_key))
    }

    /// What we last witnessed of `peer`'s `scroll`.
    pub fn witness_state(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
    ) -> Result<Option<WitnessState>, EngineError> {
        Ok(self.store.get::<WitnessState>(&witness_key(peer, scroll))?)
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
            .into_iter()
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
        for r in self.live_agreements()? {
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

    /// Every live agreement (in force, or a draft awaiting its countersignature) we are a
    /// party of: the live-agreement index, so ended ones cost nothing.
    fn live_agreements(&self) -> Result<Vec<AgreementRecord>, EngineError> {
        Ok(self.store.read(|tx| {
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
        })?)
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
