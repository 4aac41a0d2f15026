//! The fuzz targets' bodies, one function per parser that takes bytes from outside.
//!
//! `fuzz_targets/<name>.rs` hands libFuzzer's input to [`TARGETS`]`[name]`; the replay test
//! (`tests/replay.rs`, stable Rust, run by CI) feeds every file of `corpus/<name>/` and
//! `regressions/<name>/` through the same function. A target panics only on a broken
//! property: a parser must refuse with an error, never panic, and what it accepts must
//! survive a round trip (re-encode, re-parse, same value).
//!
//! Inputs with several parts (an HTTP request, signature headers) are split on `0x00`
//! bytes ([`parts`]): libFuzzer mutates each part as it likes, and a seed is easy to write.

use std::sync::OnceLock;

use hyper::{Method, StatusCode};
use serde_json::Value;
use vaultmesh_federation::config::Config;
use vaultmesh_federation::engine::PeerMessage;
use vaultmesh_federation::http::{routes, signing};
use vaultmesh_federation::node::wire::{FedRequest, FedResponse};
use vm_network::Freshness;
use vm_network::record;
use vm_receipts::documents::{
    self, AnchorNotification, DiscoveryRecord, Document, FederationAgreement, ProposalResponse,
    RevocationNotice, SignedDocument, SignedRoot, TrustProposal, WitnessAttestation,
};
use vm_receipts::jcs::{self, Numbers};
use vm_receipts::proof::ReceiptProof;
use vm_receipts::receipts::parse_receipt;
use vm_receipts::scroll::Scroll;
use vm_receipts::{MeshId, MeshKey, PublicKey, ScrollName, Timestamp};

pub mod seeds;

/// A target: its name (the directory of its corpus) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("json", json),
    ("documents", documents),
    ("receipt", receipt),
    ("peer_message", peer_message),
    ("fed_wire", fed_wire),
    ("http_route", http_route),
    ("http_headers", http_headers),
    ("dht_record", dht_record),
    ("gossip_root", gossip_root),
    ("scroll_open", scroll_open),
    ("tsa_token", tsa_token),
    ("config", config),
];

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The key seeds use: signatures by it verify in the targets, so a mutated seed reaches the
/// code after the signature check.
pub fn seed_key() -> MeshKey {
    MeshKey::from_seed(&[7; 32])
}

/// Seeds' mesh.
pub fn seed_mesh() -> MeshId {
    MeshId::from_name("fuzz").expect("a valid mesh name")
}

/// The node a request is addressed to.
pub fn destination() -> MeshId {
    MeshId::from_name("target").expect("a valid mesh name")
}

/// The clock of every target (seeds are signed at this time).
pub fn now() -> Timestamp {
    Timestamp::from_unix(1_790_000_000).expect("a valid time")
}

/// Splits `data` on `0x00` into exactly `n` parts (missing parts are empty; the last part
/// keeps any further zero bytes).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

/// Joins parts as [`parts`] splits them.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0u8)
}

/// A value's RFC 8785 bytes, if it has them.
fn canonical(value: &Value) -> Option<Vec<u8>> {
    jcs::to_vec(value).ok()
}

/// The strict JSON parser (duplicate keys, wide integers, depth), both number modes, and
/// RFC 8785: canonical bytes parse back to the same canonical bytes.
pub fn json(data: &[u8]) {
    for numbers in [Numbers::Any, Numbers::IntegersOnly] {
        let Ok(value) = jcs::parse(data, numbers) else {
            continue;
        };
        let Some(bytes) = canonical(&value) else {
            continue;
        };
        let again = jcs::parse(&bytes, Numbers::Any).expect("canonical JSON parses");
        assert_eq!(
            canonical(&again).as_deref(),
            Some(bytes.as_slice()),
            "RFC 8785 is not idempotent"
        );
    }
}

/// A document of type `T`: what parses re-encodes to bytes that parse to the same value.
fn document<T: Document>(data: &[u8]) -> Option<T> {
    let doc = documents::parse::<T>(data).ok()?;
    let bytes = doc.to_canonical().expect("a parsed document re-encodes");
    let again: T = documents::parse(&bytes).expect("a document's canonical bytes parse");
    assert_eq!(
        again.to_canonical().expect("re-encodes"),
        bytes,
        "{} does not round-trip",
        T::NAME
    );
    Some(doc)
}

/// A signed document: parsed as above, then its signature checked with the seed key (so
/// mutations of a valid seed exercise the signing-message code).
fn signed<T: SignedDocument>(data: &[u8]) {
    if let Some(doc) = document::<T>(data) {
        let _ = doc.verify(&seed_key().public_key());
    }
}

/// Every protocol document; the first byte picks the type.
pub fn documents(data: &[u8]) {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => signed::<TrustProposal>(rest),
        1 => signed::<ProposalResponse>(rest),
        2 => {
            let _ = document::<FederationAgreement>(rest);
        }
        3 => signed::<RevocationNotice>(rest),
        4 => signed::<WitnessAttestation>(rest),
        5 => signed::<SignedRoot>(rest),
        6 => {
            if let Some(n) = document::<AnchorNotification>(rest) {
                let _ = n.verify_root(&seed_key().public_key());
            }
        }
        _ => {
            if let Some(r) = document::<DiscoveryRecord>(rest) {
                let _ = r.verify(&r.public_key);
            }
        }
    }
}

/// A receipt line's JSON (floats allowed) and a receipt proof (`scroll check-proof`'s input).
pub fn receipt(data: &[u8]) {
    let _ = parse_receipt(data);
    if let Ok(proof) = ReceiptProof::parse(data) {
        let _ = proof.verify(&seed_key().public_key());
    }
}

/// A message between meshes as the engine decodes it: what decodes re-encodes to the same
/// hash.
pub fn peer_message(data: &[u8]) {
    if let Ok(message) = PeerMessage::from_bytes(data) {
        let bytes = message.to_bytes().expect("a decoded message re-encodes");
        let again = PeerMessage::from_bytes(&bytes).expect("its canonical bytes decode");
        assert_eq!(
            again.hash().expect("hashes"),
            message.hash().expect("hashes"),
            "a message does not round-trip"
        );
    }
}

/// The request-response bodies of `/vaultmesh/federation/1.0.0`: a request as the node
/// reads it, and an answer as the node (the client) reads it.
pub fn fed_wire(data: &[u8]) {
    let _ = serde_json::from_slice::<FedRequest>(data);
    let _ = serde_json::from_slice::<FedResponse>(data);
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// An HTTP request to the federation API (method byte, path, query, body) as the server
/// routes it, and an answer (status, body) as the client reads it for that request.
pub fn http_route(data: &[u8]) {
    let p = parts(data, 4);
    let method = &METHODS[usize::from(p[0].first().copied().unwrap_or(0)) % METHODS.len()];
    let Ok(path) = std::str::from_utf8(p[1]) else {
        return;
    };
    let query = std::str::from_utf8(p[2]).ok().filter(|q| !q.is_empty());
    match routes::from_http(method, path, query, p[3]) {
        Ok(request) => {
            let status = StatusCode::from_u16(200 + u16::from(p[0].get(1).copied().unwrap_or(0)))
                .unwrap_or(StatusCode::OK);
            let _ = routes::response_from_http(&request, status, p[3]);
            // The client's form of a routed request routes back to the same request.
            if let Ok(form) = routes::to_http(&request) {
                let (path, query) = match form.path_and_query.split_once('?') {
                    Some((path, query)) => (path, Some(query)),
                    None => (form.path_and_query.as_str(), None),
                };
                let again = routes::from_http(&form.method, path, query, &form.body)
                    .expect("the client's form of a request routes");
                assert_eq!(
                    serde_json::to_value(&again).ok(),
                    serde_json::to_value(&request).ok(),
                    "a request does not survive its HTTP form"
                );
            }
        }
        Err(refused) => assert!(!refused.message.is_empty(), "a refusal names the problem"),
    }
}

/// The four signature headers, then the request they sign (method, path, body): parsed as
/// the server does, and verified with the seed key against [`destination`] at [`now`].
pub fn http_headers(data: &[u8]) {
    let p = parts(data, 7);
    let Ok(values) = p[..4]
        .iter()
        .map(|v| std::str::from_utf8(v))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let names = [
        signing::MESH_ID,
        signing::TIMESTAMP,
        signing::NONCE,
        signing::SIGNATURE,
    ];
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .map(|i| values[i])
            .filter(|v| !v.is_empty())
    };
    let Ok(headers) = signing::parse_headers(get) else {
        return;
    };
    let (Ok(method), Ok(path)) = (std::str::from_utf8(p[4]), std::str::from_utf8(p[5])) else {
        return;
    };
    let _ = signing::verify(
        &headers,
        method,
        path,
        p[6],
        &destination(),
        &seed_key().public_key(),
        now(),
    );
}

/// A DHT record value under the key of the mesh it names (as a GET or PUT is checked) and
/// under another mesh's key, from its own peer and from another.
pub fn dht_record(data: &[u8]) {
    let freshness = Freshness {
        max_age_secs: 7 * 86_400,
        max_skew_secs: 300,
    };
    let own_peer = seed_key().public_key().peer_id();
    let key = record::mesh_key(&seed_mesh());
    let _ = record::validate(&key, data, Some(&own_peer), now(), freshness);
    let _ = record::validate(&key, data, None, now(), freshness);
    let _ = record::validate_own(data, now(), freshness);
    let _ = record::parse_updated_at(data);
}

/// A message on the roots gossip topic, as the witness core checks it: parsed, then its
/// root verified with the key of the mesh it names.
pub fn gossip_root(data: &[u8]) {
    if let Ok(n) = documents::parse::<AnchorNotification>(data) {
        let _ = n.verify_root(&seed_key().public_key());
        let _ = n.signed_root().to_canonical();
    }
}

/// A scroll file as `Scroll::open` reads it: every line hashed and its `root_hash`
/// checked, a torn tail cut, anything else refused, and never a panic.
pub fn scroll_open(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let name = ScrollName::federation();
    let path = vm_receipts::scroll::scroll_path(dir.path(), &name);
    if let Some(parent) = path.parent() {
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
    }
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok((scroll, report)) = Scroll::open(dir.path(), &name) {
        assert_eq!(scroll.len(), report.receipts, "the report counts the scroll");
    }
}

/// The trust anchor of the TSA that made the token seeds.
fn tsa_trust() -> &'static vm_tsa::TsaTrust {
    static TRUST: OnceLock<vm_tsa::TsaTrust> = OnceLock::new();
    TRUST.get_or_init(|| {
        vm_tsa::TsaTrust::from_pem(include_bytes!("../data/tsa_root.pem"))
            .expect("the seeds' TSA root certificate")
    })
}

/// An RFC 3161 time-stamp token (DER: CMS SignedData over a TSTInfo, certificates, ESS
/// attributes) verified over the seeds' stamped data with the seeds' TSA as trust anchor.
pub fn tsa_token(data: &[u8]) {
    let _ = vm_tsa::verify_token(data, seeds::TSA_DATA, tsa_trust(), 1_900_000_000);
}

/// `config.toml`: what parses writes back to TOML that parses to the same config.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text, "config.toml") {
        let written = config.to_toml().expect("a parsed config is written");
        let again = Config::parse(&written, "config.toml").expect("a written config parses");
        assert_eq!(again, config, "config.toml does not round-trip");
    }
}

/// The public key of the seeds, for tests that check a seed is valid.
pub fn seed_public_key() -> PublicKey {
    seed_key().public_key()
}
