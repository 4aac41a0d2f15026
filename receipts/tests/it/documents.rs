//! Documents and receipts: the seed's examples (refused for their placeholders, parsed once
//! they hold real values), signing and verification of every signed kind, agreements, unknown
//! fields kept, and strictness.

use serde_json::{Value, json};
use vm_receipts::documents::{
    AgreementTerms, AnchorNotification, AnchorProof, DiscoveryRecord, DiscrepancyReport, Document,
    DocumentError, FederationAgreement, ProposalResponse, ResponseType, RevocationNotice,
    SchemaSync, SignedDocument, SignedRoot, TrustLevel, TrustProposal, VerificationFrequency,
    WitnessAttestation, WitnessResult, parse,
};
use vm_receipts::receipts::{FederationReceipt, parse_receipt};
use vm_receipts::{Blake3Hash, DocumentId, Kind, MeshKey, Signature};

use crate::support::{at, key, mesh};

fn seed(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/seed/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A syntactically valid signature (it verifies nowhere) to stand in for a placeholder.
fn some_signature() -> String {
    MeshKey::from_seed(&[99; 32])
        .sign(Kind::Root, b"placeholder")
        .to_string()
}

fn some_hash(tag: &str) -> String {
    Blake3Hash::digest(tag.as_bytes()).to_string()
}

/// A receipt written out and read back is the same receipt, and its canonical bytes are stable.
fn round_trips(receipt: &FederationReceipt) {
    let bytes = receipt.to_canonical().expect("canonical");
    let back = parse_receipt(&bytes).expect("reads back");
    assert_eq!(&back, receipt);
    assert_eq!(back.to_canonical().expect("canonical"), bytes);
}

fn refused_at<T: Document + std::fmt::Debug>(json: &str, path: &str, must_mention: &str) {
    match parse::<T>(json.as_bytes()) {
        Ok(doc) => panic!("accepted: {doc:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(path), "error does not name `{path}`: {msg}");
            assert!(
                msg.contains(must_mention),
                "error does not mention {must_mention:?}: {msg}"
            );
        }
    }
}

#[test]
fn seed_discovery_record() {
    let text = seed("discovery_record");
    refused_at::<DiscoveryRecord>(&text, "public_key", "not base58btc");

    let berlin = key(2);
    let public = berlin.public_key();
    let mut value: Value =
        serde_json::from_str(&text.replace("ed25519:z6Mk...", &public.to_string())).expect("json");
    // The seed's example predates DESIGN §5's required additions.
    let err = vm_receipts::documents::from_value::<DiscoveryRecord>(value.clone())
        .expect_err("additions missing");
    assert!(err.to_string().contains("peer_id"), "{err}");
    value["peer_id"] = json!(public.peer_id());
    value["multiaddrs"] = json!(["/ip4/127.0.0.1/tcp/4001"]);
    value["updated_at"] = json!("2025-12-06T09:00:00Z");
    value["signature"] = json!({"algorithm": "Ed25519", "value": some_signature()});
    let mut record: DiscoveryRecord = vm_receipts::documents::from_value(value).expect("parses");
    assert_eq!(record.scrolls_available.len(), 3);
    assert!(
        record.verify_self_signed().is_err(),
        "placeholder signature must not verify"
    );
    record.sign(&berlin).expect("signs");
    record.verify_self_signed().expect("verifies");

    // Round trip through bytes keeps the signature valid.
    let again: DiscoveryRecord = parse(&record.to_canonical().expect("canonical")).expect("parses");
    again.verify_self_signed().expect("still verifies");

    // A record whose peer_id is another key's is refused.
    let mut wrong = serde_json::to_value(&record).expect("value");
    wrong["peer_id"] = json!(key(3).public_key().peer_id());
    let err =
        vm_receipts::documents::from_value::<DiscoveryRecord>(wrong).expect_err("peer id mismatch");
    assert!(err.to_string().contains("peer_id"), "{err}");
}

#[test]
fn seed_trust_proposal() {
    let text = seed("trust_proposal");
    refused_at::<TrustProposal>(&text, "signature", "z58D...");

    let dublin = key(1);
    let fixed = text.replace("z58D...", &some_signature());
    let mut proposal: TrustProposal = parse(fixed.as_bytes()).expect("parses");
    assert_eq!(proposal.proposed_trust_level, TrustLevel::VERIFY);
    assert_eq!(
        proposal.proposed_terms.verification_frequency,
        VerificationFrequency::HOURLY
    );
    assert_eq!(
        proposal
            .proposer_attestations
            .as_ref()
            .map(|a| a.compliance_credentials.len()),
        Some(2)
    );
    assert!(proposal.verify(&dublin.public_key()).is_err());
    proposal.sign(&dublin).expect("signs");
    proposal.verify(&dublin.public_key()).expect("verifies");
    let err = proposal
        .verify(&key(2).public_key())
        .expect_err("other key");
    assert!(matches!(err, DocumentError::Signature { .. }), "{err}");

    // Any change to a signed field breaks the signature.
    let mut tampered = proposal.clone();
    tampered.proposed_terms.retention_period_days += 1;
    assert!(tampered.verify(&dublin.public_key()).is_err());

    // Rules across fields.
    let mut v = serde_json::to_value(&proposal).expect("value");
    v["expires_at"] = json!("2025-12-06T09:00:00Z");
    let err =
        vm_receipts::documents::from_value::<TrustProposal>(v).expect_err("expiry before proposal");
    assert!(err.to_string().contains("expires_at"), "{err}");
    let mut v = serde_json::to_value(&proposal).expect("value");
    v["proposed_trust_level"] = json!(5);
    let err = vm_receipts::documents::from_value::<TrustProposal>(v).expect_err("level 5");
    assert!(err.to_string().contains("proposed_trust_level"), "{err}");
    let mut v = serde_json::to_value(&proposal).expect("value");
    v["proposed_terms"]["scrolls_to_share"] = json!(["Compliance", "compliance"]);
    let err = vm_receipts::documents::from_value::<TrustProposal>(v).expect_err("one scroll twice");
    assert!(err.to_string().contains("appears twice"), "{err}");
    let mut v = serde_json::to_value(&proposal).expect("value");
    v["target"] = v["proposer"].clone();
    assert!(vm_receipts::documents::from_value::<TrustProposal>(v).is_err());
}

#[test]
fn seed_counter_proposal() {
    let text = seed("counter_proposal");
    refused_at::<ProposalResponse>(&text, "signature", "z47C...");

    let berlin = key(2);
    let fixed = text.replace("z47C...", &some_signature());
    let mut counter: ProposalResponse = parse(fixed.as_bytes()).expect("parses");
    assert_eq!(counter.response_type, ResponseType::Counter);
    let terms = counter.counter_terms.as_ref().expect("terms");
    assert_eq!(terms.verification_frequency, VerificationFrequency::DAILY);
    assert_eq!(
        terms.extra.get("additional_requirement"),
        Some(&json!("quarterly_audit_call"))
    );
    counter.sign(&berlin).expect("signs");
    counter.verify(&berlin.public_key()).expect("verifies");
    // The seed's bare-string signature is read; the object form is written.
    let out: Value =
        serde_json::from_slice(&counter.to_canonical().expect("canonical")).expect("json");
    assert_eq!(out["signature"]["algorithm"], "Ed25519");

    // A counter without terms and a reject without a reason are refused.
    let mut v = serde_json::to_value(&counter).expect("value");
    v.as_object_mut().expect("object").remove("counter_terms");
    let err =
        vm_receipts::documents::from_value::<ProposalResponse>(v.clone()).expect_err("no terms");
    assert!(err.to_string().contains("counter_terms"), "{err}");
    v["response_type"] = json!("reject");
    let err = vm_receipts::documents::from_value::<ProposalResponse>(v).expect_err("no reason");
    assert!(err.to_string().contains("reason"), "{err}");
}

#[test]
fn seed_federation_agreement() {
    let text = seed("federation_agreement");
    // Fields are checked in key order, so the first placeholder named is agreement_hash.
    refused_at::<FederationAgreement>(&text, "agreement_hash", "blake3:abc123...");
    let keys_only = text.replace("blake3:abc123...", &some_hash("h"));
    refused_at::<FederationAgreement>(&keys_only, "key_exchange", "z6MkBerlin...");

    let (dublin, berlin) = (key(1), key(2));
    let step = keys_only
        .replace("ed25519:z6MkDublin...", &dublin.public_key().to_string())
        .replace("ed25519:z6MkBerlin...", &berlin.public_key().to_string());
    refused_at::<FederationAgreement>(
        &step,
        "signatures.did:vm:mesh:vaultmesh-berlin.signature",
        "z47C...",
    );
    let step = step
        .replace("z58D...", &some_signature())
        .replace("z47C...", &some_signature());
    let wrong_hash = step.replace(&some_hash("h"), &some_hash("wrong"));
    refused_at::<FederationAgreement>(
        &wrong_hash,
        "agreement_hash",
        "does not match the agreement body",
    );

    // The right hash: computed from the body.
    let mut value: Value = serde_json::from_str(&wrong_hash).expect("json");
    value
        .as_object_mut()
        .expect("object")
        .remove("agreement_hash");
    value.as_object_mut().expect("object").remove("signatures");
    let body = vm_receipts::jcs::to_vec(&value).expect("canonical");
    let fixed = wrong_hash.replace(&some_hash("wrong"), &Blake3Hash::digest(&body).to_string());
    let mut agreement: FederationAgreement = parse(fixed.as_bytes()).expect("parses");
    assert_eq!(
        agreement.terms.dispute_resolution.as_deref(),
        Some("arbitration_zurich")
    );
    let (dublin_id, berlin_id) = (mesh("vaultmesh-dublin"), mesh("vaultmesh-berlin"));
    assert_eq!(agreement.key_of(&dublin_id), Some(&dublin.public_key()));
    assert_eq!(agreement.key_of(&berlin_id), Some(&berlin.public_key()));
    assert!(
        agreement.verify_party(&dublin_id).is_err(),
        "placeholder signatures do not verify"
    );

    agreement
        .sign_as(&dublin_id, &dublin, at("2025-12-06T15:30:00Z"))
        .expect("dublin signs");
    agreement
        .sign_as(&berlin_id, &berlin, at("2025-12-06T16:00:00Z"))
        .expect("berlin signs");
    agreement.verify_complete().expect("both signatures verify");
    assert!(
        agreement
            .sign_as(&dublin_id, &berlin, at("2025-12-06T16:00:00Z"))
            .is_err(),
        "wrong key for party"
    );
}

#[test]
fn agreement_lifecycle_and_tampering() {
    let (dublin, berlin) = (key(1), key(2));
    let (dublin_id, berlin_id) = (mesh("vaultmesh-dublin"), mesh("vaultmesh-berlin"));
    let terms = AgreementTerms {
        scrolls_shared: vec!["Compliance".parse().expect("scroll")],
        verification_frequency: VerificationFrequency::HOURLY,
        retention_period_days: 365,
        data_jurisdiction: Some("EU".into()),
        audit_rights: Some(true),
        dispute_resolution: None,
        extra: Default::default(),
    };
    let mut agreement = FederationAgreement::draft(
        "fed-agreement-1".parse().expect("id"),
        [
            (dublin_id.clone(), dublin.public_key()),
            (berlin_id.clone(), berlin.public_key()),
        ],
        at("2025-12-06T16:00:00Z"),
        TrustLevel::VERIFY,
        terms,
    )
    .expect("drafts");
    assert!(agreement.verify_complete().is_err(), "unsigned");
    agreement
        .sign_as(&berlin_id, &berlin, at("2025-12-06T16:00:00Z"))
        .expect("signs");
    assert!(agreement.verify_party(&berlin_id).is_ok());
    let err = agreement
        .verify_complete()
        .expect_err("one signature is not an agreement");
    assert!(err.to_string().contains("has not signed"), "{err}");
    agreement
        .sign_as(&dublin_id, &dublin, at("2025-12-06T16:01:00Z"))
        .expect("signs");
    agreement.verify_complete().expect("complete");

    let bytes = agreement.to_canonical().expect("canonical");
    let back: FederationAgreement = parse(&bytes).expect("parses");
    back.verify_complete().expect("verifies after a round trip");

    // Changing the body without the hash is caught at parse; with the hash, by the signatures.
    let mut v: Value = serde_json::from_slice(&bytes).expect("json");
    v["trust_level"] = json!(3);
    let err =
        vm_receipts::documents::from_value::<FederationAgreement>(v.clone()).expect_err("hash");
    assert!(err.to_string().contains("agreement_hash"), "{err}");
    let mut rehashed: FederationAgreement = serde_json::from_value(v).expect("typed");
    rehashed.agreement_hash = rehashed.compute_hash().expect("hash");
    assert!(
        rehashed.verify_complete().is_err(),
        "old signatures do not cover the new body"
    );

    // A signature for someone not a party is refused.
    let mut v: Value = serde_json::from_slice(&bytes).expect("json");
    let sig = v["signatures"]["did:vm:mesh:vaultmesh-dublin"].clone();
    v["signatures"]["did:vm:mesh:mallory"] = sig;
    let err = vm_receipts::documents::from_value::<FederationAgreement>(v).expect_err("stranger");
    assert!(err.to_string().contains("not a party"), "{err}");
}

#[test]
fn seed_witness_receipt() {
    let text = seed("witness_receipt");
    refused_at::<FederationReceipt>(
        &text,
        "fed_witness_event: field `root_hash`",
        "blake3:bbb222...",
    );
    let step = text.replace("blake3:bbb222...", &some_hash("b"));
    refused_at::<FederationReceipt>(&step, "field `witness_signature`", "z47C...");
    let step = step.replace("z47C...", &some_signature());
    refused_at::<FederationReceipt>(&step, "field `witnessed_root`", "blake3:aaa111...");
    let fixed = text
        .replace("blake3:aaa111...", &some_hash("a"))
        .replace("blake3:bbb222...", &some_hash("b"))
        .replace("z47C...", &some_signature());
    let receipt = parse_receipt(fixed.as_bytes()).expect("parses");
    round_trips(&receipt);
    let FederationReceipt::WitnessEvent(event) = &receipt else {
        panic!("wrong type: {receipt:?}");
    };
    assert_eq!(event.witnessed_anchor.backend, "ethereum");
    assert_eq!(
        event.witnessed_anchor.extra.get("block_number"),
        Some(&json!(12345678))
    );
    assert_eq!(event.samples_checked, 5);
    assert_eq!(
        receipt.root_hash(),
        Some(some_hash("b").parse().expect("hash"))
    );
}

#[test]
fn seed_cross_anchor_receipt() {
    let text = seed("cross_anchor_receipt");
    let err = parse_receipt(text.as_bytes()).expect_err("[...] is not JSON");
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    let step = text.replace("[...]", &format!("[\"{}\"]", some_hash("p")));
    refused_at::<FederationReceipt>(&step, "field `combined_root`", "blake3:ccc333...");
    let fixed = step
        .replace("blake3:aaa111...", &some_hash("a"))
        .replace("blake3:bbb222...", &some_hash("b"))
        .replace("blake3:ccc333...", &some_hash("c"))
        .replace("blake3:ddd444...", &some_hash("d"));
    let receipt = parse_receipt(fixed.as_bytes()).expect("parses");
    round_trips(&receipt);
    let FederationReceipt::CrossAnchor(cross) = &receipt else {
        panic!("wrong type: {receipt:?}");
    };
    let (field, roots) = cross.roots_included().expect("roots");
    assert_eq!(field, "dublin_roots_included");
    assert_eq!(roots.len(), 2);
    assert_eq!(cross.anchor_proof.merkle_path.len(), 1);

    // A bad hash inside the roots map is named.
    let bad = fixed.replace(&some_hash("a"), "blake3:nope");
    let err = parse_receipt(bad.as_bytes()).expect_err("bad root");
    assert!(err.to_string().contains("dublin_roots_included"), "{err}");
}

#[test]
fn seed_discrepancy_receipt() {
    let text = seed("discrepancy_receipt");
    refused_at::<FederationReceipt>(&text, "field `details.claimed_root`", "blake3:aaa111...");
    let fixed = text
        .replace("blake3:aaa111...", &some_hash("a"))
        .replace("blake3:xxx999...", &some_hash("x"))
        .replace("blake3:evidence...", &some_hash("e"));
    let receipt = parse_receipt(fixed.as_bytes()).expect("parses");
    round_trips(&receipt);
    let FederationReceipt::Discrepancy(d) = &receipt else {
        panic!("wrong type: {receipt:?}");
    };
    assert_eq!(
        d.body.details.first_divergence_at.as_deref(),
        Some("receipt-sequence-4721")
    );
    let wrong_severity = fixed.replace("\"critical\"", "\"info\"");
    refused_at::<FederationReceipt>(&wrong_severity, "severity", "root_mismatch");

    // The same body, signed, is the report sent to the reported mesh.
    let mut v: Value = serde_json::from_str(&fixed).expect("json");
    v.as_object_mut().expect("object").remove("type");
    v["signature"] = json!({"algorithm": "Ed25519", "value": some_signature()});
    let mut report: DiscrepancyReport = vm_receipts::documents::from_value(v).expect("report");
    report.sign(&key(2)).expect("signs");
    report.verify(&key(2).public_key()).expect("verifies");
}

#[test]
fn seed_schema_sync_receipt() {
    let text = seed("schema_sync_receipt");
    refused_at::<FederationReceipt>(&text, "field `root_hash`", "blake3:eee555...");
    let step = text.replace("blake3:eee555...", &some_hash("e"));
    refused_at::<FederationReceipt>(
        &step,
        "field `schemas_synced.Compliance.hash`",
        "blake3:schema1...",
    );
    let fixed = text
        .replace("blake3:schema1...", &some_hash("s1"))
        .replace("blake3:schema2...", &some_hash("s2"))
        .replace("blake3:eee555...", &some_hash("e"));
    let receipt = parse_receipt(fixed.as_bytes()).expect("parses");
    round_trips(&receipt);
    assert!(matches!(receipt, FederationReceipt::SchemaSync(_)));

    let mut v: Value = serde_json::from_str(&fixed).expect("json");
    for f in ["type", "tags", "root_hash"] {
        v.as_object_mut().expect("object").remove(f);
    }
    v["signature"] = json!({"algorithm": "Ed25519", "value": some_signature()});
    let mut sync: SchemaSync = vm_receipts::documents::from_value(v).expect("schema sync");
    sync.sign(&key(1)).expect("signs");
    sync.verify(&key(1).public_key()).expect("verifies");
}

#[test]
fn every_signed_kind_signs_verifies_and_does_not_cross_kinds() {
    let k = key(1);
    let root = SignedRoot::new(
        &k,
        mesh("dublin"),
        "Compliance".parse().expect("s"),
        5,
        Blake3Hash::digest(b"r"),
        at("2025-12-06T12:00:00Z"),
    )
    .expect("signs");
    root.verify(&k.public_key()).expect("root verifies");
    let attestation = WitnessAttestation::new(
        &key(2),
        "witness-1".parse().expect("id"),
        mesh("dublin"),
        mesh("berlin"),
        "Compliance".parse().expect("s"),
        root.root,
        5,
        WitnessResult::Verified,
        at("2025-12-06T12:05:00Z"),
    )
    .expect("signs");
    attestation
        .verify(&key(2).public_key())
        .expect("witness verifies");

    // A root signature presented as a witness signature does not verify, even over the same
    // bytes: the kind is part of the signed message.
    let message = root.signing_message().expect("message");
    let root_sig = root.signature.value;
    assert!(
        k.public_key()
            .verify(Kind::Witness, &message, &root_sig)
            .is_err()
    );
    assert!(
        k.public_key()
            .verify(Kind::Root, &message, &root_sig)
            .is_ok()
    );

    let mut notice: RevocationNotice = vm_receipts::documents::from_value(json!({
        "agreement_id": "fed-agreement-1",
        "revoked_by": "did:vm:mesh:dublin",
        "reason": "contract ended",
        "notice_days": 30,
        "effective_at": "2026-01-05T12:00:00Z",
        "signature": {"algorithm": "Ed25519", "value": some_signature()},
    }))
    .expect("notice");
    notice.sign(&k).expect("signs");
    notice.verify(&k.public_key()).expect("revocation verifies");
    notice.notice_days = 1;
    assert!(notice.verify(&k.public_key()).is_err());

    // The anchor proof sits outside the root's signature.
    let proof = AnchorProof {
        backend: "local".into(),
        batch_root: Blake3Hash::digest(b"batch"),
        leaf_index: 0,
        batch_size: 1,
        merkle_path: vec![],
        extra: Default::default(),
    };
    let notification = AnchorNotification::new(root.clone(), proof);
    let parsed: AnchorNotification =
        parse(&notification.to_canonical().expect("c")).expect("parses");
    parsed.verify_root(&k.public_key()).expect("verifies");
    assert_eq!(parsed.signed_root(), root);
}

#[test]
fn unknown_fields_are_kept_and_still_verify() {
    let k = key(1);
    let mut v = json!({
        "proposal_id": "p-1",
        "proposer": "did:vm:mesh:dublin",
        "target": "did:vm:mesh:berlin",
        "proposed_at": "2025-12-06T10:00:00Z",
        "expires_at": "2025-12-13T10:00:00Z",
        "proposed_trust_level": 2,
        "proposed_terms": {"scrolls_to_share": ["Compliance"], "verification_frequency": "hourly",
                           "retention_period_days": 365, "future_term": {"x": [1, 2]}},
        "signature": {"algorithm": "Ed25519", "value": some_signature()},
        "added_in_v2": "hello",
    });
    // A newer peer signs including fields we do not know.
    let mut unsigned = v.clone();
    unsigned
        .as_object_mut()
        .expect("object")
        .remove("signature");
    let message = vm_receipts::jcs::to_vec(&unsigned).expect("canonical");
    v["signature"]["value"] = json!(k.sign(Kind::Proposal, &message).to_string());

    let proposal: TrustProposal = vm_receipts::documents::from_value(v.clone()).expect("parses");
    assert_eq!(proposal.extra.get("added_in_v2"), Some(&json!("hello")));
    proposal
        .verify(&k.public_key())
        .expect("verifies with the unknown fields");
    let out: Value = serde_json::from_slice(&proposal.to_canonical().expect("c")).expect("json");
    assert_eq!(out, v, "re-serialised exactly");
}

#[test]
fn strictness_wrong_types_duplicates_and_signed_roots() {
    let root = SignedRoot::new(
        &key(1),
        mesh("dublin"),
        "Compliance".parse().expect("s"),
        5,
        Blake3Hash::digest(b"r"),
        at("2025-12-06T12:00:00Z"),
    )
    .expect("signs");
    let good = String::from_utf8(root.to_canonical().expect("c")).expect("utf-8");
    refused_at::<SignedRoot>(
        &good.replace("\"size\":5", "\"size\":\"5\""),
        "size",
        "invalid type",
    );
    refused_at::<SignedRoot>(
        &good.replace("\"size\":5", "\"size\":-5"),
        "size",
        "invalid value",
    );
    refused_at::<SignedRoot>(
        &good.replace("\"size\":5", "\"size\":5.0"),
        "SignedRoot",
        "no floating-point",
    );
    refused_at::<SignedRoot>(
        &good.replace("{", "{\"size\":6,"),
        "SignedRoot",
        "duplicate key \"size\"",
    );
    refused_at::<SignedRoot>(
        &good.replace("{", "{\"extra\":1,"),
        "extra",
        "unknown field",
    );
    refused_at::<SignedRoot>(
        &good.replace("\"algorithm\":\"Ed25519\"", "\"algorithm\":\"RSA\""),
        "signature",
        "RSA",
    );
    refused_at::<SignedRoot>("[1]", "SignedRoot", "JSON object");
    let missing = good.replace(",\"size\":5", "");
    refused_at::<SignedRoot>(&missing, "SignedRoot", "missing field `size`");
}

#[test]
fn verification_frequency_forms() {
    for (text, secs) in [
        ("hourly", 3600),
        ("daily", 86_400),
        ("weekly", 604_800),
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("3d", 259_200),
    ] {
        let f: VerificationFrequency = text.parse().expect(text);
        assert_eq!(f.interval_secs(), secs);
        assert_eq!(
            f.to_string()
                .parse::<VerificationFrequency>()
                .expect("round trip"),
            f
        );
    }
    for bad in ["", "0s", "often", "10", "-5m", "05m", "999d"] {
        assert!(bad.parse::<VerificationFrequency>().is_err(), "{bad}");
    }
}

#[test]
fn document_ids() {
    assert!("fed-proposal-2025-12-06-001".parse::<DocumentId>().is_ok());
    assert!("".parse::<DocumentId>().is_err());
    assert!("a b".parse::<DocumentId>().is_err());
    assert!("x".repeat(129).parse::<DocumentId>().is_err());
}

#[test]
fn signature_type_is_exactly_64_bytes() {
    assert!(Signature::from_bytes([0; 64]).to_string().starts_with('z'));
}

/// Found in review: `a-b` and `a.b` used to map to one `key_exchange` entry, so no agreement
/// between them could be drafted.
#[test]
fn regression_meshes_differing_in_punctuation_have_distinct_key_entries() {
    let (k1, k2) = (key(1), key(2));
    let (a, b) = (mesh("a-b"), mesh("a.b"));
    let terms = AgreementTerms {
        scrolls_shared: vec!["Compliance".parse().expect("scroll")],
        verification_frequency: VerificationFrequency::DAILY,
        retention_period_days: 30,
        data_jurisdiction: None,
        audit_rights: None,
        dispute_resolution: None,
        extra: Default::default(),
    };
    let mut agreement = FederationAgreement::draft(
        "fed-agreement-ab".parse().expect("id"),
        [(a.clone(), k1.public_key()), (b.clone(), k2.public_key())],
        at("2025-12-06T16:00:00Z"),
        TrustLevel::OBSERVE,
        terms,
    )
    .expect("drafts");
    assert_eq!(agreement.key_of(&a), Some(&k1.public_key()));
    assert_eq!(agreement.key_of(&b), Some(&k2.public_key()));
    agreement
        .sign_as(&a, &k1, at("2025-12-06T16:00:00Z"))
        .expect("a signs");
    agreement
        .sign_as(&b, &k2, at("2025-12-06T16:00:00Z"))
        .expect("b signs");
    agreement.verify_complete().expect("complete");
}

/// DESIGN §3 signs the document as sent. Another implementation that signs a record without
/// the `attestations` list, or with an optional field as `null`, made a good signature over
/// bytes this node would not re-create: such a document is refused naming the field (not
/// as a bad signature), and the same document in the form the node writes verifies.
#[test]
fn signed_documents_are_accepted_only_in_the_form_their_signature_covers() {
    use vm_receipts::documents::{Endpoints, SignatureField, TrustPolicy};
    let berlin = key(2);
    let public = berlin.public_key();
    let mut record = DiscoveryRecord {
        mesh_id: mesh("berlin"),
        display_name: "berlin".into(),
        endpoints: Endpoints::default(),
        public_key: public,
        scrolls_available: Vec::new(),
        trust_policy: TrustPolicy {
            accepts_proposals: true,
            min_trust_level: 1.try_into().expect("level"),
            requires_mutual: true,
            extra: Default::default(),
        },
        attestations: Vec::new(),
        peer_id: public.peer_id(),
        multiaddrs: Vec::new(),
        updated_at: at("2026-09-21T00:00:00Z"),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    record.sign(&berlin).expect("signs");
    let written = serde_json::to_value(&record).expect("value");
    // Signed by an outsider over exactly the JSON it sends.
    let outsider_signs = |mut value: Value| {
        value.as_object_mut().expect("object").remove("signature");
        let bytes = vm_receipts::jcs::to_vec(&value).expect("jcs");
        value["signature"] = json!({"algorithm": "Ed25519", "value": berlin.sign(Kind::Discovery, &bytes).to_string()});
        value
    };
    let mut without_list = written.clone();
    without_list
        .as_object_mut()
        .expect("object")
        .remove("attestations");
    let mut with_null = written.clone();
    with_null["endpoints"]["federation"] = Value::Null;
    for (what, value, field, says) in [
        ("no attestations", without_list, "attestations", "missing"),
        ("a null endpoint", with_null, "endpoints.federation", "null"),
    ] {
        let err = vm_receipts::documents::from_value::<DiscoveryRecord>(outsider_signs(value))
            .expect_err(what);
        let text = err.to_string();
        assert!(
            text.contains(field) && text.contains(says),
            "{what}: {text}"
        );
    }
    // The form the node writes, signed the same way, verifies; the seed's bare signature
    // string is a form of the signature field, not of the signed bytes.
    let ok: DiscoveryRecord =
        vm_receipts::documents::from_value(outsider_signs(written.clone())).expect("accepted");
    ok.verify_self_signed().expect("verifies");
    let mut bare = written;
    bare["signature"] = json!(record.signature.value.to_string());
    vm_receipts::documents::from_value::<DiscoveryRecord>(bare).expect("bare signature accepted");
}

/// Issue 18's documents: each signs under its own KIND, travels as its receipt (the signed
/// document plus `type`, `tags`, `root_hash`), reads back equal with unknown fields kept, and
/// refuses what no honest party writes, naming the field.
#[test]
fn resolution_suspension_and_verdict_documents_and_receipts() {
    use vm_receipts::documents::{ArbitrationVerdict, DiscrepancyResolution, SuspensionNotice};
    let k = key(1);
    let sig = json!({"algorithm": "Ed25519", "value": some_signature()});
    let mut resolution: DiscrepancyResolution = vm_receipts::documents::from_value(json!({
        "discrepancy_id": "discrepancy-1",
        "reporting_mesh": "did:vm:mesh:berlin",
        "reported_mesh": "did:vm:mesh:dublin",
        "resolved_by": "did:vm:mesh:berlin",
        "outcome": "false_alarm",
        "note": "our clock",
        "timestamp": "2026-01-01T00:00:00Z",
        "signature": sig,
        "added_later": 1,
    }))
    .expect("resolution");
    resolution.sign(&k).expect("signs");
    resolution.verify(&k.public_key()).expect("verifies");
    let message = resolution.signing_message().expect("message");
    assert!(
        k.public_key()
            .verify(Kind::Discrepancy, &message, &resolution.signature.value)
            .is_err(),
        "a resolution's signature is not a report's"
    );
    let mut line = resolution.to_value().expect("value");
    line["type"] = "fed_discrepancy_resolved".into();
    line["tags"] = json!(["federation"]);
    let receipt = vm_receipts::receipts::receipt_from_value(line.clone()).expect("receipt");
    round_trips(&receipt);
    let FederationReceipt::DiscrepancyResolved(r) = &receipt else {
        panic!("{receipt:?}")
    };
    assert_eq!(
        r.resolution, resolution,
        "unknown fields kept, still verifies"
    );
    r.resolution
        .verify(&k.public_key())
        .expect("the receipt is the signed resolution");
    let mut stranger = line.clone();
    stranger["resolved_by"] = "did:vm:mesh:singapore".into();
    let e = vm_receipts::receipts::receipt_from_value(stranger).expect_err("no party");
    assert!(e.to_string().contains("resolved_by"), "{e}");
    let mut outcome = line;
    outcome["outcome"] = "maybe".into();
    assert!(vm_receipts::receipts::receipt_from_value(outcome).is_err());

    let notice: Result<SuspensionNotice, _> = vm_receipts::documents::from_value(json!({
        "agreement_id": "agr-1",
        "suspended_by": "did:vm:mesh:berlin",
        "action": "suspend",
        "sequence": 0,
        "reason": "review",
        "timestamp": "2026-01-01T00:00:00Z",
        "signature": sig,
    }));
    let e = notice.expect_err("numbered from 1");
    assert!(e.to_string().contains("sequence"), "{e}");

    let verdict: Result<ArbitrationVerdict, _> = vm_receipts::documents::from_value(json!({
        "arbitration_id": "arb-1",
        "requested_by": "did:vm:mesh:berlin",
        "discrepancy_id": "discrepancy-1",
        "reporting_mesh": "did:vm:mesh:berlin",
        "reported_mesh": "did:vm:mesh:dublin",
        "scroll": "Compliance",
        "arbiter": "did:vm:mesh:dublin",
        "outcome": "upheld",
        "evidence_standing": "proof",
        "reason": "r",
        "timestamp": "2026-01-01T00:00:00Z",
        "signature": sig,
    }));
    let e = verdict.expect_err("a party is no arbiter");
    assert!(e.to_string().contains("arbiter"), "{e}");
}
