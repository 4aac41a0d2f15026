//! Our own files at start (issue 15): the state database, the Federation scroll's ROOT file
//! and every other scroll, each opened and checked, and refused with an error that names the
//! file and the way back when it is missing, empty or damaged. Never a fresh start beside
//! history, never a scroll renamed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use vm_receipts::ScrollName;
use vm_receipts::documents::SignedDocument;
use vm_receipts::scroll::{Scroll, write_root_file};
use vm_storage::Store;

use crate::clock::{Clock, SystemClock};
use crate::data_dir::DataDir;

/// Opens `state.redb`, refusing to start from nothing beside a Federation scroll that holds
/// receipts (the agreements, peers and witness state it records would be forgotten), and
/// naming the file and the way back for anything else wrong with it.
pub(super) fn open_state(root: &Path, federation: &Scroll) -> anyhow::Result<Store> {
    let path = root.join("state.redb");
    let rebuild = format!(
        "`vm-federation state rebuild --data-dir {}` rebuilds it from the Federation scroll and \
         the key",
        root.display()
    );
    let present = match std::fs::metadata(&path) {
        Ok(meta) => meta.len() > 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    };
    if !present && !federation.is_empty() {
        anyhow::bail!(
            "{} is missing or empty, but the Federation scroll holds {} receipts: starting \
             would forget every agreement, peer key and witnessed root they record. {rebuild}",
            path.display(),
            federation.len()
        );
    }
    Store::open(&path).map_err(|e| match e {
        vm_storage::StoreError::Database(m) if m.contains("already open") => {
            anyhow::anyhow!("{}: {m} (another process has it open)", path.display())
        }
        e @ vm_storage::StoreError::NewerSchema { .. } => {
            anyhow::anyhow!("{}: {e}", path.display())
        }
        e => anyhow::anyhow!("{}: {e}. Stop the node; {rebuild}", path.display()),
    })
}

/// The Federation scroll's ROOT file: a damaged or foreign one is re-signed, with a warning,
/// now that the scroll verified (its name is fixed, so nothing is renamed).
pub(super) fn check_federation_root(dir: &DataDir, scroll: &Scroll) -> anyhow::Result<()> {
    let problem = match vm_receipts::scroll::read_root_file(dir.root(), scroll.name()) {
        Ok(Some(root)) => root
            .verify(&dir.key().public_key())
            .err()
            .map(|e| format!("its signature does not verify with our key ({e})")),
        Ok(None) => Some("it is missing".to_owned()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(problem) = problem {
        let signed = scroll.sign_root(dir.key(), dir.mesh_id(), SystemClock.now())?;
        write_root_file(dir.root(), &signed)?;
        tracing::warn!(file = %vm_receipts::scroll::root_file_path(dir.root(), scroll.name()).display(), %problem, receipts = scroll.len(), "the Federation scroll's ROOT file was re-signed after the scroll verified");
    }
    Ok(())
}

/// Opens every scroll under `receipts/` but the Federation scroll (the node owns them all
/// while it runs: appends come through the control socket), and every scroll a ROOT file
/// names, so a scroll whose file is gone is refused (see `Scroll::open`) instead of skipped.
pub(super) fn open_scrolls(dir: &DataDir) -> anyhow::Result<BTreeMap<String, Scroll>> {
    let root = dir.root();
    let mut stems = std::collections::BTreeSet::new();
    let receipts = root.join("receipts");
    match std::fs::read_dir(&receipts) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", receipts.display()))?;
                if let Some(stem) = entry.file_name().to_str() {
                    stems.insert(stem.to_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", receipts.display())),
    }
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let entry = entry.with_context(|| format!("reading {}", root.display()))?;
        if let Some(stem) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("ROOT."))
            .and_then(|n| n.strip_suffix(".txt"))
        {
            stems.insert(stem.to_owned());
        }
    }
    let mut scrolls = BTreeMap::new();
    for stem in stems {
        if stem == ScrollName::federation().file_stem() {
            continue;
        }
        let Ok(lower) = stem.parse::<ScrollName>() else {
            tracing::warn!(%stem, "ignoring a file under receipts/ or a ROOT file that is not a scroll name");
            continue;
        };
        let root_path = vm_receipts::scroll::root_file_path(root, &lower);
        let events = vm_receipts::scroll::scroll_path(root, &lower);
        if !events.exists() && !root_path.exists() {
            // A directory with neither: nothing was ever appended.
            continue;
        }
        // The name as written (`Compliance`) is only in the signed ROOT file.
        let name = match vm_receipts::scroll::read_root_file(root, &lower) {
            Ok(Some(signed)) => match signed.verify(&dir.key().public_key()) {
                Ok(()) => signed.scroll,
                Err(e) => anyhow::bail!(damaged_root(
                    dir,
                    &root_path,
                    &format!("its signature does not verify with our key ({e})")
                )),
            },
            Ok(None) => lower,
            Err(e) => anyhow::bail!(damaged_root(dir, &root_path, &e.to_string())),
        };
        let (scroll, _) =
            Scroll::open(root, &name).with_context(|| format!("opening scroll {name}"))?;
        if let Ok(Some(signed)) = vm_receipts::scroll::read_root_file(root, &name)
            && signed.size < scroll.len()
        {
            // Receipts acknowledged before the ROOT file could be written (a full disk).
            let fresh = scroll.sign_root(dir.key(), dir.mesh_id(), SystemClock.now())?;
            write_root_file(root, &fresh)?;
            tracing::info!(scroll = %name, from = signed.size, to = scroll.len(), "ROOT file brought up to the scroll's durable receipts");
        }
        scrolls.insert(stem, scroll);
    }
    Ok(scrolls)
}

/// The error for a user scroll's damaged ROOT file: refused, since it alone holds the
/// scroll's name as written, and says how to re-sign it once the operator names the scroll.
fn damaged_root(dir: &DataDir, path: &Path, problem: &str) -> String {
    format!(
        "{}: {problem}. It is the only record of the scroll's name as written; nothing is \
         re-signed or renamed without you. Restore it from a backup, or run `vm-federation \
         scroll root --data-dir {} --scroll <Name as written> --resign` (it checks the scroll \
         first)",
        path.display(),
        dir.root().display()
    )
}

/// `<data-dir>/listen.json`: the addresses the OS picked for listen addresses configured with
/// port 0, kept so a restart listens where peers last saw us.
const LISTEN_FILE: &str = "listen.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Listen {
    /// `[network] listen` when the ports were picked (another configuration picks again).
    configured: Vec<String>,
    /// What the listeners bound.
    bound: Vec<String>,
}

/// The addresses bound on an earlier start with the same `[network] listen`, if any was
/// configured with port 0.
pub(super) fn remembered_listen(root: &Path, configured: &[String]) -> Option<Vec<String>> {
    if !configured.iter().any(|a| picks_a_port(a)) {
        return None;
    }
    let bytes = std::fs::read(root.join(LISTEN_FILE)).ok()?;
    let listen: Listen = serde_json::from_slice(&bytes).ok()?;
    (listen.configured == configured && !listen.bound.is_empty()).then_some(listen.bound)
}

/// Records the bound addresses (best effort: losing them only means new ports next time).
pub(super) fn remember_listen(root: &Path, configured: &[String], bound: &[String]) {
    if !configured.iter().any(|a| picks_a_port(a)) {
        return;
    }
    let listen = Listen {
        configured: configured.to_vec(),
        bound: bound.to_vec(),
    };
    let path = root.join(LISTEN_FILE);
    let tmp = root.join(".listen.json.tmp");
    let written = serde_json::to_vec_pretty(&listen)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "cannot record the listen ports; the next start picks new ones");
    }
}

/// `/ip4/…/tcp/0` or `/ip4/…/udp/0/quic-v1`: the OS picks the port.
fn picks_a_port(addr: &str) -> bool {
    addr.contains("/tcp/0/") || addr.ends_with("/tcp/0") || addr.contains("/udp/0/")
}
