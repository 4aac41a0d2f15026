//! Writes the seed corpus: `corpus/<target>/<name>` for every seed of
//! `vaultmesh_fuzz::seeds`, and RFC 3161 tokens from a real `openssl ts` TSA whose root
//! certificate goes to `data/tsa_root.pem` (the `tsa_token` target's trust anchor).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (from the repository root).

use std::path::Path;

use vm_tsa::testing::{OpensslTsa, TsaKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut written = 0;
    for seed in vaultmesh_fuzz::seeds::seeds() {
        let dir = fuzz.join("corpus").join(seed.target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(&seed.name), &seed.bytes)?;
        written += 1;
    }
    // One TSA, so one root certificate trusts every token seed.
    let work = tempfile::tempdir()?;
    let tsa = OpensslTsa::start_with(work.path(), TsaKey::EcP256Sha256)?;
    std::fs::copy(tsa.ca_pem_path(), fuzz.join("data/tsa_root.pem"))?;
    let client = vm_tsa::TsaClient::new(&tsa.url(), std::time::Duration::from_secs(10))?;
    let dir = fuzz.join("corpus/tsa_token");
    std::fs::create_dir_all(&dir)?;
    for nonce in 1..=2u64 {
        let token = client.timestamp(vaultmesh_fuzz::seeds::TSA_DATA, nonce).await?;
        std::fs::write(dir.join(format!("token-{nonce}")), token)?;
        written += 1;
    }
    println!("wrote {written} seeds under {}", fuzz.join("corpus").display());
    Ok(())
}
