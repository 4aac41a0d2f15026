//! Writes peer records to a state database one transaction at a time and prints each key
//! once its commit has returned (it is then durable). The crash test in `tests/it` kills this
//! process with SIGKILL and checks that every printed key survived.
//!
//! Usage: `crash_writer <state.redb> <first-index>`

use std::collections::BTreeMap;
use std::io::Write;

use vm_receipts::{MeshId, Timestamp};
use vm_storage::{PeerEntry, PeerSource, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: crash_writer <state.redb> <first-index>")?;
    let first: u64 = args.next().ok_or("missing first index")?.parse()?;
    let store = Store::open(std::path::Path::new(&path))?;
    let mut out = std::io::stdout().lock();
    for i in first.. {
        let entry = PeerEntry {
            mesh_id: MeshId::from_name(&format!("mesh-{i}"))?,
            public_key: None,
            discovery_record: None,
            sources: BTreeMap::from([(PeerSource::Manual, Timestamp::EPOCH)]),
            manual_addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", i % 60_000)],
            updated_at: Timestamp::EPOCH,
        };
        store.write(|tx| tx.put(&entry))?;
        writeln!(out, "{i}")?;
        out.flush()?;
    }
    Ok(())
}
