//! What a witness keeps when a check fails: the signed material itself, so that anyone with
//! the witnessed mesh's public key can check the claim without trusting the witness.
//!
//! Three kinds are *proofs* on their own: two roots the mesh signed that no append-only log
//! can have produced (same size, different roots; a later, smaller tree; or a consistency
//! proof, checked against the later root, that yields another root at the earlier size than
//! the one the mesh signed). A third party needs nothing else: the consistency path hashes
//! into the later signed root, so a witness cannot invent it without a blake3 collision.
//! The other kinds record what was seen (a proof that did not verify, a sample that was
//! missing) and are claims: the mesh can answer them by serving a correct proof.

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
    /// A root signed later for a smaller tree than one signed before.
    Rollback {
        /// The larger, earlier root.
        earlier: SignedRoot,
        /// The smaller, later root.
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
            Self::InconsistentExtension { .. } => "inconsistent_extension",
            Self::NoConsistencyProof { .. } => "no_consistency_proof",
            Self::BadSample { .. } => "bad_sample",
            Self::SchemaIncompatible { .. } => "schema_incompatible",
            Self::AnchorInvalid { .. } => "anchor_invalid",
            Self::TimestampDrift { .. } => "timestamp_drift",
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
            Self::Rollback { earlier, later } => {
                pair(earlier, later)?;
                if later.size >= earlier.size || later.timestamp <= earlier.timestamp {
                    return Err(EvidenceError::NoConflict(
                        "the later root is not both newer and smaller".into(),
                    ));
                }
                Ok(Standing::Proof)
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
