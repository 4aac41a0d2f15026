//! A running node (in-process, real sockets) facing bad input over request-response and
//! gossip: malformed, unsigned, wrongly signed, unknown-sender, oversized and replayed
//! messages are each refused with a reason, counted, and change no state; the same message
//! properly signed then goes through.

#![allow(clippy::unwrap_used)] // a failed step is the test failing

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use vaultmesh_federation::clock::{Clock, SystemClock};
use vaultmesh_federation::data_dir::DataDir;
use vaultmesh_federation::engine::{Command, Engine, EngineConfig, Input, Output};
use vaultmesh_federation::node;
use vaultmesh_federation::node::client::call_async;
use vm_network::{NetworkConfig, NetworkHandle};
use vm_receipts::documents::{SignedRoot, TrustLevel, VerificationFrequency};
use vm_receipts::{Blake3Hash, MeshId, MeshKey, PublicKey, ScrollName};
use vm_storage::Store;

use super::engine::terms;

pub struct RunningNode {
    pub root: PathBuf,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start_node(dir: &Path) -> RunningNode {
    start_node_with(dir, "").await
}

/// A node with `extra` appended to its config.toml.
pub async fn start_node_with(dir: &Path, extra: &str) -> RunningNode {
    let root = dir.join("node");
    DataDir::init(
        &root,
        MeshId::from_name("target").unwrap(),
        [3; 32],
        SystemClock.now(),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(root.join("config.toml")).unwrap();
    config.push_str(
        "\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\ngossip_initial_delay_ms = 100\n",
    );
    config.push_str(extra);
    std::fs::write(root.join("config.toml"), config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let root = root.clone();
        async move {
            node::run(&root, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    // Generous: the whole suite starts nodes in parallel on two cores.
    for _ in 0..600 {
        if root.join("control.sock").exists() {
            return RunningNode {
                root,
                stop: Some(stop),
                task,
            };
        }
        if task.is_finished() {
            panic!("the node stopped while starting: {:?}", task.await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node did not open its control socket within 30 s");
}

pub async fn status(node: &RunningNode) -> Value {
    call_async(&node.root, Method::GET, "/v1/status", None)
        .await
        .unwrap()
}

async fn peer(seed: u8) -> NetworkHandle {
    let mut c = NetworkConfig::new(
        MeshKey::from_seed(&[seed; 32]),
        Arc::new(|| SystemClock.now()),
    );
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.gossip_initial_delay = Duration::from_millis(100);
    c.gossip_heartbeat = Duration::from_millis(200);
    vm_network::spawn(c).await.unwrap().0
}

/// A valid proposal from mesh `xray` (key seed 7) to the node, as the wire JSON.
pub fn proposal_from_xray(target: &MeshId, target_key: PublicKey) -> Value {
    let key = MeshKey::from_seed(&[7; 32]);
    let me = MeshId::from_name("xray").unwrap();
    let now = SystemClock.now();
    let mut engine = Engine::open(
        me,
        key,
        EngineConfig::new("xray"),
        Store::in_memory().unwrap(),
        0,
        [1; 32],
    )
    .unwrap();
    engine
        .handle(
            now,
            Input::Command(Command::AddPeer {
                mesh_id: target.clone(),
                public_key: target_key,
                addresses: vec![],
            }),
        )
        .unwrap();
    let outputs = engine
        .handle(
            now,
            Input::Command(Command::Propose {
                target: target.clone(),
                trust_level: TrustLevel::VERIFY,
                terms: terms(&["Federation"], VerificationFrequency::DAILY),
            }),
        )
        .unwrap();
    let message = outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Send { message, .. } => Some(message),
            _ => None,
        })
        .expect("a proposal to send");
    message.to_value().unwrap()
}

async fn ask(from: &NetworkHandle, node_peer: &str, addrs: &[String], body: Vec<u8>) -> Value {
    let bytes = from
        .request(node_peer, addrs.to_vec(), body)
        .await
        .unwrap_or_else(|e| panic!("the node at {addrs:?} answers: {e:?}"));
    serde_json::from_slice(&bytes).expect("the answer is JSON")
}

/// The node's peer id and its listen addresses with `/p2p/<peer id>`, from its status.
fn dial_info(status: &Value) -> (String, Vec<String>) {
    let peer = status["peer_id"].as_str().unwrap().to_owned();
    let addrs = status["network"]["listen_addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/p2p/{peer}", a.as_str().unwrap()))
        .collect();
    (peer, addrs)
}

/// Sends each case and checks it is refused with its code and a message.
async fn expect_refusals(
    cases: Vec<(&str, &NetworkHandle, Vec<u8>, &str)>,
    node_peer: &str,
    addrs: &[String],
) {
    for (what, from, body, code) in cases {
        eprintln!("case: {what}");
        let answer = ask(from, node_peer, addrs, body).await;
        assert_eq!(answer["response"], "error", "{what}: {answer}");
        assert_eq!(answer["error"], code, "{what}: {answer}");
        assert!(
            !answer["message"].as_str().unwrap_or("").is_empty(),
            "{what}: the refusal names the problem"
        );
    }
}

/// Adds mesh `name` with the key of seed `seed` to the node's peers (`peers add`).
async fn add_known(node: &RunningNode, name: &str, seed: u8) {
    let key = MeshKey::from_seed(&[seed; 32]).public_key();
    call_async(
        &node.root,
        Method::POST,
        "/v1/peers",
        Some(json!({"op": "add_peer", "mesh_id": name, "public_key": key.to_string()})),
    )
    .await
    .unwrap();
}

fn message(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"request": "message", "message": value})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_gossip_are_refused_counted_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path()).await;
    let st = status(&node).await;
    let node_mesh: MeshId = serde_json::from_value(st["mesh_id"].clone()).unwrap();
    let node_key: PublicKey = serde_json::from_value(st["public_key"].clone()).unwrap();
    let (node_peer, addrs) = dial_info(&st);

    let xray = peer(7).await;
    let stranger = peer(8).await;
    let xray_key = MeshKey::from_seed(&[7; 32]).public_key();
    call_async(
        &node.root,
        Method::POST,
        "/v1/peers",
        Some(json!({"op": "add_peer", "mesh_id": "xray", "public_key": xray_key.to_string()})),
    )
    .await
    .unwrap();

    let good = proposal_from_xray(&node_mesh, node_key);
    let mut unsigned = good.clone();
    unsigned["proposal"]
        .as_object_mut()
        .unwrap()
        .remove("signature");
    let mut tampered = good.clone();
    tampered["proposal"]["proposed_trust_level"] = json!(3);

    let cases: Vec<(&str, &NetworkHandle, Vec<u8>, &str)> = vec![
        ("not JSON", &xray, b"not json".to_vec(), "malformed"),
        (
            "unknown request",
            &xray,
            br#"{"request":"bogus"}"#.to_vec(),
            "malformed",
        ),
        (
            "unsigned proposal",
            &xray,
            message(&unsigned),
            "bad_document",
        ),
        (
            "wrongly signed proposal",
            &xray,
            message(&tampered),
            "bad_signature",
        ),
        (
            "valid proposal from another peer",
            &stranger,
            message(&good),
            "unknown_sender",
        ),
        // From the stranger: a fifth strike would ban xray (and close its connection).
        (
            "oversized",
            &stranger,
            vec![b' '; (1 << 20) + 1],
            "oversized",
        ),
    ];
    expect_refusals(cases, &node_peer, &addrs).await;
    let st = status(&node).await;
    assert_eq!(st["proposals"], 0, "no bad input left a proposal");
    assert_eq!(
        st["federation_scroll"]["size"], 0,
        "no bad input left a receipt"
    );
    let counters = &st["network"]["counters"];
    assert_eq!(counters["requests_oversized"], 1);
    assert_eq!(
        counters["requests_rejected"], 4,
        "malformed, unknown, unsigned and wrongly signed are penalised: {counters}"
    );

    // The real thing goes through, once; its replay is acknowledged and changes nothing.
    let answer = ask(&xray, &node_peer, &addrs, message(&good)).await;
    assert_eq!(answer["response"], "ack", "{answer}");
    let after = status(&node).await;
    assert_eq!(after["proposals"], 1);
    let size = after["federation_scroll"]["size"].clone();
    let answer = ask(&xray, &node_peer, &addrs, message(&good)).await;
    assert_eq!(
        answer["response"], "ack",
        "a replay is acknowledged: {answer}"
    );
    let again = status(&node).await;
    assert_eq!(again["proposals"], 1);
    assert_eq!(
        again["federation_scroll"]["size"], size,
        "a replay appends nothing"
    );

    // Gossip: a malformed root and a root signed by the wrong key are rejected.
    let impostor = MeshKey::from_seed(&[9; 32]);
    let forged = SignedRoot::new(
        &impostor,
        MeshId::from_name("xray").unwrap(),
        ScrollName::federation(),
        1,
        Blake3Hash::digest(b"x"),
        SystemClock.now(),
    )
    .unwrap();
    let forged = serde_json::to_vec(&forged).unwrap();
    let mut rejected = 0;
    let mut banned = 0;
    for round in 0..100 {
        let payload = if round % 2 == 0 {
            format!("{{not a root {round}").into_bytes()
        } else {
            forged.clone()
        };
        let _ = xray.gossip(payload).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let counters = status(&node).await["network"]["counters"].clone();
        rejected = counters["gossip_rejected"].as_u64().unwrap();
        banned = counters["bans"].as_u64().unwrap();
        if rejected >= 2 || (rejected >= 1 && banned >= 1) {
            break;
        }
    }
    // Each rejection is a strike: xray, struck already for its bad requests above, may be
    // banned by the first rejected root (and then sends nothing more).
    assert!(
        rejected >= 2 || (rejected >= 1 && banned >= 1),
        "malformed and forged roots are rejected (rejected {rejected}, bans {banned})"
    );
    assert_eq!(status(&node).await["proposals"], 1);

    node.stop.take().unwrap().send(()).unwrap();
    node.task.await.unwrap().unwrap();
    assert!(
        !node.root.join("control.sock").exists(),
        "a graceful stop removes the socket"
    );
}

/// Witness requests (notify, roots, evidence) from a peer without an agreement, from a
/// stranger, or malformed: each refused with a named error, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_requests_outside_an_agreement_are_refused() {
    use vaultmesh_federation::anchor::{Batch, anchor_local};
    use vm_receipts::documents::AnchorNotification;

    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path()).await;
    let st = status(&node).await;
    let (node_peer, addrs) = dial_info(&st);
    let xray = peer(7).await;
    let stranger = peer(8).await;
    let xray_key = MeshKey::from_seed(&[7; 32]);
    call_async(
        &node.root,
        Method::POST,
        "/v1/peers",
        Some(json!({"op": "add_peer", "mesh_id": "xray", "public_key": xray_key.public_key().to_string()})),
    )
    .await
    .unwrap();

    let xray_mesh = MeshId::from_name("xray").unwrap();
    let root = SignedRoot::new(
        &xray_key,
        xray_mesh.clone(),
        ScrollName::federation(),
        3,
        Blake3Hash::digest(b"root"),
        SystemClock.now(),
    )
    .unwrap();
    let batch = Batch::new(vec![root.clone()]).unwrap();
    let anchor = anchor_local(&xray_key, &xray_mesh, &batch.root(), SystemClock.now());
    let notification = serde_json::to_value(AnchorNotification::new(
        root,
        batch.proof(0, &anchor).unwrap(),
    ))
    .unwrap();
    let mut no_proof = notification.clone();
    no_proof.as_object_mut().unwrap().remove("anchor_proof");
    let notify =
        |n: &Value| serde_json::to_vec(&json!({"request": "notify", "notification": n})).unwrap();
    let evidence = serde_json::to_vec(&json!({"request": "evidence", "ask": {
        "scroll": "Federation", "new_size": 1, "samples": [0]
    }}))
    .unwrap();
    let roots = serde_json::to_vec(&json!({"request": "roots"})).unwrap();

    let cases: Vec<(&str, &NetworkHandle, Vec<u8>, &str)> = vec![
        (
            "notify without an agreement",
            &xray,
            notify(&notification),
            "forbidden",
        ),
        (
            "notify without its anchor proof",
            &xray,
            notify(&no_proof),
            "bad_document",
        ),
        (
            "notify from a stranger",
            &stranger,
            notify(&notification),
            "unknown_sender",
        ),
        (
            "roots without an agreement",
            &xray,
            roots.clone(),
            "forbidden",
        ),
        ("roots from a stranger", &stranger, roots, "unknown_sender"),
        (
            "evidence without an agreement",
            &xray,
            evidence.clone(),
            "forbidden",
        ),
        (
            "evidence from a stranger",
            &stranger,
            evidence,
            "unknown_sender",
        ),
    ];
    expect_refusals(cases, &node_peer, &addrs).await;
    let st = status(&node).await;
    assert_eq!(st["witness"]["witnessed"], json!([]), "{st}");
    assert_eq!(st["witness"]["checks_in_flight"], 0, "{st}");
    assert_eq!(st["federation_scroll"]["size"], 0, "{st}");
    node.stop.take().unwrap().send(()).unwrap();
    node.task.await.unwrap().unwrap();
}

/// Issue 16, item 3: the HTTPS API's rate limits hold on libp2p too. A known mesh that
/// floods requests is answered `rate_limited` (not permanent: it may try again), each
/// refusal counted under `refusals.libp2p`; a stranger's anonymous discovery requests are
/// limited per peer id. A mesh's budget is one across both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_floods_over_libp2p_are_rate_limited_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut node =
        start_node_with(dir.path(), "\n[http]\nrate_per_sec = 1\nrate_burst = 3\n").await;
    let st = status(&node).await;
    let (node_peer, addrs) = dial_info(&st);
    let xray = peer(7).await;
    let xray_key = MeshKey::from_seed(&[7; 32]).public_key();
    call_async(
        &node.root,
        Method::POST,
        "/v1/peers",
        Some(json!({"op": "add_peer", "mesh_id": "xray", "public_key": xray_key.to_string()})),
    )
    .await
    .unwrap();
    let roots =
        serde_json::to_vec(&json!({"request": "roots", "scrolls": ["Federation"]})).unwrap();
    let mut codes = Vec::new();
    for _ in 0..10 {
        let answer = ask(&xray, &node_peer, &addrs, roots.clone()).await;
        codes.push(answer["error"].as_str().unwrap_or("answered").to_owned());
    }
    let limited = codes.iter().filter(|c| *c == "rate_limited").count();
    assert!(limited >= 5, "a flood of 10 with a burst of 3: {codes:?}");
    assert!(!codes[0].contains("rate_limited"), "{codes:?}");
    // A stranger asking for discovery over and over: limited by its peer id (4x a mesh's).
    let stranger = peer(8).await;
    let discovery = serde_json::to_vec(&json!({"request": "discovery"})).unwrap();
    let mut stranger_limited = 0;
    for _ in 0..30 {
        let answer = ask(&stranger, &node_peer, &addrs, discovery.clone()).await;
        if answer["error"] == "rate_limited" {
            stranger_limited += 1;
        }
    }
    assert!(stranger_limited > 0, "anonymous discovery is limited too");
    let refusals = status(&node).await["refusals"]["libp2p"].clone();
    assert_eq!(
        refusals["rate_limited"].as_u64(),
        Some((limited + stranger_limited) as u64),
        "{refusals}"
    );
    node.stop.take().unwrap().send(()).unwrap();
    node.task.await.unwrap().unwrap();
}

/// Issue 16, item 9: a known mesh relaying another mesh's signed message (here xray's valid
/// proposal, sent by yankee over yankee's own authenticated libp2p connection) is refused as
/// `sender_mismatch` and changes nothing: the transport's identity must be the author's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_mesh_relaying_another_meshs_signed_message_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path()).await;
    let st = status(&node).await;
    let node_mesh: MeshId = serde_json::from_value(st["mesh_id"].clone()).unwrap();
    let node_key: PublicKey = serde_json::from_value(st["public_key"].clone()).unwrap();
    let (node_peer, addrs) = dial_info(&st);
    let yankee = peer(8).await;
    for (name, seed) in [("xray", 7u8), ("yankee", 8u8)] {
        add_known(&node, name, seed).await;
    }
    let relayed = proposal_from_xray(&node_mesh, node_key);
    expect_refusals(
        vec![(
            "xray's proposal relayed by yankee",
            &yankee,
            message(&relayed),
            "sender_mismatch",
        )],
        &node_peer,
        &addrs,
    )
    .await;
    let st = status(&node).await;
    assert_eq!(st["proposals"], 0, "{st}");
    assert_eq!(st["federation_scroll"]["size"], 0, "{st}");
    node.stop.take().unwrap().send(()).unwrap();
    node.task.await.unwrap().unwrap();
}

/// Issue 16, item 9: hostile JSON through the libp2p codec is refused as `malformed`, as the
/// HTTPS API refuses it, and the node keeps serving. Duplicate keys matter most: a parser that
/// keeps the last of two (serde_json) and one that keeps the first (another implementation)
/// would read two different documents from one signed message; both transports now parse
/// with the strict parser. Each case comes from a fresh identity (each refusal is a strike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_over_libp2p_is_refused_as_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path()).await;
    let st = status(&node).await;
    let node_mesh: MeshId = serde_json::from_value(st["mesh_id"].clone()).unwrap();
    let node_key: PublicKey = serde_json::from_value(st["public_key"].clone()).unwrap();
    let (node_peer, addrs) = dial_info(&st);
    add_known(&node, "xray", 7).await;
    let good = serde_json::to_string(&json!({
        "request": "message",
        "message": proposal_from_xray(&node_mesh, node_key),
    }))
    .unwrap();
    // The proposal again with its level written twice: serde_json alone would keep the
    // second (3), a signature over the first (2) would then not be what was checked.
    let twice = good.replacen(
        "\"proposed_trust_level\":2",
        "\"proposed_trust_level\":2,\"proposed_trust_level\":3",
        1,
    );
    assert_ne!(twice, good, "the level is in the proposal");
    let deep = format!("{}{}", "[".repeat(4096), "]".repeat(4096));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a duplicate key in the envelope",
            br#"{"request":"roots","request":"discovery"}"#.to_vec(),
        ),
        (
            "a duplicate key inside a signed proposal",
            twice.into_bytes(),
        ),
        ("4096 nested arrays", deep.into_bytes()),
        (
            "an integer no double holds",
            br#"{"request":"roots","scrolls":[],"n":123456789012345678901234567}"#.to_vec(),
        ),
        ("invalid UTF-8", b"{\"request\":\"ro\xffts\"}".to_vec()),
        (
            "trailing bytes after the object",
            br#"{"request":"discovery"} {"request":"discovery"}"#.to_vec(),
        ),
    ];
    for (i, (what, body)) in cases.into_iter().enumerate() {
        let from = peer(40 + i as u8).await;
        let answer = ask(&from, &node_peer, &addrs, body).await;
        assert_eq!(answer["response"], "error", "{what}: {answer}");
        assert_eq!(answer["error"], "malformed", "{what}: {answer}");
    }
    // Nothing was taken, and the node still answers.
    let st = status(&node).await;
    assert_eq!(st["proposals"], 0, "{st}");
    let from = peer(60).await;
    let answer = ask(
        &from,
        &node_peer,
        &addrs,
        br#"{"request":"discovery"}"#.to_vec(),
    )
    .await;
    assert_eq!(answer["response"], "discovery", "{answer}");
    node.stop.take().unwrap().send(()).unwrap();
    node.task.await.unwrap().unwrap();
}
