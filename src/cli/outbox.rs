//! `outbox list` and `outbox retry`: messages to peers still waiting for their
//! acknowledgement, and sending them again now.

use std::process::ExitCode;

use hyper::Method;
use serde_json::json;

use super::Output;
use super::remote::{JsonArg, ReadArgs, print, s};
use crate::node::client::call;

#[derive(Debug, clap::Subcommand)]
pub(super) enum OutboxCommand {
    /// Messages waiting for delivery, oldest first: to whom, what, attempts, the last error.
    List(ReadArgs),
    /// Send waiting messages now: one (`ID` as `outbox list` shows it), every one to a mesh
    /// (`ID` = its mesh id or name), or all (no `ID`).
    Retry {
        #[command(flatten)]
        dir: super::DataDirArg,
        /// `<mesh>/<topic>`, or a mesh.
        id: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
}

pub(super) fn run(command: OutboxCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match command {
        OutboxCommand::List(args) => {
            let v = call(&args.dir.data_dir, Method::GET, "/v1/outbox", None)?;
            print(out, args.json.json, &v, |out, v| {
                let rows = v.as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    out.line("no message is waiting")?;
                }
                for m in rows {
                    out.line(format!(
                        "{}  {} to {}, {} attempts, waiting {} s, next {}",
                        s(&m["id"]),
                        s(&m["type"]),
                        s(&m["to"]),
                        s(&m["attempts"]),
                        s(&m["age_secs"]),
                        s(&m["next_attempt_at"]),
                    ))?;
                    if let Some(e) = m["last_error"].as_str() {
                        out.line(format!("  last error: {e}"))?;
                    }
                }
                Ok(())
            })
        }
        OutboxCommand::Retry { dir, id, json: j } => {
            let body = json!({"op": "retry_outbox", "id": id});
            let v = call(&dir.data_dir, Method::POST, "/v1/outbox/retry", Some(body))?;
            print(out, j.json, &v, |out, v| {
                out.line(format!("sent again: {}", s(&v["resent"])))
            })
        }
    }
}
