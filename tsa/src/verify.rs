//! Offline verification of a time-stamp token against the TSA certificates a witness trusts.

use std::path::PathBuf;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

use crate::crypto::{self, DigestAlg, SigError};
use crate::der::{self, AlgorithmId, tag};
use crate::token::{self, SignedToken};
use crate::{MAX_TOKEN_BYTES, TsaError, oid};

/// How far in the future a genTime may be, by default: the witness drift limit of DESIGN §7
/// (5 minutes). A token from the future means a lying TSA or a wrong local clock; either way
/// it must not pass as evidence of "before now".
pub const DEFAULT_MAX_SKEW_SECS: i64 = 300;

/// The longest chain walked from the signer certificate to a trust anchor, anchor included.
const MAX_CHAIN_LEN: usize = 8;

/// At most this many bytes in one trust PEM file: a CA bundle is tens of kilobytes.
const MAX_TRUST_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The TSA certificates a verifier trusts: root CAs, intermediate CAs, or TSA certificates
/// themselves. A token verifies if its signer certificate *is* one of them, or chains up to
/// one of them (see [`verify_token`]).
///
/// Each certificate was parsed when it was loaded, so a trust store never holds bytes that
/// are not an X.509 certificate.
#[derive(Clone, Debug, Default)]
pub struct TsaTrust {
    /// DER of each trusted certificate.
    certs: Vec<Vec<u8>>,
}

impl TsaTrust {
    /// Loads every `CERTIFICATE` block of a PEM text (other block types, such as keys, are
    /// skipped). Refuses text with no certificate at all, which is a misconfiguration: an
    /// empty trust store would refuse every token, and [`Self::default`] says so openly.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TsaError> {
        let blocks =
            pem::parse_many(pem).map_err(|e| TsaError::InvalidTrust(format!("not PEM: {e}")))?;
        let mut certs = Vec::new();
        for (index, block) in blocks.into_iter().enumerate() {
            if block.tag() != "CERTIFICATE" {
                continue;
            }
            let der = block.into_contents();
            Cert::parse(&der).map_err(|e| {
                TsaError::InvalidTrust(format!("PEM block {index} is not a certificate: {e}"))
            })?;
            certs.push(der);
        }
        if certs.is_empty() {
            return Err(TsaError::InvalidTrust("no CERTIFICATE block".to_owned()));
        }
        Ok(Self { certs })
    }

    /// Loads the certificates of several PEM files (each as in [`Self::from_pem`]).
    /// An empty list gives an empty trust store.
    pub fn from_pem_files(paths: &[PathBuf]) -> Result<Self, TsaError> {
        let mut certs = Vec::new();
        for path in paths {
            let io = |source| TsaError::Io {
                path: path.clone(),
                source,
            };
            let len = std::fs::metadata(path).map_err(io)?.len();
            if len > MAX_TRUST_FILE_BYTES {
                return Err(TsaError::InvalidTrust(format!(
                    "{}: {len} bytes, more than {MAX_TRUST_FILE_BYTES}",
                    path.display()
                )));
            }
            let text = std::fs::read(path).map_err(io)?;
            let loaded = Self::from_pem(&text).map_err(|e| match e {
                TsaError::InvalidTrust(why) => {
                    TsaError::InvalidTrust(format!("{}: {why}", path.display()))
                }
                other => other,
            })?;
            certs.extend(loaded.certs);
        }
        Ok(Self { certs })
    }

    /// True if no certificate is trusted (every token would be refused).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// How many certificates are trusted.
    pub fn len(&self) -> usize {
        self.certs.len()
    }
}

/// What a verified token says: when, by whom, under which policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The TSA's genTime, UTC, with the fraction of a second if the TSA gave one.
    pub gen_time: OffsetDateTime,
    /// The token's serial number, lowercase hex of its big-endian value.
    pub serial: String,
    /// The signer certificate's subject, for display (e.g. `CN=Example TSA, O=Example`).
    pub tsa_subject: String,
    /// The TSA policy OID, dotted (e.g. `1.2.3.4.1`).
    pub policy: String,
}

impl VerifiedToken {
    /// genTime as Unix seconds (the fraction dropped).
    pub fn gen_time_unix(&self) -> i64 {
        self.gen_time.unix_timestamp()
    }
}

/// Verifies `token_der` as a time stamp over `data`, offline, with the default skew
/// ([`DEFAULT_MAX_SKEW_SECS`]); see [`verify_token_with_skew`].
pub fn verify_token(
    token_der: &[u8],
    data: &[u8],
    trust: &TsaTrust,
    now_unix: i64,
) -> Result<VerifiedToken, TsaError> {
    verify_token_with_skew(token_der, data, trust, now_unix, DEFAULT_MAX_SKEW_SECS)
}

/// Verifies `token_der` (a TimeStampToken: the CMS ContentInfo, not a whole TimeStampResp)
/// as a time stamp over `data`, offline. `now_unix` is the caller's clock: this crate never
/// reads one, so verification is deterministic and testable.
///
/// In order, each failure with its own error:
/// 1. the token is at most [`MAX_TOKEN_BYTES`] and is a DER SignedData with exactly one
///    SignerInfo over an id-ct-TSTInfo ([`TsaError::Malformed`]);
/// 2. the signed content-type attribute is id-ct-TSTInfo and the message-digest attribute is
///    the hash of the TSTInfo bytes ([`TsaError::ContentDigestMismatch`]: the TSTInfo was
///    altered);
/// 3. the signer certificate, found by the SignerInfo's sid among the token's certificates
///    and then the trusted ones ([`TsaError::SignerNotFound`]), verifies the signature over
///    the signed attributes ([`TsaError::BadSignature`]);
/// 4. the ESSCertID / ESSCertIDv2 attribute, when present, names that certificate
///    ([`TsaError::SignerCertMismatch`]): it stops a certificate with the same key but
///    other rights being slipped in;
/// 5. the signer certificate carries a critical extendedKeyUsage of id-kp-timeStamping only
///    (RFC 3161 §2.3, [`TsaError::NotTimeStamping`]);
/// 6. it chains to a trusted certificate: issuer name matches subject, the issuer is a CA
///    and its key verifies the certificate signature, every certificate valid at genTime
///    ([`TsaError::UntrustedSigner`], [`TsaError::Expired`], [`TsaError::NotYetValid`],
///    [`TsaError::BadCertificate`]);
/// 7. genTime is not after `now_unix + max_skew_secs` ([`TsaError::FutureTime`]);
/// 8. the messageImprint is SHA-256, SHA-384 or SHA-512 of `data`
///    ([`TsaError::ImprintMismatch`]).
///
/// Validity is judged at genTime, not now: a token stays evidence after its TSA
/// certificate expires, which is the point of a time stamp. Revocation (CRL/OCSP) is not
/// checked: this is an offline verifier; trust fewer certificates instead.
pub fn verify_token_with_skew(
    token_der: &[u8],
    data: &[u8],
    trust: &TsaTrust,
    now_unix: i64,
    max_skew_secs: i64,
) -> Result<VerifiedToken, TsaError> {
    if token_der.len() > MAX_TOKEN_BYTES {
        return Err(TsaError::TooLarge {
            what: "time-stamp token",
            len: token_der.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let token = token::parse_token(token_der)?;

    // 2. The signed attributes bind the signature to this TSTInfo.
    let digest_alg = DigestAlg::strong_from_alg(&token.digest_alg, "SignerInfo.digestAlgorithm")?;
    let attrs = token::parse_signed_attrs(&token.signed_attrs)?;
    match attrs.content_type {
        Some(oid::CT_TST_INFO) => {}
        Some(_) => {
            return Err(der::malformed(
                "content-type attribute",
                "not id-ct-TSTInfo",
            ));
        }
        None => return Err(der::malformed("signedAttrs", "no content-type attribute")),
    }
    let message_digest = attrs
        .message_digest
        .ok_or_else(|| der::malformed("signedAttrs", "no message-digest attribute"))?;
    if digest_alg.digest(token.tst_info).as_ref() != message_digest {
        return Err(TsaError::ContentDigestMismatch);
    }

    // 3. The signature, by the certificate the SignerInfo names.
    let token_certs = token
        .certificates
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Cert::parse(der).map_err(|e| TsaError::Malformed(format!("token certificate {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let trusted = trust
        .certs
        .iter()
        .map(|der| Cert::parse(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TsaError::InvalidTrust(e.to_string()))?;
    let signer = find_signer(&token, &token_certs, &trusted).ok_or(TsaError::SignerNotFound)?;
    let message = token::signed_attrs_message(&token.signed_attrs);
    crypto::verify_signature(
        signer.spki(),
        &token.sig_alg,
        Some(digest_alg),
        &message,
        token.signature,
    )
    .map_err(|e| match e {
        SigError::Refused(e) => e,
        SigError::Invalid => TsaError::BadSignature,
    })?;

    // Only now is the TSTInfo the TSA's word; parse it.
    let tst = token::parse_tst_info(token.tst_info)?;

    // 4.–6. The signer certificate: the one the TSA meant, a TSA certificate, trusted.
    check_ess_cert_ids(&attrs, signer)?;
    check_time_stamping_usage(signer)?;
    let gen_unix = tst.gen_time.unix_timestamp();
    check_chain(signer, &token_certs, &trusted, gen_unix)?;

    // 7. Not from the future.
    if gen_unix > now_unix.saturating_add(max_skew_secs) {
        return Err(TsaError::FutureTime {
            gen_time: gen_unix,
            now_unix,
            max_skew_secs,
        });
    }

    // 8. Over this data.
    let imprint_alg = DigestAlg::strong_from_alg(&tst.imprint_alg, "messageImprint.hashAlgorithm")?;
    if !tst.imprint_alg.params_absent_or_null() {
        return Err(der::malformed(
            "messageImprint.hashAlgorithm",
            "unexpected parameters",
        ));
    }
    if imprint_alg.digest(data).as_ref() != tst.imprint {
        return Err(TsaError::ImprintMismatch);
    }

    Ok(VerifiedToken {
        gen_time: tst.gen_time,
        serial: serial_hex(tst.serial),
        tsa_subject: signer.subject(),
        policy: oid::to_dotted(tst.policy).unwrap_or_default(),
    })
}

/// Lowercase hex of an INTEGER's big-endian value, without DER's sign-padding zero octet.
fn serial_hex(contents: &[u8]) -> String {
    match contents {
        [0, rest @ ..] if !rest.is_empty() => hex::encode(rest),
        all => hex::encode(all),
    }
}

/// A certificate parsed two ways: by x509-parser for names, validity and extensions, and by
/// our DER reader for the exact bytes its signature covers.
pub(crate) struct Cert<'a> {
    der: &'a [u8],
    x509: X509Certificate<'a>,
    tbs: &'a [u8],
    sig_alg: AlgorithmId<'a>,
    signature: &'a [u8],
}

impl<'a> Cert<'a> {
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, TsaError> {
        const WHAT: &str = "Certificate";
        let (rest, x509) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TsaError::Malformed(format!("{WHAT}: {e}")))?;
        if !rest.is_empty() {
            return Err(der::malformed(WHAT, "trailing bytes"));
        }
        let outer = der::parse_one(der, WHAT)?;
        let mut r = outer.reader(WHAT);
        let tbs = r.expect(tag::SEQUENCE, "Certificate.tbsCertificate")?.raw;
        let sig_alg = AlgorithmId::read(&mut r, "Certificate.signatureAlgorithm")?;
        let signature = der::bit_string_octets(
            &r.expect(tag::BIT_STRING, "Certificate.signatureValue")?,
            "Certificate.signatureValue",
        )?;
        r.finish()?;
        Ok(Self {
            der,
            x509,
            tbs,
            sig_alg,
            signature,
        })
    }

    fn subject(&self) -> String {
        self.x509.subject().to_string()
    }

    fn spki(&self) -> &'a [u8] {
        self.x509.tbs_certificate.subject_pki.raw
    }

    fn subject_key_id(&self) -> Option<&'a [u8]> {
        self.x509
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
                _ => None,
            })
    }

    /// True if `self` was issued by `issuer`: names match and the issuer's key verifies the
    /// signature.
    fn is_signed_by(&self, issuer: &Cert<'_>) -> bool {
        self.x509.issuer().as_raw() == issuer.x509.subject().as_raw()
            && crypto::verify_signature(
                issuer.spki(),
                &self.sig_alg,
                None,
                self.tbs,
                self.signature,
            )
            .is_ok()
    }

    fn bad(&self, reason: impl Into<String>) -> TsaError {
        TsaError::BadCertificate {
            subject: self.subject(),
            reason: reason.into(),
        }
    }

    /// Valid at `at` (inclusive bounds), with no critical extension we do not understand.
    fn check_valid_at(&self, at: i64) -> Result<(), TsaError> {
        let validity = self.x509.validity();
        let not_before = validity.not_before.timestamp();
        let not_after = validity.not_after.timestamp();
        if at < not_before {
            return Err(TsaError::NotYetValid {
                subject: self.subject(),
                not_before,
                gen_time: at,
            });
        }
        if at > not_after {
            return Err(TsaError::Expired {
                subject: self.subject(),
                not_after,
                gen_time: at,
            });
        }
        const UNDERSTOOD: &[&[u8]] = &[
            oid::EXT_SUBJECT_KEY_ID,
            oid::EXT_KEY_USAGE,
            oid::EXT_SUBJECT_ALT_NAME,
            oid::EXT_BASIC_CONSTRAINTS,
            oid::EXT_CERT_POLICIES,
            oid::EXT_AUTHORITY_KEY_ID,
            oid::EXT_EXTENDED_KEY_USAGE,
        ];
        for ext in self.x509.extensions() {
            if ext.critical && !UNDERSTOOD.contains(&ext.oid.as_bytes()) {
                return Err(self.bad(format!("unsupported critical extension {}", ext.oid)));
            }
        }
        Ok(())
    }

    /// May sign certificates: basicConstraints cA, keyCertSign if keyUsage is present, and a
    /// path length constraint that allows `intermediates_below` CA certificates under it.
    fn check_can_issue(&self, intermediates_below: usize) -> Result<(), TsaError> {
        let bc = self
            .x509
            .basic_constraints()
            .map_err(|e| self.bad(format!("basicConstraints: {e}")))?;
        let Some(bc) = bc.filter(|bc| bc.value.ca) else {
            return Err(self.bad("issues certificates but is not a CA (basicConstraints)"));
        };
        if let Some(limit) = bc.value.path_len_constraint
            && usize::try_from(limit).is_ok_and(|limit| intermediates_below > limit)
        {
            return Err(self.bad("path length constraint exceeded"));
        }
        let ku = self
            .x509
            .key_usage()
            .map_err(|e| self.bad(format!("keyUsage: {e}")))?;
        if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
            return Err(self.bad("issues certificates without keyCertSign"));
        }
        Ok(())
    }
}

/// The certificate the SignerInfo's sid names: first among the token's own certificates,
/// then among the trusted ones (a TSA may omit its certificate if certReq was false).
fn find_signer<'c, 'a>(
    token: &SignedToken<'_>,
    token_certs: &'c [Cert<'a>],
    trusted: &'c [Cert<'a>],
) -> Option<&'c Cert<'a>> {
    token_certs.iter().chain(trusted).find(|c| match token.sid {
        token::SignerId::IssuerSerial { issuer, serial } => {
            c.x509.issuer().as_raw() == issuer && c.x509.raw_serial() == serial
        }
        token::SignerId::KeyId(id) => c.subject_key_id() == Some(id),
    })
}

/// ESSCertID (v1, SHA-1) and ESSCertIDv2, whichever are present, must name the signer
/// certificate: its hash, and its issuer and serial if given.
fn check_ess_cert_ids(attrs: &token::SignedAttrs<'_>, signer: &Cert<'_>) -> Result<(), TsaError> {
    for (value, v2) in [(attrs.signing_cert, false), (attrs.signing_cert_v2, true)] {
        let Some(value) = value else { continue };
        let id = token::first_ess_cert_id(&value, v2)?;
        let hash_alg = match (&id.hash_alg, v2) {
            (_, false) => DigestAlg::Sha1,
            (None, true) => DigestAlg::Sha256, // the DEFAULT of ESSCertIDv2.hashAlgorithm
            (Some(alg), true) => DigestAlg::from_alg(alg, "ESSCertIDv2.hashAlgorithm")?,
        };
        if hash_alg.digest(signer.der).as_ref() != id.hash {
            return Err(TsaError::SignerCertMismatch);
        }
        if let Some((issuers, serial)) = id.issuer_serial {
            let issuer = signer.x509.issuer().as_raw();
            if serial != signer.x509.raw_serial() || !issuers.contains(&issuer) {
                return Err(TsaError::SignerCertMismatch);
            }
        }
    }
    Ok(())
}

/// RFC 3161 §2.3: the TSA certificate has exactly one extendedKeyUsage, critical, with
/// id-kp-timeStamping as its only purpose; and keyUsage, if present, allows signatures.
fn check_time_stamping_usage(signer: &Cert<'_>) -> Result<(), TsaError> {
    let refuse = |reason: &'static str| TsaError::NotTimeStamping {
        subject: signer.subject(),
        reason,
    };
    let eku = match signer.x509.extended_key_usage() {
        Ok(Some(eku)) => eku,
        Ok(None) => return Err(refuse("no extendedKeyUsage extension")),
        Err(_) => return Err(refuse("extendedKeyUsage is malformed or repeated")),
    };
    if !eku.critical {
        return Err(refuse("extendedKeyUsage is not critical"));
    }
    let usage = eku.value;
    if !usage.time_stamping {
        return Err(refuse("extendedKeyUsage lacks id-kp-timeStamping"));
    }
    if usage.any
        || usage.server_auth
        || usage.client_auth
        || usage.code_signing
        || usage.email_protection
        || usage.ocsp_signing
        || !usage.other.is_empty()
    {
        return Err(refuse(
            "extendedKeyUsage has purposes besides id-kp-timeStamping",
        ));
    }
    match signer.x509.key_usage() {
        Ok(Some(ku)) if !(ku.value.digital_signature() || ku.value.non_repudiation()) => Err(
            refuse("keyUsage allows neither digitalSignature nor nonRepudiation"),
        ),
        Ok(_) => Ok(()),
        Err(_) => Err(refuse("keyUsage is malformed or repeated")),
    }
}

/// Walks from the signer certificate to a trusted certificate: the signer itself, or an
/// issuer found among the trusted certificates, or through intermediates the token carries.
/// Names are compared as raw DER (what every TSA we know of produces consistently); a name
/// match whose signature does not verify is not an issuer. Every certificate on the path,
/// anchor included, must be valid at genTime.
fn check_chain(
    signer: &Cert<'_>,
    token_certs: &[Cert<'_>],
    trusted: &[Cert<'_>],
    gen_unix: i64,
) -> Result<(), TsaError> {
    let untrusted = || TsaError::UntrustedSigner(signer.subject());
    let mut path: Vec<&Cert<'_>> = vec![signer];
    let mut current = signer;
    for intermediates_below in 0..MAX_CHAIN_LEN {
        current.check_valid_at(gen_unix)?;
        if trusted.iter().any(|t| t.der == current.der) {
            return Ok(());
        }
        if let Some(anchor) = trusted.iter().find(|t| current.is_signed_by(t)) {
            anchor.check_valid_at(gen_unix)?;
            anchor.check_can_issue(intermediates_below)?;
            return Ok(());
        }
        let next = token_certs
            .iter()
            .find(|c| !path.iter().any(|p| p.der == c.der) && current.is_signed_by(c))
            .ok_or_else(untrusted)?;
        next.check_can_issue(intermediates_below)?;
        path.push(next);
        current = next;
    }
    Err(untrusted())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Certificates from tests/data (see make-certs.sh there): one root, and variations on a
    /// TSA certificate it issued, all with the same key and subject.
    fn data(name: &str) -> Vec<u8> {
        let text: &[u8] = match name {
            "root" => include_bytes!("../tests/data/root.pem"),
            "not_ca" => include_bytes!("../tests/data/not_ca.pem"),
            "tsa_ok" => include_bytes!("../tests/data/tsa_ok.pem"),
            "no_eku" => include_bytes!("../tests/data/no_eku.pem"),
            "eku_noncritical" => include_bytes!("../tests/data/eku_noncritical.pem"),
            "eku_extra" => include_bytes!("../tests/data/eku_extra.pem"),
            "ku_wrong" => include_bytes!("../tests/data/ku_wrong.pem"),
            "unknown_critical" => include_bytes!("../tests/data/unknown_critical.pem"),
            "under_not_ca" => include_bytes!("../tests/data/under_not_ca.pem"),
            other => panic!("no test certificate {other}"),
        };
        pem::parse(text).unwrap().into_contents()
    }

    #[test]
    fn time_stamping_usage_is_required_alone_and_critical() {
        let check = |name| {
            let der = data(name);
            match check_time_stamping_usage(&Cert::parse(&der).unwrap()) {
                Ok(()) => "ok",
                Err(TsaError::NotTimeStamping { reason, .. }) => reason,
                Err(other) => panic!("{name}: {other}"),
            }
        };
        assert_eq!(check("tsa_ok"), "ok");
        assert_eq!(check("no_eku"), "no extendedKeyUsage extension");
        assert_eq!(check("eku_noncritical"), "extendedKeyUsage is not critical");
        assert_eq!(
            check("eku_extra"),
            "extendedKeyUsage has purposes besides id-kp-timeStamping"
        );
        assert_eq!(
            check("ku_wrong"),
            "keyUsage allows neither digitalSignature nor nonRepudiation"
        );
    }

    /// Runs check_chain for the named signer, token certificates and trusted certificates
    /// at `at` (Unix seconds; `None`: the signer's notBefore).
    fn chain(
        signer: &str,
        token: &[&str],
        trusted: &[&str],
        at: Option<i64>,
    ) -> Result<(), TsaError> {
        let signer_der = data(signer);
        let token_der: Vec<_> = token.iter().map(|n| data(n)).collect();
        let trusted_der: Vec<_> = trusted.iter().map(|n| data(n)).collect();
        let signer = Cert::parse(&signer_der).unwrap();
        let token: Vec<_> = token_der.iter().map(|d| Cert::parse(d).unwrap()).collect();
        let trusted: Vec<_> = trusted_der
            .iter()
            .map(|d| Cert::parse(d).unwrap())
            .collect();
        let at = at.unwrap_or_else(|| signer.x509.validity().not_before.timestamp());
        check_chain(&signer, &token, &trusted, at)
    }

    #[test]
    fn chains_to_a_root_or_to_the_leaf_itself() {
        chain("tsa_ok", &[], &["root"], None).unwrap();
        chain("tsa_ok", &[], &["tsa_ok"], None).unwrap();
        chain("tsa_ok", &["root"], &["root"], None).unwrap();
        // The root in the token is no trust anchor.
        assert!(matches!(
            chain("tsa_ok", &["root"], &[], None),
            Err(TsaError::UntrustedSigner(_))
        ));
        // Same subject and key as the issuer of under_not_ca, but not a CA.
        assert!(matches!(
            chain("tsa_ok", &[], &["not_ca"], None),
            Err(TsaError::UntrustedSigner(_))
        ));
    }

    #[test]
    fn chain_validity_is_judged_at_gen_time() {
        let der = data("tsa_ok");
        let cert = Cert::parse(&der).unwrap();
        let not_before = cert.x509.validity().not_before.timestamp();
        let not_after = cert.x509.validity().not_after.timestamp();
        chain("tsa_ok", &[], &["root"], Some(not_after)).unwrap();
        assert!(matches!(
            chain("tsa_ok", &[], &["root"], Some(not_before - 1)),
            Err(TsaError::NotYetValid { .. })
        ));
        assert!(matches!(
            chain("tsa_ok", &[], &["root"], Some(not_after + 1)),
            Err(TsaError::Expired { .. })
        ));
    }

    #[test]
    fn issuers_must_be_cas_and_extensions_understood() {
        for result in [
            chain("under_not_ca", &[], &["not_ca"], None),
            chain("under_not_ca", &["not_ca"], &["root"], None),
            chain("under_not_ca", &[], &["tsa_ok"], None),
        ] {
            assert!(
                matches!(&result, Err(TsaError::BadCertificate { reason, .. }) if reason.contains("not a CA")),
                "{result:?}"
            );
        }
        let result = chain("unknown_critical", &[], &["root"], None);
        assert!(
            matches!(&result, Err(TsaError::BadCertificate { reason, .. }) if reason.contains("2.5.29.30")),
            "{result:?}"
        );
    }

    #[test]
    fn ess_cert_ids_must_name_the_signer() {
        let der = data("tsa_ok");
        let signer = Cert::parse(&der).unwrap();
        let ess = |v2: bool, hash: &[u8], issuer_serial: Option<(&[u8], &[u8])>| {
            let mut id = der::encode(tag::OCTET_STRING, hash);
            if let Some((issuer, serial)) = issuer_serial {
                let names = der::encode(tag::SEQUENCE, &der::encode(tag::CTX4, issuer));
                let serial = der::encode(tag::INTEGER, serial);
                id.extend(der::encode(tag::SEQUENCE, &[names, serial].concat()));
            }
            let value = der::encode(
                tag::SEQUENCE,
                &der::encode(tag::SEQUENCE, &der::encode(tag::SEQUENCE, &id)),
            );
            let tlv = der::parse_one(&value, "v").unwrap();
            let mut attrs = token::SignedAttrs::default();
            if v2 {
                attrs.signing_cert_v2 = Some(tlv);
            } else {
                attrs.signing_cert = Some(tlv);
            }
            check_ess_cert_ids(&attrs, &signer).map_err(|e| e.to_string())
        };
        let sha1 = DigestAlg::Sha1.digest(&der);
        let sha256 = DigestAlg::Sha256.digest(&der);
        let issuer = signer.x509.issuer().as_raw();
        let serial = signer.x509.raw_serial();
        ess(false, sha1.as_ref(), None).unwrap();
        ess(true, sha256.as_ref(), None).unwrap();
        ess(true, sha256.as_ref(), Some((issuer, serial))).unwrap();
        ess(false, sha256.as_ref(), None).unwrap_err();
        ess(true, sha1.as_ref(), None).unwrap_err();
        ess(true, sha256.as_ref(), Some((issuer, &[0x7f]))).unwrap_err();
        ess(
            true,
            sha256.as_ref(),
            Some((signer.x509.subject().as_raw(), serial)),
        )
        .unwrap_err();
    }

    #[test]
    fn serial_hex_drops_only_the_sign_octet() {
        assert_eq!(serial_hex(&[0x02]), "02");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x00, 0xf8, 0xcb]), "f8cb");
        assert_eq!(serial_hex(&[0x01, 0x00]), "0100");
    }

    #[test]
    fn trust_refuses_non_certificates() {
        assert!(matches!(
            TsaTrust::from_pem(b""),
            Err(TsaError::InvalidTrust(_))
        ));
        let not_cert = b"-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TsaTrust::from_pem(not_cert),
            Err(TsaError::InvalidTrust(_))
        ));
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAECAw==\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            TsaTrust::from_pem(key_only),
            Err(TsaError::InvalidTrust(_))
        ));
        assert!(TsaTrust::from_pem_files(&[]).unwrap().is_empty());
        // Text around the blocks (as in CA bundles) and other block types are skipped.
        let bundle = [
            &b"# test root\n"[..],
            key_only,
            include_bytes!("../tests/data/root.pem"),
            include_bytes!("../tests/data/tsa_ok.pem"),
        ]
        .concat();
        assert_eq!(TsaTrust::from_pem(&bundle).unwrap().len(), 2);
        assert!(matches!(
            TsaTrust::from_pem_files(&[PathBuf::from("/nonexistent/ca.pem")]),
            Err(TsaError::Io { .. })
        ));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panic() {
        let trust = TsaTrust::default();
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x00],
            &[0x30, 0x80, 0, 0],
            &[0xff; 40],
        ] {
            assert!(matches!(
                verify_token(input, b"data", &trust, 0),
                Err(TsaError::Malformed(_))
            ));
        }
        let big = vec![0u8; MAX_TOKEN_BYTES + 1];
        assert!(matches!(
            verify_token(&big, b"data", &trust, 0),
            Err(TsaError::TooLarge { .. })
        ));
    }
}
