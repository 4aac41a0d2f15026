//! Scrolls: append-only JSONL receipt logs with a Merkle root per receipt (DESIGN §4).
//!
//! Files, under a mesh's data directory, for scroll `Compliance`:
//! - `receipts/compliance/compliance_events.jsonl`: one receipt per line, in RFC 8785 form,
//!   with `root_hash` = the scroll's root after that receipt; line *n* (from 0) is sequence *n*;
//! - `ROOT.compliance.txt`: the latest [`SignedRoot`], one JCS line, replaced atomically.
//!
//! **Durability.** [`Scroll::append_batch`] writes every line of a batch, then `fdatasync`s
//! once (group commit), and only then reports the receipts appended. A failed write or sync
//! poisons the handle: the file's state is then unknown, so nothing more is appended until
//! the scroll is reopened and re-checked.
//!
//! **Recovery.** [`Scroll::open`] re-hashes every line and checks every `root_hash`. A last
//! line without `\n` is a torn append (the process died mid-write, so it was never
//! acknowledged): it is cut off and logged. Anything else wrong stops the open with
//! [`ScrollError::Damaged`] naming the sequence. Nothing is silently repaired.

mod checkpoint;
mod line;
mod root_file;
mod verify;

pub use root_file::{read_root_file, root_file_path, write_root_file};
pub use verify::{Divergence, RootFileCheck, VerifyReport, verify_scroll};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde_json::{Map, Value};

use crate::documents::{DocumentError, SignedRoot};
use crate::hash::Blake3Hash;
use crate::id::{MeshId, ScrollName};
use crate::jcs;
use crate::key::MeshKey;
use crate::merkle::{self, MerkleTree, ProofError};
use crate::proof::{ConsistencyProofJson, InclusionProofJson};
use crate::timestamp::Timestamp;

/// Largest receipt line accepted (1 MiB): a receipt is a record, not a payload.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why a scroll operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrollError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A complete line of the scroll is wrong: the scroll is not what was appended.
    #[error(
        "scroll {scroll} is damaged at sequence {sequence} (receipt-sequence-{sequence}): {reason}"
    )]
    Damaged {
        /// The scroll.
        scroll: ScrollName,
        /// The first bad line.
        sequence: u64,
        /// What is wrong.
        reason: String,
    },
    /// A receipt handed to append was refused; nothing of the batch was written.
    #[error("receipt {index} of the batch refused: {reason}")]
    InvalidReceipt {
        /// Its position in the batch (from 0).
        index: usize,
        /// Why.
        reason: String,
    },
    /// The scroll's file is gone (or was never made) while its checkpoint or ROOT file says
    /// it held receipts: it is not recreated empty over its history.
    #[error(
        "{path} is missing, but {evidence}: a scroll is never recreated empty over its history. \
         Restore the file from a backup; to start the scroll again on purpose, move {aside} aside"
    )]
    Missing {
        /// The scroll file.
        path: PathBuf,
        /// What says it existed.
        evidence: String,
        /// The files to move aside to start again.
        aside: String,
    },
    /// An earlier write or sync failed; reopen the scroll.
    #[error("scroll {0} had a failed write or sync; reopen it before appending")]
    Poisoned(ScrollName),
    /// The ROOT file is unreadable or does not belong to this scroll.
    #[error("{path}: {reason}")]
    RootFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A proof was asked for sizes or indices the scroll does not have.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A sequence beyond the scroll's end.
    #[error("scroll {scroll} has {len} receipts; there is no sequence {sequence}")]
    NoSuchSequence {
        /// The scroll.
        scroll: ScrollName,
        /// Asked for.
        sequence: u64,
        /// Receipts present.
        len: u64,
    },
    /// A document could not be built or signed.
    #[error(transparent)]
    Document(#[from] DocumentError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ScrollError + '_ {
    move |source| ScrollError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Refuses to create `path` afresh when the scroll's checkpoint or ROOT file says it held
/// receipts (or the ROOT file is unreadable, so nobody can tell).
fn refuse_to_recreate(data_dir: &Path, name: &ScrollName, path: &Path) -> Result<(), ScrollError> {
    let cp_path = checkpoint::checkpoint_path(path);
    let root_path = root_file_path(data_dir, name);
    let evidence = match (checkpoint::read(path), read_root_file(data_dir, name)) {
        (Some(cp), _) if cp.size > 0 => Some(format!(
            "its checkpoint {} says it held {} receipts",
            cp_path.display(),
            cp.size
        )),
        (_, Ok(Some(root))) if root.size > 0 => Some(format!(
            "{} signs {} receipts",
            root_path.display(),
            root.size
        )),
        (_, Err(e)) => Some(format!("its ROOT file is unreadable ({e})")),
        _ => None,
    };
    match evidence {
        None => Ok(()),
        Some(evidence) => Err(ScrollError::Missing {
            path: path.to_owned(),
            evidence,
            aside: format!("{} and {}", cp_path.display(), root_path.display()),
        }),
    }
}

/// `<data_dir>/receipts/<lower>/<lower>_events.jsonl`.
pub fn scroll_path(data_dir: &Path, name: &ScrollName) -> PathBuf {
    let stem = name.file_stem();
    data_dir
        .join("receipts")
        .join(&stem)
        .join(format!("{stem}_events.jsonl"))
}

/// What [`Scroll::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Receipts in the scroll.
    pub receipts: u64,
    /// Bytes of a torn last line that were cut off (0 if none).
    pub torn_bytes_cut: u64,
    /// Receipts covered by a valid checkpoint, whose roots were not recomputed one by one
    /// (their leaves were, and the checkpoint's root at that size matched).
    pub checkpoint_receipts: u64,
}

/// A receipt that is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence (line number from 0).
    pub sequence: u64,
    /// The scroll root after it, as written in its `root_hash`.
    pub root_hash: Blake3Hash,
}

/// An open scroll: the file, its Merkle tree and the offset of every line.
#[derive(Debug)]
pub struct Scroll {
    name: ScrollName,
    path: PathBuf,
    file: File,
    tree: MerkleTree,
    /// `offsets[n]` is where line n starts; one extra entry holds the end of the last line.
    offsets: Vec<u64>,
    /// Set while loading and after a failed write or sync: no appends, no checkpoint.
    poisoned: bool,
    /// blake3 over every line so far as [`pin_line`] adds it (its `root_hash`, 32 bytes, and
    /// the member's offset in the line, 8 bytes little-endian), continued by every append: with the Merkle root it pins every byte a checkpoint vouches for.
    roots_hasher: blake3::Hasher,
    /// `roots_hasher` as it was after the checkpoint's last line, while loading.
    roots_hash_at_checkpoint: Option<Blake3Hash>,
    /// Receipts the checkpoint on disk covers, if this handle knows of one.
    checkpointed: Option<u64>,
}

impl Scroll {
    /// Opens (creating if missing) scroll `name` under `data_dir`: hashes every line into the
    /// tree, checks every `root_hash` (through the checkpoint for lines it covers, one by one
    /// for the rest), cuts a torn last line, and refuses any other damage.
    pub fn open(data_dir: &Path, name: &ScrollName) -> Result<(Self, OpenReport), ScrollError> {
        let path = scroll_path(data_dir, name);
        let dir = path.parent().unwrap_or(data_dir);
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            sync_dir(dir)?;
            if let Some(receipts_dir) = dir.parent() {
                sync_dir(receipts_dir)?;
            }
        }
        let existed = path.exists();
        if !existed {
            refuse_to_recreate(data_dir, name, &path)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut scroll = Self {
            name: name.clone(),
            path,
            file: file.try_clone().map_err(|source| ScrollError::Io {
                path: scroll_path(data_dir, name),
                source,
            })?,
            tree: MerkleTree::new(),
            offsets: vec![0],
            // Until the load succeeds: an early return must not leave a checkpoint behind.
            poisoned: true,
            roots_hasher: blake3::Hasher::new(),
            roots_hash_at_checkpoint: None,
            checkpointed: None,
        };
        let checkpoint = checkpoint::read(&scroll.path);
        let file_len = file.metadata().map_err(io_err(&scroll.path))?.len();
        let usable = checkpoint.filter(|cp| cp.bytes <= file_len);
        let torn = scroll.load(&mut file, usable)?;
        let trusted = usable.filter(|cp| scroll.matches(cp));
        if let Some(cp) = checkpoint.filter(|_| trusted.is_none()) {
            // The scroll is not what was checked before: find the line by checking every root.
            if usable.is_some() {
                scroll.reset();
                scroll.load(&mut file, None)?;
            }
            let reason = if cp.bytes > file_len {
                format!(
                    "the file has {} receipts but {} were checked into it before: receipts were removed",
                    scroll.len(),
                    cp.size
                )
            } else {
                format!(
                    "the first {} receipts differ from the ones checked before, though every root is consistent: history was rewritten",
                    cp.size
                )
            };
            let sequence = scroll.len().min(cp.size);
            return Err(scroll.damaged(
                sequence,
                format!(
                    "{reason} (if the scroll was replaced on purpose, remove {})",
                    checkpoint::checkpoint_path(&scroll.path).display()
                ),
            ));
        }
        scroll.checkpointed = trusted.map(|cp| cp.size);
        scroll.check_root_file(data_dir)?;
        if torn > 0 {
            let keep = scroll.end();
            tracing::warn!(
                scroll = %scroll.name,
                bytes = torn,
                kept_receipts = scroll.len(),
                "cutting a torn last line (an append that was never acknowledged)"
            );
            scroll.file.set_len(keep).map_err(io_err(&scroll.path))?;
        }
        // The lines just read may be only in the page cache (the last writer died between its
        // write and its fdatasync): make them durable before anything (a checkpoint, a signed
        // root) vouches for them. Cheap when nothing is dirty.
        scroll.file.sync_all().map_err(io_err(&scroll.path))?;
        let report = OpenReport {
            receipts: scroll.len(),
            torn_bytes_cut: torn,
            checkpoint_receipts: scroll.checkpointed.unwrap_or(0),
        };
        scroll.poisoned = false;
        scroll.write_checkpoint();
        Ok((scroll, report))
    }

    /// True if the loaded scroll has exactly the checkpoint's size, root and byte length.
    fn matches(&self, cp: &checkpoint::Checkpoint) -> bool {
        let size_ok = usize::try_from(cp.size)
            .ok()
            .and_then(|i| self.offsets.get(i))
            .is_some_and(|end| *end == cp.bytes);
        size_ok
            && self.root_at(cp.size).is_ok_and(|root| root == cp.root)
            && self.roots_hash_at_checkpoint == Some(cp.roots_hash)
    }

    /// Forgets what `load` built, for a second, full, load.
    fn reset(&mut self) {
        self.tree = MerkleTree::new();
        self.offsets = vec![0];
        self.roots_hasher = blake3::Hasher::new();
        self.roots_hash_at_checkpoint = None;
    }

    /// Records the checked state (best effort: a lost checkpoint costs a full check).
    fn write_checkpoint(&mut self) {
        if self.poisoned || self.checkpointed == Some(self.len()) {
            return;
        }
        let cp = checkpoint::Checkpoint {
            bytes: self.end(),
            roots_hash: Blake3Hash::from_bytes(*self.roots_hasher.finalize().as_bytes()),
            root: self.root(),
            size: self.len(),
        };
        match checkpoint::write(&self.path, &cp) {
            Ok(()) => self.checkpointed = Some(cp.size),
            Err(e) => {
                tracing::warn!(scroll = %self.name, error = %e, "could not write the scroll checkpoint")
            }
        }
    }

    /// Reads and checks every complete line; returns the length of a torn tail.
    ///
    /// A reader thread fills blocks while the lines of the previous block are checked, so
    /// the disk copy overlaps hashing; only a line that straddles two blocks is copied.
    fn load(
        &mut self,
        file: &mut File,
        checkpoint: Option<checkpoint::Checkpoint>,
    ) -> Result<u64, ScrollError> {
        // Lines inside a checkpoint skip their per-line root check; `open` then requires the
        // checkpoint's root, root_hash digest and length to match, or checks every root.
        let trusted_size = checkpoint.map_or(0, |cp| cp.size);
        if trusted_size == 0 {
            self.roots_hash_at_checkpoint = Some(Blake3Hash::from_bytes(
                *self.roots_hasher.finalize().as_bytes(),
            ));
        }
        const BLOCK: usize = 8 << 20;
        file.seek(SeekFrom::Start(0)).map_err(io_err(&self.path))?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let path = self.path.clone();
        let mut reader = file.try_clone().map_err(io_err(&self.path))?;
        std::thread::scope(|scope| {
            let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
            let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(2);
            scope.spawn(move || {
                let mut spare = vec![vec![0u8; BLOCK], vec![0u8; BLOCK]];
                loop {
                    let mut block = spare
                        .pop()
                        .or_else(|| empty_rx.recv().ok())
                        .unwrap_or_default();
                    block.resize(BLOCK, 0);
                    let result = read_full(&mut reader, &mut block).map(|n| {
                        block.truncate(n);
                        block
                    });
                    let done = matches!(&result, Ok(b) if b.is_empty()) || result.is_err();
                    if full_tx.send(result).is_err() || done {
                        return;
                    }
                }
            });
            let mut carry: Vec<u8> = Vec::new(); // the start of a line that continues in the next block
            // Bytes of an unfinished line beyond MAX_LINE_BYTES, counted, not kept: at the end
            // of the file they are a torn tail (cut, whatever its length); followed by a
            // newline they are an over-long line (damage).
            let mut overflow = 0u64;
            let mut offset = 0u64; // file offset of the next line to check
            let mut lines: Vec<(usize, usize)> = Vec::new();
            loop {
                let block = full_rx
                    .recv()
                    .unwrap_or_else(|_| Err(io::Error::other("the scroll reader stopped")))
                    .map_err(|source| ScrollError::Io {
                        path: path.clone(),
                        source,
                    })?;
                if block.is_empty() {
                    return Ok(carry.len() as u64 + overflow);
                }
                let mut start = 0;
                if !carry.is_empty() {
                    match memchr_newline(&block) {
                        Some(_) if overflow > 0 => {
                            return Err(self.damaged(
                                self.len(),
                                format!("a line longer than {MAX_LINE_BYTES} bytes"),
                            ));
                        }
                        Some(nl) => {
                            carry.extend_from_slice(&block[..nl]);
                            self.check_lines(&carry, &[(0, carry.len())], 1, trusted_size)?;
                            offset += carry.len() as u64 + 1;
                            self.offsets.push(offset);
                            carry.clear();
                            start = nl + 1;
                        }
                        None => {
                            keep_capped(&mut carry, &mut overflow, &block);
                            start = block.len();
                        }
                    }
                }
                lines.clear();
                while let Some(nl) = memchr_newline(&block[start..]) {
                    lines.push((start, start + nl));
                    start += nl + 1;
                }
                self.check_lines(&block, &lines, workers, trusted_size)?;
                // `offset` is where lines[0] starts in the file; each line ends one past its '\n'.
                if let (Some(&(first, _)), Some(&(_, last_end))) = (lines.first(), lines.last()) {
                    let base = offset;
                    self.offsets.extend(
                        lines
                            .iter()
                            .map(|&(_, end)| base + (end + 1 - first) as u64),
                    );
                    offset += (last_end + 1 - first) as u64;
                }
                if start < block.len() {
                    keep_capped(&mut carry, &mut overflow, &block[start..]);
                }
                let _ = empty_tx.send(block);
            }
        })
    }

    /// Checks the complete lines `buf[start..end]` and appends their leaves to the tree; on
    /// damage, names the first bad sequence.
    fn check_lines(
        &mut self,
        buf: &[u8],
        lines: &[(usize, usize)],
        workers: usize,
        trusted_size: u64,
    ) -> Result<(), ScrollError> {
        let first = self.len();
        let per_worker = lines.len().div_ceil(workers).max(1);
        let leaves: Vec<Result<(merkle::Digest, Blake3Hash, usize), String>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = lines
                    .chunks(per_worker)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|&(s, e)| leaf_of_line(&buf[s..e]))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
        if leaves.len() != lines.len() {
            return Err(self.damaged(first, "a checking thread failed".into()));
        }
        let mut claimed = Vec::with_capacity(leaves.len());
        for (i, leaf) in leaves.into_iter().enumerate() {
            match leaf {
                Ok((hash, root, member_start)) => {
                    self.tree.push_leaf_hash(hash);
                    pin_line(&mut self.roots_hasher, &root, member_start);
                    if self.tree.len() == trusted_size {
                        self.roots_hash_at_checkpoint = Some(Blake3Hash::from_bytes(
                            *self.roots_hasher.finalize().as_bytes(),
                        ));
                    }
                    claimed.push(root);
                }
                // Later lines may be fine, but the scroll is damaged here: stop.
                Err(reason) => return Err(self.damaged(first + i as u64, reason)),
            }
        }
        let tree = &self.tree;
        let bad: Option<(u64, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = claimed
                .chunks(per_worker)
                .enumerate()
                .map(|(k, part)| {
                    scope.spawn(move || {
                        let base = first + (k * per_worker) as u64;
                        part.iter().enumerate().find_map(|(i, claimed)| {
                            let size = base + i as u64 + 1;
                            if size <= trusted_size {
                                return None;
                            }
                            match tree.root_at(size).map(Blake3Hash::from_bytes) {
                                Ok(root) if root == *claimed => None,
                                Ok(root) => Some((
                                    size - 1,
                                    format!("root_hash {claimed} does not match the recomputed root {root}"),
                                )),
                                Err(e) => Some((size - 1, e.to_string())),
                            }
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Some((first, "a checking thread failed".into())))
                })
                .min_by_key(|(sequence, _)| *sequence)
        });
        match bad {
            Some((sequence, reason)) => {
                // Leave the tree holding only the lines that verified.
                self.tree.truncate(sequence);
                let (start, end) = lines[usize::try_from(sequence - first).unwrap_or(0)];
                Err(self.damaged(sequence, diagnose(&buf[start..end], reason)))
            }
            None => Ok(()),
        }
    }

    /// The signed ROOT file may lag the scroll (it is written after the receipts are durable)
    /// but never lead it or disagree with it: a ROOT file for more receipts than the file
    /// holds means receipts were removed; one whose root differs at its size means history
    /// was rewritten. A ROOT file that does not parse is left to the caller (it is refused or
    /// re-signed there, with the scroll's name as the caller knows it).
    fn check_root_file(&self, data_dir: &Path) -> Result<(), ScrollError> {
        let Ok(Some(root)) = read_root_file(data_dir, &self.name) else {
            return Ok(());
        };
        let path = root_file_path(data_dir, &self.name);
        if root.size > self.len() {
            return Err(self.damaged(
                self.len(),
                format!(
                    "{} signs {} receipts but the file holds {}: receipts were removed \
                     (restore the scroll from a backup)",
                    path.display(),
                    root.size,
                    self.len()
                ),
            ));
        }
        if self.root_at(root.size)? != root.root {
            return Err(self.damaged(
                root.size.saturating_sub(1),
                format!(
                    "{} signs root {} at size {}, but the file's root there is {}: history \
                     was rewritten",
                    path.display(),
                    root.root,
                    root.size,
                    self.root_at(root.size)?
                ),
            ));
        }
        Ok(())
    }

    fn damaged(&self, sequence: u64, reason: String) -> ScrollError {
        ScrollError::Damaged {
            scroll: self.name.clone(),
            sequence,
            reason,
        }
    }

    /// The scroll's name.
    pub fn name(&self) -> &ScrollName {
        &self.name
    }

    /// The JSONL file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receipts in the scroll.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// True if the scroll holds no receipt.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn end(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// The current Merkle root.
    pub fn root(&self) -> Blake3Hash {
        Blake3Hash::from_bytes(self.tree.root())
    }

    /// The root when the scroll had `size` receipts.
    pub fn root_at(&self, size: u64) -> Result<Blake3Hash, ScrollError> {
        Ok(Blake3Hash::from_bytes(self.tree.root_at(size)?))
    }

    /// Appends one receipt durably (a batch of one).
    pub fn append(&mut self, receipt: &Map<String, Value>) -> Result<Appended, ScrollError> {
        let mut done = self.append_batch(std::slice::from_ref(receipt))?;
        done.pop().ok_or_else(|| ScrollError::InvalidReceipt {
            index: 0,
            reason: "nothing was appended".into(),
        })
    }

    /// Appends `receipts` in order with one `fdatasync` (group commit). Either every receipt
    /// is on disk when this returns `Ok`, or none was acknowledged: a refused receipt stops
    /// the batch before anything is written, and a failed write or sync poisons the handle.
    ///
    /// Each receipt must be a JSON object with a non-empty string `type` and no `root_hash`
    /// (the scroll sets it).
    pub fn append_batch(
        &mut self,
        receipts: &[Map<String, Value>],
    ) -> Result<Vec<Appended>, ScrollError> {
        if self.poisoned {
            return Err(ScrollError::Poisoned(self.name.clone()));
        }
        let old_len = self.len();
        let old_end = self.end();
        let mut buffer = Vec::with_capacity(receipts.len() * 700);
        let mut line_ends = Vec::with_capacity(receipts.len());
        let mut appended = Vec::with_capacity(receipts.len());
        let mut member_starts = Vec::with_capacity(receipts.len());
        for (index, receipt) in receipts.iter().enumerate() {
            let prepared = prepare_line(receipt)
                .map_err(|reason| ScrollError::InvalidReceipt { index, reason });
            let (leaf, slot) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    self.tree.truncate(old_len);
                    return Err(e);
                }
            };
            let sequence = self.tree.append(&leaf);
            let root_hash = Blake3Hash::from_bytes(self.tree.root());
            let line_len = leaf.len() + line::ROOT_MEMBER_LEN + 1;
            if line_len > MAX_LINE_BYTES {
                self.tree.truncate(old_len);
                return Err(ScrollError::InvalidReceipt {
                    index,
                    reason: format!(
                        "{line_len} bytes, more than the {MAX_LINE_BYTES} a line may hold"
                    ),
                });
            }
            member_starts.push(slot.member_start(leaf.len()));
            slot.insert_into(&mut buffer, &leaf, &line::root_member_bytes(&root_hash));
            buffer.push(b'\n');
            line_ends.push(old_end + buffer.len() as u64);
            appended.push(Appended {
                sequence,
                root_hash,
            });
        }
        let written = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // The file may hold part of the batch, and after a failed fsync the page cache
            // cannot be trusted: forget the batch and refuse further appends until reopen
            // (whose recovery cuts a torn tail or reports damage).
            self.tree.truncate(old_len);
            self.poisoned = true;
            let _ = self.file.set_len(old_end);
            return Err(ScrollError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.offsets.extend(line_ends);
        for (a, member_start) in appended.iter().zip(member_starts) {
            pin_line(&mut self.roots_hasher, &a.root_hash, member_start);
        }
        Ok(appended)
    }

    /// The stored line of receipt `sequence` (without its `\n`), read from disk.
    pub fn read_line(&self, sequence: u64) -> Result<Vec<u8>, ScrollError> {
        let idx = usize::try_from(sequence)
            .ok()
            .filter(|i| i + 1 < self.offsets.len());
        let Some(idx) = idx else {
            return Err(ScrollError::NoSuchSequence {
                scroll: self.name.clone(),
                sequence,
                len: self.len(),
            });
        };
        let (start, end) = (self.offsets[idx], self.offsets[idx + 1]);
        let mut line = vec![0u8; usize::try_from(end - start - 1).unwrap_or(0)];
        self.file
            .read_exact_at(&mut line, start)
            .map_err(io_err(&self.path))?;
        Ok(line)
    }

    /// The leaf bytes of receipt `sequence`: its line without the `root_hash` member, i.e. the
    /// JCS of the receipt as it was appended.
    pub fn read_leaf(&self, sequence: u64) -> Result<Vec<u8>, ScrollError> {
        let line = self.read_line(sequence)?;
        let member = line::find_root_member(&line).map_err(|reason| ScrollError::Damaged {
            scroll: self.name.clone(),
            sequence,
            reason,
        })?;
        let mut leaf = Vec::with_capacity(line.len());
        leaf.extend_from_slice(&line[..member.cut_start]);
        leaf.extend_from_slice(&line[member.cut_end..]);
        Ok(leaf)
    }

    /// An inclusion proof of receipt `sequence` in the tree of `tree_size` receipts.
    pub fn prove_inclusion(
        &self,
        sequence: u64,
        tree_size: u64,
    ) -> Result<InclusionProofJson, ScrollError> {
        Ok(InclusionProofJson::from(
            self.tree.prove_inclusion(sequence, tree_size)?,
        ))
    }

    /// A consistency proof from size `old_size` to `new_size`.
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProofJson, ScrollError> {
        Ok(ConsistencyProofJson::from(
            self.tree.prove_consistency(old_size, new_size)?,
        ))
    }

    /// Signs the current root.
    pub fn sign_root(
        &self,
        key: &MeshKey,
        mesh_id: &MeshId,
        now: Timestamp,
    ) -> Result<SignedRoot, ScrollError> {
        Ok(SignedRoot::new(
            key,
            mesh_id.clone(),
            self.name.clone(),
            self.len(),
            self.root(),
            now,
        )?)
    }
}

impl Drop for Scroll {
    fn drop(&mut self) {
        self.write_checkpoint();
    }
}

/// A stored line's leaf hash and the `root_hash` it claims, or why it is damaged.
fn leaf_of_line(line: &[u8]) -> Result<(merkle::Digest, Blake3Hash, usize), String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("line longer than {MAX_LINE_BYTES} bytes"));
    }
    // No JSON parse here: any change to a line written by `append` changes its leaf hash,
    // and the root check that follows catches it (`diagnose` then says what is wrong). A
    // line crafted with matching roots is a forgery, not damage, and `verify` parses it.
    let member = line::find_root_member(line).map_err(|reason| diagnose(line, reason))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[0x00]);
    member.hash_leaf_into(line, &mut hasher);
    Ok((
        *hasher.finalize().as_bytes(),
        member.root_hash,
        member.start,
    ))
}

/// Names what is wrong with a damaged line: that it is not JSON if so, else `reason`.
fn diagnose(line: &[u8], reason: String) -> String {
    match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
        Err(e) => format!("the line is not JSON: {e}"),
        Ok(_) => reason,
    }
}

/// The canonical leaf of a receipt and where its `root_hash` goes.
fn prepare_line(receipt: &Map<String, Value>) -> Result<(Vec<u8>, jcs::Slot), String> {
    match receipt.get("type") {
        Some(Value::String(t)) if !t.is_empty() => {}
        Some(_) => return Err("`type` must be a non-empty string".into()),
        None => return Err("a receipt needs a `type`".into()),
    }
    if receipt.contains_key("root_hash") {
        return Err(
            "`root_hash` is set by the scroll when the receipt is appended; leave it out".into(),
        );
    }
    jcs::to_vec_with_slot(receipt, "root_hash").map_err(|e| e.to_string())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Adds one line to the checkpoint digest: its `root_hash` value and where in the line that
/// member starts. With the Merkle root (every leaf byte) and the byte length, that pins the
/// whole line: the leaf, the root it claims, and the member's place.
fn pin_line(hasher: &mut blake3::Hasher, root: &Blake3Hash, member_start: usize) {
    hasher.update(root.as_bytes());
    hasher.update(&(member_start as u64).to_le_bytes());
}

/// Appends `bytes` to an unfinished line, keeping at most `MAX_LINE_BYTES + 1` of it (enough
/// to know it is too long) and counting the rest in `overflow`.
fn keep_capped(carry: &mut Vec<u8>, overflow: &mut u64, bytes: &[u8]) {
    let room = (MAX_LINE_BYTES + 1)
        .saturating_sub(carry.len())
        .min(bytes.len());
    carry.extend_from_slice(&bytes[..room]);
    *overflow += (bytes.len() - room) as u64;
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Makes a directory entry change (create, rename) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ScrollError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
