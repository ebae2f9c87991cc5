//! `[server]` and `[limits]`: listeners, connections, timeouts, request limits.

use super::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Public listener (licences): default `127.0.0.1:8080`.
    pub public_addr: SocketAddr,
    /// Internal listener (key API, metrics, health): default `127.0.0.1:8081`.
    pub internal_addr: SocketAddr,
    /// TLS for the public listener; plaintext when absent (terminate TLS in front, then).
    pub public_tls: Option<TlsConfig>,
    /// TLS for the internal listener.
    pub internal_tls: Option<TlsConfig>,
    /// Maximum concurrent connections per listener; further connections wait in the backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in, in milliseconds.
    pub body_read_timeout_ms: u64,
    /// Deadline for in-flight requests to finish on shutdown, in seconds.
    pub drain_timeout_secs: u64,
    /// Tokio worker threads; 0 means one per available core.
    pub worker_threads: usize,
    /// Bearer token required on `/metrics` (compared in constant time); none by default.
    pub metrics_token: Option<Secret>,
    /// File holding the `/metrics` bearer token.
    pub metrics_token_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            internal_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            public_tls: None,
            internal_tls: None,
            max_connections: 10_000,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            drain_timeout_secs: 10,
            worker_threads: 0,
            metrics_token: None,
            metrics_token_file: None,
        }
    }
}

/// `[server.public_tls]` / `[server.internal_tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), mode 0600.
    pub key_file: PathBuf,
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest licence request body, bytes (checked before parsing).
    pub max_license_body_bytes: usize,
    /// Largest key API request body, bytes.
    pub max_api_body_bytes: usize,
    /// Largest accepted JWT, bytes.
    pub max_token_bytes: usize,
    /// Most KIDs in one licence or key request.
    pub max_kids_per_request: usize,
    /// Most `jti` values tracked for max-uses replay prevention.
    pub replay_cache_capacity: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_license_body_bytes: 64 * 1024,
            max_api_body_bytes: 1024 * 1024,
            max_token_bytes: 8 * 1024,
            max_kids_per_request: 128,
            replay_cache_capacity: 1_000_000,
        }
    }
}
