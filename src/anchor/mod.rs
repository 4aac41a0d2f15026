//! Anchor batches and anchor backends (DESIGN §7).
//!
//! An anchor cycle puts one leaf per root into a Merkle tree (the same RFC 9162 hashing as
//! scrolls): `JCS({"mesh_id","scroll","size","root"})` for each of our scrolls and, at trust
//! level 3+, for each peer root we cross-anchor. The tree's root (the batch root, the
//! `combined_root` of `fed_cross_anchor`) is what a backend anchors:
//!
//! - `local`: the batch root signed by the mesh key (KIND `anchor`, so it can never pass for a
//!   root signature). It proves authorship and order, not time.
//! - `rfc3161`: an RFC 3161 time-stamp token whose imprint is SHA-256 of the 32 bytes of the
//!   batch root, verified offline against the TSA certificates the verifier trusts.
//! - `peer`: a peer's root proven through *our* batch: the path of its leaf in our batch and
//!   our own anchor of the batch root (`local` or `rfc3161`). A third party that trusts us can
//!   check a peer's root without trusting the peer's backend.
//!
//! Every [`AnchorProof`] verifies on its own: the leaf of the signed root it comes with, its
//! path to `batch_root`, then the backend's statement about `batch_root`.

mod rfc3161;

use serde_json::{Map, Value, json};
use vm_receipts::documents::{AnchorProof, Extra, SignatureField, SignedRoot};
use vm_receipts::merkle::{self, Blake3Hasher, MerkleTree, TreeHasher};
use vm_receipts::{Blake3Hash, Kind, MeshId, MeshKey, PublicKey, Timestamp, jcs};

pub use rfc3161::{Rfc3161Backend, TsaTrust};

/// The backend names this node knows.
pub const BACKENDS: [&str; 3] = ["local", "rfc3161", "peer"];

/// Most leaves one batch may have (every scroll plus every cross-anchored peer root); a path
/// is then at most 20 hashes.
pub const MAX_BATCH: usize = 1 << 20;

/// Why an anchor proof does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The proof names a backend this verifier does not know or does not accept.
    #[error("anchor backend {0:?} is not one this node verifies (local, rfc3161, peer)")]
    UnknownBackend(String),
    /// The root's leaf is not in the batch the proof names.
    #[error("the root is not in anchor batch {batch_root}: {source}")]
    NotInBatch {
        /// The batch root claimed.
        batch_root: Blake3Hash,
        /// The Merkle failure.
        source: merkle::ProofError,
    },
    /// A backend field is missing or malformed.
    #[error("anchor proof field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The mesh that signed a `local` anchor (or anchored a `peer` one) is not one we hold
    /// a key for, or not the one it must be.
    #[error("anchor signed by {0}, whose key we do not hold")]
    UnknownSigner(MeshId),
    /// A `local` anchor must be signed by the mesh whose root it anchors.
    #[error("a local anchor of {root_mesh}'s root is signed by {signer}")]
    ForeignLocalAnchor {
        /// The root's mesh.
        root_mesh: MeshId,
        /// Who signed the anchor.
        signer: MeshId,
    },
    /// The anchor signature does not verify.
    #[error("the anchor signature of {0} does not verify")]
    BadSignature(MeshId),
    /// The time-stamp token does not verify.
    #[error("RFC 3161 time-stamp token: {0}")]
    Tsa(String),
    /// An RFC 3161 token is present but the verifier trusts no TSA.
    #[error("an rfc3161 anchor needs TSA certificates to check it against; none are configured")]
    NoTsaTrust,
    /// A `peer` anchor made by the anchored mesh itself.
    #[error(
        "a peer anchor of {0}'s root made by {0} itself is no peer anchor (it is its own local anchor)"
    )]
    SelfPeerAnchor(MeshId),
    /// A `peer` anchor inside a `peer` anchor.
    #[error("a peer anchor must be anchored by local or rfc3161, not {0:?}")]
    NestedPeer(String),
    /// Anchoring failed (the backend could not be reached or refused).
    #[error("anchoring through {backend} failed: {reason}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// Why.
        reason: String,
    },
}

/// The leaves of one anchor cycle and their tree.
#[derive(Debug)]
pub struct Batch {
    roots: Vec<SignedRoot>,
    tree: MerkleTree,
}

impl Batch {
    /// A batch over `roots`, in order (our own roots first, then cross-anchored ones).
    pub fn new(roots: Vec<SignedRoot>) -> Result<Self, AnchorError> {
        if roots.is_empty() || roots.len() > MAX_BATCH {
            return Err(AnchorError::Field {
                field: "batch_size",
                reason: format!("a batch has 1 to {MAX_BATCH} roots, not {}", roots.len()),
            });
        }
        let mut tree = MerkleTree::with_capacity(roots.len());
        for r in &roots {
            tree.append(&r.anchor_leaf());
        }
        Ok(Self { roots, tree })
    }

    /// The batch root.
    pub fn root(&self) -> Blake3Hash {
        Blake3Hash::from_bytes(self.tree.root())
    }

    /// The roots, in leaf order.
    pub fn roots(&self) -> &[SignedRoot] {
        &self.roots
    }

    /// The anchor proof of leaf `index` under the backend statement `anchor`.
    pub fn proof(&self, index: usize, anchor: &BackendAnchor) -> Result<AnchorProof, AnchorError> {
        let size = self.tree.len();
        let index = u64::try_from(index).unwrap_or(u64::MAX);
        let inclusion = self
            .tree
            .prove_inclusion(index, size)
            .map_err(|e| AnchorError::Field {
                field: "leaf_index",
                reason: e.to_string(),
            })?;
        Ok(AnchorProof {
            backend: anchor.backend.clone(),
            batch_root: self.root(),
            leaf_index: index,
            batch_size: size,
            merkle_path: inclusion
                .path
                .into_iter()
                .map(Blake3Hash::from_bytes)
                .collect(),
            extra: anchor.fields.clone(),
        })
    }
}

/// A backend's statement about a batch root: its name and its own fields (a signature, a
/// time-stamp token).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendAnchor {
    /// `local` or `rfc3161`.
    pub backend: String,
    /// The backend's fields, flattened into the anchor proof.
    pub fields: Extra,
}

/// The bytes a `local` anchor signs: `JCS({"anchored_at","anchored_by","batch_root"})`.
fn local_message(batch_root: &Blake3Hash, by: &MeshId, at: Timestamp) -> Vec<u8> {
    let value = json!({
        "anchored_at": at.to_string(),
        "anchored_by": by.to_string(),
        "batch_root": batch_root.to_string(),
    });
    jcs::to_vec_integers_only(&value).unwrap_or_default()
}

/// The `local` backend: the batch root signed by the mesh key.
pub fn anchor_local(
    key: &MeshKey,
    mesh: &MeshId,
    batch_root: &Blake3Hash,
    now: Timestamp,
) -> BackendAnchor {
    let signature = key.sign(Kind::Anchor, &local_message(batch_root, mesh, now));
    let mut fields = Map::new();
    fields.insert("anchored_by".into(), json!(mesh));
    fields.insert("anchored_at".into(), json!(now));
    fields.insert(
        "signature".into(),
        serde_json::to_value(SignatureField::new(signature)).unwrap_or(Value::Null),
    );
    BackendAnchor {
        backend: "local".into(),
        fields,
    }
}

/// Wraps our anchor of a batch into a `peer` anchor proof for a peer's root in it.
pub fn peer_proof(own: &AnchorProof, anchoring_mesh: &MeshId) -> AnchorProof {
    let mut inner = own.extra.clone();
    inner.insert("backend".into(), json!(own.backend));
    let mut extra = Map::new();
    extra.insert("anchoring_mesh".into(), json!(anchoring_mesh));
    extra.insert("anchor".into(), Value::Object(inner));
    AnchorProof {
        backend: "peer".into(),
        extra,
        ..own.clone()
    }
}

/// A peer root as a `fed_cross_anchor` receipt records it, and the `peer` anchor proof of it
/// that the receipt carries: a third party checks the root against the anchoring mesh's
/// anchor with that mesh's key (or the TSA's certificate) alone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeerAnchored {
    /// The anchored mesh.
    pub mesh_id: MeshId,
    /// Its scroll.
    pub scroll: vm_receipts::ScrollName,
    /// The size anchored.
    pub size: u64,
    /// The root anchored.
    pub root: Blake3Hash,
    /// The `peer` proof.
    pub anchor_proof: AnchorProof,
}

/// Rebuilds the `peer` anchor proof a `fed_cross_anchor` receipt carries.
pub fn peer_proof_from_receipt(
    receipt: &vm_receipts::receipts::CrossAnchorReceipt,
) -> Result<PeerAnchored, AnchorError> {
    let (_, roots) = receipt
        .roots_included()
        .map_err(|e| field("roots_included", e.to_string()))?;
    let [(scroll, root)] = <[_; 1]>::try_from(roots.into_iter().collect::<Vec<_>>())
        .map_err(|_| field("roots_included", "a peer proof covers exactly one root"))?;
    let size: u64 = typed_field(&receipt.extra, "anchored_size")?;
    let mut fields = receipt.anchor_proof.extra.clone();
    let leaf_index: u64 = typed_field(&fields, "leaf_index")?;
    let batch_size: u64 = typed_field(&fields, "batch_size")?;
    fields.remove("leaf_index");
    fields.remove("batch_size");
    let own = AnchorProof {
        backend: receipt.anchor_proof.backend.clone(),
        batch_root: receipt.combined_root,
        leaf_index,
        batch_size,
        merkle_path: receipt.anchor_proof.merkle_path.clone(),
        extra: fields,
    };
    Ok(PeerAnchored {
        mesh_id: receipt.anchored_mesh.clone(),
        scroll,
        size,
        root,
        anchor_proof: peer_proof(&own, &receipt.anchoring_mesh),
    })
}

/// What a verifier trusts: the keys of meshes it knows, and the TSA certificates.
pub struct AnchorTrust<'a> {
    /// The key we hold for a mesh (agreement, discovery record or manual entry).
    pub key_of: &'a dyn Fn(&MeshId) -> Option<PublicKey>,
    /// TSA certificates for `rfc3161` anchors.
    pub tsa: Option<&'a TsaTrust>,
}

/// What a verified anchor says.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorCheck {
    /// The backend (for `peer`: `peer/<inner backend>`).
    pub backend: String,
    /// When the batch root was anchored, by the backend's account.
    pub anchored_at: Timestamp,
    /// For a `peer` anchor: the mesh that anchored the root (never the root's own mesh).
    pub anchoring_mesh: Option<MeshId>,
}

/// Checks that `root` is in the anchor batch of `proof` and that the backend anchored that
/// batch, at `now` (a TSA time in the future beyond the skew is refused).
pub fn verify(
    proof: &AnchorProof,
    root: &SignedRoot,
    trust: &AnchorTrust<'_>,
    now: Timestamp,
) -> Result<AnchorCheck, AnchorError> {
    verify_leaf(proof, &root.mesh_id, &root.anchor_leaf(), trust, now)
}

/// As [`verify`], for a root known by its fields (a [`PeerAnchored`] root).
pub fn verify_peer_anchored(
    anchored: &PeerAnchored,
    trust: &AnchorTrust<'_>,
    now: Timestamp,
) -> Result<AnchorCheck, AnchorError> {
    let leaf = SignedRoot::anchor_leaf_of(
        &anchored.mesh_id,
        &anchored.scroll,
        anchored.size,
        &anchored.root,
    );
    verify_leaf(&anchored.anchor_proof, &anchored.mesh_id, &leaf, trust, now)
}

/// The leaf `leaf` of mesh `mesh` is in the proof's batch, which the backend anchored.
fn verify_leaf(
    proof: &AnchorProof,
    mesh: &MeshId,
    leaf: &[u8],
    trust: &AnchorTrust<'_>,
    now: Timestamp,
) -> Result<AnchorCheck, AnchorError> {
    let leaf = Blake3Hasher::leaf(leaf);
    let inclusion = merkle::InclusionProof {
        leaf_index: proof.leaf_index,
        tree_size: proof.batch_size,
        path: proof.merkle_path.iter().map(|h| *h.as_bytes()).collect(),
    };
    merkle::verify_inclusion::<Blake3Hasher>(&inclusion, &leaf, proof.batch_root.as_bytes())
        .map_err(|source| AnchorError::NotInBatch {
            batch_root: proof.batch_root,
            source,
        })?;
    match proof.backend.as_str() {
        "local" | "rfc3161" => verify_backend(
            &proof.backend,
            &proof.extra,
            &proof.batch_root,
            Some(mesh),
            trust,
            now,
        ),
        "peer" => {
            let anchoring = mesh_field(&proof.extra, "anchoring_mesh")?;
            // A mesh's anchor of its own root is its local anchor, whatever it is called:
            // a peer anchor is worth more only because another mesh made it.
            if &anchoring == mesh {
                return Err(AnchorError::SelfPeerAnchor(anchoring));
            }
            let Some(Value::Object(inner)) = proof.extra.get("anchor") else {
                return Err(field("anchor", "missing or not an object"));
            };
            let backend = match inner.get("backend") {
                Some(Value::String(b)) => b.clone(),
                _ => return Err(field("anchor.backend", "missing or not a string")),
            };
            if backend == "peer" {
                return Err(AnchorError::NestedPeer(backend));
            }
            if !matches!(backend.as_str(), "local" | "rfc3161") {
                return Err(AnchorError::UnknownBackend(backend));
            }
            // The anchoring mesh's own anchor of its batch: a local one is signed by it.
            let check = verify_backend(
                &backend,
                inner,
                &proof.batch_root,
                Some(&anchoring),
                trust,
                now,
            )?;
            Ok(AnchorCheck {
                backend: format!("peer/{}", check.backend),
                anchored_at: check.anchored_at,
                anchoring_mesh: Some(anchoring),
            })
        }
        other => Err(AnchorError::UnknownBackend(other.to_owned())),
    }
}

/// Checks a `local` or `rfc3161` statement about `batch_root`; a `local` one must be signed
/// by `signer`.
fn verify_backend(
    backend: &str,
    fields: &Extra,
    batch_root: &Blake3Hash,
    signer: Option<&MeshId>,
    trust: &AnchorTrust<'_>,
    now: Timestamp,
) -> Result<AnchorCheck, AnchorError> {
    match backend {
        "local" => {
            let by = mesh_field(fields, "anchored_by")?;
            if let Some(expected) = signer
                && &by != expected
            {
                return Err(AnchorError::ForeignLocalAnchor {
                    root_mesh: expected.clone(),
                    signer: by,
                });
            }
            let at: Timestamp = typed_field(fields, "anchored_at")?;
            let signature: SignatureField = typed_field(fields, "signature")?;
            let key = (trust.key_of)(&by).ok_or_else(|| AnchorError::UnknownSigner(by.clone()))?;
            key.verify(
                Kind::Anchor,
                &local_message(batch_root, &by, at),
                &signature.value,
            )
            .map_err(|_| AnchorError::BadSignature(by.clone()))?;
            Ok(AnchorCheck {
                backend: "local".into(),
                anchored_at: at,
                anchoring_mesh: None,
            })
        }
        "rfc3161" => {
            let tsa = trust.tsa.ok_or(AnchorError::NoTsaTrust)?;
            let anchored_at = rfc3161::verify_fields(fields, batch_root, tsa, now)?;
            Ok(AnchorCheck {
                backend: "rfc3161".into(),
                anchored_at,
                anchoring_mesh: None,
            })
        }
        other => Err(AnchorError::UnknownBackend(other.to_owned())),
    }
}

fn field(name: &'static str, reason: impl Into<String>) -> AnchorError {
    AnchorError::Field {
        field: name,
        reason: reason.into(),
    }
}

fn typed_field<T: serde::de::DeserializeOwned>(
    fields: &Extra,
    name: &'static str,
) -> Result<T, AnchorError> {
    let value = fields.get(name).ok_or_else(|| field(name, "missing"))?;
    serde_json::from_value(value.clone()).map_err(|e| field(name, e.to_string()))
}

fn mesh_field(fields: &Extra, name: &'static str) -> Result<MeshId, AnchorError> {
    typed_field(fields, name)
}

/// A receipt proven against a mesh's latest anchored root, with that root's anchor proof:
/// what `scroll proof` gives a third party, who then needs only the mesh's key (and, for
/// rfc3161, the TSA's). The node and the offline CLI both build proofs here.
pub fn anchored_receipt_proof(
    scroll: &vm_receipts::scroll::Scroll,
    anchored: &vm_receipts::documents::AnchorNotification,
    sequence: u64,
) -> Result<vm_receipts::proof::ReceiptProof, AnchoredProofError> {
    if sequence >= anchored.size {
        return Err(AnchoredProofError::NotCovered {
            sequence,
            size: anchored.size,
        });
    }
    let line = scroll
        .read_line(sequence)
        .map_err(|e| AnchoredProofError::Scroll(e.to_string()))?;
    let receipt: Value =
        serde_json::from_slice(&line).map_err(|e| AnchoredProofError::Scroll(e.to_string()))?;
    Ok(vm_receipts::proof::ReceiptProof {
        receipt,
        inclusion: scroll
            .prove_inclusion(sequence, anchored.size)
            .map_err(|e| AnchoredProofError::Scroll(e.to_string()))?,
        signed_root: anchored.signed_root(),
        anchor_proof: Some(anchored.anchor_proof.clone()),
    })
}

/// Why [`anchored_receipt_proof`] has no proof.
#[derive(Debug, thiserror::Error)]
pub enum AnchoredProofError {
    /// The receipt came after the latest anchor.
    #[error(
        "receipt-sequence-{sequence} is not covered by the latest anchor ({size} receipts): run `vm-federation anchor now`"
    )]
    NotCovered {
        /// The receipt asked for.
        sequence: u64,
        /// Receipts the anchor covers.
        size: u64,
    },
    /// The scroll could not be read.
    #[error("{0}")]
    Scroll(String),
}
