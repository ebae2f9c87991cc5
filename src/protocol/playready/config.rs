//! `[playready]`: server key, device roots, revocation, response signing
//! (`docs/configuration.md`, "[playready]"; `docs/playready.md`).

use serde::Deserialize;
use std::path::PathBuf;

/// `[playready]` (docs/configuration.md, docs/playready.md). With no server key and no roots
/// the PlayReady-style endpoint is off, except in dev mode, which uses the committed test
/// keys under `keys/dev/playready/`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayReadyConfig {
    /// The server's P-256 private key (PEM, mode 0600) in the role of the WMRM key: clients
    /// encrypt their challenges to its public key (`tessera devices playready
    /// --server-public-key` prints it).
    pub server_key_file: Option<PathBuf>,
    /// PEM P-256 public keys of the device-certificate roots to trust.
    pub roots: Vec<PathBuf>,
    /// Revoked certificate ids (32 hex digits), at any position in a chain: a model
    /// certificate's id revokes the whole model.
    pub revoked_certificate_ids: Vec<String>,
    /// Revoked model names (the device certificate's MANUFACTURER model name).
    pub revoked_models: Vec<String>,
    /// Response signing: a BCert chain whose leaf is a SERVER certificate with a
    /// SIGN_RESPONSE key...
    pub signing_chain_file: Option<PathBuf>,
    /// ...and that key (PEM, mode 0600). Both or neither.
    pub signing_key_file: Option<PathBuf>,
    /// Verified device chains kept in memory.
    pub device_cache_capacity: usize,
}

impl Default for PlayReadyConfig {
    fn default() -> Self {
        Self {
            server_key_file: None,
            roots: Vec::new(),
            revoked_certificate_ids: Vec::new(),
            revoked_models: Vec::new(),
            signing_chain_file: None,
            signing_key_file: None,
            device_cache_capacity: 100_000,
        }
    }
}
