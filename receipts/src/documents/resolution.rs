//! DiscrepancyResolution (seed §6.3 "Manual: human review of divergence"): one party's signed
//! word on how a finding ended. The same fields, with `tags` and `root_hash`, are the
//! `fed_discrepancy_resolved` receipt both parties append.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Document, DocumentError, Extra, SignatureField, check_len, invalid, signed_with_field,
};
use crate::id::{DocumentId, MeshId};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// Longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 1024;

/// How a finding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionOutcome {
    /// The meshes re-synchronised and the finding no longer stands (seed §6.3 step 1).
    Resynced,
    /// The finding was wrong (a witness's fault, a clock, a misconfiguration).
    FalseAlarm,
    /// The finding stands: the reported mesh's history did diverge.
    Confirmed,
}

impl ResolutionOutcome {
    /// Every outcome, in the order the CLI lists them.
    pub const ALL: [Self; 3] = [Self::Resynced, Self::FalseAlarm, Self::Confirmed];

    /// The JSON form (`resynced`, `false_alarm`, `confirmed`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Resynced => "resynced",
            Self::FalseAlarm => "false_alarm",
            Self::Confirmed => "confirmed",
        }
    }
}

impl fmt::Display for ResolutionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResolutionOutcome {
    type Err = String;

    /// Accepts the JSON form and the CLI's (`false-alarm`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == wanted)
            .ok_or_else(|| {
                format!("{s:?} is not an outcome: expected resynced, false-alarm or confirmed")
            })
    }
}

/// A party's signed resolution of a finding, sent to the other party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscrepancyResolution {
    /// The finding (its `discrepancy_id`, unique per reporting mesh).
    pub discrepancy_id: DocumentId,
    /// Who made the finding.
    pub reporting_mesh: MeshId,
    /// Whom it concerned.
    pub reported_mesh: MeshId,
    /// Who resolves it here: the reporting or the reported mesh.
    pub resolved_by: MeshId,
    /// How it ended.
    pub outcome: ResolutionOutcome,
    /// The operator's words.
    pub note: String,
    /// When.
    pub timestamp: Timestamp,
    /// KIND `resolution`, by `resolved_by`.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DiscrepancyResolution {
    /// The party that is not `resolved_by`.
    pub fn other_party(&self) -> &MeshId {
        if self.resolved_by == self.reporting_mesh {
            &self.reported_mesh
        } else {
            &self.reporting_mesh
        }
    }
}

impl Document for DiscrepancyResolution {
    const NAME: &'static str = "DiscrepancyResolution";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        check_len::<Self>("note", &self.note, MAX_NOTE_CHARS)?;
        if self.reporting_mesh == self.reported_mesh {
            return Err(invalid::<Self>(
                "reported_mesh",
                "a mesh does not report itself",
            ));
        }
        if self.resolved_by != self.reporting_mesh && self.resolved_by != self.reported_mesh {
            return Err(invalid::<Self>(
                "resolved_by",
                format!(
                    "{} is neither the reporting nor the reported mesh",
                    self.resolved_by
                ),
            ));
        }
        Ok(())
    }
}

signed_with_field!(DiscrepancyResolution, Kind::Resolution);
