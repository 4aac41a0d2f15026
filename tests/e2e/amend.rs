//! Issue 17, item 4: an agreement in force is amended. Dublin proposes new terms for it
//! (`agreements amend`: only what the flags name changes), Berlin accepts, and on both sides
//! the new agreement (which names the one it amends, under both signatures) replaces the
//! old one, which ends with a receipt saying what superseded it. Witnessing goes on.

use serde_json::Value;

use crate::ops::{anchor, append, poll_witness, wait_witnessed};
use crate::support::shown;

fn agreements(d: &crate::support::Daemon) -> Vec<Value> {
    d.json(&["agreements", "list"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn an_agreement_is_amended_on_both_sides_with_receipts_and_witnessing_goes_on() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dublin, berlin) = crate::ops::witnessing_pair(root.path(), |d| {
        d.append_config("\n[anchor]\ninterval_secs = 86400\n");
    });
    let old = agreements(&dublin)[0]["agreement_id"]
        .as_str()
        .expect("id")
        .to_owned();

    // A second plain proposal is still refused while the agreement is in force.
    let refused = dublin.cli(&[
        "propose",
        "--target",
        "vaultmesh-berlin",
        "--trust-level",
        "3",
        "--scrolls",
        "Compliance",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", shown(&refused));
    assert!(shown(&refused).contains(&old), "{}", shown(&refused));

    // Amend: level 3, verified every 2 h; the shared scrolls stay as they were.
    dublin.json(&[
        "agreements",
        "amend",
        &old,
        "--trust-level",
        "3",
        "--frequency",
        "2h",
    ]);
    let proposal = poll_witness("Berlin to receive the amendment", || {
        let list = berlin.json(&["proposals", "list"]);
        list.as_array()
            .and_then(|l| l.iter().find(|p| p["status"]["state"] == "open").cloned())
            .ok_or_else(|| list.to_string())
    });
    let id = proposal["proposal_id"].as_str().expect("id").to_owned();
    let shown_proposal = berlin.json(&["proposals", "show", &id]);
    assert_eq!(
        shown_proposal["proposal"]["amends"],
        old.as_str(),
        "{shown_proposal}"
    );
    assert_eq!(
        shown_proposal["proposal"]["proposed_terms"]["scrolls_to_share"],
        serde_json::json!(["Compliance"]),
        "{shown_proposal}"
    );
    berlin.json(&["proposals", "accept", &id]);

    // Both sides: the new agreement active (level 3, 2h, naming the old), the old revoked.
    for d in [&dublin, &berlin] {
        let new = poll_witness(&format!("{} to hold the amended agreement", d.name), || {
            let all = agreements(d);
            let old_ended = all
                .iter()
                .any(|a| a["agreement_id"] == old.as_str() && a["status"]["state"] == "revoked");
            let active = all
                .iter()
                .find(|a| a["agreement_id"] != old.as_str() && a["status"]["state"] == "active");
            match (old_ended, active) {
                (true, Some(a)) if a["trust_level"] == 3 => {
                    Ok(a["agreement_id"].as_str().unwrap_or_default().to_owned())
                }
                _ => Err(serde_json::json!(all).to_string()),
            }
        });
        let shown_new = d.json(&["agreements", "show", &new]);
        assert_eq!(
            shown_new["agreement"]["amends"],
            old.as_str(),
            "{shown_new}"
        );
        assert_eq!(
            shown_new["agreement"]["terms"]["verification_frequency"], "2h",
            "{shown_new}"
        );
        let receipts = d.federation_receipts();
        let revoked = receipts
            .iter()
            .find(|r| r["type"] == "fed_trust_revoked" && r["agreement_id"] == old.as_str())
            .unwrap_or_else(|| panic!("{}: no fed_trust_revoked for {old}", d.name));
        assert!(
            revoked
                .to_string()
                .contains(&format!("superseded by {new}")),
            "{revoked}"
        );
        assert!(
            receipts
                .iter()
                .any(|r| r["type"] == "fed_trust_established" && r["agreement_id"] == new.as_str()),
            "{}: no fed_trust_established for {new}",
            d.name
        );
    }

    // Witnessing goes on under the new agreement.
    append(&dublin, "Compliance", 2, "amended");
    anchor(&dublin);
    wait_witnessed(&berlin, &dublin, "Compliance", 5);

    // An agreement that is not in force cannot be amended.
    let out = dublin.cli(&["agreements", "amend", &old, "--frequency", "1h"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(shown(&out).contains("not in force"), "{}", shown(&out));
    for d in [&dublin, &berlin] {
        let out = d.cli(&["scroll", "verify", "--scroll", "Federation"]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    }
}
