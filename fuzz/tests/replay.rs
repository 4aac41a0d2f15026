//! Every corpus and regression input through its target, on stable Rust: what the fuzzer
//! found stays fixed, and every seed is still a valid input of its parser.

use std::path::Path;

use vaultmesh_fuzz::{TARGETS, target};

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("an input file");
            (path.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_and_regression_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, body) in TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(!corpus.is_empty(), "target {name} has no seed corpus");
        for (path, bytes) in corpus
            .iter()
            .chain(inputs(&root.join("regressions").join(name)).iter())
        {
            eprintln!("{path}");
            body(bytes);
        }
    }
    // Every directory names a target.
    for dir in ["corpus", "regressions"] {
        for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten() {
            let name = entry.expect("an entry").file_name();
            let name = name.to_string_lossy();
            assert!(target(&name).is_some(), "{dir}/{name} is no target");
        }
    }
}

// The seeds are valid inputs: a seed a parser refuses would start the fuzzer at the first
// error instead of past it.
#[test]
fn seeds_are_accepted_by_their_parsers() {
    use vaultmesh_fuzz::seeds::seeds;
    for seed in seeds() {
        let ok = match seed.target {
            "json" => vm_receipts::jcs::parse(&seed.bytes, vm_receipts::jcs::Numbers::Any).is_ok(),
            // Receipt lines of a scroll: strict JSON (floats allowed).
            "receipt" => vm_receipts::jcs::parse(&seed.bytes, vm_receipts::jcs::Numbers::Any).is_ok(),
            "peer_message" => {
                vaultmesh_federation::engine::PeerMessage::from_bytes(&seed.bytes).is_ok()
            }
            "dht_record" => vm_network::record::validate_own(
                &seed.bytes,
                vaultmesh_fuzz::now(),
                vm_network::Freshness {
                    max_age_secs: 86_400,
                    max_skew_secs: 300,
                },
            )
            .is_ok(),
            "config" => vaultmesh_federation::config::Config::parse(
                std::str::from_utf8(&seed.bytes).expect("UTF-8"),
                "seed",
            )
            .is_ok(),
            _ => true,
        };
        assert!(ok, "seed {}/{} is refused by its parser", seed.target, seed.name);
    }
}

// The token seeds verify against the trust anchor the target uses, so mutations reach the
// certificate chain and imprint checks, not only the DER parser.
#[test]
fn token_seeds_verify_with_the_targets_trust_anchor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let trust = vm_tsa::TsaTrust::from_pem(&std::fs::read(root.join("data/tsa_root.pem")).unwrap())
        .expect("the seeds' TSA root");
    let tokens = inputs(&root.join("corpus/tsa_token"));
    assert!(!tokens.is_empty());
    for (path, token) in tokens.iter().filter(|(p, _)| p.contains("token-")) {
        vm_tsa::verify_token(token, vaultmesh_fuzz::seeds::TSA_DATA, &trust, 1_900_000_000)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}
