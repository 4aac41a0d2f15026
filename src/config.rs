//! `config.toml`: what an operator may set. Every field has an embedded default, so a node
//! runs without the file; unknown keys are refused so a typo is not silently ignored.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vm_receipts::MeshId;

/// The node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This mesh's id (`did:vm:mesh:<name>`).
    pub mesh_id: MeshId,
    /// A human name for the discovery record.
    pub display_name: String,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (TOML's message names the key and line).
        message: String,
    },
}

impl Config {
    /// The configuration `init` writes for a new mesh.
    pub fn new(mesh_id: MeshId) -> Self {
        Self {
            display_name: mesh_id.name().to_owned(),
            mesh_id,
        }
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The TOML text `init` writes, with a header saying what the file is.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let body = toml::to_string(self).map_err(|e| ConfigError::Invalid {
            path: "config.toml".into(),
            message: e.to_string(),
        })?;
        Ok(format!(
            "# VaultMesh federation node configuration, written by `vm-federation init`.\n\
             # See README.md for what may be set here.\n{body}"
        ))
    }
}
