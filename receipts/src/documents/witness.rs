//! WitnessAttestation (seed §4.1 step 5, DESIGN §5).

use serde::{Deserialize, Serialize};

use super::{Document, DocumentError, Extra, SignedDocument, invalid};
use crate::hash::Blake3Hash;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::key::{Kind, MeshKey, Signature};
use crate::timestamp::Timestamp;

/// The outcome of a witness cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WitnessResult {
    /// Every check passed.
    Verified,
    /// A check failed; a discrepancy was recorded.
    Discrepancy,
}

/// A witness's signed statement about a peer's root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WitnessAttestation {
    /// Unique per witness.
    pub witness_id: DocumentId,
    /// Whose root.
    pub witnessed_mesh: MeshId,
    /// Who witnessed.
    pub witnessing_mesh: MeshId,
    /// Which scroll.
    pub scroll: ScrollName,
    /// The root witnessed.
    pub witnessed_root: Blake3Hash,
    /// Its size.
    pub witnessed_size: u64,
    /// Verified or discrepancy.
    pub witness_result: WitnessResult,
    /// When.
    pub timestamp: Timestamp,
    /// KIND `witness`, by the witnessing mesh (a bare `z…` string, as in the seed).
    pub witness_signature: Signature,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for WitnessAttestation {
    const NAME: &'static str = "WitnessAttestation";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        if self.witnessed_mesh == self.witnessing_mesh {
            return Err(invalid::<Self>(
                "witnessing_mesh",
                "a mesh does not witness itself",
            ));
        }
        Ok(())
    }
}

impl SignedDocument for WitnessAttestation {
    const KIND: Kind = Kind::Witness;
    const SIGNATURE_FIELDS: &'static [&'static str] = &["witness_signature"];
    fn signature(&self) -> &Signature {
        &self.witness_signature
    }
    fn set_signature(&mut self, signature: Signature) {
        self.witness_signature = signature;
    }
}

impl WitnessAttestation {
    /// Builds and signs an attestation.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: &MeshKey,
        witness_id: DocumentId,
        witnessed_mesh: MeshId,
        witnessing_mesh: MeshId,
        scroll: ScrollName,
        witnessed_root: Blake3Hash,
        witnessed_size: u64,
        witness_result: WitnessResult,
        timestamp: Timestamp,
    ) -> Result<Self, DocumentError> {
        let mut attestation = Self {
            witness_id,
            witnessed_mesh,
            witnessing_mesh,
            scroll,
            witnessed_root,
            witnessed_size,
            witness_result,
            timestamp,
            witness_signature: Signature::from_bytes([0; 64]),
            extra: Extra::new(),
        };
        attestation.validate()?;
        attestation.sign(key)?;
        Ok(attestation)
    }
}
