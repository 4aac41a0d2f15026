//! Issue 17, item 4: every `--json` shape is documented (`docs/cli-json.md`) and checked.
//! A scenario runs each documented command against real daemons; each output must have the
//! documented keys, no undocumented ones, and values of the documented types (a `null`
//! either side stands for "may be absent"). Objects whose keys are data (`"<reason>": …`)
//! are checked value by value. `VM_WRITE_CLI_JSON=1` rewrites the examples from this run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::ops::{append, key_of, poll_witness, wait_witnessed};
use crate::support::{Daemon, run, shown};

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/cli-json.md")
}

/// The examples of the document, by key (`<!-- cli-json: KEY -->` then a json block).
fn examples(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in text.split("<!-- cli-json: ").skip(1) {
        let Some((key, rest)) = part.split_once(" -->\n```json\n") else {
            continue;
        };
        let body = rest.split_once("```").map_or("", |(b, _)| b);
        out.insert(key.to_owned(), body.to_owned());
    }
    out
}

/// Keys whose object values are maps from data (a reason, a transport, a source) to values.
const DATA_KEYED: [(&str, &str); 2] = [("refusals", "<transport>"), ("sources", "<source>")];

/// The example written for `value`: data-keyed maps shown by one `<name>` entry.
fn example_of(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            if key == Some("refusals") {
                // {"https": {"forbidden": 1}}: transports and reasons are both data.
                return json!({"<transport>": {"<reason>": 1}});
            }
            if let Some((_, name)) = DATA_KEYED.iter().find(|(k, _)| Some(*k) == key) {
                let inner = map
                    .values()
                    .next()
                    .map_or(Value::Null, |v| example_of(v, None));
                return json!({ *name: inner });
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), example_of(v, Some(k))))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => {
            if items.iter().all(|i| !i.is_object()) {
                return Value::Array(items.iter().map(|i| example_of(i, None)).collect());
            }
            // One element per kind (`type`, `result`, an event's `type`), each the union of
            // every element of that kind: a key some lack is shown `null` (optional).
            let mut groups: Vec<(Option<String>, Value)> = Vec::new();
            for item in items {
                let kind = discriminator(item);
                let example = example_of(item, None);
                match groups.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, acc)) => *acc = merge(acc, &example),
                    None => groups.push((kind, example)),
                }
            }
            Value::Array(groups.into_iter().map(|(_, v)| v).collect())
        }
        other => other.clone(),
    }
}

fn discriminator(v: &Value) -> Option<String> {
    ["type", "result", "event"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            v.get("event")
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
}

/// The union of two examples of one kind: a key only one has, or a value `null` in one, is
/// `null` (may be absent).
fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = Map::new();
            for k in x.keys().chain(y.keys()) {
                let v = match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => merge(p, q),
                    _ => Value::Null,
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (p, _) => p.clone(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `live` departs from the documented `doc`.
fn departures(doc: &Value, live: &Value, path: &str, out: &mut Vec<String>) {
    match (doc, live) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(d), Value::Object(l)) => {
            if !d.is_empty() && d.keys().all(|k| k.starts_with('<')) {
                let shape = d.values().next().unwrap_or(&Value::Null);
                for (k, v) in l {
                    departures(shape, v, &format!("{path}.{k}"), out);
                }
                return;
            }
            for (k, v) in l {
                match d.get(k) {
                    Some(dv) => departures(dv, v, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: not documented")),
                }
            }
            for (k, dv) in d {
                if !l.contains_key(k) && !dv.is_null() {
                    out.push(format!("{path}.{k}: documented but missing"));
                }
            }
        }
        (Value::Array(d), Value::Array(l)) => {
            let Some(first) = d.first() else {
                return;
            };
            for (i, item) in l.iter().enumerate() {
                let kind = discriminator(item);
                let shape = d
                    .iter()
                    .find(|x| discriminator(x) == kind)
                    .or_else(|| kind.is_none().then_some(first));
                if let Some(shape) = shape {
                    departures(shape, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        (d, l) if kind(d) != kind(l) => {
            out.push(format!(
                "{path}: {} where the doc shows {}",
                kind(l),
                kind(d)
            ));
        }
        _ => {}
    }
}

/// Runs `args` (with `--json`) on `d`, requires success, parses stdout.
fn json_of(d: &Daemon, args: &[&str]) -> Value {
    d.json(args)
}

/// Runs a command that needs no node, requires success, parses stdout.
fn offline(args: &[&str]) -> Value {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", shown(&out)))
}

#[test]
fn every_documented_json_shape_matches_the_binary() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dublin, mut berlin) = crate::ops::witnessing_pair(root.path(), |d| {
        d.append_config("\n[anchor]\ninterval_secs = 86400\n[network]\nrequest_timeout_secs = 2\n");
    });
    let mut live: BTreeMap<&str, Value> = BTreeMap::new();

    // A mesh that cannot be reached, so the outbox holds a message.
    let stranger = vm_receipts::MeshKey::from_seed(&[9; 32]).public_key();
    json_of(
        &berlin,
        &[
            "peers",
            "add",
            "--mesh",
            "stranger",
            "--public-key",
            &stranger.to_string(),
            "--address",
            &format!("/ip4/127.0.0.1/tcp/9/p2p/{}", stranger.peer_id()),
        ],
    );
    live.insert(
        "propose",
        json_of(
            &berlin,
            &[
                "propose",
                "--target",
                "stranger",
                "--trust-level",
                "1",
                "--scrolls",
                "Federation",
            ],
        ),
    );
    poll_witness("the failed delivery in the outbox", || {
        let list = berlin.json(&["outbox", "list"]);
        (list[0]["last_error"].is_string())
            .then_some(())
            .ok_or_else(|| list.to_string())
    });
    live.insert("outbox-list", json_of(&berlin, &["outbox", "list"]));
    live.insert("outbox-retry", json_of(&berlin, &["outbox", "retry"]));

    append(&dublin, "Compliance", 1, "json");
    live.insert("anchor-now", json_of(&dublin, &["anchor", "now"]));
    wait_witnessed(&berlin, &dublin, "Compliance", 4);
    live.insert(
        "verify",
        json_of(
            &berlin,
            &[
                "verify",
                "--mesh",
                "vaultmesh-dublin",
                "--scroll",
                "Compliance",
            ],
        ),
    );
    live.insert("status", json_of(&berlin, &["status"]));
    live.insert("health", json_of(&berlin, &["health", "--all-peers"]));
    live.insert("peers-list", json_of(&berlin, &["peers", "list"]));
    live.insert("proposals-list", json_of(&berlin, &["proposals", "list"]));
    let proposal = live["proposals-list"][0]["proposal_id"]
        .as_str()
        .expect("a proposal")
        .to_owned();
    live.insert(
        "proposals-show",
        json_of(&berlin, &["proposals", "show", &proposal]),
    );
    live.insert("agreements-list", json_of(&berlin, &["agreements", "list"]));
    let agreement = live["agreements-list"][0]["agreement_id"]
        .as_str()
        .expect("an agreement")
        .to_owned();
    live.insert(
        "agreements-show",
        json_of(&berlin, &["agreements", "show", &agreement]),
    );
    live.insert(
        "discover",
        json_of(
            &berlin,
            &["discover", "--mesh", "did:vm:mesh:vaultmesh-dublin"],
        ),
    );
    live.insert(
        "witness-history",
        json_of(&berlin, &["witness-history", "--mesh", "vaultmesh-dublin"]),
    );
    let file = root.path().join("one.jsonl");
    std::fs::write(&file, "{\"type\":\"c\",\"n\":1}\n").expect("receipt");
    let out = dublin.cli(&[
        "scroll",
        "append",
        "--scroll",
        "Compliance",
        "--file",
        file.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let first_line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    live.insert(
        "scroll-append",
        serde_json::from_str(&first_line).expect("one JSON object per line"),
    );
    // A proof made by the running node, checked offline.
    let proof = root.path().join("proof.json");
    let out = dublin.cli(&[
        "scroll",
        "proof",
        "--scroll",
        "Compliance",
        "--sequence",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    std::fs::write(&proof, &out.stdout).expect("proof");
    let proof = proof.to_str().expect("utf-8").to_owned();
    let dublin_key = key_of(&dublin);
    live.insert(
        "check-proof",
        offline(&[
            "scroll",
            "check-proof",
            "--proof",
            &proof,
            "--public-key",
            &dublin_key,
            "--json",
        ]),
    );

    // A finding: Dublin's operator rewrites its witnessed history (the first receipt changed,
    // the ROOT file re-signed); Berlin catches it at the next anchor. Listed, shown, resolved.
    let mut dublin = dublin;
    assert!(dublin.terminate().success());
    let mut history = crate::witness::read_receipts(&dublin.dir, "Compliance");
    history[0].insert("forged".into(), Value::Bool(true));
    crate::witness::rewrite_scroll(&dublin, "Compliance", &history);
    dublin.start();
    json_of(&dublin, &["anchor", "now"]);
    let finding = poll_witness("Berlin's finding", || {
        let list = berlin.json(&["discrepancies", "list"]);
        list[0]["report"]["discrepancy_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| list.to_string())
    });
    live.insert(
        "discrepancies-list",
        json_of(&berlin, &["discrepancies", "list"]),
    );
    live.insert(
        "discrepancies-show",
        json_of(&berlin, &["discrepancies", "show", &finding]),
    );
    live.insert(
        "discrepancies-resolve",
        json_of(
            &berlin,
            &[
                "discrepancies",
                "resolve",
                &finding,
                "--outcome",
                "confirmed",
                "--note",
                "Dublin re-signed another history",
            ],
        ),
    );

    // Offline commands, on a fresh data directory.
    let fresh = root.path().join("fresh");
    let fresh_dir = fresh.to_str().expect("utf-8");
    live.insert(
        "init",
        offline(&["init", "--data-dir", fresh_dir, "--mesh", "fresh", "--json"]),
    );
    live.insert(
        "config-check",
        offline(&["config", "check", "--data-dir", fresh_dir, "--json"]),
    );
    for (key, command) in [("scroll-verify", "verify"), ("scroll-root", "root")] {
        live.insert(
            key,
            offline(&[
                "scroll",
                command,
                "--data-dir",
                fresh_dir,
                "--scroll",
                "Federation",
                "--json",
            ]),
        );
    }
    // An error, as JSON on stderr.
    let out = run(&[
        "status",
        "--data-dir",
        fresh.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    live.insert(
        "error",
        serde_json::from_slice(&out.stderr).expect("json error"),
    );
    assert!(berlin.terminate().success());
    let out = run(&["state", "rebuild", "--data-dir", berlin.d(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    live.insert(
        "state-rebuild",
        serde_json::from_slice(&out.stdout).expect("json"),
    );

    let text = std::fs::read_to_string(doc_path()).expect("docs/cli-json.md");
    let documented = examples(&text);
    if std::env::var_os("VM_WRITE_CLI_JSON").is_some() {
        let mut rewritten = text.clone();
        for (key, old) in &documented {
            let value = live
                .get(key.as_str())
                .unwrap_or_else(|| panic!("the scenario runs no command for {key}"));
            let pretty = serde_json::to_string_pretty(&example_of(value, None)).expect("json");
            rewritten = rewritten.replace(
                &format!("<!-- cli-json: {key} -->\n```json\n{old}```"),
                &format!("<!-- cli-json: {key} -->\n```json\n{pretty}\n```"),
            );
        }
        std::fs::write(doc_path(), rewritten).expect("write docs/cli-json.md");
        return;
    }
    let mut problems = Vec::new();
    for key in live.keys() {
        assert!(
            documented.contains_key(*key),
            "docs/cli-json.md documents no `{key}`"
        );
    }
    for (key, body) in &documented {
        let doc: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("docs/cli-json.md `{key}` is not JSON: {e}"));
        let value = live
            .get(key.as_str())
            .unwrap_or_else(|| panic!("the scenario runs no command for `{key}`"));
        let mut found = Vec::new();
        departures(&doc, value, key, &mut found);
        problems.extend(found);
    }
    assert!(
        problems.is_empty(),
        "--json outputs depart from docs/cli-json.md (VM_WRITE_CLI_JSON=1 rewrites it after a deliberate change):\n{}",
        problems.join("\n")
    );
}
