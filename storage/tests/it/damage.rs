//! Damage to our own file never panics (issue 15): every byte of every stored key and value of
//! a small state database is flipped, one at a time, and the database opened and read. Each
//! outcome must be a clear error (naming the state database) or the same answers as before;
//! a panic, or different answers given as if nothing were wrong, fails the test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use redb::StorageBackend;
use vm_storage::{PeerEntry, Record, Store, WitnessState};

use super::{peer, witness};

/// A database image in memory, for opening damaged copies without touching the disk; while
/// `full` is set every write, resize and sync fails as a full disk does.
#[derive(Debug, Clone)]
struct Image {
    bytes: Arc<RwLock<Vec<u8>>>,
    full: Arc<AtomicBool>,
}

impl Image {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Arc::new(RwLock::new(bytes)),
            full: Arc::new(AtomicBool::new(false)),
        }
    }

    fn refuse_if_full(&self) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    /// A store on this image, reopened on the same image by `heal`.
    fn store(&self) -> Result<Store, vm_storage::StoreError> {
        let image = self.clone();
        Store::with_backend(move || image.clone())
    }
}

fn range_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "out of range")
}

impl StorageBackend for Image {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.bytes.read().expect("lock").len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let image = self.bytes.read().expect("lock");
        let start = usize::try_from(offset).map_err(|_| range_error())?;
        let source = image
            .get(start..start + out.len())
            .ok_or_else(range_error)?;
        out.copy_from_slice(source);
        Ok(())
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.refuse_if_full()?;
        let len = usize::try_from(len).map_err(|_| range_error())?;
        self.bytes.write().expect("lock").resize(len, 0);
        Ok(())
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.refuse_if_full()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.refuse_if_full()?;
        let mut image = self.bytes.write().expect("lock");
        let start = usize::try_from(offset).map_err(|_| range_error())?;
        image
            .get_mut(start..start + data.len())
            .ok_or_else(range_error)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// What a store answers: every record of the kinds written, as JSON.
fn answers(store: &Store) -> Result<String, vm_storage::StoreError> {
    let peers = store.all::<PeerEntry>()?;
    let witness = store.all::<WitnessState>()?;
    Ok(serde_json::json!({"peers": peers, "witness": witness}).to_string())
}

/// Every offset in `image` where `needle` occurs.
fn occurrences(image: &[u8], needle: &[u8]) -> Vec<usize> {
    image
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn flipping_any_byte_of_a_stored_key_or_value_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let mut needles: Vec<Vec<u8>> = Vec::new();
    {
        let store = Store::open(&path).expect("create");
        store
            .write(|tx| {
                for (name, t) in [("berlin", 1), ("dublin", 2)] {
                    let p = peer(name, t);
                    needles.push(p.key().into_bytes());
                    needles.push(serde_json::to_vec(&p).expect("json"));
                    tx.put(&p)?;
                }
                let w = witness(7);
                needles.push(w.key().into_bytes());
                needles.push(serde_json::to_vec(&w).expect("json"));
                tx.put(&w)
            })
            .expect("write");
    }
    let image = std::fs::read(&path).expect("image");
    let original = answers(&Image::new(image.clone()).store().expect("open")).expect("answers");

    let mut offsets: Vec<usize> = needles
        .iter()
        .flat_map(|n| {
            let at = occurrences(&image, n);
            assert!(!at.is_empty(), "a stored key or value is not in the file");
            at.into_iter().flat_map(move |start| start..start + n.len())
        })
        .collect();
    offsets.sort_unstable();
    offsets.dedup();

    let (mut refused, mut unchanged) = (0, 0);
    for offset in &offsets {
        let mut damaged = image.clone();
        damaged[*offset] ^= 0xff;
        let outcome = std::panic::catch_unwind(|| {
            let store = Image::new(damaged).store()?;
            answers(&store)
        });
        match outcome {
            Err(_) => panic!("flipping byte {offset} panicked"),
            Ok(Ok(answer)) => {
                assert_eq!(
                    answer, original,
                    "flipping byte {offset} changed an answer without an error"
                );
                unchanged += 1;
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                assert!(
                    message.starts_with("state database"),
                    "flipping byte {offset}: unclear error {message:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no flip was noticed");
    eprintln!(
        "{} bytes flipped one at a time: {refused} refused with an error, {unchanged} unchanged answers",
        offsets.len()
    );
}

#[test]
fn a_store_whose_disk_failed_refuses_clearly_and_heals_when_the_disk_does() {
    let image = Image::new(Vec::new());
    let store = image.store().expect("create");
    store.write(|tx| tx.put(&peer("berlin", 1))).expect("write");

    image.full.store(true, Ordering::SeqCst);
    let err = store
        .write(|tx| tx.put(&peer("dublin", 2)))
        .expect_err("the disk is full");
    assert!(err.to_string().contains("disk failed"), "{err}");
    let cause = store.failure().expect("degraded");
    assert!(cause.to_string().contains("disk failed"), "{cause}");
    // While degraded every call answers at once, naming the cause.
    let again = store.all::<PeerEntry>().expect_err("unavailable");
    assert!(again.to_string().contains("unavailable"), "{again}");
    // Reopening while the disk is still full fails and keeps the store degraded.
    assert!(store.heal().is_err());
    assert!(store.failure().is_some());

    image.full.store(false, Ordering::SeqCst);
    store.heal().expect("heals once the disk does");
    assert!(store.failure().is_none());
    let peers = store.all::<PeerEntry>().expect("reads");
    assert_eq!(
        peers.iter().map(|p| p.key()).collect::<Vec<_>>(),
        vec![peer("berlin", 1).key()],
        "the committed write is kept, the failed one is not"
    );
    store
        .write(|tx| tx.put(&peer("dublin", 2)))
        .expect("writes again");
}
