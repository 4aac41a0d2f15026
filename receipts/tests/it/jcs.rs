//! RFC 8785: the published test vectors (cyberphone/json-canonicalization `testdata`, the
//! RFC's §3.2.3 example and Appendix B number table), and the strict-parser rules.

use serde_json::{Number, Value};
use vm_receipts::jcs::{self, JcsError, Numbers};

fn canonical(input: &str) -> String {
    let value = jcs::parse(input.as_bytes(), Numbers::Any).expect("parses");
    String::from_utf8(jcs::to_vec(&value).expect("canonicalises")).expect("utf-8")
}

#[test]
fn rfc8785_arrays() {
    let input = "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]";
    assert_eq!(canonical(input), r#"[56,{"1":[],"10":null,"d":true}]"#);
}

#[test]
fn rfc8785_french() {
    let input = "{\n  \"peach\": \"This sorting order\",\n  \"péché\": \"is wrong according to French\",\n  \"pêche\": \"but canonicalization MUST\",\n  \"sin\":   \"ingnore locale\"\n}\n";
    assert_eq!(
        canonical(input),
        r#"{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ingnore locale"}"#
    );
}

#[test]
fn rfc8785_structures() {
    let input = "{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  \"\": \"empty\",\n  \"a\": { },\n  \"111\": [ { } ],\n  \"A\": { }\n}";
    assert_eq!(
        canonical(input),
        r#"{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}"#
    );
}

#[test]
fn rfc8785_unicode_is_not_normalised() {
    let input = "{\n  \"Unnormalized Unicode\":\"\\u1e0d\\u0307\"\n}\n";
    assert_eq!(
        canonical(input),
        "{\"Unnormalized Unicode\":\"\u{1e0d}\u{0307}\"}"
    );
}

#[test]
fn rfc8785_values() {
    let input = "{\n  \"numbers\": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],\n  \"escaping\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}";
    assert_eq!(
        canonical(input),
        "{\"escaping\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\",\"literals\":[null,true,false],\"numbers\":[1e+30,4.5,333333333.3333333,0.002,1e-27]}"
    );
}

#[test]
fn rfc8785_weird_sorts_by_utf16_code_units() {
    let input = "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": \"Browser Challenge\"\n}\n";
    assert_eq!(
        canonical(input),
        "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u{80}\":\"Control\u{7f}\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f602}\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
}

#[test]
fn rfc8785_appendix_b_numbers() {
    let table: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, want) in table {
        let value = Value::Number(Number::from_f64(f64::from_bits(*bits)).expect("finite"));
        let got = String::from_utf8(jcs::to_vec(&value).expect("canonical")).expect("utf-8");
        assert_eq!(&got, want, "IEEE 754 {bits:016x}");
    }
}

fn parse_error(input: &str, numbers: Numbers) -> String {
    match jcs::parse(input.as_bytes(), numbers) {
        Ok(v) => panic!("{input} was accepted as {v}"),
        Err(JcsError::Parse(msg)) => msg,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn duplicate_keys_are_refused_and_named() {
    let msg = parse_error(r#"{"proposal_id":"a","proposal_id":"b"}"#, Numbers::Any);
    assert!(msg.contains("duplicate key \"proposal_id\""), "{msg}");
    let nested = parse_error(r#"{"a":{"x":1,"y":2,"x":3}}"#, Numbers::Any);
    assert!(nested.contains("duplicate key \"x\""), "{nested}");
    // serde_json alone keeps the last value silently; this is what we guard against.
    let lenient: Value = serde_json::from_str(r#"{"k":1,"k":2}"#).expect("serde_json accepts");
    assert_eq!(lenient["k"], 2);
}

#[test]
fn integers_beyond_2_pow_53_are_refused() {
    assert!(jcs::parse(b"9007199254740991", Numbers::IntegersOnly).is_ok());
    assert!(jcs::parse(b"-9007199254740991", Numbers::IntegersOnly).is_ok());
    // Signed documents: every integer beyond ±(2^53-1) is refused.
    for big in [
        "9007199254740992",
        "-9007199254740992",
        "8854454787076154000",
    ] {
        let msg = parse_error(big, Numbers::IntegersOnly);
        assert!(msg.contains("outside ±(2^53-1)"), "{big}: {msg}");
    }
    // Elsewhere numbers are doubles: a literal that is exactly a double in its RFC 8785 form
    // is that double (so canonical output re-parses); one that would be rounded is refused.
    for exact in [
        "9007199254740992",
        "-9007199254740992",
        "8854454787076154000",
    ] {
        let v = jcs::parse(exact.as_bytes(), Numbers::Any).expect(exact);
        let out = String::from_utf8(jcs::to_vec(&v).expect("canonical")).expect("utf-8");
        assert_eq!(out, exact);
    }
    // Literals beyond 64 bits reach serde's visitor already rounded; they are checked on the
    // text (found in review: 18446744073709551617 used to be stored as 18446744073709552000).
    for inexact in [
        "18446744073709551617",
        "-18446744073709551617",
        "18446744073709551616",
        "123456789012345678901234567890",
    ] {
        let msg = parse_error(&format!("{{\"n\":{inexact}}}"), Numbers::Any);
        assert!(msg.contains("not exactly a double"), "{inexact}: {msg}");
    }
    assert!(
        jcs::parse(
            b"{\"n\":18446744073709552000,\"s\":\"99999999999999999999999\"}",
            Numbers::Any
        )
        .is_ok()
    );
    for inexact in [
        "9007199254740993",
        "-9007199254740993",
        "18446744073709551615",
        "8854454787076154001",
    ] {
        let msg = parse_error(inexact, Numbers::Any);
        assert!(msg.contains("not exactly a double"), "{inexact}: {msg}");
    }
    let msg = parse_error(
        r#"{"size":123456789012345678901234567890}"#,
        Numbers::IntegersOnly,
    );
    assert!(msg.contains("not an integer within"), "{msg}");
    let built = serde_json::json!({"n": 9_007_199_254_740_993_u64});
    assert!(matches!(
        jcs::to_vec(&built),
        Err(JcsError::IntegerOutOfRange(_))
    ));
}

#[test]
fn floats_are_refused_where_only_integers_belong() {
    let msg = parse_error(r#"{"retention_period_days":365.0}"#, Numbers::IntegersOnly);
    assert!(
        msg.contains("signed documents carry no floating-point numbers"),
        "{msg}"
    );
    assert!(jcs::parse(b"365.5", Numbers::Any).is_ok());
    let float = serde_json::json!({"x": 1.5});
    assert!(matches!(
        jcs::to_vec_integers_only(&float),
        Err(JcsError::FloatNotAllowed(_))
    ));
}

#[test]
fn malformed_json_is_refused_with_position() {
    for bad in [
        "{",
        r#"{"a":1,}"#,
        r#"{"merkle_path": [...]}"#,
        "{} {}",
        "\"\\ud800\"",
    ] {
        let msg = parse_error(bad, Numbers::Any);
        assert!(
            msg.contains("line") || msg.contains("column") || msg.contains("surrogate"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn strings_escape_only_what_rfc8785_requires() {
    let v = Value::String("\u{0}\u{1f}\u{7f}\u{2028}\t\"\\/".into());
    let out = String::from_utf8(jcs::to_vec(&v).expect("canonical")).expect("utf-8");
    assert_eq!(out, "\"\\u0000\\u001f\u{7f}\u{2028}\\t\\\"\\\\/\"");
}

#[test]
fn slot_insertion_equals_full_canonicalisation() {
    let cases = [
        r#"{}"#,
        r#"{"a":1}"#,
        r#"{"z":1}"#,
        r#"{"a":1,"z":[1,{"root_hash":"n"}]}"#,
        r#"{"root":"x","root_hasi":1,"root_hasj":2,"type":"t"}"#,
    ];
    for case in cases {
        let Value::Object(map) = jcs::parse(case.as_bytes(), Numbers::Any).expect("parses") else {
            panic!("object");
        };
        let (canon, slot) = jcs::to_vec_with_slot(&map, "root_hash").expect("canonical");
        let member = br#""root_hash":"H""#;
        let inserted = slot.insert(&canon, member);
        assert!(
            inserted[slot.member_start(canon.len())..].starts_with(member),
            "{case}"
        );
        let mut with = map.clone();
        with.insert("root_hash".into(), Value::String("H".into()));
        assert_eq!(
            String::from_utf8(inserted).expect("utf-8"),
            String::from_utf8(jcs::to_vec(&Value::Object(with)).expect("canonical"))
                .expect("utf-8"),
            "{case}"
        );
    }
}

/// Found by `canonical_form_is_a_fixed_point`: a double ≥ 2^53 prints as an integer literal
/// (`8854454787076154000`), which the strict parser used to refuse, so a receipt holding it
/// could be appended but not verified.
#[test]
fn regression_large_double_prints_as_integer_and_reparses() {
    let value = serde_json::json!({"x": 8.854454787076154e18, "y": -5.510837439226473e16});
    let once = jcs::to_vec(&value).expect("canonical");
    assert_eq!(once, br#"{"x":8854454787076154000,"y":-55108374392264730}"#);
    let back = jcs::parse(&once, Numbers::Any).expect("re-parses");
    assert_eq!(jcs::to_vec(&back).expect("canonical"), once);
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Number, Value};
    use vm_receipts::jcs::{self, MAX_SAFE_INTEGER, Numbers};

    fn json_value() -> impl Strategy<Value = Value> {
        let max = MAX_SAFE_INTEGER as i64;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-max..=max).prop_map(|i| Value::Number(i.into())),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "\\PC{0,12}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        // A fixed seed: CI runs the same cases every time (the tests stay deterministic).
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x7ac5_0001),
            ..ProptestConfig::default()
        })]

        /// Canonical output parses strictly and canonicalises to itself, byte for byte.
        #[test]
        fn canonical_form_is_a_fixed_point(value in json_value()) {
            let once = jcs::to_vec(&value).expect("canonicalises");
            let parsed = jcs::parse(&once, Numbers::Any).expect("canonical output parses strictly");
            let twice = jcs::to_vec(&parsed).expect("canonicalises again");
            prop_assert_eq!(&once, &twice);
            // And it is plain JSON to any other reader.
            prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&once).is_ok());
        }

        /// The strict parser never panics, whatever the bytes.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = jcs::parse(&bytes, Numbers::Any);
            let _ = jcs::parse(&bytes, Numbers::IntegersOnly);
            let _ = vm_receipts::documents::parse::<vm_receipts::documents::TrustProposal>(&bytes);
            let _ = vm_receipts::receipts::parse_receipt(&bytes);
        }

        /// One changed byte in a valid document either gets it refused or yields a document
        /// whose canonical form parses back to the same value (never a half-valid one).
        #[test]
        fn mutated_documents_are_refused_or_valid(pos in 0usize..400, byte in any::<u8>()) {
            let good = br#"{"agreement_id":"fed-agreement-1","effective_at":"2026-01-05T12:00:00Z","notice_days":30,"reason":"contract ended","revoked_by":"did:vm:mesh:dublin","signature":{"algorithm":"Ed25519","value":"z2nYqjDULj6kmdYUFbFQUUcvzsVCHCRRnjXqLpADsPRwETPFt2m5SjVw77gN6JZK1atnu4iLYyMqGjM9pD2urFvgS"}}"#;
            prop_assert!(vm_receipts::documents::parse::<vm_receipts::documents::RevocationNotice>(good).is_ok());
            let mut bytes = good.to_vec();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(notice) = vm_receipts::documents::parse::<vm_receipts::documents::RevocationNotice>(&bytes) {
                use vm_receipts::documents::Document;
                let again = vm_receipts::documents::parse::<vm_receipts::documents::RevocationNotice>(
                    &notice.to_canonical().expect("canonical"),
                ).expect("its canonical form parses");
                prop_assert_eq!(again, notice);
            }
        }
    }
}
