//! The data directory of a mesh (DESIGN §9):
//!
//! ```text
//! <data-dir>/
//!   config.toml                                   settings (see `config`)
//!   keys/mesh.key                                 the mesh's Ed25519 seed, mode 0600
//!   receipts/federation/federation_events.jsonl   the Federation scroll
//!   ROOT.federation.txt                           its latest signed root
//!   state.redb                                    the node's state (an index of the scroll)
//!   listen.json                                   ports the OS picked, kept for restarts
//!   .lock                                         held by whichever process uses the directory
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vm_receipts::scroll::{Scroll, ScrollError, write_root_file};
use vm_receipts::{MeshId, MeshKey, PublicKey, ScrollName, Timestamp};

use crate::config::{Config, ConfigError};

/// Why a data directory could not be made or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `init` on a directory that already holds a mesh.
    #[error(
        "{0} already holds a mesh (config.toml exists); choose another --data-dir or remove it"
    )]
    AlreadyInitialised(PathBuf),
    /// A command on a directory that holds no mesh.
    #[error(
        "{0} holds no mesh (no config.toml); run `vm-federation init --data-dir {0} --mesh NAME` first"
    )]
    NotInitialised(PathBuf),
    /// Another process (a running node, another command) uses the directory.
    #[error(
        "{0} is in use by another vm-federation process (a running node?); stop it or use its control socket"
    )]
    Locked(PathBuf),
    /// The key file is unusable.
    #[error("{path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Federation scroll could not be created.
    #[error(transparent)]
    Scroll(#[from] ScrollError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key file's form: the seed and, for a human reading it, who it belongs to.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    algorithm: String,
    mesh_id: MeshId,
    public_key: PublicKey,
    secret_seed: String,
}

/// An opened, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    config: Config,
    key: MeshKey,
    // Held for the life of the value: the OS releases the lock when the file closes.
    _lock: File,
}

/// What `init` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitReport {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The mesh id.
    pub mesh_id: MeshId,
    /// The mesh's public key.
    pub public_key: PublicKey,
    /// Its libp2p PeerId.
    pub peer_id: String,
}

impl DataDir {
    /// Creates a new mesh in `root` (made if missing; refused if it already holds one): the
    /// key from `seed`, the configuration, and the empty Federation scroll with a signed root.
    pub fn init(
        root: &Path,
        mesh_id: MeshId,
        seed: [u8; 32],
        now: Timestamp,
    ) -> Result<InitReport, DataDirError> {
        fs::create_dir_all(root).map_err(io(root))?;
        let lock = lock(root)?;
        let config_path = root.join("config.toml");
        if config_path.exists() {
            return Err(DataDirError::AlreadyInitialised(root.to_owned()));
        }
        // Owner only: the state, unshared scrolls and the key are nobody else's to read.
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io(root))?;
        let key = MeshKey::from_seed(&seed);
        let keys_dir = root.join("keys");
        fs::create_dir_all(&keys_dir).map_err(io(&keys_dir))?;
        fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o700)).map_err(io(&keys_dir))?;
        let key_path = keys_dir.join("mesh.key");
        let key_file = KeyFile {
            algorithm: "Ed25519".into(),
            mesh_id: mesh_id.clone(),
            public_key: key.public_key(),
            secret_seed: key.seed_text().to_string(),
        };
        let mut text = serde_json::to_string_pretty(&key_file).map_err(|e| DataDirError::Key {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        // Created 0600 from the start: the secret is never readable by others, not even briefly.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(io(&key_path))?;
        file.write_all(text.as_bytes()).map_err(io(&key_path))?;
        file.sync_all().map_err(io(&key_path))?;

        let federation = ScrollName::federation();
        let (scroll, _) = Scroll::open(root, &federation)?;
        write_root_file(root, &scroll.sign_root(&key, &mesh_id, now)?)?;

        // config.toml last: its presence is what marks the directory as initialised.
        let config = Config::new(mesh_id.clone());
        write_synced(&config_path, config.to_toml()?.as_bytes())?;
        drop(lock);
        Ok(InitReport {
            data_dir: root.to_owned(),
            public_key: key.public_key(),
            peer_id: key.public_key().peer_id(),
            mesh_id,
        })
    }

    /// Reads an initialised data directory's configuration and public key without locking it
    /// (for read-only commands that may run beside a node).
    pub fn read_identity(root: &Path) -> Result<(Config, PublicKey), DataDirError> {
        let config_path = root.join("config.toml");
        if !config_path.exists() {
            return Err(DataDirError::NotInitialised(root.to_owned()));
        }
        let config = Config::load(&config_path)?;
        let key = load_key(&root.join("keys").join("mesh.key"), &config.mesh_id)?;
        Ok((config, key.public_key()))
    }

    /// Opens and locks an initialised data directory.
    pub fn open(root: &Path) -> Result<Self, DataDirError> {
        let config_path = root.join("config.toml");
        if !config_path.exists() {
            return Err(DataDirError::NotInitialised(root.to_owned()));
        }
        let lock = lock(root)?;
        let config = Config::load(&config_path)?;
        let key = load_key(&root.join("keys").join("mesh.key"), &config.mesh_id)?;
        Ok(Self {
            root: root.to_owned(),
            config,
            key,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the configuration in use (a reload applied part of `config.toml`).
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The mesh key.
    pub fn key(&self) -> &MeshKey {
        &self.key
    }

    /// The mesh id.
    pub fn mesh_id(&self) -> &MeshId {
        &self.config.mesh_id
    }
}

/// Takes the directory's exclusive lock, or says who has it.
fn lock(root: &Path) -> Result<File, DataDirError> {
    let path = root.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(DataDirError::Locked(root.to_owned())),
        Err(fs::TryLockError::Error(source)) => Err(DataDirError::Io { path, source }),
    }
}

fn load_key(path: &Path, mesh_id: &MeshId) -> Result<MeshKey, DataDirError> {
    let bad = |reason: String| DataDirError::Key {
        path: path.to_owned(),
        reason,
    };
    let restore = "restore keys/mesh.key from your backup: the key is the mesh's identity (a \
                   new key would be a new mesh, unknown to every peer)";
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(format!("the mesh key is missing; {restore}")));
        }
        Err(e) => return Err(io(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "the mesh key is readable by others (mode {mode:03o}); run `chmod 600 {}`",
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(io(path))?;
    let value = vm_receipts::jcs::parse(&bytes, vm_receipts::jcs::Numbers::IntegersOnly)
        .map_err(|e| bad(format!("not a mesh key file ({e}); {restore}")))?;
    let file: KeyFile = serde_json::from_value(value)
        .map_err(|e| bad(format!("not a mesh key file ({e}); {restore}")))?;
    let key = MeshKey::from_seed_text(&file.secret_seed)
        .map_err(|e| bad(format!("secret_seed: {e}; {restore}")))?;
    if key.public_key() != file.public_key {
        return Err(bad(format!(
            "secret_seed does not belong to public_key: the file is damaged; {restore}"
        )));
    }
    if &file.mesh_id != mesh_id {
        return Err(bad(format!(
            "the key is for {}, but config.toml says {mesh_id}",
            file.mesh_id
        )));
    }
    Ok(key)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}
