//! DESIGN §3 encodings: the did:key vectors, and every malformed form refused with an error
//! that names it.

use vm_receipts::{
    Blake3Hash, EncodingError, Kind, MeshId, MeshKey, PublicKey, ScrollName, Signature, Timestamp,
};

#[test]
fn did_key_spec_vectors() {
    let key = MeshKey::from_seed(&[0u8; 32]);
    let public = key.public_key();
    assert_eq!(
        hex::encode(public.to_bytes()),
        "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
    );
    assert_eq!(
        public.did_key(),
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    );
    assert_eq!(
        public.to_string(),
        "ed25519:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    );

    let mut seed = [0u8; 32];
    seed[31] = 1;
    let public = MeshKey::from_seed(&seed).public_key();
    assert_eq!(
        public.did_key(),
        "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
    );

    let parsed: PublicKey = "ed25519:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
        .parse()
        .expect("parses");
    assert_eq!(parsed, public);
}

#[test]
fn peer_id_is_the_libp2p_form_of_the_key() {
    // An Ed25519 PeerId is an identity multihash, so it always starts 12D3KooW.
    let public = MeshKey::from_seed(&[7; 32]).public_key();
    let peer_id = public.peer_id();
    assert!(peer_id.starts_with("12D3KooW"), "{peer_id}");
    let bytes = bs58_decode(&peer_id);
    assert_eq!(&bytes[..6], &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    assert_eq!(&bytes[6..], &public.to_bytes());
}

fn bs58_decode(text: &str) -> Vec<u8> {
    // Tiny base58 decoder so the test does not share code with the crate under test.
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut bytes: Vec<u8> = Vec::new();
    for c in text.bytes() {
        let mut carry = ALPHABET.iter().position(|a| *a == c).expect("base58 digit") as u32;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|c| *c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(bytes);
    out
}

fn refused<T: std::str::FromStr<Err = EncodingError> + std::fmt::Debug>(
    text: &str,
    must_mention: &str,
) {
    match text.parse::<T>() {
        Ok(v) => panic!("{text:?} was accepted as {v:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(must_mention),
                "error for {text:?} does not mention {must_mention:?}: {msg}"
            );
        }
    }
}

#[test]
fn malformed_public_keys_are_refused_by_name() {
    refused::<PublicKey>(
        "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "must start with ed25519:",
    );
    refused::<PublicKey>(
        "ed25519:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "base58btc ('z')",
    );
    refused::<PublicKey>("ed25519:z6Mk...", "not base58btc");
    refused::<PublicKey>("ed25519:z6MkDublin...", "not base58btc");
    let mut short = vec![0xed, 0x01];
    short.extend([9u8; 31]);
    refused::<PublicKey>(
        &format!("ed25519:z{}", bs58_encode(&short)),
        "expected 34 bytes",
    );
    // secp256k1 multicodec (0xe7 0x01) with 33 bytes of key.
    refused::<PublicKey>(
        "ed25519:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
        "",
    );
    // The right length and prefix but not a curve point: y = 2 is not on the curve.
    let mut bytes = vec![0xed, 0x01, 2];
    bytes.extend([0u8; 31]);
    let text = format!("ed25519:z{}", bs58_encode(&bytes));
    refused::<PublicKey>(&text, "not a valid Ed25519 point");
    // Another multicodec with 34 bytes.
    let mut other = vec![0xec, 0x01];
    other.extend([9u8; 32]);
    refused::<PublicKey>(
        &format!("ed25519:z{}", bs58_encode(&other)),
        "is not Ed25519",
    );
}

fn bs58_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out: String = bytes.iter().take_while(|b| **b == 0).map(|_| '1').collect();
    out.extend(
        digits
            .iter()
            .rev()
            .map(|d| ALPHABET[usize::from(*d)] as char),
    );
    out
}

#[test]
fn malformed_signatures_are_refused_by_name() {
    refused::<Signature>("z58D...", "not base58btc");
    refused::<Signature>("z47C", "expected 64 bytes");
    refused::<Signature>("58D", "starting with 'z'");
    refused::<Signature>("", "starting with 'z'");
    let good = MeshKey::from_seed(&[1; 32])
        .sign(Kind::Root, b"x")
        .to_string();
    assert_eq!(
        good.parse::<Signature>().expect("round trip").to_string(),
        good
    );
}

#[test]
fn malformed_hashes_are_refused_by_name() {
    refused::<Blake3Hash>("blake3:abc123...", "expected 64 hex digits");
    refused::<Blake3Hash>(
        "sha256:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "must start with blake3:",
    );
    refused::<Blake3Hash>(
        "blake3:AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262",
        "lowercase hex",
    );
    refused::<Blake3Hash>(
        "blake3:zf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "lowercase hex",
    );
    let empty = Blake3Hash::digest(b"");
    assert_eq!(
        empty.to_string(),
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert_eq!(
        empty.to_string().parse::<Blake3Hash>().expect("round trip"),
        empty
    );
}

#[test]
fn timestamps_have_one_form() {
    let t: Timestamp = "2025-12-06T10:00:00Z".parse().expect("valid");
    assert_eq!(t.unix(), 1_765_015_200);
    assert_eq!(t.to_string(), "2025-12-06T10:00:00Z");
    assert_eq!(
        Timestamp::from_unix(0).expect("epoch").to_string(),
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        "2024-02-29T23:59:59Z"
            .parse::<Timestamp>()
            .expect("leap day")
            .to_string(),
        "2024-02-29T23:59:59Z"
    );
    for bad in [
        "2025-12-06T10:00:00.5Z",
        "2025-12-06T10:00:00+00:00",
        "2025-12-06t10:00:00z",
        "2025-12-06 10:00:00Z",
        "2025-12-06T10:00Z",
        "",
    ] {
        refused::<Timestamp>(bad, "YYYY-MM-DDTHH:MM:SSZ");
    }
    refused::<Timestamp>("2025-02-29T10:00:00Z", "no such day");
    refused::<Timestamp>("2025-13-06T10:00:00Z", "month");
    refused::<Timestamp>("2025-12-06T24:00:00Z", "hour");
    refused::<Timestamp>("2025-12-06T23:59:60Z", "second");
    refused::<Timestamp>("2025-1a-06T10:00:00Z", "digits");
}

#[test]
fn mesh_ids_and_names() {
    let id: MeshId = "did:vm:mesh:vaultmesh-berlin".parse().expect("valid");
    assert_eq!(id.name(), "vaultmesh-berlin");
    assert_eq!(
        MeshId::parse_flexible("vaultmesh-berlin").expect("bare name"),
        id
    );
    assert_eq!(
        MeshId::parse_flexible("did:vm:mesh:vaultmesh-berlin").expect("full"),
        id
    );
    refused::<MeshId>("did:vm:vaultmesh-berlin", "did:vm:mesh:");
    refused::<MeshId>("did:vm:mesh:", "empty");
    refused::<MeshId>("did:vm:mesh:Berlin", "a-z");
    refused::<MeshId>("did:vm:mesh:-berlin", "start and end");
    refused::<MeshId>("did:vm:mesh:berlin.", "start and end");
    refused::<MeshId>(&format!("did:vm:mesh:{}", "a".repeat(64)), "longer than 63");
    assert!(MeshId::from_name(&"a".repeat(63)).is_ok());

    assert_eq!(
        "Compliance"
            .parse::<ScrollName>()
            .expect("valid")
            .file_stem(),
        "compliance"
    );
    // One scroll whatever the case (its files are lower-case); the written form is kept.
    let upper: ScrollName = "Compliance".parse().expect("valid");
    let lower: ScrollName = "compliance".parse().expect("valid");
    assert_eq!(upper, lower);
    assert_eq!(
        std::collections::BTreeSet::from([upper.clone(), lower]).len(),
        1
    );
    assert_eq!(upper.to_string(), "Compliance");
    refused::<ScrollName>("", "empty");
    refused::<ScrollName>("1abc", "start with a letter");
    refused::<ScrollName>("a/b", "letters, digits");
    refused::<ScrollName>("../etc", "start with a letter");
}

#[test]
fn signatures_are_domain_separated_by_kind() {
    let key = MeshKey::from_seed(&[3; 32]);
    let public = key.public_key();
    let sig = key.sign(Kind::Root, b"message");
    assert!(public.verify(Kind::Root, b"message", &sig).is_ok());
    let err = public
        .verify(Kind::Witness, b"message", &sig)
        .expect_err("other kind");
    assert!(
        err.to_string()
            .contains("witness signature does not verify"),
        "{err}"
    );
    assert!(public.verify(Kind::Root, b"messagf", &sig).is_err());
    let other = MeshKey::from_seed(&[4; 32]).public_key();
    assert!(other.verify(Kind::Root, b"message", &sig).is_err());
    assert_eq!(
        Kind::Root.signing_input(b"m"),
        b"vaultmesh-federation/v1/root\nm".to_vec()
    );
}

#[test]
fn secret_key_text_round_trips_and_refuses_garbage() {
    let key = MeshKey::from_seed(&[5; 32]);
    let text = key.seed_text();
    let back = MeshKey::from_seed_text(&text).expect("round trip");
    assert_eq!(back.public_key(), key.public_key());
    assert!(
        MeshKey::from_seed_text("zshort")
            .expect_err("short")
            .to_string()
            .contains("32-byte seed")
    );
    assert!(
        MeshKey::from_seed_text("nope")
            .expect_err("no z")
            .to_string()
            .contains("'z'")
    );
    assert!(
        !format!("{key:?}").contains(text.as_str()),
        "Debug must not print the secret"
    );
}
