//! A minimal, strict DER reader and the few encoders the time-stamp request needs.
//!
//! Why our own reader instead of a generic ASN.1 crate: a token is attacker-controlled input,
//! and the structures we read (ContentInfo, SignedData, SignerInfo, TSTInfo, TimeStampResp)
//! are small and fixed. A cursor that hands out `(tag, raw, value)` slices keeps every read
//! bounds-checked (no indexing, no recursion, so no depth limit is needed) and keeps the raw
//! bytes we must hash or verify (the signed attributes, the TSTInfo, each certificate)
//! exactly as received.
//!
//! Strictness: definite lengths only, in their shortest form, at most 4 length octets;
//! low tag numbers only (all RFC 3161 / CMS tags are < 31). Indefinite (BER) lengths are
//! refused: RFC 3161 requires the TSTInfo in DER and every TSA we know of emits DER
//! throughout.

use crate::TsaError;

/// Universal and context tags used by RFC 3161 and CMS (single-octet identifiers).
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const NULL: u8 = 0x05;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
    /// `[0]` constructed (EXPLICIT, or IMPLICIT over a constructed type).
    pub(crate) const CTX0: u8 = 0xa0;
    /// `[1]` constructed.
    pub(crate) const CTX1: u8 = 0xa1;
    /// `[4]` constructed: GeneralName's directoryName (an EXPLICIT Name).
    pub(crate) const CTX4: u8 = 0xa4;
    /// `[0]` primitive: SignerIdentifier's subjectKeyIdentifier.
    pub(crate) const CTX0_PRIMITIVE: u8 = 0x80;
}

/// One DER element: its tag, its complete encoding and its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    /// Tag, length and contents, exactly as received.
    pub(crate) raw: &'a [u8],
    /// The contents octets only.
    pub(crate) value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over this element's contents (for constructed types).
    pub(crate) fn reader(&self, what: &'static str) -> Reader<'a> {
        Reader::new(self.value, what)
    }
}

/// Splits one element off the front of `input`; the error is the problem, without context.
fn split_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let (&tag, after_tag) = input.split_first().ok_or("missing element")?;
    if tag & 0x1f == 0x1f {
        return Err("high-tag-number form is not used by RFC 3161");
    }
    let (&first, after_first) = after_tag.split_first().ok_or("truncated length")?;
    let (len, after_len) = if first < 0x80 {
        (usize::from(first), after_first)
    } else if first == 0x80 {
        return Err("indefinite length (BER) is not DER");
    } else {
        let count = usize::from(first & 0x7f);
        if count > 4 {
            return Err("length field longer than 4 octets");
        }
        let (octets, rest) = after_first
            .split_at_checked(count)
            .ok_or("truncated length")?;
        if octets.first() == Some(&0) {
            return Err("length not in shortest form");
        }
        let len = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err("length not in shortest form");
        }
        (len, rest)
    };
    let (value, rest) = after_len
        .split_at_checked(len)
        .ok_or("length runs past the end of the input")?;
    let raw = input
        .get(..input.len() - rest.len())
        .ok_or("internal length error")?;
    Ok((Tlv { tag, raw, value }, rest))
}

/// Parses `input` as exactly one element (nothing may follow it).
pub(crate) fn parse_one<'a>(input: &'a [u8], what: &'static str) -> Result<Tlv<'a>, TsaError> {
    let mut reader = Reader::new(input, what);
    let tlv = reader.any(what)?;
    reader.finish()?;
    Ok(tlv)
}

/// A forward cursor over a sequence of DER elements.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// What is being read, for "trailing data" errors.
    context: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8], context: &'static str) -> Self {
        Self {
            rest: input,
            context,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, whatever its tag.
    pub(crate) fn any(&mut self, what: &'static str) -> Result<Tlv<'a>, TsaError> {
        let (tlv, rest) = split_tlv(self.rest).map_err(|problem| malformed(what, problem))?;
        self.rest = rest;
        Ok(tlv)
    }

    /// The next element, which must carry `tag`.
    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, TsaError> {
        match self.peek_tag() {
            Some(found) if found == tag => self.any(what),
            Some(found) => Err(TsaError::Malformed(format!(
                "{what}: expected tag 0x{tag:02x}, found 0x{found:02x}"
            ))),
            None => Err(malformed(what, "missing element")),
        }
    }

    /// The next element if it carries `tag` (an OPTIONAL or DEFAULT field).
    pub(crate) fn optional(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Option<Tlv<'a>>, TsaError> {
        if self.peek_tag() == Some(tag) {
            self.any(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Requires that everything was consumed: trailing bytes would be unauthenticated
    /// room for smuggling data past a parser that stops early.
    pub(crate) fn finish(self) -> Result<(), TsaError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(TsaError::Malformed(format!(
                "{}: {} unexpected trailing bytes",
                self.context,
                self.rest.len()
            )))
        }
    }
}

pub(crate) fn malformed(what: &str, problem: &str) -> TsaError {
    TsaError::Malformed(format!("{what}: {problem}"))
}

/// The contents of a DER INTEGER, checked to be minimal (DER has one encoding per value).
pub(crate) fn integer<'a>(tlv: &Tlv<'a>, what: &'static str) -> Result<&'a [u8], TsaError> {
    if tlv.tag != tag::INTEGER {
        return Err(malformed(what, "not an INTEGER"));
    }
    match tlv.value {
        [] => Err(malformed(what, "empty INTEGER")),
        [0x00, next, ..] if next & 0x80 == 0 => Err(malformed(what, "INTEGER not minimal")),
        [0xff, next, ..] if next & 0x80 != 0 => Err(malformed(what, "INTEGER not minimal")),
        value => Ok(value),
    }
}

/// A non-negative INTEGER that fits in a `u64` (versions, status codes).
pub(crate) fn small_uint(tlv: &Tlv<'_>, what: &'static str) -> Result<u64, TsaError> {
    let value = integer(tlv, what)?;
    if value.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(malformed(what, "negative INTEGER"));
    }
    let magnitude = match value {
        [0x00, rest @ ..] => rest,
        all => all,
    };
    if magnitude.len() > 8 {
        return Err(malformed(what, "INTEGER too large"));
    }
    Ok(magnitude
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// The contents of an OBJECT IDENTIFIER, checked to be a well-formed arc sequence.
pub(crate) fn oid<'a>(tlv: &Tlv<'a>, what: &'static str) -> Result<&'a [u8], TsaError> {
    if tlv.tag != tag::OID {
        return Err(malformed(what, "not an OBJECT IDENTIFIER"));
    }
    crate::oid::to_dotted(tlv.value).ok_or_else(|| malformed(what, "invalid OBJECT IDENTIFIER"))?;
    Ok(tlv.value)
}

/// A DER BOOLEAN: exactly one octet, 0x00 or 0xFF.
pub(crate) fn boolean(tlv: &Tlv<'_>, what: &'static str) -> Result<bool, TsaError> {
    match (tlv.tag, tlv.value) {
        (tag::BOOLEAN, [0x00]) => Ok(false),
        (tag::BOOLEAN, [0xff]) => Ok(true),
        _ => Err(malformed(what, "not a DER BOOLEAN")),
    }
}

/// The bits of a BIT STRING whose length is a whole number of octets (keys, signatures).
pub(crate) fn bit_string_octets<'a>(
    tlv: &Tlv<'a>,
    what: &'static str,
) -> Result<&'a [u8], TsaError> {
    if tlv.tag != tag::BIT_STRING {
        return Err(malformed(what, "not a BIT STRING"));
    }
    match tlv.value.split_first() {
        Some((0, bits)) => Ok(bits),
        Some(_) => Err(malformed(what, "BIT STRING with unused bits")),
        None => Err(malformed(what, "empty BIT STRING")),
    }
}

/// An AlgorithmIdentifier: `SEQUENCE { algorithm OID, parameters ANY OPTIONAL }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AlgorithmId<'a> {
    pub(crate) oid: &'a [u8],
    pub(crate) params: Option<Tlv<'a>>,
}

impl<'a> AlgorithmId<'a> {
    pub(crate) fn read(reader: &mut Reader<'a>, what: &'static str) -> Result<Self, TsaError> {
        let seq = reader.expect(tag::SEQUENCE, what)?;
        let mut inner = seq.reader(what);
        let oid = oid(&inner.expect(tag::OID, what)?, what)?;
        let params = if inner.is_empty() {
            None
        } else {
            Some(inner.any(what)?)
        };
        inner.finish()?;
        Ok(Self { oid, params })
    }

    /// True if the parameters are absent or NULL (what hash and RSA algorithms carry).
    pub(crate) fn params_absent_or_null(&self) -> bool {
        match self.params {
            None => true,
            Some(p) => p.tag == tag::NULL && p.value.is_empty(),
        }
    }
}

/// Encodes one element with a definite, shortest-form length.
pub(crate) fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    if len < 0x80 {
        // Fits in the short form: one octet, high bit clear.
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        let octets = be.get(skip..).unwrap_or_default();
        // At most size_of::<usize>() (8) octets, so the count fits the 7-bit field.
        out.push(0x80 | octets.len() as u8);
        out.extend_from_slice(octets);
    }
    out.extend_from_slice(contents);
    out
}

/// The contents of a minimal, non-negative DER INTEGER holding `value`.
pub(crate) fn uint_contents(value: u64) -> Vec<u8> {
    let be = value.to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count().min(be.len() - 1);
    let mut out = Vec::with_capacity(9);
    let magnitude = be.get(skip..).unwrap_or_default();
    // A set high bit would read as negative: DER needs a leading zero octet then.
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn problem(input: &[u8]) -> String {
        match parse_one(input, "x") {
            Err(TsaError::Malformed(m)) => m,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn short_and_long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let contents = vec![7u8; len];
            let der = encode(tag::OCTET_STRING, &contents);
            let tlv = parse_one(&der, "x").unwrap();
            assert_eq!(tlv.tag, tag::OCTET_STRING);
            assert_eq!(tlv.value, &contents[..]);
            assert_eq!(tlv.raw, &der[..]);
        }
    }

    #[test]
    fn refuses_indefinite_and_non_minimal_lengths() {
        assert!(problem(&[0x30, 0x80, 0x00, 0x00]).contains("indefinite"));
        assert!(problem(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).contains("shortest"));
        assert!(problem(&[0x04, 0x82, 0x00, 0x80]).contains("shortest"));
        assert!(problem(&[0x04, 0x85, 1, 0, 0, 0, 0]).contains("longer than 4"));
    }

    #[test]
    fn refuses_truncation_at_every_point() {
        let der = encode(tag::SEQUENCE, &encode(tag::OCTET_STRING, &[9u8; 200]));
        for cut in 0..der.len() {
            assert!(parse_one(&der[..cut], "x").is_err(), "cut at {cut}");
        }
        // A length that claims far more than there is must not allocate or read past the end.
        assert!(problem(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0]).contains("past the end"));
    }

    #[test]
    fn refuses_high_tag_numbers_and_trailing_bytes() {
        assert!(problem(&[0x1f, 0x81, 0x00, 0x00]).contains("high-tag"));
        assert!(problem(&[0x05, 0x00, 0x00]).contains("trailing"));
        assert!(problem(&[]).contains("missing"));
    }

    #[test]
    fn integers_must_be_minimal() {
        let tlv = |v: &'static [u8]| Tlv {
            tag: tag::INTEGER,
            raw: v,
            value: v,
        };
        assert!(integer(&tlv(&[]), "i").is_err());
        assert!(integer(&tlv(&[0x00, 0x01]), "i").is_err());
        assert!(integer(&tlv(&[0xff, 0x80]), "i").is_err());
        assert!(integer(&tlv(&[0x00, 0x80]), "i").is_ok());
        assert_eq!(small_uint(&tlv(&[0x00, 0xff]), "i").unwrap(), 255);
        assert!(small_uint(&tlv(&[0x80]), "i").is_err());
        assert!(small_uint(&tlv(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), "i").is_err());
        assert_eq!(
            small_uint(
                &tlv(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                "i"
            )
            .unwrap(),
            u64::MAX
        );
    }

    #[test]
    fn uint_contents_are_minimal_and_positive() {
        assert_eq!(uint_contents(0), vec![0]);
        assert_eq!(uint_contents(0x7f), vec![0x7f]);
        assert_eq!(uint_contents(0x80), vec![0, 0x80]);
        assert_eq!(uint_contents(0x0100), vec![1, 0]);
        assert_eq!(uint_contents(u64::MAX), [&[0u8][..], &[0xff; 8]].concat());
        for v in [0, 1, 0x7f, 0x80, 0xffff, 1 << 63, u64::MAX] {
            let der = encode(tag::INTEGER, &uint_contents(v));
            assert_eq!(small_uint(&parse_one(&der, "i").unwrap(), "i").unwrap(), v);
        }
    }

    #[test]
    fn booleans_and_bit_strings_are_strict() {
        let t = |tag, v: &'static [u8]| Tlv {
            tag,
            raw: v,
            value: v,
        };
        assert!(boolean(&t(tag::BOOLEAN, &[0xff]), "b").unwrap());
        assert!(boolean(&t(tag::BOOLEAN, &[0x01]), "b").is_err());
        assert!(boolean(&t(tag::BOOLEAN, &[]), "b").is_err());
        assert_eq!(
            bit_string_octets(&t(tag::BIT_STRING, &[0, 1, 2]), "s").unwrap(),
            &[1, 2]
        );
        assert!(bit_string_octets(&t(tag::BIT_STRING, &[3, 1]), "s").is_err());
        assert!(bit_string_octets(&t(tag::BIT_STRING, &[]), "s").is_err());
    }
}
