//! `vm-federation scroll append|verify|root|proof|check-proof`: scrolls on disk, no daemon.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, bail};
use hyper::Method;
use serde::Serialize;
use serde_json::{Map, Value, json};
use vm_receipts::documents::SignedDocument;
use vm_receipts::jcs::{self, Numbers};
use vm_receipts::proof::ReceiptProof;
use vm_receipts::scroll::{
    RootFileCheck, Scroll, ScrollError, read_root_file, scroll_path, verify_scroll, write_root_file,
};
use vm_receipts::{MeshId, PublicKey, ScrollName};

use super::{DataDirArg, Output};
use crate::anchor::{AnchorCheck, AnchorTrust, TsaTrust};
use crate::clock::{Clock, SystemClock};
use crate::data_dir::DataDir;
use crate::node::client::{call, node_running};

/// Largest group commit the CLI makes.
const MAX_BATCH: usize = 65_536;

#[derive(Debug, clap::Subcommand)]
pub(super) enum ScrollCommand {
    /// Append receipts (JSON objects, one per line) from a file or stdin, durably, then sign
    /// the new root into ROOT.<scroll>.txt.
    Append(AppendArgs),
    /// Recompute the whole scroll and its ROOT file; name the first divergence.
    Verify(ScrollArgs),
    /// Show the scroll's current root and the signed root in its ROOT file; `--resign`
    /// writes a fresh one (after the scroll verifies) under the name given.
    Root(RootArgs),
    /// Export a proof: inclusion of one receipt (`--sequence`), checkable by a third party
    /// with `check-proof`, or consistency between two sizes (`--from-size`).
    Proof(ProofArgs),
    /// Check a receipt proof made by `scroll proof --sequence` against a mesh's public key.
    CheckProof(CheckProofArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct ScrollArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The scroll (`Federation`, `Compliance`, …).
    #[arg(long)]
    scroll: ScrollName,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct RootArgs {
    #[command(flatten)]
    scroll: ScrollArgs,
    /// Replace the ROOT file (damaged, or lost) with one signed now for the scroll as it
    /// verifies, under the name given by `--scroll` (its case is kept as written).
    #[arg(long)]
    resign: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct AppendArgs {
    #[command(flatten)]
    scroll: ScrollArgs,
    /// Read receipts from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Most receipts per fdatasync (group commit). Receipts that arrive together share a sync.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64))]
    batch: u32,
}

#[derive(Debug, clap::Args)]
pub(super) struct ProofArgs {
    #[command(flatten)]
    scroll: ScrollArgs,
    /// The receipt to prove (its sequence, from 0).
    #[arg(
        long,
        conflicts_with = "from_size",
        required_unless_present = "from_size"
    )]
    sequence: Option<u64>,
    /// Prove that the scroll at this size is a prefix of the scroll at `--size`.
    #[arg(long)]
    from_size: Option<u64>,
    /// The tree size to prove against; default: the size signed in the ROOT file.
    #[arg(long)]
    size: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub(super) struct CheckProofArgs {
    /// The proof file (`scroll proof --sequence` output); default stdin.
    #[arg(long, value_name = "FILE")]
    proof: Option<PathBuf>,
    /// The public key of the mesh whose scroll it is (`ed25519:z6Mk…`).
    #[arg(long)]
    public_key: PublicKey,
    /// Check the root through another mesh's anchor instead: a `peer` anchor proof from
    /// `anchor peer-proof` (the anchoring mesh's key goes in `--anchor-key`).
    #[arg(long, value_name = "FILE")]
    peer_anchor: Option<PathBuf>,
    /// For an `rfc3161` anchor: PEM files of the TSA certificates to trust.
    #[arg(long, value_name = "PEM")]
    tsa_trust: Vec<PathBuf>,
    /// For a `peer` anchor: the anchoring mesh and its key, `did:vm:mesh:berlin=ed25519:z6Mk…`
    /// (repeatable).
    #[arg(long, value_name = "MESH=KEY", value_parser = parse_mesh_key)]
    anchor_key: Vec<(MeshId, PublicKey)>,
    /// Accept a proof without any anchor: it then shows only that the mesh signed the root,
    /// which it could sign again otherwise (refused by default).
    #[arg(long)]
    allow_unanchored: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_mesh_key(text: &str) -> Result<(MeshId, PublicKey), String> {
    let (mesh, key) = text
        .split_once('=')
        .ok_or_else(|| "expected MESH=KEY".to_owned())?;
    Ok((
        MeshId::parse_flexible(mesh).map_err(|e| e.to_string())?,
        key.parse()
            .map_err(|e: vm_receipts::EncodingError| e.to_string())?,
    ))
}

/// Checks the proof's anchor, if it has one, with the mesh's key, the `--anchor-key`s and the
/// TSA certificates given.
fn check_anchor(
    proof: &ReceiptProof,
    args: &CheckProofArgs,
    tsa: Option<&TsaTrust>,
) -> anyhow::Result<Option<AnchorCheck>> {
    let mesh = proof.signed_root.mesh_id.clone();
    let peer_anchored = match &args.peer_anchor {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let value = jcs::parse(bytes.trim_ascii(), Numbers::IntegersOnly)
                .context("the peer anchor is not valid JSON")?;
            let anchored: crate::anchor::PeerAnchored =
                serde_json::from_value(value).context("not a peer anchor proof")?;
            let r = &proof.signed_root;
            if (
                &anchored.mesh_id,
                &anchored.scroll,
                anchored.size,
                &anchored.root,
            ) != (&r.mesh_id, &r.scroll, r.size, &r.root)
            {
                bail!(
                    "the peer anchor covers {}'s {} at size {} ({}), not the signed root of the proof ({} at size {})",
                    anchored.mesh_id,
                    anchored.scroll,
                    anchored.size,
                    anchored.root,
                    r.scroll,
                    r.size
                );
            }
            Some(anchored)
        }
        None => None,
    };
    if peer_anchored.is_none() && proof.anchor_proof.is_none() {
        if args.allow_unanchored {
            return Ok(None);
        }
        bail!(
            "the proof carries no anchor proof: it shows only that {mesh} signed this root, which {mesh} could sign again otherwise; make the proof through the running node (`scroll proof` then proves against the anchored root), check it through a peer's anchor (--peer-anchor), or accept a signature alone with --allow-unanchored"
        );
    }
    let key_of = |m: &MeshId| {
        if m == &mesh {
            return Some(args.public_key);
        }
        args.anchor_key
            .iter()
            .find(|(k, _)| k == m)
            .map(|(_, key)| *key)
    };
    let trust = AnchorTrust {
        key_of: &key_of,
        tsa,
    };
    let now = SystemClock.now();
    let check = match (&peer_anchored, &proof.anchor_proof) {
        (Some(anchored), _) => crate::anchor::verify_peer_anchored(anchored, &trust, now),
        (None, Some(own)) => crate::anchor::verify(own, &proof.signed_root, &trust, now),
        (None, None) => return Ok(None),
    }
    .context("the anchor proof does not hold")?;
    Ok(Some(check))
}

pub(super) fn run(command: ScrollCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        ScrollCommand::Append(args) => append(args, out),
        ScrollCommand::Verify(args) => verify(args, out),
        ScrollCommand::Root(args) => root(args, out),
        ScrollCommand::Proof(args) => proof(args, out),
        ScrollCommand::CheckProof(args) => check_proof(args, out),
    }
}

/// One input line, typed (with its length), or the reason it was refused.
enum Incoming {
    Receipt(Map<String, Value>, usize),
    Refused { line: u64, reason: String },
}

/// What arrived together: the receipts of one group commit, and a refused line that ends the
/// input after them.
struct Arrived {
    receipts: Vec<Map<String, Value>>,
    refused: Option<String>,
}

/// Waits for the next input line, then takes whatever else has already arrived, up to `max`
/// receipts or `max_bytes` of them: a steady stream shares syncs, and a trickle (`tail -f`) is
/// appended and acknowledged line by line as it comes. `None` once the input is done.
fn next_arrived(rx: &mpsc::Receiver<Incoming>, max: usize, max_bytes: usize) -> Option<Arrived> {
    let mut arrived = Arrived {
        receipts: Vec::new(),
        refused: None,
    };
    let mut bytes = 0;
    let mut next = Some(rx.recv().ok()?);
    while let Some(incoming) = next.take() {
        match incoming {
            Incoming::Receipt(r, len) => {
                arrived.receipts.push(r);
                bytes += len;
            }
            Incoming::Refused { line, reason } => {
                arrived.refused = Some(format!("input line {line}: {reason}"));
                break;
            }
        }
        if arrived.receipts.len() < max && bytes < max_bytes {
            next = rx.try_recv().ok();
        }
    }
    Some(arrived)
}

/// The text form of one group commit's acknowledgement.
fn acknowledged(first: u64, last: u64, root_hash: &impl std::fmt::Display) -> String {
    if first == last {
        format!("acknowledged receipt-sequence-{first} (root {root_hash})")
    } else {
        format!(
            "acknowledged receipt-sequence-{first} to receipt-sequence-{last} (root {root_hash})"
        )
    }
}

fn append(args: AppendArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    if args.scroll.scroll == ScrollName::federation() {
        // The node writes its Federation scroll itself, each event exactly once; receipts
        // appended by hand would stand beside them unverified.
        bail!("the Federation scroll is written by the node itself; append to another scroll");
    }
    if node_running(&args.scroll.dir.data_dir) {
        return append_through_node(args, out);
    }
    let dir = DataDir::open(&args.scroll.dir.data_dir)?;
    let (mut scroll, report) = Scroll::open(dir.root(), &args.scroll.scroll)?;
    if report.torn_bytes_cut > 0 {
        tracing::warn!(
            bytes = report.torn_bytes_cut,
            "cut a torn last line left by an interrupted append"
        );
    }
    let input: Box<dyn Read + Send> = match &args.file {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => Box::new(io::stdin()),
    };
    let batch_max = usize::try_from(args.batch).unwrap_or(1);
    // A reader thread parses lines into a bounded queue; the writer takes whatever has
    // arrived (up to --batch) as one group commit, so a steady stream shares syncs and a
    // trickle is acknowledged as soon as each receipt is on disk.
    let (tx, rx) = mpsc::sync_channel::<Incoming>(batch_max.min(4096));
    let reader = std::thread::spawn(move || read_receipts(input, tx));

    let first = scroll.len();
    let mut refused = None;
    while let Some(Arrived {
        receipts: batch,
        refused: stop,
    }) = next_arrived(&rx, batch_max, usize::MAX)
    {
        refused = stop;
        if !batch.is_empty() {
            let appended = match scroll.append_batch(&batch) {
                Ok(appended) => appended,
                Err(e @ ScrollError::InvalidReceipt { .. }) => return Err(e.into()),
                Err(e) => bail!(
                    "the write failed: {e}. {} receipts were appended and acknowledged before \
                     it (the scroll now holds at least {}); the {} of the failed batch are not \
                     acknowledged, but a failed write or sync leaves the file unknown: some may \
                     be in the scroll. Run `vm-federation scroll verify --scroll {}` and compare \
                     its size before appending them again",
                    scroll.len() - first,
                    scroll.len(),
                    batch.len(),
                    scroll.name()
                ),
            };
            if args.scroll.json {
                for a in &appended {
                    out.json(&json!({"sequence": a.sequence, "root_hash": a.root_hash}))?;
                }
            } else if let (Some(a), Some(z)) = (appended.first(), appended.last()) {
                out.line(acknowledged(a.sequence, z.sequence, &z.root_hash))?;
            }
            out.flush()?;
        }
        if refused.is_some() {
            break;
        }
    }
    drop(rx);
    if let Ok(Err(e)) = reader.join() {
        refused.get_or_insert(format!("reading input: {e}"));
    }
    let appended = scroll.len() - first;
    // The receipts are durable and acknowledged: a ROOT file that cannot be written now is a
    // warning (the next append, or the node at start, brings it up to date), not a failure.
    if let Err(e) = scroll
        .sign_root(dir.key(), dir.mesh_id(), SystemClock.now())
        .and_then(|signed| write_root_file(dir.root(), &signed))
    {
        eprintln!(
            "warning: the {appended} receipts are durable, but the ROOT file could not be \
             written ({e}); the next append or the node's start writes it"
        );
    }
    if !args.scroll.json {
        out.line(format!(
            "appended {appended} receipts to {} (now {} receipts, root {})",
            scroll.name(),
            scroll.len(),
            scroll.root()
        ))?;
    }
    if let Some(reason) = refused {
        bail!("{reason}; the {appended} receipts before it were appended, nothing after it");
    }
    Ok(ExitCode::SUCCESS)
}

/// Most bytes of receipts per control request (the socket takes 8 MiB bodies).
const NODE_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// `scroll append` while the node runs: the same input rules, sent in batches over the
/// control socket (each batch is one group commit in the node).
fn append_through_node(args: AppendArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read + Send> = match &args.file {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => Box::new(io::stdin()),
    };
    let (tx, rx) = mpsc::sync_channel::<Incoming>(4096);
    let reader = std::thread::spawn(move || read_receipts(input, tx));
    let dir = &args.scroll.dir.data_dir;
    let name = args.scroll.scroll.to_string();
    let batch_max = usize::try_from(args.batch).unwrap_or(1);
    let mut refused = None;
    let mut appended = 0u64;
    let mut last = Value::Null;
    // One request in flight: what arrives meanwhile is the next request's group commit.
    while let Some(Arrived {
        receipts: batch,
        refused: stop,
    }) = next_arrived(&rx, batch_max, NODE_BATCH_BYTES)
    {
        refused = stop;
        if !batch.is_empty() {
            let receipts: Vec<Value> = batch.into_iter().map(Value::Object).collect();
            let v = call(
                dir,
                Method::POST,
                "/v1/scrolls",
                Some(json!({"op": "append", "scroll": name, "receipts": receipts})),
            )
            .with_context(|| {
                format!("{appended} receipts were appended and acknowledged before this")
            })?;
            let acks = v["appended"].as_array().cloned().unwrap_or_default();
            if args.scroll.json {
                for a in &acks {
                    out.json(a)?;
                }
            } else if let (Some(a), Some(z)) = (acks.first(), acks.last()) {
                out.line(acknowledged(
                    a["sequence"].as_u64().unwrap_or(0),
                    z["sequence"].as_u64().unwrap_or(0),
                    &z["root_hash"].as_str().unwrap_or(""),
                ))?;
            }
            if v["root_file"]["written"] == false {
                eprintln!(
                    "warning: the receipts are durable, but the ROOT file could not be written \
                     ({}); the node retries it",
                    v["root_file"]["error"].as_str().unwrap_or("unknown error")
                );
            }
            out.flush()?;
            appended += acks.len() as u64;
            last = v;
        }
        if refused.is_some() {
            break;
        }
    }
    drop(rx);
    if let Ok(Err(e)) = reader.join() {
        refused.get_or_insert(format!("reading input: {e}"));
    }
    if !args.scroll.json {
        out.line(format!(
            "appended {appended} receipts to {} through the running node (now {} receipts, root {})",
            args.scroll.scroll, last["size"], last["root"]
        ))?;
    }
    if let Some(reason) = refused {
        bail!("{reason}; the {appended} receipts before it were appended, nothing after it");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_receipts(input: Box<dyn Read + Send>, tx: mpsc::SyncSender<Incoming>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let incoming = match jcs::parse(text, Numbers::Any) {
            Ok(Value::Object(map)) => Incoming::Receipt(map, text.len()),
            Ok(_) => Incoming::Refused {
                line: number,
                reason: "a receipt must be a JSON object".into(),
            },
            Err(e) => Incoming::Refused {
                line: number,
                reason: e.to_string(),
            },
        };
        let stop = matches!(incoming, Incoming::Refused { .. });
        if tx.send(incoming).is_err() || stop {
            return Ok(());
        }
    }
}

#[derive(Serialize)]
struct VerifyJson {
    scroll: String,
    ok: bool,
    receipts_verified: u64,
    root: String,
    divergence: Option<Value>,
    root_file: Value,
}

/// Refuses a scroll that does not exist (reading commands must not create one).
fn require_scroll(data_dir: &std::path::Path, name: &ScrollName) -> anyhow::Result<()> {
    let path = scroll_path(data_dir, name);
    if !path.exists() {
        bail!(
            "{} has no scroll {name} ({} does not exist); `scroll append` creates it",
            data_dir.display(),
            path.display()
        );
    }
    Ok(())
}

fn verify(args: ScrollArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (config, public_key) = DataDir::read_identity(&args.dir.data_dir)?;
    require_scroll(&args.dir.data_dir, &args.scroll)?;
    let report = verify_scroll(
        &args.dir.data_dir,
        &args.scroll,
        Some((&config.mesh_id, &public_key)),
    )?;
    let root_file = match &report.root_file {
        RootFileCheck::Missing => json!({"state": "missing"}),
        RootFileCheck::Consistent {
            size,
            signature_checked,
        } => {
            json!({"state": "consistent", "size": size, "signature_checked": signature_checked})
        }
        RootFileCheck::Invalid(reason) => json!({"state": "invalid", "reason": reason}),
    };
    if args.json {
        out.json(&VerifyJson {
            scroll: report.scroll.to_string(),
            ok: report.is_ok(),
            receipts_verified: report.receipts_verified,
            root: report.root.to_string(),
            divergence: report
                .divergence
                .as_ref()
                .map(|d| json!({"sequence": d.sequence, "at": format!("receipt-sequence-{}", d.sequence), "problem": d.problem})),
            root_file,
        })?;
    } else {
        match &report.divergence {
            None => out.line(format!(
                "scroll {}: {} receipts verified, root {}",
                report.scroll, report.receipts_verified, report.root
            ))?,
            Some(d) => out.line(format!(
                "scroll {}: FIRST DIVERGENCE at receipt-sequence-{}: {} ({} receipts before it verified)",
                report.scroll, d.sequence, d.problem, report.receipts_verified
            ))?,
        }
        match &report.root_file {
            RootFileCheck::Missing => out.line("ROOT file: missing")?,
            RootFileCheck::Consistent { size, .. } => out.line(format!(
                "ROOT file: signed by {}, size {size}, consistent",
                config.mesh_id
            ))?,
            RootFileCheck::Invalid(reason) => out.line(format!("ROOT file: INVALID: {reason}"))?,
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn root(args: RootArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let RootArgs {
        scroll: args,
        resign,
    } = args;
    let dir = DataDir::open(&args.dir.data_dir)?;
    require_scroll(dir.root(), &args.scroll)?;
    let (scroll, _) = Scroll::open(dir.root(), &args.scroll)?;
    if resign {
        let old = match read_root_file(dir.root(), &args.scroll) {
            Ok(Some(s)) => format!("size {}, root {}", s.size, s.root),
            Ok(None) => "none".to_owned(),
            Err(e) => format!("damaged: {e}"),
        };
        let fresh = scroll.sign_root(dir.key(), dir.mesh_id(), SystemClock.now())?;
        write_root_file(dir.root(), &fresh)?;
        eprintln!(
            "warning: re-signed the ROOT file of scroll {} ({} receipts, verified) under that \
             name; it was: {old}",
            scroll.name(),
            scroll.len()
        );
    }
    let signed = read_root_file(dir.root(), &args.scroll)?;
    let signature_valid = signed
        .as_ref()
        .map(|s| s.verify(&dir.key().public_key()).is_ok());
    if args.json {
        out.json(&json!({
            "scroll": scroll.name(),
            "size": scroll.len(),
            "root": scroll.root(),
            "signed_root": signed,
            "signature_valid": signature_valid,
        }))?;
    } else {
        out.line(format!(
            "scroll {}: {} receipts, root {}",
            scroll.name(),
            scroll.len(),
            scroll.root()
        ))?;
        match &signed {
            None => out.line("ROOT file: none yet")?,
            Some(s) => out.line(format!(
                "ROOT file: size {}, root {}, signed {} ({})",
                s.size,
                s.root,
                s.timestamp,
                if signature_valid == Some(true) {
                    "signature valid"
                } else {
                    "SIGNATURE INVALID"
                }
            ))?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn proof(args: ProofArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    if let (Some(sequence), None) = (args.sequence, args.size)
        && node_running(&args.scroll.dir.data_dir)
    {
        // The running node proves against its latest anchored root and adds the anchor
        // proof, so a third party needs only the mesh's key (and, for rfc3161, the TSA's).
        let v = call(
            &args.scroll.dir.data_dir,
            Method::POST,
            "/v1/scrolls",
            Some(
                json!({"op": "scroll_proof", "scroll": args.scroll.scroll.to_string(), "sequence": sequence}),
            ),
        )?;
        out.json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = DataDir::open(&args.scroll.dir.data_dir)?;
    let name = &args.scroll.scroll;
    require_scroll(dir.root(), name)?;
    let (scroll, _) = Scroll::open(dir.root(), name)?;
    let signed = read_root_file(dir.root(), name)?;
    if let Some(sequence) = args.sequence {
        // As the running node does: against the latest anchored root, with its anchor proof.
        if args.size.is_none() {
            match latest_anchor(dir.root(), name) {
                Some(anchored) => {
                    match crate::anchor::anchored_receipt_proof(&scroll, &anchored, sequence) {
                        Ok(proof) => {
                            out.json(&proof)?;
                            return Ok(ExitCode::SUCCESS);
                        }
                        Err(e) => eprintln!("note: {e}; the proof below has no anchor"),
                    }
                }
                None => eprintln!(
                    "note: scroll {name} has no anchor in this data directory; the proof below has none (`check-proof` refuses it without --allow-unanchored)"
                ),
            }
        }
        // A third party checks the proof against a root the mesh signed, so by default the
        // proof is for the ROOT file's size; `--size` signs a fresh root for that size.
        let signed_root = match (args.size, signed) {
            (None, Some(s)) => s,
            (None, None) => scroll.sign_root(dir.key(), dir.mesh_id(), SystemClock.now())?,
            (Some(size), _) => vm_receipts::documents::SignedRoot::new(
                dir.key(),
                dir.mesh_id().clone(),
                name.clone(),
                size,
                scroll.root_at(size)?,
                SystemClock.now(),
            )?,
        };
        let receipt: Value = serde_json::from_slice(&scroll.read_line(sequence)?)?;
        let proof = ReceiptProof {
            receipt,
            inclusion: scroll.prove_inclusion(sequence, signed_root.size)?,
            signed_root,
            anchor_proof: None,
        };
        out.json(&proof)?;
    } else if let Some(old_size) = args.from_size {
        let new_size = args.size.or(signed.map(|s| s.size)).unwrap_or(scroll.len());
        let proof = scroll.prove_consistency(old_size, new_size)?;
        out.json(&json!({
            "old_root": scroll.root_at(old_size)?,
            "new_root": scroll.root_at(new_size)?,
            "proof": proof,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The latest anchored root of `name` that the stopped node's state holds, if any (a state
/// that cannot be opened has none to offer: the proof is then made without an anchor).
fn latest_anchor(
    root: &std::path::Path,
    name: &ScrollName,
) -> Option<vm_receipts::documents::AnchorNotification> {
    let path = root.join("state.redb");
    if !path.exists() {
        return None;
    }
    let store = vm_storage::Store::open(&path).ok()?;
    store
        .get::<vm_storage::AnchoredRoot>(&name.file_stem())
        .ok()
        .flatten()
        .map(|a| a.notification)
}

fn check_proof(args: CheckProofArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut bytes = Vec::new();
    match &args.proof {
        Some(path) => File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => io::stdin().read_to_end(&mut bytes)?,
    };
    let proof = ReceiptProof::parse(bytes.trim_ascii())?;
    let tsa = if args.tsa_trust.is_empty() {
        None
    } else {
        Some(TsaTrust::from_pem_files(&args.tsa_trust)?)
    };
    let result = proof
        .verify(&args.public_key)
        .map_err(anyhow::Error::from)
        .and_then(|()| check_anchor(&proof, &args, tsa.as_ref()));
    let anchored = result.as_ref().ok().cloned().flatten();
    if args.json {
        out.json(&json!({
            "ok": result.is_ok(),
            "mesh_id": proof.signed_root.mesh_id,
            "scroll": proof.signed_root.scroll,
            "leaf_index": proof.inclusion.leaf_index,
            "tree_size": proof.signed_root.size,
            "anchor": anchored.as_ref().map(|a| json!({"backend": a.backend, "anchored_at": a.anchored_at, "anchoring_mesh": a.anchoring_mesh})),
            "error": result.as_ref().err().map(ToString::to_string),
        }))?;
    } else if let Err(e) = &result {
        out.line(format!("proof INVALID: {e}"))?;
    } else {
        out.line(format!(
            "proof valid: receipt-sequence-{} is in {}'s scroll {} at size {} (root {})",
            proof.inclusion.leaf_index,
            proof.signed_root.mesh_id,
            proof.signed_root.scroll,
            proof.signed_root.size,
            proof.signed_root.root
        ))?;
        match &anchored {
            Some(a) => match &a.anchoring_mesh {
                Some(by) => out.line(format!(
                    "anchored through {}: {by} anchored the root at {}",
                    a.backend, a.anchored_at
                ))?,
                None => out.line(format!(
                    "anchored through {} at {}",
                    a.backend, a.anchored_at
                ))?,
            },
            None => out.line(
                "NOT ANCHORED: the proof carries no anchor proof (accepted with --allow-unanchored)",
            )?,
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
