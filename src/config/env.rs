//! Environment variables (STYLE C4): their names, in one place, and the overrides they
//! apply to a loaded configuration.

use super::{Config, Error, LogFormat, Secret};
use std::path::PathBuf;

/// Path of the config file (also `--config`).
pub const CONFIG: &str = "TESSERA_CONFIG";
/// Public listener address.
pub const PUBLIC_ADDR: &str = "TESSERA_PUBLIC_ADDR";
/// Internal listener address.
pub const INTERNAL_ADDR: &str = "TESSERA_INTERNAL_ADDR";
/// Data directory of the embedded store.
pub const DATA_DIR: &str = "TESSERA_DATA_DIR";
/// Master key by value (64 hex digits or base64 of 32 bytes).
pub const MASTER_KEY: &str = "TESSERA_MASTER_KEY";
/// Master key file (mode 0600).
pub const MASTER_KEY_FILE: &str = "TESSERA_MASTER_KEY_FILE";
/// `plain` or `json`.
pub const LOG_FORMAT: &str = "TESSERA_LOG_FORMAT";
/// A tracing filter, e.g. `info` or `tessera=debug`.
pub const LOG_LEVEL: &str = "TESSERA_LOG_LEVEL";
/// Maximum concurrent connections per listener.
pub const MAX_CONNECTIONS: &str = "TESSERA_MAX_CONNECTIONS";
/// Header-read timeout in milliseconds.
pub const HEADER_READ_TIMEOUT_MS: &str = "TESSERA_HEADER_READ_TIMEOUT_MS";
/// Body-read timeout in milliseconds.
pub const BODY_READ_TIMEOUT_MS: &str = "TESSERA_BODY_READ_TIMEOUT_MS";
/// Drain deadline on shutdown, seconds.
pub const DRAIN_TIMEOUT_SECS: &str = "TESSERA_DRAIN_TIMEOUT_SECS";
/// Tokio worker threads (0 = one per core).
pub const WORKER_THREADS: &str = "TESSERA_WORKER_THREADS";
/// Capacity of the opened-key cache.
pub const KEY_CACHE_CAPACITY: &str = "TESSERA_KEY_CACHE_CAPACITY";
/// Audit log path (`-` for standard output).
pub const AUDIT_PATH: &str = "TESSERA_AUDIT_PATH";
/// `true` or `false`: write the audit trail.
pub const AUDIT_ENABLED: &str = "TESSERA_AUDIT_ENABLED";
/// Bearer token required on `/metrics`, by value.
pub const METRICS_TOKEN: &str = "TESSERA_METRICS_TOKEN";
/// Bearer token required on `/metrics`, from a file.
pub const METRICS_TOKEN_FILE: &str = "TESSERA_METRICS_TOKEN_FILE";
/// Service token used by `tessera keys`.
pub const TOKEN: &str = "TESSERA_TOKEN";
/// Internal API base URL used by `tessera keys`.
pub const SERVER: &str = "TESSERA_SERVER";

impl Config {
    /// Applies `TESSERA_*` overrides read through `var` (injected for tests).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        fn parse<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, Error>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| Error::Env {
                name,
                message: e.to_string(),
            })
        }
        if let Some(v) = var(PUBLIC_ADDR) {
            self.server.public_addr = parse(PUBLIC_ADDR, &v)?;
        }
        if let Some(v) = var(INTERNAL_ADDR) {
            self.server.internal_addr = parse(INTERNAL_ADDR, &v)?;
        }
        if let Some(v) = var(DATA_DIR) {
            self.storage.data_dir = PathBuf::from(v);
        }
        // An environment value replaces the file's setting of either form (value or
        // `*_file`); both forms in the environment at once is still an error.
        let (mk, mk_file) = (var(MASTER_KEY), var(MASTER_KEY_FILE));
        if mk.is_some() || mk_file.is_some() {
            self.storage.master_key = mk.map(Secret::new);
            self.storage.master_key_file = mk_file.map(PathBuf::from);
        }
        if let Some(v) = var(LOG_FORMAT) {
            self.telemetry.log_format = match v.as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                _ => {
                    return Err(Error::Env {
                        name: LOG_FORMAT,
                        message: "expected plain or json".into(),
                    });
                }
            };
        }
        if let Some(v) = var(LOG_LEVEL) {
            self.telemetry.log_level = v;
        }
        if let Some(v) = var(MAX_CONNECTIONS) {
            self.server.max_connections = parse(MAX_CONNECTIONS, &v)?;
        }
        if let Some(v) = var(HEADER_READ_TIMEOUT_MS) {
            self.server.header_read_timeout_ms = parse(HEADER_READ_TIMEOUT_MS, &v)?;
        }
        if let Some(v) = var(BODY_READ_TIMEOUT_MS) {
            self.server.body_read_timeout_ms = parse(BODY_READ_TIMEOUT_MS, &v)?;
        }
        if let Some(v) = var(DRAIN_TIMEOUT_SECS) {
            self.server.drain_timeout_secs = parse(DRAIN_TIMEOUT_SECS, &v)?;
        }
        if let Some(v) = var(WORKER_THREADS) {
            self.server.worker_threads = parse(WORKER_THREADS, &v)?;
        }
        if let Some(v) = var(KEY_CACHE_CAPACITY) {
            self.storage.key_cache_capacity = parse(KEY_CACHE_CAPACITY, &v)?;
        }
        if let Some(v) = var(AUDIT_ENABLED) {
            self.audit.enabled = parse(AUDIT_ENABLED, &v)?;
        }
        if let Some(v) = var(AUDIT_PATH) {
            self.audit.path = Some(PathBuf::from(v));
        }
        let (mt, mt_file) = (var(METRICS_TOKEN), var(METRICS_TOKEN_FILE));
        if mt.is_some() || mt_file.is_some() {
            self.server.metrics_token = mt.map(Secret::new);
            self.server.metrics_token_file = mt_file.map(PathBuf::from);
        }
        Ok(())
    }
}
