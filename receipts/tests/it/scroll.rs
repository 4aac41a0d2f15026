//! Scroll files: append, reopen, torn tails, damage, full verification, ROOT files, proofs.

use std::fs::{self, OpenOptions};
use std::io::Write;

use serde_json::{Map, Value, json};
use vm_receipts::documents::SignedDocument;
use vm_receipts::proof::ReceiptProof;
use vm_receipts::scroll::{
    RootFileCheck, Scroll, ScrollError, read_root_file, root_file_path, scroll_path, verify_scroll,
    write_root_file,
};
use vm_receipts::{Blake3Hash, ScrollName};

use crate::support::{at, key, mesh};

pub fn receipt(n: u64) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "type": "compliance_check",
        "check_id": format!("check-{n}"),
        "timestamp": "2025-12-06T12:00:00Z",
        "result": {"passed": !n.is_multiple_of(3), "score": n, "notes": "ünïcødé \"quoted\" \n"},
        "tags": ["compliance"],
    }) else {
        unreachable!()
    };
    map
}

fn compliance() -> ScrollName {
    "Compliance".parse().expect("scroll name")
}

#[test]
fn append_reopen_and_every_root_hash_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut scroll, report) = Scroll::open(dir.path(), &compliance()).expect("open");
    assert_eq!(report.receipts, 0);
    assert_eq!(
        scroll.root(),
        Blake3Hash::digest(b""),
        "empty tree is blake3(\"\")"
    );
    let mut roots = Vec::new();
    for n in 0..10 {
        let a = scroll.append(&receipt(n)).expect("append");
        assert_eq!(a.sequence, n);
        roots.push(a.root_hash);
    }
    let batch: Vec<_> = (10..50).map(receipt).collect();
    let appended = scroll.append_batch(&batch).expect("batch");
    assert_eq!(appended.first().map(|a| a.sequence), Some(10));
    roots.extend(appended.iter().map(|a| a.root_hash));
    let root = scroll.root();
    assert_eq!(Some(&root), roots.last());
    drop(scroll);

    let (scroll, report) = Scroll::open(dir.path(), &compliance()).expect("reopen");
    assert_eq!(report.receipts, 50);
    assert_eq!(report.torn_bytes_cut, 0);
    assert_eq!(scroll.root(), root);
    for (n, want) in roots.iter().enumerate() {
        assert_eq!(&scroll.root_at(n as u64 + 1).expect("root"), want);
        let line: Value =
            serde_json::from_slice(&scroll.read_line(n as u64).expect("line")).expect("json");
        assert_eq!(
            line["root_hash"],
            json!(want.to_string()),
            "root_hash of sequence {n}"
        );
        assert_eq!(line["check_id"], json!(format!("check-{n}")));
    }
    let text = fs::read_to_string(scroll_path(dir.path(), &compliance())).expect("read");
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 50);
    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.receipts_verified, 50);
    assert_eq!(report.root, root);
}

#[test]
fn files_are_where_the_seed_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let federation = ScrollName::federation();
    let (mut scroll, _) = Scroll::open(dir.path(), &federation).expect("open");
    scroll.append(&receipt(0)).expect("append");
    assert!(
        dir.path()
            .join("receipts/federation/federation_events.jsonl")
            .is_file()
    );
    let signed = scroll
        .sign_root(&key(1), &mesh("dublin"), at("2025-12-06T12:00:00Z"))
        .expect("sign");
    write_root_file(dir.path(), &signed).expect("write root");
    assert_eq!(
        root_file_path(dir.path(), &federation),
        dir.path().join("ROOT.federation.txt")
    );
    let back = read_root_file(dir.path(), &federation)
        .expect("read")
        .expect("present");
    assert_eq!(back, signed);
    back.verify(&key(1).public_key()).expect("signature");
    let text = fs::read_to_string(dir.path().join("ROOT.federation.txt")).expect("read");
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.starts_with("{\"mesh_id\":\"did:vm:mesh:dublin\",\"root\":"),
        "{text}"
    );
}

#[test]
fn append_refuses_bad_receipts_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut scroll, _) = Scroll::open(dir.path(), &compliance()).expect("open");
    scroll.append(&receipt(0)).expect("append");
    let before = fs::read(scroll.path()).expect("read");
    let root = scroll.root();

    let mut with_root = receipt(1);
    with_root.insert("root_hash".into(), json!(root.to_string()));
    let mut no_type = receipt(2);
    no_type.remove("type");
    let mut bad_type = receipt(3);
    bad_type.insert("type".into(), json!(7));
    let mut huge_int = receipt(4);
    huge_int.insert("n".into(), json!(u64::MAX));
    let mut too_long = receipt(5);
    too_long.insert("blob".into(), json!("x".repeat(1 << 20)));
    for (bad, needle) in [
        (with_root, "root_hash"),
        (no_type, "type"),
        (bad_type, "type"),
        (huge_int, "2^53"),
        (too_long, "bytes"),
    ] {
        // The bad receipt is second in its batch: the good first one must not land either.
        let err = scroll
            .append_batch(&[receipt(9), bad])
            .expect_err("refused");
        let msg = err.to_string();
        assert!(
            matches!(err, ScrollError::InvalidReceipt { index: 1, .. }),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg}");
        assert_eq!(scroll.len(), 1);
        assert_eq!(scroll.root(), root);
        assert_eq!(
            fs::read(scroll.path()).expect("read"),
            before,
            "file unchanged"
        );
    }
    // And the scroll still appends afterwards.
    assert_eq!(scroll.append(&receipt(1)).expect("append").sequence, 1);
}

#[test]
fn torn_last_line_is_cut_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut scroll, _) = Scroll::open(dir.path(), &compliance()).expect("open");
    for n in 0..5 {
        scroll.append(&receipt(n)).expect("append");
    }
    let root = scroll.root();
    let path = scroll.path().to_owned();
    drop(scroll);
    let good_len = fs::metadata(&path).expect("meta").len();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"{\"type\":\"compliance_check\",\"check_id\":\"che"))
        .expect("torn write");

    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    let divergence = report.divergence.expect("verify reports the torn tail");
    assert_eq!(divergence.sequence, 5);
    assert!(
        divergence.problem.contains("torn"),
        "{}",
        divergence.problem
    );

    let (mut scroll, report) = Scroll::open(dir.path(), &compliance()).expect("open cuts the tail");
    assert_eq!(report.receipts, 5);
    assert_eq!(report.torn_bytes_cut, 42);
    assert_eq!(scroll.root(), root);
    assert_eq!(fs::metadata(&path).expect("meta").len(), good_len);
    scroll.append(&receipt(5)).expect("appends after the cut");
    drop(scroll);
    assert!(
        verify_scroll(dir.path(), &compliance(), None)
            .expect("verify")
            .is_ok()
    );
}

/// Rewrites line `sequence` of the scroll with `edit` applied.
fn edit_line(dir: &std::path::Path, sequence: usize, edit: impl Fn(&str) -> String) {
    let path = scroll_path(dir, &compliance());
    let text = fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[sequence] = edit(&lines[sequence]);
    fs::write(&path, lines.join("\n") + "\n").expect("write");
}

fn filled(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut scroll, _) = Scroll::open(dir.path(), &compliance()).expect("open");
    let batch: Vec<_> = (0..n).map(receipt).collect();
    scroll.append_batch(&batch).expect("append");
    dir
}

fn damaged_at(dir: &std::path::Path) -> (u64, String) {
    match Scroll::open(dir, &compliance()) {
        Ok(_) => panic!("a damaged scroll opened"),
        Err(ScrollError::Damaged {
            sequence, reason, ..
        }) => (sequence, reason),
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn damage_in_the_middle_is_refused_naming_the_sequence() {
    // A changed value: the leaf hash, and so every later root, changes.
    let dir = filled(20);
    edit_line(dir.path(), 7, |l| l.replace("check-7", "check-X"));
    let (sequence, reason) = damaged_at(dir.path());
    assert_eq!(sequence, 7);
    assert!(
        reason.contains("does not match the recomputed root"),
        "{reason}"
    );
    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    assert_eq!(report.divergence.as_ref().map(|d| d.sequence), Some(7));
    assert_eq!(report.receipts_verified, 7);
    let err = Scroll::open(dir.path(), &compliance())
        .expect_err("refused")
        .to_string();
    assert!(err.contains("receipt-sequence-7"), "{err}");

    // A complete line that is not JSON.
    let dir = filled(20);
    edit_line(dir.path(), 3, |l| l[..l.len() - 1].to_owned());
    let (sequence, reason) = damaged_at(dir.path());
    assert_eq!(
        (sequence, reason.contains("not JSON")),
        (3, true),
        "{reason}"
    );

    // A root_hash rewritten to another valid hash, content untouched.
    let dir = filled(20);
    edit_line(dir.path(), 11, |l| {
        let v: Value = serde_json::from_str(l).expect("json");
        let old = v["root_hash"].as_str().expect("root").to_owned();
        l.replace(&old, &Blake3Hash::digest(b"forged").to_string())
    });
    assert_eq!(damaged_at(dir.path()).0, 11);

    // A line removed from the middle.
    let dir = filled(20);
    let path = scroll_path(dir.path(), &compliance());
    let text = fs::read_to_string(&path).expect("read");
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| l)
        .collect();
    fs::write(&path, kept.join("\n") + "\n").expect("write");
    assert_eq!(damaged_at(dir.path()).0, 4);

    // An empty line.
    let dir = filled(5);
    edit_line(dir.path(), 2, |_| String::new());
    assert_eq!(damaged_at(dir.path()).0, 2);
}

#[test]
fn verify_catches_what_the_fast_open_cannot() {
    // A line re-serialised in a non-canonical form but carrying the right root: the open's
    // byte-level hash differs, so open refuses too; verify names the canonical-form problem.
    let dir = filled(6);
    edit_line(dir.path(), 2, |l| l.replacen("{", "{ ", 1));
    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    let d = report.divergence.expect("divergence");
    assert_eq!(d.sequence, 2);
    assert!(d.problem.contains("canonical"), "{}", d.problem);
    assert_eq!(damaged_at(dir.path()).0, 2);

    // A duplicated key is refused by verify's strict parser.
    let dir = filled(6);
    edit_line(dir.path(), 4, |l| {
        l.replacen("{", "{\"check_id\":\"dup\",", 1)
    });
    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    let d = report.divergence.expect("divergence");
    assert_eq!(d.sequence, 4);
    assert!(d.problem.contains("duplicate key"), "{}", d.problem);
}

#[test]
fn root_file_is_checked_against_the_scroll() {
    let dir = filled(10);
    let (scroll, _) = Scroll::open(dir.path(), &compliance()).expect("open");
    let (k, id) = (key(1), mesh("dublin"));
    let signed = scroll
        .sign_root(&k, &id, at("2025-12-06T12:00:00Z"))
        .expect("sign");
    write_root_file(dir.path(), &signed).expect("write");
    let owner = Some((&id, &k.public_key()));
    let report = verify_scroll(dir.path(), &compliance(), owner).expect("verify");
    assert_eq!(
        report.root_file,
        RootFileCheck::Consistent {
            size: 10,
            signature_checked: true
        }
    );

    // Signed by another key.
    let other = key(2).public_key();
    let report = verify_scroll(dir.path(), &compliance(), Some((&id, &other))).expect("verify");
    assert!(
        matches!(report.root_file, RootFileCheck::Invalid(ref m) if m.contains("does not verify")),
        "{:?}",
        report.root_file
    );
    assert!(!report.is_ok());

    // A signed root the scroll does not have at that size (history rewritten after signing).
    edit_line(dir.path(), 9, |l| l.to_owned());
    let forged = vm_receipts::documents::SignedRoot::new(
        &k,
        id.clone(),
        compliance(),
        10,
        Blake3Hash::digest(b"x"),
        at("2025-12-06T12:00:00Z"),
    )
    .expect("sign");
    write_root_file(dir.path(), &forged).expect("write");
    let report = verify_scroll(dir.path(), &compliance(), owner).expect("verify");
    assert!(
        matches!(report.root_file, RootFileCheck::Invalid(ref m) if m.contains("root at that size")),
        "{:?}",
        report.root_file
    );

    // A signed root beyond the scroll's end.
    let ahead = vm_receipts::documents::SignedRoot::new(
        &k,
        id.clone(),
        compliance(),
        11,
        scroll.root(),
        at("2025-12-06T12:00:00Z"),
    )
    .expect("sign");
    write_root_file(dir.path(), &ahead).expect("write");
    let report = verify_scroll(dir.path(), &compliance(), owner).expect("verify");
    assert!(
        matches!(report.root_file, RootFileCheck::Invalid(ref m) if m.contains("only 10")),
        "{:?}",
        report.root_file
    );

    // A ROOT file that is not a signed root.
    fs::write(root_file_path(dir.path(), &compliance()), "{}\n").expect("write");
    assert!(read_root_file(dir.path(), &compliance()).is_err());
}

#[test]
fn receipt_proofs_verify_for_a_third_party() {
    let dir = filled(37);
    let (scroll, _) = Scroll::open(dir.path(), &compliance()).expect("open");
    let k = key(1);
    let signed = scroll
        .sign_root(&k, &mesh("dublin"), at("2025-12-06T12:00:00Z"))
        .expect("sign");
    for sequence in [0, 1, 17, 36] {
        let proof = ReceiptProof {
            receipt: serde_json::from_slice(&scroll.read_line(sequence).expect("line"))
                .expect("json"),
            inclusion: scroll
                .prove_inclusion(sequence, signed.size)
                .expect("proof"),
            signed_root: signed.clone(),
            anchor_proof: None,
        };
        let bytes = serde_json::to_vec(&proof).expect("json");
        let parsed = ReceiptProof::parse(&bytes).expect("parses");
        parsed.verify(&k.public_key()).expect("verifies");

        let mut tampered = parsed.clone();
        tampered.receipt["result"]["score"] = json!(1000);
        assert!(tampered.verify(&k.public_key()).is_err());
        assert!(parsed.verify(&key(2).public_key()).is_err());
        let mut resized = parsed.clone();
        resized.inclusion.tree_size += 2;
        assert!(resized.verify(&k.public_key()).is_err());
    }
    // Consistency between historical sizes.
    let old = scroll.root_at(20).expect("root");
    let proof = scroll.prove_consistency(20, 37).expect("proof");
    proof.verify(&old, &scroll.root()).expect("consistent");
    assert!(
        proof
            .verify(&scroll.root_at(19).expect("root"), &scroll.root())
            .is_err()
    );
    assert!(matches!(
        scroll.read_line(37),
        Err(ScrollError::NoSuchSequence { .. })
    ));
    assert!(scroll.prove_inclusion(37, 37).is_err());
}

#[test]
fn scrolls_larger_than_a_read_block_reopen_exactly() {
    // Opening reads 8 MiB blocks; ~20k receipts of ~560 bytes span two block boundaries, so
    // lines straddle blocks. Every offset and root must survive that.
    let dir = tempfile::tempdir().expect("tempdir");
    let big = |n: u64| {
        let mut r = receipt(n);
        r.insert("pad".into(), json!("p".repeat(400)));
        r
    };
    let (mut scroll, _) = Scroll::open(dir.path(), &compliance()).expect("open");
    let batch: Vec<_> = (0..20_000).map(big).collect();
    scroll.append_batch(&batch).expect("append");
    let root = scroll.root();
    drop(scroll);
    assert!(
        fs::metadata(scroll_path(dir.path(), &compliance()))
            .expect("meta")
            .len()
            > 10 << 20
    );

    let (scroll, report) = Scroll::open(dir.path(), &compliance()).expect("reopen");
    assert_eq!(report.receipts, 20_000);
    assert_eq!(scroll.root(), root);
    for n in 0..20_000u64 {
        let line: Value =
            serde_json::from_slice(&scroll.read_line(n).expect("line")).expect("json");
        assert_eq!(
            line["check_id"],
            json!(format!("check-{n}")),
            "offset of sequence {n}"
        );
    }
    drop(scroll);

    // Damage a line that straddles the first block boundary: named exactly.
    let path = scroll_path(dir.path(), &compliance());
    let mut bytes = fs::read(&path).expect("read");
    let boundary = 8 << 20;
    let sequence = bytes[..boundary].iter().filter(|b| **b == b'\n').count();
    bytes[boundary + 1] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    assert_eq!(damaged_at(dir.path()).0, sequence as u64);
}

#[test]
fn a_line_without_its_own_root_hash_is_damage() {
    // Sequence 2 loses its top-level root_hash, but keeps one nested inside a value.
    let dir = filled(5);
    edit_line(dir.path(), 2, |l| {
        let mut v: Value = serde_json::from_str(l).expect("json");
        let root = v
            .as_object_mut()
            .expect("object")
            .remove("root_hash")
            .expect("root");
        v["result"]["root_hash"] = root;
        String::from_utf8(vm_receipts::jcs::to_vec(&v).expect("canonical")).expect("utf-8")
    });
    assert_eq!(damaged_at(dir.path()).0, 2);
    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    let d = report.divergence.expect("divergence");
    assert_eq!(d.sequence, 2);
    assert!(d.problem.contains("no root_hash"), "{}", d.problem);
}

fn checkpoint_file(dir: &std::path::Path) -> std::path::PathBuf {
    scroll_path(dir, &compliance()).with_extension("checkpoint")
}

#[test]
fn a_checkpoint_spares_root_checks_only_while_the_bytes_are_unchanged() {
    let dir = filled(50);
    assert!(
        checkpoint_file(dir.path()).is_file(),
        "dropping a scroll leaves a checkpoint"
    );
    let (mut scroll, report) = Scroll::open(dir.path(), &compliance()).expect("open");
    assert_eq!(report.checkpoint_receipts, 50);
    let batch: Vec<_> = (50..60).map(receipt).collect();
    scroll.append_batch(&batch).expect("append");
    let root = scroll.root();
    // A process that dies without dropping the handle leaves the older checkpoint.
    std::mem::forget(scroll);
    let (scroll, report) = Scroll::open(dir.path(), &compliance()).expect("open");
    assert_eq!((report.receipts, report.checkpoint_receipts), (60, 50));
    assert_eq!(scroll.root(), root);
    drop(scroll);
    let (_, report) = Scroll::open(dir.path(), &compliance()).expect("open");
    assert_eq!(report.checkpoint_receipts, 60);

    // An unreadable checkpoint is ignored: every root is checked instead.
    fs::write(checkpoint_file(dir.path()), "not json").expect("write");
    let (scroll, report) = Scroll::open(dir.path(), &compliance()).expect("open");
    assert_eq!((report.receipts, report.checkpoint_receipts), (60, 0));
    assert_eq!(scroll.root(), root);
}

#[test]
fn receipts_removed_at_a_line_boundary_are_caught_by_the_checkpoint() {
    let dir = filled(20);
    let path = scroll_path(dir.path(), &compliance());
    let text = fs::read_to_string(&path).expect("read");
    let kept: String = text.lines().take(15).map(|l| format!("{l}\n")).collect();
    fs::write(&path, kept).expect("truncate");
    let (sequence, reason) = damaged_at(dir.path());
    assert_eq!(sequence, 15);
    assert!(
        reason.contains("receipts were removed") && reason.contains(".checkpoint"),
        "{reason}"
    );
}

#[test]
fn a_consistently_rewritten_history_is_caught_by_the_checkpoint() {
    let dir = filled(10);
    // Another scroll, every root consistent, put in its place.
    let other = tempfile::tempdir().expect("tempdir");
    {
        let (mut forged, _) = Scroll::open(other.path(), &compliance()).expect("open");
        let batch: Vec<_> = (100..112).map(receipt).collect();
        forged.append_batch(&batch).expect("append");
    }
    fs::copy(
        scroll_path(other.path(), &compliance()),
        scroll_path(dir.path(), &compliance()),
    )
    .expect("copy");
    let (sequence, reason) = damaged_at(dir.path());
    assert_eq!(sequence, 10);
    assert!(reason.contains("history was rewritten"), "{reason}");
    // The operator who meant it removes the checkpoint; the scroll then opens.
    fs::remove_file(checkpoint_file(dir.path())).expect("remove");
    let (_, report) =
        Scroll::open(dir.path(), &compliance()).expect("opens without the checkpoint");
    assert_eq!(report.receipts, 12);
}

#[test]
fn the_federation_scroll_holds_only_federation_receipts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let federation = ScrollName::federation();
    let (mut scroll, _) = Scroll::open(dir.path(), &federation).expect("open");
    let established = json!({
        "type": "fed_trust_established",
        "agreement_id": "fed-agreement-1",
        "parties": ["did:vm:mesh:dublin", "did:vm:mesh:berlin"],
        "trust_level": 2,
        "scrolls_shared": ["Compliance"],
        "agreement_hash": Blake3Hash::digest(b"a").to_string(),
        "timestamp": "2025-12-06T16:00:00Z",
        "tags": ["federation"],
    });
    let Value::Object(established) = established else {
        unreachable!()
    };
    scroll.append(&established).expect("append");
    drop(scroll);
    assert!(
        verify_scroll(dir.path(), &federation, None)
            .expect("verify")
            .is_ok()
    );

    // A receipt of another kind, appended below the node's engine, is named by verify.
    let (mut scroll, _) = Scroll::open(dir.path(), &federation).expect("open");
    scroll
        .append(&receipt(1))
        .expect("the scroll layer itself is schema-free");
    drop(scroll);
    let report = verify_scroll(dir.path(), &federation, None).expect("verify");
    let d = report.divergence.expect("divergence");
    assert_eq!(d.sequence, 1);
    assert!(
        d.problem.contains("not a valid Federation receipt"),
        "{}",
        d.problem
    );
}

/// Found in review: a torn tail longer than the line limit (say, a zero-filled extent left by
/// a crash during a large batch) was reported as damage instead of being cut.
#[test]
fn regression_a_torn_tail_of_any_length_is_cut() {
    let dir = filled(3);
    let path = scroll_path(dir.path(), &compliance());
    let good_len = fs::metadata(&path).expect("meta").len();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&vec![0u8; 3 << 20]))
        .expect("torn write");
    let (scroll, report) = Scroll::open(dir.path(), &compliance()).expect("cut, not refused");
    assert_eq!((report.receipts, report.torn_bytes_cut), (3, 3 << 20));
    assert_eq!(fs::metadata(&path).expect("meta").len(), good_len);
    drop(scroll);
    // A complete line over the limit is still damage.
    let mut long = vec![b'{'; 2 << 20];
    long.push(b'\n');
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&long))
        .expect("write");
    let (sequence, reason) = damaged_at(dir.path());
    assert_eq!(sequence, 3);
    assert!(reason.contains("longer than"), "{reason}");
}

/// Found in review: moving `root_hash` to another place in its line changes neither the leaf
/// nor the claimed root nor the length, so the checkpoint did not notice; it now pins where
/// the member starts.
#[test]
fn regression_a_moved_root_hash_member_is_caught_by_the_checkpoint() {
    let dir = filled(6);
    edit_line(dir.path(), 3, |l| {
        let v: Value = serde_json::from_str(l).expect("json");
        let root = v["root_hash"].as_str().expect("root").to_owned();
        let member = format!(",\"root_hash\":\"{root}\"");
        let without = l.replacen(&member, "", 1);
        assert_ne!(without, l, "the member was not last-but-one as expected");
        format!("{{\"root_hash\":\"{root}\",{}", &without[1..])
    });
    let (sequence, reason) = damaged_at(dir.path());
    assert_eq!(sequence, 6, "{reason}");
    assert!(reason.contains("history was rewritten"), "{reason}");
    // `verify` names the line itself.
    let report = verify_scroll(dir.path(), &compliance(), None).expect("verify");
    assert_eq!(report.divergence.map(|d| d.sequence), Some(3));
}
