//! Append-only Merkle log in the shape of RFC 9162 §2.1, generic over the hash function.
//!
//! # Hashing
//!
//! The tree hash of a list of leaves `D[n]` is defined recursively (RFC 9162 §2.1.1):
//! `MTH({}) = H::empty()`, `MTH({d}) = H::leaf(d)`, and for `n > 1`, with `k` the largest
//! power of two strictly below `n`, `MTH(D[n]) = H::node(MTH(D[0:k]), MTH(D[k:n]))`.
//! Leaf and node hashes are domain separated (a `0x00` or `0x01` prefix in
//! [`Blake3Hasher`], the production hasher) so that a leaf can never be passed off as an
//! interior node or the other way round. Any [`TreeHasher`] fits; with SHA-256 the tree
//! reproduces the RFC 6962 / Certificate Transparency test vectors.
//!
//! # Storage
//!
//! The tree keeps the hash of every *complete* subtree, level by level: `levels[0]` holds
//! the leaf hashes and `levels[k][i]` is the hash of the perfect, aligned subtree over leaves
//! `[i·2^k, (i+1)·2^k)`. So `levels[k]` always has exactly `len >> k` entries. Appending a
//! leaf pushes it onto `levels[0]` and, while the level it just grew has an even length,
//! combines the last two entries into the level above, which is exactly a binary counter
//! carrying: amortised one node hash per append, at most `log2 n`. Truncating keeps the
//! first `size >> k` entries of each level, which are precisely the subtrees lying entirely
//! below the new size, so the stored levels never go stale.
//!
//! # Why proofs cost O(log n)
//!
//! In the RFC recursion every *left* part `D[0:k]` has a power-of-two size and starts at a
//! multiple of that size, so it is one stored hash. Only a range that ends at the right
//! edge of the tree being proven can be non-perfect; such a range `[start, end)` is split
//! into the perfect aligned chunks given by the binary digits of `end - start` (largest
//! first) and folded right to left, `h = node(chunk, h)`, which is its RFC tree hash
//! because `start` is aligned to the next power of two above the range's width. Walking
//! down an inclusion or consistency proof, the walk leaves the right edge the first time it
//! descends to a left part, and from then on every range is perfect; so each proof does at
//! most one such fold, i.e. at most `log2 n` node hashes plus `O(log n)` lookups. The same
//! fold gives [`MerkleTree::root`] and [`MerkleTree::root_at`]. Leaves are never rehashed
//! and leaf data is never read again.
//!
//! Verification ([`verify_inclusion`], [`verify_consistency`]) follows the algorithms of
//! RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, including the exact path-length checks.
//! Note that those algorithms authenticate the tree size only through the root: the caller
//! must take the size and the root from the same signed tree head.

use std::fmt;
use std::marker::PhantomData;

/// A 32-byte hash: a leaf hash, an interior node hash or a tree root.
pub type Digest = [u8; 32];

/// Domain-separated hashing of a Merkle tree (RFC 9162 §2.1 shape).
pub trait TreeHasher {
    /// Root of the tree with no leaves.
    fn empty() -> Digest;
    /// Hash of one leaf's data; must be domain separated from [`TreeHasher::node`].
    fn leaf(data: &[u8]) -> Digest;
    /// Hash of an interior node from its left and right children.
    fn node(left: &Digest, right: &Digest) -> Digest;
}

/// Production hasher: leaf = blake3(0x00 ‖ data), node = blake3(0x01 ‖ left ‖ right), empty
/// tree = blake3("").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blake3Hasher;

impl TreeHasher for Blake3Hasher {
    fn empty() -> Digest {
        blake3::hash(b"").into()
    }

    fn leaf(data: &[u8]) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[0x00]);
        hasher.update(data);
        hasher.finalize().into()
    }

    fn node(left: &Digest, right: &Digest) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[0x01]);
        hasher.update(left);
        hasher.update(right);
        hasher.finalize().into()
    }
}

/// Why a proof could not be built or did not verify.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree it is claimed to be in.
    #[error("leaf index {leaf_index} is not below tree size {tree_size}")]
    LeafIndexOutOfRange {
        /// The requested or claimed leaf index.
        leaf_index: u64,
        /// The tree size it was checked against.
        tree_size: u64,
    },
    /// A proof or root was asked for a tree size the log has not reached.
    #[error("tree size {size} is beyond the log's {len} leaves")]
    SizeBeyondLog {
        /// The requested tree size.
        size: u64,
        /// The number of leaves in the log.
        len: u64,
    },
    /// A consistency proof was asked for or claimed from a larger to a smaller tree.
    #[error("old size {old_size} is above new size {new_size}")]
    OldSizeAboveNew {
        /// The old (supposedly smaller) tree size.
        old_size: u64,
        /// The new tree size.
        new_size: u64,
    },
    /// Every tree extends the empty tree, so there is nothing to prove or check.
    #[error("old size 0 has no consistency proof")]
    EmptyOldTree,
    /// The proof path does not have the length the sizes and index dictate.
    #[error("proof path has {got} hashes, expected {expected}")]
    PathLength {
        /// Number of hashes in the path.
        got: usize,
        /// Number of hashes the RFC 9162 algorithm consumes for these sizes.
        expected: usize,
    },
    /// The root recomputed from the proof is not the given (new) root.
    #[error("computed root does not match the expected root")]
    RootMismatch,
    /// The old root recomputed from a consistency proof is not the given old root.
    #[error("computed old root does not match the expected old root")]
    OldRootMismatch,
    /// Two trees of the same size can only be consistent if they are the same tree.
    #[error("roots of two trees of the same size {size} differ")]
    SameSizeRootsDiffer {
        /// The common tree size.
        size: u64,
    },
}

/// Proof that a leaf hash is the leaf at `leaf_index` of the tree of `tree_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the proven leaf, counted from 0.
    pub leaf_index: u64,
    /// Size of the tree whose root the proof leads to.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up to the root (RFC 9162 `PATH`).
    pub path: Vec<Digest>,
}

/// Proof that the tree of `new_size` leaves extends the tree of `old_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// Node hashes in RFC 9162 `PROOF` order (deepest first).
    pub path: Vec<Digest>,
}

/// Append-only Merkle log storing every complete subtree hash (see the module docs).
pub struct MerkleTree<H: TreeHasher = Blake3Hasher> {
    /// `levels[k][i]` = hash of leaves `[i·2^k, (i+1)·2^k)`; `levels[0]` is never removed.
    levels: Vec<Vec<Digest>>,
    /// `fn() -> H` keeps the tree `Send + Sync` whatever `H` is: no `H` value is stored.
    hasher: PhantomData<fn() -> H>,
}

// Manual impls: derives would demand `H: Clone` / `H: Debug` though no `H` is stored.
impl<H: TreeHasher> Clone for MerkleTree<H> {
    fn clone(&self) -> Self {
        Self {
            levels: self.levels.clone(),
            hasher: PhantomData,
        }
    }
}

impl<H: TreeHasher> fmt::Debug for MerkleTree<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len())
            .field("levels", &self.levels.len())
            .finish_non_exhaustive()
    }
}

impl<H: TreeHasher> Default for MerkleTree<H> {
    fn default() -> Self {
        Self::new()
    }
}

/// Largest power of two strictly below `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

impl<H: TreeHasher> MerkleTree<H> {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
            hasher: PhantomData,
        }
    }

    /// An empty log with room for `leaves` leaves (and their subtree hashes) before it
    /// reallocates.
    pub fn with_capacity(leaves: usize) -> Self {
        let mut levels = vec![Vec::with_capacity(leaves)];
        let mut width = leaves >> 1;
        while width > 0 {
            levels.push(Vec::with_capacity(width));
            width >>= 1;
        }
        Self {
            levels,
            hasher: PhantomData,
        }
    }

    /// Number of leaves in the log.
    pub fn len(&self) -> u64 {
        self.leaves().len() as u64
    }

    /// Whether the log has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    fn leaves(&self) -> &[Digest] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// Appends a leaf, hashing `leaf_data` with [`TreeHasher::leaf`]; returns its index.
    pub fn append(&mut self, leaf_data: &[u8]) -> u64 {
        self.push_leaf_hash(H::leaf(leaf_data))
    }

    /// Appends an already computed leaf hash; returns its index.
    pub fn push_leaf_hash(&mut self, leaf_hash: Digest) -> u64 {
        let index = self.len();
        let mut carry = leaf_hash;
        let mut level = 0;
        loop {
            if level == self.levels.len() {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                break;
            };
            row.push(carry);
            // An even row length means the new entry completed a pair: its parent subtree
            // is now complete and belongs one level up.
            match row.as_slice() {
                [.., left, right] if row.len() % 2 == 0 => carry = H::node(left, right),
                _ => break,
            }
            level += 1;
        }
        index
    }

    /// The hash of the leaf at `index`, if the log has that many leaves.
    pub fn leaf_hash(&self, index: u64) -> Option<Digest> {
        let index = usize::try_from(index).ok()?;
        self.leaves().get(index).copied()
    }

    /// Root of the whole log. O(log n).
    pub fn root(&self) -> Digest {
        self.range_hash(0, self.len())
    }

    /// Root of the log as it was when it had `size` leaves. O(log n).
    pub fn root_at(&self, size: u64) -> Result<Digest, ProofError> {
        self.check_size(size)?;
        Ok(self.range_hash(0, size))
    }

    /// Proof that leaf `leaf_index` is in the tree of the first `tree_size` leaves
    /// (RFC 9162 `PATH`). O(log n).
    pub fn prove_inclusion(
        &self,
        leaf_index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, ProofError> {
        self.check_size(tree_size)?;
        if leaf_index >= tree_size {
            return Err(ProofError::LeafIndexOutOfRange {
                leaf_index,
                tree_size,
            });
        }
        // Walk down from the root; siblings come out top first, the proof wants them
        // bottom first.
        let mut path = Vec::with_capacity(64 - tree_size.leading_zeros() as usize);
        let (mut lo, mut hi) = (0, tree_size);
        while hi - lo > 1 {
            let mid = lo + split_point(hi - lo);
            if leaf_index < mid {
                path.push(self.range_hash(mid, hi));
                hi = mid;
            } else {
                path.push(self.range_hash(lo, mid));
                lo = mid;
            }
        }
        path.reverse();
        Ok(InclusionProof {
            leaf_index,
            tree_size,
            path,
        })
    }

    /// Proof that the tree of the first `new_size` leaves extends the tree of the first
    /// `old_size` leaves (RFC 9162 `PROOF`). O(log n).
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, ProofError> {
        if old_size == 0 {
            return Err(ProofError::EmptyOldTree);
        }
        if old_size > new_size {
            return Err(ProofError::OldSizeAboveNew { old_size, new_size });
        }
        self.check_size(new_size)?;
        // Iterative SUBPROOF(m, D[lo:hi], whole): `whole` stays true while [lo, hi) is a
        // prefix the verifier already knows the root of.
        let mut path = Vec::with_capacity(66 - new_size.leading_zeros() as usize);
        let (mut lo, mut hi, mut whole) = (0, new_size, true);
        while old_size != hi {
            let mid = lo + split_point(hi - lo);
            if old_size <= mid {
                path.push(self.range_hash(mid, hi));
                hi = mid;
            } else {
                path.push(self.range_hash(lo, mid));
                lo = mid;
                whole = false;
            }
        }
        if !whole {
            path.push(self.range_hash(lo, hi));
        }
        path.reverse();
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }

    /// Drops every leaf at index `size` and above, with the subtree hashes covering them.
    /// Does nothing if the log has at most `size` leaves.
    pub fn truncate(&mut self, size: u64) {
        if size >= self.len() {
            return;
        }
        for (level, row) in (0u32..).zip(self.levels.iter_mut()) {
            // A subtree at this level survives iff it lies entirely below `size`.
            let keep = size.checked_shr(level).unwrap_or(0);
            row.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        let len = self.len();
        if size > len {
            return Err(ProofError::SizeBeyondLog { size, len });
        }
        Ok(())
    }

    /// RFC tree hash of leaves `[start, end)`, from stored subtrees only.
    ///
    /// Callers pass either a perfect aligned range or one whose `start` is a multiple of
    /// the next power of two at or above `end - start` (true of every range in the RFC
    /// recursion), with `end <= len`. Then the chunks below are aligned, hence stored.
    fn range_hash(&self, start: u64, end: u64) -> Digest {
        let mut rest = end - start;
        let mut pos = end;
        let mut acc: Option<Digest> = None;
        // Lowest set bit first = rightmost chunk first, so the fold nests to the right as
        // the RFC's split at the largest power of two does.
        while rest != 0 {
            let level = rest.trailing_zeros();
            pos -= 1 << level;
            let chunk = self.stored(level, pos >> level);
            acc = Some(match acc {
                None => chunk,
                Some(right) => H::node(&chunk, &right),
            });
            rest &= rest - 1;
        }
        acc.unwrap_or_else(H::empty)
    }

    /// `levels[level][index]`. The callers' ranges lie below `len`, so the entry exists.
    fn stored(&self, level: u32, index: u64) -> Digest {
        self.levels[level as usize][index as usize]
    }
}

/// The left/right decisions of RFC 9162 §2.1.3.2 step 4 for one path entry: whether the
/// entry is a left sibling. Shifts `fn`/`sn` exactly as the RFC prescribes.
fn inclusion_step(fn_: &mut u64, sn: &mut u64) -> bool {
    let left = *fn_ & 1 == 1 || *fn_ == *sn;
    if left && *fn_ & 1 == 0 {
        while *fn_ & 1 == 0 && *fn_ != 0 {
            *fn_ >>= 1;
            *sn >>= 1;
        }
    }
    *fn_ >>= 1;
    *sn >>= 1;
    left
}

/// Number of path entries the RFC loop consumes before `sn` reaches 0. Used only to name
/// the expected length in errors; the loop itself still enforces it the RFC way.
fn steps_until_root(mut fn_: u64, mut sn: u64) -> usize {
    let mut steps = 0;
    while sn != 0 {
        inclusion_step(&mut fn_, &mut sn);
        steps += 1;
    }
    steps
}

/// Verifies an inclusion proof as in RFC 9162 §2.1.3.2.
pub fn verify_inclusion<H: TreeHasher>(
    proof: &InclusionProof,
    leaf_hash: &Digest,
    root: &Digest,
) -> Result<(), ProofError> {
    let InclusionProof {
        leaf_index,
        tree_size,
        ref path,
    } = *proof;
    // Step 1.
    if leaf_index >= tree_size {
        return Err(ProofError::LeafIndexOutOfRange {
            leaf_index,
            tree_size,
        });
    }
    let length_error = || ProofError::PathLength {
        got: path.len(),
        expected: steps_until_root(leaf_index, tree_size - 1),
    };
    // Steps 2-3.
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf_hash;
    // Step 4.
    for p in path {
        if sn == 0 {
            return Err(length_error());
        }
        r = if inclusion_step(&mut fn_, &mut sn) {
            H::node(p, &r)
        } else {
            H::node(&r, p)
        };
    }
    // Step 5.
    if sn != 0 {
        return Err(length_error());
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof as in RFC 9162 §2.1.4.2.
///
/// Equal sizes need an empty path and equal roots; an old size of 0 is refused, since
/// every tree extends the empty one and there is nothing to check.
pub fn verify_consistency<H: TreeHasher>(
    proof: &ConsistencyProof,
    old_root: &Digest,
    new_root: &Digest,
) -> Result<(), ProofError> {
    let ConsistencyProof {
        old_size: first,
        new_size: second,
        ref path,
    } = *proof;
    if first == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if first > second {
        return Err(ProofError::OldSizeAboveNew {
            old_size: first,
            new_size: second,
        });
    }
    if first == second {
        if !path.is_empty() {
            return Err(ProofError::PathLength {
                got: path.len(),
                expected: 0,
            });
        }
        if old_root != new_root {
            return Err(ProofError::SameSizeRootsDiffer { size: first });
        }
        return Ok(());
    }
    // Step 2 implicitly: when `first` is a power of two its root is the proof's seed
    // instead of the path's first entry.
    let seeded_by_old_root = first.is_power_of_two();
    let length_error = || {
        let (mut fn_, mut sn) = (first - 1, second - 1);
        while fn_ & 1 == 1 {
            fn_ >>= 1;
            sn >>= 1;
        }
        ProofError::PathLength {
            got: path.len(),
            expected: steps_until_root(fn_, sn) + usize::from(!seeded_by_old_root),
        }
    };
    // Step 1.
    if path.is_empty() {
        return Err(length_error());
    }
    let mut entries = path.iter();
    // Steps 2 and 5.
    let seed = if seeded_by_old_root {
        *old_root
    } else {
        match entries.next() {
            Some(first_entry) => *first_entry,
            None => return Err(length_error()),
        }
    };
    // Step 3.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    // Step 6.
    for c in entries {
        if sn == 0 {
            return Err(length_error());
        }
        if inclusion_step(&mut fn_, &mut sn) {
            fr = H::node(c, &fr);
            sr = H::node(c, &sr);
        } else {
            sr = H::node(&sr, c);
        }
    }
    // Step 7.
    if sn != 0 {
        return Err(length_error());
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
