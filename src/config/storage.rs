//! `[storage]`: where keys live and how the master key is found.

use super::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// `[storage]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Backend: `embedded` (one data directory) or `postgres` (`[storage.postgres]`).
    pub backend: String,
    /// Data directory of the embedded store (and default audit log location).
    pub data_dir: PathBuf,
    /// Master key by value. Prefer `master_key_file` or `TESSERA_MASTER_KEY`.
    pub master_key: Option<Secret>,
    /// Master key file: 64 hex digits or base64 of 32 bytes, mode 0600.
    pub master_key_file: Option<PathBuf>,
    /// Maximum number of opened keys held in memory.
    pub key_cache_capacity: usize,
    /// How often the change feed is polled for revocations made by other nodes, milliseconds.
    pub change_poll_interval_ms: u64,
    /// The PostgreSQL backend (`backend = "postgres"`).
    pub postgres: crate::store::PostgresConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            data_dir: PathBuf::from("tessera-data"),
            master_key: None,
            master_key_file: None,
            key_cache_capacity: 100_000,
            change_poll_interval_ms: 1_000,
            postgres: crate::store::PostgresConfig::default(),
        }
    }
}
