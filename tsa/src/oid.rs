//! The object identifiers RFC 3161, CMS and our signature algorithms use, as the DER
//! contents octets (what follows tag 0x06 and the length), so a parsed OID is recognised by
//! a byte comparison. A unit test checks each constant against its dotted form.

/// id-signedData, 1.2.840.113549.1.7.2 (RFC 5652): the ContentInfo type of a token.
pub(crate) const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// id-ct-TSTInfo, 1.2.840.113549.1.9.16.1.4 (RFC 3161 §2.4.2).
pub(crate) const CT_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
/// id-contentType attribute, 1.2.840.113549.1.9.3.
pub(crate) const ATTR_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
/// id-messageDigest attribute, 1.2.840.113549.1.9.4.
pub(crate) const ATTR_MESSAGE_DIGEST: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// id-aa-signingCertificate, 1.2.840.113549.1.9.16.2.12 (RFC 2634 ESSCertID, SHA-1).
pub(crate) const ATTR_SIGNING_CERT: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0c,
];
/// id-aa-signingCertificateV2, 1.2.840.113549.1.9.16.2.47 (RFC 5035 ESSCertIDv2).
pub(crate) const ATTR_SIGNING_CERT_V2: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f,
];

/// id-sha1, 1.3.14.3.2.26: only for ESSCertID v1 certificate hashes.
pub(crate) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256, 2.16.840.1.101.3.4.2.1.
pub(crate) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-sha384, 2.16.840.1.101.3.4.2.2.
pub(crate) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// id-sha512, 2.16.840.1.101.3.4.2.3.
pub(crate) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// rsaEncryption, 1.2.840.113549.1.1.1: the RSA key type, and the CMS signature algorithm
/// OpenSSL writes for RSA (the hash then comes from the digestAlgorithm).
pub(crate) const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// sha256WithRSAEncryption, 1.2.840.113549.1.1.11.
pub(crate) const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// sha384WithRSAEncryption, 1.2.840.113549.1.1.12.
pub(crate) const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// sha512WithRSAEncryption, 1.2.840.113549.1.1.13.
pub(crate) const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// id-ecPublicKey, 1.2.840.10045.2.1: the EC key type (some signers also use it as the
/// CMS signature algorithm, with the hash from the digestAlgorithm).
pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// ecdsa-with-SHA256, 1.2.840.10045.4.3.2.
pub(crate) const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// ecdsa-with-SHA384, 1.2.840.10045.4.3.3.
pub(crate) const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// ecdsa-with-SHA512, 1.2.840.10045.4.3.4.
pub(crate) const ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
/// prime256v1 / P-256, 1.2.840.10045.3.1.7.
pub(crate) const CURVE_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 / P-384, 1.3.132.0.34.
pub(crate) const CURVE_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// Certificate extensions this verifier understands, by OID (2.5.29.x). A certificate in the
/// chain with any *other* critical extension is refused, as RFC 5280 §4.2 requires.
pub(crate) const EXT_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
pub(crate) const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
pub(crate) const EXT_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
pub(crate) const EXT_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
pub(crate) const EXT_CERT_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
pub(crate) const EXT_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
pub(crate) const EXT_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

/// The dotted form of an OID's contents octets, or `None` if they are not a valid
/// encoding (empty, an arc not terminated, a non-minimal arc, an arc over 64 bits).
pub(crate) fn to_dotted(contents: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut current: u64 = 0;
    let mut in_arc = false;
    for &byte in contents {
        if !in_arc && byte == 0x80 {
            return None; // leading 0x80 pads an arc: not minimal
        }
        if current > (u64::MAX >> 7) {
            return None;
        }
        current = (current << 7) | u64::from(byte & 0x7f);
        in_arc = byte & 0x80 != 0;
        if !in_arc {
            arcs.push(current);
            current = 0;
        }
    }
    if in_arc {
        return None;
    }
    let (&first, rest) = arcs.split_first()?;
    // The first subidentifier packs the first two arcs: 40 * X + Y, X in {0, 1, 2}.
    let (x, y) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{x}.{y}");
    for arc in rest {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn constants_match_their_dotted_names() {
        let cases: &[(&[u8], &str)] = &[
            (SIGNED_DATA, "1.2.840.113549.1.7.2"),
            (CT_TST_INFO, "1.2.840.113549.1.9.16.1.4"),
            (ATTR_CONTENT_TYPE, "1.2.840.113549.1.9.3"),
            (ATTR_MESSAGE_DIGEST, "1.2.840.113549.1.9.4"),
            (ATTR_SIGNING_CERT, "1.2.840.113549.1.9.16.2.12"),
            (ATTR_SIGNING_CERT_V2, "1.2.840.113549.1.9.16.2.47"),
            (SHA1, "1.3.14.3.2.26"),
            (SHA256, "2.16.840.1.101.3.4.2.1"),
            (SHA384, "2.16.840.1.101.3.4.2.2"),
            (SHA512, "2.16.840.1.101.3.4.2.3"),
            (RSA_ENCRYPTION, "1.2.840.113549.1.1.1"),
            (SHA256_WITH_RSA, "1.2.840.113549.1.1.11"),
            (SHA384_WITH_RSA, "1.2.840.113549.1.1.12"),
            (SHA512_WITH_RSA, "1.2.840.113549.1.1.13"),
            (EC_PUBLIC_KEY, "1.2.840.10045.2.1"),
            (ECDSA_WITH_SHA256, "1.2.840.10045.4.3.2"),
            (ECDSA_WITH_SHA384, "1.2.840.10045.4.3.3"),
            (ECDSA_WITH_SHA512, "1.2.840.10045.4.3.4"),
            (CURVE_P256, "1.2.840.10045.3.1.7"),
            (CURVE_P384, "1.3.132.0.34"),
            (EXT_SUBJECT_KEY_ID, "2.5.29.14"),
            (EXT_KEY_USAGE, "2.5.29.15"),
            (EXT_SUBJECT_ALT_NAME, "2.5.29.17"),
            (EXT_BASIC_CONSTRAINTS, "2.5.29.19"),
            (EXT_CERT_POLICIES, "2.5.29.32"),
            (EXT_AUTHORITY_KEY_ID, "2.5.29.35"),
            (EXT_EXTENDED_KEY_USAGE, "2.5.29.37"),
        ];
        for (bytes, dotted) in cases {
            assert_eq!(to_dotted(bytes).unwrap(), *dotted);
        }
    }

    #[test]
    fn refuses_invalid_encodings() {
        assert_eq!(to_dotted(&[]), None);
        assert_eq!(to_dotted(&[0x2a, 0x86]), None); // unterminated arc
        assert_eq!(to_dotted(&[0x2a, 0x80, 0x01]), None); // non-minimal arc
        assert_eq!(
            to_dotted(&[
                0x2a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ]),
            None
        );
        assert_eq!(to_dotted(&[0x00]).unwrap(), "0.0");
        assert_eq!(to_dotted(&[0x88, 0x37]).unwrap(), "2.999");
    }
}
