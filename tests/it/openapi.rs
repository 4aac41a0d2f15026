//! The OpenAPI document (DESIGN §8: "the served document matches the implementation"):
//! the committed `docs/openapi.json` is what the code generates, every documented operation
//! is one the router takes (and the router takes no method a documented path does not
//! list), every federation request's HTTP form lands on a documented operation, and a
//! running node serves the same document to anyone.

#![allow(clippy::unwrap_used)] // a failed step is the test failing

use std::collections::BTreeSet;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use vaultmesh_federation::clock::{Clock, SystemClock};
use vaultmesh_federation::http::client::exchange;
use vaultmesh_federation::http::openapi;
use vaultmesh_federation::http::routes::{self, HttpForm};
use vaultmesh_federation::node::wire::FedRequest;
use vaultmesh_federation::witness::EvidenceRequest;
use vm_network::tls::{self, TlsClock};

use super::node_input::{start_node_with, status};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = openapi::pretty();
    let path = committed_path();
    if std::env::var_os("VM_WRITE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not what src/http/openapi.rs generates; regenerate it with\n\
         VM_WRITE_OPENAPI=1 cargo test --test it openapi\nand commit it"
    );
    // It parses back to the document, and the document is OpenAPI 3 with every operation
    // answering 200 and the error schema.
    let doc = openapi::document();
    assert_eq!(serde_json::from_str::<Value>(&committed).unwrap(), doc);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path}");
            for (status, response) in responses {
                if status != "200" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
            if responses.contains_key("429") {
                assert_eq!(responses["429"]["headers"]["Retry-After"]["required"], true);
            }
        }
    }
}

/// `{name}` segments match any one segment.
fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

fn method_of(name: &str) -> Method {
    Method::from_bytes(name.to_uppercase().as_bytes()).unwrap()
}

fn query_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A request for a documented operation, from the examples the document gives.
fn representative(path: &str, op: &Value) -> (String, Option<String>, Vec<u8>) {
    let mut concrete = path.to_owned();
    let mut query = Vec::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap();
        let example = &p["example"];
        assert!(
            !example.is_null(),
            "{path}: parameter {name} has no example"
        );
        match p["in"].as_str().unwrap() {
            "path" => concrete = concrete.replace(&format!("{{{name}}}"), &query_value(example)),
            "query" => match example {
                Value::Array(items) => {
                    for item in items {
                        query.push(format!("{name}={}", query_value(item)));
                    }
                }
                v => query.push(format!("{name}={}", query_value(v))),
            },
            other => panic!("{path}: parameter {name} in {other}"),
        }
    }
    let body = match &op["requestBody"]["content"]["application/json"]["example"] {
        Value::Null => Vec::new(),
        example => serde_json::to_vec(example).unwrap(),
    };
    let query = (!query.is_empty()).then(|| query.join("&"));
    (concrete, query, body)
}

#[test]
fn every_documented_operation_is_routed_and_every_request_is_documented() {
    let doc = openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().unwrap();
        for (method, op) in item {
            documented.insert((path.clone(), method.clone()));
            if path == openapi::PATH {
                // Served by the HTTPS server itself, before the router: no federation
                // request, so the router does not know it.
                assert_eq!(method, "get");
                assert!(op["security"].as_array().unwrap().is_empty());
                let refused = routes::from_http(&Method::GET, path, None, b"").unwrap_err();
                assert_eq!(refused.status, StatusCode::NOT_FOUND);
                continue;
            }
            let (concrete, query, body) = representative(path, op);
            let request = routes::from_http(&method_of(method), &concrete, query.as_deref(), &body)
                .unwrap_or_else(|r| {
                    panic!("{method} {concrete}?{query:?}: the router refuses the documented example: {r:?}")
                });
            // Public exactly when the server serves it without authentication.
            assert_eq!(
                op["security"].as_array().unwrap().is_empty(),
                matches!(request, FedRequest::Discovery),
                "{method} {path}"
            );
            // And back: the request's HTTP form is this operation.
            let form = routes::to_http(&request).unwrap();
            assert_eq!(form.method, method_of(method), "{method} {path}");
            let form_path = form.path_and_query.split('?').next().unwrap();
            assert_eq!(form_path, concrete, "{method} {path}");
        }
        // The router takes no method the document does not list, and a 405 lists exactly
        // the documented ones.
        let concrete = path.replace(['{', '}'], "");
        for method in METHODS {
            if item.contains_key(method) || path == openapi::PATH {
                continue;
            }
            let refused = routes::from_http(&method_of(method), &concrete, None, b"").unwrap_err();
            assert_eq!(
                refused.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is routed but not documented"
            );
        }
        if path != openapi::PATH {
            let mut allowed: Vec<String> = routes::allowed_methods(&concrete)
                .iter()
                .map(|m| m.to_lowercase())
                .collect();
            allowed.sort();
            let mut listed: Vec<String> = item.keys().cloned().collect();
            listed.sort();
            assert_eq!(allowed, listed, "{path}");
        }
    }

    // Every federation request has an HTTP form on a documented operation.
    let samples = request_samples();
    let kinds: BTreeSet<String> = samples.iter().map(kind).collect();
    let all: BTreeSet<String> = [
        "message:proposal",
        "message:response",
        "message:agreement",
        "message:revocation",
        "message:attestation",
        "message:discrepancy",
        "discovery",
        "notify",
        "roots",
        "evidence",
        "get_proposal",
        "list_agreements",
        "get_agreement",
        "receipts",
        "verify",
        "consistency_proof",
        "inclusion_proof",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(kinds, all, "a sample of every request");
    for request in &samples {
        let form = routes::to_http(request).unwrap();
        let method = form.method.as_str().to_lowercase();
        let path = form.path_and_query.split('?').next().unwrap();
        assert!(
            documented
                .iter()
                .any(|(t, m)| *m == method && template_matches(t, path)),
            "{} {} ({}) is not documented",
            form.method,
            form.path_and_query,
            kind(request)
        );
        // And the router takes the form back.
        let query = form.path_and_query.split_once('?').map(|(_, q)| q);
        routes::from_http(&form.method, path, query, &form.body).unwrap();
    }
}

/// The name of a request's kind; a new variant fails to compile here until it is sampled.
fn kind(request: &FedRequest) -> String {
    match request {
        FedRequest::Message { message } => {
            format!("message:{}", message["type"].as_str().unwrap())
        }
        FedRequest::Discovery => "discovery".into(),
        FedRequest::Notify { .. } => "notify".into(),
        FedRequest::Roots { .. } => "roots".into(),
        FedRequest::Evidence { .. } => "evidence".into(),
        FedRequest::GetProposal { .. } => "get_proposal".into(),
        FedRequest::ListAgreements => "list_agreements".into(),
        FedRequest::GetAgreement { .. } => "get_agreement".into(),
        FedRequest::Receipts { .. } => "receipts".into(),
        FedRequest::Verify { .. } => "verify".into(),
        FedRequest::ConsistencyProof { .. } => "consistency_proof".into(),
        FedRequest::InclusionProof { .. } => "inclusion_proof".into(),
    }
}

fn request_samples() -> Vec<FedRequest> {
    let scroll = || "Compliance".parse().unwrap();
    let message = |m: Value| FedRequest::Message { message: m };
    vec![
        message(json!({"type": "proposal", "proposal": {}})),
        message(json!({"type": "response", "response": {"proposal_id": "p-7"}})),
        message(json!({"type": "agreement", "agreement": {}})),
        message(json!({"type": "revocation", "notice": {"agreement_id": "a-7"}})),
        message(json!({"type": "attestation", "attestation": {}})),
        message(json!({"type": "discrepancy", "report": {}, "evidence": {}})),
        FedRequest::Discovery,
        FedRequest::Notify {
            notification: json!({}),
        },
        FedRequest::Roots {
            scrolls: Vec::new(),
        },
        FedRequest::Roots {
            scrolls: vec![scroll(), "Federation".parse().unwrap()],
        },
        FedRequest::Evidence {
            ask: EvidenceRequest {
                scroll: scroll(),
                old_size: Some(2),
                new_size: 5,
                samples: vec![0, 4],
            },
        },
        FedRequest::GetProposal {
            proposal_id: "p-7".into(),
        },
        FedRequest::ListAgreements,
        FedRequest::GetAgreement {
            agreement_id: "a-7".into(),
        },
        FedRequest::Receipts {
            scroll: scroll(),
            from: 3,
            limit: 10,
        },
        FedRequest::Verify {
            scroll: scroll(),
            sequence: 3,
            receipt_hash: None,
        },
        FedRequest::ConsistencyProof {
            scroll: scroll(),
            old_size: 1,
            new_size: 4,
        },
        FedRequest::InclusionProof {
            scroll: scroll(),
            sequence: 0,
            tree_size: 4,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_serves_the_document_to_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node_with(dir.path(), "\n[http]\nlisten = \"127.0.0.1:0\"\n").await;
    let url = status(&node).await["federation_api"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock: TlsClock = Arc::new(|| SystemClock.now().unix());
    let get = |method: Method| HttpForm {
        method,
        path_and_query: openapi::PATH.into(),
        body: Vec::new(),
    };
    // No client certificate, no signature.
    let config = tls::discovery_client_config(clock.clone()).unwrap();
    let (code, body, _) = exchange(config, &url, get(Method::GET), Vec::new(), true)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap(), openapi::pretty());
    // Another method: 405, an error body.
    let config = tls::discovery_client_config(clock).unwrap();
    let (code, body, _) = exchange(config, &url, get(Method::POST), Vec::new(), true)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "method_not_allowed", "{body}");

    node.stop.take().unwrap().send(()).unwrap();
    node.task.await.unwrap().unwrap();
}
