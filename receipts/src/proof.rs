//! The JSON forms of Merkle proofs (DESIGN §4), and the self-contained receipt proof a third
//! party checks with the mesh's key alone.
//!
//! Inclusion `{"leaf_index","tree_size","path":[hash…]}`; consistency
//! `{"old_size","new_size","path":[hash…]}`; hashes as `blake3:<hex>`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::documents::{AnchorProof, Document, DocumentError, SignedDocument, SignedRoot};
use crate::hash::Blake3Hash;
use crate::jcs::{self, Numbers};
use crate::key::PublicKey;
use crate::merkle::{self, Blake3Hasher, ConsistencyProof, InclusionProof, TreeHasher};

/// An inclusion proof in its wire form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProofJson {
    /// The receipt's sequence.
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// Sibling hashes, leaf to root.
    pub path: Vec<Blake3Hash>,
}

impl Document for InclusionProofJson {
    const NAME: &'static str = "InclusionProof";
}

impl From<InclusionProof> for InclusionProofJson {
    fn from(p: InclusionProof) -> Self {
        Self {
            leaf_index: p.leaf_index,
            tree_size: p.tree_size,
            path: p.path.into_iter().map(Blake3Hash::from_bytes).collect(),
        }
    }
}

impl From<&InclusionProofJson> for InclusionProof {
    fn from(p: &InclusionProofJson) -> Self {
        Self {
            leaf_index: p.leaf_index,
            tree_size: p.tree_size,
            path: p.path.iter().map(|h| *h.as_bytes()).collect(),
        }
    }
}

/// A consistency proof in its wire form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProofJson {
    /// The older size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// The proof hashes.
    pub path: Vec<Blake3Hash>,
}

impl Document for ConsistencyProofJson {
    const NAME: &'static str = "ConsistencyProof";
}

impl From<ConsistencyProof> for ConsistencyProofJson {
    fn from(p: ConsistencyProof) -> Self {
        Self {
            old_size: p.old_size,
            new_size: p.new_size,
            path: p.path.into_iter().map(Blake3Hash::from_bytes).collect(),
        }
    }
}

impl From<&ConsistencyProofJson> for ConsistencyProof {
    fn from(p: &ConsistencyProofJson) -> Self {
        Self {
            old_size: p.old_size,
            new_size: p.new_size,
            path: p.path.iter().map(|h| *h.as_bytes()).collect(),
        }
    }
}

impl ConsistencyProofJson {
    /// Checks that `new_root` extends `old_root`.
    pub fn verify(
        &self,
        old_root: &Blake3Hash,
        new_root: &Blake3Hash,
    ) -> Result<(), merkle::ProofError> {
        merkle::verify_consistency::<Blake3Hasher>(
            &self.into(),
            old_root.as_bytes(),
            new_root.as_bytes(),
        )
    }
}

/// Everything a third party needs to check that a receipt is in a mesh's scroll: the receipt
/// as stored, its inclusion proof, and the mesh's signed root it is proven against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptProof {
    /// The receipt exactly as its scroll line holds it (with `root_hash`).
    pub receipt: Value,
    /// Its inclusion in the tree of `signed_root.size` receipts.
    pub inclusion: InclusionProofJson,
    /// The mesh's signed root.
    pub signed_root: SignedRoot,
    /// How that root was anchored (DESIGN §7), when the proof is against an anchored root.
    /// It is checked by the node's anchor verifier, which knows the backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_proof: Option<AnchorProof>,
}

impl Document for ReceiptProof {
    const NAME: &'static str = "ReceiptProof";
}

/// Why a receipt proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptProofError {
    /// The signed root's signature is bad.
    #[error(transparent)]
    Root(#[from] DocumentError),
    /// The receipt is not a JSON object with a `root_hash`, or is not canonicalisable.
    #[error("receipt: {0}")]
    Receipt(String),
    /// The proof's size is not the signed root's.
    #[error("the proof is for tree size {proof}, the signed root for size {signed}")]
    SizeMismatch {
        /// Size in the proof.
        proof: u64,
        /// Size signed.
        signed: u64,
    },
    /// The Merkle path does not lead to the signed root.
    #[error(transparent)]
    Merkle(#[from] merkle::ProofError),
}

impl ReceiptProof {
    /// Checks the signature with `key`, then that the receipt's leaf is in the signed tree.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ReceiptProofError> {
        self.signed_root.verify(key)?;
        if self.inclusion.tree_size != self.signed_root.size {
            return Err(ReceiptProofError::SizeMismatch {
                proof: self.inclusion.tree_size,
                signed: self.signed_root.size,
            });
        }
        let Value::Object(mut map) = self.receipt.clone() else {
            return Err(ReceiptProofError::Receipt("not a JSON object".into()));
        };
        if map.remove("root_hash").is_none() {
            return Err(ReceiptProofError::Receipt("no root_hash".into()));
        }
        let leaf = jcs::to_vec(&Value::Object(map))
            .map_err(|e| ReceiptProofError::Receipt(e.to_string()))?;
        merkle::verify_inclusion::<Blake3Hasher>(
            &(&self.inclusion).into(),
            &Blake3Hasher::leaf(&leaf),
            self.signed_root.root.as_bytes(),
        )?;
        Ok(())
    }

    /// Parses a receipt proof (floats are allowed inside the receipt only).
    pub fn parse(bytes: &[u8]) -> Result<Self, DocumentError> {
        let value = jcs::parse(bytes, Numbers::Any).map_err(|source| DocumentError::Json {
            document: Self::NAME,
            source,
        })?;
        crate::documents::from_value(value)
    }
}
