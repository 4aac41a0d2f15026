//! RevocationNotice (DESIGN §5): ends an agreement after a notice period.

use serde::{Deserialize, Serialize};

use super::{
    Document, DocumentError, Extra, SignatureField, check_len, invalid, signed_with_field,
};
use crate::id::{DocumentId, MeshId};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// Longest notice period accepted (ten years).
const MAX_NOTICE_DAYS: u32 = 3650;

/// A party's signed notice that an agreement ends at `effective_at`; until then it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevocationNotice {
    /// The agreement.
    pub agreement_id: DocumentId,
    /// The party revoking.
    pub revoked_by: MeshId,
    /// Why.
    pub reason: String,
    /// Days of notice given.
    pub notice_days: u32,
    /// When the revocation takes effect.
    pub effective_at: Timestamp,
    /// KIND `revocation`, by `revoked_by`.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for RevocationNotice {
    const NAME: &'static str = "RevocationNotice";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        check_len::<Self>("reason", &self.reason, 1024)?;
        if self.notice_days > MAX_NOTICE_DAYS {
            return Err(invalid::<Self>(
                "notice_days",
                format!("at most {MAX_NOTICE_DAYS}"),
            ));
        }
        Ok(())
    }
}

signed_with_field!(RevocationNotice, Kind::Revocation);
