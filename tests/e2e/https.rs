//! An HTTP-only mesh and a P2P mesh federate over the HTTPS shim (issue 6): each finds the
//! other through DNS SRV and fetches its signed record over HTTPS (the TLS key must be the
//! record's key), then propose, counter, agree, witness both ways and revoke, every request
//! signed and over mutual TLS pinned to the mesh keys. Neither node ever opens a libp2p
//! connection: the HTTP-only mesh has no libp2p listener at all.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use serde_json::{Value, json};

use crate::dns::{DnsServer, a_record, srv_record};
use crate::support::{Daemon, poll_n, run, shown};

const ZONE: &str = "mesh.test.";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn poll_https<T>(what: &str, attempt: impl FnMut() -> Result<T, String>) -> T {
    poll_n(what, 200, Duration::from_millis(100), attempt)
}

fn append(d: &Daemon, n: usize, tag: &str) -> u64 {
    let file = d.dir.with_extension(format!("{tag}.jsonl"));
    let body: String = (0..n)
        .map(|i| format!("{{\"type\":\"compliance_check\",\"check\":\"{tag}-{i}\"}}\n"))
        .collect();
    std::fs::write(&file, body).expect("receipts");
    let out = d.cli(&[
        "scroll",
        "append",
        "--scroll",
        "Compliance",
        "--file",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    d.json(&["status"])["scrolls"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|s| {
                s["scroll"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("compliance"))
            })
        })
        .and_then(|s| s["size"].as_u64())
        .expect("a Compliance scroll")
}

fn agreement_state(d: &Daemon, peer: &Daemon) -> Option<(String, String)> {
    let list = d.json(&["agreements", "list"]);
    list.as_array()?.iter().find_map(|a| {
        a["parties"]
            .as_array()?
            .contains(&json!(peer.mesh_id()))
            .then(|| {
                (
                    a["agreement_id"].as_str().unwrap_or("").to_owned(),
                    a["status"]["state"].as_str().unwrap_or("").to_owned(),
                )
            })
    })
}

fn wait_witnessed(on: &Daemon, peer: &Daemon, size: u64) {
    poll_https(
        &format!("{} to witness {} at {size}", on.name, peer.name),
        || {
            let status = on.json(&["status"]);
            let found = status["witness"]["witnessed"].as_array().and_then(|l| {
                l.iter()
                    .find(|w| {
                        w["peer"] == peer.mesh_id().as_str()
                            && w["size"] == size
                            && w["result"] == "verified"
                    })
                    .cloned()
            });
            found.ok_or_else(|| status["witness"].to_string())
        },
    );
}

/// The reads of the federation API, made by the test as `as_mesh` against `of`.
struct Reads<'a> {
    as_mesh: &'a Daemon,
    of: &'a Daemon,
    proposal_id: String,
}

fn reads_as<'a>(as_mesh: &'a Daemon, of: &'a Daemon, proposal_id: &str) -> Reads<'a> {
    Reads {
        as_mesh,
        of,
        proposal_id: proposal_id.to_owned(),
    }
}

impl Reads<'_> {
    fn await_all(self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(self.run());
    }

    async fn get(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        signed_request(self.as_mesh, self.of, path, body).await
    }

    async fn run(self) {
        let (code, v) = self.get("/federation/agreements", None).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
        let (code, v) = self
            .get(&format!("/federation/proposals/{}", self.proposal_id), None)
            .await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(
            v["data"]["responses"].as_array().map(Vec::len),
            Some(2),
            "a counter and an accept: {v}"
        );
        let (code, v) = self
            .get("/federation/receipts/Compliance?from=1&limit=2", None)
            .await;
        assert_eq!(code, 200, "{v}");
        let receipts = v["data"]["receipts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(receipts.len(), 2, "{v}");
        assert_eq!(receipts[0]["sequence"], 1, "{v}");
        let (code, v) = self
            .get(
                "/federation/verify",
                Some(json!({"scroll": "Compliance", "sequence": 1})),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        let proof = vm_receipts::proof::ReceiptProof::parse(v["data"].to_string().as_bytes())
            .expect("a receipt proof");
        let of_key: vm_receipts::PublicKey = self.of.json(&["status"])["public_key"]
            .as_str()
            .expect("k")
            .parse()
            .expect("k");
        proof
            .verify(&of_key)
            .expect("the receipt proof verifies with the mesh's key");
        assert!(proof.anchor_proof.is_some(), "{v}");
        // `receipt_hash` is DESIGN §4's leaf hash: blake3(0x00 ‖ JCS(receipt without
        // root_hash)), computed here from the documented form alone.
        let mut receipt = v["data"]["receipt"].clone();
        receipt
            .as_object_mut()
            .expect("a receipt object")
            .remove("root_hash");
        let leaf = vm_receipts::jcs::to_vec(&receipt).expect("jcs");
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(&leaf);
        let leaf_hash = format!("blake3:{}", blake3::hash(&prefixed).to_hex());
        let (code, v) = self
            .get(
                "/federation/verify",
                Some(json!({"scroll": "Compliance", "sequence": 1, "receipt_hash": leaf_hash})),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        let unprefixed = format!("blake3:{}", blake3::hash(&leaf).to_hex());
        let (code, v) = self
            .get(
                "/federation/verify",
                Some(json!({"scroll": "Compliance", "sequence": 1, "receipt_hash": unprefixed})),
            )
            .await;
        assert_eq!(code, 404, "{v}");
        assert_eq!(v["error"], "receipt_mismatch", "{v}");
        let (code, v) = self
            .get(
                "/federation/proofs/consistency?scroll=Compliance&old_size=1&new_size=3",
                None,
            )
            .await;
        assert_eq!(code, 200, "{v}");
        let (code, v) = self
            .get(
                "/federation/proofs/inclusion?scroll=Compliance&sequence=0&tree_size=3",
                None,
            )
            .await;
        assert_eq!(code, 200, "{v}");
        // A scroll that is not shared: the policy says no.
        let (code, v) = self.get("/federation/receipts/Federation", None).await;
        assert_eq!(code, 403, "{v}");
        // A malformed query: 400 naming it.
        let (code, v) = self
            .get(
                "/federation/proofs/inclusion?scroll=Compliance&sequence=x&tree_size=3",
                None,
            )
            .await;
        assert_eq!(code, 400, "{v}");
    }
}

#[test]
fn an_http_only_mesh_and_a_p2p_mesh_federate_and_witness_over_https() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (hp, pp) = (free_port(), free_port());
    let dns = DnsServer::start(
        ZONE,
        vec![
            srv_record("_vaultmesh._tcp.h.mesh.test.", 0, 5, hp, "h.mesh.test."),
            a_record("h.mesh.test.", Ipv4Addr::LOCALHOST),
            srv_record("_vaultmesh._tcp.p.mesh.test.", 0, 5, pp, "p.mesh.test."),
            a_record("p.mesh.test.", Ipv4Addr::LOCALHOST),
        ],
    );
    let common = format!(
        "\n[dns]\nnameserver = \"{}\"\n[anchor]\ninterval_secs = 86400\n",
        dns.addr
    );
    // H is not on the P2P network: no libp2p listener, only the HTTPS API.
    let mut h = Daemon::new(tmp.path(), "mesh-http");
    h.init();
    h.append_config(&format!(
        "{common}[network]\nlisten = []\n[http]\nlisten = \"127.0.0.1:{hp}\"\n"
    ));
    h.start_with(false);
    assert_eq!(h.https, format!("https://127.0.0.1:{hp}"));
    // P is a P2P mesh that also serves the HTTPS API.
    let mut p = Daemon::new(tmp.path(), "mesh-p2p");
    p.init();
    p.append_config(&format!("{common}[http]\nlisten = \"127.0.0.1:{pp}\"\n"));
    p.start();

    // Each finds the other through DNS SRV and fetches its record over HTTPS.
    for (on, other, domain) in [(&p, &h, "h.mesh.test"), (&h, &p, "p.mesh.test")] {
        let found = on.json(&["discover", "--mesh", domain]);
        let entry = &found["found"][0];
        assert_eq!(entry["mesh_id"], other.mesh_id().as_str(), "{found}");
        assert_eq!(entry["source"], "http", "{found}");
        let known = on.json(&["list-known"]);
        let listed = known
            .as_array()
            .and_then(|l| l.iter().find(|k| k["mesh_id"] == other.mesh_id().as_str()))
            .unwrap_or_else(|| panic!("{known}"));
        assert!(listed["sources"]["http"].is_string(), "{listed}");
    }
    let p_size = append(&p, 4, "p");
    let h_size = append(&h, 6, "h");

    // P proposes, H counters, P accepts: all over HTTPS.
    let proposed = p.json(&[
        "propose",
        "--target",
        &h.mesh_id(),
        "--trust-level",
        "2",
        "--scrolls",
        "Compliance",
        "--frequency",
        "daily",
    ]);
    let id = proposed["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["event"] == "sent"))
        .and_then(|e| e["proposal_id"].as_str())
        .unwrap_or_else(|| panic!("{proposed}"))
        .to_owned();
    poll_https("H to receive the proposal", || {
        let list = h.json(&["proposals", "list"]);
        list.as_array()
            .and_then(|l| l.iter().find(|x| x["proposal_id"] == id.as_str()).cloned())
            .ok_or_else(|| list.to_string())
    });
    h.json(&[
        "proposals",
        "counter",
        &id,
        "--frequency",
        "hourly",
        "--scrolls",
        "Compliance",
    ]);
    poll_https("P to receive the counter", || {
        let list = p.json(&["proposals", "list"]);
        let thread = list
            .as_array()
            .and_then(|l| l.iter().find(|x| x["proposal_id"] == id.as_str()).cloned());
        match thread {
            Some(t) if t["responses"] == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    p.json(&["proposals", "accept", &id]);
    let mut agreement = String::new();
    for (d, other) in [(&p, &h), (&h, &p)] {
        agreement =
            poll_https(
                &format!("{} to hold the agreement active", d.name),
                || match agreement_state(d, other) {
                    Some((id, state)) if state == "active" => Ok(id),
                    other => Err(format!("{other:?}")),
                },
            );
    }

    // They witness each other's Compliance scroll over HTTPS.
    p.json(&["anchor", "now"]);
    h.json(&["anchor", "now"]);
    wait_witnessed(&h, &p, p_size);
    wait_witnessed(&p, &h, h_size);
    let verify = h.cli(&[
        "verify",
        "--mesh",
        &p.mesh_id(),
        "--scroll",
        "Compliance",
        "--json",
    ]);
    assert_eq!(verify.status.code(), Some(0), "{}", shown(&verify));

    // Acting as H (its key file), a client reads P's API directly: every read of seed §5.1
    // over signed mTLS requests, and the receipt proof checks with P's key alone.
    reads_as(&h, &p, &id).await_all();

    // H revokes with no notice; both end it.
    h.json(&["agreements", "revoke", &agreement, "--notice-days", "0"]);
    for (d, other) in [(&p, &h), (&h, &p)] {
        poll_https(
            &format!("{} to see the revocation", d.name),
            || match agreement_state(d, other) {
                Some((_, state)) if state == "revoked" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }

    // Nothing went over libp2p: neither node ever connected to a peer there.
    for d in [&h, &p] {
        let status = d.json(&["status"]);
        assert_eq!(
            status["network"]["connected_peers"],
            json!([]),
            "{}: {status}",
            d.name
        );
        let out = run(&[
            "scroll",
            "verify",
            "--data-dir",
            d.d(),
            "--scroll",
            "Federation",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", d.name, shown(&out));
        let receipts = d.federation_receipts();
        let kinds: Vec<&str> = receipts.iter().filter_map(|r| r["type"].as_str()).collect();
        for kind in [
            "fed_trust_proposal",
            "fed_trust_established",
            "fed_witness_event",
            "fed_trust_revoked",
        ] {
            assert!(kinds.contains(&kind), "{}: no {kind} in {kinds:?}", d.name);
        }
    }
    for d in [&mut h, &mut p] {
        assert_eq!(d.terminate().code(), Some(0), "{}", d.name);
    }
}

/// A request signed by `as_mesh` to `of`'s federation API over mTLS (GET, or POST with
/// `body`): the status and the JSON body (`null` if none).
pub(crate) async fn signed_request(
    as_mesh: &Daemon,
    of: &Daemon,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    use vaultmesh_federation::clock::{Clock, SystemClock};
    use vaultmesh_federation::http::{client::exchange, routes::HttpForm, signing};
    let key_file: Value = serde_json::from_slice(
        &std::fs::read(as_mesh.dir.join("keys/mesh.key")).expect("key file"),
    )
    .expect("key json");
    let key = vm_receipts::MeshKey::from_seed_text(key_file["secret_seed"].as_str().expect("seed"))
        .expect("seed");
    let clock: vm_network::tls::TlsClock = std::sync::Arc::new(|| SystemClock.now().unix());
    let identity = vm_network::tls::TlsIdentity::new(
        &key.seed_bytes(),
        &as_mesh.mesh_id(),
        &["localhost".into()],
        SystemClock.now().unix() - 60,
        1,
    )
    .expect("identity");
    let of_key: vm_receipts::PublicKey = of.json(&["status"])["public_key"]
        .as_str()
        .expect("key")
        .parse()
        .expect("key");
    let config = vm_network::tls::client_config(&identity, of_key.to_bytes(), clock).expect("tls");
    let form = HttpForm {
        method: if body.is_some() {
            hyper::Method::POST
        } else {
            hyper::Method::GET
        },
        path_and_query: path.to_owned(),
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    };
    // Fresh random bytes per request, from the one place that reads OS entropy.
    let nonce = vaultmesh_federation::clock::os_random_32().expect("entropy");
    let nonce: [u8; 16] = *nonce.first_chunk().expect("16");
    let headers = signing::sign(
        &key,
        form.method.as_str(),
        &form.path_and_query,
        &form.body,
        &as_mesh.mesh_id().parse().expect("mesh"),
        &of.mesh_id().parse().expect("mesh"),
        SystemClock.now(),
        &nonce,
    )
    .expect("sign");
    let (status, body, _) = exchange(config, &of.https, form, headers, true)
        .await
        .expect("exchange");
    (
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}
