//! The witness's checks (DESIGN §7 steps 1–4), without I/O: given a peer's anchor
//! notification, the root last witnessed for that scroll, and the evidence the peer served
//! (a consistency proof and sampled receipts with inclusion proofs), [`check`] says whether
//! the new root can be attested, or what is wrong and with which evidence.
//!
//! The caller has already checked the notification's signature with the key it holds for
//! the peer (the engine checks it again, it is the trust boundary) and that the scroll is
//! shared; step 5 (the attestation, the witness state, receipts) is the engine's.
//!
//! [`core`] is the only caller of [`check`] and [`compare_roots`]: the witness protocol's
//! decisions (scheduling, queues, resends, deadlines, the re-sync, the comparison of every
//! root seen, what is reported) live there, sans-IO, driven by the node and the simulator.
//! [`cycle`] holds the anchor cycle's decisions.

pub mod core;
pub mod cycle;
pub mod evidence;
mod serve;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vm_receipts::documents::{AnchorNotification, DiscrepancyDetails, DiscrepancyType, SignedRoot};
use vm_receipts::jcs::{self, Numbers};
use vm_receipts::merkle::{self, Blake3Hasher, TreeHasher};
use vm_receipts::proof::{ConsistencyProofJson, InclusionProofJson};
use vm_receipts::{Blake3Hash, ScrollName, Timestamp};

use crate::anchor::{self, AnchorCheck, AnchorTrust};
pub use evidence::{ConflictEvidence, EvidenceError, Standing};
pub use serve::{ProvingLog, ServeRefusal, serve_evidence};

/// Most receipts one evidence request may sample.
pub const MAX_SAMPLES: usize = 64;

/// What a witness asks of the mesh it witnesses, for one scroll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequest {
    /// The scroll.
    pub scroll: ScrollName,
    /// The size last witnessed, if any: a consistency proof from it is wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    /// The size of the root being witnessed.
    pub new_size: u64,
    /// Sequences to sample (each below `new_size`).
    pub samples: Vec<u64>,
}

impl EvidenceRequest {
    /// Refuses a request no honest witness makes.
    pub fn check(&self) -> Result<(), String> {
        if self.samples.len() > MAX_SAMPLES {
            return Err(format!("more than {MAX_SAMPLES} samples"));
        }
        if let Some(s) = self.samples.iter().find(|s| **s >= self.new_size) {
            return Err(format!(
                "sample {s} is beyond the tree of {} receipts",
                self.new_size
            ));
        }
        if let Some(old) = self.old_size
            && old > self.new_size
        {
            return Err(format!(
                "old_size {old} is above new_size {}",
                self.new_size
            ));
        }
        Ok(())
    }
}

/// A consistency proof with the root the proving tree has at the old size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    /// The tree's root at `proof.old_size`.
    pub old_root: Blake3Hash,
    /// The proof.
    pub proof: ConsistencyProofJson,
}

/// One sampled receipt: the scroll line as stored, and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Its sequence.
    pub sequence: u64,
    /// The line (the receipt with its `root_hash`).
    pub line: String,
    /// Inclusion in the tree of the witnessed size.
    pub inclusion: InclusionProofJson,
}

/// What the witnessed mesh serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The scroll.
    pub scroll: ScrollName,
    /// The tree size everything is proven against.
    pub new_size: u64,
    /// From the old size asked for (absent when none was asked, or it equals `new_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    /// The samples asked for that exist.
    pub samples: Vec<Sample>,
}

impl Evidence {
    /// Nothing served for `scroll` at `new_size`: no proof, no samples (a refused request,
    /// or a root the signed roots alone decide).
    pub fn empty(scroll: ScrollName, new_size: u64) -> Self {
        Self {
            scroll,
            new_size,
            consistency: None,
            samples: Vec::new(),
        }
    }
}

/// The newest receipt and up to `count − 1` other distinct sequences below `size`, chosen
/// at random (so a mesh cannot guess which receipts will be looked at).
pub fn choose_samples(size: u64, count: usize, rng: &mut impl rand::Rng) -> Vec<u64> {
    if size == 0 || count == 0 {
        return Vec::new();
    }
    let count = count.min(MAX_SAMPLES);
    let mut chosen = vec![size - 1];
    if size <= count as u64 {
        chosen = (0..size).rev().collect();
        return chosen;
    }
    while chosen.len() < count {
        let s = rng.random_range(0..size - 1);
        if !chosen.contains(&s) {
            chosen.push(s);
        }
    }
    chosen
}

/// Everything one check needs.
pub struct CheckInput<'a> {
    /// The notification (its signature already checked).
    pub notification: &'a AnchorNotification,
    /// Pushed by the mesh (`notify`) rather than pulled by us: a pushed root must be fresh.
    pub pushed: bool,
    /// The root last witnessed for this scroll.
    pub previous: Option<&'a SignedRoot>,
    /// The sequences asked for.
    pub requested: &'a [u64],
    /// What the mesh served.
    pub evidence: &'a Evidence,
    /// Our clock.
    pub now: Timestamp,
    /// The drift limit (seconds).
    pub drift_secs: i64,
    /// Keys and TSA certificates for the anchor.
    pub trust: &'a AnchorTrust<'a>,
    /// The schema version agreed for the scroll, if the agreement names one.
    pub schema_version: Option<&'a str>,
}

/// A failed check.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Which seed §6.1 type.
    pub kind: DiscrepancyType,
    /// The seed §6.2 details.
    pub details: DiscrepancyDetails,
    /// What was seen.
    pub evidence: ConflictEvidence,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every check passed.
    Verified {
        /// The anchor as verified.
        anchor: AnchorCheck,
        /// Samples checked.
        samples_checked: u64,
    },
    /// A check failed.
    Discrepancy {
        /// The anchor, if it verified before the failure.
        anchor: Option<AnchorCheck>,
        /// Samples checked before the failure.
        samples_checked: u64,
        /// What failed.
        finding: Box<Finding>,
    },
    /// The notification is older than what was witnessed (delayed or replayed): nothing to
    /// attest and nothing wrong (DESIGN §7: a stale size is a resync signal).
    Stale,
}

fn details(scroll: &ScrollName) -> DiscrepancyDetails {
    DiscrepancyDetails {
        scroll: scroll.clone(),
        claimed_root: None,
        computed_root: None,
        sample_receipts_checked: None,
        first_divergence_at: None,
        extra: Map::new(),
    }
}

/// Runs steps 1–4 of the witness cycle.
pub fn check(input: &CheckInput<'_>) -> Verdict {
    let n = input.notification;
    let root = n.signed_root();
    let mut samples_checked = 0u64;
    let fail = |anchor: Option<AnchorCheck>, samples: u64, finding: Finding| Verdict::Discrepancy {
        anchor,
        samples_checked: samples,
        finding: Box::new(finding),
    };

    // Step 1: the drift check. A pulled root may be as old as the mesh's anchor interval,
    // so only a pushed one must be recent; neither may come from the future.
    let drift = n.timestamp.seconds_since(input.now);
    let age = input.now.seconds_since(n.timestamp);
    if drift > input.drift_secs || (input.pushed && age > input.drift_secs) {
        let mut d = details(&n.scroll);
        d.extra
            .insert("root_timestamp".into(), n.timestamp.to_string().into());
        d.extra
            .insert("witness_time".into(), input.now.to_string().into());
        return fail(
            None,
            0,
            Finding {
                kind: DiscrepancyType::TimestampDrift,
                details: d,
                evidence: ConflictEvidence::TimestampDrift {
                    root,
                    witness_time: input.now,
                    limit_secs: input.drift_secs,
                },
            },
        );
    }

    // Step 2: the anchor.
    let anchor = match anchor::verify(&n.anchor_proof, &root, input.trust, input.now) {
        Ok(a) => a,
        Err(e) => {
            let mut d = details(&n.scroll);
            d.claimed_root = Some(n.root);
            d.extra.insert("error".into(), e.to_string().into());
            return fail(
                None,
                0,
                Finding {
                    kind: DiscrepancyType::AnchorInvalid,
                    details: d,
                    evidence: ConflictEvidence::AnchorInvalid {
                        notification: Box::new(n.clone()),
                        error: e.to_string(),
                    },
                },
            );
        }
    };

    // Step 3: consistency with what was witnessed before.
    if let Some(prev) = input.previous {
        let mismatch = |computed: Option<Blake3Hash>, evidence: ConflictEvidence| {
            let mut d = details(&n.scroll);
            d.claimed_root = Some(prev.root);
            d.computed_root = computed;
            d.extra.insert("witnessed_size".into(), prev.size.into());
            d.extra.insert("new_size".into(), n.size.into());
            Finding {
                kind: DiscrepancyType::RootMismatch,
                details: d,
                evidence,
            }
        };
        if n.size < prev.size {
            // A pushed root older than the one witnessed is a delayed notification: nothing
            // to attest (a stale size is a resync signal). Otherwise the mesh put forward a
            // smaller tree than one it signed: a truncation, and only a claim (an honest
            // mesh whose clock stepped back signs smaller trees with later timestamps too;
            // the witness core re-syncs pushed and gossiped ones before it gets here).
            if input.pushed && n.timestamp <= prev.timestamp {
                return Verdict::Stale;
            }
            return fail(
                Some(anchor),
                0,
                mismatch(
                    None,
                    ConflictEvidence::Truncation {
                        earlier: prev.clone(),
                        later: root,
                    },
                ),
            );
        }
        if n.size == prev.size && n.root != prev.root {
            return fail(
                Some(anchor),
                0,
                mismatch(
                    Some(n.root),
                    ConflictEvidence::ConflictingRoots {
                        earlier: prev.clone(),
                        later: root,
                    },
                ),
            );
        }
        if n.size > prev.size && prev.size > 0 {
            let no_proof = |proof: Option<ConsistencyProofJson>, error: String| {
                mismatch(
                    None,
                    ConflictEvidence::NoConsistencyProof {
                        earlier: prev.clone(),
                        later: root.clone(),
                        proof,
                        error,
                    },
                )
            };
            let Some(c) = &input.evidence.consistency else {
                return fail(
                    Some(anchor),
                    0,
                    no_proof(None, "no consistency proof was served".into()),
                );
            };
            if c.proof.old_size != prev.size || c.proof.new_size != n.size {
                return fail(
                    Some(anchor),
                    0,
                    no_proof(
                        Some(c.proof.clone()),
                        format!(
                            "the proof is for sizes {} → {}, not {} → {}",
                            c.proof.old_size, c.proof.new_size, prev.size, n.size
                        ),
                    ),
                );
            }
            if let Err(e) = c.proof.verify(&c.old_root, &n.root) {
                return fail(
                    Some(anchor),
                    0,
                    no_proof(Some(c.proof.clone()), e.to_string()),
                );
            }
            if c.old_root != prev.root {
                // The mesh's own tree, proven into the root it just signed, has another
                // root at the size it signed before: history before that size changed.
                let mut finding = mismatch(
                    Some(c.old_root),
                    ConflictEvidence::InconsistentExtension {
                        earlier: prev.clone(),
                        later: root,
                        old_root: c.old_root,
                        proof: c.proof.clone(),
                    },
                );
                finding
                    .details
                    .extra
                    .insert("first_divergence_before".into(), prev.size.into());
                return fail(Some(anchor), 0, finding);
            }
        }
    }

    // Step 4: samples against the new root.
    for &sequence in input.requested {
        let sample = input
            .evidence
            .samples
            .iter()
            .find(|s| s.sequence == sequence);
        let result = match sample {
            None => Err((
                DiscrepancyType::SampleMissing,
                "the mesh did not serve it".to_owned(),
            )),
            Some(s) => check_sample(s, &root).map_err(|e| (DiscrepancyType::RootMismatch, e)),
        };
        match result {
            Err((kind, error)) => {
                let mut d = details(&n.scroll);
                d.claimed_root = Some(n.root);
                d.sample_receipts_checked = Some(samples_checked + 1);
                d.first_divergence_at = Some(format!("receipt-sequence-{sequence}"));
                d.extra.insert("error".into(), error.clone().into());
                return fail(
                    Some(anchor),
                    samples_checked,
                    Finding {
                        kind,
                        details: d,
                        evidence: ConflictEvidence::BadSample {
                            root,
                            sequence,
                            line: sample.map(|s| s.line.clone()),
                            inclusion: sample.map(|s| s.inclusion.clone()),
                            error,
                        },
                    },
                );
            }
            Ok(receipt) => {
                samples_checked += 1;
                if let (Some(agreed), Some(Value::String(found))) =
                    (input.schema_version, receipt.get("schema_version"))
                    && major(found) != major(agreed)
                {
                    let mut d = details(&n.scroll);
                    d.sample_receipts_checked = Some(samples_checked);
                    d.first_divergence_at = Some(format!("receipt-sequence-{sequence}"));
                    d.extra.insert("agreed_version".into(), agreed.into());
                    d.extra.insert("found_version".into(), found.clone().into());
                    return fail(
                        Some(anchor),
                        samples_checked,
                        Finding {
                            kind: DiscrepancyType::SchemaIncompatible,
                            details: d,
                            evidence: ConflictEvidence::SchemaIncompatible {
                                root,
                                sequence,
                                agreed: agreed.to_owned(),
                                found: found.clone(),
                            },
                        },
                    );
                }
            }
        }
    }
    Verdict::Verified {
        anchor,
        samples_checked,
    }
}

/// Compares a root of a mesh learned elsewhere (another witness's gossip, a later pull)
/// with one of the same mesh and scroll held before, on the signatures alone. Only two
/// roots of one size with different hashes are a conflict no append-only log has (the
/// evidence is a proof). Roots of different sizes say nothing on their own, whatever their
/// timestamps (a clock step signs a larger tree earlier): whether one extends the other
/// takes a consistency proof from the mesh, which is a witness check's work.
///
/// This is how a split view is caught: a mesh that shows one history to some witnesses and
/// another to the rest passes each witness's own checks, but not the comparison of what the
/// witnesses saw.
pub fn compare_roots(held: &SignedRoot, other: &SignedRoot) -> Option<Finding> {
    if held.mesh_id != other.mesh_id
        || held.scroll != other.scroll
        || held.size != other.size
        || held.root == other.root
    {
        return None;
    }
    let mut d = details(&held.scroll);
    d.claimed_root = Some(held.root);
    d.computed_root = Some(other.root);
    d.extra.insert("held_size".into(), held.size.into());
    d.extra.insert("other_size".into(), other.size.into());
    Some(Finding {
        kind: DiscrepancyType::RootMismatch,
        details: d,
        evidence: ConflictEvidence::ConflictingRoots {
            earlier: held.clone(),
            later: other.clone(),
        },
    })
}

/// The major part of a `MAJOR.MINOR.PATCH` version (the whole text if it has no dot).
fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Recomputes a sample's leaf from its canonical JSON and checks it against `root`; returns
/// the receipt.
fn check_sample(sample: &Sample, root: &SignedRoot) -> Result<Map<String, Value>, String> {
    if sample.inclusion.leaf_index != sample.sequence || sample.inclusion.tree_size != root.size {
        return Err(format!(
            "its proof is for leaf {} of {}, not {} of {}",
            sample.inclusion.leaf_index, sample.inclusion.tree_size, sample.sequence, root.size
        ));
    }
    let value = jcs::parse(sample.line.as_bytes(), Numbers::Any)
        .map_err(|e| format!("the line is not valid JSON: {e}"))?;
    let Value::Object(mut receipt) = value else {
        return Err("the line is not a JSON object".into());
    };
    let claimed = match receipt.remove("root_hash") {
        Some(Value::String(text)) => text
            .parse::<Blake3Hash>()
            .map_err(|e| format!("root_hash: {e}"))?,
        _ => return Err("the line has no root_hash".into()),
    };
    let leaf = jcs::to_vec(&Value::Object(receipt.clone()))
        .map_err(|e| format!("the receipt cannot be canonicalised: {e}"))?;
    merkle::verify_inclusion::<Blake3Hasher>(
        &(&sample.inclusion).into(),
        &Blake3Hasher::leaf(&leaf),
        root.root.as_bytes(),
    )
    .map_err(|e| format!("not in the signed tree: {e}"))?;
    // The newest receipt names the root after it: that is the signed root itself.
    if sample.sequence + 1 == root.size && claimed != root.root {
        return Err(format!(
            "the newest receipt's root_hash {claimed} is not the signed root {}",
            root.root
        ));
    }
    Ok(receipt)
}
