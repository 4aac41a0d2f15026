//! Full verification of a scroll: every line through the strict parser, its canonical form,
//! its leaf hash and its `root_hash` recomputed, and the ROOT file checked against the tree.
//! Unlike [`super::Scroll::open`] it changes nothing and reports the first divergence instead
//! of stopping at an error.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::{ScrollError, io_err, read_root_file, scroll_path};
use crate::documents::SignedDocument;
use crate::hash::Blake3Hash;
use crate::id::{MeshId, ScrollName};
use crate::jcs::{self, Numbers};
use crate::key::PublicKey;
use crate::merkle::MerkleTree;

/// The first line that is not what an honest append would have written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Its sequence.
    pub sequence: u64,
    /// What is wrong.
    pub problem: String,
}

/// How the ROOT file relates to the scroll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootFileCheck {
    /// There is no ROOT file.
    Missing,
    /// It is signed (if a key was given), and its root is the scroll's root at its size.
    Consistent {
        /// The size it signs.
        size: u64,
        /// Whether the signature was checked (a key was given).
        signature_checked: bool,
    },
    /// It is wrong.
    Invalid(String),
}

/// The outcome of [`verify_scroll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The scroll.
    pub scroll: ScrollName,
    /// Complete lines that verified (all of them if there is no divergence).
    pub receipts_verified: u64,
    /// The root over the verified lines.
    pub root: Blake3Hash,
    /// The first problem, if any.
    pub divergence: Option<Divergence>,
    /// The ROOT file's state.
    pub root_file: RootFileCheck,
}

impl VerifyReport {
    /// True if the scroll and its ROOT file are exactly what honest appends produce.
    pub fn is_ok(&self) -> bool {
        self.divergence.is_none() && !matches!(self.root_file, RootFileCheck::Invalid(_))
    }
}

/// Recomputes scroll `name` under `data_dir` from scratch. With `owner`, the ROOT file must
/// be that mesh's and carry a valid signature by `owner`'s key.
pub fn verify_scroll(
    data_dir: &Path,
    name: &ScrollName,
    owner: Option<(&MeshId, &PublicKey)>,
) -> Result<VerifyReport, ScrollError> {
    let path = scroll_path(data_dir, name);
    let file = File::open(&path).map_err(io_err(&path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut tree = MerkleTree::new();
    let mut divergence = None;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(&path))?;
        if n == 0 {
            break;
        }
        let sequence = tree.len();
        if line.last() != Some(&b'\n') {
            divergence = Some(Divergence {
                sequence,
                problem: format!(
                    "torn last line ({} bytes without a newline); opening the scroll cuts it",
                    line.len()
                ),
            });
            break;
        }
        line.pop();
        if let Err(problem) = check_line(&line, &mut tree, *name == ScrollName::federation()) {
            divergence = Some(Divergence { sequence, problem });
            break;
        }
    }
    let root = Blake3Hash::from_bytes(tree.root());
    let root_file = check_root_file(data_dir, name, &tree, owner);
    Ok(VerifyReport {
        scroll: name.clone(),
        receipts_verified: tree.len(),
        root,
        divergence,
        root_file,
    })
}

fn check_line(line: &[u8], tree: &mut MerkleTree, federation: bool) -> Result<(), String> {
    let value = jcs::parse(line, Numbers::Any).map_err(|e| e.to_string())?;
    if federation {
        // The Federation scroll holds only the node's own receipt types, each well-formed.
        crate::receipts::receipt_from_value(value.clone())
            .map_err(|e| format!("not a valid Federation receipt: {e}"))?;
    }
    let Value::Object(mut map) = value else {
        return Err("the line is not a JSON object".into());
    };
    let canonical = jcs::to_vec(&Value::Object(map.clone())).map_err(|e| e.to_string())?;
    if canonical != line {
        return Err("the line is not in RFC 8785 canonical form".into());
    }
    let claimed = match map.remove("root_hash") {
        Some(Value::String(s)) => s
            .parse::<Blake3Hash>()
            .map_err(|e| format!("root_hash: {e}"))?,
        Some(_) => return Err("root_hash is not a string".into()),
        None => return Err("the line has no root_hash".into()),
    };
    match map.get("type") {
        Some(Value::String(t)) if !t.is_empty() => {}
        _ => return Err("the receipt has no string `type`".into()),
    }
    let leaf = jcs::to_vec(&Value::Object(map)).map_err(|e| e.to_string())?;
    tree.append(&leaf);
    let root = Blake3Hash::from_bytes(tree.root());
    if root != claimed {
        // Keep the tree (and the report's root and count) to the lines that verified.
        tree.truncate(tree.len() - 1);
        return Err(format!(
            "root_hash {claimed} does not match the recomputed root {root}"
        ));
    }
    Ok(())
}

fn check_root_file(
    data_dir: &Path,
    name: &ScrollName,
    tree: &MerkleTree,
    owner: Option<(&MeshId, &PublicKey)>,
) -> RootFileCheck {
    let signed = match read_root_file(data_dir, name) {
        Ok(Some(signed)) => signed,
        Ok(None) => return RootFileCheck::Missing,
        Err(e) => return RootFileCheck::Invalid(e.to_string()),
    };
    if let Some((mesh_id, key)) = owner {
        if &signed.mesh_id != mesh_id {
            return RootFileCheck::Invalid(format!(
                "signed by {} instead of {mesh_id}",
                signed.mesh_id
            ));
        }
        if let Err(e) = signed.verify(key) {
            return RootFileCheck::Invalid(e.to_string());
        }
    }
    match tree.root_at(signed.size) {
        Ok(root) if Blake3Hash::from_bytes(root) == signed.root => RootFileCheck::Consistent {
            size: signed.size,
            signature_checked: owner.is_some(),
        },
        Ok(root) => RootFileCheck::Invalid(format!(
            "it signs root {} at size {}, but the scroll's root at that size is {}",
            signed.root,
            signed.size,
            Blake3Hash::from_bytes(root)
        )),
        Err(_) => RootFileCheck::Invalid(format!(
            "it signs size {}, but the scroll has only {} verified receipts",
            signed.size,
            tree.len()
        )),
    }
}
