//! `vm-federation state rebuild`: the state database rebuilt from the Federation scroll and
//! the mesh key alone (issue 15). The scroll is the record; `state.redb` is its index.
//!
//! What the scroll records, and so what is rebuilt (every signed document is checked with the
//! key of the mesh that signed it; one that does not verify is left out and listed):
//!
//! | table                   | from                                                        |
//! |-------------------------|-------------------------------------------------------------|
//! | `agreements`            | `fed_trust_established` (the whole signed agreement), then   |
//! |                         | `fed_trust_suspended` / `_resumed`, `fed_trust_revoked`      |
//! |                         | (with the signed notice)                                     |
//! | `peers`                 | each agreement's `key_exchange`: the federated peers' keys   |
//! | `witness_state`         | our `fed_witness_event`s (the peer's signed root checked),   |
//! |                         | `fed_cross_anchor` (`anchored_size`)                          |
//! | `received_attestations` | peers' `fed_witness_event`s about us (the signed attestation |
//! |                         | rebuilt from the receipt's fields, its signature checked)     |
//! | `discrepancies`         | `fed_discrepancy` (the signed report and its evidence)       |
//! | `meta` next sequence    | the scroll's length (set by the engine when it opens)        |
//!
//! Not rebuilt, by design (see [`NOT_REBUILT`]): outboxes (messages not yet acknowledged are
//! resent by their senders' own outboxes; our queued receipts are in the scroll or were
//! never decided), caches (the replay cache, discovery records and addresses, our latest
//! anchored roots, made again by the next anchor cycle), schedules (the next verification is
//! due at once), bookkeeping times and counters (`updated_at`, `received_at`, `times_seen`),
//! and what the scroll does not record: open negotiations and drafts awaiting a
//! countersignature, and a revocation notice still running (recorded when it ends).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};
use vm_receipts::documents::{
    DiscrepancyReport, SignedDocument, SignedRoot, WitnessAttestation, WitnessResult,
};
use vm_receipts::receipts::{FederationReceipt, WitnessEventReceipt, parse_receipt};
use vm_receipts::scroll::Scroll;
use vm_receipts::{MeshId, PublicKey, ScrollName, Timestamp};
use vm_storage::{
    AgreementRecord, AgreementStatus, ArbitrationRecord, DiscrepancyRecord, PeerEntry,
    ReceivedAttestation, Record, Store, StoreError, WitnessState,
};

use crate::data_dir::DataDir;

/// What the rebuild leaves out on purpose, for the report and the documentation.
pub const NOT_REBUILT: &[&str] = &[
    "outgoing (messages not yet acknowledged: each sender's outbox resends its own)",
    "receipt_outbox (empty: the scroll holds every receipt decided)",
    "replay, replay_by_expiry (a cache of signed-request nonces; requests older than the \
     signature window are refused anyway)",
    "peers: discovery records, addresses and sources (re-learned by discovery or `peers add`; \
     the federated peers' keys are rebuilt)",
    "anchored_roots (our latest anchored roots: the next anchor cycle makes them again)",
    "proposals and agreements awaiting a countersignature (the scroll records the steps of a \
     negotiation, not the signed drafts: an open negotiation is proposed again)",
    "a revocation notice still running (the scroll records a revocation when it ends)",
    "schedules and bookkeeping: next_verification_at (due at once), updated_at, received_at, \
     times_seen / last_seen_at",
];

/// What a rebuild did.
#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    /// Receipts read.
    pub receipts: u64,
    /// Records written, by table.
    pub rebuilt: BTreeMap<&'static str, usize>,
    /// Receipts whose documents were left out, with why.
    pub skipped: Vec<String>,
    /// Where the old state database was moved, if there was one.
    pub previous_state: Option<PathBuf>,
    /// What is not rebuilt, by design.
    pub not_rebuilt: Vec<&'static str>,
}

/// Why a rebuild failed (nothing was replaced).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The data directory.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// The Federation scroll.
    #[error(transparent)]
    Scroll(#[from] vm_receipts::scroll::ScrollError),
    /// The new state database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Rebuilds `<root>/state.redb` from the Federation scroll: writes the new database beside
/// it, moves the old one (if any) to `state.redb.before-rebuild-<unix time>`, and puts the new
/// one in its place. Takes the data directory's lock (the node must be stopped).
pub fn rebuild(root: &Path, now: Timestamp) -> Result<RebuildReport, RebuildError> {
    let dir = DataDir::open(root)?;
    let (scroll, _) = Scroll::open(root, &ScrollName::federation())?;
    let path = root.join("state.redb");
    let fresh = root.join("state.redb.rebuilding");
    remove_if_present(&fresh)?;
    let mut report = {
        let store = Store::open(&fresh)?;
        let receipts = (0..scroll.len()).map(|sequence| {
            let leaf = scroll.read_leaf(sequence)?;
            Ok((sequence, leaf))
        });
        rebuild_into(
            &store,
            dir.mesh_id(),
            &dir.key().public_key(),
            receipts,
            now,
        )?
    };
    if path.exists() {
        let aside = root.join(format!("state.redb.before-rebuild-{}", now.unix()));
        std::fs::rename(&path, &aside).map_err(|source| RebuildError::Io {
            path: path.clone(),
            source,
        })?;
        report.previous_state = Some(aside);
    }
    std::fs::rename(&fresh, &path).map_err(|source| RebuildError::Io {
        path: path.clone(),
        source,
    })?;
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|source| RebuildError::Io {
            path: root.to_owned(),
            source,
        })?;
    Ok(report)
}

fn remove_if_present(path: &Path) -> Result<(), RebuildError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RebuildError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The records the scroll's receipts amount to, as they are read in order.
#[derive(Default)]
struct Rebuilt {
    agreements: BTreeMap<String, AgreementRecord>,
    peers: BTreeMap<String, PeerEntry>,
    witness: BTreeMap<String, WitnessState>,
    received: BTreeMap<String, ReceivedAttestation>,
    discrepancies: BTreeMap<String, DiscrepancyRecord>,
    arbitrations: BTreeMap<String, ArbitrationRecord>,
    skipped: Vec<String>,
}

/// Rebuilds the records of mesh `me` (key `my_key`) from the Federation scroll's leaves, in
/// order, into `store` (which should be empty); returns what was done. The node's own
/// engine then starts over it as after any restart.
pub fn rebuild_into(
    store: &Store,
    me: &MeshId,
    my_key: &PublicKey,
    leaves: impl Iterator<Item = Result<(u64, Vec<u8>), vm_receipts::scroll::ScrollError>>,
    now: Timestamp,
) -> Result<RebuildReport, RebuildError> {
    let mut state = Rebuilt::default();
    let mut count = 0;
    for leaf in leaves {
        let (sequence, bytes) = leaf?;
        count = sequence + 1;
        match parse_receipt(&bytes) {
            Ok(receipt) => state.apply(me, my_key, sequence, receipt, now),
            Err(e) => state
                .skipped
                .push(format!("receipt-sequence-{sequence}: not a receipt: {e}")),
        }
    }
    store.write(|tx| {
        for r in state.agreements.values() {
            tx.put(r)?;
        }
        for r in state.peers.values() {
            tx.put(r)?;
        }
        for r in state.witness.values() {
            tx.put(r)?;
        }
        for r in state.received.values() {
            tx.put(r)?;
        }
        for r in state.discrepancies.values() {
            tx.put(r)?;
        }
        for r in state.arbitrations.values() {
            tx.put(r)?;
        }
        // The next receipt sequence is set by the engine when it opens the store: the
        // scroll's length.
        Ok(())
    })?;
    Ok(RebuildReport {
        receipts: count,
        rebuilt: BTreeMap::from([
            (AgreementRecord::NAME, state.agreements.len()),
            (PeerEntry::NAME, state.peers.len()),
            (WitnessState::NAME, state.witness.len()),
            (ReceivedAttestation::NAME, state.received.len()),
            (DiscrepancyRecord::NAME, state.discrepancies.len()),
            (ArbitrationRecord::NAME, state.arbitrations.len()),
        ]),
        skipped: state.skipped,
        previous_state: None,
        not_rebuilt: NOT_REBUILT.to_vec(),
    })
}

impl Rebuilt {
    fn apply(
        &mut self,
        me: &MeshId,
        my_key: &PublicKey,
        sequence: u64,
        receipt: FederationReceipt,
        now: Timestamp,
    ) {
        let at = format!("receipt-sequence-{sequence}");
        match receipt {
            FederationReceipt::TrustEstablished(r) => {
                let Some(agreement) = r.agreement else {
                    self.skipped.push(format!(
                        "{at}: fed_trust_established of {} carries no agreement (written before \
                         issue 15)",
                        r.agreement_id
                    ));
                    return;
                };
                if let Err(e) = agreement.verify_complete() {
                    self.skipped
                        .push(format!("{at}: agreement {}: {e}", agreement.agreement_id));
                    return;
                }
                // The agreement's signatures are checked with the keys it carries; ours must
                // be our key, or it is not our agreement.
                if agreement.key_of(me) != Some(my_key) {
                    self.skipped.push(format!(
                        "{at}: agreement {} does not carry our key for {me}",
                        agreement.agreement_id
                    ));
                    return;
                }
                for party in agreement.parties.iter().filter(|p| *p != me) {
                    if let Some(key) = agreement.key_of(party) {
                        self.peers.insert(
                            party.to_string(),
                            PeerEntry {
                                mesh_id: party.clone(),
                                public_key: Some(*key),
                                discovery_record: None,
                                sources: BTreeMap::new(),
                                manual_addresses: Vec::new(),
                                updated_at: r.timestamp,
                            },
                        );
                    }
                }
                self.agreements.insert(
                    agreement.agreement_id.to_string(),
                    AgreementRecord {
                        agreement,
                        status: AgreementStatus::Active,
                        revocation: None,
                        next_verification_at: Some(now),
                        proposal: None,
                        draft_deadline: None,
                        peer_suspension: None,
                        suspension_notices: 0,
                        updated_at: r.timestamp,
                    },
                );
            }
            FederationReceipt::TrustSuspended(r) | FederationReceipt::TrustResumed(r) => {
                self.suspension(&at, me, my_key, r);
            }
            FederationReceipt::TrustRevoked(r) => {
                let Some(record) = self.agreements.get_mut(r.agreement_id.as_str()) else {
                    self.skipped.push(format!(
                        "{at}: revocation of unknown agreement {}",
                        r.agreement_id
                    ));
                    return;
                };
                let notice = match r.notice {
                    Some(notice) => {
                        let key = record.agreement.key_of(&notice.revoked_by);
                        match key.map(|k| notice.verify(k)) {
                            Some(Ok(())) => Some(notice),
                            Some(Err(e)) => {
                                self.skipped.push(format!("{at}: revocation notice: {e}"));
                                None
                            }
                            None => {
                                self.skipped.push(format!(
                                    "{at}: revocation notice by {}, not a party",
                                    notice.revoked_by
                                ));
                                None
                            }
                        }
                    }
                    None => None,
                };
                record.status = AgreementStatus::Revoked { at: r.effective_at };
                record.revocation = notice;
                record.next_verification_at = None;
                record.updated_at = r.timestamp;
            }
            FederationReceipt::WitnessEvent(r) if &r.witnessing_mesh == me => {
                self.own_witness_event(&at, r);
            }
            FederationReceipt::WitnessEvent(r) if &r.witnessed_mesh == me => {
                self.received_attestation(&at, me, r);
            }
            FederationReceipt::CrossAnchor(r) => {
                let size = r.extra.get("anchored_size").and_then(Value::as_u64);
                let roots = r
                    .extra
                    .get(&format!("{}_roots_included", r.anchored_mesh.name()))
                    .and_then(Value::as_object);
                if let (Some(size), Some(roots)) = (size, roots) {
                    for scroll in roots.keys().filter_map(|s| s.parse::<ScrollName>().ok()) {
                        let key = vm_storage::records::witness_key(&r.anchored_mesh, &scroll);
                        if let Some(state) = self.witness.get_mut(&key)
                            && state.latest.size == size
                        {
                            state.cross_anchored_size = Some(size);
                        }
                    }
                }
            }
            FederationReceipt::Discrepancy(r) => {
                let (Some(signature), Some(evidence)) = (r.signature, r.evidence) else {
                    self.skipped.push(format!(
                        "{at}: fed_discrepancy {} carries no signature or evidence (written \
                         before issue 15)",
                        r.body.discrepancy_id
                    ));
                    return;
                };
                let report = DiscrepancyReport {
                    body: r.body,
                    signature,
                };
                let reporter = &report.body.reporting_mesh;
                let key = if reporter == me {
                    Some(*my_key)
                } else {
                    self.key_of(reporter)
                };
                match key.map(|k| report.verify(&k)) {
                    Some(Ok(())) => {
                        let record = DiscrepancyRecord::new(report, evidence);
                        self.discrepancies.insert(record.key(), record);
                    }
                    Some(Err(e)) => self.skipped.push(format!("{at}: discrepancy report: {e}")),
                    None => self.skipped.push(format!(
                        "{at}: discrepancy report by {reporter}, whose key no agreement holds"
                    )),
                }
            }
            FederationReceipt::DiscrepancyResolved(r) => {
                let resolution = r.resolution;
                let by = &resolution.resolved_by;
                let key = if by == me {
                    Some(*my_key)
                } else {
                    self.key_of(by)
                };
                let record_key = format!(
                    "{}/{}",
                    resolution.reporting_mesh, resolution.discrepancy_id
                );
                match (
                    key.map(|k| resolution.verify(&k)),
                    self.discrepancies.get_mut(&record_key),
                ) {
                    (Some(Ok(())), Some(record)) => record.resolve(resolution, me),
                    (Some(Ok(())), None) => self.skipped.push(format!(
                        "{at}: resolution of discrepancy {record_key}, which no receipt before \
                         it records"
                    )),
                    (Some(Err(e)), _) => self.skipped.push(format!("{at}: resolution: {e}")),
                    (None, _) => self.skipped.push(format!(
                        "{at}: resolution by {by}, whose key no agreement holds"
                    )),
                }
            }
            FederationReceipt::ArbitrationVerdict(r) => self.verdict(&at, me, my_key, r.verdict),
            // Negotiation steps and schema syncs carry no state the node keeps (see the
            // module documentation); witness events of other meshes do not name us.
            _ => {}
        }
    }

    /// `fed_trust_suspended` (or `_resumed`): witnessing under the agreement stopped (or
    /// started again), by the signed notice of the party that did, as the engine applies it.
    /// A receipt written before issue 18 carries no notice: the suspension was ours.
    fn suspension(
        &mut self,
        at: &str,
        me: &MeshId,
        my_key: &PublicKey,
        r: vm_receipts::receipts::TrustSuspensionReceipt,
    ) {
        let Some(notice) = r.notice else {
            self.skipped.push(format!(
                "{at}: fed_trust_suspended/_resumed of {} carries no notice (written before \
                 issue 18)",
                r.agreement_id
            ));
            return;
        };
        let by = &notice.suspended_by;
        let key = if by == me {
            Some(*my_key)
        } else {
            self.key_of(by)
        };
        match key.map(|k| notice.verify(&k)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.skipped.push(format!("{at}: suspension notice: {e}"));
                return;
            }
            None => {
                self.skipped.push(format!(
                    "{at}: suspension notice by {by}, whose key no agreement holds"
                ));
                return;
            }
        }
        let Some(record) = self.agreements.get_mut(notice.agreement_id.as_str()) else {
            self.skipped.push(format!(
                "{at}: suspension of unknown agreement {}",
                notice.agreement_id
            ));
            return;
        };
        record.apply_suspension(notice.action, by, me, &notice.reason, r.timestamp);
        if by == me {
            record.suspension_notices = record.suspension_notices.max(notice.sequence);
        } else {
            record.peer_suspension = Some(notice);
        }
    }

    /// `fed_arbitration_verdict`: one we gave as the arbiter, or an arbiter's on a finding of
    /// ours (kept on its record).
    fn verdict(
        &mut self,
        at: &str,
        me: &MeshId,
        my_key: &PublicKey,
        verdict: vm_receipts::documents::ArbitrationVerdict,
    ) {
        let arbiter = &verdict.arbiter;
        let key = if arbiter == me {
            Some(*my_key)
        } else {
            self.key_of(arbiter)
        };
        match key.map(|k| verdict.verify(&k)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.skipped.push(format!("{at}: arbitration verdict: {e}"));
                return;
            }
            None => {
                self.skipped.push(format!(
                    "{at}: arbitration verdict by {arbiter}, whose key no agreement holds"
                ));
                return;
            }
        }
        if arbiter == me {
            let record = ArbitrationRecord { verdict };
            self.arbitrations.insert(record.key(), record);
            return;
        }
        let key = format!("{}/{}", verdict.reporting_mesh, verdict.discrepancy_id);
        match self.discrepancies.get_mut(&key) {
            Some(record) => record.arbitrations.push(verdict),
            None => self.skipped.push(format!(
                "{at}: arbitration verdict on discrepancy {key}, which no receipt before it \
                 records"
            )),
        }
    }

    /// A federated peer's key, from the agreements read so far.
    fn key_of(&self, mesh: &MeshId) -> Option<PublicKey> {
        self.peers.get(mesh.as_str()).and_then(|p| p.public_key)
    }

    /// Our attestation of a peer's root: a verified one advances the witness state to the
    /// signed root; one that found a discrepancy keeps the last good root and says so.
    fn own_witness_event(&mut self, at: &str, r: WitnessEventReceipt) {
        let key = vm_storage::records::witness_key(&r.witnessed_mesh, &r.scroll);
        match r.verification_result {
            WitnessResult::Verified => {
                let Some(root) = r.signed_root.clone() else {
                    self.skipped.push(format!(
                        "{at}: fed_witness_event {} carries no signed root (written before \
                         issue 15)",
                        r.witness_id
                    ));
                    return;
                };
                if let Err(reason) = self.check_root(&root, &r) {
                    self.skipped.push(format!("{at}: {reason}"));
                    return;
                }
                let cross = self.witness.get(&key).and_then(|s| s.cross_anchored_size);
                self.witness.insert(
                    key,
                    WitnessState {
                        peer: r.witnessed_mesh,
                        scroll: r.scroll,
                        latest: root,
                        witnessed_at: r.timestamp,
                        result: WitnessResult::Verified,
                        cross_anchored_size: cross,
                    },
                );
            }
            WitnessResult::Discrepancy => {
                if let Some(state) = self.witness.get_mut(&key) {
                    state.result = WitnessResult::Discrepancy;
                    state.witnessed_at = r.timestamp;
                }
            }
        }
    }

    /// The signed root in our witness event is the peer's, for the scroll, size and root the
    /// receipt names.
    fn check_root(&self, root: &SignedRoot, r: &WitnessEventReceipt) -> Result<(), String> {
        let key = self
            .key_of(&r.witnessed_mesh)
            .ok_or_else(|| format!("{} has no key in any agreement", r.witnessed_mesh))?;
        root.verify(&key)
            .map_err(|e| format!("the signed root of {}: {e}", r.witnessed_mesh))?;
        if root.mesh_id != r.witnessed_mesh
            || root.scroll != r.scroll
            || root.root != r.witnessed_root
            || Some(root.size) != r.witnessed_size
        {
            return Err(format!(
                "the signed root in witness event {} is not the one it names",
                r.witness_id
            ));
        }
        Ok(())
    }

    /// A peer's attestation about one of our scrolls: the signed attestation is rebuilt from
    /// the receipt (the fields it signs are the receipt's, its `extra` the four the receipt
    /// lifts out of it) and kept only if its signature verifies.
    fn received_attestation(&mut self, at: &str, me: &MeshId, r: WitnessEventReceipt) {
        let Some(key) = self.key_of(&r.witnessing_mesh) else {
            self.skipped.push(format!(
                "{at}: attestation by {}, whose key no agreement holds",
                r.witnessing_mesh
            ));
            return;
        };
        let mut extra = Map::new();
        extra.insert("witnessed_anchor".into(), json!(r.witnessed_anchor));
        extra.insert("samples_checked".into(), r.samples_checked.into());
        extra.insert(
            "verification_method".into(),
            r.verification_method.clone().into(),
        );
        extra.insert(
            "discrepancies".into(),
            Value::Array(r.discrepancies.clone()),
        );
        let attestation = WitnessAttestation {
            witness_id: r.witness_id,
            witnessed_mesh: me.clone(),
            witnessing_mesh: r.witnessing_mesh,
            scroll: r.scroll,
            witnessed_root: r.witnessed_root,
            witnessed_size: r.witnessed_size.unwrap_or(0),
            witness_result: r.verification_result,
            timestamp: r.timestamp,
            witness_signature: r.witness_signature,
            extra,
        };
        if let Err(e) = attestation.verify(&key) {
            self.skipped.push(format!(
                "{at}: attestation {} by {} does not verify as rebuilt: {e}",
                attestation.witness_id, attestation.witnessing_mesh
            ));
            return;
        }
        let record = ReceivedAttestation {
            received_at: attestation.timestamp,
            attestation,
        };
        self.received.insert(record.key(), record);
    }
}
