//! Configuration: a TOML file with a documented default for every field, `TESSERA_*`
//! environment overrides for deployment values, and validation of everything before a socket
//! is bound (STYLE C1-C4). With no file, [`Config::dev`] gives the embedded dev-mode
//! configuration: loopback only, a `demo` tenant, the committed test keys under `keys/`.

pub mod secrets;

pub use secrets::Secret;

use crate::license::policy::Policy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable names, in one place (STYLE C4).
pub mod env {
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
}

/// The committed dev-mode HS256 secret of the `demo` tenant (see `keys/README.md`). It is
/// public: dev mode exists to try Tessera, never to protect content.
pub const DEV_DEMO_SECRET: &str = include_str!("../../keys/dev/demo-jwt-hs256.secret");
/// Issuer of dev-mode tokens.
pub const DEV_ISSUER: &str = "tessera-dev";
/// Audience of dev-mode tokens.
pub const DEV_AUDIENCE: &str = "tessera";

/// Errors of the config module. Startup prints them and exits 64 (EX_USAGE).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse or has unknown fields.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column included).
        message: String,
    },
    /// An environment override did not parse.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Why.
        message: String,
    },
    /// A value is inconsistent or unsafe.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners and connection handling.
    pub server: ServerConfig,
    /// Key storage.
    pub storage: StorageConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Audit trail.
    pub audit: AuditConfig,
    /// Widevine-style licences: device roots, revocation, service certificate.
    pub widevine: WidevineConfig,
    /// PlayReady-style licences: server key, device roots, revocation, response signing.
    pub playready: PlayReadyConfig,
    /// `[packaging]`
    pub packaging: PackagingConfig,
    /// Tenants: who may mint tokens, and their policies.
    pub tenants: Vec<TenantConfig>,
    /// True when no config file was given (set by [`Config::dev`], never from TOML).
    #[serde(skip)]
    pub dev_mode: bool,
}

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

impl TlsConfig {
    /// Loads the certificate chain and key (the key file must be mode 0600) into a rustls
    /// server configuration: TLS 1.2 and 1.3, HTTP/1.1 by ALPN.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|it| it.collect())
            .map_err(|e| format!("{}: {e}", self.cert_file.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate", self.cert_file.display()));
        }
        secrets::read_secret_file(&self.key_file, false)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("{}: {e}", self.key_file.display()))?;
        let mut sc = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
        sc.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(sc)
    }
}

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

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `plain` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter directive (`info`, `tessera=debug,hyper=warn`).
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Plain,
            log_level: "info".into(),
        }
    }
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

/// `[widevine]` (docs/configuration.md). With no roots the Widevine-style endpoint is off,
/// except in dev mode, which trusts the committed test root under `keys/dev/widevine/`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidevineConfig {
    /// PEM RSA public keys of the device-certificate roots to trust.
    pub roots: Vec<PathBuf>,
    /// The SERVICE `SignedDrmCertificate` (binary) for privacy mode.
    pub service_certificate_file: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    pub service_private_key_file: Option<PathBuf>,
    /// Revoked certificate serial numbers (hex), device or model.
    pub revoked_serials: Vec<String>,
    /// Revoked system ids (whole device models).
    pub revoked_system_ids: Vec<u32>,
    /// Security level of devices whose system id is not in `models`.
    pub default_security_level: crate::license::policy::SecurityLevel,
    /// Security level per system id (what a device-certificate status list would say).
    pub models: Vec<WidevineModel>,
    /// Verified device chains kept in memory.
    pub device_cache_capacity: usize,
    /// How long after issue a licence may still be renewed or released (seconds).
    pub session_max_age_secs: u64,
}

impl Default for WidevineConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            service_certificate_file: None,
            service_private_key_file: None,
            revoked_serials: Vec::new(),
            revoked_system_ids: Vec::new(),
            // An unlisted model is treated as a software CDM (Widevine L3: crypto and decode
            // in software), never as hardware it has not been shown to be.
            default_security_level: crate::license::policy::SecurityLevel::SwSecureDecode,
            models: Vec::new(),
            device_cache_capacity: 100_000,
            session_max_age_secs: 30 * 24 * 3600,
        }
    }
}

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

/// `[[widevine.models]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidevineModel {
    /// The system id.
    pub system_id: u32,
    /// Its security level.
    pub security_level: crate::license::policy::SecurityLevel,
}

/// `[audit]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Write the audit trail (key creation, import, release, revocation).
    pub enabled: bool,
    /// JSON-lines file; default `<data_dir>/audit.jsonl`; `-` for standard output.
    pub path: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
        }
    }
}

/// What a verification key may authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPurpose {
    /// Entitlement and service tokens.
    #[default]
    Any,
    /// Player entitlement tokens only.
    Entitlement,
    /// Service tokens (key API) only.
    Service,
}

/// `[[tenants.keys]]`: one JWT verification key (or a JWKS URL standing for many).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationKeyConfig {
    /// The JWS `kid` this key answers to; tokens without `kid` try every key allowing their alg.
    pub kid: Option<String>,
    /// Algorithms pinned to this key (`HS256`, `RS256`, `PS256`, `ES256`, `ES384`, `EdDSA`, ...).
    pub algorithms: Vec<String>,
    /// Which tokens this key may verify.
    pub purpose: KeyPurpose,
    /// HMAC secret by value (at least as long as the hash output, RFC 7518 §3.2).
    pub secret: Option<Secret>,
    /// HMAC secret file.
    pub secret_file: Option<PathBuf>,
    /// Public key, PEM (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
    pub public_key_pem: Option<String>,
    /// Public key PEM file.
    pub public_key_file: Option<PathBuf>,
    /// X.509 certificate PEM file whose subject key verifies tokens.
    pub certificate_file: Option<PathBuf>,
    /// JWKS URL (http or https); keys are selected by `kid` and refreshed on rotation.
    pub jwks_url: Option<String>,
    /// JWKS refresh interval, seconds.
    pub jwks_refresh_secs: Option<u64>,
}

/// `[tenants.signing_key]`: used only by `tessera token` to mint test tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// `kid` written into minted tokens' headers.
    pub kid: Option<String>,
    /// `HS256`/`HS384`/`HS512`, `RS256`, `PS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// HMAC secret by value.
    pub secret: Option<Secret>,
    /// HMAC secret file.
    pub secret_file: Option<PathBuf>,
    /// PKCS#8 private key PEM file (RSA, P-256 or Ed25519).
    pub private_key_file: Option<PathBuf>,
}

/// `[[tenants]]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant id: `[a-z0-9_-]{1,64}`. Part of every sealed key's associated data: never rename.
    pub id: String,
    /// Accepted `iss` values; each issuer belongs to exactly one tenant.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when non-empty a token must name one of them.
    pub audiences: Vec<String>,
    /// Clock-skew leeway for `exp`/`nbf`, seconds (default 30).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Browser origins allowed to call the public listener (`*` for any).
    pub cors_allowed_origins: Vec<String>,
    /// Verification keys.
    pub keys: Vec<VerificationKeyConfig>,
    /// Key used by `tessera token`.
    pub signing_key: Option<SigningKeyConfig>,
    /// Request signers of the Widevine-style key API (`[[tenants.widevine_signers]]`).
    pub widevine_signers: Vec<SignerConfig>,
    /// FairPlay-style credential sets (`[[tenants.fairplay_credentials]]`).
    pub fairplay_credentials: Vec<FairPlayCredentialConfig>,
    /// Named licence policies.
    pub policies: BTreeMap<String, Policy>,
    /// Policy applied when a token names none; default `default` (built in if not defined).
    pub default_policy: Option<String>,
}

/// `[[tenants.widevine_signers]]`: one signer of the Widevine-style key API. Give an AES key
/// and IV (hex) or an RSA public key (PEM), never both.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignerConfig {
    /// The name the packager sends (`--signer`). Unique within the tenant.
    pub name: String,
    /// AES signing key, hex (16, 24 or 32 bytes).
    pub aes_key: Option<Secret>,
    /// File holding the AES signing key, hex (mode 0600).
    pub aes_key_file: Option<PathBuf>,
    /// AES signing IV, hex (16 bytes; not secret).
    pub aes_iv: Option<String>,
    /// PEM RSA public key of an RSA signer (`--rsa_signing_key_path` holds its private key).
    pub rsa_public_key_file: Option<PathBuf>,
}

/// `[[tenants.fairplay_credentials]]`: one FPS credential set. The SPC's certificate hash
/// selects it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FairPlayCredentialConfig {
    /// The FPS certificate (X.509, DER or PEM) players fetch from `/fairplay/certificate`.
    pub certificate_file: PathBuf,
    /// Its RSA private key (PEM, mode 0600).
    pub private_key_file: PathBuf,
    /// The D function: `tessera-d-v1` (Tessera's own), or `d-dylib` (a licensee's shared
    /// library; needs the `fairplay-licensee-ffi` build).
    pub provider: String,
    /// The shared library of a `d-dylib` provider.
    pub dylib: Option<PathBuf>,
    /// ASk, hex (16 bytes).
    pub ask: Option<Secret>,
    /// File holding the ASk, hex (mode 0600).
    pub ask_file: Option<PathBuf>,
    /// Accept v3 SPCs with the Tessera v3-T constants.
    pub v3: bool,
}

/// `[packaging]`: what packagers get besides keys (docs/configuration.md).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackagingConfig {
    /// Base URL at which players reach the public listener (`https://keys.example.com`): the
    /// PlayReady licence URL in headers and the HLS AES-128 key URIs. Default
    /// `http://{public_addr}`.
    pub public_url: Option<String>,
    /// `provider` written into Widevine PSSH data.
    pub widevine_provider: String,
    /// Most crypto periods one key request may ask for.
    pub max_crypto_periods: u32,
}

impl Default for PackagingConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            widevine_provider: "tessera".into(),
            // Shaka Packager asks for 10 at a time and keeps at most 100 queued.
            max_crypto_periods: 100,
        }
    }
}

/// The AES key and IV Shaka Packager's documentation publishes for the `widevine_test`
/// signer. Public test values: dev mode accepts them for the `demo` tenant so the usual
/// tutorial command lines work against a local Tessera; production tenants configure their
/// own signers.
pub const DEV_WIDEVINE_TEST_SIGNER: (&str, &str, &str) = (
    "widevine_test",
    "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9",
    "d58ce954203b7c9a9a9d467f59839249",
);

fn default_leeway() -> u64 {
    30
}

impl Config {
    /// The embedded dev-mode configuration.
    pub fn dev() -> Self {
        let secret = Secret::new(DEV_DEMO_SECRET.trim().to_owned());
        Self {
            dev_mode: true,
            tenants: vec![TenantConfig {
                id: "demo".into(),
                issuers: vec![DEV_ISSUER.into()],
                audiences: vec![DEV_AUDIENCE.into()],
                leeway_secs: 30,
                cors_allowed_origins: vec!["*".into()],
                keys: vec![VerificationKeyConfig {
                    kid: Some("demo-hs256".into()),
                    algorithms: vec!["HS256".into()],
                    secret: Some(secret.clone()),
                    ..Default::default()
                }],
                signing_key: Some(SigningKeyConfig {
                    kid: Some("demo-hs256".into()),
                    algorithm: "HS256".into(),
                    secret: Some(secret),
                    ..Default::default()
                }),
                widevine_signers: vec![SignerConfig {
                    name: DEV_WIDEVINE_TEST_SIGNER.0.into(),
                    aes_key: Some(Secret::new(DEV_WIDEVINE_TEST_SIGNER.1.into())),
                    aes_iv: Some(DEV_WIDEVINE_TEST_SIGNER.2.into()),
                    ..Default::default()
                }],
                // Embedded by `protocol::fairplay::setup` in dev mode (see keys/README.md).
                fairplay_credentials: Vec::new(),
                policies: BTreeMap::new(),
                default_policy: None,
            }],
            ..Default::default()
        }
    }

    /// Loads `path` (or dev mode when `None`), then applies environment overrides and
    /// validates. Does not touch the network or the data directory.
    pub fn load(path: Option<&Path>) -> Result<Self, Error> {
        Self::load_with(path, |_| {})
    }

    /// [`Config::load`], with `adjust` applied after the environment and before validation:
    /// command-line flags take precedence over both, and are validated like everything else.
    pub fn load_with(path: Option<&Path>, adjust: impl FnOnce(&mut Self)) -> Result<Self, Error> {
        let mut cfg = match path {
            None => Self::dev(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::from_toml(&text).map_err(|message| Error::Parse {
                    path: path.to_owned(),
                    message,
                })?
            }
        };
        cfg.apply_env(|name| std::env::var(name).ok())?;
        adjust(&mut cfg);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text (no env, no validation).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        // Not `e.to_string()`: toml quotes the offending source line, which may hold a secret.
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let at = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            format!("{}{}", at.unwrap_or_default(), e.message())
        })
    }

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
        if let Some(v) = var(env::PUBLIC_ADDR) {
            self.server.public_addr = parse(env::PUBLIC_ADDR, &v)?;
        }
        if let Some(v) = var(env::INTERNAL_ADDR) {
            self.server.internal_addr = parse(env::INTERNAL_ADDR, &v)?;
        }
        if let Some(v) = var(env::DATA_DIR) {
            self.storage.data_dir = PathBuf::from(v);
        }
        // An environment value replaces the file's setting of either form (value or
        // `*_file`); both forms in the environment at once is still an error.
        let (mk, mk_file) = (var(env::MASTER_KEY), var(env::MASTER_KEY_FILE));
        if mk.is_some() || mk_file.is_some() {
            self.storage.master_key = mk.map(Secret::new);
            self.storage.master_key_file = mk_file.map(PathBuf::from);
        }
        if let Some(v) = var(env::LOG_FORMAT) {
            self.telemetry.log_format = match v.as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                _ => {
                    return Err(Error::Env {
                        name: env::LOG_FORMAT,
                        message: "expected plain or json".into(),
                    });
                }
            };
        }
        if let Some(v) = var(env::LOG_LEVEL) {
            self.telemetry.log_level = v;
        }
        if let Some(v) = var(env::MAX_CONNECTIONS) {
            self.server.max_connections = parse(env::MAX_CONNECTIONS, &v)?;
        }
        if let Some(v) = var(env::HEADER_READ_TIMEOUT_MS) {
            self.server.header_read_timeout_ms = parse(env::HEADER_READ_TIMEOUT_MS, &v)?;
        }
        if let Some(v) = var(env::BODY_READ_TIMEOUT_MS) {
            self.server.body_read_timeout_ms = parse(env::BODY_READ_TIMEOUT_MS, &v)?;
        }
        if let Some(v) = var(env::DRAIN_TIMEOUT_SECS) {
            self.server.drain_timeout_secs = parse(env::DRAIN_TIMEOUT_SECS, &v)?;
        }
        if let Some(v) = var(env::WORKER_THREADS) {
            self.server.worker_threads = parse(env::WORKER_THREADS, &v)?;
        }
        if let Some(v) = var(env::KEY_CACHE_CAPACITY) {
            self.storage.key_cache_capacity = parse(env::KEY_CACHE_CAPACITY, &v)?;
        }
        if let Some(v) = var(env::AUDIT_ENABLED) {
            self.audit.enabled = parse(env::AUDIT_ENABLED, &v)?;
        }
        if let Some(v) = var(env::AUDIT_PATH) {
            self.audit.path = Some(PathBuf::from(v));
        }
        let (mt, mt_file) = (var(env::METRICS_TOKEN), var(env::METRICS_TOKEN_FILE));
        if mt.is_some() || mt_file.is_some() {
            self.server.metrics_token = mt.map(Secret::new);
            self.server.metrics_token_file = mt_file.map(PathBuf::from);
        }
        Ok(())
    }

    /// Checks everything that can be checked without binding or opening the store: addresses,
    /// tenants, issuers, key material and algorithm pins, policies.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::Invalid(m));
        if self.dev_mode {
            for addr in [self.server.public_addr, self.server.internal_addr] {
                if !addr.ip().is_loopback() {
                    return invalid(format!(
                        "dev mode (no --config) binds loopback only; {addr} is not loopback. \
                         Write a config file with real keys to listen elsewhere"
                    ));
                }
            }
        }
        if self.server.public_addr == self.server.internal_addr
            && self.server.public_addr.port() != 0
        {
            return invalid("public_addr and internal_addr must differ".into());
        }
        match self.storage.backend.as_str() {
            "embedded" => {}
            "postgres" if self.dev_mode => {
                return invalid("dev mode uses the embedded store".into());
            }
            "postgres" => {
                if let Err(e) = self.storage.postgres.check() {
                    return invalid(format!("storage.postgres: {e}"));
                }
                // Heartbeats are written by the pollers' sweeps, so at most once per poll: a
                // bound of fewer than four polls would call healthy replicas stale.
                let bound_ms = self
                    .storage
                    .postgres
                    .replica_max_staleness_secs
                    .saturating_mul(1000);
                if bound_ms < self.storage.change_poll_interval_ms.saturating_mul(4) {
                    return invalid(
                        "storage.postgres.replica_max_staleness_secs must be at least four \
                         storage.change_poll_interval_ms"
                            .into(),
                    );
                }
            }
            other => {
                return invalid(format!(
                    "storage.backend {other:?} is not available (expected \"embedded\" or \"postgres\")"
                ));
            }
        }
        if self.server.max_connections == 0 {
            return invalid("server.max_connections must be at least 1".into());
        }
        if !self.dev_mode
            && self.storage.master_key.is_none()
            && self.storage.master_key_file.is_none()
        {
            return invalid(format!(
                "storage.master_key_file (or {}) is required outside dev mode",
                env::MASTER_KEY
            ));
        }
        // Secrets and files that serving will need: read and check them now, so that a bad
        // one is a configuration error (exit 64) rather than a failure after binding.
        let s = &self.storage;
        if let Some(mk) = secrets::resolve(
            "storage.master_key",
            s.master_key.as_ref(),
            s.master_key_file.as_deref(),
            false,
        )
        .map_err(Error::Invalid)?
        {
            crate::keyring::MasterKey::parse(mk.expose())
                .map_err(|e| Error::Invalid(format!("storage.master_key: {e}")))?;
        }
        let m = &self.server;
        let metrics_token = secrets::resolve(
            "server.metrics_token",
            m.metrics_token.as_ref(),
            m.metrics_token_file.as_deref(),
            false,
        )
        .map_err(Error::Invalid)?;
        if metrics_token.is_some_and(|t| t.expose().is_empty()) {
            // An empty token would match a request that sends none.
            return invalid("server.metrics_token must not be empty".into());
        }
        for (name, tls) in [
            ("public_tls", &m.public_tls),
            ("internal_tls", &m.internal_tls),
        ] {
            if let Some(tls) = tls {
                tls.server_config()
                    .map_err(|e| Error::Invalid(format!("server.{name}: {e}")))?;
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level).map_err(|e| {
            Error::Invalid(format!(
                "telemetry.log_level {:?}: {e}",
                self.telemetry.log_level
            ))
        })?;
        crate::protocol::wvkeys::Signers::from_config(self).map_err(Error::Invalid)?;
        crate::protocol::fairplay::setup::FairPlay::from_config(self).map_err(Error::Invalid)?;
        if let Some(url) = &self.packaging.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return invalid(format!(
                "packaging.public_url {url:?} must start with https:// or http://"
            ));
        }
        if self.tenants.is_empty() {
            return invalid("at least one [[tenants]] is required".into());
        }
        let mut issuers = std::collections::HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for t in &self.tenants {
            if t.id.is_empty()
                || t.id.len() > 64
                || !t
                    .id
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
            {
                return invalid(format!(
                    "tenant id {:?} must match [a-z0-9_-]{{1,64}}",
                    t.id
                ));
            }
            if !ids.insert(t.id.as_str()) {
                return invalid(format!("tenant {:?} is defined twice", t.id));
            }
            if t.issuers.is_empty() {
                return invalid(format!("tenant {:?}: issuers must not be empty", t.id));
            }
            for iss in &t.issuers {
                if let Some(other) = issuers.insert(iss.as_str(), t.id.as_str()) {
                    return invalid(format!(
                        "issuer {iss:?} belongs to both tenant {other:?} and {:?}: the issuer decides the tenant",
                        t.id
                    ));
                }
            }
            if t.audiences.is_empty() && !self.dev_mode {
                return invalid(format!(
                    "tenant {:?}: audiences must not be empty (tokens minted for other \
                     applications of the same issuer would otherwise be accepted)",
                    t.id
                ));
            }
            if t.keys.is_empty() {
                return invalid(format!(
                    "tenant {:?}: at least one verification key is required",
                    t.id
                ));
            }
            for (name, p) in &t.policies {
                p.validate().map_err(|e| {
                    Error::Invalid(format!("tenant {:?} policy {name:?}: {e}", t.id))
                })?;
            }
            if let Some(d) = &t.default_policy
                && !t.policies.contains_key(d)
                && d != "default"
            {
                return invalid(format!(
                    "tenant {:?}: default_policy {d:?} is not defined",
                    t.id
                ));
            }
            // Key material and algorithm pins: building the verifier checks both.
            crate::auth::keys::TenantKeys::from_config(t, self.dev_mode)
                .map_err(|e| Error::Invalid(format!("tenant {:?}: {e}", t.id)))?;
        }
        crate::protocol::widevine::Setup::load(&self.widevine, self.dev_mode)
            .map_err(|e| Error::Invalid(format!("widevine: {e}")))?;
        crate::protocol::playready::PlayReady::load(&self.playready, self.dev_mode)
            .map_err(|e| Error::Invalid(format!("playready: {e}")))?;
        Ok(())
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// The base URL players reach the public listener at (`[packaging] public_url`).
    pub fn public_url(&self) -> String {
        match &self.packaging.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.public_addr),
        }
    }

    /// Where the audit trail goes, if anywhere.
    pub fn audit_path(&self) -> Option<PathBuf> {
        self.audit.enabled.then(|| {
            self.audit
                .path
                .clone()
                .unwrap_or_else(|| self.storage.data_dir.join("audit.jsonl"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_config_is_valid_and_loopback_only() {
        let mut cfg = Config::dev();
        cfg.validate().unwrap();
        cfg.apply_env(|n| (n == env::PUBLIC_ADDR).then(|| "0.0.0.0:8080".into()))
            .unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("loopback"));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(Config::from_toml("[server]\npublik_addr = \"127.0.0.1:1\"").is_err());
        let mut cfg = Config::dev();
        assert!(
            cfg.apply_env(|n| (n == env::MAX_CONNECTIONS).then(|| "many".into()))
                .is_err()
        );
    }

    /// One `[[tenants]]` entry: issuer `https://idp`, an HS256 key.
    fn tenant(id: &str) -> String {
        format!(
            r#"
            [[tenants]]
            id = "{id}"
            issuers = ["https://idp"]
            audiences = ["tessera"]
            [[tenants.keys]]
            algorithms = ["HS256"]
            secret = "0123456789abcdef0123456789abcdef"
            "#
        )
    }

    #[test]
    fn postgres_feed_settings_are_checked() {
        let text = r#"
            [storage]
            backend = "postgres"
            master_key = "0000000000000000000000000000000000000000000000000000000000000000"
            change_poll_interval_ms = 1000
            [storage.postgres]
            primary_url = "host=db sslmode=require"
        "#
        .to_owned()
            + &tenant("a");
        let mut cfg = Config::from_toml(&text).unwrap();
        cfg.validate().unwrap();
        cfg.storage.postgres.replica_max_staleness_secs = 3;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("at least four"), "{e}");
        cfg.storage.postgres.replica_max_staleness_secs = 4;
        cfg.validate().unwrap();
        cfg.storage.postgres.change_retention_secs = 59;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("change_retention_secs"), "{e}");
    }

    #[test]
    fn production_needs_master_key_and_unique_issuers() {
        let text = tenant("a") + &tenant("b");
        let mut cfg = Config::from_toml(&text).unwrap();
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("master_key")
        );
        cfg.storage.master_key = Some(Secret::new("00".repeat(32)));
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("belongs to both")
        );
    }
}
