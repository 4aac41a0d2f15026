//! Issue 17, item 6: `[metrics] listen` serves Prometheus' text exposition, `/healthz` and
//! `/readyz` from a running node, with figures that follow what the node did.

use crate::ops::{anchor, append, wait_witnessed};
use crate::support::http_get;

/// The value of the series `name` (with its labels, exactly as exposed), if present.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_healthz_and_readyz_follow_what_a_witnessing_node_does() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dublin, berlin) = crate::ops::witnessing_pair(root.path(), |d| {
        d.append_config(concat!(
            "\n[anchor]\ninterval_secs = 86400\n",
            "[metrics]\nlisten = \"127.0.0.1:0\"\n",
            "[http]\nlisten = \"127.0.0.1:0\"\n",
        ));
    });
    append(&dublin, "Compliance", 2, "metrics");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", 5);

    let addr = berlin.metrics_addr();
    let (status, head, text) = http_get(&addr, "/metrics");
    assert_eq!(status, 200, "{head}\n{text}");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    let at_least = |name: &str, n: f64| {
        let v = series(&text, name).unwrap_or_else(|| panic!("no series {name} in:\n{text}"));
        assert!(v >= n, "{name} = {v}, expected at least {n}\n{text}");
    };
    // Berlin witnessed Dublin's roots and signed attestations of them, over libp2p.
    at_least(r#"vaultmesh_witness_checks_total{verdict="verified"}"#, 2.0);
    at_least(
        r#"vaultmesh_attestations_given_total{result="verified"}"#,
        2.0,
    );
    at_least(r#"vaultmesh_witness_check_duration_seconds_count"#, 2.0);
    at_least(
        r#"vaultmesh_requests_total{transport="libp2p",kind="notify"}"#,
        1.0,
    );
    at_least(r#"vaultmesh_peers{state="federated"}"#, 1.0);
    at_least(r#"vaultmesh_scroll_receipts{scroll="Compliance"}"#, 3.0);
    at_least(r#"vaultmesh_storage_faults"#, 0.0);
    at_least(r#"vaultmesh_outbox_messages"#, 0.0);
    assert_eq!(series(&text, "vaultmesh_storage_faults"), Some(0.0));
    // Dublin anchored and received Berlin's attestations of its roots.
    let (_, _, dublin_text) = http_get(&dublin.metrics_addr(), "/metrics");
    let v = series(
        &dublin_text,
        r#"vaultmesh_anchor_cycles_total{result="ok"}"#,
    );
    assert!(v.is_some_and(|v| v >= 1.0), "{dublin_text}");
    crate::ops::poll_witness("Berlin's attestation counted on Dublin", || {
        let (_, _, t) = http_get(&dublin.metrics_addr(), "/metrics");
        series(
            &t,
            r#"vaultmesh_attestations_received_total{result="verified"}"#,
        )
        .filter(|v| *v >= 1.0)
        .ok_or(t)
    });

    let (status, _, body) = http_get(&addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http_get(&addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(ready["ready"], true, "{body}");
    let (status, _, _) = http_get(&addr, "/nothing-here");
    assert_eq!(status, 404);

    // Dublin reads over HTTPS what its agreement does not share, and a path that does not
    // exist: both refused, and each refusal counted by transport and reason, in the metrics
    // and in `status`.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (code, body) = runtime.block_on(crate::https::signed_request(
        &dublin,
        &berlin,
        "/federation/receipts/Unshared?from=0&limit=1",
        None,
    ));
    assert_eq!(code, 403, "{body}");
    let (code, body) = runtime.block_on(crate::https::signed_request(
        &dublin,
        &berlin,
        "/federation/nothing",
        None,
    ));
    assert_eq!(code, 404, "{body}");
    let refusals = berlin.json(&["status"])["refusals"]["https"].clone();
    let (_, _, text) = http_get(&addr, "/metrics");
    for reason in ["forbidden", "not_found"] {
        let n = refusals[reason].as_f64();
        assert!(n.is_some_and(|n| n >= 1.0), "{reason}: {refusals}");
        assert_eq!(
            series(
                &text,
                &format!(r#"vaultmesh_refusals_total{{transport="https",reason="{reason}"}}"#)
            ),
            n,
            "{text}"
        );
    }
}
