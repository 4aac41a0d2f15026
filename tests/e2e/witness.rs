//! The witness protocol with three real daemons on 127.0.0.1 (issue 5's scenario): Dublin,
//! Berlin and Singapore federate (Dublin–Berlin at level 3, Dublin–Singapore at level 2);
//! Singapore anchors through a real RFC 3161 TSA (`openssl ts`), the others locally.
//! Receipts appended to Dublin's Compliance scroll are witnessed by both within one anchor
//! cycle, Berlin cross-anchors Dublin, a hundred clean cycles raise no discrepancy anywhere,
//! and then Dublin's history is rewritten on disk twice (a receipt changed; a scroll
//! truncated and regrown): both witnesses record `root_mismatch` within one cycle, with
//! evidence that proves it from Dublin's signatures alone, and nobody accuses the honest.

use std::fs;
use std::path::Path;

use serde_json::{Map, Value, json};
use vaultmesh_federation::witness::{ConflictEvidence, Standing};
use vm_receipts::scroll::Scroll;
use vm_receipts::{PublicKey, ScrollName};
use vm_tsa::testing::OpensslTsa;

use crate::support::{Daemon, run, shown};

pub(crate) use crate::ops::{
    add_peer, anchor, append, discrepancies, federate, key_of, poll_witness, scroll_size,
    wait_witnessed, witnessed,
};

/// Waits for `on` to record a `root_mismatch` about `about`'s `scroll` beyond the
/// `already` it had, and checks its evidence with `about`'s key alone.
fn wait_mismatch(
    on: &Daemon,
    about: &Daemon,
    scroll: &str,
    already: usize,
    key: &PublicKey,
) -> Value {
    let found = poll_witness(
        &format!("{} to catch {}'s rewrite", on.name, about.name),
        || {
            let list: Vec<Value> = discrepancies(on)
                .into_iter()
                .filter(|d| {
                    d["report"]["reported_mesh"] == about.mesh_id().as_str()
                        && d["report"]["reporting_mesh"] == on.mesh_id().as_str()
                        && d["report"]["details"]["scroll"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case(scroll))
                })
                .collect();
            if list.len() > already {
                Ok(list[list.len() - 1].clone())
            } else {
                Err(format!("{list:?}"))
            }
        },
    );
    assert_eq!(
        found["report"]["discrepancy_type"], "root_mismatch",
        "{found}"
    );
    assert_eq!(found["report"]["severity"], "critical", "{found}");
    assert_eq!(found["evidence_check"]["standing"], "proof", "{found}");
    // The test checks the evidence itself, with nothing but Dublin's public key.
    let evidence: ConflictEvidence =
        serde_json::from_value(found["evidence"][0].clone()).expect("typed evidence");
    assert_eq!(evidence.verify(key), Ok(Standing::Proof), "{found}");
    found
}

/// Rewrites `scroll` of the stopped daemon `d` from `receipts` (without `root_hash`): a
/// history with consistent roots, and no checkpoint, as a forger with the mesh key would
/// leave it.
pub(crate) fn rewrite_scroll(d: &Daemon, scroll: &str, receipts: &[Map<String, Value>]) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let name: ScrollName = scroll.parse().expect("scroll name");
    {
        let (mut forged, _) = Scroll::open(scratch.path(), &name).expect("scratch scroll");
        forged.append_batch(receipts).expect("forge");
        // A dishonest operator signs the forged history's root too: a node refuses a scroll
        // its own ROOT file contradicts.
        let key_file: Value =
            serde_json::from_slice(&fs::read(d.dir.join("keys/mesh.key")).expect("key file"))
                .expect("key json");
        let key =
            vm_receipts::MeshKey::from_seed_text(key_file["secret_seed"].as_str().expect("seed"))
                .expect("key");
        let signed = forged
            .sign_root(
                &key,
                &d.mesh_id().parse::<vm_receipts::MeshId>().expect("mesh id"),
                vaultmesh_federation::clock::Clock::now(&vaultmesh_federation::clock::SystemClock),
            )
            .expect("sign");
        vm_receipts::scroll::write_root_file(&d.dir, &signed).expect("forge the ROOT file");
    }
    let stem = name.file_stem();
    let from = scratch
        .path()
        .join(format!("receipts/{stem}/{stem}_events.jsonl"));
    let dir = d.dir.join(format!("receipts/{stem}"));
    fs::copy(&from, dir.join(format!("{stem}_events.jsonl"))).expect("replace the scroll");
    let _ = fs::remove_file(dir.join(format!("{stem}_events.checkpoint")));
}

/// The receipts of a scroll file, without `root_hash`.
pub(crate) fn read_receipts(dir: &Path, scroll: &str) -> Vec<Map<String, Value>> {
    let stem = scroll.to_ascii_lowercase();
    fs::read_to_string(dir.join(format!("receipts/{stem}/{stem}_events.jsonl")))
        .expect("read scroll")
        .lines()
        .map(|l| {
            let mut m: Map<String, Value> = serde_json::from_str(l).expect("receipt");
            m.remove("root_hash");
            m
        })
        .collect()
}

fn scroll_verify(d: &Daemon, scroll: &str) {
    let out = run(&["scroll", "verify", "--data-dir", d.d(), "--scroll", scroll]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {scroll}: {}",
        d.name,
        shown(&out)
    );
}

#[test]
fn three_meshes_witness_cross_anchor_and_catch_rewritten_history() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tsa_dir = tmp.path().join("tsa");
    fs::create_dir(&tsa_dir).expect("tsa dir");
    let tsa = OpensslTsa::start(&tsa_dir).expect("start the openssl TSA");
    let ca = tsa.ca_pem_path();
    let trust = format!(
        "\n[witness]\ntsa_trust = [\"{}\"]\n",
        ca.to_str().expect("utf-8")
    );
    // Cycles run on demand (`anchor now`); the interval is long enough never to fire.
    let manual = "\n[anchor]\ninterval_secs = 86400\n";

    let mut dublin = Daemon::new(tmp.path(), "vaultmesh-dublin");
    let mut berlin = Daemon::new(tmp.path(), "vaultmesh-berlin");
    let mut singapore = Daemon::new(tmp.path(), "vaultmesh-singapore");
    for d in [&dublin, &berlin] {
        d.init();
        d.append_config(&format!("{manual}{trust}"));
    }
    singapore.init();
    singapore.append_config(&format!(
        "\n[anchor]\ninterval_secs = 86400\nbackend = \"rfc3161\"\ntsa_url = \"{}\"\n{trust}",
        tsa.url()
    ));
    for d in [&mut dublin, &mut berlin, &mut singapore] {
        d.start();
        // Every mesh keeps a Compliance scroll.
        append(d, "Compliance", 3, &format!("{}-seed", d.name));
    }
    let keys: Vec<String> = [&dublin, &berlin, &singapore]
        .iter()
        .map(|d| key_of(d))
        .collect();
    add_peer(&dublin, &berlin, &keys[1]);
    add_peer(&dublin, &singapore, &keys[2]);
    add_peer(&berlin, &dublin, &keys[0]);
    add_peer(&singapore, &dublin, &keys[0]);
    add_peer(&berlin, &singapore, &keys[2]);
    let dublin_key: PublicKey = keys[0].parse().expect("key");

    let berlin_dublin = federate(&dublin, &berlin, "3", "Compliance,Drills");
    federate(&dublin, &singapore, "2", "Compliance");

    // Receipts on Dublin's Compliance scroll are witnessed by both within one cycle.
    let size = append(&dublin, "Compliance", 10, "first");
    assert_eq!(size, 13);
    append(&dublin, "Drills", 10, "drill");
    anchor(&dublin);
    let by_berlin = wait_witnessed(&berlin, &dublin, "Compliance", 13);
    wait_witnessed(&singapore, &dublin, "Compliance", 13);
    wait_witnessed(&berlin, &dublin, "Drills", 10);
    // Dublin holds both attestations, and both Federation scrolls the witness events.
    poll_witness("Dublin to hold both attestations", || {
        let status = dublin.json(&["status"]);
        let attested = status["witness"]["attested_by_peers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let at13 = |m: &Daemon| {
            attested.iter().any(|a| {
                a["by"] == m.mesh_id().as_str() && a["size"] == 13 && a["result"] == "verified"
            })
        };
        if at13(&berlin) && at13(&singapore) {
            Ok(())
        } else {
            Err(format!("{attested:?}"))
        }
    });
    let history = dublin.json(&[
        "witness-history",
        "--mesh",
        &berlin.mesh_id(),
        "--last",
        "1h",
    ]);
    assert!(
        history["events"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["witnessed_size"] == 13 && e["verification_result"] == "verified")),
        "{history}"
    );
    // Singapore's root is anchored by the TSA; Dublin verifies it against the CA it trusts.
    anchor(&singapore);
    wait_witnessed(&dublin, &singapore, "Compliance", 3);
    let verify = singapore.cli(&[
        "verify",
        "--mesh",
        "vaultmesh-dublin",
        "--scroll",
        "Compliance",
        "--json",
    ]);
    assert_eq!(verify.status.code(), Some(0), "verify: {}", shown(&verify));
    // Singapore attested Dublin's root at 13 already: a root is attested once per size, so
    // the pull finds nothing new (issue 14: it used to attest the same root again).
    let verdict: Value = serde_json::from_slice(&verify.stdout).expect("json");
    assert_eq!(verdict["verdict"]["result"], "unchanged", "{verdict}");
    assert_eq!(verdict["size"], 13, "{verdict}");

    // Berlin cross-anchors Dublin's witnessed roots in its next cycle.
    let cycle = anchor(&berlin);
    assert_eq!(cycle["cross_anchored"], 2, "{cycle}");
    let cross: Vec<Value> = berlin
        .federation_receipts()
        .into_iter()
        .filter(|r| {
            r["type"] == "fed_cross_anchor" && r["anchored_mesh"] == dublin.mesh_id().as_str()
        })
        .collect();
    assert_eq!(cross.len(), 2, "{cross:?}");
    let compliance = cross
        .iter()
        .find(|r| {
            r["vaultmesh-dublin_roots_included"]
                .get("Compliance")
                .is_some()
        })
        .unwrap_or_else(|| panic!("{cross:?}"));
    assert_eq!(
        compliance["vaultmesh-dublin_roots_included"]["Compliance"], by_berlin["root"],
        "{compliance}"
    );
    assert_eq!(
        compliance["combined_root"], cycle["batch_root"],
        "{compliance}"
    );

    // A third party checks a receipt of Dublin's through Dublin's own anchor, and through
    // Berlin's: Dublin's key for the receipt and root, Berlin's key for Berlin's anchor.
    let proof = dublin.json(&[
        "scroll",
        "proof",
        "--scroll",
        "Compliance",
        "--sequence",
        "5",
    ]);
    assert_eq!(proof["signed_root"]["size"], 13, "{proof}");
    assert_eq!(proof["anchor_proof"]["backend"], "local", "{proof}");
    let proof_file = tmp.path().join("dublin-proof.json");
    fs::write(&proof_file, proof.to_string()).expect("write proof");
    let p = proof_file.to_str().expect("utf-8");
    let own = run(&[
        "scroll",
        "check-proof",
        "--proof",
        p,
        "--public-key",
        &keys[0],
        "--json",
    ]);
    assert_eq!(own.status.code(), Some(0), "{}", shown(&own));
    let own: Value = serde_json::from_slice(&own.stdout).expect("json");
    assert_eq!(own["anchor"]["backend"], "local", "{own}");
    let receipt_file = tmp.path().join("cross.json");
    fs::write(&receipt_file, compliance.to_string()).expect("write receipt");
    let peer_anchor = run(&[
        "anchor",
        "peer-proof",
        "--receipt",
        receipt_file.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        peer_anchor.status.code(),
        Some(0),
        "{}",
        shown(&peer_anchor)
    );
    let peer_file = tmp.path().join("peer-anchor.json");
    fs::write(&peer_file, &peer_anchor.stdout).expect("write peer anchor");
    let berlin_key = format!("{}={}", berlin.mesh_id(), keys[1]);
    let through_berlin = run(&[
        "scroll",
        "check-proof",
        "--proof",
        p,
        "--public-key",
        &keys[0],
        "--peer-anchor",
        peer_file.to_str().expect("utf-8"),
        "--anchor-key",
        &berlin_key,
        "--json",
    ]);
    assert_eq!(
        through_berlin.status.code(),
        Some(0),
        "{}",
        shown(&through_berlin)
    );
    let checked: Value = serde_json::from_slice(&through_berlin.stdout).expect("json");
    assert_eq!(checked["anchor"]["backend"], "peer/local", "{checked}");
    // Without Berlin's key the peer anchor proves nothing.
    let unknown = run(&[
        "scroll",
        "check-proof",
        "--proof",
        p,
        "--public-key",
        &keys[0],
        "--peer-anchor",
        peer_file.to_str().expect("utf-8"),
    ]);
    assert_eq!(unknown.status.code(), Some(1), "{}", shown(&unknown));
    // Singapore's receipts are anchored by the TSA: checked against its CA certificate.
    let sg = singapore.json(&[
        "scroll",
        "proof",
        "--scroll",
        "Compliance",
        "--sequence",
        "0",
    ]);
    assert_eq!(sg["anchor_proof"]["backend"], "rfc3161", "{sg}");
    let sg_file = tmp.path().join("sg-proof.json");
    fs::write(&sg_file, sg.to_string()).expect("write proof");
    let sg_check = run(&[
        "scroll",
        "check-proof",
        "--proof",
        sg_file.to_str().expect("utf-8"),
        "--public-key",
        &keys[2],
        "--tsa-trust",
        ca.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(sg_check.status.code(), Some(0), "{}", shown(&sg_check));
    let no_trust = run(&[
        "scroll",
        "check-proof",
        "--proof",
        sg_file.to_str().expect("utf-8"),
        "--public-key",
        &keys[2],
    ]);
    assert_eq!(no_trust.status.code(), Some(1), "{}", shown(&no_trust));

    // A hundred clean cycles on all three: appends, anchors, witnessing both ways.
    for round in 0..100 {
        let d = [&dublin, &berlin, &singapore][round % 3];
        append(d, "Compliance", 1, &format!("clean-{round}"));
        anchor(d);
    }
    for (on, peer) in [
        (&berlin, &dublin),
        (&singapore, &dublin),
        (&dublin, &berlin),
        (&dublin, &singapore),
    ] {
        let size = scroll_size(peer, "Compliance");
        anchor(peer);
        wait_witnessed(on, peer, "Compliance", size);
    }
    for d in [&dublin, &berlin, &singapore] {
        assert_eq!(
            discrepancies(d),
            Vec::<Value>::new(),
            "{} after 100 clean cycles",
            d.name
        );
        scroll_verify(d, "Federation");
        scroll_verify(d, "Compliance");
    }

    // Tampering 1: one old receipt of Dublin's Compliance scroll is changed, the roots
    // recomputed to match, and the scroll regrown by two.
    let witnessed_size = scroll_size(&dublin, "Compliance");
    dublin.terminate();
    let mut receipts = read_receipts(&dublin.dir, "Compliance");
    receipts[5].insert("passed".into(), json!(false));
    rewrite_scroll(&dublin, "Compliance", &receipts);
    dublin.start();
    append(&dublin, "Compliance", 2, "after-rewrite");
    anchor(&dublin);
    let first_b = wait_mismatch(&berlin, &dublin, "Compliance", 0, &dublin_key);
    let first_s = wait_mismatch(&singapore, &dublin, "Compliance", 0, &dublin_key);
    // Dublin's first cycle after the restart announces the rewritten root at the size that
    // was witnessed (two roots for one size); had the regrown root gone out first, the
    // consistency proof would have shown another root at the old size. Either is a proof.
    for found in [&first_b, &first_s] {
        let kind = &found["evidence"][0]["kind"];
        assert!(
            kind == "conflicting_roots" || kind == "inconsistent_extension",
            "{found}"
        );
        assert_eq!(
            found["evidence"][0]["earlier"]["size"], witnessed_size,
            "{found}"
        );
    }
    // The witness state keeps the last good root; Dublin learns of both reports.
    let kept = witnessed(&berlin, &dublin, "Compliance").expect("state kept");
    assert_eq!(kept["size"], witnessed_size, "{kept}");
    assert_eq!(kept["result"], "discrepancy", "{kept}");
    poll_witness("Dublin to receive both reports", || {
        let list = discrepancies(&dublin);
        let reported: Vec<&Value> = list
            .iter()
            .filter(|d| d["report"]["reported_mesh"] == dublin.mesh_id().as_str())
            .collect();
        if reported.len() >= 2 {
            Ok(())
        } else {
            Err(format!("{list:?}"))
        }
    });
    // Both sides' `status` sound the alarm, naming the finding.
    for (d, needle) in [(&berlin, "open finding"), (&dublin, "against us")] {
        let verdict = d.json(&["status"])["verdict"].clone();
        assert_eq!(verdict["state"], "alarm", "{}: {verdict}", d.name);
        assert!(verdict["reasons"].to_string().contains(needle), "{verdict}");
    }
    let verify = singapore.cli(&[
        "verify",
        "--mesh",
        "vaultmesh-dublin",
        "--scroll",
        "Compliance",
    ]);
    assert_eq!(
        verify.status.code(),
        Some(3),
        "verify after the rewrite: {}",
        shown(&verify)
    );

    // Escalation (seed §6.3 step 4): Berlin suspends the agreement citing its finding; while
    // suspended it witnesses nothing of Dublin; then it resumes.
    let finding = first_b["report"]["discrepancy_id"]
        .as_str()
        .expect("id")
        .to_owned();
    berlin.json(&[
        "agreements",
        "suspend",
        &berlin_dublin,
        "--reason",
        "history rewritten",
        "--discrepancy",
        &finding,
    ]);
    let suspended = berlin
        .federation_receipts()
        .into_iter()
        .find(|r| r["type"] == "fed_trust_suspended")
        .expect("a suspension receipt");
    assert_eq!(suspended["discrepancy_id"], finding.as_str(), "{suspended}");
    // Dublin is told, by Berlin's signed notice: suspended there too, by Berlin.
    poll_witness("Dublin records Berlin's suspension", || {
        let list = dublin.json(&["agreements", "list"]);
        list.as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["agreement_id"] == berlin_dublin.as_str()
                    && a["status"]["state"] == "suspended"
                    && a["status"]["by"] == berlin.mesh_id().as_str()
            })
            .cloned()
            .ok_or_else(|| list.to_string())
    });
    let reasons = dublin.json(&["status"])["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains(&format!("is suspended by {}", berlin.mesh_id())),
        "status says who suspended: {reasons}"
    );
    let refused = berlin.cli(&[
        "verify",
        "--mesh",
        "vaultmesh-dublin",
        "--scroll",
        "Compliance",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", shown(&refused));
    assert!(shown(&refused).contains("suspended"), "{}", shown(&refused));
    berlin.json(&[
        "agreements",
        "resume",
        &berlin_dublin,
        "--reason",
        "reviewed",
    ]);
    let list = berlin.json(&["agreements", "list"]);
    assert!(
        list.as_array().is_some_and(|l| l.iter().any(|a| {
            a["agreement_id"] == berlin_dublin.as_str() && a["status"]["state"] == "active"
        })),
        "{list}"
    );

    // Seed §6.3 step 2: the finding shown (a proof, with how to check it offline), then
    // confirmed by Berlin, which closes it on both sides with a signed resolution.
    let shown_finding = berlin.json(&["discrepancies", "show", &finding]);
    assert_eq!(
        shown_finding["evidence_check"]["standing"], "proof",
        "{shown_finding}"
    );
    assert!(
        shown_finding["check_offline"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{shown_finding}"
    );
    let unknown = berlin.cli(&["discrepancies", "show", "discrepancy-2099-01-01-1"]);
    assert!(!unknown.status.success(), "{}", shown(&unknown));
    assert!(
        shown(&unknown).contains("no discrepancy discrepancy-2099-01-01-1"),
        "{}",
        shown(&unknown)
    );
    // Step 3: Singapore, which witnesses Dublin too, arbitrates Berlin's finding and sends
    // both parties its signed verdict.
    add_peer(&singapore, &berlin, &keys[1]);
    federate(&berlin, &singapore, "1", "Compliance");
    berlin.json(&[
        "discrepancies",
        "arbitrate",
        &finding,
        "--arbiter",
        "vaultmesh-singapore",
    ]);
    for d in [&berlin, &dublin] {
        let v = poll_witness("the arbiter's verdict", || {
            let v = d.json(&["discrepancies", "show", &finding]);
            if v["arbitrations"][0].is_object() {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        });
        let verdict = &v["arbitrations"][0];
        assert_eq!(
            verdict["arbiter"],
            singapore.mesh_id().as_str(),
            "{verdict}"
        );
        assert_eq!(verdict["outcome"], "upheld", "{verdict}");
        assert_eq!(verdict["evidence_standing"], "proof", "{verdict}");
    }
    assert!(
        singapore
            .federation_receipts()
            .iter()
            .any(|r| r["type"] == "fed_arbitration_verdict"),
        "the arbiter records its verdict"
    );
    berlin.json(&[
        "discrepancies",
        "resolve",
        &finding,
        "--outcome",
        "confirmed",
        "--note",
        "two roots signed at the same size",
    ]);
    let resolved = poll_witness("Dublin records Berlin's resolution", || {
        dublin
            .federation_receipts()
            .into_iter()
            .find(|r| r["type"] == "fed_discrepancy_resolved")
            .ok_or_else(|| "not yet".to_owned())
    });
    assert_eq!(
        resolved["resolved_by"],
        berlin.mesh_id().as_str(),
        "{resolved}"
    );
    assert_eq!(resolved["outcome"], "confirmed", "{resolved}");
    for d in [&berlin, &dublin] {
        let v = d.json(&["discrepancies", "show", &finding]);
        assert!(v["resolved_at"].is_string(), "{}: {v}", d.name);
        assert_eq!(
            v["resolutions"][0]["outcome"], "confirmed",
            "{}: {v}",
            d.name
        );
    }

    // Tampering 2: Dublin's Drills scroll is truncated to 4 receipts and regrown to 12.
    dublin.terminate();
    let mut drills = read_receipts(&dublin.dir, "Drills");
    drills.truncate(4);
    for i in 0..8 {
        let mut r = Map::new();
        r.insert("type".into(), json!("drill"));
        r.insert("check".into(), json!(format!("regrown-{i}")));
        drills.push(r);
    }
    rewrite_scroll(&dublin, "Drills", &drills);
    dublin.start();
    anchor(&dublin);
    // The regrown scroll is longer than the one witnessed: Dublin's own consistency proof
    // shows another root at the witnessed size.
    let drills_b = wait_mismatch(&berlin, &dublin, "Drills", 0, &dublin_key);
    assert_eq!(
        drills_b["evidence"][0]["kind"], "inconsistent_extension",
        "{drills_b}"
    );
    assert_eq!(drills_b["evidence"][0]["earlier"]["size"], 10, "{drills_b}");

    // The honest meshes are accused by no one: Dublin's witness checks of Berlin and
    // Singapore still verify, and the only discrepancies anywhere are about Dublin.
    for (on, peer) in [(&dublin, &berlin), (&dublin, &singapore)] {
        let size = append(peer, "Compliance", 1, "after");
        anchor(peer);
        wait_witnessed(on, peer, "Compliance", size);
    }
    for d in [&dublin, &berlin, &singapore] {
        for found in discrepancies(d) {
            assert_eq!(
                found["report"]["reported_mesh"],
                dublin.mesh_id().as_str(),
                "{} accuses an honest mesh: {found}",
                d.name
            );
        }
        // Every receipt on every side passes the foundation's scroll verification.
        scroll_verify(d, "Federation");
    }
    for d in [&mut dublin, &mut berlin, &mut singapore] {
        let status = d.terminate();
        assert_eq!(status.code(), Some(0), "{} after SIGTERM: {status}", d.name);
    }
}
