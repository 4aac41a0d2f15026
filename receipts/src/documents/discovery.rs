//! DiscoveryRecord (seed §3.1, DESIGN §5): how a mesh introduces itself.

use serde::{Deserialize, Serialize};

use super::{
    Document, DocumentError, Extra, SignatureField, TrustLevel, check_len, check_unique, invalid,
    signed_with_field,
};
use crate::id::{MeshId, ScrollName};
use crate::key::{Kind, PublicKey};
use crate::timestamp::Timestamp;

/// Limits that keep a record within a Kademlia value (16 KiB) and bounded to process.
const MAX_MULTIADDRS: usize = 16;
const MAX_SCROLLS: usize = 64;
const MAX_ATTESTATIONS: usize = 32;

/// A mesh's signed self-description, published in the DHT, over HTTP and via DNS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryRecord {
    /// The mesh.
    pub mesh_id: MeshId,
    /// A human name.
    pub display_name: String,
    /// HTTPS endpoints of the federation API.
    pub endpoints: Endpoints,
    /// The mesh key; it signs this record.
    pub public_key: PublicKey,
    /// Scrolls the mesh offers to share.
    pub scrolls_available: Vec<ScrollName>,
    /// Whether and on what terms it takes proposals.
    pub trust_policy: TrustPolicy,
    /// Claims other meshes made about this one.
    #[serde(default)]
    pub attestations: Vec<Attestation>,
    /// The libp2p PeerId of `public_key`.
    pub peer_id: String,
    /// libp2p addresses (`/ip4/…/tcp/…`).
    pub multiaddrs: Vec<String>,
    /// When the record was made; newer replaces older.
    pub updated_at: Timestamp,
    /// KIND `discovery`, by `public_key`.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Federation API endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Endpoints {
    /// Base URL of the federation API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<String>,
    /// Base URL of the public verification service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What proposals a mesh takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustPolicy {
    /// Whether proposals are accepted at all.
    pub accepts_proposals: bool,
    /// The lowest trust level it federates at.
    pub min_trust_level: TrustLevel,
    /// Whether it only federates mutually.
    pub requires_mutual: bool,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A claim by another mesh about this one (not verified by the record's own signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// Who claims it.
    pub attester: MeshId,
    /// When.
    pub attested_at: Timestamp,
    /// What (`identity_verified`, …).
    pub attestation_type: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for DiscoveryRecord {
    const NAME: &'static str = "DiscoveryRecord";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        check_len::<Self>("display_name", &self.display_name, 256)?;
        if self.peer_id != self.public_key.peer_id() {
            return Err(invalid::<Self>(
                "peer_id",
                format!(
                    "{} is not the PeerId of public_key (expected {})",
                    crate::error::shown(&self.peer_id),
                    self.public_key.peer_id()
                ),
            ));
        }
        for (field, url) in [
            ("endpoints.federation", &self.endpoints.federation),
            ("endpoints.verification", &self.endpoints.verification),
        ] {
            if let Some(url) = url {
                check_len::<Self>(field, url, 512)?;
                if !url.starts_with("https://") {
                    return Err(invalid::<Self>(field, "must be an https:// URL"));
                }
            }
        }
        if self.scrolls_available.len() > MAX_SCROLLS {
            return Err(invalid::<Self>(
                "scrolls_available",
                format!("at most {MAX_SCROLLS} scrolls"),
            ));
        }
        check_unique::<Self, _>("scrolls_available", &self.scrolls_available)?;
        if self.multiaddrs.len() > MAX_MULTIADDRS {
            return Err(invalid::<Self>(
                "multiaddrs",
                format!("at most {MAX_MULTIADDRS} addresses"),
            ));
        }
        for addr in &self.multiaddrs {
            check_len::<Self>("multiaddrs", addr, 256)?;
            if !addr.starts_with('/') {
                return Err(invalid::<Self>(
                    "multiaddrs",
                    format!("{addr:?} is not a multiaddr"),
                ));
            }
        }
        if self.attestations.len() > MAX_ATTESTATIONS {
            return Err(invalid::<Self>(
                "attestations",
                format!("at most {MAX_ATTESTATIONS} attestations"),
            ));
        }
        for a in &self.attestations {
            check_len::<Self>("attestations.attestation_type", &a.attestation_type, 64)?;
        }
        Ok(())
    }
}

signed_with_field!(DiscoveryRecord, Kind::Discovery);

impl DiscoveryRecord {
    /// Checks the record's signature against its own `public_key` (the key ↔ PeerId binding
    /// is checked when it is parsed).
    pub fn verify_self_signed(&self) -> Result<(), DocumentError> {
        use super::SignedDocument;
        self.verify(&self.public_key)
    }
}
