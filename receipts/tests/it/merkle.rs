//! Tests of the RFC 9162 Merkle log: published RFC 6962 vectors (with a SHA-256 hasher
//! defined here, which also shows the tree is generic), an exhaustive comparison with a
//! naive implementation written straight from the RFC's recursive definitions, one-bit
//! corruption, truncation, and the O(log n) cost of proofs.

use std::cell::Cell;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use vm_receipts::merkle::{
    Blake3Hasher, ConsistencyProof, Digest, InclusionProof, MerkleTree, ProofError, TreeHasher,
    verify_consistency, verify_inclusion,
};

// ---------------------------------------------------------------------------------------
// Hashers
// ---------------------------------------------------------------------------------------

/// RFC 6962 hashing: leaf = SHA-256(0x00 ‖ d), node = SHA-256(0x01 ‖ l ‖ r),
/// empty = SHA-256("").
struct Rfc6962;

impl TreeHasher for Rfc6962 {
    fn empty() -> Digest {
        Sha256::digest(b"").into()
    }

    fn leaf(data: &[u8]) -> Digest {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(data);
        h.finalize().into()
    }

    fn node(left: &Digest, right: &Digest) -> Digest {
        let mut h = Sha256::new();
        h.update([0x01]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    }
}

type B3 = Blake3Hasher;

thread_local! {
    static LEAF_CALLS: Cell<u64> = const { Cell::new(0) };
    static NODE_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Blake3 hasher that counts its calls (per thread, so parallel tests do not interfere).
struct Counting;

impl TreeHasher for Counting {
    fn empty() -> Digest {
        B3::empty()
    }

    fn leaf(data: &[u8]) -> Digest {
        LEAF_CALLS.with(|c| c.set(c.get() + 1));
        B3::leaf(data)
    }

    fn node(left: &Digest, right: &Digest) -> Digest {
        NODE_CALLS.with(|c| c.set(c.get() + 1));
        B3::node(left, right)
    }
}

fn reset_counts() {
    LEAF_CALLS.with(|c| c.set(0));
    NODE_CALLS.with(|c| c.set(0));
}

fn counts() -> (u64, u64) {
    (LEAF_CALLS.with(Cell::get), NODE_CALLS.with(Cell::get))
}

// ---------------------------------------------------------------------------------------
// Naive reference, straight from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1
// ---------------------------------------------------------------------------------------

/// Largest power of two strictly below `n` (n >= 2).
fn k_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
fn naive_mth<H: TreeHasher>(d: &[Digest]) -> Digest {
    match d {
        [] => H::empty(),
        [one] => *one,
        _ => {
            let k = k_below(d.len());
            H::node(&naive_mth::<H>(&d[..k]), &naive_mth::<H>(&d[k..]))
        }
    }
}

/// PATH(m, D[n]).
fn naive_path<H: TreeHasher>(m: usize, d: &[Digest]) -> Vec<Digest> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = k_below(d.len());
    if m < k {
        let mut p = naive_path::<H>(m, &d[..k]);
        p.push(naive_mth::<H>(&d[k..]));
        p
    } else {
        let mut p = naive_path::<H>(m - k, &d[k..]);
        p.push(naive_mth::<H>(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
fn naive_proof<H: TreeHasher>(m: usize, d: &[Digest]) -> Vec<Digest> {
    naive_subproof::<H>(m, d, true)
}

fn naive_subproof<H: TreeHasher>(m: usize, d: &[Digest], b: bool) -> Vec<Digest> {
    let n = d.len();
    if m == n {
        return if b {
            Vec::new()
        } else {
            vec![naive_mth::<H>(d)]
        };
    }
    let k = k_below(n);
    if m <= k {
        let mut p = naive_subproof::<H>(m, &d[..k], b);
        p.push(naive_mth::<H>(&d[k..]));
        p
    } else {
        let mut p = naive_subproof::<H>(m - k, &d[k..], false);
        p.push(naive_mth::<H>(&d[..k]));
        p
    }
}

/// Side of every PATH(m, D[n]) entry, bottom first: `true` = the sibling is on the left.
/// The same recursion as `naive_path`, on sizes only, so it works for any u64 size.
fn path_shape(m: u64, n: u64) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    let mut s = if m < k {
        path_shape(m, k)
    } else {
        path_shape(m - k, n - k)
    };
    s.push(m >= k);
    s
}

/// Kind of every PROOF(m, D[n]) entry, bottom first: 0 = right sibling, 1 = left sibling,
/// 2 = root of a subtree of the old tree (SUBPROOF's `MTH(D[m])` base case).
fn proof_shape(m: u64, n: u64, b: bool) -> Vec<u8> {
    if m == n {
        return if b { Vec::new() } else { vec![2] };
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    if m <= k {
        let mut s = proof_shape(m, k, b);
        s.push(0);
        s
    } else {
        let mut s = proof_shape(m - k, n - k, false);
        s.push(1);
        s
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn h(hex_str: &str) -> Digest {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).expect("test vector is 32 bytes of hex");
    out
}

fn hashes(hex_strs: &[&str]) -> Vec<Digest> {
    hex_strs.iter().map(|s| h(s)).collect()
}

fn flip(mut d: Digest, bit: usize) -> Digest {
    d[bit / 8] ^= 1 << (bit % 8);
    d
}

fn leaf_data(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

/// A blake3 tree of `n` leaves with data `leaf_data(i)`, and its leaf hashes computed
/// independently of the tree.
fn blake3_tree(n: u64) -> (MerkleTree, Vec<Digest>) {
    let mut tree = MerkleTree::new();
    let mut leaves = Vec::new();
    for i in 0..n {
        assert_eq!(tree.append(&leaf_data(i)), i);
        leaves.push(B3::leaf(&leaf_data(i)));
    }
    (tree, leaves)
}

fn idx(i: u64) -> usize {
    usize::try_from(i).expect("test sizes fit in usize")
}

// ---------------------------------------------------------------------------------------
// Published RFC 6962 vectors
// ---------------------------------------------------------------------------------------
//
// Source: github.com/transparency-dev/merkle, `testonly/constants.go` (LeafInputs,
// NodeHashes, RootHashes, EmptyRootHash) and `proof/verify_test.go` (inclusionProofs,
// consistencyProofs, sha256SomeHash). The same data is in certificate-transparency-go and
// the C++ certificate-transparency `merkle_tree_test.cc`. In `verify_test.go` inclusion
// vectors use 1-based leaf numbers; they are converted to 0-based indices here.

const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots for tree sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Complete-subtree hashes of the 8-leaf tree: `NODE_HASHES[level][index]`.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `sha256SomeHash` of verify_test.go: an arbitrary hash that is in no tree.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

/// (leaf_index, tree_size, path) from verify_test.go `inclusionProofs`.
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old_size, new_size, path) from verify_test.go `consistencyProofs`.
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn rfc6962_tree() -> MerkleTree<Rfc6962> {
    let mut tree = MerkleTree::<Rfc6962>::new();
    for (i, input) in LEAF_INPUTS.iter().enumerate() {
        let data = hex::decode(input).expect("leaf input is hex");
        assert_eq!(tree.append(&data), i as u64);
    }
    tree
}

fn rfc6962_root(size: u64) -> Digest {
    h(ROOTS[idx(size)])
}

fn rfc6962_leaf(i: u64) -> Digest {
    Rfc6962::leaf(&hex::decode(LEAF_INPUTS[idx(i)]).expect("leaf input is hex"))
}

/// `NodeHashes()[level][index]` of the 8-leaf tree.
fn nh(level: usize, index: usize) -> Digest {
    h(NODE_HASHES[level][index])
}

#[test]
fn rfc6962_roots_for_every_size() -> Result<(), ProofError> {
    let mut tree = MerkleTree::<Rfc6962>::new();
    assert_eq!(tree.root(), rfc6962_root(0));
    assert_eq!(Rfc6962::empty(), rfc6962_root(0));
    for (i, input) in LEAF_INPUTS.iter().enumerate() {
        tree.append(&hex::decode(input).expect("leaf input is hex"));
        assert_eq!(
            tree.root(),
            rfc6962_root(i as u64 + 1),
            "root after {} leaves",
            i + 1
        );
    }
    for size in 0..=8 {
        assert_eq!(tree.root_at(size)?, rfc6962_root(size), "root_at({size})");
    }
    for (i, expected) in NODE_HASHES[0].iter().enumerate() {
        assert_eq!(tree.leaf_hash(i as u64), Some(h(expected)));
    }
    assert_eq!(tree.leaf_hash(8), None);
    Ok(())
}

#[test]
fn rfc6962_published_inclusion_proofs() -> Result<(), ProofError> {
    let tree = rfc6962_tree();
    for (leaf_index, tree_size, path) in INCLUSION_PROOFS {
        let proof = tree.prove_inclusion(leaf_index, tree_size)?;
        let want = InclusionProof {
            leaf_index,
            tree_size,
            path: hashes(path),
        };
        assert_eq!(proof, want);
        verify_inclusion::<Rfc6962>(&proof, &rfc6962_leaf(leaf_index), &rfc6962_root(tree_size))?;
    }
    Ok(())
}

#[test]
fn rfc6962_published_consistency_proofs() -> Result<(), ProofError> {
    let tree = rfc6962_tree();
    for (old_size, new_size, path) in CONSISTENCY_PROOFS {
        let proof = tree.prove_consistency(old_size, new_size)?;
        let want = ConsistencyProof {
            old_size,
            new_size,
            path: hashes(path),
        };
        assert_eq!(proof, want);
        verify_consistency::<Rfc6962>(&proof, &rfc6962_root(old_size), &rfc6962_root(new_size))?;
    }
    Ok(())
}

/// The node-level expectations of transparency-dev/merkle `proof/proof_test.go`
/// (TestInclusion / TestConsistency) for sizes up to 8, spelled as NodeHashes entries.
/// `l` is their "rehash" case: MTH(D[4:7]) = node(i, j) is not a stored node.
#[test]
fn rfc6962_node_level_proof_vectors() -> Result<(), ProofError> {
    let tree = rfc6962_tree();
    let l = Rfc6962::node(&nh(1, 2), &nh(0, 6));
    let inclusion: Vec<(u64, u64, Vec<Digest>)> = vec![
        (0, 1, vec![]),
        (0, 2, vec![nh(0, 1)]),
        (1, 2, vec![nh(0, 0)]),
        (1, 3, vec![nh(0, 0), nh(0, 2)]),
        (0, 7, vec![nh(0, 1), nh(1, 1), l]),
        (1, 7, vec![nh(0, 0), nh(1, 1), l]),
        (2, 7, vec![nh(0, 3), nh(1, 0), l]),
        (3, 7, vec![nh(0, 2), nh(1, 0), l]),
        (4, 7, vec![nh(0, 5), nh(0, 6), nh(2, 0)]),
        (5, 7, vec![nh(0, 4), nh(0, 6), nh(2, 0)]),
        (6, 7, vec![nh(1, 2), nh(2, 0)]),
        (2, 4, vec![nh(0, 3), nh(1, 0)]),
        (3, 5, vec![nh(0, 2), nh(1, 0), nh(0, 4)]),
        (3, 6, vec![nh(0, 2), nh(1, 0), nh(1, 2)]),
        (4, 6, vec![nh(0, 5), nh(2, 0)]),
    ];
    for (index, size, path) in inclusion {
        let proof = tree.prove_inclusion(index, size)?;
        assert_eq!(proof.path, path, "inclusion {index} in {size}");
        verify_inclusion::<Rfc6962>(&proof, &nh(0, idx(index)), &rfc6962_root(size))?;
    }
    for (size, index) in [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)] {
        assert_eq!(
            tree.prove_inclusion(index, size),
            Err(ProofError::LeafIndexOutOfRange {
                leaf_index: index,
                tree_size: size
            })
        );
    }

    let consistency: Vec<(u64, u64, Vec<Digest>)> = vec![
        (1, 2, vec![nh(0, 1)]),
        (1, 4, vec![nh(0, 1), nh(1, 1)]),
        (1, 6, vec![nh(0, 1), nh(1, 1), nh(1, 2)]),
        (2, 3, vec![nh(0, 2)]),
        (2, 8, vec![nh(1, 1), nh(2, 1)]),
        (3, 7, vec![nh(0, 2), nh(0, 3), nh(1, 0), l]),
        (4, 7, vec![l]),
        (5, 7, vec![nh(0, 4), nh(0, 5), nh(0, 6), nh(2, 0)]),
        (6, 7, vec![nh(1, 2), nh(0, 6), nh(2, 0)]),
        (7, 8, vec![nh(0, 6), nh(0, 7), nh(1, 2), nh(2, 0)]),
        (1, 1, vec![]),
        (2, 2, vec![]),
        (3, 3, vec![]),
        (4, 4, vec![]),
        (5, 5, vec![]),
        (7, 7, vec![]),
        (8, 8, vec![]),
        (2, 4, vec![nh(1, 1)]),
        (3, 5, vec![nh(0, 2), nh(0, 3), nh(1, 0), nh(0, 4)]),
        (3, 6, vec![nh(0, 2), nh(0, 3), nh(1, 0), nh(1, 2)]),
        (4, 6, vec![nh(1, 2)]),
        (1, 7, vec![nh(0, 1), nh(1, 1), l]),
    ];
    for (old, new, path) in consistency {
        let proof = tree.prove_consistency(old, new)?;
        assert_eq!(proof.path, path, "consistency {old} -> {new}");
        verify_consistency::<Rfc6962>(&proof, &rfc6962_root(old), &rfc6962_root(new))?;
    }
    assert_eq!(
        tree.prove_consistency(5, 0),
        Err(ProofError::OldSizeAboveNew {
            old_size: 5,
            new_size: 0
        })
    );
    assert_eq!(
        tree.prove_consistency(9, 8),
        Err(ProofError::OldSizeAboveNew {
            old_size: 9,
            new_size: 8
        })
    );
    Ok(())
}

/// The larger node-level cases of `proof/proof_test.go` ("rehashes in the middle"),
/// checked on a blake3 tree against naive subtree hashes: `id(level, index)` is the
/// perfect subtree over leaves `[index·2^level, (index+1)·2^level)`, and a rehash run folds
/// its ids as Go's `Nodes.Rehash` does (each later id becomes the left child).
#[test]
fn node_level_vectors_with_rehash_runs() -> Result<(), ProofError> {
    let (tree, leaves) = blake3_tree(96);
    let id =
        |level: usize, index: usize| naive_mth::<B3>(&leaves[index << level..(index + 1) << level]);
    let rehash = |ids: &[(usize, usize)]| {
        let mut acc = id(ids[0].0, ids[0].1);
        for &(level, index) in &ids[1..] {
            acc = B3::node(&id(level, index), &acc);
        }
        acc
    };
    let inclusion = [
        (
            10,
            15,
            vec![id(0, 11), id(1, 4), rehash(&[(0, 14), (1, 6)]), id(3, 0)],
        ),
        (
            24,
            31,
            vec![
                id(0, 25),
                id(1, 13),
                rehash(&[(0, 30), (1, 14)]),
                id(3, 2),
                id(4, 0),
            ],
        ),
        (
            81,
            95,
            vec![
                id(0, 80),
                id(1, 41),
                id(2, 21),
                rehash(&[(0, 94), (1, 46), (2, 22)]),
                id(4, 4),
                id(6, 0),
            ],
        ),
    ];
    for (index, size, path) in inclusion {
        assert_eq!(
            tree.prove_inclusion(index, size)?.path,
            path,
            "{index} in {size}"
        );
    }
    let consistency = [
        (
            10,
            15,
            vec![id(1, 4), id(1, 5), rehash(&[(0, 14), (1, 6)]), id(3, 0)],
        ),
        (
            24,
            31,
            vec![id(3, 2), rehash(&[(0, 30), (1, 14), (2, 6)]), id(4, 0)],
        ),
        (
            81,
            95,
            vec![
                id(0, 80),
                id(0, 81),
                id(1, 41),
                id(2, 21),
                rehash(&[(0, 94), (1, 46), (2, 22)]),
                id(4, 4),
                id(6, 0),
            ],
        ),
    ];
    for (old, new, path) in consistency {
        assert_eq!(
            tree.prove_consistency(old, new)?.path,
            path,
            "{old} -> {new}"
        );
    }
    Ok(())
}

/// The corruptions of verify_test.go `corruptInclusionProof`, on every published proof.
#[test]
fn rfc6962_inclusion_corruptions_are_rejected() {
    let some = h(SOME_HASH);
    for (leaf_index, tree_size, path) in INCLUSION_PROOFS {
        let path = hashes(path);
        let root = rfc6962_root(tree_size);
        let leaf = rfc6962_leaf(leaf_index);
        let with = |leaf_index: u64, tree_size: u64, path: &[Digest]| InclusionProof {
            leaf_index,
            tree_size,
            path: path.to_vec(),
        };
        let ok = with(leaf_index, tree_size, &path);
        let with_path = |p: &[Digest]| with(leaf_index, tree_size, p);
        assert_eq!(verify_inclusion::<Rfc6962>(&ok, &leaf, &root), Ok(()));

        let (zero, p) = ([0; 32], path.as_slice());
        let mut probes = vec![
            ("index - 1", with(leaf_index.wrapping_sub(1), tree_size, p)),
            ("index + 1", with(leaf_index + 1, tree_size, p)),
            ("index ^ 2", with(leaf_index ^ 2, tree_size, p)),
            ("size * 2", with(leaf_index, tree_size * 2, p)),
            ("size / 2", with(leaf_index, tree_size / 2, p)),
            ("trailing garbage", with_path(&[p, &[zero]].concat())),
            ("trailing root", with_path(&[p, &[root]].concat())),
            ("preceding garbage", with_path(&[&[zero], p].concat())),
            ("preceding root", with_path(&[&[root], p].concat())),
        ];
        if let Some((_, rest)) = p.split_last() {
            probes.push(("removed component", with_path(rest)));
        }
        if p.len() > 1 {
            probes.push((
                "inserted component",
                with_path(&[&p[..1], &[some], &p[1..]].concat()),
            ));
        }
        for i in 0..p.len() {
            let mut wrong = path.clone();
            wrong[i][0] ^= 8;
            probes.push(("a proof entry with bit 3 flipped", with_path(&wrong)));
        }
        for (desc, proof) in probes {
            assert!(
                verify_inclusion::<Rfc6962>(&proof, &leaf, &root).is_err(),
                "{desc} accepted for leaf {leaf_index} of {tree_size}"
            );
        }
        let wrong_leaf = Rfc6962::leaf(b"WrongLeaf");
        assert!(verify_inclusion::<Rfc6962>(&ok, &wrong_leaf, &root).is_err());
        assert!(verify_inclusion::<Rfc6962>(&ok, &leaf, &rfc6962_root(0)).is_err());
        assert!(verify_inclusion::<Rfc6962>(&ok, &leaf, &some).is_err());
    }
}

/// The corruptions of verify_test.go `corruptConsistencyProof`, on every non-trivial
/// published proof.
#[test]
fn rfc6962_consistency_corruptions_are_rejected() {
    let some = h(SOME_HASH);
    for (old, new, path) in CONSISTENCY_PROOFS {
        let path = hashes(path);
        if path.is_empty() {
            continue;
        }
        let (r1, r2) = (rfc6962_root(old), rfc6962_root(new));
        let with = |old_size: u64, new_size: u64, path: &[Digest]| ConsistencyProof {
            old_size,
            new_size,
            path: path.to_vec(),
        };
        let with_path = |p: &[Digest]| with(old, new, p);
        let ok = with_path(&path);
        assert_eq!(verify_consistency::<Rfc6962>(&ok, &r1, &r2), Ok(()));

        let (zero, p) = ([0; 32], path.as_slice());
        let mut probes = vec![
            ("old - 1", with(old - 1, new, p)),
            ("old + 1", with(old + 1, new, p)),
            ("old ^ 2", with(old ^ 2, new, p)),
            ("new * 2", with(old, new * 2, p)),
            ("new / 2", with(old, new / 2, p)),
            ("empty proof", with_path(&[])),
            ("trailing garbage", with_path(&[p, &[zero]].concat())),
            ("trailing root1", with_path(&[p, &[r1]].concat())),
            ("trailing root2", with_path(&[p, &[r2]].concat())),
            ("preceding garbage", with_path(&[&[zero], p].concat())),
            ("preceding root1", with_path(&[&[r1], p].concat())),
            ("preceding root2", with_path(&[&[r2], p].concat())),
            ("preceding proof[0]", with_path(&[&p[..1], p].concat())),
            ("truncated proof", with_path(&p[..p.len() - 1])),
        ];
        for i in 0..p.len() {
            let mut wrong = path.clone();
            wrong[i][0] ^= 16;
            probes.push(("a proof entry with bit 4 flipped", with_path(&wrong)));
        }
        for (desc, proof) in probes {
            assert!(
                verify_consistency::<Rfc6962>(&proof, &r1, &r2).is_err(),
                "{desc} accepted for {old} -> {new}"
            );
        }
        for (desc, a, b) in [
            ("wrong root1", some, r2),
            ("wrong root2", r1, some),
            ("swapped roots", r2, r1),
        ] {
            assert!(
                verify_consistency::<Rfc6962>(&ok, &a, &b).is_err(),
                "{desc} accepted for {old} -> {new}"
            );
        }
    }
}

/// verify_test.go `TestVerifyInclusion(SingleEntry)` and `TestVerifyConsistency` tables,
/// adapted to fixed-size digests and to refusing old size 0.
#[test]
fn verifier_edge_cases() {
    let leaf = Rfc6962::leaf(b"data");
    let other = h(SOME_HASH);
    let single = InclusionProof {
        leaf_index: 0,
        tree_size: 1,
        path: vec![],
    };
    // A one-leaf tree's root is its leaf hash.
    assert_eq!(verify_inclusion::<Rfc6962>(&single, &leaf, &leaf), Ok(()));
    assert_eq!(
        verify_inclusion::<Rfc6962>(&single, &leaf, &other),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_inclusion::<Rfc6962>(&single, &other, &leaf),
        Err(ProofError::RootMismatch)
    );
    for (leaf_index, tree_size) in [(0, 0), (1, 0), (2, 1), (1, 1), (5, 5), (9, 5)] {
        let p = InclusionProof {
            leaf_index,
            tree_size,
            path: vec![],
        };
        assert_eq!(
            verify_inclusion::<Rfc6962>(&p, &leaf, &leaf),
            Err(ProofError::LeafIndexOutOfRange {
                leaf_index,
                tree_size
            })
        );
    }

    let (r1, r2) = (h(ROOTS[1]), h(ROOTS[2]));
    let c = |old_size, new_size, path: Vec<Digest>| ConsistencyProof {
        old_size,
        new_size,
        path,
    };
    let v = |p: &ConsistencyProof, a: &Digest, b: &Digest| verify_consistency::<Rfc6962>(p, a, b);
    assert_eq!(v(&c(0, 0, vec![]), &r1, &r1), Err(ProofError::EmptyOldTree));
    assert_eq!(v(&c(0, 1, vec![]), &r1, &r2), Err(ProofError::EmptyOldTree));
    assert_eq!(
        v(&c(0, 5, vec![r1]), &r1, &r2),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(v(&c(1, 1, vec![]), &r2, &r2), Ok(()));
    assert_eq!(
        v(&c(1, 1, vec![]), &r1, &r2),
        Err(ProofError::SameSizeRootsDiffer { size: 1 })
    );
    assert_eq!(
        v(&c(1, 1, vec![r1]), &r1, &r1),
        Err(ProofError::PathLength {
            got: 1,
            expected: 0
        })
    );
    assert_eq!(
        v(&c(1, 0, vec![]), &r1, &r2),
        Err(ProofError::OldSizeAboveNew {
            old_size: 1,
            new_size: 0
        })
    );
    assert_eq!(
        v(&c(2, 1, vec![]), &r1, &r2),
        Err(ProofError::OldSizeAboveNew {
            old_size: 2,
            new_size: 1
        })
    );
    assert_eq!(
        v(&c(1, 2, vec![]), &r1, &r2),
        Err(ProofError::PathLength {
            got: 0,
            expected: 1
        })
    );
    // The right length but a wrong old-tree node: the recomputed old root is caught first.
    let tree = rfc6962_tree();
    let mut p = tree.prove_consistency(6, 8).expect("sizes are in the tree");
    assert_eq!(v(&p, &rfc6962_root(6), &rfc6962_root(8)), Ok(()));
    assert_eq!(
        v(&p, &rfc6962_root(5), &rfc6962_root(8)),
        Err(ProofError::OldRootMismatch)
    );
    assert_eq!(
        v(&p, &rfc6962_root(6), &rfc6962_root(7)),
        Err(ProofError::RootMismatch)
    );
    p.path[0][31] ^= 1;
    assert_eq!(
        v(&p, &rfc6962_root(6), &rfc6962_root(8)),
        Err(ProofError::OldRootMismatch)
    );
}

#[test]
fn builder_errors_and_messages() {
    let (tree, _) = blake3_tree(10);
    assert_eq!(
        tree.prove_inclusion(9, 5).map_err(|e| e.to_string()),
        Err("leaf index 9 is not below tree size 5".to_owned())
    );
    assert_eq!(
        tree.prove_inclusion(3, 12).map_err(|e| e.to_string()),
        Err("tree size 12 is beyond the log's 10 leaves".to_owned())
    );
    assert_eq!(
        tree.root_at(11),
        Err(ProofError::SizeBeyondLog { size: 11, len: 10 })
    );
    assert_eq!(
        tree.prove_consistency(0, 5).map_err(|e| e.to_string()),
        Err("old size 0 has no consistency proof".to_owned())
    );
    assert_eq!(tree.prove_consistency(0, 0), Err(ProofError::EmptyOldTree));
    assert_eq!(
        tree.prove_consistency(7, 5).map_err(|e| e.to_string()),
        Err("old size 7 is above new size 5".to_owned())
    );
    assert_eq!(
        tree.prove_consistency(5, 11),
        Err(ProofError::SizeBeyondLog { size: 11, len: 10 })
    );
    assert_eq!(
        tree.prove_consistency(11, 11),
        Err(ProofError::SizeBeyondLog { size: 11, len: 10 })
    );
    assert_eq!(
        tree.prove_inclusion(u64::MAX, u64::MAX),
        Err(ProofError::SizeBeyondLog {
            size: u64::MAX,
            len: 10
        })
    );
    assert_eq!(
        tree.prove_consistency(u64::MAX - 1, u64::MAX),
        Err(ProofError::SizeBeyondLog {
            size: u64::MAX,
            len: 10
        })
    );
    assert_eq!(tree.leaf_hash(u64::MAX), None);

    let mut proof = tree.prove_inclusion(4, 10).expect("in range");
    proof.path.pop();
    assert_eq!(
        verify_inclusion::<B3>(&proof, &B3::leaf(&leaf_data(4)), &tree.root())
            .map_err(|e| e.to_string()),
        Err("proof path has 3 hashes, expected 4".to_owned())
    );
    proof.path.push([7; 32]);
    assert_eq!(
        verify_inclusion::<B3>(&proof, &B3::leaf(&leaf_data(4)), &tree.root())
            .map_err(|e| e.to_string()),
        Err("computed root does not match the expected root".to_owned())
    );
    assert_eq!(
        ProofError::OldRootMismatch.to_string(),
        "computed old root does not match the expected old root"
    );
}

/// Arguments at the edges of u64 are answered with errors, never panics or overflow.
#[test]
fn extreme_arguments_do_not_panic() {
    let root = [1; 32];
    for (leaf_index, tree_size) in [
        (u64::MAX - 1, u64::MAX),
        (0, u64::MAX),
        (u64::MAX, u64::MAX),
        (1 << 63, (1 << 63) + 1),
    ] {
        for len in [0, 1, 63, 64, 65, 200] {
            let p = InclusionProof {
                leaf_index,
                tree_size,
                path: vec![[0; 32]; len],
            };
            assert!(verify_inclusion::<B3>(&p, &root, &root).is_err());
        }
    }
    for (old_size, new_size) in [
        (u64::MAX - 1, u64::MAX),
        (1, u64::MAX),
        (u64::MAX, u64::MAX),
        (1 << 63, u64::MAX),
        ((1 << 63) - 1, 1 << 63),
    ] {
        for len in [1, 63, 64, 65, 66, 200] {
            let p = ConsistencyProof {
                old_size,
                new_size,
                path: vec![[0; 32]; len],
            };
            assert!(verify_consistency::<B3>(&p, &root, &[2; 32]).is_err());
        }
    }
    let mut tree: MerkleTree = MerkleTree::default();
    tree.truncate(u64::MAX);
    tree.truncate(0);
    assert!(tree.is_empty());
    tree.append(b"x");
    tree.truncate(u64::MAX);
    assert_eq!(tree.len(), 1);
}

#[test]
fn empty_tree_and_constructors() {
    let tree = MerkleTree::<Rfc6962>::new();
    assert!(tree.is_empty());
    assert_eq!(tree.len(), 0);
    assert_eq!(tree.root(), rfc6962_root(0));
    assert_eq!(tree.root_at(0), Ok(rfc6962_root(0)));
    assert_eq!(tree.leaf_hash(0), None);
    assert_eq!(
        tree.prove_inclusion(0, 0),
        Err(ProofError::LeafIndexOutOfRange {
            leaf_index: 0,
            tree_size: 0
        })
    );
    assert_eq!(
        tree.root_at(1),
        Err(ProofError::SizeBeyondLog { size: 1, len: 0 })
    );

    let default_tree: MerkleTree = MerkleTree::default();
    assert_eq!(default_tree.root(), *blake3::hash(b"").as_bytes());

    // A preallocated tree behaves exactly like a growing one, past its capacity too.
    let mut a: MerkleTree = MerkleTree::with_capacity(5);
    let mut b: MerkleTree = MerkleTree::new();
    for i in 0..40 {
        a.append(&leaf_data(i));
        b.push_leaf_hash(B3::leaf(&leaf_data(i)));
        assert_eq!(a.root(), b.root());
        assert_eq!(a.len(), i + 1);
        assert!(!a.is_empty());
    }
    let c = a.clone();
    assert_eq!(c.root(), a.root());
    assert!(format!("{c:?}").contains("len: 40"));
}

/// Pins the production hashing to its definition, independently of the tree code.
#[test]
fn blake3_hasher_is_domain_separated_blake3() {
    let l = [3u8; 32];
    let r = [4u8; 32];
    assert_eq!(B3::empty(), *blake3::hash(b"").as_bytes());
    assert_eq!(B3::leaf(b"abc"), *blake3::hash(b"\x00abc").as_bytes());
    assert_eq!(B3::leaf(b""), *blake3::hash(b"\x00").as_bytes());
    assert_eq!(
        B3::node(&l, &r),
        *blake3::hash(&[&[1u8][..], &l, &r].concat()).as_bytes()
    );
    let mut tree: MerkleTree = MerkleTree::new();
    tree.append(b"a");
    tree.append(b"b");
    tree.append(b"c");
    let (a, b, c) = (B3::leaf(b"a"), B3::leaf(b"b"), B3::leaf(b"c"));
    assert_eq!(tree.root(), B3::node(&B3::node(&a, &b), &c));
}

// ---------------------------------------------------------------------------------------
// Exhaustive comparison with the naive RFC recursion
// ---------------------------------------------------------------------------------------

const EXHAUSTIVE_N: u64 = 300;

#[test]
fn exhaustive_roots_and_inclusion_match_naive_rfc() -> Result<(), ProofError> {
    let (tree, leaves) = blake3_tree(EXHAUSTIVE_N);
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(tree.leaf_hash(i as u64), Some(*leaf));
    }
    for n in 0..=EXHAUSTIVE_N {
        let d = &leaves[..idx(n)];
        let root = naive_mth::<B3>(d);
        assert_eq!(tree.root_at(n)?, root, "root_at({n})");
        for i in 0..n {
            let proof = tree.prove_inclusion(i, n)?;
            assert_eq!(proof.path, naive_path::<B3>(idx(i), d), "PATH({i}, D[{n}])");
            verify_inclusion::<B3>(&proof, &leaves[idx(i)], &root)?;
        }
    }
    Ok(())
}

#[test]
fn exhaustive_consistency_matches_naive_rfc() -> Result<(), ProofError> {
    let (tree, leaves) = blake3_tree(EXHAUSTIVE_N);
    let roots: Vec<Digest> = (0..=idx(EXHAUSTIVE_N))
        .map(|n| naive_mth::<B3>(&leaves[..n]))
        .collect();
    for n in 1..=EXHAUSTIVE_N {
        let d = &leaves[..idx(n)];
        for m in 1..=n {
            let proof = tree.prove_consistency(m, n)?;
            assert_eq!(
                proof.path,
                naive_proof::<B3>(idx(m), d),
                "PROOF({m}, D[{n}])"
            );
            verify_consistency::<B3>(&proof, &roots[idx(m)], &roots[idx(n)])?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Cost: proofs come from stored hashes in O(log n)
// ---------------------------------------------------------------------------------------

#[test]
fn appends_and_proofs_cost_logarithmic_hashing() -> Result<(), ProofError> {
    const N: u64 = (1 << 14) + (1 << 9) + 37;
    let log_n = u64::from(u64::BITS - N.leading_zeros());
    let mut tree = MerkleTree::<Counting>::new();
    reset_counts();
    for i in 0..N {
        tree.append(&leaf_data(i));
    }
    // Every stored interior node is hashed exactly once: sum over k >= 1 of floor(N / 2^k).
    assert_eq!(counts(), (N, N - u64::from(N.count_ones())));

    let sizes = [1, 2, 3, 5, 255, 256, 257, 1000, 4097, 12345, N - 1, N];
    for &n in &sizes {
        reset_counts();
        tree.root_at(n)?;
        assert!(counts().1 < log_n, "root_at({n}) cost {:?}", counts());
        for i in [0, n / 3, n / 2, n - 1] {
            reset_counts();
            let p = tree.prove_inclusion(i, n)?;
            let (leaf_calls, node_calls) = counts();
            assert_eq!(leaf_calls, 0, "inclusion rehashed a leaf");
            assert!(node_calls < log_n, "inclusion ({i}, {n}) cost {node_calls}");
            assert!(p.path.len() as u64 <= log_n);
        }
        for &m in &sizes {
            if m <= n {
                reset_counts();
                tree.prove_consistency(m, n)?;
                let (leaf_calls, node_calls) = counts();
                assert_eq!(leaf_calls, 0, "consistency rehashed a leaf");
                assert!(
                    node_calls < log_n,
                    "consistency ({m}, {n}) cost {node_calls}"
                );
            }
        }
    }
    reset_counts();
    tree.root();
    assert!(counts().1 < log_n);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One-bit changes
// ---------------------------------------------------------------------------------------

/// Sizes around powers of two plus a few arbitrary ones, all <= 300.
fn sample_sizes() -> Vec<u64> {
    let mut s: Vec<u64> = (1..=17).collect();
    s.extend([
        31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257, 299, 300,
    ]);
    s
}

fn sample_below(n: u64) -> Vec<u64> {
    let mut s = vec![0, 1, n / 3, n / 2, n.saturating_sub(2), n - 1];
    s.retain(|&i| i < n);
    s.sort_unstable();
    s.dedup();
    s
}

/// Every single-bit flip of every path hash, of the leaf hash and of the root.
#[test]
fn inclusion_hash_bit_flips_are_rejected() -> Result<(), ProofError> {
    let (tree, leaves) = blake3_tree(300);
    for n in sample_sizes() {
        let root = tree.root_at(n)?;
        for i in sample_below(n) {
            let proof = tree.prove_inclusion(i, n)?;
            let leaf = leaves[idx(i)];
            verify_inclusion::<B3>(&proof, &leaf, &root)?;
            for bit in 0..256 {
                for j in 0..proof.path.len() {
                    let mut bad = proof.clone();
                    bad.path[j] = flip(bad.path[j], bit);
                    assert_eq!(
                        verify_inclusion::<B3>(&bad, &leaf, &root),
                        Err(ProofError::RootMismatch)
                    );
                }
                assert!(verify_inclusion::<B3>(&proof, &flip(leaf, bit), &root).is_err());
                assert!(verify_inclusion::<B3>(&proof, &leaf, &flip(root, bit)).is_err());
            }
        }
    }
    Ok(())
}

#[test]
fn consistency_hash_bit_flips_are_rejected() -> Result<(), ProofError> {
    let (tree, _) = blake3_tree(300);
    for n in sample_sizes() {
        let new_root = tree.root_at(n)?;
        for m in sample_below(n + 1).into_iter().filter(|&m| m > 0) {
            let old_root = tree.root_at(m)?;
            let proof = tree.prove_consistency(m, n)?;
            verify_consistency::<B3>(&proof, &old_root, &new_root)?;
            for bit in 0..256 {
                for j in 0..proof.path.len() {
                    let mut bad = proof.clone();
                    bad.path[j] = flip(bad.path[j], bit);
                    assert!(
                        verify_consistency::<B3>(&bad, &old_root, &new_root).is_err(),
                        "{m} -> {n}: bit {bit} of path[{j}]"
                    );
                }
                assert!(verify_consistency::<B3>(&proof, &flip(old_root, bit), &new_root).is_err());
                assert!(verify_consistency::<B3>(&proof, &old_root, &flip(new_root, bit)).is_err());
            }
        }
    }
    Ok(())
}

/// Flipping one bit of `leaf_index` is always rejected. Flipping one bit of `tree_size` is
/// rejected unless both sizes give PATH the same shape: RFC 9162 verification sees only
/// the shape, so e.g. the proof of leaf 0 in a tree of 5 also verifies, against the same
/// root, as leaf 0 of a tree of 7. The size is authenticated by the signed tree head that
/// pairs it with the root, not by the proof. The test pins that this is the only way a
/// flipped size gets through, and that it does happen.
fn check_inclusion_field_flips(tree: &MerkleTree, n: u64, i: u64) -> Result<u64, ProofError> {
    let root = tree.root_at(n)?;
    let leaf = tree.leaf_hash(i).expect("i < n <= len");
    let proof = tree.prove_inclusion(i, n)?;
    let mut size_aliases = 0;
    for bit in 0..64 {
        let mut bad = proof.clone();
        bad.leaf_index ^= 1 << bit;
        assert!(
            verify_inclusion::<B3>(&bad, &leaf, &root).is_err(),
            "leaf {i} of {n} verified as leaf {}",
            bad.leaf_index
        );
        let mut bad = proof.clone();
        bad.tree_size ^= 1 << bit;
        let accepted = verify_inclusion::<B3>(&bad, &leaf, &root).is_ok();
        let same_shape = i < bad.tree_size && path_shape(i, bad.tree_size) == path_shape(i, n);
        assert_eq!(
            accepted, same_shape,
            "leaf {i}: size {n} flipped to {}",
            bad.tree_size
        );
        size_aliases += u64::from(accepted);
    }
    Ok(size_aliases)
}

/// As above for consistency proofs: flipping `old_size` is always rejected, flipping
/// `new_size` only gets through when PROOF keeps its shape (e.g. 1 -> 5 vs 1 -> 7).
fn check_consistency_field_flips(tree: &MerkleTree, m: u64, n: u64) -> Result<u64, ProofError> {
    let (r1, r2) = (tree.root_at(m)?, tree.root_at(n)?);
    let proof = tree.prove_consistency(m, n)?;
    let mut size_aliases = 0;
    for bit in 0..64 {
        let mut bad = proof.clone();
        bad.old_size ^= 1 << bit;
        assert!(
            verify_consistency::<B3>(&bad, &r1, &r2).is_err(),
            "{m} -> {n} verified as {} -> {n}",
            bad.old_size
        );
        let mut bad = proof.clone();
        bad.new_size ^= 1 << bit;
        let accepted = verify_consistency::<B3>(&bad, &r1, &r2).is_ok();
        // Equal sizes short-circuit (no path, roots must match), so no shape there.
        let same_shape = m < n
            && m < bad.new_size
            && proof_shape(m, bad.new_size, true) == proof_shape(m, n, true);
        assert_eq!(
            accepted, same_shape,
            "{m} -> {n}: new size flipped to {}",
            bad.new_size
        );
        size_aliases += u64::from(accepted);
    }
    Ok(size_aliases)
}

#[test]
fn index_and_size_bit_flips_exhaustive_small() -> Result<(), ProofError> {
    let (tree, _) = blake3_tree(64);
    let (mut inclusion_aliases, mut consistency_aliases) = (0, 0);
    for n in 1..=64 {
        for i in 0..n {
            inclusion_aliases += check_inclusion_field_flips(&tree, n, i)?;
        }
        for m in 1..=n {
            consistency_aliases += check_consistency_field_flips(&tree, m, n)?;
        }
    }
    // The shape aliases are real: make sure the test is not vacuous.
    assert!(inclusion_aliases > 0 && consistency_aliases > 0);
    Ok(())
}

/// The concrete alias, spelled out: RFC 9162 proofs do not bind the tree size.
#[test]
fn tree_size_is_bound_by_the_root_not_by_the_proof() -> Result<(), ProofError> {
    let (tree, leaves) = blake3_tree(7);
    let root5 = tree.root_at(5)?;
    let mut proof = tree.prove_inclusion(0, 5)?;
    proof.tree_size = 7; // 5 ^ 0b10
    assert_eq!(verify_inclusion::<B3>(&proof, &leaves[0], &root5), Ok(()));
    let mut proof = tree.prove_consistency(1, 5)?;
    proof.new_size = 7;
    assert_eq!(
        verify_consistency::<B3>(&proof, &tree.root_at(1)?, &root5),
        Ok(())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x3e2c_1e00),
        ..ProptestConfig::default()
    })]

    #[test]
    fn prop_field_flips_in_larger_trees(n in 1u64..=3000, a in any::<u64>(), b in any::<u64>()) {
        let (tree, _) = blake3_tree(n);
        check_inclusion_field_flips(&tree, n, a % n)?;
        let m = 1 + b % n;
        check_consistency_field_flips(&tree, m, n)?;
    }

    #[test]
    fn prop_random_trees_match_naive(
        data in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..700),
        a in any::<u64>(),
        b in any::<u64>(),
        c in any::<u64>(),
    ) {
        let mut tree: MerkleTree = MerkleTree::new();
        for d in &data {
            tree.append(d);
        }
        let leaves: Vec<Digest> = data.iter().map(|d| B3::leaf(d)).collect();
        let len = leaves.len() as u64;
        let n = 1 + a % len;
        let m = 1 + b % n;
        let i = c % n;
        let d = &leaves[..idx(n)];
        let root = naive_mth::<B3>(d);
        prop_assert_eq!(tree.root(), naive_mth::<B3>(&leaves));
        prop_assert_eq!(tree.root_at(n)?, root);
        let inclusion = tree.prove_inclusion(i, n)?;
        prop_assert_eq!(&inclusion.path, &naive_path::<B3>(idx(i), d));
        verify_inclusion::<B3>(&inclusion, &leaves[idx(i)], &root)?;
        let consistency = tree.prove_consistency(m, n)?;
        prop_assert_eq!(&consistency.path, &naive_proof::<B3>(idx(m), d));
        verify_consistency::<B3>(&consistency, &naive_mth::<B3>(&leaves[..idx(m)]), &root)?;
    }

    #[test]
    fn prop_truncate_then_append_matches_fresh(
        first in prop::collection::vec(any::<u32>(), 0..300),
        cut in any::<u64>(),
        second in prop::collection::vec(any::<u32>(), 0..300),
    ) {
        let mut tree: MerkleTree = MerkleTree::new();
        for x in &first {
            tree.append(&x.to_le_bytes());
        }
        let cut = cut % (first.len() as u64 + 1);
        let before = tree.root_at(cut)?;
        tree.truncate(cut);
        prop_assert_eq!(tree.len(), cut);
        prop_assert_eq!(tree.root(), before);
        let mut fresh: MerkleTree = MerkleTree::new();
        for x in first.iter().take(idx(cut)).chain(&second) {
            fresh.append(&x.to_le_bytes());
        }
        for x in &second {
            tree.append(&x.to_le_bytes());
        }
        prop_assert_eq!(tree.len(), fresh.len());
        for s in 0..=tree.len() {
            prop_assert_eq!(tree.root_at(s)?, fresh.root_at(s)?);
        }
        let n = tree.len();
        if n > 0 {
            for i in [0, n / 2, n - 1] {
                prop_assert_eq!(tree.prove_inclusion(i, n)?, fresh.prove_inclusion(i, n)?);
            }
            for m in [1, cut.max(1), n] {
                prop_assert_eq!(tree.prove_consistency(m, n)?, fresh.prove_consistency(m, n)?);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Truncation and history
// ---------------------------------------------------------------------------------------

/// Every cut point of a 70-leaf tree, re-appended with the same and with different data.
#[test]
fn truncate_then_reappend_matches_fresh_tree() -> Result<(), ProofError> {
    const N: u64 = 70;
    let (full, _) = blake3_tree(N);
    for cut in 0..=N {
        let mut same = full.clone();
        same.truncate(cut);
        assert_eq!(same.len(), cut);
        assert_eq!(same.root(), full.root_at(cut)?);
        assert_eq!(same.leaf_hash(cut), None);
        assert_eq!(
            same.root_at(cut + 1),
            Err(ProofError::SizeBeyondLog {
                size: cut + 1,
                len: cut
            })
        );
        let mut other = same.clone();
        let mut fresh_other: MerkleTree = MerkleTree::new();
        for i in 0..N {
            if i >= cut {
                assert_eq!(same.append(&leaf_data(i)), i);
                other.append(&leaf_data(i + 1000));
            }
            fresh_other.append(&leaf_data(if i >= cut { i + 1000 } else { i }));
        }
        for s in 0..=N {
            assert_eq!(same.root_at(s)?, full.root_at(s)?, "cut {cut}, size {s}");
            assert_eq!(
                other.root_at(s)?,
                fresh_other.root_at(s)?,
                "cut {cut}, size {s}"
            );
        }
        for i in 0..N {
            assert_eq!(
                other.prove_inclusion(i, N)?,
                fresh_other.prove_inclusion(i, N)?
            );
        }
        for m in 1..=N {
            assert_eq!(
                other.prove_consistency(m, N)?,
                fresh_other.prove_consistency(m, N)?
            );
        }
    }
    Ok(())
}

/// Roots seen while appending are exactly the historical roots, and every pair of them is
/// provably consistent.
#[test]
fn append_is_consistent_with_history() -> Result<(), ProofError> {
    let mut tree = MerkleTree::<Rfc6962>::new();
    let mut seen = vec![tree.root()];
    for i in 0..200u64 {
        tree.append(&leaf_data(i));
        seen.push(tree.root());
    }
    for (s, root) in seen.iter().enumerate() {
        assert_eq!(tree.root_at(s as u64)?, *root);
    }
    for new in 1..seen.len() {
        for old in 1..=new {
            let proof = tree.prove_consistency(old as u64, new as u64)?;
            verify_consistency::<Rfc6962>(&proof, &seen[old], &seen[new])?;
        }
    }
    Ok(())
}
