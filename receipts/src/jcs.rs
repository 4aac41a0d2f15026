//! RFC 8785 JSON Canonicalization Scheme, and the strict parser every document goes through.
//!
//! **Parsing.** `serde_json` keeps the last of duplicate keys and silently turns integers it
//! cannot hold into floats; either would let two parties read one signed document two ways.
//! [`parse`] therefore builds the value itself and refuses duplicate keys and integers beyond
//! ±(2^53−1) (the range every JCS implementation represents exactly), naming the key or the
//! number. In [`Numbers::IntegersOnly`] mode (signed documents) it refuses fractions and
//! exponents as well.
//!
//! **Output.** [`to_vec`] writes RFC 8785: no whitespace, object members sorted by the UTF-16
//! code units of their names, strings with only the mandatory escapes, numbers as ECMAScript
//! prints them (via `ryu-js`).

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The largest integer every JSON implementation holds exactly (2^53 − 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Which numbers a parse accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Integers within ±(2^53−1) only: signed documents carry no floating-point numbers.
    IntegersOnly,
    /// Also fractions and exponents (receipts written by other engines may hold them).
    Any,
}

/// Why a JSON text was refused or could not be canonicalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JcsError {
    /// Not JSON, or refused by the strict rules (the message names the key or number and
    /// where it was found).
    #[error("invalid JSON: {0}")]
    Parse(String),
    /// A value built in memory holds an integer outside ±(2^53−1).
    #[error("integer {0} is outside ±(2^53-1) and cannot be canonicalised exactly")]
    IntegerOutOfRange(String),
    /// A float where only integers are allowed, or a non-finite float.
    #[error("number {0} is not allowed here (only integers within ±(2^53-1))")]
    FloatNotAllowed(String),
}

/// Parses `bytes` as one JSON value under the strict rules (see the module doc).
pub fn parse(bytes: &[u8], numbers: Numbers) -> Result<Value, JcsError> {
    if numbers == Numbers::Any {
        check_wide_integer_literals(bytes)?;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { numbers }
        .deserialize(&mut de)
        .map_err(|e| JcsError::Parse(e.to_string()))?;
    de.end().map_err(|e| JcsError::Parse(e.to_string()))?;
    Ok(value)
}

/// serde_json hands integer literals beyond 64 bits to the visitor as already-rounded floats,
/// so the "exactly a double" rule of [`StrictSeed::large_integer`] is applied to them here, on
/// the text: any integer literal of more than 19 digits must be the RFC 8785 form of a double.
fn check_wide_integer_literals(bytes: &[u8]) -> Result<(), JcsError> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string (escapes included); an unclosed one is serde_json's to report.
                i += 1;
                while let Some(k) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    if bytes[i + k] == b'"' {
                        i += k;
                        break;
                    }
                    i += k + 2;
                    if i >= bytes.len() {
                        return Ok(());
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = &bytes[start..i];
                let digits = token.iter().filter(|b| b.is_ascii_digit()).count();
                let integer = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
                if integer && digits > 19 && !exact_double_literal(token) {
                    return Err(JcsError::Parse(format!(
                        "integer {} is outside ±(2^53-1) and is not exactly a double as RFC 8785 writes it",
                        String::from_utf8_lossy(token)
                    )));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// True if `token` (an integer literal) is the RFC 8785 text of the double it denotes, so
/// reading and writing it back gives the same text.
fn exact_double_literal(token: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(token) else {
        return false;
    };
    match text.parse::<f64>() {
        Ok(double) if double.is_finite() => ryu_js::Buffer::new().format_finite(double) == text,
        _ => false,
    }
}

/// The RFC 8785 form of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value, Numbers::Any)?;
    Ok(out)
}

/// The RFC 8785 form of `value`, refusing floating-point numbers (signed documents).
pub fn to_vec_integers_only(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value, Numbers::IntegersOnly)?;
    Ok(out)
}

/// The RFC 8785 form of an object, and where a member named `slot` would go: the byte offset
/// at which `"slot":value` (followed by `,` if [`Slot::before_member`]) is to be inserted so
/// that the result is the RFC 8785 form of the object with that member added. Lets a scroll
/// hash a receipt without `root_hash` and write it with `root_hash` from one serialisation.
pub fn to_vec_with_slot(map: &Map<String, Value>, slot: &str) -> Result<(Vec<u8>, Slot), JcsError> {
    let mut out = Vec::with_capacity(512);
    let mut found = None;
    write_object_inner(&mut out, map, Numbers::Any, Some((slot, &mut found)))?;
    let slot = match found {
        Some(offset) => Slot {
            offset,
            before_member: true,
        },
        // After the last member: just before the closing brace.
        None => Slot {
            offset: out.len() - 1,
            before_member: false,
        },
    };
    Ok((out, slot))
}

/// Where a member goes in a canonical object (see [`to_vec_with_slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Byte offset of the insertion.
    pub offset: usize,
    /// True if a member follows (insert `member,`); false if it goes last (insert `,member`,
    /// or just `member` in an empty object).
    pub before_member: bool,
}

impl Slot {
    /// `canonical` with `member` (`"name":value`, already canonical) inserted.
    pub fn insert(&self, canonical: &[u8], member: &[u8]) -> Vec<u8> {
        let mut line = Vec::with_capacity(canonical.len() + member.len() + 2);
        self.insert_into(&mut line, canonical, member);
        line
    }

    /// Where the inserted member starts in the result, for a canonical object of
    /// `canonical_len` bytes.
    pub fn member_start(&self, canonical_len: usize) -> usize {
        if self.before_member || canonical_len <= 2 {
            self.offset
        } else {
            self.offset + 1
        }
    }

    /// Appends `canonical` with `member` inserted to `line`.
    pub fn insert_into(&self, line: &mut Vec<u8>, canonical: &[u8], member: &[u8]) {
        line.extend_from_slice(&canonical[..self.offset]);
        if self.before_member {
            line.extend_from_slice(member);
            line.push(b',');
        } else {
            if canonical.len() > 2 {
                line.push(b',');
            }
            line.extend_from_slice(member);
        }
        line.extend_from_slice(&canonical[self.offset..]);
    }
}

/// Appends the RFC 8785 form of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value, numbers: Numbers) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n, numbers)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, numbers)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, numbers)?,
    }
    Ok(())
}

fn write_object(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    numbers: Numbers,
) -> Result<(), JcsError> {
    write_object_inner(out, map, numbers, None)
}

fn write_object_inner(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    numbers: Numbers,
    mut slot: Option<(&str, &mut Option<usize>)>,
) -> Result<(), JcsError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // serde_json's map is ordered by UTF-8 bytes (or by insertion with `preserve_order`);
    // RFC 8785 orders by UTF-16 code units. They differ only for names mixing characters
    // above U+FFFF with U+E000..U+FFFF, so sort only when the order is not already right.
    if !members
        .windows(2)
        .all(|w| utf16_cmp(w[0].0, w[1].0).is_lt())
    {
        members.sort_by(|a, b| utf16_cmp(a.0, b.0));
    }
    out.push(b'{');
    for (i, (name, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some((slot_name, found)) = slot.as_mut()
            && found.is_none()
            && utf16_cmp(slot_name, name).is_lt()
        {
            **found = Some(out.len());
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, value, numbers)?;
    }
    out.push(b'}');
    Ok(())
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    // UTF-8 byte order equals UTF-16 code-unit order unless a character at or above U+E000
    // (lead byte 0xEE or more) is compared: only then take the slow path.
    let needs_utf16 = |s: &str| s.bytes().any(|b| b >= 0xEE);
    if needs_utf16(a) || needs_utf16(b) {
        a.encode_utf16().cmp(b.encode_utf16())
    } else {
        a.as_bytes().cmp(b.as_bytes())
    }
}

fn write_number(out: &mut Vec<u8>, n: &Number, numbers: Numbers) -> Result<(), JcsError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(JcsError::IntegerOutOfRange(u.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(JcsError::IntegerOutOfRange(i.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if numbers == Numbers::IntegersOnly || !f.is_finite() {
            return Err(JcsError::FloatNotAllowed(n.to_string()));
        }
        if f == 0.0 {
            // ECMAScript prints -0 as "0".
            out.push(b'0');
        } else {
            let mut buffer = ryu_js::Buffer::new();
            out.extend_from_slice(buffer.format_finite(f).as_bytes());
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2: only `"`, `\` and the C0 controls are escaped, with the short forms
/// where JSON has them and `\u00xx` (lower-case hex) otherwise.
fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\x08' => Some(b"\\b"),
            b'\x0c' => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(seq) => out.extend_from_slice(seq),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Builds a `Value` while enforcing the strict rules; serde_json supplies the tokenizer (and
/// its nesting limit of 128).
#[derive(Clone, Copy)]
struct StrictSeed {
    numbers: Numbers,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl StrictSeed {
    /// An integer literal beyond ±(2^53−1). Signed documents refuse it. Elsewhere numbers are
    /// IEEE doubles (RFC 8785, I-JSON), so it is taken as a double only if it is exactly one,
    /// written as RFC 8785 writes that double (`8854454787076154000`): canonical output then
    /// parses back to itself, and no integer is ever silently rounded.
    fn large_integer<E: de::Error>(self, as_double: f64, literal: &str) -> Result<Value, E> {
        let canonical = ryu_js::Buffer::new().format_finite(as_double).to_owned();
        if self.numbers == Numbers::Any
            && canonical == literal
            && let Some(n) = Number::from_f64(as_double)
        {
            return Ok(Value::Number(n));
        }
        Err(E::custom(format_args!(
            "integer {literal} is outside ±(2^53-1) and is not exactly a double as RFC 8785 writes it"
        )))
    }
}

impl<'de> Visitor<'de> for StrictSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER {
            return self.large_integer(v as f64, &v.to_string());
        }
        Ok(Value::Number(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return self.large_integer(v as f64, &v.to_string());
        }
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json also lands here for integer literals too large for 64 bits.
        if self.numbers == Numbers::IntegersOnly {
            return Err(E::custom(format_args!(
                "number {v} is not an integer within ±(2^53-1); signed documents carry no floating-point numbers"
            )));
        }
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {:?}",
                    crate::error::shown(&key)
                )));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecmascript_number_forms() {
        let cases: &[(f64, &str)] = &[
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.000001, "0.000001"),
            (4.5, "4.5"),
        ];
        for (f, want) in cases {
            let v = Value::Number(Number::from_f64(*f).expect("finite"));
            assert_eq!(
                String::from_utf8(to_vec(&v).expect("canonical")).expect("utf8"),
                *want
            );
        }
    }
}
