//! The RFC 3161 and CMS structures, parsed into borrowed views of the input.
//!
//! Parsing checks shape only (tags, lengths, versions, single signer); what the bytes *mean*
//! (digests, signatures, certificates) is checked in `verify` and `client`. Each view keeps
//! the raw slices that are later hashed or verified, because CMS signatures and digests
//! cover the bytes as received, never a re-encoding.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::TsaError;
use crate::der::{self, AlgorithmId, Tlv, tag};
use crate::oid;

/// At most this many certificates in a token's `certificates` field. A TSA sends its own
/// certificate and perhaps a few intermediates; more is an attempt to make us parse a lot.
pub(crate) const MAX_TOKEN_CERTS: usize = 16;

// ---------------------------------------------------------------------------------------
// TimeStampReq (RFC 3161 §2.4.1)
// ---------------------------------------------------------------------------------------

/// DER of `TimeStampReq { version v1, messageImprint { sha256, imprint }, nonce, certReq TRUE }`.
///
/// certReq is TRUE so the TSA puts its certificate in the token and a verifier needs only
/// the root it trusts; no reqPolicy, so the TSA uses its default policy.
pub(crate) fn encode_request(sha256_imprint: &[u8], nonce: u64) -> Vec<u8> {
    let alg = der::encode(
        tag::SEQUENCE,
        &[
            der::encode(tag::OID, oid::SHA256),
            der::encode(tag::NULL, &[]),
        ]
        .concat(),
    );
    let imprint = der::encode(
        tag::SEQUENCE,
        &[alg, der::encode(tag::OCTET_STRING, sha256_imprint)].concat(),
    );
    let body = [
        der::encode(tag::INTEGER, &[1]),
        imprint,
        der::encode(tag::INTEGER, &der::uint_contents(nonce)),
        der::encode(tag::BOOLEAN, &[0xff]),
    ]
    .concat();
    der::encode(tag::SEQUENCE, &body)
}

// ---------------------------------------------------------------------------------------
// TimeStampResp (RFC 3161 §2.4.2)
// ---------------------------------------------------------------------------------------

/// A parsed `TimeStampResp`: the PKIStatusInfo and the raw token, if any.
pub(crate) struct Response<'a> {
    pub(crate) status: u64,
    /// statusString and failInfo, rendered for an operator.
    pub(crate) text: String,
    pub(crate) token: Option<&'a [u8]>,
}

/// PKIStatus values that mean a token was issued.
pub(crate) const STATUS_GRANTED: u64 = 0;
pub(crate) const STATUS_GRANTED_WITH_MODS: u64 = 1;

pub(crate) fn status_name(status: u64) -> &'static str {
    match status {
        0 => "granted",
        1 => "grantedWithMods",
        2 => "rejection",
        3 => "waiting",
        4 => "revocationWarning",
        5 => "revocationNotification",
        _ => "unknown status",
    }
}

/// PKIFailureInfo bit names (RFC 3161 §2.4.2), by bit number.
const FAIL_INFO_BITS: &[(usize, &str)] = &[
    (0, "badAlg"),
    (2, "badRequest"),
    (5, "badDataFormat"),
    (14, "timeNotAvailable"),
    (15, "unacceptedPolicy"),
    (16, "unacceptedExtension"),
    (17, "addInfoNotAvailable"),
    (25, "systemFailure"),
];

/// At most this many characters of a TSA's statusString end up in an error: the text is
/// the peer's, and errors get logged.
const MAX_STATUS_TEXT_CHARS: usize = 512;

pub(crate) fn parse_response(input: &[u8]) -> Result<Response<'_>, TsaError> {
    const WHAT: &str = "TimeStampResp";
    let outer = der::parse_one(input, WHAT)?;
    if outer.tag != tag::SEQUENCE {
        return Err(der::malformed(WHAT, "not a SEQUENCE"));
    }
    let mut reader = outer.reader(WHAT);
    let status_info = reader.expect(tag::SEQUENCE, "PKIStatusInfo")?;
    let token = reader
        .optional(tag::SEQUENCE, "timeStampToken")?
        .map(|t| t.raw);
    reader.finish()?;

    let mut info = status_info.reader("PKIStatusInfo");
    let status = der::small_uint(&info.expect(tag::INTEGER, "PKIStatus")?, "PKIStatus")?;
    let mut parts = Vec::new();
    if let Some(free_text) = info.optional(tag::SEQUENCE, "statusString")? {
        let mut strings = free_text.reader("statusString");
        while !strings.is_empty() {
            let s = strings.expect(tag::UTF8_STRING, "statusString")?;
            parts.push(String::from_utf8_lossy(s.value).into_owned());
        }
    }
    if let Some(bits) = info.optional(tag::BIT_STRING, "failInfo")? {
        let names = fail_info_names(&bits);
        if !names.is_empty() {
            parts.push(format!("failInfo: {}", names.join(", ")));
        }
    }
    info.finish()?;
    // The text is the peer's and ends up in logs: no control characters, bounded length.
    let mut text: String = parts
        .join("; ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_STATUS_TEXT_CHARS)
        .collect();
    if text.is_empty() {
        text.push_str("no status text");
    }
    Ok(Response {
        status,
        text,
        token,
    })
}

/// Names of the failInfo bits set (BIT STRING bit 0 is the high bit of the first octet).
fn fail_info_names(bits: &Tlv<'_>) -> Vec<&'static str> {
    let octets = bits.value.get(1..).unwrap_or_default();
    FAIL_INFO_BITS
        .iter()
        .filter(|(bit, _)| {
            octets
                .get(bit / 8)
                .is_some_and(|octet| octet & (0x80 >> (bit % 8)) != 0)
        })
        .map(|(_, name)| *name)
        .collect()
}

// ---------------------------------------------------------------------------------------
// TimeStampToken = ContentInfo { signedData } (RFC 3161 §2.4.2, RFC 5652 §5)
// ---------------------------------------------------------------------------------------

/// How a SignerInfo names its certificate (RFC 5652 §5.3).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignerId<'a> {
    /// The issuer Name (raw DER) and the serial number (INTEGER contents).
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    /// The subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

/// A parsed token: the encapsulated TSTInfo, the certificates shipped with it, and its one
/// SignerInfo.
pub(crate) struct SignedToken<'a> {
    /// The TSTInfo DER: the eContent OCTET STRING's contents, which the message-digest
    /// attribute covers.
    pub(crate) tst_info: &'a [u8],
    /// Raw DER of each `Certificate` in the `certificates` field (other choices skipped).
    pub(crate) certificates: Vec<&'a [u8]>,
    pub(crate) sid: SignerId<'a>,
    pub(crate) digest_alg: AlgorithmId<'a>,
    /// The signed attributes as received, `[0] IMPLICIT` tag included.
    pub(crate) signed_attrs: Tlv<'a>,
    pub(crate) sig_alg: AlgorithmId<'a>,
    pub(crate) signature: &'a [u8],
}

pub(crate) fn parse_token(input: &[u8]) -> Result<SignedToken<'_>, TsaError> {
    const WHAT: &str = "ContentInfo";
    let content_info = der::parse_one(input, WHAT)?;
    if content_info.tag != tag::SEQUENCE {
        return Err(der::malformed(WHAT, "not a SEQUENCE"));
    }
    let mut ci = content_info.reader(WHAT);
    let content_type = der::oid(&ci.expect(tag::OID, "ContentInfo.contentType")?, WHAT)?;
    if content_type != oid::SIGNED_DATA {
        return Err(der::malformed(WHAT, "content type is not id-signedData"));
    }
    let explicit = ci.expect(tag::CTX0, "ContentInfo.content")?;
    ci.finish()?;
    let mut wrapper = explicit.reader("ContentInfo.content");
    let signed_data = wrapper.expect(tag::SEQUENCE, "SignedData")?;
    wrapper.finish()?;

    let mut sd = signed_data.reader("SignedData");
    let version = der::small_uint(
        &sd.expect(tag::INTEGER, "SignedData.version")?,
        "SignedData.version",
    )?;
    if !(1..=5).contains(&version) {
        return Err(der::malformed("SignedData.version", "not 1 to 5"));
    }
    sd.expect(tag::SET, "SignedData.digestAlgorithms")?;
    let tst_info = parse_encap_content(sd.expect(tag::SEQUENCE, "encapContentInfo")?)?;

    let mut certificates = Vec::new();
    if let Some(certs) = sd.optional(tag::CTX0, "SignedData.certificates")? {
        let mut reader = certs.reader("SignedData.certificates");
        while !reader.is_empty() {
            let cert = reader.any("SignedData.certificates")?;
            // Only the plain Certificate choice is a SEQUENCE; attribute and other
            // certificate formats are [n]-tagged and of no use to us.
            if cert.tag == tag::SEQUENCE {
                if certificates.len() == MAX_TOKEN_CERTS {
                    return Err(der::malformed(
                        "SignedData.certificates",
                        "more than 16 certificates",
                    ));
                }
                certificates.push(cert.raw);
            }
        }
    }
    sd.optional(tag::CTX1, "SignedData.crls")?;
    let signer_infos = sd.expect(tag::SET, "SignedData.signerInfos")?;
    sd.finish()?;

    // RFC 3161 §2.4.2: the token carries the TSA's signature and no other.
    let mut infos = signer_infos.reader("signerInfos");
    let signer_info = infos.expect(tag::SEQUENCE, "SignerInfo")?;
    if !infos.is_empty() {
        return Err(der::malformed("signerInfos", "more than one SignerInfo"));
    }

    let mut si = signer_info.reader("SignerInfo");
    let si_version = der::small_uint(
        &si.expect(tag::INTEGER, "SignerInfo.version")?,
        "SignerInfo.version",
    )?;
    let sid = match si.peek_tag() {
        Some(tag::SEQUENCE) => {
            let ias = si.any("SignerInfo.sid")?;
            let mut r = ias.reader("IssuerAndSerialNumber");
            let issuer = r.expect(tag::SEQUENCE, "IssuerAndSerialNumber.issuer")?.raw;
            let serial = der::integer(
                &r.expect(tag::INTEGER, "IssuerAndSerialNumber.serialNumber")?,
                "IssuerAndSerialNumber.serialNumber",
            )?;
            r.finish()?;
            SignerId::IssuerSerial { issuer, serial }
        }
        Some(tag::CTX0_PRIMITIVE) => SignerId::KeyId(si.any("SignerInfo.sid")?.value),
        _ => {
            return Err(der::malformed(
                "SignerInfo.sid",
                "neither issuerAndSerialNumber nor subjectKeyIdentifier",
            ));
        }
    };
    // RFC 5652 §5.3: version 1 goes with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    let expected_version = match sid {
        SignerId::IssuerSerial { .. } => 1,
        SignerId::KeyId(_) => 3,
    };
    if si_version != expected_version {
        return Err(der::malformed(
            "SignerInfo.version",
            "does not match the sid choice",
        ));
    }
    let digest_alg = AlgorithmId::read(&mut si, "SignerInfo.digestAlgorithm")?;
    // A TSTInfo is not id-data, so RFC 5652 §5.3 requires signed attributes: they carry
    // the content type and the digest that bind the signature to the TSTInfo.
    let signed_attrs = si
        .optional(tag::CTX0, "SignerInfo.signedAttrs")?
        .ok_or_else(|| der::malformed("SignerInfo", "no signed attributes"))?;
    let sig_alg = AlgorithmId::read(&mut si, "SignerInfo.signatureAlgorithm")?;
    let signature = si.expect(tag::OCTET_STRING, "SignerInfo.signature")?.value;
    si.optional(tag::CTX1, "SignerInfo.unsignedAttrs")?;
    si.finish()?;

    Ok(SignedToken {
        tst_info,
        certificates,
        sid,
        digest_alg,
        signed_attrs,
        sig_alg,
        signature,
    })
}

/// `EncapsulatedContentInfo { eContentType id-ct-TSTInfo, eContent [0] EXPLICIT OCTET STRING }`.
fn parse_encap_content(encap: Tlv<'_>) -> Result<&[u8], TsaError> {
    const WHAT: &str = "encapContentInfo";
    let mut r = encap.reader(WHAT);
    let content_type = der::oid(&r.expect(tag::OID, "eContentType")?, WHAT)?;
    if content_type != oid::CT_TST_INFO {
        return Err(der::malformed("eContentType", "not id-ct-TSTInfo"));
    }
    let explicit = r
        .optional(tag::CTX0, "eContent")?
        .ok_or_else(|| der::malformed(WHAT, "no eContent (a detached TSTInfo)"))?;
    r.finish()?;
    let mut inner = explicit.reader("eContent");
    let octets = inner.expect(tag::OCTET_STRING, "eContent")?;
    inner.finish()?;
    Ok(octets.value)
}

/// The signed attributes a verifier needs (RFC 5652 §11, RFC 2634/5035 §5.4).
#[derive(Default)]
pub(crate) struct SignedAttrs<'a> {
    /// The content-type attribute's value: an OID's contents.
    pub(crate) content_type: Option<&'a [u8]>,
    /// The message-digest attribute's value: the digest of the TSTInfo.
    pub(crate) message_digest: Option<&'a [u8]>,
    /// The SigningCertificate (v1) value, the `SEQUENCE` inside the attribute's SET.
    pub(crate) signing_cert: Option<Tlv<'a>>,
    /// The SigningCertificateV2 value.
    pub(crate) signing_cert_v2: Option<Tlv<'a>>,
}

pub(crate) fn parse_signed_attrs<'a>(attrs: &Tlv<'a>) -> Result<SignedAttrs<'a>, TsaError> {
    const WHAT: &str = "signedAttrs";
    let mut out = SignedAttrs::default();
    let mut reader = attrs.reader(WHAT);
    while !reader.is_empty() {
        let attr = reader.expect(tag::SEQUENCE, "Attribute")?;
        let mut a = attr.reader("Attribute");
        let attr_type = der::oid(
            &a.expect(tag::OID, "Attribute.attrType")?,
            "Attribute.attrType",
        )?;
        let values = a.expect(tag::SET, "Attribute.attrValues")?;
        a.finish()?;
        let slot = match attr_type {
            oid::ATTR_CONTENT_TYPE => Slot::ContentType,
            oid::ATTR_MESSAGE_DIGEST => Slot::MessageDigest,
            oid::ATTR_SIGNING_CERT => Slot::SigningCert,
            oid::ATTR_SIGNING_CERT_V2 => Slot::SigningCertV2,
            _ => continue, // signingTime and others: covered by the signature, not needed
        };
        // Each of these attributes is single-valued, and may appear once (RFC 5652 §11).
        let mut v = values.reader("Attribute.attrValues");
        let value = v.any("Attribute.attrValues")?;
        if !v.is_empty() {
            return Err(der::malformed(
                WHAT,
                "a single-valued attribute has several values",
            ));
        }
        let duplicate = match slot {
            Slot::ContentType => {
                let oid = der::oid(&value, "content-type attribute")?;
                out.content_type.replace(oid).is_some()
            }
            Slot::MessageDigest => {
                if value.tag != tag::OCTET_STRING {
                    return Err(der::malformed(
                        "message-digest attribute",
                        "not an OCTET STRING",
                    ));
                }
                out.message_digest.replace(value.value).is_some()
            }
            Slot::SigningCert => out.signing_cert.replace(value).is_some(),
            Slot::SigningCertV2 => out.signing_cert_v2.replace(value).is_some(),
        };
        if duplicate {
            return Err(der::malformed(WHAT, "an attribute appears twice"));
        }
    }
    Ok(out)
}

enum Slot {
    ContentType,
    MessageDigest,
    SigningCert,
    SigningCertV2,
}

/// The bytes a CMS signature covers: the signed attributes re-tagged from `[0] IMPLICIT`
/// to the universal SET OF tag (RFC 5652 §5.4), otherwise exactly as received.
pub(crate) fn signed_attrs_message(attrs: &Tlv<'_>) -> Vec<u8> {
    let mut message = attrs.raw.to_vec();
    if let Some(first) = message.first_mut() {
        *first = tag::SET;
    }
    message
}

/// One ESSCertID or ESSCertIDv2 (RFC 2634 §5.4.1, RFC 5035 §4): the hash of the signer's
/// certificate, and optionally its issuer and serial number.
pub(crate) struct EssCertId<'a> {
    /// `None` for v1 (SHA-1); for v2 the hashAlgorithm (sha256 when absent, its DEFAULT).
    pub(crate) hash_alg: Option<AlgorithmId<'a>>,
    pub(crate) hash: &'a [u8],
    /// Raw DER of each directoryName Name in issuerSerial.issuer, and the serial contents.
    pub(crate) issuer_serial: Option<(Vec<&'a [u8]>, &'a [u8])>,
}

/// The first ESSCertID of a SigningCertificate(V2) value: by RFC 2634 §5.4 the first one
/// identifies the signer's own certificate; the others (a chain) we do not need.
pub(crate) fn first_ess_cert_id<'a>(value: &Tlv<'a>, v2: bool) -> Result<EssCertId<'a>, TsaError> {
    const WHAT: &str = "SigningCertificate";
    if value.tag != tag::SEQUENCE {
        return Err(der::malformed(WHAT, "not a SEQUENCE"));
    }
    let mut sc = value.reader(WHAT);
    let certs = sc.expect(tag::SEQUENCE, "SigningCertificate.certs")?;
    // policies (optional SEQUENCE) may follow; it restricts nothing we rely on.
    let mut list = certs.reader("SigningCertificate.certs");
    let first = list.expect(tag::SEQUENCE, "ESSCertID")?;
    let mut id = first.reader("ESSCertID");
    let hash_alg = if v2 && id.peek_tag() == Some(tag::SEQUENCE) {
        Some(AlgorithmId::read(&mut id, "ESSCertIDv2.hashAlgorithm")?)
    } else {
        None
    };
    let hash = id.expect(tag::OCTET_STRING, "ESSCertID.certHash")?.value;
    let issuer_serial = match id.optional(tag::SEQUENCE, "ESSCertID.issuerSerial")? {
        None => None,
        Some(is) => {
            let mut r = is.reader("IssuerSerial");
            let names = r.expect(tag::SEQUENCE, "IssuerSerial.issuer")?;
            let serial = der::integer(
                &r.expect(tag::INTEGER, "IssuerSerial.serialNumber")?,
                "IssuerSerial.serialNumber",
            )?;
            r.finish()?;
            let mut directory_names = Vec::new();
            let mut gn = names.reader("IssuerSerial.issuer");
            while !gn.is_empty() {
                let name = gn.any("GeneralName")?;
                if name.tag == tag::CTX4 {
                    let mut inner = name.reader("directoryName");
                    directory_names.push(inner.expect(tag::SEQUENCE, "directoryName")?.raw);
                    inner.finish()?;
                }
            }
            Some((directory_names, serial))
        }
    };
    id.finish()?;
    Ok(EssCertId {
        hash_alg,
        hash,
        issuer_serial,
    })
}

// ---------------------------------------------------------------------------------------
// TSTInfo (RFC 3161 §2.4.2)
// ---------------------------------------------------------------------------------------

/// The TSTInfo fields we use.
pub(crate) struct TstInfo<'a> {
    /// The policy OID's contents.
    pub(crate) policy: &'a [u8],
    pub(crate) imprint_alg: AlgorithmId<'a>,
    pub(crate) imprint: &'a [u8],
    /// serialNumber INTEGER contents.
    pub(crate) serial: &'a [u8],
    pub(crate) gen_time: OffsetDateTime,
    /// nonce INTEGER contents, if the TSA echoed one.
    pub(crate) nonce: Option<&'a [u8]>,
}

pub(crate) fn parse_tst_info(input: &[u8]) -> Result<TstInfo<'_>, TsaError> {
    const WHAT: &str = "TSTInfo";
    let outer = der::parse_one(input, WHAT)?;
    if outer.tag != tag::SEQUENCE {
        return Err(der::malformed(WHAT, "not a SEQUENCE"));
    }
    let mut r = outer.reader(WHAT);
    if der::small_uint(
        &r.expect(tag::INTEGER, "TSTInfo.version")?,
        "TSTInfo.version",
    )? != 1
    {
        return Err(der::malformed("TSTInfo.version", "not v1"));
    }
    let policy = der::oid(&r.expect(tag::OID, "TSTInfo.policy")?, "TSTInfo.policy")?;
    let mi = r.expect(tag::SEQUENCE, "TSTInfo.messageImprint")?;
    let mut mr = mi.reader("TSTInfo.messageImprint");
    let imprint_alg = AlgorithmId::read(&mut mr, "messageImprint.hashAlgorithm")?;
    let imprint = mr
        .expect(tag::OCTET_STRING, "messageImprint.hashedMessage")?
        .value;
    mr.finish()?;
    let serial = der::integer(
        &r.expect(tag::INTEGER, "TSTInfo.serialNumber")?,
        "TSTInfo.serialNumber",
    )?;
    let gen_time =
        parse_generalized_time(r.expect(tag::GENERALIZED_TIME, "TSTInfo.genTime")?.value)
            .ok_or_else(|| {
                der::malformed("TSTInfo.genTime", "not a valid YYYYMMDDhhmmss[.f]Z time")
            })?;
    r.optional(tag::SEQUENCE, "TSTInfo.accuracy")?;
    if let Some(ordering) = r.optional(tag::BOOLEAN, "TSTInfo.ordering")? {
        der::boolean(&ordering, "TSTInfo.ordering")?;
    }
    let nonce = match r.optional(tag::INTEGER, "TSTInfo.nonce")? {
        Some(n) => Some(der::integer(&n, "TSTInfo.nonce")?),
        None => None,
    };
    r.optional(tag::CTX0, "TSTInfo.tsa")?;
    r.optional(tag::CTX1, "TSTInfo.extensions")?;
    r.finish()?;
    Ok(TstInfo {
        policy,
        imprint_alg,
        imprint,
        serial,
        gen_time,
        nonce,
    })
}

/// Parses a GeneralizedTime as RFC 3161 §2.4.2 constrains it: `YYYYMMDDhhmmss[.s+]Z`, UTC,
/// fraction optional (up to nanoseconds; finer digits must be absent, DER has no trailing
/// zeros, so more than 9 fraction digits is refused rather than rounded).
pub(crate) fn parse_generalized_time(s: &[u8]) -> Option<OffsetDateTime> {
    let (body, zone) = s.split_last_chunk::<1>()?;
    if zone != b"Z" {
        return None;
    }
    let (whole, fraction) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (body.get(..dot)?, Some(body.get(dot + 1..)?)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        whole
            .get(range)?
            .iter()
            .try_fold(0u32, |acc, &d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(8..10)?).ok()?;
    let minute = u8::try_from(num(10..12)?).ok()?;
    let second = u8::try_from(num(12..14)?).ok()?;
    let nanos = match fraction {
        None => 0,
        Some(f) => {
            if f.is_empty()
                || f.len() > 9
                || !f.iter().all(u8::is_ascii_digit)
                || f.last() == Some(&b'0')
            {
                return None;
            }
            let digits = f
                .iter()
                .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
            let missing = u32::try_from(9 - f.len()).ok()?;
            digits * 10u32.pow(missing)
        }
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn generalized_time_forms() {
        let t = parse_generalized_time(b"20261126031332Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_662_812);
        let f = parse_generalized_time(b"20261126031332.25Z").unwrap();
        assert_eq!(f.unix_timestamp(), 1_795_662_812);
        assert_eq!(f.nanosecond(), 250_000_000);
        for bad in [
            &b""[..],
            b"Z",
            b"20261126031332",
            b"20261126031332+0100",
            b"2026112603133Z",
            b"20261326031332Z",
            b"20260230031332Z",
            b"20261126241332Z",
            b"20261126031360Z",
            b"20261126031332.Z",
            b"20261126031332.50Z",
            b"20261126031332.1234567891Z",
            b"2026112603133aZ",
            b"+0261126031332Z",
        ] {
            assert!(
                parse_generalized_time(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn request_encoding_is_the_rfc_3161_shape() {
        let req = encode_request(&[0xab; 32], 0x8000_0000_0000_0001);
        // SEQUENCE { INTEGER 1, SEQUENCE { SEQUENCE { OID sha256, NULL }, OCTET STRING[32] },
        //            INTEGER 00 80..01, BOOLEAN TRUE }
        let outer = der::parse_one(&req, "req").unwrap();
        let mut r = outer.reader("req");
        assert_eq!(r.expect(tag::INTEGER, "v").unwrap().value, &[1]);
        let mi = r.expect(tag::SEQUENCE, "mi").unwrap();
        let mut mr = mi.reader("mi");
        let alg = AlgorithmId::read(&mut mr, "alg").unwrap();
        assert_eq!(alg.oid, oid::SHA256);
        assert_eq!(
            mr.expect(tag::OCTET_STRING, "h").unwrap().value,
            &[0xab; 32]
        );
        assert_eq!(
            r.expect(tag::INTEGER, "n").unwrap().value,
            &[0, 0x80, 0, 0, 0, 0, 0, 0, 1]
        );
        assert!(der::boolean(&r.any("c").unwrap(), "c").unwrap());
        r.finish().unwrap();
    }

    #[test]
    fn response_status_text_and_fail_info() {
        // SEQUENCE { SEQUENCE { INTEGER 2, SEQUENCE { UTF8String "bad" }, BIT STRING badAlg|badRequest } }
        let text = der::encode(tag::SEQUENCE, &der::encode(tag::UTF8_STRING, b"b\nad"));
        let bits = der::encode(tag::BIT_STRING, &[0x05, 0xa0]);
        let info = der::encode(
            tag::SEQUENCE,
            &[der::encode(tag::INTEGER, &[2]), text, bits].concat(),
        );
        let resp = der::encode(tag::SEQUENCE, &info);
        let parsed = parse_response(&resp).unwrap();
        assert_eq!(parsed.status, 2);
        assert_eq!(parsed.text, "b?ad; failInfo: badAlg, badRequest");
        assert!(parsed.token.is_none());
    }

    #[test]
    fn signed_attrs_refuse_duplicates_and_multi_values() {
        let ct = |values: &[&[u8]]| {
            der::encode(
                tag::SEQUENCE,
                &[
                    der::encode(tag::OID, oid::ATTR_CONTENT_TYPE),
                    der::encode(tag::SET, &values.concat()),
                ]
                .concat(),
            )
        };
        let one = der::encode(tag::OID, oid::CT_TST_INFO);
        let parse = |body: Vec<u8>| {
            let raw = der::encode(tag::CTX0, &body);
            parse_signed_attrs(&der::parse_one(&raw, "a").unwrap())
                .map(|a| a.content_type.map(<[u8]>::to_vec))
        };
        assert_eq!(parse(ct(&[&one])).unwrap(), Some(oid::CT_TST_INFO.to_vec()));
        assert!(parse([ct(&[&one]), ct(&[&one])].concat()).is_err());
        assert!(parse(ct(&[&one, &one])).is_err());
        assert!(parse(ct(&[])).is_err());
    }
}
