//! What a witness keeps when a check fails: the signed material itself, so that anyone with
//! the witnessed mesh's public key can check the claim without trusting the witness.
//!
//! Two kinds are *proofs* on their own (DESIGN §7 "Findings and proofs"): two roots the mesh
//! signed for one size with different hashes, and a consistency proof, checked against a
//! later signed root, that yields another root at an earlier signed size than the one the
//! mesh signed. A third party needs nothing else: the consistency path hashes into the later
//! signed root, so a witness cannot invent it without a blake3 collision. Nothing else is a
//! proof, because an honest mesh can produce it: a smaller tree signed with a later timestamp
//! is a clock step or a delayed announcement until a contradicting root appears, so a
//! truncation is a claim, as are a proof that did not verify, a sample that was missing, an
//! anchor that did not verify and a timestamp out of bounds: the mesh can answer them.

use serde::{Deserialize, Serialize};
use vm_receipts::documents::{AnchorNotification, SignedDocument, SignedRoot};
use vm_receipts::proof::{ConsistencyProofJson, InclusionProofJson};
use vm_receipts::{Blake3Hash, PublicKey, Timestamp};

/// The evidence of one finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConflictEvidence {
    /// Two signed roots of one size with different hashes.
    ConflictingRoots {
        /// The root witnessed before.
        earlier: SignedRoot,
        /// The root that contradicts it.
        later: SignedRoot,
    },
    /// A root signed later for a smaller tree than one signed before. Kept so records made
    /// before issue 14 still read; it is a claim, not a proof (timestamps are the mesh's
    /// own: a clock step produces it). New findings of this shape are [`Self::Truncation`].
    Rollback {
        /// The larger, earlier root.
        earlier: SignedRoot,
        /// The smaller, later root.
        later: SignedRoot,
    },
    /// The mesh served, as its latest root, a smaller tree than one it signed and the
    /// witness attested (a claim: the mesh may still hold the larger tree; it becomes a
    /// proof, [`Self::InconsistentExtension`] or [`Self::ConflictingRoots`], once the mesh
    /// signs a root that contradicts the attested one).
    Truncation {
        /// The larger root the witness attested.
        earlier: SignedRoot,
        /// The smaller root the mesh served as its latest.
        later: SignedRoot,
    },
    /// A consistency proof that hashes into `later` and yields `old_root` at `earlier`'s
    /// size, where the mesh had signed another root.
    InconsistentExtension {
        /// The root witnessed before.
        earlier: SignedRoot,
        /// The new root.
        later: SignedRoot,
        /// The root at `earlier.size` that the mesh's current tree has.
        old_root: Blake3Hash,
        /// The mesh's consistency proof from `old_root` to `later`.
        proof: ConsistencyProofJson,
    },
    /// The mesh did not prove that `later` extends `earlier` (a claim: the mesh can answer
    /// it with a valid proof).
    NoConsistencyProof {
        /// The root witnessed before.
        earlier: SignedRoot,
        /// The new root.
        later: SignedRoot,
        /// The proof served, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<ConsistencyProofJson>,
        /// Why it failed.
        error: String,
    },
    /// A sampled receipt that was missing, or not in the signed tree as served.
    BadSample {
        /// The root the sample was checked against.
        root: SignedRoot,
        /// Its sequence.
        sequence: u64,
        /// The line served, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<String>,
        /// The inclusion proof served, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inclusion: Option<InclusionProofJson>,
        /// What was wrong.
        error: String,
    },
    /// A sampled receipt whose schema version is not the agreed one.
    SchemaIncompatible {
        /// The root the sample was checked against.
        root: SignedRoot,
        /// Its sequence.
        sequence: u64,
        /// The version agreed for the scroll.
        agreed: String,
        /// The version the receipt carries.
        found: String,
    },
    /// The anchor proof that did not verify.
    AnchorInvalid {
        /// The notification, with its proof.
        notification: Box<AnchorNotification>,
        /// Why it failed.
        error: String,
    },
    /// A root signed too far from the witness's clock.
    TimestampDrift {
        /// The root.
        root: SignedRoot,
        /// The witness's clock when it checked.
        witness_time: Timestamp,
        /// The limit, in seconds.
        limit_secs: i64,
    },
}

/// Why evidence does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// A signed root in it is not signed by the mesh's key.
    #[error("a signed root in the evidence does not verify: {0}")]
    Signature(String),
    /// The roots are of different meshes or scrolls.
    #[error("the evidence mixes roots of different meshes or scrolls")]
    Mixed,
    /// The roots do not conflict after all.
    #[error("the evidence does not show a conflict: {0}")]
    NoConflict(String),
}

/// What checked evidence amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The signed material alone proves the mesh signed two views no append-only log has.
    Proof,
    /// Signatures check, but the finding is the witness's account (the mesh may answer it).
    Claim,
}

impl ConflictEvidence {
    /// The kind's name (`conflicting_roots`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ConflictingRoots { .. } => "conflicting_roots",
            Self::Rollback { .. } => "rollback",
            Self::Truncation { .. } => "truncation",
            Self::InconsistentExtension { .. } => "inconsistent_extension",
            Self::NoConsistencyProof { .. } => "no_consistency_proof",
            Self::BadSample { .. } => "bad_sample",
            Self::SchemaIncompatible { .. } => "schema_incompatible",
            Self::AnchorInvalid { .. } => "anchor_invalid",
            Self::TimestampDrift { .. } => "timestamp_drift",
        }
    }

    /// Every root signed by the witnessed mesh that the evidence carries.
    pub fn signed_roots(&self) -> Vec<SignedRoot> {
        match self {
            Self::ConflictingRoots { earlier, later }
            | Self::Rollback { earlier, later }
            | Self::Truncation { earlier, later }
            | Self::InconsistentExtension { earlier, later, .. }
            | Self::NoConsistencyProof { earlier, later, .. } => {
                vec![earlier.clone(), later.clone()]
            }
            Self::BadSample { root, .. }
            | Self::SchemaIncompatible { root, .. }
            | Self::TimestampDrift { root, .. } => vec![root.clone()],
            Self::AnchorInvalid { notification, .. } => vec![notification.signed_root()],
        }
    }

    /// Checks the evidence with the witnessed mesh's `key`: every signed root in it, and for
    /// the proving kinds, that the conflict really holds.
    pub fn verify(&self, key: &PublicKey) -> Result<Standing, EvidenceError> {
        let check = |r: &SignedRoot| {
            r.verify(key)
                .map_err(|e| EvidenceError::Signature(e.to_string()))
        };
        let pair = |a: &SignedRoot, b: &SignedRoot| {
            check(a)?;
            check(b)?;
            if a.mesh_id != b.mesh_id || a.scroll != b.scroll {
                return Err(EvidenceError::Mixed);
            }
            Ok(())
        };
        match self {
            Self::ConflictingRoots { earlier, later } => {
                pair(earlier, later)?;
                if earlier.size != later.size || earlier.root == later.root {
                    return Err(EvidenceError::NoConflict(
                        "the two roots are not of one size with different hashes".into(),
                    ));
                }
                Ok(Standing::Proof)
            }
            Self::Rollback { earlier, later } | Self::Truncation { earlier, later } => {
                pair(earlier, later)?;
                if later.size >= earlier.size {
                    return Err(EvidenceError::NoConflict(
                        "the later root is not smaller than the earlier one".into(),
                    ));
                }
                Ok(Standing::Claim)
            }
            Self::InconsistentExtension {
                earlier,
                later,
                old_root,
                proof,
            } => {
                pair(earlier, later)?;
                if proof.old_size != earlier.size || proof.new_size != later.size {
                    return Err(EvidenceError::NoConflict(
                        "the proof's sizes are not the signed roots' sizes".into(),
                    ));
                }
                if *old_root == earlier.root {
                    return Err(EvidenceError::NoConflict(
                        "the proof's old root is the signed one".into(),
                    ));
                }
                proof.verify(old_root, &later.root).map_err(|e| {
                    EvidenceError::NoConflict(format!(
                        "the proof does not lead to the later signed root: {e}"
                    ))
                })?;
                Ok(Standing::Proof)
            }
            Self::NoConsistencyProof { earlier, later, .. } => {
                pair(earlier, later)?;
                Ok(Standing::Claim)
            }
            Self::BadSample { root, .. }
            | Self::SchemaIncompatible { root, .. }
            | Self::TimestampDrift { root, .. } => {
                check(root)?;
                Ok(Standing::Claim)
            }
            Self::AnchorInvalid { notification, .. } => {
                check(&notification.signed_root())?;
                Ok(Standing::Claim)
            }
        }
    }
}
