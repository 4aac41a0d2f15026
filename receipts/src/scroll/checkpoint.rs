//! A scroll's checkpoint, `receipts/<lower>/<lower>_events.checkpoint`: one JSON line
//! `{"bytes","root","roots_hash","size"}` saying "the first `size` receipts, `bytes` bytes of
//! the JSONL file, have Merkle root `root`, and their `root_hash` values with the offset of
//! that member in each line (32 + 8 bytes per line, concatenated) hash to `roots_hash`; every
//! one of those values was checked".
//!
//! It is written after a scroll has been checked (at open) and when a handle is dropped. On
//! the next open, lines inside the checkpoint still have their leaves hashed (the tree is built
//! from them) but not each `root_hash` recomputed: the Merkle root pins every leaf byte, the
//! digest pins every `root_hash` value and where it sits, and the length pins the line
//! boundaries, so if all
//! three match, the lines are the ones that were checked. (The digest costs 32 bytes of
//! hashing per receipt, against the ~9 node hashes a per-line root check costs at 1M.) Any disagreement (the prefix changed, the file
//! is shorter, the root differs) means the scroll changed behind the node's back: open checks
//! every root to name the line, and refuses the scroll either way. A checkpoint that does not
//! parse is ignored (a full check follows); it holds nothing that is not re-derived.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::Blake3Hash;

/// What a checkpoint records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checkpoint {
    /// Length of the checked prefix of the file, at a line end.
    pub bytes: u64,
    /// Merkle root of the receipts in them.
    pub root: Blake3Hash,
    /// blake3 over each of those receipts' `root_hash` value (32 bytes) and member offset
    /// (8 bytes, little-endian).
    pub roots_hash: Blake3Hash,
    /// Receipts in them.
    pub size: u64,
}

/// `<scroll file>` with the `.checkpoint` extension.
pub(crate) fn checkpoint_path(scroll_path: &Path) -> PathBuf {
    scroll_path.with_extension("checkpoint")
}

/// Reads the checkpoint; `None` if there is none or it does not parse (logged).
pub(crate) fn read(scroll_path: &Path) -> Option<Checkpoint> {
    let path = checkpoint_path(scroll_path);
    let bytes = fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(checkpoint) => Some(checkpoint),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable scroll checkpoint; checking every root");
            None
        }
    }
}

/// Replaces the checkpoint (write a temporary file, rename). Not synced: a checkpoint lost to a
/// power cut only costs the next open a full check, and one that names more than survived is
/// impossible because it is written after the data it describes was synced.
pub(crate) fn write(scroll_path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let path = checkpoint_path(scroll_path);
    let tmp = path.with_extension("checkpoint.tmp");
    let mut line = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
    line.push(b'\n');
    fs::File::create(&tmp).and_then(|mut f| f.write_all(&line))?;
    fs::rename(&tmp, &path)
}
