//! The witness commands (seed §8 "Verification"): `verify`, `witness-history`, plus
//! `anchor now` and `discrepancies`, each one request to the running node.

use std::process::ExitCode;

use anyhow::Context;
use hyper::Method;
use serde_json::{Value, json};
use vm_receipts::documents::{ResolutionOutcome, VerificationFrequency};

use super::remote::{JsonArg, s};
use super::{DataDirArg, Output};
use crate::node::client::call;

#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The peer mesh (`did:vm:mesh:berlin` or `berlin`).
    #[arg(long)]
    mesh: String,
    /// Its scroll (shared under the agreement).
    #[arg(long)]
    scroll: String,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, clap::Args)]
pub(super) struct HistoryArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The peer mesh.
    #[arg(long)]
    mesh: String,
    /// How far back: `30d`, `12h`, `90m`, `3600s`.
    #[arg(long, default_value = "30d")]
    last: VerificationFrequency,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum AnchorCommand {
    /// Run an anchor cycle now: sign every scroll's root, anchor the batch, notify peers.
    Now(super::remote::ReadArgs),
    /// From a `fed_cross_anchor` receipt (a line of the anchoring mesh's Federation scroll,
    /// or its `scroll proof`), the peer's root and the `peer` anchor proof of it, for
    /// `scroll check-proof --peer-anchor` (offline; no node needed).
    PeerProof {
        /// The receipt (or receipt proof) file; default stdin.
        #[arg(long, value_name = "FILE")]
        receipt: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum DiscrepanciesCommand {
    /// Every discrepancy found by us or reported to us, with its evidence and whether the
    /// evidence is a proof on its own.
    List(super::remote::ReadArgs),
    /// One discrepancy: the finding, its evidence and whether it is a proof, its
    /// resolutions, and how to check it offline.
    Show {
        /// Its id (`discrepancies list` shows them), or `<reporting mesh>/<id>`.
        id: String,
        #[command(flatten)]
        read: super::remote::ReadArgs,
    },
    /// Ask a third mesh that witnesses the reported mesh to arbitrate a discrepancy (seed
    /// §6.3 step 3): it checks the signed report and evidence against its own view and sends
    /// both parties a signed verdict (`discrepancies show` lists it once it arrives).
    Arbitrate {
        /// Its id, or `<reporting mesh>/<id>`.
        id: String,
        /// The arbiter (`did:vm:mesh:singapore` or `singapore`).
        #[arg(long)]
        arbiter: String,
        #[command(flatten)]
        read: super::remote::ReadArgs,
    },
    /// Resolve a discrepancy (seed §6.3): signed, recorded as `fed_discrepancy_resolved` on
    /// both sides and sent to the other mesh. A resolution by the mesh that made the finding
    /// closes it on both sides; one by the reported mesh closes only its own copy.
    Resolve {
        /// Its id, or `<reporting mesh>/<id>`.
        id: String,
        /// How it ended.
        #[arg(long, value_parser = parse_outcome)]
        outcome: ResolutionOutcome,
        /// What was done or found (required; at most 1024 characters).
        #[arg(long)]
        note: String,
        #[command(flatten)]
        read: super::remote::ReadArgs,
    },
}

fn parse_outcome(s: &str) -> Result<ResolutionOutcome, String> {
    s.parse()
}

/// `verify`: exit 0 when the root verified, 1 when a discrepancy was recorded.
/// `verify` found a discrepancy.
const EXIT_DISCREPANCY: u8 = 3;
/// `verify` reached no verdict: the peer did not answer.
const EXIT_UNREACHABLE: u8 = 4;

pub(super) fn verify(args: VerifyArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = match call(
        &args.dir.data_dir,
        Method::POST,
        "/v1/witness",
        Some(json!({"op": "verify", "mesh": args.mesh, "scroll": args.scroll})),
    ) {
        Ok(v) => v,
        Err(e)
            if e.downcast_ref::<crate::node::client::NodeRefused>()
                .is_some_and(|r| r.code == "unreachable") =>
        {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_UNREACHABLE));
        }
        Err(e) => return Err(e),
    };
    let result = v["verdict"]["result"].as_str().unwrap_or("").to_owned();
    if args.json.json {
        out.json(&v)?;
    } else {
        out.line(format!(
            "{} {} at size {} root {}: {}",
            s(&v["peer"]),
            s(&v["scroll"]),
            s(&v["size"]),
            s(&v["root"]),
            result
        ))?;
        match result.as_str() {
            "verified" => out.line(format!(
                "anchor {} (anchored {}), {} samples checked",
                s(&v["verdict"]["anchor"]),
                s(&v["verdict"]["anchored_at"]),
                s(&v["verdict"]["samples_checked"])
            ))?,
            "discrepancy" => out.line(format!(
                "{}: {} (evidence: {})",
                s(&v["verdict"]["discrepancy_type"]),
                v["verdict"]["details"],
                s(&v["verdict"]["evidence_kind"])
            ))?,
            _ => {}
        }
    }
    Ok(if result == "discrepancy" {
        ExitCode::from(EXIT_DISCREPANCY)
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) fn history(args: HistoryArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = call(
        &args.dir.data_dir,
        Method::POST,
        "/v1/witness",
        Some(json!({
            "op": "witness_history",
            "mesh": args.mesh,
            "since_secs": args.last.interval_secs(),
        })),
    )?;
    if args.json.json {
        out.json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let events = v["events"].as_array().cloned().unwrap_or_default();
    out.line(format!(
        "{} witness events with {} since {}",
        events.len(),
        s(&v["mesh"]),
        s(&v["since"])
    ))?;
    for e in &events {
        out.line(format!(
            "{}  {} witnessed {} {} size {}: {} ({} samples)",
            s(&e["timestamp"]),
            s(&e["witnessing_mesh"]),
            s(&e["witnessed_mesh"]),
            s(&e["scroll"]),
            s(&e["witnessed_size"]),
            s(&e["verification_result"]),
            s(&e["samples_checked"])
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn anchor(command: AnchorCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    let args = match command {
        AnchorCommand::Now(args) => args,
        AnchorCommand::PeerProof { receipt } => return peer_proof(receipt.as_deref(), out),
    };
    let v = call(&args.dir.data_dir, Method::POST, "/v1/anchor", None)?;
    if args.json.json {
        out.json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    out.line(format!(
        "anchored {} roots through {} (batch root {}, {} cross-anchored)",
        s(&v["batch_size"]),
        s(&v["backend"]),
        s(&v["batch_root"]),
        s(&v["cross_anchored"])
    ))?;
    for sc in v["scrolls"].as_array().into_iter().flatten() {
        out.line(format!(
            "  {} size {} root {}",
            s(&sc["scroll"]),
            s(&sc["size"]),
            s(&sc["root"])
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn discrepancies(
    command: DiscrepanciesCommand,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let args = match command {
        DiscrepanciesCommand::List(args) => args,
        DiscrepanciesCommand::Show { id, read } => return show_discrepancy(&id, &read, out),
        DiscrepanciesCommand::Arbitrate { id, arbiter, read } => {
            let done = format!(
                "asked {arbiter} to arbitrate {id}; its signed verdict will show in \
                 `discrepancies show {id}`"
            );
            let op = json!({"op": "arbitrate_discrepancy", "id": id, "arbiter": arbiter});
            return discrepancy_op(&read, op, done, out);
        }
        DiscrepanciesCommand::Resolve {
            id,
            outcome,
            note,
            read,
        } => {
            let done =
                format!("resolved {id} as {outcome}; the other mesh is sent the signed resolution");
            let op = json!({
                "op": "resolve_discrepancy",
                "id": id,
                "outcome": outcome.as_str(),
                "note": note,
            });
            return discrepancy_op(&read, op, done, out);
        }
    };
    let v = call(&args.dir.data_dir, Method::GET, "/v1/discrepancies", None)?;
    if args.json.json {
        out.json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list: &[Value] = v.as_array().map_or(&[], Vec::as_slice);
    if list.is_empty() {
        out.line("no discrepancies")?;
    }
    for d in list {
        let r = &d["report"];
        out.line(format!(
            "{}  {} {} reported by {} about {} ({}), scroll {}, evidence {}",
            s(&r["timestamp"]),
            s(&r["discrepancy_id"]),
            s(&r["discrepancy_type"]),
            s(&r["reporting_mesh"]),
            s(&r["reported_mesh"]),
            s(&r["severity"]),
            s(&r["details"]["scroll"]),
            s(&d["evidence_check"]["standing"])
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A `POST /v1/discrepancies` operation that changes something: its JSON reply, or `done`.
fn discrepancy_op(
    read: &super::remote::ReadArgs,
    op: Value,
    done: String,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let v = call(
        &read.dir.data_dir,
        Method::POST,
        "/v1/discrepancies",
        Some(op),
    )?;
    if read.json.json {
        out.json(&v)?;
    } else {
        out.line(done)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show_discrepancy(
    id: &str,
    args: &super::remote::ReadArgs,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let v = call(
        &args.dir.data_dir,
        Method::POST,
        "/v1/discrepancies",
        Some(json!({"op": "show_discrepancy", "id": id})),
    )?;
    if args.json.json {
        out.json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &v["report"];
    out.line(format!(
        "{} {} ({}), {}",
        s(&r["discrepancy_id"]),
        s(&r["discrepancy_type"]),
        s(&r["severity"]),
        s(&r["timestamp"])
    ))?;
    out.line(format!(
        "  reported by {} about {}, scroll {}",
        s(&r["reporting_mesh"]),
        s(&r["reported_mesh"]),
        s(&r["details"]["scroll"])
    ))?;
    out.line(format!("  details: {}", r["details"]))?;
    out.line(format!(
        "  evidence: {} ({}); seen {} time(s)",
        s(&v["evidence_check"]["standing"]),
        s(&v["evidence_check"]["kind"]),
        s(&v["times_seen"])
    ))?;
    out.line(format!("  {}", s(&v["meaning"])))?;
    match v["resolved_at"].as_str() {
        Some(at) => out.line(format!("  closed at {at}"))?,
        None => out.line("  open")?,
    }
    for res in v["resolutions"].as_array().into_iter().flatten() {
        out.line(format!(
            "  resolved by {} at {}: {} ({})",
            s(&res["resolved_by"]),
            s(&res["timestamp"]),
            s(&res["outcome"]),
            s(&res["note"])
        ))?;
    }
    for a in v["arbitrations"].as_array().into_iter().flatten() {
        out.line(format!(
            "  arbitrated by {} at {}: {} (evidence {}): {}",
            s(&a["arbiter"]),
            s(&a["timestamp"]),
            s(&a["outcome"]),
            s(&a["evidence_standing"]),
            s(&a["reason"])
        ))?;
    }
    out.line("  to check it with no node:")?;
    for step in v["check_offline"].as_array().into_iter().flatten() {
        out.line(format!("    - {}", s(step)))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn peer_proof(path: Option<&std::path::Path>, out: &mut Output) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let mut bytes = Vec::new();
    match path {
        Some(p) => {
            bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        }
        None => {
            std::io::stdin().read_to_end(&mut bytes)?;
        }
    }
    let value = vm_receipts::jcs::parse(bytes.trim_ascii(), vm_receipts::jcs::Numbers::Any)
        .context("the receipt is not valid JSON")?;
    // A receipt proof carries the receipt under `receipt`.
    let receipt = match value.get("receipt") {
        Some(r) if value.get("inclusion").is_some() => r.clone(),
        _ => value,
    };
    let parsed = vm_receipts::receipts::receipt_from_value(receipt)?;
    let vm_receipts::receipts::FederationReceipt::CrossAnchor(cross) = parsed else {
        anyhow::bail!("not a fed_cross_anchor receipt");
    };
    let anchored = crate::anchor::peer_proof_from_receipt(&cross)?;
    out.json(&anchored)?;
    Ok(ExitCode::SUCCESS)
}
