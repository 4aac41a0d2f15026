//! The byte-level form of one scroll line, shared by open, append and verify.
//!
//! A line is the RFC 8785 form of a receipt *with* its `root_hash`, then `\n`. Because JCS
//! writes members in a fixed order with nothing between them, the leaf (the JCS of the receipt
//! *without* `root_hash`) is the line with that one member and one comma cut out. Opening a
//! scroll uses this to hash a million lines without building a JSON tree for each; `verify`
//! re-derives everything through the full parser as well.

use crate::hash::Blake3Hash;

/// `"root_hash":"blake3:` + 64 hex + `"`.
const ROOT_MEMBER_PREFIX: &[u8] = b"\"root_hash\":\"";
const ROOT_VALUE_LEN: usize = 7 + 64; // blake3: + hex
pub(crate) const ROOT_MEMBER_LEN: usize = ROOT_MEMBER_PREFIX.len() + ROOT_VALUE_LEN + 1;

/// Where the top-level `root_hash` member of a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RootMember {
    /// Bytes to cut (the member and one adjacent comma).
    pub cut_start: usize,
    /// End of the cut (exclusive).
    pub cut_end: usize,
    /// The hash it holds.
    pub root_hash: Blake3Hash,
    /// Where the member (`"root_hash"`) starts in the line.
    pub start: usize,
}

impl RootMember {
    /// Feeds the leaf bytes (the line without the member) to `hasher` without copying.
    pub(crate) fn hash_leaf_into(&self, line: &[u8], hasher: &mut blake3::Hasher) {
        hasher.update(&line[..self.cut_start]);
        hasher.update(&line[self.cut_end..]);
    }
}

/// Finds the top-level `root_hash` member of a (claimed canonical) JSON object line, by
/// tracking string and nesting state so a nested `root_hash` or a string holding that text is
/// never mistaken for it. String contents, most of a line, are skipped with `memchr2`.
pub(crate) fn find_root_member(line: &[u8]) -> Result<RootMember, String> {
    if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
        return Err("the line is not a JSON object".into());
    }
    let mut depth = 0usize;
    let mut member_start_expected = false;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => {
                if depth == 1 && member_start_expected && line[i..].starts_with(ROOT_MEMBER_PREFIX)
                {
                    return root_member_at(line, i);
                }
                member_start_expected = false;
                i = string_end(line, i + 1)?;
                continue;
            }
            b'{' => {
                depth += 1;
                member_start_expected = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => member_start_expected = depth == 1,
            _ => member_start_expected = false,
        }
        i += 1;
    }
    Err("the line has no top-level root_hash".into())
}

/// The index just past the closing quote of the string whose contents start at `from`.
fn string_end(line: &[u8], mut from: usize) -> Result<usize, String> {
    loop {
        match memchr::memchr2(b'"', b'\\', &line[from..]) {
            Some(k) if line[from + k] == b'"' => return Ok(from + k + 1),
            // An escape: skip the backslash and the character it escapes.
            Some(k) => from += k + 2,
            None => return Err("a string is not closed".into()),
        }
        if from > line.len() {
            return Err("a string is not closed".into());
        }
    }
}

fn root_member_at(line: &[u8], start: usize) -> Result<RootMember, String> {
    let end = start + ROOT_MEMBER_LEN;
    if end > line.len() || line[end - 1] != b'"' {
        return Err("root_hash is not a blake3 hash".into());
    }
    let value = &line[start + ROOT_MEMBER_PREFIX.len()..end - 1];
    let root_hash = value
        .strip_prefix(b"blake3:")
        .and_then(Blake3Hash::from_hex)
        .ok_or_else(
            || match String::from_utf8_lossy(value).parse::<Blake3Hash>() {
                Err(e) => format!("root_hash: {e}"),
                Ok(_) => "root_hash is not a blake3 hash".to_string(),
            },
        )?;
    // Cut the comma after the member, or, if it is the last member, the one before it.
    let (cut_start, cut_end) = match line[end] {
        b',' => (start, end + 1),
        b'}' if line[start - 1] == b',' => (start - 1, end),
        b'}' => (start, end),
        _ => return Err("root_hash is followed by something other than ',' or '}'".into()),
    };
    Ok(RootMember {
        cut_start,
        cut_end,
        root_hash,
        start,
    })
}

/// The canonical `"root_hash":"blake3:…"` member.
pub(crate) fn root_member_bytes(root: &Blake3Hash) -> Vec<u8> {
    let mut member = Vec::with_capacity(ROOT_MEMBER_LEN);
    member.extend_from_slice(ROOT_MEMBER_PREFIX);
    member.extend_from_slice(root.to_string().as_bytes());
    member.push(b'"');
    member
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    fn leaf_of(line: &str) -> String {
        let m = find_root_member(line.as_bytes()).expect("member");
        format!("{}{}", &line[..m.cut_start], &line[m.cut_end..])
    }

    #[test]
    fn cuts_the_member_wherever_it_is() {
        assert_eq!(
            leaf_of(&format!(r#"{{"a":1,"root_hash":"{H}","z":2}}"#)),
            r#"{"a":1,"z":2}"#
        );
        assert_eq!(
            leaf_of(&format!(r#"{{"root_hash":"{H}","z":2}}"#)),
            r#"{"z":2}"#
        );
        assert_eq!(
            leaf_of(&format!(r#"{{"a":1,"root_hash":"{H}"}}"#)),
            r#"{"a":1}"#
        );
        assert_eq!(leaf_of(&format!(r#"{{"root_hash":"{H}"}}"#)), r#"{}"#);
    }

    #[test]
    fn ignores_nested_and_quoted_lookalikes() {
        let line = format!(
            r#"{{"a":{{"root_hash":"{H}"}},"b":"\",\"root_hash\":\"x","root_hash":"{H}"}}"#
        );
        assert_eq!(
            leaf_of(&line),
            format!(r#"{{"a":{{"root_hash":"{H}"}},"b":"\",\"root_hash\":\"x"}}"#)
        );
        let nested_only = format!(r#"{{"a":{{"root_hash":"{H}"}}}}"#);
        assert!(find_root_member(nested_only.as_bytes()).is_err());
        assert!(find_root_member(br#"{"a":"unterminated}"#).is_err());
        assert!(find_root_member(br#"{"a":"ends in escape\"}"#).is_err());
    }

    #[test]
    fn refuses_a_malformed_hash() {
        let err = find_root_member(br#"{"root_hash":"blake3:abc123..."}"#).expect_err("refused");
        assert!(err.contains("root_hash"), "{err}");
    }
}
