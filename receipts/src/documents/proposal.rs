//! TrustProposal and ProposalResponse (seed §3.2–§3.3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Document, DocumentError, Extra, SignatureField, check_len, check_unique, invalid,
    signed_with_field,
};
use crate::hash::Blake3Hash;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::key::Kind;
use crate::timestamp::Timestamp;

/// Upper bound on `retention_period_days` (100 years): anything larger is a typo.
const MAX_RETENTION_DAYS: u32 = 36_500;
const MAX_SHARED_SCROLLS: usize = 64;

/// Trust level 0–4 (seed §1.3); what each permits is DESIGN §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct TrustLevel(u8);

impl TrustLevel {
    /// 0: no federation.
    pub const ISOLATED: Self = Self(0);
    /// 1: read-only witness.
    pub const OBSERVE: Self = Self(1);
    /// 2: mutual verification.
    pub const VERIFY: Self = Self(2);
    /// 3: cross-attestation.
    pub const ATTEST: Self = Self(3);
    /// 4: shared scrolls.
    pub const INTEGRATE: Self = Self(4);

    /// The level number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The seed's name for the level.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "isolated",
            1 => "observe",
            2 => "verify",
            3 => "attest",
            _ => "integrate",
        }
    }
}

impl TryFrom<u8> for TrustLevel {
    type Error = String;
    fn try_from(level: u8) -> Result<Self, Self::Error> {
        if level <= 4 {
            Ok(Self(level))
        } else {
            Err(format!("trust level {level} is not 0-4"))
        }
    }
}

impl From<TrustLevel> for u8 {
    fn from(level: TrustLevel) -> u8 {
        level.0
    }
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// How often the parties witness each other: `hourly`, `daily`, `weekly`, or `<n>s|m|h|d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationFrequency {
    interval_secs: u32,
}

impl VerificationFrequency {
    /// Every hour.
    pub const HOURLY: Self = Self {
        interval_secs: 3600,
    };
    /// Every day.
    pub const DAILY: Self = Self {
        interval_secs: 86_400,
    };
    /// Every week.
    pub const WEEKLY: Self = Self {
        interval_secs: 604_800,
    };

    /// The interval between cycles.
    pub const fn interval_secs(self) -> u32 {
        self.interval_secs
    }
}

impl FromStr for VerificationFrequency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hourly" => return Ok(Self::HOURLY),
            "daily" => return Ok(Self::DAILY),
            "weekly" => return Ok(Self::WEEKLY),
            _ => {}
        }
        let bad = || {
            format!(
                "{:?} is not hourly, daily, weekly or <n>s|m|h|d (n ≥ 1)",
                crate::error::shown(s)
            )
        };
        let unit_at = s.len().checked_sub(1).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(unit_at);
        let unit_secs: u32 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        if digits.is_empty()
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        let interval_secs = n
            .checked_mul(unit_secs)
            .filter(|s| *s <= 366 * 86_400)
            .ok_or_else(bad)?;
        Ok(Self { interval_secs })
    }
}

impl fmt::Display for VerificationFrequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.interval_secs;
        match s {
            3600 => f.write_str("hourly"),
            86_400 => f.write_str("daily"),
            604_800 => f.write_str("weekly"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for VerificationFrequency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VerificationFrequency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Terms as proposed or countered (seed §3.2 `proposed_terms`, §3.3 `counter_terms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedTerms {
    /// Scrolls each side lets the other witness.
    pub scrolls_to_share: Vec<ScrollName>,
    /// How often they witness each other.
    pub verification_frequency: VerificationFrequency,
    /// How long witnessed material is kept.
    pub retention_period_days: u32,
    /// Where the data may live (`EU`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_jurisdiction: Option<String>,
    /// Whether either side may audit the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_rights: Option<bool>,
    /// Further terms (`additional_requirement`, `dispute_resolution`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ProposedTerms {
    fn check<T: Document>(&self, field: &'static str) -> Result<(), DocumentError> {
        if self.scrolls_to_share.is_empty() {
            return Err(invalid::<T>(field, "scrolls_to_share is empty"));
        }
        if self.scrolls_to_share.len() > MAX_SHARED_SCROLLS {
            return Err(invalid::<T>(
                field,
                format!("more than {MAX_SHARED_SCROLLS} scrolls"),
            ));
        }
        check_unique::<T, _>(field, &self.scrolls_to_share)?;
        if self.retention_period_days > MAX_RETENTION_DAYS {
            return Err(invalid::<T>(
                field,
                format!("retention_period_days above {MAX_RETENTION_DAYS}"),
            ));
        }
        if let Some(j) = &self.data_jurisdiction {
            check_len::<T>(field, j, 64)?;
        }
        Ok(())
    }
}

/// Credentials the proposer offers (free-form, not verified by the protocol).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProposerAttestations {
    /// A proof of identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_proof: Option<String>,
    /// A proof of capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_proof: Option<String>,
    /// Certifications (`ISO27001`).
    #[serde(default)]
    pub compliance_credentials: Vec<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A proposal to federate (seed §3.2), signed by the proposer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustProposal {
    /// Unique per proposer.
    pub proposal_id: DocumentId,
    /// Who proposes.
    pub proposer: MeshId,
    /// To whom.
    pub target: MeshId,
    /// When.
    pub proposed_at: Timestamp,
    /// After this it can no longer be accepted.
    pub expires_at: Timestamp,
    /// The level asked for (1–4).
    pub proposed_trust_level: TrustLevel,
    /// The terms asked for.
    pub proposed_terms: ProposedTerms,
    /// Credentials offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposer_attestations: Option<ProposerAttestations>,
    /// KIND `proposal`, by the proposer.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for TrustProposal {
    const NAME: &'static str = "TrustProposal";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        if self.proposer == self.target {
            return Err(invalid::<Self>("target", "a mesh cannot propose to itself"));
        }
        if self.expires_at <= self.proposed_at {
            return Err(invalid::<Self>("expires_at", "must be after proposed_at"));
        }
        if self.proposed_trust_level == TrustLevel::ISOLATED {
            return Err(invalid::<Self>(
                "proposed_trust_level",
                "level 0 (isolated) is no federation; propose 1-4",
            ));
        }
        self.proposed_terms.check::<Self>("proposed_terms")
    }
}

signed_with_field!(TrustProposal, Kind::Proposal);

/// The answer to a proposal or to a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// The terms as they stand are accepted.
    Accept,
    /// No agreement; `reason` says why.
    Reject,
    /// Other terms are offered in `counter_terms`.
    Counter,
    /// The proposer takes its proposal back (an addition to the seed's three answers; see
    /// ARCHITECTURE.md). `reason` is optional.
    Withdraw,
}

impl std::fmt::Display for ResponseType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Counter => "counter",
            Self::Withdraw => "withdraw",
        })
    }
}

/// An answer to a proposal (seed §3.3): accept, reject (with reason) or counter (with terms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalResponse {
    /// The proposal this answers.
    pub proposal_id: DocumentId,
    /// Accept, reject or counter.
    pub response_type: ResponseType,
    /// Who answers.
    pub responder: MeshId,
    /// When.
    pub responded_at: Timestamp,
    /// The blake3 of the JCS of the signed document this answers (the proposal or the last
    /// counter). The seed's example has no such field, so it parses without it; the engine
    /// requires it, since without it an accept cannot say which of two crossing offers it
    /// accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responds_to: Option<Blake3Hash>,
    /// Why, for a reject or a withdrawal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The terms offered, for a counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_terms: Option<ProposedTerms>,
    /// KIND `response`, by the responder.
    pub signature: SignatureField,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Document for ProposalResponse {
    const NAME: &'static str = "ProposalResponse";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        match (self.response_type, &self.reason, &self.counter_terms) {
            (ResponseType::Reject, None, _) => {
                Err(invalid::<Self>("reason", "a reject must say why"))
            }
            (ResponseType::Counter, _, None) => Err(invalid::<Self>(
                "counter_terms",
                "a counter must carry terms",
            )),
            (ResponseType::Accept | ResponseType::Reject | ResponseType::Withdraw, _, Some(_)) => {
                Err(invalid::<Self>(
                    "counter_terms",
                    "only a counter carries counter_terms",
                ))
            }
            (_, reason, terms) => {
                if let Some(reason) = reason {
                    check_len::<Self>("reason", reason, 1024)?;
                }
                if let Some(terms) = terms {
                    terms.check::<Self>("counter_terms")?;
                }
                Ok(())
            }
        }
    }
}

signed_with_field!(ProposalResponse, Kind::Response);
