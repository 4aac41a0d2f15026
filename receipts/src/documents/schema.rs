//! SchemaSync (seed §7): the receipt schema versions two meshes agree on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Document, DocumentError, Extra, SignatureField, check_unique, invalid, signed_with_field,
};
use crate::hash::Blake3Hash;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// One scroll's schema version and the hash of its schema document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaVersion {
    /// Semantic version (`1.2.0`).
    pub version: String,
    /// Hash of the schema document.
    pub hash: Blake3Hash,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A signed schema synchronisation between meshes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaSync {
    /// Unique id.
    pub sync_id: DocumentId,
    /// The meshes that agree.
    pub meshes: Vec<MeshId>,
    /// When.
    pub timestamp: Timestamp,
    /// Versions per scroll.
    pub schemas_synced: BTreeMap<ScrollName, SchemaVersion>,
    /// Whether old receipts still validate.
    pub backward_compatible: bool,
    /// Whether stored receipts must be migrated.
    pub migration_required: bool,
    /// KIND `schema`, by the mesh sending it.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for SchemaSync {
    const NAME: &'static str = "SchemaSync";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        if self.meshes.len() < 2 {
            return Err(invalid::<Self>("meshes", "at least two meshes synchronise"));
        }
        check_unique::<Self, _>("meshes", &self.meshes)?;
        for (scroll, v) in &self.schemas_synced {
            if v.version.is_empty() || v.version.len() > 32 {
                return Err(invalid::<Self>(
                    "schemas_synced",
                    format!("{scroll}: version must be 1-32 characters"),
                ));
            }
        }
        Ok(())
    }
}

signed_with_field!(SchemaSync, Kind::Schema);
