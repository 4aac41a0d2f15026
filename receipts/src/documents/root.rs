//! SignedRoot (the ROOT file and gossip announcements) and AnchorNotification (seed §4.1).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Document, DocumentError, Extra, SignatureField, SignedDocument, invalid, signed_with_field,
};
use crate::hash::Blake3Hash;
use crate::id::{MeshId, ScrollName};
use crate::jcs;
use crate::key::{Kind, MeshKey, PublicKey};
use crate::timestamp::Timestamp;

/// A mesh's signed statement "scroll S has `size` receipts and Merkle root `root`".
///
/// The signature (KIND `root`) covers exactly the five other fields, so unknown fields are
/// refused here rather than carried unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRoot {
    /// Whose scroll.
    pub mesh_id: MeshId,
    /// Which scroll.
    pub scroll: ScrollName,
    /// How many receipts the root covers.
    pub size: u64,
    /// The Merkle root at that size.
    pub root: Blake3Hash,
    /// When it was signed.
    pub timestamp: Timestamp,
    /// KIND `root`, by the mesh key.
    pub signature: SignatureField,
}

impl Document for SignedRoot {
    const NAME: &'static str = "SignedRoot";
    const SIGNED: bool = true;
}

signed_with_field!(SignedRoot, Kind::Root);

impl SignedRoot {
    /// Signs a root statement.
    pub fn new(
        key: &MeshKey,
        mesh_id: MeshId,
        scroll: ScrollName,
        size: u64,
        root: Blake3Hash,
        timestamp: Timestamp,
    ) -> Result<Self, DocumentError> {
        let mut signed = Self {
            mesh_id,
            scroll,
            size,
            root,
            timestamp,
            signature: SignatureField::unsigned(),
        };
        signed.sign(key)?;
        Ok(signed)
    }

    /// The anchor-batch leaf for this root: `JCS({"mesh_id","scroll","size","root"})`.
    pub fn anchor_leaf(&self) -> Vec<u8> {
        Self::anchor_leaf_of(&self.mesh_id, &self.scroll, self.size, &self.root)
    }

    /// The anchor-batch leaf of a root known by its four fields (a cross-anchor receipt
    /// records them without the root's signature).
    pub fn anchor_leaf_of(
        mesh_id: &MeshId,
        scroll: &ScrollName,
        size: u64,
        root: &Blake3Hash,
    ) -> Vec<u8> {
        let value = json!({
            "mesh_id": mesh_id.to_string(),
            "scroll": scroll.to_string(),
            "size": size,
            "root": root.to_string(),
        });
        // Strings and an integer the type system keeps below 2^64; sizes beyond 2^53 cannot
        // occur in a log on one machine, and would fail loudly here rather than round.
        jcs::to_vec_integers_only(&value).unwrap_or_default()
    }
}

/// How a root was anchored: its place in an anchor batch, and the backend's proof of the
/// batch root (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorProof {
    /// `local`, `rfc3161`, `peer`, `ethereum`, `bitcoin`.
    pub backend: String,
    /// Root of the anchor batch.
    pub batch_root: Blake3Hash,
    /// This root's leaf in the batch.
    pub leaf_index: u64,
    /// Leaves in the batch.
    pub batch_size: u64,
    /// Inclusion path of the leaf in the batch.
    pub merkle_path: Vec<Blake3Hash>,
    /// The backend's own fields (a signature, a time-stamp token, a transaction).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An anchor notification (seed §4.1 step 2): a signed root and the proof it was anchored.
/// The proof sits outside the root's signature: it is made after the root is signed and
/// verifies on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorNotification {
    /// Whose scroll.
    pub mesh_id: MeshId,
    /// Which scroll.
    pub scroll: ScrollName,
    /// Receipts covered.
    pub size: u64,
    /// Merkle root.
    pub root: Blake3Hash,
    /// When the root was signed.
    pub timestamp: Timestamp,
    /// The root's signature (KIND `root`).
    pub signature: SignatureField,
    /// How it was anchored.
    pub anchor_proof: AnchorProof,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for AnchorNotification {
    const NAME: &'static str = "AnchorNotification";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        let p = &self.anchor_proof;
        if p.leaf_index >= p.batch_size {
            return Err(invalid::<Self>(
                "anchor_proof.leaf_index",
                "must be below batch_size",
            ));
        }
        if p.merkle_path.len() > 64 {
            return Err(invalid::<Self>(
                "anchor_proof.merkle_path",
                "longer than 64 hashes",
            ));
        }
        if p.backend.is_empty() || p.backend.len() > 32 {
            return Err(invalid::<Self>(
                "anchor_proof.backend",
                "must be 1-32 characters",
            ));
        }
        Ok(())
    }
}

impl AnchorNotification {
    /// Wraps a signed root with its anchor proof.
    pub fn new(root: SignedRoot, anchor_proof: AnchorProof) -> Self {
        Self {
            mesh_id: root.mesh_id,
            scroll: root.scroll,
            size: root.size,
            root: root.root,
            timestamp: root.timestamp,
            signature: root.signature,
            anchor_proof,
            extra: Extra::new(),
        }
    }

    /// The signed root inside.
    pub fn signed_root(&self) -> SignedRoot {
        SignedRoot {
            mesh_id: self.mesh_id.clone(),
            scroll: self.scroll.clone(),
            size: self.size,
            root: self.root,
            timestamp: self.timestamp,
            signature: self.signature,
        }
    }

    /// Checks the root's signature with `key`.
    pub fn verify_root(&self, key: &PublicKey) -> Result<(), DocumentError> {
        self.signed_root().verify(key)
    }
}
