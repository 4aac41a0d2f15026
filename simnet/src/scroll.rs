//! A mesh's data scroll in memory: the lines as the scroll file would hold them (the receipt
//! with its `root_hash`), the RFC 9162 tree over the receipts, and the root after every
//! append, so the simulator can tell in O(1) whether a root is one this history had.

use serde_json::{Map, Value, json};
use vaultmesh_federation::witness::ProvingLog;
use vm_receipts::documents::SignedRoot;
use vm_receipts::merkle::{MerkleTree, ProofError};
use vm_receipts::proof::{ConsistencyProofJson, InclusionProofJson};
use vm_receipts::{Blake3Hash, MeshId, MeshKey, ScrollName, Timestamp, jcs};

/// One history of a scroll.
#[derive(Clone)]
pub struct MemScroll {
    name: ScrollName,
    lines: Vec<String>,
    tree: MerkleTree,
    /// `roots[n]` is the root at size `n` (`roots[0]` the empty tree's).
    roots: Vec<Blake3Hash>,
}

impl MemScroll {
    /// An empty scroll.
    pub fn new(name: ScrollName) -> Self {
        let tree = MerkleTree::new();
        let empty = Blake3Hash::from_bytes(tree.root());
        Self {
            name,
            lines: Vec::new(),
            tree,
            roots: vec![empty],
        }
    }

    /// Its name.
    pub fn name(&self) -> &ScrollName {
        &self.name
    }

    /// Receipts held.
    pub fn len(&self) -> u64 {
        self.lines.len() as u64
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The root at `size`, if this history reached it.
    pub fn root_at(&self, size: u64) -> Option<Blake3Hash> {
        usize::try_from(size)
            .ok()
            .and_then(|i| self.roots.get(i))
            .copied()
    }

    /// Whether this history had `root` at `size`.
    pub fn had(&self, size: u64, root: &Blake3Hash) -> bool {
        self.root_at(size).as_ref() == Some(root)
    }

    /// Appends a receipt (a JSON object without `root_hash`), as the scroll file does.
    pub fn append(&mut self, mut receipt: Map<String, Value>) {
        let leaf = jcs::to_vec(&Value::Object(receipt.clone())).unwrap_or_default();
        self.tree.append(&leaf);
        let root = Blake3Hash::from_bytes(self.tree.root());
        self.roots.push(root);
        receipt.insert("root_hash".into(), json!(root));
        let line = jcs::to_vec(&Value::Object(receipt)).unwrap_or_default();
        self.lines.push(String::from_utf8(line).unwrap_or_default());
    }

    /// Appends a receipt of the simulated mesh's own activity: `tag` and `n` make it unique,
    /// so two forks that append "the same number" of receipts still diverge.
    pub fn append_event(&mut self, at: Timestamp, tag: &str, n: u64) {
        let mut r = Map::new();
        r.insert("type".into(), json!("compliance_check"));
        r.insert("timestamp".into(), json!(at));
        r.insert("check".into(), json!(format!("{tag}-{n}")));
        r.insert("schema_version".into(), json!("1.0.0"));
        self.append(r);
    }

    /// Cuts the history back to `size` receipts (a rewrite starts here).
    pub fn truncate(&mut self, size: u64) {
        let keep = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(self.lines.len());
        self.lines.truncate(keep);
        self.roots.truncate(keep + 1);
        self.tree.truncate(keep as u64);
    }

    /// The stored line of receipt `sequence`.
    pub fn line(&self, sequence: u64) -> Option<&str> {
        usize::try_from(sequence)
            .ok()
            .and_then(|i| self.lines.get(i))
            .map(String::as_str)
    }

    /// Inclusion of `sequence` in the tree of `size`.
    pub fn prove_inclusion(
        &self,
        sequence: u64,
        size: u64,
    ) -> Result<InclusionProofJson, ProofError> {
        self.tree.prove_inclusion(sequence, size).map(Into::into)
    }

    /// Consistency from `old` to `new`.
    pub fn prove_consistency(
        &self,
        old: u64,
        new: u64,
    ) -> Result<ConsistencyProofJson, ProofError> {
        self.tree.prove_consistency(old, new).map(Into::into)
    }

    /// Signs the current root.
    pub fn sign_root(&self, key: &MeshKey, me: &MeshId, now: Timestamp) -> SignedRoot {
        let size = self.len();
        let root = self.roots[self.lines.len()];
        SignedRoot::new(key, me.clone(), self.name.clone(), size, root, now)
            .expect("a root statement is always signable")
    }
}

impl ProvingLog for MemScroll {
    fn size(&self) -> u64 {
        MemScroll::len(self)
    }
    fn root_at(&self, size: u64) -> Result<Blake3Hash, String> {
        MemScroll::root_at(self, size).ok_or_else(|| format!("no root at size {size}"))
    }
    fn prove_consistency(&self, old: u64, new: u64) -> Result<ConsistencyProofJson, String> {
        MemScroll::prove_consistency(self, old, new).map_err(|e| e.to_string())
    }
    fn line(&self, sequence: u64) -> Result<String, String> {
        MemScroll::line(self, sequence)
            .map(str::to_owned)
            .ok_or_else(|| format!("no receipt {sequence}"))
    }
    fn prove_inclusion(&self, sequence: u64, size: u64) -> Result<InclusionProofJson, String> {
        MemScroll::prove_inclusion(self, sequence, size).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_by_size_follow_the_tree_through_truncation() {
        let mut s = MemScroll::new("Compliance".parse().expect("name"));
        let t = Timestamp::from_unix(1_765_015_200).expect("time");
        for i in 0..10 {
            s.append_event(t, "a", i);
        }
        let r5 = s.root_at(5).expect("root");
        let r10 = s.root_at(10).expect("root");
        s.truncate(5);
        assert_eq!(s.len(), 5);
        assert!(s.had(5, &r5));
        s.append_event(t, "b", 5);
        assert_eq!(s.len(), 6);
        for i in 6..10 {
            s.append_event(t, "b", i);
        }
        assert!(!s.had(10, &r10), "a rewritten history has another root");
        let proof = s.prove_consistency(5, 10).expect("proof");
        proof
            .verify(&r5, &s.root_at(10).expect("root"))
            .expect("the shared prefix is consistent");
    }
}
