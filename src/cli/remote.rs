//! The operator commands of seed §8, each one request to the running node's control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hyper::Method;
use serde_json::{Value, json};

use super::{DataDirArg, Output};
use crate::node::client::call;

/// `--json`, on every read command.
#[derive(Debug, clap::Args)]
pub(super) struct JsonArg {
    /// Print the node's answer as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct DiscoverArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// A mesh id (`did:vm:mesh:berlin`, looked up in the DHT) or a domain
    /// (`vaultmesh-berlin.io`, looked up through DNS SRV and TXT records).
    #[arg(long, required_unless_present = "public", conflicts_with = "public")]
    mesh: Option<String>,
    /// Instead: every mesh announcing itself under `/vaultmesh/public` in the DHT.
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, clap::Args)]
pub(super) struct ReadArgs {
    #[command(flatten)]
    pub(super) dir: DataDirArg,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, clap::Args)]
pub(super) struct HealthArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Every known mesh, not only federated peers (exit 1 when a federated peer is
    /// unreachable either way).
    #[arg(long)]
    all_peers: bool,
    #[command(flatten)]
    json: JsonArg,
}

/// Terms, from a file or from flags.
#[derive(Debug, clap::Args)]
pub(super) struct TermsArgs {
    /// A JSON file with the terms (`scrolls_to_share`, `verification_frequency`,
    /// `retention_period_days`, …); overrides the flags below.
    #[arg(long, value_name = "FILE")]
    terms: Option<PathBuf>,
    /// Scrolls to share, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "Federation")]
    scrolls: Vec<String>,
    /// How often to witness: hourly, daily, weekly, or an interval such as `6h`.
    #[arg(long, default_value = "daily")]
    frequency: String,
    /// Days witnessed material is kept.
    #[arg(long, default_value_t = 365)]
    retention_days: u32,
}

impl TermsArgs {
    fn value(&self) -> anyhow::Result<Value> {
        match &self.terms {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))
            }
            None => Ok(json!({
                "scrolls_to_share": self.scrolls,
                "verification_frequency": self.frequency,
                "retention_period_days": self.retention_days,
            })),
        }
    }
}

/// A counter's terms: the terms on the table (the latest counter's, or the proposal's), with
/// only what the flags name changed; or a whole file.
#[derive(Debug, clap::Args)]
pub(super) struct CounterTermsArgs {
    /// A JSON file with the whole terms; overrides the flags below.
    #[arg(long, value_name = "FILE")]
    terms: Option<PathBuf>,
    /// Scrolls to share, comma separated (default: as on the table).
    #[arg(long, value_delimiter = ',')]
    scrolls: Option<Vec<String>>,
    /// How often to witness (default: as on the table).
    #[arg(long)]
    frequency: Option<String>,
    /// Days witnessed material is kept (default: as on the table).
    #[arg(long)]
    retention_days: Option<u32>,
}

impl CounterTermsArgs {
    /// The counter's terms, given the proposal record (`proposals show`).
    fn value(&self, record: &Value) -> anyhow::Result<Value> {
        if let Some(path) = &self.terms {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()));
        }
        let on_table = record["history"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .find_map(|r| r.get("counter_terms").filter(|t| t.is_object()))
            .or_else(|| record["proposal"].get("proposed_terms"))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the proposal shows no terms to counter"))?;
        let mut terms = on_table;
        if let Some(scrolls) = &self.scrolls {
            terms["scrolls_to_share"] = json!(scrolls);
        }
        if let Some(frequency) = &self.frequency {
            terms["verification_frequency"] = json!(frequency);
        }
        if let Some(days) = self.retention_days {
            terms["retention_period_days"] = json!(days);
        }
        Ok(terms)
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct ProposeArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// The mesh to propose to (it must be known: `discover` or `peers add` first).
    #[arg(long)]
    target: String,
    /// 1 observe, 2 verify, 3 attest, 4 integrate.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    trust_level: u8,
    #[command(flatten)]
    terms: TermsArgs,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum ProposalsCommand {
    /// Every proposal, ours and theirs.
    List(ReadArgs),
    /// One proposal with its whole negotiation.
    Show(IdArgs),
    /// Accept the proposal's latest terms (ours to answer).
    Accept(IdArgs),
    /// Reject it with a reason.
    Reject {
        #[command(flatten)]
        id: IdArgs,
        /// Why (`incompatible_jurisdiction`).
        #[arg(long)]
        reason: String,
    },
    /// Answer with other terms.
    Counter {
        #[command(flatten)]
        id: IdArgs,
        #[command(flatten)]
        terms: CounterTermsArgs,
    },
    /// Withdraw our own proposal.
    Withdraw {
        #[command(flatten)]
        id: IdArgs,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct IdArgs {
    /// The proposal or agreement id.
    id: String,
    #[command(flatten)]
    dir: DataDirArg,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum AgreementsCommand {
    /// Every agreement.
    List(ReadArgs),
    /// One agreement, with its `agreement_hash`.
    Show(IdArgs),
    /// Propose new terms for an agreement in force: its level and terms with only what the
    /// flags name changed. When the peer accepts, the new agreement replaces this one on
    /// both sides (each records the old one ended, "superseded by" the new).
    Amend {
        #[command(flatten)]
        id: IdArgs,
        /// The new trust level (1–4).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
        trust_level: Option<u8>,
        /// Scrolls to share, comma separated.
        #[arg(long, value_delimiter = ',')]
        scrolls: Option<Vec<String>>,
        /// How often to witness (`hourly`, `daily`, `<n>s|m|h|d`).
        #[arg(long)]
        frequency: Option<String>,
        /// Days witnessed material is kept.
        #[arg(long)]
        retention_days: Option<u32>,
    },
    /// End an agreement after a notice period (0: now).
    Revoke {
        #[command(flatten)]
        id: IdArgs,
        /// Days of notice.
        #[arg(long)]
        notice_days: u32,
        /// Why.
        #[arg(long, default_value = "revoked by the operator")]
        reason: String,
    },
    /// Stop witnessing under an agreement pending a discrepancy's resolution (seed §6.3
    /// step 4); the peer's requests are refused until it is resumed.
    Suspend {
        #[command(flatten)]
        id: IdArgs,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The discrepancy behind it (recorded in `fed_trust_suspended`).
        #[arg(long)]
        discrepancy: Option<String>,
    },
    /// End a suspension.
    Resume {
        #[command(flatten)]
        id: IdArgs,
        /// Why.
        #[arg(long, default_value = "resumed by the operator")]
        reason: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum PeersCommand {
    /// Add a mesh by hand, with its key (and addresses).
    Add {
        #[command(flatten)]
        dir: DataDirArg,
        /// Its mesh id.
        #[arg(long)]
        mesh: String,
        /// Its key, `ed25519:z6Mk…`.
        #[arg(long)]
        public_key: String,
        /// Its libp2p addresses.
        #[arg(long = "address")]
        addresses: Vec<String>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Every known mesh: key, addresses, endpoints, where it came from, last contact.
    List(ReadArgs),
    /// Forget a mesh (refused while an agreement or a negotiation binds us to it).
    Remove {
        #[command(flatten)]
        dir: DataDirArg,
        /// Its mesh id or name.
        #[arg(long)]
        mesh: String,
        #[command(flatten)]
        json: JsonArg,
    },
}

pub(super) fn print(
    out: &mut Output,
    json_flag: bool,
    value: &Value,
    human: impl FnOnce(&mut Output, &Value) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    if json_flag {
        out.json(value)?;
    } else {
        human(out, value)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Status records: `{"state": "revoked", "at": …}` reads as `revoked (at …)`.
        Value::Object(m) if m.contains_key("state") => {
            let mut text = s(&m["state"]);
            for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "state") {
                text.push_str(&format!(" {k}={}", s(v)));
            }
            text
        }
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(super) fn events(out: &mut Output, v: &Value) -> anyhow::Result<()> {
    out.line("ok")?;
    for e in v["events"].as_array().into_iter().flatten() {
        let mut line = s(&e["type"]);
        for key in [
            "proposal_id",
            "agreement_id",
            "peer",
            "mesh_id",
            "event",
            "reason",
        ] {
            if !e[key].is_null() {
                line.push_str(&format!(" {key}={}", s(&e[key])));
            }
        }
        out.line(line)?;
    }
    Ok(())
}

pub(super) fn discover(args: DiscoverArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let body = match &args.mesh {
        Some(target) => json!({"op": "discover", "target": target}),
        None => json!({"op": "discover_public"}),
    };
    let v = call(&args.dir.data_dir, Method::POST, "/v1/discover", Some(body))?;
    print(out, args.json.json, &v, |out, v| {
        for f in v["found"].as_array().into_iter().flatten() {
            out.line(format!(
                "found {} via {} (peer {})",
                s(&f["mesh_id"]),
                s(&f["source"]),
                s(&f["peer_id"])
            ))?;
        }
        if let Some(srv) = v["dns"]["srv"].as_array() {
            for t in srv {
                out.line(format!(
                    "SRV {}:{} priority {} weight {}",
                    s(&t["host"]),
                    s(&t["port"]),
                    s(&t["priority"]),
                    s(&t["weight"])
                ))?;
            }
        }
        Ok(())
    })
}

/// `list-known` and `peers list`: every known mesh with its key, addresses, sources and last
/// contact.
pub(super) fn list_known(args: ReadArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let v = call(&args.dir.data_dir, Method::GET, "/v1/peers", None)?;
    print(out, args.json.json, &v, |out, v| {
        let rows = v.as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            out.line("no known meshes")?;
        }
        for p in rows {
            let sources: Vec<String> = p["sources"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let list = |field: &str| -> String {
                let items: Vec<String> = p[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                if items.is_empty() {
                    "-".into()
                } else {
                    items.join(" ")
                }
            };
            out.line(format!("{}  via {}", s(&p["mesh_id"]), sources.join(",")))?;
            out.line(format!("  key        {}", s(&p["public_key"])))?;
            out.line(format!("  addresses  {}", list("multiaddrs")))?;
            out.line(format!("  manual     {}", list("manual_addresses")))?;
            let contact = match p["last_contact"].as_str() {
                Some(at) => format!("{at} over {}", s(&p["last_transport"])),
                None => "none since the node started".into(),
            };
            out.line(format!("  contact    {contact}"))?;
            if let Some(a) = p["agreement"].as_object() {
                out.line(format!(
                    "  agreement  {} {} level {}",
                    s(&a["agreement_id"]),
                    s(&a["status"]),
                    s(&a["trust_level"])
                ))?;
            }
        }
        Ok(())
    })
}

pub(super) fn health(args: HealthArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = if args.all_peers {
        "/v1/health/all"
    } else {
        "/v1/health"
    };
    let v = call(&args.dir.data_dir, Method::GET, path, None)?;
    print(out, args.json.json, &v, |out, v| {
        for p in v["peers"].as_array().into_iter().flatten() {
            let state = match (p["healthy"] == true, p["connected"] == true) {
                (_, true) => "connected".to_owned(),
                (true, false) => format!(
                    "reached over {} at {}",
                    s(&p["last_transport"]),
                    s(&p["last_contact"])
                ),
                (false, false) => match p["last_contact"].as_str() {
                    Some(at) => format!("UNREACHABLE (last contact {at})"),
                    None => "UNREACHABLE (no contact since the node started)".to_owned(),
                },
            };
            let role = if p["federated"] == true {
                "federated"
            } else {
                "known"
            };
            out.line(format!("{}  {role}  {state}", s(&p["mesh_id"])))?;
        }
        Ok(())
    })?;
    // Exit 1 when a federated peer is unreachable: scripts and monitors see it.
    Ok(if v["unhealthy_federated"].as_u64().unwrap_or(0) > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) fn propose(args: ProposeArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let body = json!({"op": "propose", "target": args.target, "trust_level": args.trust_level, "terms": args.terms.value()?});
    let v = call(
        &args.dir.data_dir,
        Method::POST,
        "/v1/proposals",
        Some(body),
    )?;
    print(out, args.json.json, &v, events)
}

pub(super) fn peers(command: PeersCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        PeersCommand::Add {
            dir,
            mesh,
            public_key,
            addresses,
            json: j,
        } => {
            let body = json!({"op": "add_peer", "mesh_id": mesh, "public_key": public_key, "addresses": addresses});
            let v = call(&dir.data_dir, Method::POST, "/v1/peers", Some(body))?;
            print(out, j.json, &v, events)
        }
        PeersCommand::List(args) => list_known(args, out),
        PeersCommand::Remove { dir, mesh, json: j } => {
            let v = call(
                &dir.data_dir,
                Method::DELETE,
                &format!("/v1/peers/{}", path_id(&mesh)?),
                None,
            )?;
            print(out, j.json, &v, events)
        }
    }
}

fn path_id(id: &str) -> anyhow::Result<&str> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        anyhow::bail!("{id:?} is not an id (letters, digits and - _ . : only)");
    }
    Ok(id)
}

pub(super) fn proposals(command: ProposalsCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        ProposalsCommand::List(args) => {
            let v = call(&args.dir.data_dir, Method::GET, "/v1/proposals", None)?;
            print(out, args.json.json, &v, |out, v| {
                let rows = v.as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    out.line("no proposals")?;
                }
                for p in rows {
                    out.line(format!(
                        "{}  {} -> {}  {} {}  level {}  responses {}",
                        s(&p["proposal_id"]),
                        s(&p["proposer"]),
                        s(&p["target"]),
                        s(&p["direction"]),
                        s(&p["status"]),
                        s(&p["trust_level"]),
                        s(&p["responses"])
                    ))?;
                }
                Ok(())
            })
        }
        ProposalsCommand::Show(a) => {
            let v = call(
                &a.dir.data_dir,
                Method::GET,
                &format!("/v1/proposals/{}", path_id(&a.id)?),
                None,
            )?;
            print(out, a.json.json, &v, |out, v| {
                out.line(serde_json::to_string_pretty(v)?)
            })
        }
        ProposalsCommand::Accept(a) => post(out, &a, "accept", json!({})),
        ProposalsCommand::Reject { id, reason } => {
            post(out, &id, "reject", json!({"reason": reason}))
        }
        ProposalsCommand::Withdraw { id, reason } => {
            post(out, &id, "withdraw", json!({"reason": reason}))
        }
        ProposalsCommand::Counter { id, terms } => {
            let record = call(
                &id.dir.data_dir,
                Method::GET,
                &format!("/v1/proposals/{}", path_id(&id.id)?),
                None,
            )?;
            let body = json!({"terms": terms.value(&record)?});
            post(out, &id, "counter", body)
        }
    }
}

fn post(out: &mut Output, a: &IdArgs, action: &str, body: Value) -> anyhow::Result<ExitCode> {
    let v = call(
        &a.dir.data_dir,
        Method::POST,
        &format!("/v1/proposals/{}/{action}", path_id(&a.id)?),
        Some(body),
    )?;
    print(out, a.json.json, &v, events)
}

pub(super) fn agreements(command: AgreementsCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        AgreementsCommand::List(args) => {
            let v = call(&args.dir.data_dir, Method::GET, "/v1/agreements", None)?;
            print(out, args.json.json, &v, |out, v| {
                let rows = v.as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    out.line("no agreements")?;
                }
                for a in rows {
                    out.line(format!(
                        "{}  {}  level {}  {}",
                        s(&a["agreement_id"]),
                        s(&a["status"]),
                        s(&a["trust_level"]),
                        s(&a["parties"])
                    ))?;
                }
                Ok(())
            })
        }
        AgreementsCommand::Show(a) => {
            let v = call(
                &a.dir.data_dir,
                Method::GET,
                &format!("/v1/agreements/{}", path_id(&a.id)?),
                None,
            )?;
            print(out, a.json.json, &v, |out, v| {
                out.line(format!(
                    "agreement_id:   {}",
                    s(&v["agreement"]["agreement_id"])
                ))?;
                out.line(format!("agreement_hash: {}", s(&v["agreement_hash"])))?;
                out.line(format!("status:         {}", s(&v["status"])))?;
                out.line(format!(
                    "trust_level:    {}",
                    s(&v["agreement"]["trust_level"])
                ))?;
                out.line(format!(
                    "established_at: {}",
                    s(&v["agreement"]["established_at"])
                ))?;
                out.line(format!("parties:        {}", s(&v["agreement"]["parties"])))?;
                Ok(())
            })
        }
        AgreementsCommand::Amend {
            id,
            trust_level,
            scrolls,
            frequency,
            retention_days,
        } => {
            let body = json!({
                "op": "amend", "id": id.id, "trust_level": trust_level, "scrolls": scrolls,
                "frequency": frequency, "retention_days": retention_days,
            });
            let v = call(
                &id.dir.data_dir,
                Method::POST,
                &format!("/v1/agreements/{}/amend", path_id(&id.id)?),
                Some(body),
            )?;
            print(out, id.json.json, &v, events)
        }
        AgreementsCommand::Revoke {
            id,
            notice_days,
            reason,
        } => {
            let v = call(
                &id.dir.data_dir,
                Method::POST,
                &format!("/v1/agreements/{}/revoke", path_id(&id.id)?),
                Some(json!({"notice_days": notice_days, "reason": reason})),
            )?;
            print(out, id.json.json, &v, events)
        }
        AgreementsCommand::Suspend {
            id,
            reason,
            discrepancy,
        } => {
            let v = call(
                &id.dir.data_dir,
                Method::POST,
                &format!("/v1/agreements/{}/suspend", path_id(&id.id)?),
                Some(json!({"reason": reason, "discrepancy_id": discrepancy})),
            )?;
            print(out, id.json.json, &v, events)
        }
        AgreementsCommand::Resume { id, reason } => {
            let v = call(
                &id.dir.data_dir,
                Method::POST,
                &format!("/v1/agreements/{}/resume", path_id(&id.id)?),
                Some(json!({"reason": reason})),
            )?;
            print(out, id.json.json, &v, events)
        }
    }
}
