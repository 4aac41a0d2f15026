//! The error of the encodings: what was malformed and how. Document parsing wraps it with the
//! path of the field that held the value.

/// A value that is not in its one accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// A mesh id that is not `did:vm:mesh:<name>` with a valid name.
    #[error("invalid mesh id {value:?}: {reason}")]
    MeshId {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A scroll name outside `[A-Za-z][A-Za-z0-9_-]{0,63}`.
    #[error("invalid scroll name {value:?}: {reason}")]
    ScrollName {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A document id outside `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`.
    #[error("invalid document id {value:?}: {reason}")]
    DocumentId {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A public key that is not `ed25519:z…` of the did:key form, or not a curve point.
    #[error("invalid public key {value:?}: {reason}")]
    PublicKey {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: String,
    },
    /// A signature that is not multibase base58btc of 64 bytes.
    #[error("invalid signature {value:?}: {reason}")]
    Signature {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: String,
    },
    /// A hash that is not `blake3:` and 64 lowercase hex digits.
    #[error("invalid hash {value:?}: {reason}")]
    Hash {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: String,
    },
    /// A time that is not RFC 3339 UTC with whole seconds and `Z`.
    #[error("invalid timestamp {value:?}: {reason}")]
    Timestamp {
        /// The text that was refused.
        value: String,
        /// Why.
        reason: String,
    },
    /// A secret key file or seed that is not usable.
    #[error("invalid secret key: {reason}")]
    SecretKey {
        /// Why.
        reason: String,
    },
}

/// Shortens what we echo back in errors: a hostile peer controls the value.
pub fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    if value.chars().count() <= MAX_CHARS {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

/// Implements `Serialize` as the `Display` form and `Deserialize` through `FromStr`, so each
/// encoding has exactly one textual form on the wire.
macro_rules! string_form {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a string holding {}", stringify!($ty))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}
pub(crate) use string_form;
