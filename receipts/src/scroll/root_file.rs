//! `ROOT.<name>.txt`: the latest signed root of a scroll, one JCS line, replaced atomically
//! (write a temporary file, fsync it, rename it over the old one, fsync the directory), so a
//! reader sees the old root or the new one, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ScrollError, io_err, sync_dir};
use crate::documents::{Document, SignedRoot, parse};
use crate::id::ScrollName;

/// `<data_dir>/ROOT.<lower>.txt`.
pub fn root_file_path(data_dir: &Path, name: &ScrollName) -> PathBuf {
    data_dir.join(format!("ROOT.{}.txt", name.file_stem()))
}

/// Replaces the ROOT file of `root.scroll` atomically.
pub fn write_root_file(data_dir: &Path, root: &SignedRoot) -> Result<(), ScrollError> {
    let path = root_file_path(data_dir, &root.scroll);
    let tmp = data_dir.join(format!(".ROOT.{}.txt.tmp", root.scroll.file_stem()));
    let mut line = root.to_canonical()?;
    line.push(b'\n');
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(&line).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(data_dir)
}

/// Reads the ROOT file of scroll `name`; `None` if there is none yet. Checks the form and
/// that it is about `name`; the caller checks the signature with the mesh key it trusts.
pub fn read_root_file(
    data_dir: &Path,
    name: &ScrollName,
) -> Result<Option<SignedRoot>, ScrollError> {
    let path = root_file_path(data_dir, name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ScrollError::Io { path, source }),
    };
    let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let root: SignedRoot = parse(text).map_err(|e| ScrollError::RootFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if &root.scroll != name {
        return Err(ScrollError::RootFile {
            path,
            reason: format!("it holds the root of scroll {}, not {name}", root.scroll),
        });
    }
    Ok(Some(root))
}
