//! A scroll's checkpoint, `receipts/<lower>/<lower>_events.checkpoint`: one JSON line
//! `{"bytes","file_hash","root","size"}` saying "the first `bytes` bytes of the JSONL file,
//! whose blake3 is `file_hash`, are `size` receipts with root `root`, every root checked".
//!
//! It is written after a scroll has been checked (at open) and when a handle is dropped. On
//! the next open, lines inside the checkpoint still have their leaves hashed (the tree is built
//! from them) but not each `root_hash` recomputed: if the prefix still hashes to `file_hash`,
//! those bytes are the ones that were checked. Any disagreement (the prefix changed, the file
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
    /// blake3 of those bytes.
    pub file_hash: Blake3Hash,
    /// Merkle root of the receipts in them.
    pub root: Blake3Hash,
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

/// Hashes a file's bytes in order, remembering the hash at one offset (a checkpoint's end) and
/// leaving out a trailing partial line.
pub(crate) struct PrefixHasher {
    hasher: blake3::Hasher,
    fed: u64,
    mark: Option<u64>,
    at_mark: Option<Blake3Hash>,
    /// Bytes after the last newline seen: hashed only once their line is complete.
    pending: Vec<u8>,
}

impl PrefixHasher {
    pub(crate) fn new(mark: Option<u64>) -> Self {
        let mut hasher = Self {
            hasher: blake3::Hasher::new(),
            fed: 0,
            mark,
            at_mark: None,
            pending: Vec::new(),
        };
        hasher.check_mark();
        hasher
    }

    /// Takes the next bytes of the file.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match memchr::memrchr(b'\n', bytes) {
            None => self.pending.extend_from_slice(bytes),
            Some(last) => {
                let pending = std::mem::take(&mut self.pending);
                self.feed(&pending);
                self.feed(&bytes[..=last]);
                self.pending.extend_from_slice(&bytes[last + 1..]);
            }
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        if let Some(mark) = self.mark.filter(|_| self.at_mark.is_none()) {
            let room = mark.saturating_sub(self.fed);
            if (bytes.len() as u64) >= room {
                let (before, after) = bytes.split_at(usize::try_from(room).unwrap_or(bytes.len()));
                self.hasher.update(before);
                self.fed += before.len() as u64;
                self.check_mark();
                bytes = after;
            }
        }
        self.hasher.update(bytes);
        self.fed += bytes.len() as u64;
    }

    fn check_mark(&mut self) {
        if self.mark == Some(self.fed) {
            self.at_mark = Some(Blake3Hash::from_bytes(*self.hasher.finalize().as_bytes()));
        }
    }

    /// The hash of the first `mark` bytes, if the file was that long.
    pub(crate) fn at_mark(&self) -> Option<Blake3Hash> {
        self.at_mark
    }

    /// The hasher over every complete line, to be continued by appends.
    pub(crate) fn into_hasher(self) -> blake3::Hasher {
        self.hasher
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hash_is_the_hash_of_the_prefix_whatever_the_blocks() {
        let data = b"line one\nline two\nline three\npartial";
        let mark = 18; // end of "line two\n"
        for block in 1..data.len() {
            let mut h = PrefixHasher::new(Some(mark));
            for chunk in data.chunks(block) {
                h.update(chunk);
            }
            assert_eq!(
                h.at_mark(),
                Some(Blake3Hash::digest(&data[..18])),
                "block {block}"
            );
            let complete = h.into_hasher().finalize();
            assert_eq!(
                complete.as_bytes(),
                blake3::hash(&data[..29]).as_bytes(),
                "block {block}"
            );
        }
        let h = PrefixHasher::new(Some(0));
        assert_eq!(h.at_mark(), Some(Blake3Hash::digest(b"")));
        let mut short = PrefixHasher::new(Some(100));
        short.update(data);
        assert_eq!(short.at_mark(), None);
    }
}
