//! The OpenAPI 3 document of the federation HTTP API (DESIGN §8), built from code and served
//! by the node at [`PATH`] (no client certificate, no signature, like discovery).
//!
//! Every operation is one row of [`operations`]: method, path template, parameters, request
//! body, the success body and every error status the server can answer it with. The
//! document is assembled from that table and nothing else; `tests/it/openapi.rs` checks it
//! against [`super::routes`] both ways (each documented operation routes to a request, each
//! request's HTTP form lands on a documented operation) and against the committed copy
//! `docs/openapi.json`, which CI also runs schemathesis against on a live node.
//!
//! The statuses come from the same place as the server's: the error codes under each status
//! are grouped by [`super::routes::status_of`].

use serde_json::{Map, Value, json};

use super::routes::{MAX_REQUEST_BYTES, status_of};
use super::signing::WINDOW_SECS;

/// Where the node serves the document.
pub const PATH: &str = "/federation/openapi.json";

/// The API's version in the document (the protocol's request-response version).
const API_VERSION: &str = "1.0.0";

/// The largest integer a JSON body may hold (the strict parser's bound, ±(2^53−1)).
const BODY_INT_MAX: u64 = vm_receipts::jcs::MAX_SAFE_INTEGER;

/// Every error code the node answers with; [`status_of`] gives each its status.
const ERROR_CODES: &[&str] = &[
    "bad_request",
    "malformed",
    "bad_document",
    "not_for_us",
    "unauthorized",
    "bad_signature",
    "unknown_sender",
    "sender_mismatch",
    "key_mismatch",
    "forbidden",
    "not_found",
    "unknown_scroll",
    "unknown_proposal",
    "unknown_agreement",
    "receipt_mismatch",
    "method_not_allowed",
    "id_reused",
    "out_of_order",
    "closed",
    "expired",
    "clock_skew",
    "stale",
    "already_federated",
    "competing_draft",
    "draft_mismatch",
    "declined",
    "too_many_proposals",
    "beyond_tree",
    "not_our_root",
    "oversized",
    "too_large",
    "rate_limited",
    "internal",
];

/// How a request is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone: no client certificate, no signature.
    Public,
    /// mTLS pinned to the origin's key and the four signature headers.
    Signed,
}

/// One operation of the API: a row of the table the document is built from.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Lower-case HTTP method, as OpenAPI writes it.
    pub method: &'static str,
    /// The path template (`/federation/proposals/{proposal_id}`).
    pub path: &'static str,
    /// The `operationId`.
    pub id: &'static str,
    /// One line.
    pub summary: &'static str,
    /// More.
    pub description: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// Path and query parameters (OpenAPI parameter objects).
    pub parameters: Vec<Value>,
    /// The JSON body's schema and an example, if it takes one.
    pub body: Option<(Value, Value)>,
    /// The schema of the 200 body.
    pub ok: Value,
    /// Every error status the server can answer it with.
    pub errors: &'static [u16],
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A `u64` in a path or query (the server parses it as one).
fn query_u64() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
}

/// An integer in a JSON body (non-negative, within the strict parser's bound).
fn body_u64() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": BODY_INT_MAX})
}

fn path_param(name: &str, schema: Value, description: &str, example: Value) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": schema, "example": example,
    })
}

fn query_param(
    name: &str,
    required: bool,
    schema: Value,
    description: &str,
    example: Value,
) -> Value {
    json!({
        "name": name, "in": "query", "required": required, "description": description,
        "schema": schema, "example": example,
    })
}

fn data(schema: Value) -> Value {
    json!({
        "type": "object",
        "required": ["response", "data"],
        "additionalProperties": false,
        "properties": {"response": {"type": "string", "enum": ["data"]}, "data": schema},
    })
}

const SIGNED_MESSAGE: &[u16] = &[400, 401, 403, 404, 409, 413, 429, 500, 503];

/// The table: every operation of the federation API. `routes::from_http` is the server's
/// side of the same table; `tests/it/openapi.rs` keeps the two equal.
pub fn operations() -> Vec<Operation> {
    let scroll = schema_ref("ScrollName");
    let message =
        |method, path, id, summary, description, schema: &str, example: Value| Operation {
            method,
            path,
            id,
            summary,
            description,
            auth: Auth::Signed,
            parameters: Vec::new(),
            body: Some((schema_ref(schema), example)),
            ok: schema_ref("Ack"),
            errors: SIGNED_MESSAGE,
        };
    let with_id = |mut op: Operation, name: &str, description: &str, example: &str| {
        op.parameters = vec![path_param(
            name,
            schema_ref("DocumentId"),
            description,
            json!(example),
        )];
        op
    };
    vec![
        Operation {
            method: "get",
            path: "/federation/discovery",
            id: "getDiscovery",
            summary: "The node's signed discovery record",
            description: "No client certificate and no signature needed. The body is the \
                          DiscoveryRecord itself (not wrapped in a federation response); its \
                          public_key is the key of the server's TLS certificate.",
            auth: Auth::Public,
            parameters: Vec::new(),
            body: None,
            ok: schema_ref("DiscoveryRecord"),
            errors: &[400, 409, 429, 500, 503],
        },
        Operation {
            method: "get",
            path: PATH,
            id: "getOpenApi",
            summary: "This document",
            description: "No client certificate and no signature needed.",
            auth: Auth::Public,
            parameters: Vec::new(),
            body: None,
            ok: json!({"type": "object", "required": ["openapi", "info", "paths"]}),
            errors: &[429, 503],
        },
        message(
            "post",
            "/federation/proposals",
            "postProposal",
            "A trust proposal",
            "A signed TrustProposal for the receiving mesh. Taking the same proposal again \
             is acknowledged and changes nothing.",
            "ProposalMessage",
            json!({"type": "proposal", "proposal": example_proposal()}),
        ),
        with_id(
            message(
                "put",
                "/federation/proposals/{proposal_id}",
                "putProposalResponse",
                "An answer to a proposal: accept (with the drafted agreement), reject, counter, withdraw",
                "The body's response.proposal_id must be the one in the path (400 otherwise).",
                "ResponseMessage",
                json!({"type": "response", "response": example_response()}),
            ),
            "proposal_id",
            "The proposal answered.",
            "prop-1",
        ),
        with_id(
            Operation {
                method: "get",
                path: "/federation/proposals/{proposal_id}",
                id: "getProposal",
                summary: "A proposal thread the sender is a party to",
                description: "Any other proposal is 404, so nobody can probe other meshes' \
                              negotiations.",
                auth: Auth::Signed,
                parameters: Vec::new(),
                body: None,
                ok: data(schema_ref("ProposalThread")),
                errors: &[401, 404, 429, 503],
            },
            "proposal_id",
            "The proposal.",
            "prop-1",
        ),
        message(
            "post",
            "/federation/agreements",
            "postAgreement",
            "A countersigned agreement",
            "The FederationAgreement the receiver drafted, now signed by both parties.",
            "AgreementMessage",
            json!({"type": "agreement", "agreement": example_agreement()}),
        ),
        Operation {
            method: "get",
            path: "/federation/agreements",
            id: "listAgreements",
            summary: "The agreements between the sender and the node",
            description: "Signed documents with their state; an empty list when there are none.",
            auth: Auth::Signed,
            parameters: Vec::new(),
            body: None,
            ok: data(json!({"type": "array", "items": schema_ref("AgreementState")})),
            errors: &[401, 429, 503],
        },
        with_id(
            Operation {
                method: "get",
                path: "/federation/agreements/{agreement_id}",
                id: "getAgreement",
                summary: "One agreement between the sender and the node",
                description: "Any other agreement is 404.",
                auth: Auth::Signed,
                parameters: Vec::new(),
                body: None,
                ok: data(schema_ref("AgreementState")),
                errors: &[401, 404, 429, 503],
            },
            "agreement_id",
            "The agreement.",
            "agr-1",
        ),
        with_id(
            message(
                "delete",
                "/federation/agreements/{agreement_id}",
                "revokeAgreement",
                "A signed revocation notice",
                "The body's notice.agreement_id must be the one in the path (400 otherwise).",
                "RevocationMessage",
                json!({"type": "revocation", "notice": example_notice()}),
            ),
            "agreement_id",
            "The agreement revoked.",
            "agr-1",
        ),
        with_id(
            message(
                "post",
                "/federation/agreements/{agreement_id}/suspension",
                "postSuspension",
                "A party's signed suspension or resumption of the agreement (seed §6.3 step 4)",
                "The body's notice.agreement_id must be the one in the path (400 otherwise). A \
                 suspension stops witnessing on both sides; only the party that suspended can \
                 resume. Accepted while the agreement is suspended.",
                "SuspensionMessage",
                json!({"type": "suspension", "notice": example_suspension()}),
            ),
            "agreement_id",
            "The agreement suspended or resumed.",
            "agr-1",
        ),
        message(
            "post",
            "/federation/witness",
            "postAttestation",
            "A witness attestation about one of the node's scrolls",
            "The attested root must be the node's root at that size (409 not_our_root).",
            "AttestationMessage",
            json!({"type": "attestation", "attestation": example_attestation()}),
        ),
        message(
            "post",
            "/federation/discrepancies",
            "postDiscrepancy",
            "A discrepancy report about one of the node's scrolls, with its evidence",
            "The report is signed; evidence_hash names the evidence sent with it.",
            "DiscrepancyMessage",
            json!({
                "type": "discrepancy",
                "report": example_discrepancy(),
                "evidence": {"kind": "root_mismatch"},
            }),
        ),
        message(
            "post",
            "/federation/resolutions",
            "postResolution",
            "A party's signed resolution of a finding between it and the node (seed §6.3)",
            "Signed by resolved_by, the sender; the finding must be known to the node (409 \
             out_of_order until its report has arrived). A resolution by the reporting mesh \
             closes the finding on both sides; one by the reported mesh is kept beside it.",
            "ResolutionMessage",
            json!({"type": "resolution", "resolution": example_resolution()}),
        ),
        message(
            "post",
            "/federation/arbitrations",
            "postArbitration",
            "A party's signed request that the node arbitrate a finding (seed §6.3 step 3)",
            "Carries the finding's signed report and its evidence. The node must be federated \
             with the sender and witness the reported mesh's scroll (409 otherwise); it answers \
             both parties with a signed verdict (POST /federation/verdicts on their side).",
            "ArbitrationMessage",
            json!({"type": "arbitration", "request": {
                "arbitration_id": "arb-1",
                "requested_by": "did:vm:mesh:alpha",
                "arbiter": "did:vm:mesh:gamma",
                "report": example_discrepancy(),
                "evidence": {"kind": "conflicting_roots"},
                "timestamp": "2026-01-01T05:00:00Z",
                "signature": example_signature(),
            }}),
        ),
        message(
            "post",
            "/federation/verdicts",
            "postVerdict",
            "An arbiter's signed verdict on a finding between the sender's parties and the node",
            "Signed by the arbiter, the sender; the finding must be known to the node (409 \
             out_of_order until its report has arrived).",
            "VerdictMessage",
            json!({"type": "verdict", "verdict": example_verdict()}),
        ),
        Operation {
            method: "post",
            path: "/federation/notify",
            id: "postNotify",
            summary: "An anchor notification for the node to witness",
            description: "A root of the sender's scroll, signed and anchored. Checked \
                          (document, sender, signature, policy) before anything else; the \
                          witness check itself runs afterwards.",
            auth: Auth::Signed,
            parameters: Vec::new(),
            body: Some((schema_ref("AnchorNotification"), example_notification())),
            ok: schema_ref("Ack"),
            errors: &[400, 401, 403, 413, 429, 503],
        },
        Operation {
            method: "get",
            path: "/federation/roots",
            id: "getRoots",
            summary: "The node's latest anchored roots of scrolls shared with the sender",
            description: "All scrolls shared with the sender when none are named. The \
                          comma-separated form `?scrolls=A,B` is accepted too.",
            auth: Auth::Signed,
            parameters: vec![json!({
                "name": "scrolls", "in": "query", "required": false,
                "description": "Which scrolls (default: every scroll shared with the sender).",
                "style": "form", "explode": true,
                "schema": {"type": "array", "items": scroll},
                "example": ["Federation"],
            })],
            body: None,
            ok: schema_ref("Roots"),
            errors: &[400, 401, 403, 429, 503],
        },
        Operation {
            method: "post",
            path: "/federation/evidence",
            id: "postEvidence",
            summary: "A consistency proof and sampled receipts with inclusion proofs, for a witness",
            description: "Samples must be below new_size and old_size at most new_size (400); \
                          new_size beyond the scroll is 409 beyond_tree; samples that do not \
                          fit one response are 413 too_large.",
            auth: Auth::Signed,
            parameters: Vec::new(),
            body: Some((
                schema_ref("EvidenceRequest"),
                json!({"scroll": "Federation", "old_size": 1, "new_size": 2, "samples": [1]}),
            )),
            ok: schema_ref("EvidenceResponse"),
            errors: &[400, 401, 403, 404, 409, 413, 429, 500, 503],
        },
        Operation {
            method: "get",
            path: "/federation/receipts/{scroll}",
            id: "getReceipts",
            summary: "Receipts of a shared scroll, as stored",
            description: "From sequence `from`, at most `limit` (taken as 1 to 100).",
            auth: Auth::Signed,
            parameters: vec![
                path_param("scroll", scroll.clone(), "The scroll.", json!("Federation")),
                json!({
                    "name": "from", "in": "query", "required": false,
                    "description": "The first sequence (default 0).",
                    "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 0},
                    "example": 0,
                }),
                json!({
                    "name": "limit", "in": "query", "required": false,
                    "description": "How many (default 100; taken as 1 to 100).",
                    "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 100},
                    "example": 10,
                }),
            ],
            body: None,
            ok: data(schema_ref("ReceiptsPage")),
            errors: &[400, 401, 403, 404, 429, 500, 503],
        },
        Operation {
            method: "post",
            path: "/federation/verify",
            id: "postVerify",
            summary: "One receipt proven against the node's latest anchored root, with the anchor proof",
            description: "404 when the scroll has no anchored root yet or the sequence is \
                          beyond it, or (receipt_mismatch) receipt_hash is given and is not \
                          the receipt's leaf hash (DESIGN §4: blake3 of 0x00 followed by the \
                          JCS of the receipt without root_hash).",
            auth: Auth::Signed,
            parameters: Vec::new(),
            body: Some((
                schema_ref("VerifyRequest"),
                json!({"scroll": "Federation", "sequence": 0}),
            )),
            ok: data(schema_ref("ReceiptProof")),
            errors: &[400, 401, 403, 404, 413, 429, 500, 503],
        },
        Operation {
            method: "get",
            path: "/federation/proofs/consistency",
            id: "getConsistencyProof",
            summary: "A consistency proof between two sizes of a shared scroll, with both roots",
            description: "Sizes must satisfy 0 < old_size <= new_size <= the scroll's size (400).",
            auth: Auth::Signed,
            parameters: vec![
                query_param(
                    "scroll",
                    true,
                    scroll.clone(),
                    "The scroll.",
                    json!("Federation"),
                ),
                query_param("old_size", true, query_u64(), "The older size.", json!(1)),
                query_param("new_size", true, query_u64(), "The newer size.", json!(2)),
            ],
            body: None,
            ok: data(json!({
                "type": "object",
                "required": ["old_root", "new_root", "proof"],
                "properties": {
                    "old_root": schema_ref("Blake3Hash"),
                    "new_root": schema_ref("Blake3Hash"),
                    "proof": schema_ref("ConsistencyProof"),
                },
            })),
            errors: &[400, 401, 403, 404, 429, 500, 503],
        },
        Operation {
            method: "get",
            path: "/federation/proofs/inclusion",
            id: "getInclusionProof",
            summary: "An inclusion proof of one receipt in a tree size of a shared scroll, with its root",
            description: "Sizes must satisfy sequence < tree_size <= the scroll's size (400).",
            auth: Auth::Signed,
            parameters: vec![
                query_param("scroll", true, scroll, "The scroll.", json!("Federation")),
                query_param(
                    "sequence",
                    true,
                    query_u64(),
                    "The receipt's sequence.",
                    json!(0),
                ),
                query_param("tree_size", true, query_u64(), "The tree size.", json!(1)),
            ],
            body: None,
            ok: data(json!({
                "type": "object",
                "required": ["root", "proof"],
                "properties": {
                    "root": schema_ref("Blake3Hash"),
                    "proof": schema_ref("InclusionProof"),
                },
            })),
            errors: &[400, 401, 403, 404, 429, 500, 503],
        },
    ]
}

const EXAMPLE_SIGNATURE: &str =
    "z3yMApqCuCjXDWPrbjfR5mjCPTHqFG8Pux1TxQrEM35jj7Y3ZwPTmBGVFU8eMCsDF7j1NAsDCuxN8FdpkY8LpdEJu";
const EXAMPLE_HASH: &str =
    "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

fn example_signature() -> Value {
    json!({"algorithm": "Ed25519", "value": EXAMPLE_SIGNATURE})
}

fn example_terms() -> Value {
    json!({
        "scrolls_to_share": ["Federation"],
        "verification_frequency": "hourly",
        "retention_period_days": 365,
    })
}

fn example_proposal() -> Value {
    json!({
        "proposal_id": "prop-1",
        "proposer": "did:vm:mesh:alpha",
        "target": "did:vm:mesh:beta",
        "proposed_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-08T00:00:00Z",
        "proposed_trust_level": 2,
        "proposed_terms": example_terms(),
        "signature": example_signature(),
    })
}

fn example_response() -> Value {
    json!({
        "proposal_id": "prop-1",
        "response_type": "reject",
        "responder": "did:vm:mesh:beta",
        "responded_at": "2026-01-01T01:00:00Z",
        "reason": "not now",
        "signature": example_signature(),
    })
}

fn example_agreement() -> Value {
    json!({
        "agreement_id": "agr-1",
        "parties": ["did:vm:mesh:alpha", "did:vm:mesh:beta"],
        "established_at": "2026-01-01T02:00:00Z",
        "trust_level": 2,
        "terms": {
            "scrolls_shared": ["Federation"],
            "verification_frequency": "hourly",
            "retention_period_days": 365,
        },
        "key_exchange": {},
        "signatures": {},
        "agreement_hash": EXAMPLE_HASH,
    })
}

fn example_notice() -> Value {
    json!({
        "agreement_id": "agr-1",
        "revoked_by": "did:vm:mesh:alpha",
        "reason": "ended",
        "notice_days": 0,
        "effective_at": "2026-02-01T00:00:00Z",
        "signature": example_signature(),
    })
}

fn example_attestation() -> Value {
    json!({
        "witness_id": "wit-1",
        "witnessed_mesh": "did:vm:mesh:beta",
        "witnessing_mesh": "did:vm:mesh:alpha",
        "scroll": "Federation",
        "witnessed_root": EXAMPLE_HASH,
        "witnessed_size": 1,
        "witness_result": "verified",
        "timestamp": "2026-01-01T03:00:00Z",
        "witness_signature": EXAMPLE_SIGNATURE,
    })
}

fn example_discrepancy() -> Value {
    json!({
        "discrepancy_id": "disc-1",
        "reporting_mesh": "did:vm:mesh:alpha",
        "reported_mesh": "did:vm:mesh:beta",
        "timestamp": "2026-01-01T04:00:00Z",
        "discrepancy_type": "root_mismatch",
        "severity": "critical",
        "details": {"scroll": "Federation"},
        "evidence_hash": EXAMPLE_HASH,
        "resolution_requested": true,
        "signature": example_signature(),
    })
}

fn example_suspension() -> Value {
    json!({
        "agreement_id": "agr-1",
        "suspended_by": "did:vm:mesh:alpha",
        "action": "suspend",
        "sequence": 1,
        "reason": "root_mismatch under review",
        "discrepancy_id": "disc-1",
        "timestamp": "2026-01-01T05:00:00Z",
        "signature": example_signature(),
    })
}

fn example_verdict() -> Value {
    json!({
        "arbitration_id": "arb-1",
        "requested_by": "did:vm:mesh:alpha",
        "discrepancy_id": "disc-1",
        "reporting_mesh": "did:vm:mesh:alpha",
        "reported_mesh": "did:vm:mesh:beta",
        "scroll": "Compliance",
        "arbiter": "did:vm:mesh:gamma",
        "outcome": "upheld",
        "evidence_standing": "proof",
        "reason": "the conflicting_roots evidence is a proof on its own",
        "timestamp": "2026-01-01T06:00:00Z",
        "signature": example_signature(),
    })
}

fn example_resolution() -> Value {
    json!({
        "discrepancy_id": "disc-1",
        "reporting_mesh": "did:vm:mesh:alpha",
        "reported_mesh": "did:vm:mesh:beta",
        "resolved_by": "did:vm:mesh:alpha",
        "outcome": "resynced",
        "note": "re-fetched the root; the scrolls agree",
        "timestamp": "2026-01-01T05:00:00Z",
        "signature": example_signature(),
    })
}

fn example_notification() -> Value {
    json!({
        "mesh_id": "did:vm:mesh:alpha",
        "scroll": "Federation",
        "size": 1,
        "root": EXAMPLE_HASH,
        "timestamp": "2026-01-01T05:00:00Z",
        "signature": example_signature(),
        "anchor_proof": {
            "backend": "local",
            "batch_root": EXAMPLE_HASH,
            "leaf_index": 0,
            "batch_size": 1,
            "merkle_path": [],
        },
    })
}

/// An object with `required` fields typed by `properties`; unknown fields are allowed
/// (documents keep fields a newer version adds, and their signatures cover them).
fn doc_schema(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
    })
}

/// A trust message: `type` and the named documents, nothing else.
fn message_schema(kind: &str, required: &[&str], properties: Value) -> Value {
    let mut props = Map::new();
    props.insert("type".into(), json!({"type": "string", "enum": [kind]}));
    if let Value::Object(more) = properties {
        props.extend(more);
    }
    let mut required_all = vec!["type"];
    required_all.extend_from_slice(required);
    json!({
        "type": "object",
        "description": format!("A {kind} message (the PeerMessage JSON the libp2p transport carries too)."),
        "required": required_all,
        "additionalProperties": false,
        "properties": props,
    })
}

fn schemas() -> Value {
    let s = schema_ref;
    let timestamp = || s("Timestamp");
    let mesh = || s("MeshId");
    let hash = || s("Blake3Hash");
    let level = json!({"type": "integer", "minimum": 0, "maximum": 4,
        "description": "0 isolated, 1 observe, 2 verify, 3 attest, 4 integrate"});
    let mut all = Map::new();
    let part = json!({
        "Error": {
            "type": "object",
            "description": "A refusal. `error` is a stable code (its status is fixed: see each \
                            response), `permanent` says whether resending the same request can \
                            never succeed.",
            "required": ["response", "error", "message", "permanent"],
            "additionalProperties": false,
            "properties": {
                "response": {"type": "string", "enum": ["error"]},
                "error": {"type": "string"},
                "message": {"type": "string"},
                "permanent": {"type": "boolean"},
            },
        },
        "Ack": {
            "type": "object",
            "description": "The message was taken (or had been before).",
            "required": ["response"],
            "additionalProperties": false,
            "properties": {"response": {"type": "string", "enum": ["ack"]}},
        },
        "Roots": {
            "type": "object",
            "required": ["response", "roots"],
            "additionalProperties": false,
            "properties": {
                "response": {"type": "string", "enum": ["roots"]},
                "roots": {"type": "array", "items": s("AnchorNotification")},
            },
        },
        "EvidenceResponse": {
            "type": "object",
            "required": ["response", "evidence"],
            "additionalProperties": false,
            "properties": {
                "response": {"type": "string", "enum": ["evidence"]},
                "evidence": s("Evidence"),
            },
        },
    });
    if let Value::Object(m) = part {
        all.extend(m);
    }
    let part = json!({
        "ScrollName": {
            "type": "string",
            "description": "A letter, then up to 63 of [A-Za-z0-9_-]; compared without regard to case.",
            "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$",
        },
        "DocumentId": {
            "type": "string",
            "description": "A letter or digit, then up to 127 of [A-Za-z0-9._:-].",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        },
        "MeshId": {
            "type": "string",
            "description": "did:vm:mesh: and a name of a-z, 0-9, '.', '-' (at most 63, starting and ending with a letter or digit).",
            "pattern": "^did:vm:mesh:[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$",
        },
        "Blake3Hash": {
            "type": "string",
            "pattern": "^blake3:[0-9a-f]{64}$",
        },
        "Timestamp": {
            "type": "string",
            "description": "RFC 3339, UTC, whole seconds (YYYY-MM-DDTHH:MM:SSZ).",
            "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$",
        },
        "PublicKey": {
            "type": "string",
            "description": "ed25519: and the multibase base58btc of 0xed 0x01 and the 32 key bytes.",
            "pattern": "^ed25519:z[1-9A-HJ-NP-Za-km-z]+$",
        },
        "VerificationFrequency": {
            "type": "string",
            "description": "hourly, daily, weekly, or <n>s|m|h|d (n >= 1, at most 366 days).",
            "pattern": "^(hourly|daily|weekly|[1-9][0-9]{0,9}[smhd])$",
        },
        "Signature": {
            "type": "string",
            "description": "Ed25519, multibase base58btc.",
            "pattern": "^z[1-9A-HJ-NP-Za-km-z]+$",
        },
        "SignatureField": {
            "anyOf": [
                {
                    "type": "object",
                    "required": ["algorithm", "value"],
                    "properties": {
                        "algorithm": {"type": "string", "enum": ["Ed25519"]},
                        "value": s("Signature"),
                    },
                },
                s("Signature"),
            ],
        },
    });
    if let Value::Object(m) = part {
        all.extend(m);
    }
    let part = json!({
        "ProposedTerms": doc_schema(
            "What a proposal or counter offers.",
            &["scrolls_to_share", "verification_frequency", "retention_period_days"],
            json!({
                "scrolls_to_share": {"type": "array", "items": s("ScrollName")},
                "verification_frequency": s("VerificationFrequency"),
                "retention_period_days": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                "data_jurisdiction": {"type": "string"},
                "audit_rights": {"type": "boolean"},
            }),
        ),
        "AgreementTerms": doc_schema(
            "What an agreement settles.",
            &["scrolls_shared", "verification_frequency", "retention_period_days"],
            json!({
                "scrolls_shared": {"type": "array", "items": s("ScrollName")},
                "verification_frequency": s("VerificationFrequency"),
                "retention_period_days": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                "data_jurisdiction": {"type": "string"},
                "audit_rights": {"type": "boolean"},
                "dispute_resolution": {"type": "string"},
            }),
        ),
        "TrustProposal": doc_schema(
            "A signed trust proposal (seed §3.2).",
            &["proposal_id", "proposer", "target", "proposed_at", "expires_at",
              "proposed_trust_level", "proposed_terms", "signature"],
            json!({
                "proposal_id": s("DocumentId"), "proposer": mesh(), "target": mesh(),
                "proposed_at": timestamp(), "expires_at": timestamp(),
                "proposed_trust_level": level, "proposed_terms": s("ProposedTerms"),
                "proposer_attestations": {"type": "object"}, "signature": s("SignatureField"),
            }),
        ),
        "ProposalResponse": doc_schema(
            "A signed answer to a proposal or counter (seed §3.3).",
            &["proposal_id", "response_type", "responder", "responded_at", "signature"],
            json!({
                "proposal_id": s("DocumentId"),
                "response_type": {"type": "string", "enum": ["accept", "reject", "counter", "withdraw"]},
                "responder": mesh(), "responded_at": timestamp(), "responds_to": hash(),
                "reason": {"type": "string"}, "counter_terms": s("ProposedTerms"),
                "signature": s("SignatureField"),
            }),
        ),
        "FederationAgreement": doc_schema(
            "An agreement with the parties' signatures (seed §3.4).",
            &["agreement_id", "parties", "established_at", "trust_level", "terms",
              "key_exchange", "agreement_hash"],
            json!({
                "agreement_id": s("DocumentId"),
                "parties": {"type": "array", "items": mesh()},
                "established_at": timestamp(), "trust_level": level,
                "terms": s("AgreementTerms"),
                "key_exchange": {"type": "object", "additionalProperties": s("PublicKey")},
                "signatures": {"type": "object"},
                "agreement_hash": hash(),
            }),
        ),
        "RevocationNotice": doc_schema(
            "A signed notice ending an agreement.",
            &["agreement_id", "revoked_by", "reason", "notice_days", "effective_at", "signature"],
            json!({
                "agreement_id": s("DocumentId"), "revoked_by": mesh(),
                "reason": {"type": "string"},
                "notice_days": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                "effective_at": timestamp(), "signature": s("SignatureField"),
            }),
        ),
        "WitnessAttestation": doc_schema(
            "A witness's signed attestation about one of the recipient's scrolls (seed §4.1).",
            &["witness_id", "witnessed_mesh", "witnessing_mesh", "scroll", "witnessed_root",
              "witnessed_size", "witness_result", "timestamp", "witness_signature"],
            json!({
                "witness_id": s("DocumentId"), "witnessed_mesh": mesh(),
                "witnessing_mesh": mesh(), "scroll": s("ScrollName"),
                "witnessed_root": hash(), "witnessed_size": body_u64(),
                "witness_result": {"type": "string", "enum": ["verified", "discrepancy"]},
                "timestamp": timestamp(), "witness_signature": s("Signature"),
            }),
        ),
        "DiscrepancyReport": doc_schema(
            "A witness's signed discrepancy report (seed §6.2).",
            &["discrepancy_id", "reporting_mesh", "reported_mesh", "timestamp",
              "discrepancy_type", "severity", "details", "evidence_hash",
              "resolution_requested", "signature"],
            json!({
                "discrepancy_id": s("DocumentId"), "reporting_mesh": mesh(),
                "reported_mesh": mesh(), "timestamp": timestamp(),
                "discrepancy_type": {"type": "string", "enum": ["root_mismatch",
                    "anchor_invalid", "timestamp_drift", "schema_incompatible", "sample_missing"]},
                "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
                "details": {"type": "object", "required": ["scroll"],
                    "properties": {"scroll": s("ScrollName")}},
                "evidence_hash": hash(), "resolution_requested": {"type": "boolean"},
                "signature": s("SignatureField"),
            }),
        ),
        "SuspensionNotice": doc_schema(
            "A party's signed suspension or resumption (seed §6.3 step 4), KIND suspension.",
            &["agreement_id", "suspended_by", "action", "sequence", "reason", "timestamp",
              "signature"],
            json!({
                "agreement_id": s("DocumentId"), "suspended_by": mesh(),
                "action": {"type": "string", "enum": ["suspend", "resume"]},
                "sequence": body_u64(),
                "reason": {"type": "string", "maxLength": 1024},
                "discrepancy_id": s("DocumentId"),
                "timestamp": timestamp(), "signature": s("SignatureField"),
            }),
        ),
        "ArbitrationRequest": doc_schema(
            "A party's signed request for arbitration (seed §6.3 step 3), KIND arbitration.",
            &["arbitration_id", "requested_by", "arbiter", "report", "evidence", "timestamp",
              "signature"],
            json!({
                "arbitration_id": s("DocumentId"), "requested_by": mesh(), "arbiter": mesh(),
                "report": s("DiscrepancyReport"),
                "evidence": {"description": "The evidence JSON the report's evidence_hash names."},
                "timestamp": timestamp(), "signature": s("SignatureField"),
            }),
        ),
        "ArbitrationVerdict": doc_schema(
            "An arbiter's signed verdict (seed §6.3 step 3), KIND verdict.",
            &["arbitration_id", "requested_by", "discrepancy_id", "reporting_mesh",
              "reported_mesh", "scroll", "arbiter", "outcome", "evidence_standing", "reason",
              "timestamp", "signature"],
            json!({
                "arbitration_id": s("DocumentId"), "requested_by": mesh(),
                "discrepancy_id": s("DocumentId"), "reporting_mesh": mesh(),
                "reported_mesh": mesh(), "scroll": s("ScrollName"), "arbiter": mesh(),
                "outcome": {"type": "string", "enum": ["upheld", "not_upheld", "inconclusive"]},
                "evidence_standing": {"type": "string", "enum": ["proof", "claim", "invalid"]},
                "reason": {"type": "string", "maxLength": 2048},
                "arbiter_view": s("SignedRoot"),
                "timestamp": timestamp(), "signature": s("SignatureField"),
            }),
        ),
        "DiscrepancyResolution": doc_schema(
            "A party's signed resolution of a finding (seed §6.3), KIND resolution.",
            &["discrepancy_id", "reporting_mesh", "reported_mesh", "resolved_by", "outcome",
              "note", "timestamp", "signature"],
            json!({
                "discrepancy_id": s("DocumentId"), "reporting_mesh": mesh(),
                "reported_mesh": mesh(), "resolved_by": mesh(),
                "outcome": {"type": "string", "enum": ["resynced", "false_alarm", "confirmed"]},
                "note": {"type": "string", "maxLength": 1024},
                "timestamp": timestamp(), "signature": s("SignatureField"),
            }),
        ),
        "AnchorProof": doc_schema(
            "How a root was anchored (DESIGN §7).",
            &["backend", "batch_root", "leaf_index", "batch_size", "merkle_path"],
            json!({
                "backend": {"type": "string"}, "batch_root": hash(),
                "leaf_index": body_u64(), "batch_size": body_u64(),
                "merkle_path": {"type": "array", "items": hash()},
            }),
        ),
        "AnchorNotification": doc_schema(
            "A mesh's signed root of one scroll with its anchor proof.",
            &["mesh_id", "scroll", "size", "root", "timestamp", "signature", "anchor_proof"],
            json!({
                "mesh_id": mesh(), "scroll": s("ScrollName"), "size": body_u64(),
                "root": hash(), "timestamp": timestamp(), "signature": s("SignatureField"),
                "anchor_proof": s("AnchorProof"),
            }),
        ),
        "SignedRoot": doc_schema(
            "A mesh's signed root of one scroll.",
            &["mesh_id", "scroll", "size", "root", "timestamp", "signature"],
            json!({
                "mesh_id": mesh(), "scroll": s("ScrollName"), "size": body_u64(),
                "root": hash(), "timestamp": timestamp(), "signature": s("SignatureField"),
            }),
        ),
        "DiscoveryRecord": doc_schema(
            "A mesh's signed self-description (seed §3.1).",
            &["mesh_id", "display_name", "endpoints", "public_key", "scrolls_available",
              "trust_policy", "peer_id", "multiaddrs", "updated_at", "signature"],
            json!({
                "mesh_id": mesh(), "display_name": {"type": "string"},
                "endpoints": {"type": "object", "properties": {
                    "federation": {"type": "string"}, "verification": {"type": "string"}}},
                "public_key": s("PublicKey"),
                "scrolls_available": {"type": "array", "items": s("ScrollName")},
                "trust_policy": {"type": "object",
                    "required": ["accepts_proposals", "min_trust_level", "requires_mutual"],
                    "properties": {"accepts_proposals": {"type": "boolean"},
                        "min_trust_level": level, "requires_mutual": {"type": "boolean"}}},
                "attestations": {"type": "array", "items": {"type": "object"}},
                "peer_id": {"type": "string"},
                "multiaddrs": {"type": "array", "items": {"type": "string"}},
                "updated_at": timestamp(), "signature": s("SignatureField"),
            }),
        ),
    });
    if let Value::Object(m) = part {
        all.extend(m);
    }
    let part = json!({
        "ProposalMessage": message_schema("proposal", &["proposal"],
            json!({"proposal": s("TrustProposal")})),
        "ResponseMessage": message_schema("response", &["response"],
            json!({"response": s("ProposalResponse"), "agreement": s("FederationAgreement")})),
        "AgreementMessage": message_schema("agreement", &["agreement"],
            json!({"agreement": s("FederationAgreement")})),
        "RevocationMessage": message_schema("revocation", &["notice"],
            json!({"notice": s("RevocationNotice")})),
        "AttestationMessage": message_schema("attestation", &["attestation"],
            json!({"attestation": s("WitnessAttestation")})),
        "DiscrepancyMessage": message_schema("discrepancy", &["report", "evidence"],
            json!({"report": s("DiscrepancyReport"),
                   "evidence": {"description": "The evidence JSON the report's evidence_hash names."}})),
        "SuspensionMessage": message_schema("suspension", &["notice"],
            json!({"notice": s("SuspensionNotice")})),
        "ArbitrationMessage": message_schema("arbitration", &["request"],
            json!({"request": s("ArbitrationRequest")})),
        "VerdictMessage": message_schema("verdict", &["verdict"],
            json!({"verdict": s("ArbitrationVerdict")})),
        "ResolutionMessage": message_schema("resolution", &["resolution"],
            json!({"resolution": s("DiscrepancyResolution")})),
    });
    if let Value::Object(m) = part {
        all.extend(m);
    }
    let part = json!({
        "EvidenceRequest": {
            "type": "object",
            "description": "What a witness asks for one scroll: a consistency proof from old_size \
                            (if given) to new_size, and the sampled receipts with inclusion proofs \
                            in the tree of new_size.",
            "required": ["scroll", "new_size", "samples"],
            "additionalProperties": false,
            "properties": {
                "scroll": s("ScrollName"),
                "old_size": body_u64(),
                "new_size": body_u64(),
                "samples": {"type": "array", "items": body_u64(),
                    "maxItems": crate::witness::MAX_SAMPLES},
            },
        },
        "VerifyRequest": {
            "type": "object",
            "required": ["scroll", "sequence"],
            "additionalProperties": false,
            "properties": {
                "scroll": s("ScrollName"),
                "sequence": body_u64(),
                "receipt_hash": {
                    "allOf": [hash()],
                    "description": "Optional: the receipt's leaf hash, blake3(0x00 ‖ JCS of \
                                    the receipt without root_hash) (DESIGN §4); the node \
                                    refuses with receipt_mismatch if its receipt differs.",
                },
            },
        },
        "InclusionProof": {
            "type": "object",
            "required": ["leaf_index", "tree_size", "path"],
            "additionalProperties": false,
            "properties": {
                "leaf_index": body_u64(), "tree_size": body_u64(),
                "path": {"type": "array", "items": hash()},
            },
        },
        "ConsistencyProof": {
            "type": "object",
            "required": ["old_size", "new_size", "path"],
            "additionalProperties": false,
            "properties": {
                "old_size": body_u64(), "new_size": body_u64(),
                "path": {"type": "array", "items": hash()},
            },
        },
        "Evidence": {
            "type": "object",
            "required": ["scroll", "new_size", "samples"],
            "additionalProperties": false,
            "properties": {
                "scroll": s("ScrollName"),
                "new_size": body_u64(),
                "consistency": {
                    "type": "object", "required": ["old_root", "proof"],
                    "additionalProperties": false,
                    "properties": {"old_root": hash(), "proof": s("ConsistencyProof")},
                },
                "samples": {"type": "array", "items": {
                    "type": "object", "required": ["sequence", "line", "inclusion"],
                    "additionalProperties": false,
                    "properties": {"sequence": body_u64(), "line": {"type": "string"},
                        "inclusion": s("InclusionProof")},
                }},
            },
        },
    });
    if let Value::Object(m) = part {
        all.extend(m);
    }
    let part = json!({
        "ProposalThread": {
            "type": "object",
            "required": ["proposal", "responses", "status", "updated_at"],
            "properties": {
                "proposal": s("TrustProposal"),
                "responses": {"type": "array", "items": s("ProposalResponse")},
                "status": {"type": "object", "required": ["state"],
                    "properties": {"state": {"type": "string"}}},
                "updated_at": timestamp(),
            },
        },
        "AgreementState": {
            "type": "object",
            "required": ["agreement", "status", "revocation"],
            "properties": {
                "agreement": s("FederationAgreement"),
                "status": {"type": "object", "required": ["state"],
                    "properties": {"state": {"type": "string"}}},
                "revocation": {"type": "object", "nullable": true,
                    "description": "The signed RevocationNotice ending it, once either party revoked it."},
            },
        },
        "ReceiptsPage": {
            "type": "object",
            "required": ["scroll", "size", "from", "receipts"],
            "properties": {
                "scroll": s("ScrollName"), "size": body_u64(), "from": query_u64(),
                "receipts": {"type": "array", "items": {
                    "type": "object", "required": ["sequence", "receipt"],
                    "properties": {"sequence": body_u64(), "receipt": {}},
                }},
            },
        },
        "ReceiptProof": {
            "type": "object",
            "required": ["receipt", "inclusion", "signed_root"],
            "properties": {
                "receipt": {"description": "The receipt exactly as its scroll line holds it."},
                "inclusion": s("InclusionProof"),
                "signed_root": s("SignedRoot"),
                "anchor_proof": s("AnchorProof"),
            },
        },
    });
    if let Value::Object(m) = part {
        all.extend(m);
    }
    Value::Object(all)
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "The request, its parameters or its document are not valid",
        401 => {
            "Not authenticated: a missing, malformed, stale, replayed or wrongly signed request, an unknown origin, a TLS client key that is not the origin's, or a wrongly signed document"
        }
        403 => "Authenticated, but the sender's agreement (or its absence) does not permit this",
        404 => "Not found (or not shared with the sender)",
        409 => "Refused by the protocol's state",
        413 => "Too large",
        429 => "Rate limited (per address, then per mesh); retry after Retry-After seconds",
        500 => "Internal error",
        503 => "The node is stopping",
        _ => "Error",
    }
}

/// The error codes whose status is `status` (from `routes::status_of`), plus the one the
/// connection layer answers with on its own.
fn codes_of(status: u16) -> Vec<&'static str> {
    let mut codes: Vec<&str> = ERROR_CODES
        .iter()
        .copied()
        .filter(|c| status_of(c).as_u16() == status && *c != "method_not_allowed")
        .collect();
    if status == 503 {
        codes.push("shutting_down");
    }
    codes
}

fn error_response(status: u16) -> Value {
    let codes = codes_of(status);
    let mut description = status_text(status).to_owned();
    if !codes.is_empty() {
        description.push_str(" (error: ");
        description.push_str(&codes.join(", "));
        description.push(')');
    }
    if status == 413 {
        description.push_str(&format!("; bodies are at most {MAX_REQUEST_BYTES} bytes"));
    }
    let mut response = json!({
        "description": description,
        "content": {"application/json": {"schema": schema_ref("Error")}},
    });
    if status == 429 {
        response["headers"] = json!({
            "Retry-After": {
                "description": "Seconds until a request will be taken again.",
                "required": true,
                "schema": {"type": "integer", "minimum": 1},
            },
        });
    }
    response
}

fn operation_object(op: &Operation) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({
            "description": "OK",
            "content": {"application/json": {"schema": op.ok}},
        }),
    );
    for status in op.errors {
        responses.insert(status.to_string(), error_response(*status));
    }
    let mut object = json!({
        "operationId": op.id,
        "summary": op.summary,
        "description": op.description,
        "tags": [match op.auth { Auth::Public => "public", Auth::Signed => "federation" }],
        "responses": responses,
        "security": match op.auth {
            Auth::Public => json!([]),
            Auth::Signed => json!([{
                "meshId": [], "timestamp": [], "nonce": [], "signature": [],
            }]),
        },
    });
    if !op.parameters.is_empty() {
        object["parameters"] = Value::Array(op.parameters.clone());
    }
    if let Some((schema, example)) = &op.body {
        object["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema, "example": example}},
        });
    }
    object
}

fn info_description() -> String {
    format!(
        "The federation API of a VaultMesh node over HTTPS (seed §5, DESIGN §8); the libp2p \
         request-response protocol `/vaultmesh/federation/1.0.0` carries the same requests to \
         the same handler.\n\n\
         **Transport: mutual TLS.** Each side presents a self-signed certificate for its mesh's \
         Ed25519 key. The server's key is the one in its discovery record; the client's key \
         must be the key the node holds for the origin mesh (from an agreement, a discovery \
         record or `peers add`). `GET /federation/discovery` and `GET {PATH}` need no client \
         certificate and no signature.\n\n\
         **Signed requests.** Every other request carries four headers: `X-Mesh-ID` (the origin \
         mesh), `X-Timestamp` (RFC 3339 UTC, whole seconds, within ±{WINDOW_SECS} s of the \
         node's clock), `X-Nonce` (16 to 64 random bytes, base58; an (origin, nonce) seen within \
         the window is a replay) and `X-Signature`: Ed25519 by the origin's key, multibase \
         base58btc, over `vaultmesh-federation/v1/request\\n` followed by \
         `METHOD|PATH_AND_QUERY|TIMESTAMP|BODY_HASH|ORIGIN|DESTINATION|NONCE`, exactly as sent \
         on the wire, where BODY_HASH is `blake3:<hex>` of the body bytes (of the empty string \
         without a body) and DESTINATION the node's mesh id. A field holding `|` or a line \
         break is refused. A bad or missing signature is 401; a valid request outside the \
         sender's agreement is 403.\n\n\
         **Errors** are JSON `{{\"response\":\"error\",\"error\":CODE,\"message\":TEXT,\
         \"permanent\":BOOL}}` with the status of their code. Bodies are at most \
         {MAX_REQUEST_BYTES} bytes (413). Every request counts against its address's rate \
         limit, and an authenticated one against its mesh's (429 with `Retry-After`). Unknown \
         paths are 404; another method on a documented path is 405 with `Allow`."
    )
}

/// The OpenAPI 3 document of the federation API.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = operation_object(&op);
    }
    let header_scheme = |name: &str, description: &str| json!({"type": "apiKey", "in": "header", "name": name, "description": description});
    // OpenAPI 3.0: its schemas (JSON Schema draft 4) read `integer` as an integer literal,
    // which is what the server takes (`5.0` is refused where a u64 is wanted); 3.1's JSON
    // Schema 2020-12 would also call `5.0` an integer. mTLS (3.1's `mutualTLS` scheme) is
    // described in the text and with X-Mesh-ID instead.
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "VaultMesh federation API",
            "version": API_VERSION,
            "description": info_description(),
            "license": {"name": "Apache-2.0"},
        },
        "tags": [
            {"name": "public", "description": "No client certificate, no signature."},
            {"name": "federation", "description": "mTLS pinned to the origin's key and a signed request."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "meshId": header_scheme("X-Mesh-ID", "The origin mesh (did:vm:mesh:…); the TLS client certificate must be for its key."),
                "timestamp": header_scheme("X-Timestamp", "When the request was signed (RFC 3339 UTC, whole seconds)."),
                "nonce": header_scheme("X-Nonce", "16 to 64 fresh random bytes, base58."),
                "signature": header_scheme("X-Signature", "Ed25519 over the request (see the description above), multibase base58btc."),
            },
        },
    })
}

/// The document as committed in `docs/openapi.json`: pretty JSON and a final newline.
pub fn pretty() -> String {
    // Built once: the node serves it on every `GET /federation/openapi.json`.
    static PRETTY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PRETTY
        .get_or_init(|| {
            let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
            text.push('\n');
            text
        })
        .clone()
}
