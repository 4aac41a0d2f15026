//! Anchor batches and backends (DESIGN §7, `src/anchor`): every leaf of a batch verifies
//! under `local`, `peer` and `rfc3161` anchors, and every tampering is refused with the
//! error that names it. The `rfc3161` tests run a real TSA (`openssl ts`, `vm_tsa::testing`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use vaultmesh_federation::anchor::{
    AnchorCheck, AnchorError, AnchorTrust, BackendAnchor, Batch, Rfc3161Backend, TsaTrust,
    anchor_local, peer_proof, verify,
};
use vaultmesh_federation::clock::{Clock, SystemClock};
use vm_receipts::documents::{AnchorProof, SignatureField, SignedRoot};
use vm_receipts::{Blake3Hash, Kind, MeshId, MeshKey, PublicKey, ScrollName, Timestamp};
use vm_tsa::testing::OpensslTsa;

/// 2025-12-06T10:00:00Z, the seed's first timestamp.
const START: i64 = 1_765_015_200;

fn at(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix).expect("time")
}

fn mesh(name: &str) -> MeshId {
    format!("did:vm:mesh:{name}").parse().expect("mesh id")
}

fn key(seed: u8) -> MeshKey {
    MeshKey::from_seed(&[seed; 32])
}

fn scroll(name: &str) -> ScrollName {
    name.parse().expect("scroll")
}

/// `n` distinct signed roots of `mesh` (different scrolls and sizes).
fn roots(key: &MeshKey, mesh: &MeshId, n: usize) -> Vec<SignedRoot> {
    let names = ["Federation", "Compliance", "Drills", "Guardian"];
    (0..n)
        .map(|i| {
            let size = u64::try_from(i).expect("small") + 1;
            SignedRoot::new(
                key,
                mesh.clone(),
                scroll(names[i % names.len()]),
                size,
                Blake3Hash::digest(format!("{mesh} root {i}").as_bytes()),
                at(START + i64::try_from(i).expect("small")),
            )
            .expect("sign root")
        })
        .collect()
}

/// A key lookup that knows `pairs` only.
fn keys(pairs: &[(&MeshId, &MeshKey)]) -> impl Fn(&MeshId) -> Option<PublicKey> + use<> {
    let known: Vec<(MeshId, PublicKey)> = pairs
        .iter()
        .map(|(m, k)| ((*m).clone(), k.public_key()))
        .collect();
    move |m| known.iter().find(|(id, _)| id == m).map(|(_, k)| *k)
}

fn flipped(hash: &Blake3Hash) -> Blake3Hash {
    let mut bytes = *hash.as_bytes();
    bytes[0] ^= 1;
    Blake3Hash::from_bytes(bytes)
}

fn refused(result: Result<AnchorCheck, AnchorError>) -> AnchorError {
    result.expect_err("the anchor proof must be refused")
}

/// Mesh A's batch of `n` of its roots, anchored locally at START.
struct Local {
    key: MeshKey,
    id: MeshId,
    batch: Batch,
    anchor: BackendAnchor,
}

fn local_batch(n: usize) -> Local {
    let (key, id) = (key(1), mesh("dublin"));
    let batch = Batch::new(roots(&key, &id, n)).expect("batch");
    let anchor = anchor_local(&key, &id, &batch.root(), at(START));
    Local {
        key,
        id,
        batch,
        anchor,
    }
}

impl Local {
    fn proof(&self, index: usize) -> AnchorProof {
        self.batch.proof(index, &self.anchor).expect("proof")
    }

    fn root(&self, index: usize) -> &SignedRoot {
        &self.batch.roots()[index]
    }

    fn verify(&self, proof: &AnchorProof, root: &SignedRoot) -> Result<AnchorCheck, AnchorError> {
        let key_of = keys(&[(&self.id, &self.key)]);
        let trust = AnchorTrust {
            key_of: &key_of,
            tsa: None,
        };
        verify(proof, root, &trust, at(START + 60))
    }
}

const SIZES: [usize; 6] = [1, 2, 3, 5, 8, 13];

#[test]
fn every_leaf_of_a_local_batch_verifies_with_the_right_key() {
    for n in SIZES {
        let l = local_batch(n);
        assert_eq!(l.batch.roots().len(), n);
        for i in 0..n {
            let proof = l.proof(i);
            assert_eq!(proof.backend, "local");
            assert_eq!(proof.batch_root, l.batch.root());
            assert_eq!(proof.leaf_index, u64::try_from(i).expect("small"));
            assert_eq!(proof.batch_size, u64::try_from(n).expect("small"));
            let check = l.verify(&proof, l.root(i)).expect("leaf verifies");
            assert_eq!(
                check,
                AnchorCheck {
                    backend: "local".into(),
                    anchored_at: at(START),
                    anchoring_mesh: None,
                }
            );
            // The same proof with another key registered for the mesh does not verify.
            let other = key(2);
            let key_of = keys(&[(&l.id, &other)]);
            let trust = AnchorTrust {
                key_of: &key_of,
                tsa: None,
            };
            let err = refused(verify(&proof, l.root(i), &trust, at(START + 60)));
            assert!(
                matches!(err, AnchorError::BadSignature(ref m) if m == &l.id),
                "{err:?}"
            );
        }
    }
}

#[test]
fn a_proof_survives_a_json_round_trip() {
    let l = local_batch(5);
    let proof = l.proof(3);
    let text = serde_json::to_string(&proof).expect("json");
    let back: AnchorProof = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, proof);
    l.verify(&back, l.root(3))
        .expect("verifies after the round trip");
}

#[test]
fn a_flipped_path_hash_or_a_wrong_leaf_index_is_not_in_the_batch() {
    for n in SIZES {
        let l = local_batch(n);
        for i in 0..n {
            let proof = l.proof(i);
            for h in 0..proof.merkle_path.len() {
                let mut bad = proof.clone();
                bad.merkle_path[h] = flipped(&bad.merkle_path[h]);
                let err = refused(l.verify(&bad, l.root(i)));
                assert!(
                    matches!(err, AnchorError::NotInBatch { batch_root, .. } if batch_root == l.batch.root()),
                    "size {n} leaf {i} hash {h}: {err:?}"
                );
            }
            // Every other index (and one past the end) for the same root and path.
            for wrong in (0..=n).filter(|w| *w != i) {
                let mut bad = proof.clone();
                bad.leaf_index = u64::try_from(wrong).expect("small");
                let err = refused(l.verify(&bad, l.root(i)));
                assert!(
                    matches!(err, AnchorError::NotInBatch { .. }),
                    "size {n} leaf {i} as {wrong}: {err:?}"
                );
            }
            // A path with a hash too many or too few.
            let mut longer = proof.clone();
            longer.merkle_path.push(l.batch.root());
            assert!(matches!(
                refused(l.verify(&longer, l.root(i))),
                AnchorError::NotInBatch { .. }
            ));
            if let Some(mut shorter) = Some(proof.clone()).filter(|p| !p.merkle_path.is_empty()) {
                shorter.merkle_path.pop();
                assert!(matches!(
                    refused(l.verify(&shorter, l.root(i))),
                    AnchorError::NotInBatch { .. }
                ));
            }
            // Another batch root.
            let mut other_batch = proof.clone();
            other_batch.batch_root = flipped(&proof.batch_root);
            assert!(matches!(
                refused(l.verify(&other_batch, l.root(i))),
                AnchorError::NotInBatch { .. }
            ));
        }
    }
}

#[test]
fn a_proof_checked_against_another_signed_root_is_not_in_the_batch() {
    for n in SIZES {
        let l = local_batch(n);
        // A root of the same mesh that is in no batch.
        let outsider = SignedRoot::new(
            &l.key,
            l.id.clone(),
            scroll("Federation"),
            99,
            Blake3Hash::digest(b"not in the batch"),
            at(START),
        )
        .expect("sign");
        for i in 0..n {
            let proof = l.proof(i);
            for j in (0..n).filter(|j| *j != i) {
                let err = refused(l.verify(&proof, l.root(j)));
                assert!(
                    matches!(err, AnchorError::NotInBatch { .. }),
                    "size {n}: proof {i} for root {j}: {err:?}"
                );
            }
            let err = refused(l.verify(&proof, &outsider));
            assert!(matches!(err, AnchorError::NotInBatch { .. }), "{err:?}");
            // The root's own fields: one size more is another leaf.
            let mut grown = l.root(i).clone();
            grown.size += 1;
            assert!(matches!(
                refused(l.verify(&proof, &grown)),
                AnchorError::NotInBatch { .. }
            ));
        }
    }
}

#[test]
fn an_altered_anchor_signature_or_time_is_a_bad_signature() {
    let l = local_batch(5);
    let mut proof = l.proof(2);
    // A real signature by the right key, over other bytes.
    let other = SignatureField::new(l.key.sign(Kind::Anchor, b"something else"));
    proof.extra.insert(
        "signature".into(),
        serde_json::to_value(other).expect("json"),
    );
    let err = refused(l.verify(&proof, l.root(2)));
    assert!(
        matches!(err, AnchorError::BadSignature(ref m) if m == &l.id),
        "{err:?}"
    );

    // The anchor signature of another batch root by the same mesh.
    let elsewhere = anchor_local(
        &l.key,
        &l.id,
        &Blake3Hash::digest(b"other batch"),
        at(START),
    );
    let mut proof = l.proof(2);
    proof
        .extra
        .insert("signature".into(), elsewhere.fields["signature"].clone());
    let err = refused(l.verify(&proof, l.root(2)));
    assert!(matches!(err, AnchorError::BadSignature(_)), "{err:?}");

    // A signature of kind `root` over the same bytes is not an anchor signature.
    let message = serde_json::to_vec(&json!({
        "anchored_at": at(START).to_string(),
        "anchored_by": l.id.to_string(),
        "batch_root": l.batch.root().to_string(),
    }))
    .expect("json");
    let mut proof = l.proof(2);
    proof.extra.insert(
        "signature".into(),
        serde_json::to_value(SignatureField::new(l.key.sign(Kind::Root, &message))).expect("json"),
    );
    let err = refused(l.verify(&proof, l.root(2)));
    assert!(matches!(err, AnchorError::BadSignature(_)), "{err:?}");

    // anchored_at is signed too.
    let mut proof = l.proof(2);
    proof
        .extra
        .insert("anchored_at".into(), json!(at(START + 1)));
    let err = refused(l.verify(&proof, l.root(2)));
    assert!(matches!(err, AnchorError::BadSignature(_)), "{err:?}");
}

#[test]
fn a_local_anchor_by_another_mesh_is_foreign() {
    let l = local_batch(3);
    let berlin = mesh("berlin");
    let mut proof = l.proof(1);
    proof.extra.insert("anchored_by".into(), json!(berlin));
    let err = refused(l.verify(&proof, l.root(1)));
    assert!(
        matches!(err, AnchorError::ForeignLocalAnchor { ref root_mesh, ref signer }
            if root_mesh == &l.id && signer == &berlin),
        "{err:?}"
    );

    // Berlin anchoring Dublin's root with a good signature of its own is still foreign.
    let berlin_key = key(2);
    let anchor = anchor_local(&berlin_key, &berlin, &l.batch.root(), at(START));
    let proof = l.batch.proof(1, &anchor).expect("proof");
    let key_of = keys(&[(&l.id, &l.key), (&berlin, &berlin_key)]);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let err = refused(verify(&proof, l.root(1), &trust, at(START)));
    assert!(
        matches!(err, AnchorError::ForeignLocalAnchor { .. }),
        "{err:?}"
    );
}

#[test]
fn an_unknown_signer_is_refused() {
    let l = local_batch(3);
    let proof = l.proof(0);
    let key_of = keys(&[(&mesh("berlin"), &key(2))]);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let err = refused(verify(&proof, l.root(0), &trust, at(START)));
    assert!(
        matches!(err, AnchorError::UnknownSigner(ref m) if m == &l.id),
        "{err:?}"
    );
}

#[test]
fn a_missing_or_malformed_field_is_refused() {
    let l = local_batch(3);
    for name in ["anchored_by", "anchored_at", "signature"] {
        let mut proof = l.proof(1);
        assert!(
            proof.extra.remove(name).is_some(),
            "{name} is a local field"
        );
        let err = refused(l.verify(&proof, l.root(1)));
        assert!(
            matches!(err, AnchorError::Field { field, .. } if field == name),
            "without {name}: {err:?}"
        );
        let mut proof = l.proof(1);
        proof.extra.insert(name.into(), json!(12));
        let err = refused(l.verify(&proof, l.root(1)));
        assert!(
            matches!(err, AnchorError::Field { field, .. } if field == name),
            "{name} = 12: {err:?}"
        );
    }
}

#[test]
fn an_unknown_backend_is_refused() {
    let l = local_batch(3);
    for backend in ["ethereum", "bitcoin", "", "LOCAL"] {
        let mut proof = l.proof(1);
        proof.backend = backend.into();
        let err = refused(l.verify(&proof, l.root(1)));
        assert!(
            matches!(err, AnchorError::UnknownBackend(ref b) if b == backend),
            "{backend:?}: {err:?}"
        );
    }
}

#[test]
fn a_batch_has_one_to_max_roots_and_proofs_only_for_its_leaves() {
    let err = Batch::new(Vec::new()).expect_err("an empty batch");
    assert!(
        matches!(
            err,
            AnchorError::Field {
                field: "batch_size",
                ..
            }
        ),
        "{err:?}"
    );
    let l = local_batch(3);
    let err = l.batch.proof(3, &l.anchor).expect_err("no leaf 3");
    assert!(
        matches!(
            err,
            AnchorError::Field {
                field: "leaf_index",
                ..
            }
        ),
        "{err:?}"
    );
    // The batch root is the Merkle root of the anchor leaves, in order: another order is
    // another root.
    let mut reversed = l.batch.roots().to_vec();
    reversed.reverse();
    assert_ne!(Batch::new(reversed).expect("batch").root(), l.batch.root());
}

/// Dublin's batch: its two roots, then Berlin's root it cross-anchors (leaf 2).
struct Cross {
    dublin: MeshId,
    dublin_key: MeshKey,
    berlin: MeshId,
    berlin_root: SignedRoot,
    /// Dublin's own local proof of leaf 2.
    own: AnchorProof,
}

fn cross() -> Cross {
    let (dublin, dublin_key) = (mesh("dublin"), key(1));
    let (berlin, berlin_key) = (mesh("berlin"), key(2));
    let mut leaves = roots(&dublin_key, &dublin, 2);
    let berlin_root = roots(&berlin_key, &berlin, 1).remove(0);
    leaves.push(berlin_root.clone());
    let batch = Batch::new(leaves).expect("batch");
    let anchor = anchor_local(&dublin_key, &dublin, &batch.root(), at(START));
    let own = batch.proof(2, &anchor).expect("proof");
    Cross {
        dublin,
        dublin_key,
        berlin,
        berlin_root,
        own,
    }
}

#[test]
fn a_peer_root_verifies_through_the_anchoring_mesh() {
    let c = cross();
    let peer = peer_proof(&c.own, &c.dublin);
    assert_eq!(peer.backend, "peer");
    assert_eq!(peer.batch_root, c.own.batch_root);
    assert_eq!(peer.merkle_path, c.own.merkle_path);
    // Only Dublin's key is needed: Berlin's root is proven through Dublin's anchor.
    let key_of = keys(&[(&c.dublin, &c.dublin_key)]);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let check = verify(&peer, &c.berlin_root, &trust, at(START)).expect("peer anchor");
    assert_eq!(
        check,
        AnchorCheck {
            backend: "peer/local".into(),
            anchored_at: at(START),
            anchoring_mesh: Some(c.dublin.clone()),
        }
    );
    // Dublin's local proof itself does not stand for Berlin's root.
    let err = refused(verify(&c.own, &c.berlin_root, &trust, at(START)));
    assert!(
        matches!(err, AnchorError::ForeignLocalAnchor { ref root_mesh, ref signer }
            if root_mesh == &c.berlin && signer == &c.dublin),
        "{err:?}"
    );
    // The peer proof survives JSON.
    let back: AnchorProof =
        serde_json::from_str(&serde_json::to_string(&peer).expect("json")).expect("parse");
    assert_eq!(back, peer);
}

#[test]
fn a_peer_anchor_is_refused_when_it_cannot_be_traced_to_a_known_anchoring_mesh() {
    let c = cross();
    let peer = peer_proof(&c.own, &c.dublin);

    // Dublin's key unknown (Berlin's alone does not help).
    let key_of = keys(&[(&c.berlin, &key(2))]);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let err = refused(verify(&peer, &c.berlin_root, &trust, at(START)));
    assert!(
        matches!(err, AnchorError::UnknownSigner(ref m) if m == &c.dublin),
        "{err:?}"
    );

    let key_of = keys(&[(&c.dublin, &c.dublin_key), (&c.berlin, &key(2))]);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    // The anchoring mesh changed to Berlin: Dublin's local anchor is not Berlin's.
    let mut claimed = peer.clone();
    claimed
        .extra
        .insert("anchoring_mesh".into(), json!(c.berlin));
    let err = refused(verify(&claimed, &c.berlin_root, &trust, at(START)));
    // Berlin "peer-anchoring" its own root is refused before its signature is looked at.
    assert!(
        matches!(err, AnchorError::SelfPeerAnchor(ref m) if m == &c.berlin),
        "{err:?}"
    );
    // Claimed by a third mesh: Dublin's local anchor is not Singapore's.
    let singapore = mesh("singapore");
    let key_of = keys(&[(&c.dublin, &c.dublin_key), (&singapore, &key(3))]);
    let third = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let mut claimed = peer.clone();
    claimed
        .extra
        .insert("anchoring_mesh".into(), json!(singapore));
    let err = refused(verify(&claimed, &c.berlin_root, &third, at(START)));
    assert!(
        matches!(err, AnchorError::ForeignLocalAnchor { ref root_mesh, ref signer }
            if root_mesh == &singapore && signer == &c.dublin),
        "{err:?}"
    );

    // A peer anchor inside a peer anchor.
    let nested = peer_proof(&peer, &c.dublin);
    let err = refused(verify(&nested, &c.berlin_root, &trust, at(START)));
    assert!(
        matches!(err, AnchorError::NestedPeer(ref b) if b == "peer"),
        "{err:?}"
    );

    // An inner backend this node does not know.
    let mut unknown = peer.clone();
    if let Some(Value::Object(inner)) = unknown.extra.get_mut("anchor") {
        inner.insert("backend".into(), json!("ethereum"));
    }
    let err = refused(verify(&unknown, &c.berlin_root, &trust, at(START)));
    assert!(
        matches!(err, AnchorError::UnknownBackend(ref b) if b == "ethereum"),
        "{err:?}"
    );

    // Missing pieces.
    for name in ["anchoring_mesh", "anchor"] {
        let mut missing = peer.clone();
        missing.extra.remove(name);
        let err = refused(verify(&missing, &c.berlin_root, &trust, at(START)));
        assert!(
            matches!(err, AnchorError::Field { .. }),
            "without {name}: {err:?}"
        );
    }

    // The inner anchor's signature altered.
    let mut forged = peer.clone();
    if let Some(Value::Object(inner)) = forged.extra.get_mut("anchor") {
        let other = SignatureField::new(c.dublin_key.sign(Kind::Anchor, b"other"));
        inner.insert(
            "signature".into(),
            serde_json::to_value(other).expect("json"),
        );
    }
    let err = refused(verify(&forged, &c.berlin_root, &trust, at(START)));
    assert!(
        matches!(err, AnchorError::BadSignature(ref m) if m == &c.dublin),
        "{err:?}"
    );

    // Dublin's own root is not in the batch at Berlin's leaf.
    let dublin_root = roots(&c.dublin_key, &c.dublin, 1).remove(0);
    let err = refused(verify(&peer, &dublin_root, &trust, at(START)));
    assert!(matches!(err, AnchorError::NotInBatch { .. }), "{err:?}");
}

// ---- rfc3161, with a real TSA ----

fn tsa_trust(tsa: &OpensslTsa) -> TsaTrust {
    TsaTrust::from_pem_files(&[tsa.ca_pem_path()]).expect("TSA trust")
}

fn backend(tsa: &OpensslTsa) -> Rfc3161Backend {
    Rfc3161Backend::new(&tsa.url(), Duration::from_secs(10)).expect("backend")
}

/// A batch of `n` Dublin roots (distinct per `salt`) stamped by `tsa`.
async fn stamped(
    tsa: &OpensslTsa,
    trust: &TsaTrust,
    n: usize,
    salt: u8,
    now: Timestamp,
) -> (Batch, BackendAnchor) {
    // The anchor leaf is (mesh, scroll, size, root): the salt goes into the root hash.
    let key = key(1);
    let roots = roots(&key, &mesh("dublin"), n)
        .into_iter()
        .map(|r| {
            let root = Blake3Hash::digest(format!("{} salt {salt}", r.root).as_bytes());
            SignedRoot::new(&key, r.mesh_id, r.scroll, r.size, root, r.timestamp)
                .expect("sign root")
        })
        .collect();
    let batch = Batch::new(roots).expect("batch");
    let anchor = backend(tsa)
        .anchor(&batch.root(), u64::from(salt) + 7, Some(trust), now)
        .await
        .expect("TSA anchor");
    (batch, anchor)
}

fn token_of(proof: &AnchorProof) -> String {
    match proof.extra.get("tsa_token") {
        Some(Value::String(t)) => t.clone(),
        other => panic!("tsa_token is {other:?}"),
    }
}

#[tokio::test]
async fn every_leaf_of_an_rfc3161_batch_verifies_against_the_tsa_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsa = OpensslTsa::start(dir.path()).expect("TSA");
    let trust = tsa_trust(&tsa);
    let now = SystemClock.now();
    let (batch, anchor) = stamped(&tsa, &trust, 5, 1, now).await;
    assert_eq!(anchor.backend, "rfc3161");
    assert_eq!(anchor.fields.get("tsa_url"), Some(&json!(tsa.url())));
    let key_of = keys(&[]);
    let anchor_trust = AnchorTrust {
        key_of: &key_of,
        tsa: Some(&trust),
    };
    let now = SystemClock.now();
    for (i, root) in batch.roots().iter().enumerate() {
        let proof = batch.proof(i, &anchor).expect("proof");
        assert_eq!(proof.backend, "rfc3161");
        let check = verify(&proof, root, &anchor_trust, now).expect("rfc3161 anchor");
        assert_eq!(check.backend, "rfc3161");
        let off = check.anchored_at.seconds_since(now).abs();
        assert!(off <= 60, "TSA time {} vs now {now}", check.anchored_at);
        // A flipped path hash is still caught before the token is looked at.
        if let Some(first) = proof.merkle_path.first().copied() {
            let mut bad = proof.clone();
            bad.merkle_path[0] = flipped(&first);
            assert!(matches!(
                refused(verify(&bad, root, &anchor_trust, now)),
                AnchorError::NotInBatch { .. }
            ));
        }
    }
    // A TSA anchor wrapped as another mesh's peer anchor: no mesh key needed at all.
    let peer = peer_proof(&batch.proof(4, &anchor).expect("proof"), &mesh("berlin"));
    let check = verify(&peer, &batch.roots()[4], &anchor_trust, now).expect("peer/rfc3161");
    assert_eq!(check.backend, "peer/rfc3161");
}

#[tokio::test]
async fn a_tampered_swapped_or_unreadable_token_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsa = OpensslTsa::start(dir.path()).expect("TSA");
    let trust = tsa_trust(&tsa);
    let now = SystemClock.now();
    let (batch, anchor) = stamped(&tsa, &trust, 3, 1, now).await;
    let (other_batch, other_anchor) = stamped(&tsa, &trust, 3, 2, now).await;
    assert_ne!(other_batch.root(), batch.root());
    let key_of = keys(&[]);
    let anchor_trust = AnchorTrust {
        key_of: &key_of,
        tsa: Some(&trust),
    };
    let root = &batch.roots()[1];
    let proof = batch.proof(1, &anchor).expect("proof");
    verify(&proof, root, &anchor_trust, now).expect("the untouched proof verifies");

    // One byte flipped near the end of the token (in the TSA's signature).
    let mut der = STANDARD.decode(token_of(&proof)).expect("base64");
    let at_end = der.len() - 3;
    der[at_end] ^= 0x01;
    let mut tampered = proof.clone();
    tampered
        .extra
        .insert("tsa_token".into(), json!(STANDARD.encode(&der)));
    let err = refused(verify(&tampered, root, &anchor_trust, now));
    assert!(matches!(err, AnchorError::Tsa(_)), "{err:?}");

    // A genuine token over another batch root: the inclusion check passes (batch_root and
    // path are this batch's), the imprint does not.
    let mut swapped = proof.clone();
    swapped
        .extra
        .insert("tsa_token".into(), other_anchor.fields["tsa_token"].clone());
    let err = refused(verify(&swapped, root, &anchor_trust, now));
    assert!(
        matches!(err, AnchorError::Tsa(ref m) if m.contains("imprint")),
        "{err:?}"
    );

    // Not base64.
    let mut garbled = proof.clone();
    garbled
        .extra
        .insert("tsa_token".into(), json!("this is not base64!"));
    let err = refused(verify(&garbled, root, &anchor_trust, now));
    assert!(
        matches!(
            err,
            AnchorError::Field {
                field: "tsa_token",
                ..
            }
        ),
        "{err:?}"
    );

    // Base64 of bytes that are no token.
    let mut junk = proof.clone();
    junk.extra
        .insert("tsa_token".into(), json!(STANDARD.encode(b"junk")));
    let err = refused(verify(&junk, root, &anchor_trust, now));
    assert!(matches!(err, AnchorError::Tsa(_)), "{err:?}");

    // Missing, or not a string.
    for value in [None, Some(json!(42))] {
        let mut missing = proof.clone();
        match value {
            None => {
                missing.extra.remove("tsa_token");
            }
            Some(v) => {
                missing.extra.insert("tsa_token".into(), v);
            }
        }
        let err = refused(verify(&missing, root, &anchor_trust, now));
        assert!(
            matches!(
                err,
                AnchorError::Field {
                    field: "tsa_token",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    // No TSA trust configured at all.
    let no_tsa = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    let err = refused(verify(&proof, root, &no_tsa, now));
    assert!(matches!(err, AnchorError::NoTsaTrust), "{err:?}");

    // A verifier whose clock is an hour behind the TSA sees a token from the future.
    let err = refused(verify(&proof, root, &anchor_trust, now.plus_seconds(-3600)));
    assert!(matches!(err, AnchorError::Tsa(_)), "{err:?}");
}

#[tokio::test]
async fn a_token_of_an_untrusted_tsa_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other_dir = tempfile::tempdir().expect("tempdir");
    let tsa = OpensslTsa::start(dir.path()).expect("TSA");
    let stranger = OpensslTsa::start(other_dir.path()).expect("second TSA");
    let trust = tsa_trust(&tsa);
    let wrong_trust = tsa_trust(&stranger);
    let now = SystemClock.now();
    let (batch, anchor) = stamped(&tsa, &trust, 2, 1, now).await;
    let key_of = keys(&[]);
    let untrusting = AnchorTrust {
        key_of: &key_of,
        tsa: Some(&wrong_trust),
    };
    let proof = batch.proof(0, &anchor).expect("proof");
    let err = refused(verify(&proof, &batch.roots()[0], &untrusting, now));
    assert!(matches!(err, AnchorError::Tsa(_)), "{err:?}");

    // Anchoring with the wrong trust fails the cycle at the anchoring mesh.
    let err = backend(&tsa)
        .anchor(&batch.root(), 99, Some(&wrong_trust), now)
        .await
        .expect_err("the token does not verify against the stranger's CA");
    assert!(
        matches!(
            err,
            AnchorError::Backend {
                backend: "rfc3161",
                ..
            }
        ),
        "{err:?}"
    );
    // Without trust the same TSA's token is taken as is.
    backend(&tsa)
        .anchor(&batch.root(), 100, None, now)
        .await
        .expect("unchecked anchor");
}

#[tokio::test]
async fn an_unreachable_tsa_is_a_backend_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let backend = Rfc3161Backend::new(
        &format!("http://127.0.0.1:{port}/tsa"),
        Duration::from_secs(2),
    )
    .expect("backend");
    let err = backend
        .anchor(&Blake3Hash::digest(b"batch"), 1, None, SystemClock.now())
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(
            err,
            AnchorError::Backend {
                backend: "rfc3161",
                ..
            }
        ),
        "{err:?}"
    );
    let err = Rfc3161Backend::new("ftp://example.invalid/tsa", Duration::from_secs(2))
        .expect_err("not http");
    assert!(matches!(err, AnchorError::Backend { .. }), "{err:?}");
}

/// Issue 18 (proofs for outsiders): a mesh's anchor of its own root, dressed as a `peer`
/// anchor, is refused: it is worth no more than its local anchor, and a checker must not
/// print it as a cross-anchor.
#[test]
fn a_peer_anchor_of_a_meshs_own_root_by_itself_is_refused() {
    let (dublin, dublin_key) = (mesh("dublin"), key(1));
    let leaves = roots(&dublin_key, &dublin, 2);
    let own_root = leaves[0].clone();
    let batch = Batch::new(leaves).expect("batch");
    let anchor = anchor_local(&dublin_key, &dublin, &batch.root(), at(START));
    let local = batch.proof(0, &anchor).expect("proof");
    let key_of = keys(&[(&dublin, &dublin_key)]);
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa: None,
    };
    // As itself: its local anchor, fine.
    assert!(verify(&local, &own_root, &trust, at(START)).is_ok());
    // As a "peer" anchor by the same mesh: refused, naming why.
    let dressed = peer_proof(&local, &dublin);
    let err = refused(verify(&dressed, &own_root, &trust, at(START)));
    assert!(
        matches!(err, AnchorError::SelfPeerAnchor(ref m) if *m == dublin),
        "{err:?}"
    );
    assert!(err.to_string().contains("no peer anchor"), "{err}");
}
