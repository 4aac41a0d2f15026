//! The HTTP form of the federation requests (seed §5.1): each [`FedRequest`] has one method
//! and path, and each [`FedResponse`] one status and body. The node's one request handler
//! takes `FedRequest`s from both transports; this module is the only place that knows
//! what they look like over HTTP, for the server ([`from_http`], [`response_to_http`]) and
//! the client ([`to_http`], [`response_from_http`]) alike.
//!
//! | request | HTTP |
//! | --- | --- |
//! | discovery | `GET /federation/discovery` (no client certificate, no signature) |
//! | proposal | `POST /federation/proposals` |
//! | response (accept + draft, reject, counter, withdraw) | `PUT /federation/proposals/{proposal_id}` |
//! | countersigned agreement | `POST /federation/agreements` |
//! | revocation notice | `DELETE /federation/agreements/{agreement_id}` |
//! | attestation | `POST /federation/witness` |
//! | discrepancy report | `POST /federation/discrepancies` |
//! | anchor notification | `POST /federation/notify` |
//! | roots | `GET /federation/roots[?scrolls=A,B]` |
//! | evidence (consistency proof + samples) | `POST /federation/evidence` |
//! | a proposal thread | `GET /federation/proposals/{proposal_id}` |
//! | agreements with the sender | `GET /federation/agreements`, `GET /federation/agreements/{id}` |
//! | receipts of a shared scroll | `GET /federation/receipts/{scroll}?from=N&limit=N` |
//! | one receipt proven against the anchored root | `POST /federation/verify` |
//! | proofs | `GET /federation/proofs/consistency?scroll=S&old_size=N&new_size=N`, `GET /federation/proofs/inclusion?scroll=S&sequence=N&tree_size=N` |
//!
//! A message's body is its [`crate::engine::PeerMessage`] JSON; the path must agree with the
//! document (the route's kind, the id in the path). Success bodies are the `FedResponse`
//! JSON (`{"response":"ack"}`, …) except discovery, which is the signed record itself;
//! errors are `{"error","message","permanent"}` with the status of their code.

use hyper::{Method, StatusCode};
use serde_json::Value;
use vm_receipts::ScrollName;
use vm_receipts::documents::DiscoveryRecord;

use crate::node::wire::{FedRequest, FedResponse};

/// Most bytes of a request body (the request-response limit, DESIGN §8).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Most bytes of a response body.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// A request as it goes over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpForm {
    /// The method.
    pub method: Method,
    /// Path and query, exactly as signed.
    pub path_and_query: String,
    /// The body (empty for GET).
    pub body: Vec<u8>,
}

/// A refusal before the handler: status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Refused {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// As a response.
    pub fn response(&self) -> FedResponse {
        FedResponse::error(self.code, self.message.clone(), true)
    }
}

fn message_route(message: &Value) -> Result<(Method, String), String> {
    let kind = message["type"].as_str().unwrap_or("");
    let id = |doc: &str, field: &str| {
        message[doc][field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("a {kind} message without {doc}.{field}"))
    };
    Ok(match kind {
        "proposal" => (Method::POST, "/federation/proposals".into()),
        "response" => (
            Method::PUT,
            format!(
                "/federation/proposals/{}",
                id_segment(&id("response", "proposal_id")?)?
            ),
        ),
        "agreement" => (Method::POST, "/federation/agreements".into()),
        "revocation" => (
            Method::DELETE,
            format!(
                "/federation/agreements/{}",
                id_segment(&id("notice", "agreement_id")?)?
            ),
        ),
        "attestation" => (Method::POST, "/federation/witness".into()),
        "discrepancy" => (Method::POST, "/federation/discrepancies".into()),
        "resolution" => (Method::POST, "/federation/resolutions".into()),
        "arbitration" => (Method::POST, "/federation/arbitrations".into()),
        "verdict" => (Method::POST, "/federation/verdicts".into()),
        "suspension" => (
            Method::POST,
            format!(
                "/federation/agreements/{}/suspension",
                id_segment(&id("notice", "agreement_id")?)?
            ),
        ),
        other => return Err(format!("no HTTP route for a {other:?} message")),
    })
}

/// The HTTP form of a request (the client's side).
pub fn to_http(request: &FedRequest) -> Result<HttpForm, String> {
    let json = |v: &Value| serde_json::to_vec(v).map_err(|e| e.to_string());
    Ok(match request {
        FedRequest::Discovery => HttpForm {
            method: Method::GET,
            path_and_query: "/federation/discovery".into(),
            body: Vec::new(),
        },
        FedRequest::Message { message } => {
            let (method, path) = message_route(message)?;
            HttpForm {
                method,
                path_and_query: path,
                body: json(message)?,
            }
        }
        FedRequest::Notify { notification } => HttpForm {
            method: Method::POST,
            path_and_query: "/federation/notify".into(),
            body: json(notification)?,
        },
        FedRequest::Roots { scrolls } => {
            let mut path = "/federation/roots".to_owned();
            if !scrolls.is_empty() {
                let list: Vec<&str> = scrolls.iter().map(ScrollName::as_str).collect();
                path.push_str("?scrolls=");
                path.push_str(&list.join(","));
            }
            HttpForm {
                method: Method::GET,
                path_and_query: path,
                body: Vec::new(),
            }
        }
        FedRequest::Evidence { ask } => HttpForm {
            method: Method::POST,
            path_and_query: "/federation/evidence".into(),
            body: serde_json::to_vec(ask).map_err(|e| e.to_string())?,
        },
        FedRequest::GetProposal { proposal_id } => get(format!(
            "/federation/proposals/{}",
            id_segment(proposal_id)?
        )),
        FedRequest::ListAgreements => get("/federation/agreements".into()),
        FedRequest::GetAgreement { agreement_id } => get(format!(
            "/federation/agreements/{}",
            id_segment(agreement_id)?
        )),
        FedRequest::Receipts {
            scroll,
            from,
            limit,
        } => get(format!(
            "/federation/receipts/{}?from={from}&limit={limit}",
            scroll.as_str()
        )),
        FedRequest::Verify {
            scroll,
            sequence,
            receipt_hash,
        } => HttpForm {
            method: Method::POST,
            path_and_query: "/federation/verify".into(),
            body: json(&serde_json::json!({
                "scroll": scroll, "sequence": sequence, "receipt_hash": receipt_hash,
            }))?,
        },
        FedRequest::ConsistencyProof {
            scroll,
            old_size,
            new_size,
        } => get(format!(
            "/federation/proofs/consistency?scroll={}&old_size={old_size}&new_size={new_size}",
            scroll.as_str()
        )),
        FedRequest::InclusionProof {
            scroll,
            sequence,
            tree_size,
        } => get(format!(
            "/federation/proofs/inclusion?scroll={}&sequence={sequence}&tree_size={tree_size}",
            scroll.as_str()
        )),
    })
}

fn get(path_and_query: String) -> HttpForm {
    HttpForm {
        method: Method::GET,
        path_and_query,
        body: Vec::new(),
    }
}

/// The query's parameters; each of `allowed` at most once, nothing else.
fn query_params<'q>(
    query: Option<&'q str>,
    allowed: &[&str],
) -> Result<std::collections::BTreeMap<&'q str, &'q str>, Refused> {
    let mut params = std::collections::BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("query parameter {pair:?} has no value")))?;
        if !allowed.contains(&k) {
            return Err(bad(format!("unknown query parameter {k:?}")));
        }
        if params.insert(k, v).is_some() {
            return Err(bad(format!("query parameter {k:?} given twice")));
        }
    }
    Ok(params)
}

fn number(
    params: &std::collections::BTreeMap<&str, &str>,
    name: &str,
    default: Option<u64>,
) -> Result<u64, Refused> {
    match (params.get(name), default) {
        (Some(v), _) => v
            .parse()
            .map_err(|_| bad(format!("{name} must be a non-negative integer, not {v:?}"))),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(bad(format!("missing query parameter {name}"))),
    }
}

/// A document id from the path (`{proposal_id}`, `{agreement_id}`): the id rules, so that
/// nothing but an id (no `?`, `/`, control character) can stand in a path segment. What is
/// not an id names no document: 404, as for an id nobody issued.
fn id_param(text: &str) -> Result<String, Refused> {
    text.parse::<vm_receipts::DocumentId>()
        .map(|_| text.to_owned())
        .map_err(|e| {
            Refused::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{text:?} is not a document id: {e}"),
            )
        })
}

/// The client's side of [`id_param`]: an id that is not one cannot be put in a path.
fn id_segment(id: &str) -> Result<&str, String> {
    id.parse::<vm_receipts::DocumentId>()
        .map(|_| id)
        .map_err(|e| format!("{id:?} is not a document id: {e}"))
}

fn scroll_param(text: &str) -> Result<ScrollName, Refused> {
    text.parse()
        .map_err(|e: vm_receipts::EncodingError| bad(e.to_string()))
}

fn bad(message: impl Into<String>) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn json_body(body: &[u8]) -> Result<Value, Refused> {
    vm_receipts::jcs::parse(body, vm_receipts::jcs::Numbers::Any)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))
}

/// A message body whose `type` is `kind` and, for `PUT`/`DELETE`, whose document id is the
/// one in the path.
fn message_body(
    body: &[u8],
    kind: &str,
    path_id: Option<(&str, &str, &str)>,
) -> Result<FedRequest, Refused> {
    let message = json_body(body)?;
    if message["type"].as_str() != Some(kind) {
        return Err(bad(format!("this endpoint takes a {kind} message")));
    }
    if let Some((doc, field, id)) = path_id
        && message[doc][field].as_str() != Some(id)
    {
        return Err(bad(format!(
            "the path names {id}, the body another {field}"
        )));
    }
    Ok(FedRequest::Message { message })
}

/// The request an HTTP call makes (the server's side). Unknown paths are 404, known paths
/// with another method 405.
pub fn from_http(
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<FedRequest, Refused> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "oversized",
            format!("bodies are at most {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let not_allowed = || method_not_allowed(method, path);
    match segments.as_slice() {
        ["federation", "discovery"] => match *method {
            Method::GET => Ok(FedRequest::Discovery),
            _ => Err(not_allowed()),
        },
        ["federation", "proposals"] => match *method {
            Method::POST => message_body(body, "proposal", None),
            _ => Err(not_allowed()),
        },
        ["federation", "proposals", id] => match *method {
            Method::PUT => message_body(body, "response", Some(("response", "proposal_id", id))),
            Method::GET => Ok(FedRequest::GetProposal {
                proposal_id: id_param(id)?,
            }),
            _ => Err(not_allowed()),
        },
        ["federation", "agreements"] => match *method {
            Method::POST => message_body(body, "agreement", None),
            Method::GET => Ok(FedRequest::ListAgreements),
            _ => Err(not_allowed()),
        },
        ["federation", "agreements", id] => match *method {
            Method::DELETE => {
                message_body(body, "revocation", Some(("notice", "agreement_id", id)))
            }
            Method::GET => Ok(FedRequest::GetAgreement {
                agreement_id: id_param(id)?,
            }),
            _ => Err(not_allowed()),
        },
        ["federation", "agreements", id, "suspension"] => match *method {
            Method::POST => message_body(body, "suspension", Some(("notice", "agreement_id", id))),
            _ => Err(not_allowed()),
        },
        ["federation", "receipts", scroll] => match *method {
            Method::GET => {
                let params = query_params(query, &["from", "limit"])?;
                Ok(FedRequest::Receipts {
                    scroll: scroll_param(scroll)?,
                    from: number(&params, "from", Some(0))?,
                    limit: number(&params, "limit", Some(100))?,
                })
            }
            _ => Err(not_allowed()),
        },
        ["federation", "verify"] => match *method {
            Method::POST => {
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct VerifyBody {
                    scroll: ScrollName,
                    sequence: u64,
                    #[serde(default)]
                    receipt_hash: Option<vm_receipts::Blake3Hash>,
                }
                let v: VerifyBody = serde_json::from_value(json_body(body)?)
                    .map_err(|e| bad(format!("not a verify request: {e}")))?;
                Ok(FedRequest::Verify {
                    scroll: v.scroll,
                    sequence: v.sequence,
                    receipt_hash: v.receipt_hash,
                })
            }
            _ => Err(not_allowed()),
        },
        ["federation", "proofs", "consistency"] => match *method {
            Method::GET => {
                let params = query_params(query, &["scroll", "old_size", "new_size"])?;
                Ok(FedRequest::ConsistencyProof {
                    scroll: scroll_param(params.get("scroll").copied().unwrap_or(""))?,
                    old_size: number(&params, "old_size", None)?,
                    new_size: number(&params, "new_size", None)?,
                })
            }
            _ => Err(not_allowed()),
        },
        ["federation", "proofs", "inclusion"] => match *method {
            Method::GET => {
                let params = query_params(query, &["scroll", "sequence", "tree_size"])?;
                Ok(FedRequest::InclusionProof {
                    scroll: scroll_param(params.get("scroll").copied().unwrap_or(""))?,
                    sequence: number(&params, "sequence", None)?,
                    tree_size: number(&params, "tree_size", None)?,
                })
            }
            _ => Err(not_allowed()),
        },
        ["federation", "witness"] => match *method {
            Method::POST => message_body(body, "attestation", None),
            _ => Err(not_allowed()),
        },
        ["federation", "discrepancies"] => match *method {
            Method::POST => message_body(body, "discrepancy", None),
            _ => Err(not_allowed()),
        },
        ["federation", "resolutions"] => match *method {
            Method::POST => message_body(body, "resolution", None),
            _ => Err(not_allowed()),
        },
        ["federation", "arbitrations"] => match *method {
            Method::POST => message_body(body, "arbitration", None),
            _ => Err(not_allowed()),
        },
        ["federation", "verdicts"] => match *method {
            Method::POST => message_body(body, "verdict", None),
            _ => Err(not_allowed()),
        },
        ["federation", "notify"] => match *method {
            Method::POST => Ok(FedRequest::Notify {
                notification: json_body(body)?,
            }),
            _ => Err(not_allowed()),
        },
        ["federation", "roots"] => {
            match *method {
                Method::GET => {
                    let mut scrolls = Vec::new();
                    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                        match pair.split_once('=') {
                            Some(("scrolls", list)) => {
                                for name in list.split(',').filter(|n| !n.is_empty()) {
                                    scrolls.push(name.parse().map_err(
                                        |e: vm_receipts::EncodingError| bad(e.to_string()),
                                    )?);
                                }
                            }
                            _ => return Err(bad(format!("unknown query parameter {pair:?}"))),
                        }
                    }
                    Ok(FedRequest::Roots { scrolls })
                }
                _ => Err(not_allowed()),
            }
        }
        ["federation", "evidence"] => match *method {
            Method::POST => {
                let value = json_body(body)?;
                let ask = serde_json::from_value(value)
                    .map_err(|e| bad(format!("not an evidence request: {e}")))?;
                Ok(FedRequest::Evidence { ask })
            }
            _ => Err(not_allowed()),
        },
        _ => Err(Refused::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no federation endpoint {path}"),
        )),
    }
}

/// The 405 refusal of `method` on `path`.
pub fn method_not_allowed(method: &Method, path: &str) -> Refused {
    Refused::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path}"),
    )
}

/// The methods [`from_http`] routes on `path` (what a 405's `Allow` header lists).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    [
        ("GET", Method::GET),
        ("POST", Method::POST),
        ("PUT", Method::PUT),
        ("DELETE", Method::DELETE),
    ]
    .into_iter()
    .filter(|(_, method)| match from_http(method, path, None, b"") {
        Ok(_) => true,
        Err(r) => r.status != StatusCode::METHOD_NOT_ALLOWED && r.status != StatusCode::NOT_FOUND,
    })
    .map(|(name, _)| name)
    .collect()
}

/// The status of an error code.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "forbidden" => StatusCode::FORBIDDEN,
        "unauthorized" | "bad_signature" | "unknown_sender" | "sender_mismatch"
        | "key_mismatch" => StatusCode::UNAUTHORIZED,
        "malformed" | "bad_document" | "bad_request" | "not_for_us" => StatusCode::BAD_REQUEST,
        "not_found" | "unknown_scroll" | "unknown_proposal" | "unknown_agreement"
        | "receipt_mismatch" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "oversized" | "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::CONFLICT,
    }
}

/// Status and JSON body of a response (the server's side).
pub fn response_to_http(response: &FedResponse) -> (StatusCode, Vec<u8>) {
    match response {
        FedResponse::Discovery { record } => (
            StatusCode::OK,
            serde_json::to_vec(record).unwrap_or_default(),
        ),
        FedResponse::Error { error, .. } => (status_of(error), response.to_bytes()),
        _ => (StatusCode::OK, response.to_bytes()),
    }
}

/// The response an HTTP answer carries (the client's side), for the request it answers.
pub fn response_from_http(request: &FedRequest, status: StatusCode, body: &[u8]) -> FedResponse {
    if status.is_success() {
        if matches!(request, FedRequest::Discovery) {
            return match crate::node::wire::decode::<DiscoveryRecord>(body) {
                Ok(record) => FedResponse::Discovery {
                    record: Box::new(record),
                },
                Err(e) => {
                    FedResponse::error("malformed", format!("not a discovery record: {e}"), false)
                }
            };
        }
        return crate::node::wire::decode(body).unwrap_or_else(|e| {
            FedResponse::error(
                "malformed",
                format!("not a federation response: {e}"),
                false,
            )
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["error"].is_string() => FedResponse::error(
            v["error"].as_str().unwrap_or("error"),
            v["message"].as_str().unwrap_or(""),
            // Without the field: a 4xx other than 408/429 will not change on resending.
            v["permanent"].as_bool().unwrap_or(
                status.is_client_error()
                    && status != StatusCode::TOO_MANY_REQUESTS
                    && status != StatusCode::REQUEST_TIMEOUT,
            ),
        ),
        _ => FedResponse::error(
            "http",
            format!("HTTP {status} without a federation error body"),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Found by the `http_route` fuzz target: a path id holding `?` routed to a request whose
    // client form (`to_http`) then meant another request. Ids are document ids both ways.
    #[test]
    fn path_ids_are_document_ids_both_ways() {
        for path in [
            "/federation/agreements/agr-0\u{10}?",
            "/federation/proposals/a?b",
            "/federation/proposals/-lead",
        ] {
            let refused = from_http(&Method::GET, path, None, b"").expect_err(path);
            assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}");
            assert!(refused.message.contains("not a document id"), "{path}");
        }
        assert!(
            to_http(&FedRequest::GetAgreement {
                agreement_id: "agr-0?x".into()
            })
            .is_err()
        );
        let ok = from_http(&Method::GET, "/federation/agreements/agr-1", None, b"");
        assert!(
            matches!(ok, Ok(FedRequest::GetAgreement { ref agreement_id }) if agreement_id == "agr-1")
        );
    }
}
