//! Seed inputs, made with the project's own APIs and the OpenAPI document's examples (the
//! ones the HTTPS tests and schemathesis use): each is a valid input of its target, so the
//! fuzzer starts past the first parse error. `examples/seeds.rs` writes them into
//! `corpus/<target>/`; the replay test checks that each one is accepted by its parser.

use hyper::Method;
use serde_json::{Map, Value, json};
use vaultmesh_federation::config::Config;
use vaultmesh_federation::http::{routes, signing};
use vaultmesh_federation::node::wire::FedResponse;
use vm_receipts::documents::{
    AnchorNotification, DiscoveryRecord, Document, Endpoints, SignatureField, SignedDocument,
    SignedRoot, TrustPolicy,
};
use vm_receipts::scroll::Scroll;
use vm_receipts::{Blake3Hash, ScrollName};

use crate::{destination, join, now, seed_key, seed_mesh};

/// The bytes the TSA seeds stamp.
pub const TSA_DATA: &[u8] = b"vaultmesh fuzz seed";

/// One seed: its target, a file name, its bytes.
pub struct Seed {
    /// The target it is for.
    pub target: &'static str,
    /// Its file name in `corpus/<target>/`.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: impl Into<String>, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name: name.into(),
        bytes,
    }
}

/// Every request body example of the OpenAPI document: (method, path, body).
fn openapi_examples() -> Vec<(Method, String, Value)> {
    let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json"))
        .expect("docs/openapi.json is JSON");
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for (path, ops) in paths {
        let Some(ops) = ops.as_object() else { continue };
        for (method, op) in ops {
            let example = &op["requestBody"]["content"]["application/json"]["example"];
            if example.is_null() {
                continue;
            }
            let method: Method = method.to_uppercase().parse().expect("an HTTP method");
            // Path parameters take their documented examples' values.
            let path = path
                .replace("{proposal_id}", "prop-1")
                .replace("{agreement_id}", "agr-1");
            out.push((method, path, example.clone()));
        }
    }
    out
}

fn method_byte(method: &Method) -> u8 {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        _ => 4,
    }
}

/// A root of the seed mesh signed by the seed key.
fn signed_root(size: u64) -> SignedRoot {
    SignedRoot::new(
        &seed_key(),
        seed_mesh(),
        ScrollName::federation(),
        size,
        Blake3Hash::digest(b"fuzz seed root"),
        now(),
    )
    .expect("a signed root")
}

/// The seed mesh's discovery record, signed.
fn discovery_record() -> DiscoveryRecord {
    let key = seed_key();
    let public_key = key.public_key();
    let mut r = DiscoveryRecord {
        mesh_id: seed_mesh(),
        display_name: "fuzz".into(),
        endpoints: Endpoints::default(),
        public_key,
        scrolls_available: vec![ScrollName::federation()],
        trust_policy: TrustPolicy {
            accepts_proposals: true,
            min_trust_level: 1.try_into().expect("level 1"),
            requires_mutual: true,
            extra: Default::default(),
        },
        attestations: Vec::new(),
        peer_id: public_key.peer_id(),
        multiaddrs: vec!["/ip4/192.0.2.1/tcp/4001".into()],
        updated_at: now(),
        signature: SignatureField::unsigned(),
        extra: Default::default(),
    };
    r.sign(&key).expect("signs");
    r
}

/// A scroll file of three receipts, as `Scroll::open` finds it on disk.
fn scroll_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let name = ScrollName::federation();
    let (mut scroll, _) = Scroll::open(dir.path(), &name).expect("a new scroll");
    for (i, receipt) in [
        json!({"type": "app_event", "n": 1, "note": "first"}),
        json!({"type": "app_event", "n": 2.5, "tags": ["a", "b"], "nested": {"k": null}}),
        json!({"type": "app_event", "n": -3, "text": "unicode \u{e9}\u{1f600}"}),
    ]
    .iter()
    .enumerate()
    {
        let map: Map<String, Value> = receipt.as_object().cloned().unwrap_or_default();
        scroll
            .append(&map)
            .unwrap_or_else(|e| panic!("receipt {i}: {e}"));
    }
    drop(scroll);
    std::fs::read(vm_receipts::scroll::scroll_path(dir.path(), &name)).expect("the scroll file")
}

/// Every seed but the TSA tokens (which need `openssl ts`: `examples/seeds.rs` makes them).
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let examples = openapi_examples();

    // Strict JSON: the examples, and numbers at the edges of what is accepted.
    for (i, (_, _, body)) in examples.iter().enumerate() {
        out.push(seed("json", format!("example-{i}"), body.to_string().into_bytes()));
    }
    for (i, text) in [
        r#"{"a":[1,-0,9007199254740991,-9007199254740991,1.5e300,"\u00e9"],"b":{"c":null,"d":true}}"#,
        r#"[1E-7,0.000001,123456789012345680000,1e21,"\ud83d\ude00"]"#,
    ]
    .iter()
    .enumerate()
    {
        out.push(seed("json", format!("numbers-{i}"), text.as_bytes().to_vec()));
    }

    // Documents: the signed ones made here, and each document inside an example body.
    let root = signed_root(3);
    let record = discovery_record();
    let mut doc = |kind: u8, name: &str, bytes: Vec<u8>| {
        let mut input = vec![kind];
        input.extend(bytes);
        out.push(seed("documents", name.to_owned(), input));
    };
    doc(5, "signed-root", root.to_canonical().expect("encodes"));
    doc(7, "discovery-record", record.to_canonical().expect("encodes"));
    for (_, path, body) in &examples {
        let Some((field, inner)) = body.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let kind = match field.as_str() {
            "proposal" => 0,
            "response" => 1,
            "agreement" => 2,
            "notice" => 3,
            "attestation" => 4,
            _ => continue,
        };
        doc(kind, &format!("{field}-{}", path.replace('/', "_")), inner.to_string().into_bytes());
    }

    // A scroll, a receipt line from it, and the scroll with a torn last line.
    let file = scroll_file();
    for (i, line) in file.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        out.push(seed("receipt", format!("line-{i}"), line.to_vec()));
    }
    let mut torn = file.clone();
    torn.extend_from_slice(br#"{"type":"app_event","n":4"#);
    out.push(seed("scroll_open", "three-receipts", file));
    out.push(seed("scroll_open", "torn-tail", torn));

    // Messages, requests and answers: the example bodies through the server's router.
    for (method, path, body) in &examples {
        let bytes = body.to_string().into_bytes();
        let label = format!("{}{}", method.as_str().to_lowercase(), path.replace('/', "_"));
        // The bodies that are messages (the witness requests are not).
        if vaultmesh_federation::engine::PeerMessage::from_bytes(&bytes).is_ok() {
            out.push(seed("peer_message", label.clone(), bytes.clone()));
        }
        if let Ok(request) = routes::from_http(method, path, None, &bytes) {
            out.push(seed(
                "fed_wire",
                format!("request-{label}"),
                serde_json::to_vec(&request).expect("a request encodes"),
            ));
        }
        out.push(seed(
            "http_route",
            label.clone(),
            join(&[&[method_byte(method)], path.as_bytes(), b"", &bytes]),
        ));
        let headers = signing::sign(
            &seed_key(),
            method.as_str(),
            path,
            &bytes,
            &seed_mesh(),
            &destination(),
            now(),
            &[9; 16],
        )
        .expect("signs");
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        out.push(seed(
            "http_headers",
            label,
            join(&[
                value(signing::MESH_ID).as_bytes(),
                value(signing::TIMESTAMP).as_bytes(),
                value(signing::NONCE).as_bytes(),
                value(signing::SIGNATURE).as_bytes(),
                method.as_str().as_bytes(),
                path.as_bytes(),
                &bytes,
            ]),
        ));
    }
    for (path, query) in [
        ("/federation/discovery", ""),
        ("/federation/roots", "scrolls=Federation"),
        ("/federation/receipts/Federation", "from=0&limit=10"),
        ("/federation/proofs/consistency", "scroll=Federation&old_size=1&new_size=2"),
        ("/federation/proofs/inclusion", "scroll=Federation&sequence=0&tree_size=1"),
    ] {
        out.push(seed(
            "http_route",
            format!("get{}", path.replace('/', "_")),
            join(&[&[0], path.as_bytes(), query.as_bytes(), b""]),
        ));
    }
    for (i, answer) in [
        FedResponse::error("rate_limited", "slow down", false),
        serde_json::from_value(json!({"response": "ack"})).expect("an ack"),
    ]
    .iter()
    .enumerate()
    {
        out.push(seed("fed_wire", format!("answer-{i}"), answer.to_bytes()));
    }

    // The DHT record and a root gossiped with its anchor proof.
    out.push(seed(
        "dht_record",
        "signed-record",
        record.to_canonical().expect("encodes"),
    ));
    let notify = examples
        .iter()
        .find(|(_, path, _)| path == "/federation/notify")
        .map(|(_, _, body)| body.clone())
        .expect("the notify example");
    let example: AnchorNotification =
        vm_receipts::documents::from_value(notify).expect("the notify example parses");
    let gossip = AnchorNotification::new(root, example.anchor_proof);
    let gossip = gossip.to_canonical().expect("encodes");
    out.push(seed("gossip_root", "signed-root", gossip.clone()));
    out.push(seed("documents", "anchor-notification", [vec![6], gossip].concat()));

    // config.toml: the one `init` writes, and one with every section set.
    let plain = Config::new(seed_mesh()).to_toml().expect("a config");
    out.push(seed("config", "init", plain.into_bytes()));
    out.push(seed(
        "config",
        "sections",
        br#"mesh_id = "did:vm:mesh:fuzz"
display_name = "fuzz"

[network]
listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
bootstrap = ["/dns4/boot.example/tcp/4001/p2p/12D3KooWRndVhVZPCiQwHBBBdg769GyrPUW13zxwqQyf9r3ANaba"]

[anchor]
interval_secs = 3600

[http]
listen = "127.0.0.1:8443"
"#
        .to_vec(),
    ));
    out
}
