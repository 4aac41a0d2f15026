//! FederationAgreement (seed §3.4, DESIGN §3 "Agreement"): the contract both parties sign.
//!
//! `agreement_hash = blake3(JCS(agreement without signatures and agreement_hash))`, and each
//! party signs (KIND `agreement`) `JCS({"agreement_hash", "signed_at", "signer"})`, so a
//! signature binds the exact body, the signer and the time, and the two signatures can be
//! made one after the other without re-signing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Document, DocumentError, Extra, TrustLevel, VerificationFrequency, check_len, check_unique,
    invalid,
};
use crate::hash::Blake3Hash;
use crate::id::{DocumentId, MeshId, ScrollName};
use crate::jcs;
use crate::key::{Kind, MeshKey, PublicKey, Signature};
use crate::timestamp::Timestamp;

/// The agreed terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementTerms {
    /// Scrolls each side witnesses of the other.
    pub scrolls_shared: Vec<ScrollName>,
    /// How often.
    pub verification_frequency: VerificationFrequency,
    /// How long witnessed material is kept.
    pub retention_period_days: u32,
    /// Where the data may live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_jurisdiction: Option<String>,
    /// Whether either side may audit the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_rights: Option<bool>,
    /// Who settles disputes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_resolution: Option<String>,
    /// Further terms.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One party's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySignature {
    /// When the party signed.
    pub signed_at: Timestamp,
    /// KIND `agreement` over `JCS({"agreement_hash","signed_at","signer"})`.
    pub signature: Signature,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A two-party federation agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationAgreement {
    /// Unique id.
    pub agreement_id: DocumentId,
    /// The two meshes.
    pub parties: Vec<MeshId>,
    /// When it was drafted.
    pub established_at: Timestamp,
    /// The agreed level (1–4).
    pub trust_level: TrustLevel,
    /// The agreed terms.
    pub terms: AgreementTerms,
    /// Each party's federation key, by `<name>_federation_key` ([`key_exchange_name`]).
    pub key_exchange: BTreeMap<String, PublicKey>,
    /// Signatures by party.
    #[serde(default)]
    pub signatures: BTreeMap<MeshId, PartySignature>,
    /// Hash of everything but `signatures` and itself.
    pub agreement_hash: Blake3Hash,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `key_exchange` entry name for a party: its bare name, then `_federation_key`
/// (`vaultmesh-dublin` → `vaultmesh-dublin_federation_key`). The name is kept as it is, so two
/// meshes never share an entry (`a-b` and `a.b` are different meshes).
pub fn key_exchange_name(party: &MeshId) -> String {
    format!("{}_federation_key", party.name())
}

impl FederationAgreement {
    /// Drafts an unsigned agreement between `parties` (with their keys) and computes its hash.
    pub fn draft(
        agreement_id: DocumentId,
        parties: [(MeshId, PublicKey); 2],
        established_at: Timestamp,
        trust_level: TrustLevel,
        terms: AgreementTerms,
    ) -> Result<Self, DocumentError> {
        let key_exchange = parties
            .iter()
            .map(|(id, key)| (key_exchange_name(id), *key))
            .collect();
        let mut agreement = Self {
            agreement_id,
            parties: parties.iter().map(|(id, _)| id.clone()).collect(),
            established_at,
            trust_level,
            terms,
            key_exchange,
            signatures: BTreeMap::new(),
            agreement_hash: Blake3Hash::from_bytes([0; 32]),
            extra: Extra::new(),
        };
        agreement.agreement_hash = agreement.compute_hash()?;
        agreement.validate()?;
        Ok(agreement)
    }

    /// Recomputes the hash of the body (everything but `signatures` and `agreement_hash`).
    pub fn compute_hash(&self) -> Result<Blake3Hash, DocumentError> {
        let mut value = self.to_value()?;
        if let Value::Object(map) = &mut value {
            map.remove("signatures");
            map.remove("agreement_hash");
        }
        let bytes = jcs::to_vec_integers_only(&value).map_err(|source| DocumentError::Json {
            document: Self::NAME,
            source,
        })?;
        Ok(Blake3Hash::digest(&bytes))
    }

    /// The bytes a party signs.
    pub fn party_message(
        agreement_hash: &Blake3Hash,
        signed_at: Timestamp,
        signer: &MeshId,
    ) -> Vec<u8> {
        let value = json!({
            "agreement_hash": agreement_hash.to_string(),
            "signed_at": signed_at.to_string(),
            "signer": signer.to_string(),
        });
        // Three strings: canonicalisation cannot fail.
        jcs::to_vec(&value).unwrap_or_default()
    }

    /// The key the agreement records for `party`: the entry [`key_exchange_name`] names, or
    /// else the one entry named by a tail of it after a `-`, `.` or `_` (the seed writes
    /// `dublin_federation_key` for `vaultmesh-dublin`). Ambiguity yields nothing.
    ///
    /// This is the key the agreement *claims*; callers check it against the key they already
    /// hold for that mesh before trusting signatures verified with it.
    pub fn key_of(&self, party: &MeshId) -> Option<&PublicKey> {
        let full = key_exchange_name(party);
        if let Some(key) = self.key_exchange.get(&full) {
            return Some(key);
        }
        let mut matches = self.key_exchange.iter().filter(|(name, _)| {
            full.len() > name.len()
                && full.ends_with(name.as_str())
                && matches!(
                    full.as_bytes()[full.len() - name.len() - 1],
                    b'-' | b'.' | b'_'
                )
        });
        match (matches.next(), matches.next()) {
            (Some((_, key)), None) => Some(key),
            _ => None,
        }
    }

    /// The other party.
    pub fn counterparty(&self, me: &MeshId) -> Option<&MeshId> {
        match self.parties.as_slice() {
            [a, b] if a == me => Some(b),
            [a, b] if b == me => Some(a),
            _ => None,
        }
    }

    /// Adds `signer`'s signature, made with `key` (which must be the key the agreement
    /// records for that party).
    pub fn sign_as(
        &mut self,
        signer: &MeshId,
        key: &MeshKey,
        signed_at: Timestamp,
    ) -> Result<(), DocumentError> {
        if !self.parties.contains(signer) {
            return Err(invalid::<Self>(
                "signatures",
                format!("{signer} is not a party"),
            ));
        }
        if self.key_of(signer) != Some(&key.public_key()) {
            return Err(invalid::<Self>(
                "key_exchange",
                format!("the signing key is not the key recorded for {signer}"),
            ));
        }
        let message = Self::party_message(&self.agreement_hash, signed_at, signer);
        self.signatures.insert(
            signer.clone(),
            PartySignature {
                signed_at,
                signature: key.sign(Kind::Agreement, &message),
                extra: Extra::new(),
            },
        );
        Ok(())
    }

    /// Checks `party`'s signature against the key the agreement records for it.
    pub fn verify_party(&self, party: &MeshId) -> Result<(), DocumentError> {
        let entry = self
            .signatures
            .get(party)
            .ok_or_else(|| invalid::<Self>("signatures", format!("{party} has not signed")))?;
        let key = self
            .key_of(party)
            .ok_or_else(|| invalid::<Self>("key_exchange", format!("no key for {party}")))?;
        let message = Self::party_message(&self.agreement_hash, entry.signed_at, party);
        key.verify(Kind::Agreement, &message, &entry.signature)
            .map_err(|source| DocumentError::Signature {
                document: Self::NAME,
                source,
            })
    }

    /// Checks both parties' signatures: the agreement is in force only then.
    pub fn verify_complete(&self) -> Result<(), DocumentError> {
        for party in &self.parties {
            self.verify_party(party)?;
        }
        Ok(())
    }
}

impl Document for FederationAgreement {
    const NAME: &'static str = "FederationAgreement";
    const SIGNED: bool = true;

    fn validate(&self) -> Result<(), DocumentError> {
        if self.parties.len() != 2 {
            return Err(invalid::<Self>(
                "parties",
                format!("expected exactly 2 parties, found {}", self.parties.len()),
            ));
        }
        check_unique::<Self, _>("parties", &self.parties)?;
        if let Some(stranger) = self.signatures.keys().find(|s| !self.parties.contains(s)) {
            return Err(invalid::<Self>(
                "signatures",
                format!("{stranger} is not a party"),
            ));
        }
        let mut keys = Vec::with_capacity(2);
        for party in &self.parties {
            let key = self.key_of(party).ok_or_else(|| {
                invalid::<Self>(
                    "key_exchange",
                    format!(
                        "no unambiguous key for {party} (expected {})",
                        key_exchange_name(party)
                    ),
                )
            })?;
            keys.push(key);
        }
        if keys[0] == keys[1] {
            return Err(invalid::<Self>(
                "key_exchange",
                "both parties have the same key",
            ));
        }
        if self.trust_level == TrustLevel::ISOLATED {
            return Err(invalid::<Self>(
                "trust_level",
                "level 0 (isolated) is no federation",
            ));
        }
        if self.terms.scrolls_shared.is_empty() {
            return Err(invalid::<Self>(
                "terms.scrolls_shared",
                "no scroll is shared",
            ));
        }
        check_unique::<Self, _>("terms.scrolls_shared", &self.terms.scrolls_shared)?;
        if let Some(d) = &self.terms.dispute_resolution {
            check_len::<Self>("terms.dispute_resolution", d, 256)?;
        }
        let computed = self.compute_hash()?;
        if computed != self.agreement_hash {
            return Err(invalid::<Self>(
                "agreement_hash",
                format!(
                    "{} does not match the agreement body ({computed})",
                    self.agreement_hash
                ),
            ));
        }
        Ok(())
    }
}
