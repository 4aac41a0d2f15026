//! The read requests of the federation API (seed §5.1): proposal threads and agreements the
//! sender is a party to, receipts of shared scrolls, single-receipt verification and proofs.
//! Served by the one handler, on both transports, after the policy (DESIGN §6).

use serde_json::{Value, json};
use vm_receipts::proof::ReceiptProof;
use vm_receipts::{Blake3Hash, MeshId, ScrollName};
use vm_storage::{AgreementRecord, AnchoredRoot, ProposalRecord};

use super::Node;
use super::wire::FedResponse;
use crate::engine::policy::{self, PeerRequest};

/// Most receipts one `receipts` request returns.
pub(super) const MAX_RECEIPTS: u64 = 100;
/// Most bytes of receipt lines in one page.
const MAX_PAGE_BYTES: usize = 6 * 1024 * 1024;

fn data(value: Value) -> FedResponse {
    FedResponse::Data { data: value }
}

fn not_found(what: String) -> FedResponse {
    FedResponse::error("not_found", what, true)
}

impl Node {
    /// A proposal thread `from` is a party to (anything else is "not found": no probing of
    /// other meshes' negotiations).
    pub(super) fn serve_proposal(&self, from: &MeshId, id: &str) -> FedResponse {
        if let Err(r) = self.authorize_read(from, PeerRequest::GetProposal) {
            return r;
        }
        let records = self
            .engine
            .store()
            .all::<ProposalRecord>()
            .unwrap_or_default();
        let found = records.into_iter().find(|p| {
            p.proposal.proposal_id.as_str() == id
                && (&p.proposal.proposer == from || &p.proposal.target == from)
        });
        match found {
            Some(p) => data(json!({
                "proposal": p.proposal,
                "responses": p.history,
                "status": p.status,
                "updated_at": p.updated_at,
            })),
            None => not_found(format!("no proposal {id} between you and us")),
        }
    }

    /// The agreements between `from` and us that the policy lets it read (each one asked
    /// about: an ended agreement is history and readable, a suspended one too).
    fn agreements_with(&self, from: &MeshId) -> Vec<AgreementRecord> {
        let me = self.dir.mesh_id();
        let now = self.now();
        self.engine
            .store()
            .all::<AgreementRecord>()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.agreement.parties.contains(from) && a.agreement.parties.contains(me))
            .filter(|a| {
                policy::authorize(
                    me,
                    from,
                    self.engine.federation_on(),
                    Some(a),
                    now,
                    PeerRequest::GetAgreement,
                )
                .is_ok()
            })
            .collect()
    }

    /// The agreements between `from` and us (signed documents and their state).
    pub(super) fn serve_agreements(&self, from: &MeshId, id: Option<&str>) -> FedResponse {
        if let Err(r) = self.authorize_read(from, PeerRequest::GetProposal) {
            // Federation off: nothing is served to anyone.
            return r;
        }
        let list = self.agreements_with(from);
        let shown = |a: &AgreementRecord| json!({"agreement": a.agreement, "status": a.status, "revocation": a.revocation});
        match id {
            None => data(Value::Array(list.iter().map(shown).collect())),
            Some(id) => match list
                .iter()
                .find(|a| a.agreement.agreement_id.as_str() == id)
            {
                Some(a) => data(shown(a)),
                None => not_found(format!("no agreement {id} between you and us")),
            },
        }
    }

    /// Receipts `from`..`from + limit` of a shared scroll, as stored (with `root_hash`).
    pub(super) fn serve_receipts(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
        from: u64,
        limit: u64,
    ) -> FedResponse {
        if let Err(r) = self.authorize_read(peer, PeerRequest::Receipts(scroll)) {
            return r;
        }
        let Some(s) = self.scroll_named(scroll) else {
            return FedResponse::error("unknown_scroll", format!("no scroll {scroll}"), true);
        };
        let end = from
            .saturating_add(limit.clamp(1, MAX_RECEIPTS))
            .min(s.len());
        let mut receipts = Vec::new();
        let mut bytes = 0usize;
        for sequence in from..end {
            match s.read_line(sequence) {
                // A page stops short rather than exceed a response (8 MiB); `size` and the
                // last sequence tell the reader where to go on.
                Ok(line) if bytes + line.len() > MAX_PAGE_BYTES && !receipts.is_empty() => break,
                Ok(line) => {
                    bytes += line.len();
                    receipts.push(json!({
                    "sequence": sequence,
                        "receipt": serde_json::from_slice::<Value>(&line).unwrap_or(Value::Null),
                    }));
                }
                Err(e) => return FedResponse::error("internal", e.to_string(), false),
            }
        }
        data(json!({"scroll": scroll, "size": s.len(), "from": from, "receipts": receipts}))
    }

    /// One receipt proven against our latest anchored root, with its anchor proof.
    pub(super) fn serve_verify(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
        sequence: u64,
        receipt_hash: Option<Blake3Hash>,
    ) -> FedResponse {
        if let Err(r) = self.authorize_read(peer, PeerRequest::VerifyReceipt(scroll)) {
            return r;
        }
        let Some(s) = self.scroll_named(scroll) else {
            return FedResponse::error("unknown_scroll", format!("no scroll {scroll}"), true);
        };
        let Ok(Some(anchored)) = self.engine.store().get::<AnchoredRoot>(&scroll.file_stem())
        else {
            return not_found(format!("scroll {scroll} has not been anchored yet"));
        };
        let n = anchored.notification;
        if sequence >= n.size {
            return not_found(format!(
                "receipt-sequence-{sequence} is beyond the latest anchored root ({} receipts)",
                n.size
            ));
        }
        let (line, leaf) = match (s.read_line(sequence), s.read_leaf(sequence)) {
            (Ok(line), Ok(leaf)) => (line, leaf),
            (Err(e), _) | (_, Err(e)) => {
                return FedResponse::error("internal", e.to_string(), false);
            }
        };
        // DESIGN §4's leaf hash, blake3(0x00 ‖ leaf): what the inclusion proof proves.
        let leaf_hash = Blake3Hash::from_bytes(
            <vm_receipts::merkle::Blake3Hasher as vm_receipts::merkle::TreeHasher>::leaf(&leaf),
        );
        if let Some(expected) = receipt_hash
            && leaf_hash != expected
        {
            return FedResponse::error(
                "receipt_mismatch",
                format!("receipt-sequence-{sequence} does not hash to {expected}"),
                true,
            );
        }
        let inclusion = match s.prove_inclusion(sequence, n.size) {
            Ok(p) => p,
            Err(e) => return FedResponse::error("internal", e.to_string(), false),
        };
        let proof = ReceiptProof {
            receipt: serde_json::from_slice(&line).unwrap_or(Value::Null),
            inclusion,
            signed_root: n.signed_root(),
            anchor_proof: Some(n.anchor_proof.clone()),
        };
        data(serde_json::to_value(&proof).unwrap_or(Value::Null))
    }

    /// A consistency proof between two sizes of a shared scroll, with both roots.
    pub(super) fn serve_consistency(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
        old_size: u64,
        new_size: u64,
    ) -> FedResponse {
        if let Err(r) = self.authorize_read(peer, PeerRequest::ConsistencyProof(scroll)) {
            return r;
        }
        let Some(s) = self.scroll_named(scroll) else {
            return FedResponse::error("unknown_scroll", format!("no scroll {scroll}"), true);
        };
        if old_size == 0 || old_size > new_size || new_size > s.len() {
            return FedResponse::error(
                "bad_request",
                format!("sizes must satisfy 0 < old_size <= new_size <= {}", s.len()),
                true,
            );
        }
        match (
            s.root_at(old_size),
            s.root_at(new_size),
            s.prove_consistency(old_size, new_size),
        ) {
            (Ok(old_root), Ok(new_root), Ok(proof)) => {
                data(json!({"old_root": old_root, "new_root": new_root, "proof": proof}))
            }
            _ => FedResponse::error("internal", "the proof could not be built", false),
        }
    }

    /// An inclusion proof of one receipt in a tree size of a shared scroll, with its root.
    pub(super) fn serve_inclusion(
        &self,
        peer: &MeshId,
        scroll: &ScrollName,
        sequence: u64,
        tree_size: u64,
    ) -> FedResponse {
        if let Err(r) = self.authorize_read(peer, PeerRequest::InclusionProof(scroll)) {
            return r;
        }
        let Some(s) = self.scroll_named(scroll) else {
            return FedResponse::error("unknown_scroll", format!("no scroll {scroll}"), true);
        };
        if sequence >= tree_size || tree_size > s.len() {
            return FedResponse::error(
                "bad_request",
                format!("sizes must satisfy sequence < tree_size <= {}", s.len()),
                true,
            );
        }
        match (s.root_at(tree_size), s.prove_inclusion(sequence, tree_size)) {
            (Ok(root), Ok(proof)) => data(json!({"root": root, "proof": proof})),
            _ => FedResponse::error("internal", "the proof could not be built", false),
        }
    }
}
