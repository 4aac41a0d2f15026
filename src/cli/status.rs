//! `status`: the verdict first (ok / degraded / alarm, with reasons), then each federated
//! peer at a glance, then the node's own scrolls, network and anchor.

use std::process::ExitCode;

use hyper::Method;
use serde_json::Value;

use super::remote::{JsonArg, print, s};
use super::{DataDirArg, Output};
use crate::node::client::call;

#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Show ended agreements (revoked, abandoned) and their peers too.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    json: JsonArg,
}

pub(super) fn status(args: StatusArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = if args.all {
        "/v1/status/all"
    } else {
        "/v1/status"
    };
    let v = call(&args.dir.data_dir, Method::GET, path, None)?;
    print(out, args.json.json, &v, |out, v| {
        out.line(format!(
            "status:      {}",
            s(&v["verdict"]["state"]).to_uppercase()
        ))?;
        for r in v["verdict"]["reasons"].as_array().into_iter().flatten() {
            out.line(format!("  - {}", s(r)))?;
        }
        out.line(format!("mesh:        {}", s(&v["mesh_id"])))?;
        out.line(format!("peer id:     {}", s(&v["peer_id"])))?;
        for a in v["network"]["listen_addrs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.line(format!("listening:   {}", s(a)))?;
        }
        if let Some(api) = v["federation_api"].as_str() {
            out.line(format!("https api:   {api}"))?;
        }
        out.line(format!(
            "connections: {}  routing table: {}  known meshes: {}  proposals: {}",
            s(&v["network"]["connections"]),
            s(&v["network"]["routing_table"]),
            s(&v["known_peers"]),
            s(&v["proposals"])
        ))?;
        for sc in v["scrolls"].as_array().into_iter().flatten() {
            out.line(format!(
                "scroll {}: {} receipts, root {}",
                s(&sc["scroll"]),
                s(&sc["size"]),
                s(&sc["root"])
            ))?;
        }
        let last = &v["anchor"]["last_cycle"];
        out.line(format!(
            "anchor:      {} every {} s; last cycle {}",
            s(&v["anchor"]["backend"]),
            s(&v["anchor"]["interval_secs"]),
            s(&last["started"]),
        ))?;
        let peers = v["peers"].as_array().cloned().unwrap_or_default();
        if peers.is_empty() {
            out.line("peers:       none federated")?;
        }
        for p in &peers {
            peer(out, p)?;
        }
        let d = &v["witness"]["discrepancies"];
        out.line(format!(
            "discrepancies: {} found by us, {} reported to us, {} unresolved",
            s(&d["found_by_us"]),
            s(&d["reported_to_us"]),
            s(&d["unresolved"])
        ))?;
        Ok(())
    })
}

/// One federated peer: who, on what terms, how reached, and witnessing both ways.
fn peer(out: &mut Output, p: &Value) -> anyhow::Result<()> {
    let name = p["name"]
        .as_str()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    out.line(format!(
        "peer {}{name}: level {}, {}, verified {}",
        s(&p["mesh_id"]),
        s(&p["trust_level"]),
        s(&p["agreement_status"]),
        s(&p["verification_frequency"]),
    ))?;
    let contact = match p["last_contact"].as_str() {
        Some(at) => format!("last heard {at} over {}", s(&p["transport"])),
        None => "not heard from since the node started".to_owned(),
    };
    out.line(format!("  {contact}"))?;
    for sc in p["scrolls"].as_array().into_iter().flatten() {
        let ours = match sc["witnessed_size"].as_u64() {
            Some(size) => format!(
                "we witnessed size {size} {} s ago ({})",
                s(&sc["witnessed_age_secs"]),
                s(&sc["witnessed_result"])
            ),
            None => "not witnessed yet".to_owned(),
        };
        let late = if sc["overdue"] == true {
            "  OVERDUE"
        } else {
            ""
        };
        let theirs = match sc["their_attestation"].as_object() {
            Some(a) => format!(
                "they attested our size {} at {} ({})",
                s(&a["size"]),
                s(&a["at"]),
                s(&a["result"])
            ),
            None => "no attestation of ours from them".to_owned(),
        };
        out.line(format!("  {}: {ours}; {theirs}{late}", s(&sc["scroll"])))?;
    }
    let pending = p["pending_messages"].as_u64().unwrap_or(0);
    if pending > 0 {
        out.line(format!(
            "  {pending} message(s) waiting; last error: {}",
            s(&p["last_delivery_error"])
        ))?;
    }
    Ok(())
}
