//! Digests and signature checks, all through `ring` (already in the tree through libp2p and
//! rustls, so no second crypto stack).
//!
//! Supported: SHA-256/384/512 digests (SHA-1 only to compare ESSCertID v1 certificate hashes,
//! never for a signature or an imprint); RSA PKCS#1 v1.5 (2048 to 8192 bits) with
//! SHA-256/384/512; ECDSA P-256 with SHA-256/384 and P-384 with SHA-256/384. Anything else is
//! refused as [`TsaError::UnsupportedAlgorithm`], naming the OID.

use ring::{digest, signature};

use crate::TsaError;
use crate::der::{self, AlgorithmId, tag};
use crate::oid;

/// A hash algorithm named by an AlgorithmIdentifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    /// The digest an AlgorithmIdentifier names; parameters must be absent or NULL.
    pub(crate) fn from_alg(alg: &AlgorithmId<'_>, what: &'static str) -> Result<Self, TsaError> {
        let found = match alg.oid {
            oid::SHA1 => Self::Sha1,
            oid::SHA256 => Self::Sha256,
            oid::SHA384 => Self::Sha384,
            oid::SHA512 => Self::Sha512,
            other => return Err(unsupported(what, other)),
        };
        if !alg.params_absent_or_null() {
            return Err(der::malformed(what, "digest algorithm with parameters"));
        }
        Ok(found)
    }

    /// Like [`Self::from_alg`], but refuses SHA-1: collisions for it are practical, so it
    /// must never decide what a signature or an imprint covers.
    pub(crate) fn strong_from_alg(
        alg: &AlgorithmId<'_>,
        what: &'static str,
    ) -> Result<Self, TsaError> {
        match Self::from_alg(alg, what)? {
            Self::Sha1 => Err(TsaError::UnsupportedAlgorithm(format!(
                "{what}: SHA-1 is too weak"
            ))),
            strong => Ok(strong),
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> digest::Digest {
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data)
    }
}

pub(crate) fn unsupported(what: &str, oid_contents: &[u8]) -> TsaError {
    let name = oid::to_dotted(oid_contents).unwrap_or_else(|| hex::encode(oid_contents));
    TsaError::UnsupportedAlgorithm(format!("{what}: {name}"))
}

/// The kind of a public key, from its SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

/// A public key ready for `ring`: its kind and the bits ring expects (the RSAPublicKey DER
/// for RSA, the uncompressed point for EC).
struct PublicKey<'a> {
    kind: KeyKind,
    bits: &'a [u8],
}

/// Reads a DER SubjectPublicKeyInfo.
fn public_key(spki_der: &[u8]) -> Result<PublicKey<'_>, TsaError> {
    const WHAT: &str = "SubjectPublicKeyInfo";
    let spki = der::parse_one(spki_der, WHAT)?;
    if spki.tag != tag::SEQUENCE {
        return Err(der::malformed(WHAT, "not a SEQUENCE"));
    }
    let mut reader = spki.reader(WHAT);
    let alg = AlgorithmId::read(&mut reader, WHAT)?;
    let bits = der::bit_string_octets(&reader.expect(tag::BIT_STRING, WHAT)?, WHAT)?;
    reader.finish()?;
    let kind = match alg.oid {
        oid::RSA_ENCRYPTION => KeyKind::Rsa,
        oid::EC_PUBLIC_KEY => {
            let curve = match alg.params {
                Some(p) if p.tag == tag::OID => p.value,
                _ => return Err(der::malformed(WHAT, "EC key without a named curve")),
            };
            match curve {
                oid::CURVE_P256 => KeyKind::EcP256,
                oid::CURVE_P384 => KeyKind::EcP384,
                other => return Err(unsupported("EC curve", other)),
            }
        }
        other => return Err(unsupported("public key algorithm", other)),
    };
    Ok(PublicKey { kind, bits })
}

/// Why a signature check failed: the algorithm is one we do not do, or the signature is
/// simply wrong. Callers turn `Invalid` into the error that fits (a bad token signature, a
/// bad certificate signature).
pub(crate) enum SigError {
    Refused(TsaError),
    Invalid,
}

impl From<TsaError> for SigError {
    fn from(e: TsaError) -> Self {
        Self::Refused(e)
    }
}

/// Verifies `signature` over `message` with the key in `spki_der`.
///
/// `sig_alg` is the signature AlgorithmIdentifier. When it names only the key type
/// (rsaEncryption or id-ecPublicKey, as OpenSSL writes in CMS), the hash is `digest_hint`
/// (the SignerInfo's digestAlgorithm); when it names a hash too, that hash must agree with
/// `digest_hint` if one is given, so a signer cannot make the two disagree.
pub(crate) fn verify_signature(
    spki_der: &[u8],
    sig_alg: &AlgorithmId<'_>,
    digest_hint: Option<DigestAlg>,
    message: &[u8],
    sig: &[u8],
) -> Result<(), SigError> {
    const WHAT: &str = "signature algorithm";
    let key = public_key(spki_der)?;
    let (family_rsa, named_hash) = match sig_alg.oid {
        oid::RSA_ENCRYPTION => (true, None),
        oid::SHA256_WITH_RSA => (true, Some(DigestAlg::Sha256)),
        oid::SHA384_WITH_RSA => (true, Some(DigestAlg::Sha384)),
        oid::SHA512_WITH_RSA => (true, Some(DigestAlg::Sha512)),
        oid::EC_PUBLIC_KEY => (false, None),
        oid::ECDSA_WITH_SHA256 => (false, Some(DigestAlg::Sha256)),
        oid::ECDSA_WITH_SHA384 => (false, Some(DigestAlg::Sha384)),
        oid::ECDSA_WITH_SHA512 => (false, Some(DigestAlg::Sha512)),
        other => return Err(unsupported(WHAT, other).into()),
    };
    let hash = match (named_hash, digest_hint) {
        (Some(named), Some(hint)) if named != hint => {
            return Err(TsaError::Malformed(format!(
                "{WHAT}: hash {named:?} disagrees with digestAlgorithm {hint:?}"
            ))
            .into());
        }
        (Some(named), _) => named,
        (None, Some(hint)) => hint,
        (None, None) => {
            return Err(TsaError::Malformed(format!("{WHAT}: no hash named")).into());
        }
    };
    let alg: &'static dyn signature::VerificationAlgorithm = match (family_rsa, key.kind, hash) {
        (true, KeyKind::Rsa, DigestAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (true, KeyKind::Rsa, DigestAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (true, KeyKind::Rsa, DigestAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (false, KeyKind::EcP256, DigestAlg::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (false, KeyKind::EcP256, DigestAlg::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (false, KeyKind::EcP384, DigestAlg::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (false, KeyKind::EcP384, DigestAlg::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (family_rsa, kind, hash) => {
            let family = if family_rsa { "RSA" } else { "ECDSA" };
            return Err(TsaError::UnsupportedAlgorithm(format!(
                "{family} signature with {hash:?} by a {kind:?} key"
            ))
            .into());
        }
    };
    signature::UnparsedPublicKey::new(alg, key.bits)
        .verify(message, sig)
        .map_err(|_| SigError::Invalid)
}
