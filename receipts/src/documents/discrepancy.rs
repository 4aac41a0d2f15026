//! DiscrepancyReport (seed §6.2): what a witness found wrong, signed and sent to the mesh it
//! concerns. The same body is the `fed_discrepancy` receipt.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Document, DocumentError, Extra, SignatureField, invalid, signed_with_field};
use crate::hash::Blake3Hash;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// Seed §6.1 discrepancy types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyType {
    /// A claimed root does not match the computed one (or two signed roots conflict).
    RootMismatch,
    /// An anchor proof fails verification.
    AnchorInvalid,
    /// A timestamp is outside the tolerance.
    TimestampDrift,
    /// A receipt's schema version is not the agreed one.
    SchemaIncompatible,
    /// A requested receipt was not found.
    SampleMissing,
}

impl DiscrepancyType {
    /// The severity the seed assigns.
    pub const fn severity(self) -> Severity {
        match self {
            Self::RootMismatch | Self::AnchorInvalid => Severity::Critical,
            Self::TimestampDrift | Self::SchemaIncompatible => Severity::Warning,
            Self::SampleMissing => Severity::Info,
        }
    }
}

impl fmt::Display for DiscrepancyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RootMismatch => "root_mismatch",
            Self::AnchorInvalid => "anchor_invalid",
            Self::TimestampDrift => "timestamp_drift",
            Self::SchemaIncompatible => "schema_incompatible",
            Self::SampleMissing => "sample_missing",
        })
    }
}

/// Seed §6.1 severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention.
    Warning,
    /// History may have been rewritten.
    Critical,
}

/// What was found, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyDetails {
    /// The scroll concerned.
    pub scroll: ScrollName,
    /// The root the mesh claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_root: Option<Blake3Hash>,
    /// The root the witness computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_root: Option<Blake3Hash>,
    /// Receipts sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_receipts_checked: Option<u64>,
    /// `receipt-sequence-<n>` of the first receipt that differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_divergence_at: Option<String>,
    /// Further details (the conflicting signed roots, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// The fields a report and its receipt share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyBody {
    /// Unique per reporter.
    pub discrepancy_id: DocumentId,
    /// Who found it.
    pub reporting_mesh: MeshId,
    /// Whom it concerns.
    pub reported_mesh: MeshId,
    /// When.
    pub timestamp: Timestamp,
    /// What kind.
    pub discrepancy_type: DiscrepancyType,
    /// How bad (the seed's table, checked).
    pub severity: Severity,
    /// What and where.
    pub details: DiscrepancyDetails,
    /// blake3 of the JCS of the evidence object as sent (`{"kind": …, …}`; for a split view,
    /// its `earlier` and `later` signed roots), see docs/formats.md §4.
    pub evidence_hash: Blake3Hash,
    /// Whether the reporter asks for resolution (seed §6.3).
    pub resolution_requested: bool,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DiscrepancyBody {
    pub(crate) fn check<T: Document>(&self) -> Result<(), DocumentError> {
        if self.reporting_mesh == self.reported_mesh {
            return Err(invalid::<T>(
                "reported_mesh",
                "a mesh does not report itself",
            ));
        }
        if self.severity != self.discrepancy_type.severity() {
            return Err(invalid::<T>(
                "severity",
                format!(
                    "{} has severity {:?}, not {:?}",
                    self.discrepancy_type,
                    self.discrepancy_type.severity(),
                    self.severity
                ),
            ));
        }
        Ok(())
    }
}

/// A signed discrepancy report, sent to the reported mesh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscrepancyReport {
    /// The finding.
    #[serde(flatten)]
    pub body: DiscrepancyBody,
    /// KIND `discrepancy`, by the reporting mesh.
    pub signature: SignatureField,
}

impl Document for DiscrepancyReport {
    const NAME: &'static str = "DiscrepancyReport";
    const SIGNED: bool = true;

    fn from_json_value(value: serde_json::Value) -> Result<Self, DocumentError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Own {
            signature: SignatureField,
        }
        let (body, own) = super::split_body::<Self, DiscrepancyBody>(value, &["signature"])?;
        let own: Own = super::own_fields::<Self, _>(own)?;
        let report = Self {
            body,
            signature: own.signature,
        };
        report.validate()?;
        Ok(report)
    }

    fn validate(&self) -> Result<(), DocumentError> {
        self.body.check::<Self>()
    }
}

signed_with_field!(DiscrepancyReport, Kind::Discrepancy);
