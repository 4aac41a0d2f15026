//! Arbitration (seed §6.3 step 3, "Arbitration: third-party mesh verification"): a party of a
//! finding asks a third mesh that witnesses the reported mesh to check the finding; the
//! arbiter answers both parties with a signed verdict, which all three append as
//! `fed_arbitration_verdict`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Document, DocumentError, Extra, SignatureField, SignedRoot, check_len, invalid,
    signed_with_field,
};
use crate::documents::DiscrepancyReport;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// A party's signed request that `arbiter` check a finding: the signed report and its
/// evidence, as the parties hold them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArbitrationRequest {
    /// Unique per requesting mesh.
    pub arbitration_id: DocumentId,
    /// The party asking (the reporting or the reported mesh).
    pub requested_by: MeshId,
    /// The third mesh asked.
    pub arbiter: MeshId,
    /// The finding, signed by its reporting mesh.
    pub report: DiscrepancyReport,
    /// The evidence its `evidence_hash` names.
    pub evidence: Value,
    /// When.
    pub timestamp: Timestamp,
    /// KIND `arbitration`, by `requested_by`.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for ArbitrationRequest {
    const NAME: &'static str = "ArbitrationRequest";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        let b = &self.report.body;
        b.check::<Self>()?;
        if self.requested_by != b.reporting_mesh && self.requested_by != b.reported_mesh {
            return Err(invalid::<Self>(
                "requested_by",
                format!("{} is no party to the finding", self.requested_by),
            ));
        }
        if self.arbiter == b.reporting_mesh || self.arbiter == b.reported_mesh {
            return Err(invalid::<Self>(
                "arbiter",
                "the arbiter must be a third mesh, not a party to the finding",
            ));
        }
        Ok(())
    }
}

signed_with_field!(ArbitrationRequest, Kind::Arbitration);

/// What the arbiter found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArbitrationOutcome {
    /// The finding stands: its evidence is a proof, or the arbiter's own view contradicts the
    /// reported mesh.
    Upheld,
    /// The finding does not stand: its evidence does not check out.
    NotUpheld,
    /// The evidence is a claim the arbiter's own view can neither confirm nor refute.
    Inconclusive,
}

impl fmt::Display for ArbitrationOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Upheld => "upheld",
            Self::NotUpheld => "not_upheld",
            Self::Inconclusive => "inconclusive",
        })
    }
}

/// The arbiter's signed verdict, sent to both parties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArbitrationVerdict {
    /// The request answered.
    pub arbitration_id: DocumentId,
    /// Who asked.
    pub requested_by: MeshId,
    /// The finding.
    pub discrepancy_id: DocumentId,
    /// Who made it.
    pub reporting_mesh: MeshId,
    /// Whom it concerns.
    pub reported_mesh: MeshId,
    /// Its scroll.
    pub scroll: ScrollName,
    /// The arbiter.
    pub arbiter: MeshId,
    /// What the arbiter found.
    pub outcome: ArbitrationOutcome,
    /// What the evidence amounts to with the reported mesh's key: `proof`, `claim`, `invalid`.
    pub evidence_standing: String,
    /// Why, in words.
    pub reason: String,
    /// The arbiter's own latest witnessed root of the scroll (signed by the reported mesh),
    /// if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arbiter_view: Option<SignedRoot>,
    /// When.
    pub timestamp: Timestamp,
    /// KIND `verdict`, by the arbiter.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for ArbitrationVerdict {
    const NAME: &'static str = "ArbitrationVerdict";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        check_len::<Self>("reason", &self.reason, 2048)?;
        if self.reporting_mesh == self.reported_mesh {
            return Err(invalid::<Self>(
                "reported_mesh",
                "a mesh does not report itself",
            ));
        }
        if self.arbiter == self.reporting_mesh || self.arbiter == self.reported_mesh {
            return Err(invalid::<Self>(
                "arbiter",
                "the arbiter must be a third mesh, not a party to the finding",
            ));
        }
        if self.requested_by != self.reporting_mesh && self.requested_by != self.reported_mesh {
            return Err(invalid::<Self>(
                "requested_by",
                format!("{} is no party to the finding", self.requested_by),
            ));
        }
        if !["proof", "claim", "invalid"].contains(&self.evidence_standing.as_str()) {
            return Err(invalid::<Self>(
                "evidence_standing",
                "must be proof, claim or invalid",
            ));
        }
        if let Some(view) = &self.arbiter_view
            && (view.mesh_id != self.reported_mesh || view.scroll != self.scroll)
        {
            return Err(invalid::<Self>(
                "arbiter_view",
                "must be a root of the reported mesh's scroll",
            ));
        }
        Ok(())
    }
}

signed_with_field!(ArbitrationVerdict, Kind::Verdict);
