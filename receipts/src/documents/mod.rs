//! The protocol documents (seed §3–§7, DESIGN §5): typed, strict on the way in, faithful on
//! the way out.
//!
//! Every document
//! - is parsed by [`parse`]: the strict JSON parser of [`crate::jcs`] (no duplicate keys, no
//!   floats, no integers beyond ±(2^53−1)), then serde with the path of any bad field in the
//!   error, then the document's own [`Document::validate`] rules;
//! - keeps fields it does not know in `extra` and writes them back, so a newer peer's
//!   signatures and hashes still verify here;
//! - if signed, implements [`SignedDocument`]: the signature covers the JCS form of the whole
//!   document without its signature field(s), under the document's [`Kind`].

mod agreement;
mod arbitration;
mod discovery;
mod discrepancy;
mod proposal;
mod resolution;
mod revocation;
mod root;
mod schema;
mod suspension;
mod witness;

pub use agreement::{AgreementTerms, FederationAgreement, PartySignature, key_exchange_name};
pub use arbitration::{ArbitrationOutcome, ArbitrationRequest, ArbitrationVerdict};
pub use discovery::{Attestation, DiscoveryRecord, Endpoints, TrustPolicy};
pub use discrepancy::{
    DiscrepancyBody, DiscrepancyDetails, DiscrepancyReport, DiscrepancyType, Severity,
};
pub use proposal::{
    ProposalResponse, ProposedTerms, ProposerAttestations, ResponseType, TrustLevel, TrustProposal,
    VerificationFrequency,
};
pub use resolution::{DiscrepancyResolution, MAX_NOTE_CHARS, ResolutionOutcome};
pub use revocation::RevocationNotice;
pub use root::{AnchorNotification, AnchorProof, SignedRoot};
pub use schema::{SchemaSync, SchemaVersion};
pub use suspension::{SuspensionAction, SuspensionNotice};
pub use witness::{WitnessAttestation, WitnessResult};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jcs::{self, JcsError, Numbers};
use crate::key::{BadSignature, Kind, MeshKey, PublicKey, Signature};

/// Fields a document does not know, kept in their order-free JSON form and written back.
pub type Extra = Map<String, Value>;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Not JSON, or refused by the strict JSON rules.
    #[error("{document}: {source}")]
    Json {
        /// The document type.
        document: &'static str,
        /// The JSON problem.
        source: JcsError,
    },
    /// A field is missing, of the wrong type, or its value is not in its accepted form.
    #[error("{document}: field `{path}`: {message}")]
    Field {
        /// The document type.
        document: &'static str,
        /// Where in the document (`signature.value`, `parties[1]`, `.` for the whole).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The fields are each well-formed but break a rule of the document.
    #[error("{document}: field `{field}`: {reason}")]
    Invalid {
        /// The document type.
        document: &'static str,
        /// The field the rule is about.
        field: &'static str,
        /// The rule that was broken.
        reason: String,
    },
    /// The signature does not verify.
    #[error("{document}: {source}")]
    Signature {
        /// The document type.
        document: &'static str,
        /// Which kind and key failed.
        source: BadSignature,
    },
}

/// A protocol document: a JSON object with typed fields.
pub trait Document: Serialize + DeserializeOwned {
    /// The type's name in errors (`TrustProposal`).
    const NAME: &'static str;
    /// Whether the document carries signatures over its JSON: then [`from_value`] accepts
    /// it only in the form it re-serialises to (see [`check_faithful`]).
    const SIGNED: bool = false;

    /// Rules that span fields (a counter must carry counter terms, parties must differ, …).
    fn validate(&self) -> Result<(), DocumentError> {
        Ok(())
    }

    /// Types and validates the document from a value that went through the strict parser.
    /// The default goes through serde, tracking the path of a bad field; documents whose
    /// serde form would lose that path (flattened bodies, tagged unions) override it.
    fn from_json_value(value: Value) -> Result<Self, DocumentError> {
        let doc: Self =
            serde_path_to_error::deserialize(value).map_err(|e| DocumentError::Field {
                document: Self::NAME,
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        doc.validate()?;
        Ok(doc)
    }

    /// The JSON value of this document.
    fn to_value(&self) -> Result<Value, DocumentError> {
        serde_json::to_value(self).map_err(|e| DocumentError::Field {
            document: Self::NAME,
            path: ".".into(),
            message: e.to_string(),
        })
    }

    /// The RFC 8785 bytes of this document.
    fn to_canonical(&self) -> Result<Vec<u8>, DocumentError> {
        jcs::to_vec_integers_only(&self.to_value()?).map_err(|source| DocumentError::Json {
            document: Self::NAME,
            source,
        })
    }
}

/// Parses and validates a document from untrusted bytes.
pub fn parse<T: Document>(bytes: &[u8]) -> Result<T, DocumentError> {
    let value = jcs::parse(bytes, Numbers::IntegersOnly).map_err(|source| DocumentError::Json {
        document: T::NAME,
        source,
    })?;
    from_value(value)
}

/// Types and validates a document from a value that went through the strict parser.
pub fn from_value<T: Document>(value: Value) -> Result<T, DocumentError> {
    if !value.is_object() {
        return Err(DocumentError::Field {
            document: T::NAME,
            path: ".".into(),
            message: "expected a JSON object".into(),
        });
    }
    if !T::SIGNED {
        return T::from_json_value(value);
    }
    let doc = T::from_json_value(value.clone())?;
    check_faithful::<T>(&value, &doc.to_value()?)?;
    Ok(doc)
}

/// DESIGN §3 signs `JCS(document without its signature fields)`: the document as sent.
/// This node signs and verifies the JCS of the typed document, re-serialised. The two agree
/// exactly when the typed form loses nothing, so a signed document is accepted only in that
/// form: a `null` where a field is optional (leave it out), a field the type would fill in
/// with a default (write it), or any other value the type would write differently is refused
/// here, naming the field, rather than later as a signature that does not verify. The form
/// of a signature field itself (the seed's bare `z…` string for the object) is outside the
/// signed bytes and may differ.
pub fn check_faithful<T: Document>(received: &Value, typed: &Value) -> Result<(), DocumentError> {
    let refuse = |path: String, message: String| {
        Err(DocumentError::Field {
            document: T::NAME,
            path,
            message,
        })
    };
    match first_difference(received, typed, String::new()) {
        None => Ok(()),
        Some((path, Some(Value::Null), None)) => refuse(
            path,
            "null is not a value here: leave an absent optional field out (its signature would not cover the same bytes)".into(),
        ),
        Some((path, None, Some(written))) => refuse(
            path,
            format!("missing: write it ({written} when empty), as the document is signed with it"),
        ),
        Some((path, received, written)) => refuse(
            path,
            format!(
                "{} is read as {}: send the second form, which is what the signature covers",
                received.map_or("nothing".into(), |v| v.to_string()),
                written.map_or("nothing".into(), |v| v.to_string())
            ),
        ),
    }
}

/// The first place (a JSON path) where `a` and `b` differ, with each side's value there.
fn first_difference(
    a: &Value,
    b: &Value,
    path: String,
) -> Option<(String, Option<Value>, Option<Value>)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let at = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) if is_signature_field(key) && same_signature(u, v) => {}
                    (Some(u), Some(v)) => {
                        if let Some(d) = first_difference(u, v, at) {
                            return Some(d);
                        }
                    }
                    (u, v) => return Some((at, u.cloned(), v.cloned())),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, format!("{path}[{i}]"))),
        (x, y) if x == y => None,
        (x, y) => Some((
            if path.is_empty() { ".".into() } else { path },
            Some(x.clone()),
            Some(y.clone()),
        )),
    }
}

fn is_signature_field(key: &str) -> bool {
    key == "signature" || key == "witness_signature"
}

/// A signature written bare (`"z…"`) or as the object: the same signature.
fn same_signature(a: &Value, b: &Value) -> bool {
    let value = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    a == b || (value(a).is_some() && value(a) == value(b))
}

/// Splits a document with a flattened body: removes `own` fields from the object, types the
/// rest as the body (so a bad field's path is kept), and returns the own fields as an object.
pub(crate) fn split_body<T: Document, B: DeserializeOwned>(
    value: Value,
    own: &[&str],
) -> Result<(B, Value), DocumentError> {
    let Value::Object(mut map) = value else {
        return Err(DocumentError::Field {
            document: T::NAME,
            path: ".".into(),
            message: "expected a JSON object".into(),
        });
    };
    let mut mine = Map::new();
    for field in own {
        if let Some(v) = map.remove(*field) {
            mine.insert((*field).to_owned(), v);
        }
    }
    let body =
        serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| DocumentError::Field {
            document: T::NAME,
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    Ok((body, Value::Object(mine)))
}

/// Types the fields a wrapper holds beside its body.
pub(crate) fn own_fields<T: Document, O: DeserializeOwned>(own: Value) -> Result<O, DocumentError> {
    serde_path_to_error::deserialize(own).map_err(|e| DocumentError::Field {
        document: T::NAME,
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// A document that carries its author's signature.
pub trait SignedDocument: Document {
    /// The kind the signature is made under.
    const KIND: Kind;
    /// The top-level field(s) left out of the signed bytes.
    const SIGNATURE_FIELDS: &'static [&'static str];

    /// The signature as carried.
    fn signature(&self) -> &Signature;
    /// Replaces the signature.
    fn set_signature(&mut self, signature: Signature);

    /// The canonical bytes the signature covers: the document without its signature fields.
    fn signing_message(&self) -> Result<Vec<u8>, DocumentError> {
        let mut value = self.to_value()?;
        if let Value::Object(map) = &mut value {
            for field in Self::SIGNATURE_FIELDS {
                map.remove(*field);
            }
        }
        jcs::to_vec_integers_only(&value).map_err(|source| DocumentError::Json {
            document: Self::NAME,
            source,
        })
    }

    /// Signs the document in place with `key`.
    fn sign(&mut self, key: &MeshKey) -> Result<(), DocumentError> {
        let message = self.signing_message()?;
        self.set_signature(key.sign(Self::KIND, &message));
        Ok(())
    }

    /// Checks the signature against `key`.
    fn verify(&self, key: &PublicKey) -> Result<(), DocumentError> {
        let message = self.signing_message()?;
        key.verify(Self::KIND, &message, self.signature())
            .map_err(|source| DocumentError::Signature {
                document: Self::NAME,
                source,
            })
    }
}

/// The `signature` field: `{"algorithm": "Ed25519", "value": "z…"}`.
///
/// The seed's §3.3 example shows a bare `"z…"` string instead; that form is read too (it is
/// outside the signed bytes either way) and always written back as the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignatureField {
    /// Always `Ed25519`.
    pub algorithm: Algorithm,
    /// The signature.
    pub value: Signature,
}

impl SignatureField {
    /// Wraps a signature.
    pub const fn new(value: Signature) -> Self {
        Self {
            algorithm: Algorithm::Ed25519,
            value,
        }
    }

    /// An all-zero signature that verifies under no key; documents hold it only between being
    /// built and being signed.
    pub const fn unsigned() -> Self {
        Self::new(Signature::from_bytes([0; 64]))
    }
}

impl<'de> Deserialize<'de> for SignatureField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            algorithm: Algorithm,
            value: Signature,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Bare(String),
            Object(Value),
        }
        match Form::deserialize(deserializer)? {
            Form::Bare(text) => text
                .parse()
                .map(Self::new)
                .map_err(serde::de::Error::custom),
            Form::Object(value) => {
                let object: Object = serde_path_to_error::deserialize(value).map_err(|e| {
                    serde::de::Error::custom(format_args!("{}: {}", e.path(), e.inner()))
                })?;
                Ok(Self {
                    algorithm: object.algorithm,
                    value: object.value,
                })
            }
        }
    }
}

/// The one signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032), verified strictly.
    Ed25519,
}

/// Implements [`SignedDocument`] for a struct with a `signature: SignatureField` field.
macro_rules! signed_with_field {
    ($ty:ty, $kind:expr) => {
        impl $crate::documents::SignedDocument for $ty {
            const KIND: $crate::key::Kind = $kind;
            const SIGNATURE_FIELDS: &'static [&'static str] = &["signature"];
            fn signature(&self) -> &$crate::key::Signature {
                &self.signature.value
            }
            fn set_signature(&mut self, signature: $crate::key::Signature) {
                self.signature = $crate::documents::SignatureField::new(signature);
            }
        }
    };
}
pub(crate) use signed_with_field;

/// Errors for a rule of document `T` about `field`.
pub(crate) fn invalid<T: Document>(
    field: &'static str,
    reason: impl Into<String>,
) -> DocumentError {
    DocumentError::Invalid {
        document: T::NAME,
        field,
        reason: reason.into(),
    }
}

/// Refuses repeated entries in a list that is a set (scroll names, parties).
pub(crate) fn check_unique<T: Document, V: Ord + std::fmt::Display>(
    field: &'static str,
    items: &[V],
) -> Result<(), DocumentError> {
    let mut seen = std::collections::BTreeSet::new();
    for item in items {
        if !seen.insert(item) {
            return Err(invalid::<T>(field, format!("{item} appears twice")));
        }
    }
    Ok(())
}

/// Refuses a free-text field longer than `max_chars`.
pub(crate) fn check_len<T: Document>(
    field: &'static str,
    text: &str,
    max_chars: usize,
) -> Result<(), DocumentError> {
    let n = text.chars().count();
    if n > max_chars {
        return Err(invalid::<T>(
            field,
            format!("{n} characters, at most {max_chars} allowed"),
        ));
    }
    Ok(())
}
