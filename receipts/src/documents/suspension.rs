//! SuspensionNotice (seed §6.3 step 4, "Escalation: federation suspension pending
//! resolution"): a party's signed word that it stops (or starts again) witnessing under an
//! agreement. Both parties append it inside `fed_trust_suspended` / `fed_trust_resumed`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    Document, DocumentError, Extra, SignatureField, check_len, invalid, signed_with_field,
};
use crate::id::{DocumentId, MeshId};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// Suspend or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspensionAction {
    /// Witnessing stops until the suspending party resumes it.
    Suspend,
    /// The suspending party lifts its suspension.
    Resume,
}

impl fmt::Display for SuspensionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Suspend => "suspend",
            Self::Resume => "resume",
        })
    }
}

/// A party's signed suspension (or resumption) of an agreement, sent to the other party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspensionNotice {
    /// The agreement.
    pub agreement_id: DocumentId,
    /// The party suspending or resuming.
    pub suspended_by: MeshId,
    /// Which.
    pub action: SuspensionAction,
    /// 1 for the first notice `suspended_by` gives under this agreement, then 2, …: the
    /// receiver applies only a notice newer than the last it holds (two notices can share a
    /// second, and messages can overtake each other).
    pub sequence: u64,
    /// Why.
    pub reason: String,
    /// The finding behind it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrepancy_id: Option<DocumentId>,
    /// When.
    pub timestamp: Timestamp,
    /// KIND `suspension`, by `suspended_by`.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for SuspensionNotice {
    const NAME: &'static str = "SuspensionNotice";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        check_len::<Self>("reason", &self.reason, 1024)?;
        if self.sequence == 0 {
            return Err(invalid::<Self>("sequence", "notices are numbered from 1"));
        }
        Ok(())
    }
}

signed_with_field!(SuspensionNotice, Kind::Suspension);
