//! Issue 17, "done when": the README's P2P walkthrough ("Run it" up to the HTTP-only part)
//! is run from the README itself, block by block, command by command, as printed. Only what
//! a test must supply is filled in: the placeholders (PORT and PEER from alpha's first
//! start, ID and AGREEMENT_ID from the node the command runs on, alpha's key), paths under a
//! temporary root, the binary under test for `$B`, and a file for `tail -f` (whose stdin
//! then closes). A command that fails is retried for a few seconds (the walkthrough is typed
//! by a person; records and messages take a moment to travel), then fails the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::readme::{blocks, words};
use crate::support::{Daemon, bin, shown};

/// Runs the binary with `args`, `stdin` fed and closed.
fn run_with_stdin(args: &[String], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vm-federation");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("wait")
}

struct Walk<'a> {
    root: &'a Path,
    daemons: BTreeMap<String, Daemon>,
    alpha_tcp: String,
}

impl Walk<'_> {
    /// The value a placeholder stands for when `name`'s node runs the command.
    fn fill(&self, word: &str, name: &str) -> String {
        let d = &self.daemons[name];
        match word {
            "ID" => {
                let list = d.json(&["proposals", "list"]);
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["status"]["state"] == "open")
                    .filter_map(|p| p["proposal_id"].as_str())
                    .next_back()
                    .unwrap_or("ID")
                    .to_owned()
            }
            "AGREEMENT_ID" => {
                let list = d.json(&["agreements", "list"]);
                list.as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| {
                        ["active", "suspended"]
                            .contains(&a["status"]["state"].as_str().unwrap_or_default())
                    })
                    .and_then(|a| a["agreement_id"].as_str())
                    .unwrap_or("AGREEMENT_ID")
                    .to_owned()
            }
            w if w.starts_with("ed25519:z6Mk") => crate::ops::key_of(&self.daemons["alpha"]),
            w if w.starts_with("./") => self.root.join(&w[2..]).to_string_lossy().into_owned(),
            "proof.json" | "app.jsonl" => self.root.join(word).to_string_lossy().into_owned(),
            w => w.to_owned(),
        }
    }

    fn step(&mut self, command: &str) {
        eprintln!("README: {command}");
        if command.starts_with("cargo build") {
            return; // `$B` is the binary under test
        }
        if let Some(rest) = command.strip_prefix("printf '") {
            let (text, target) = rest
                .split_once("' >> ./")
                .expect("printf '…' >> ./dir/file");
            let name = target.split('/').next().expect("a directory");
            let (port, peer) = self
                .alpha_tcp
                .trim_start_matches("/ip4/127.0.0.1/tcp/")
                .split_once("/p2p/")
                .expect("alpha's address");
            let text = text
                .replace("\\n", "\n")
                .replace("PORT", port)
                .replace("PEER", peer);
            self.daemons[name].append_config(&text);
            return;
        }
        // `echo '…' | $B …` and `tail -f FILE | $B …`: the left side is the command's stdin.
        let (stdin, command) = match command.split_once(" | $B ") {
            Some((left, right)) => {
                let left = words(left);
                let input = match left.first().map(String::as_str) {
                    Some("echo") => format!("{}\n", left[1..].join(" ")),
                    Some("tail") => {
                        std::fs::read_to_string(self.root.join(&left[2])).expect("the tail -f file")
                    }
                    other => panic!("a pipe from {other:?}"),
                };
                (Some(input), format!("$B {right}"))
            }
            None => (None, command.to_owned()),
        };
        let mut args = words(command.strip_prefix("$B ").expect("a $B command"));
        let redirect = args.iter().position(|a| a == ">").map(|i| {
            let file = args[i + 1].clone();
            args.truncate(i);
            file
        });
        // An offline command (`scroll check-proof`) names no data directory: its
        // placeholders are alpha's (the proof is of alpha's scroll).
        let dir_at = args.iter().position(|a| a == "--data-dir");
        let name = dir_at.map_or_else(
            || "alpha".to_owned(),
            |i| args[i + 1].trim_start_matches("./").to_owned(),
        );
        let dir_at = dir_at.unwrap_or(usize::MAX);
        if args.starts_with(&["node".into(), "run".into()]) {
            let d = self
                .daemons
                .entry(name.clone())
                .or_insert_with(|| Daemon::new(self.root, &name));
            d.start();
            if name == "alpha" {
                self.alpha_tcp = d.tcp.clone();
            }
            return;
        }
        if args.first().map(String::as_str) == Some("init") {
            let d = Daemon::new(self.root, &name);
            args[dir_at + 1] = d.d().to_owned();
            let out = crate::support::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(out.status.code(), Some(0), "{command}: {}", shown(&out));
            self.daemons.insert(name, d);
            return;
        }
        let mut last = String::new();
        for _ in 0..50 {
            let filled: Vec<String> = args.iter().map(|a| self.fill(a, &name)).collect();
            let out = match &stdin {
                Some(input) => run_with_stdin(&filled, input),
                None => crate::support::run(&filled.iter().map(String::as_str).collect::<Vec<_>>()),
            };
            if out.status.code() == Some(0) {
                if let Some(file) = &redirect {
                    std::fs::write(self.root.join(file), &out.stdout).expect("redirect");
                }
                return;
            }
            last = shown(&out);
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("README command failed: {command}\n{last}");
    }
}

#[test]
fn the_readme_p2p_walkthrough_runs_as_printed() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        root.path().join("app.jsonl"),
        "{\"type\":\"compliance_check\",\"control\":\"AC-2\"}\n{\"type\":\"compliance_check\",\"control\":\"AC-3\"}\n",
    )
    .expect("app.jsonl");
    let mut walk = Walk {
        root: root.path(),
        daemons: BTreeMap::new(),
        alpha_tcp: String::new(),
    };
    let all = blocks("## Run it", Some("A mesh that is not on the P2P network"));
    assert!(all.len() >= 4, "the walkthrough's blocks: {all:?}");
    for block in &all {
        for command in block {
            walk.step(command);
        }
    }
    // What the walkthrough promises.
    let (alpha, beta) = (&walk.daemons["alpha"], &walk.daemons["beta"]);
    let witnessed = beta.json(&["status"])["witness"]["witnessed"].clone();
    assert!(
        witnessed
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w["peer"] == "did:vm:mesh:alpha" && w["size"] == 3),
        "beta witnessed alpha's three receipts: {witnessed}"
    );
    for d in [alpha, beta] {
        let list = d.json(&["agreements", "list"]);
        let states: Vec<(String, u64)> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["status"]["state"].as_str().unwrap_or_default().to_owned(),
                    a["trust_level"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        // The first agreement replaced by the amendment, which was then revoked.
        assert!(
            states.contains(&("revoked".into(), 2)) && states.contains(&("revoked".into(), 3)),
            "{}: {states:?}",
            d.name
        );
    }
}
