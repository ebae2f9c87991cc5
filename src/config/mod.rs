//! Configuration as plain data: a TOML file with a documented default for every field,
//! `TESSERA_*` environment overrides for deployment values ([`mod@env`]), and [`Config::validate`]
//! for everything that can be checked without reading a file (STYLE C1-C4). The files a
//! configuration names (keys, certificates, secrets) are read once, at startup, by
//! `crate::app::prepare`, which builds the runtime from them; `check-config` runs the same
//! step. With no file, [`Config::dev`] gives the embedded dev-mode configuration: loopback
//! only, a `demo` tenant, the committed test keys under `keys/`.
//!
//! One file per section: `server.rs` (and `[limits]`), `storage.rs`, `observability.rs`
//! (`[telemetry]`, `[audit]`), `packaging.rs`, `tenants.rs`. The sections of a protocol
//! (`[widevine]`, `[playready]`, and the `[[tenants]]` members `widevine_signers` and
//! `fairplay_credentials`) are declared by the protocol itself
//! ([`crate::protocol::Protocol::SECTION`]) and live in its folder.

pub mod env;
mod observability;
mod packaging;
pub mod secrets;
mod server;
mod storage;
mod tenants;

pub use observability::{AuditConfig, LogFormat, TelemetryConfig};
pub use packaging::PackagingConfig;
pub use secrets::Secret;
pub use server::{LimitsConfig, ServerConfig, TlsConfig};
pub use storage::StorageConfig;
pub use tenants::{KeyPurpose, SigningKeyConfig, TenantConfig, VerificationKeyConfig};

pub use crate::protocol::wvkeys::config::DEV_WIDEVINE_TEST_SIGNER;
use crate::protocol::wvkeys::config::SignerConfig;
use crate::protocol::{Sections, TenantSections};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// A file the configuration names cannot be put to work (see [`SetupError`]).
    #[error("invalid configuration: {0}")]
    Setup(#[from] SetupError),
}

/// Why a configuration cannot be put to work: a file it names cannot be read, or does not
/// hold what its setting says. Raised while preparing the runtime (`crate::app::prepare`);
/// startup then exits 64 like for any other configuration error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A secret is given twice, or in a file others can read.
    #[error(transparent)]
    Secret(#[from] secrets::Error),
    /// A setting's value or file does not hold what it should.
    #[error("{what}: {why}")]
    Invalid {
        /// The setting (`widevine roots`, `tenant "acme" keys[0]`).
        what: String,
        /// What is wrong with it.
        why: String,
    },
}

impl SetupError {
    /// A setting whose value or file is unusable.
    pub fn invalid(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Self::Invalid {
            what: what.into(),
            why: why.to_string(),
        }
    }

    /// Reading `path` failed.
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Self::Read {
            path: path.to_owned(),
            source,
        }
    }
}

/// The whole configuration. Deserialized by hand (below) so that the sections protocols
/// declare are read into [`Sections`] while any other unknown key is still refused.
#[derive(Debug, Default)]
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
    /// `[packaging]`
    pub packaging: PackagingConfig,
    /// Tenants: who may mint tokens, and their policies.
    pub tenants: Vec<TenantConfig>,
    /// The sections protocols declare (`[widevine]`, `[playready]`).
    pub protocols: Sections,
    /// True when no config file was given (set by [`Config::dev`], never from TOML).
    pub dev_mode: bool,
}

/// Largest `[[tenants]] leeway_secs`.
pub const MAX_LEEWAY_SECS: u64 = 86_400;

/// The top-level keys this module reads itself.
const CONFIG_KEYS: [&str; 7] = [
    "server",
    "storage",
    "telemetry",
    "limits",
    "audit",
    "packaging",
    "tenants",
];

/// Every key of a table: its own and those protocols declare, for the unknown-key error.
fn known_keys(own: &[&'static str], declared: &[Option<&'static str>]) -> Vec<&'static str> {
    own.iter()
        .copied()
        .chain(declared.iter().flatten().copied())
        .collect()
}

/// Every top-level key, for the unknown-key error.
static EXPECTED: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| known_keys(&CONFIG_KEYS, Sections::KEYS));

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Config;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Tessera configuration")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Config, A::Error> {
                let mut c = Config::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "server" => c.server = map.next_value()?,
                        "storage" => c.storage = map.next_value()?,
                        "telemetry" => c.telemetry = map.next_value()?,
                        "limits" => c.limits = map.next_value()?,
                        "audit" => c.audit = map.next_value()?,
                        "packaging" => c.packaging = map.next_value()?,
                        "tenants" => c.tenants = map.next_value()?,
                        other => {
                            if !c.protocols.read(other, &mut map)? {
                                return Err(serde::de::Error::unknown_field(other, &EXPECTED));
                            }
                        }
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(Visitor)
    }
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
                policies: BTreeMap::new(),
                default_policy: None,
                protocols: TenantSections {
                    widevine_keys: vec![SignerConfig {
                        name: DEV_WIDEVINE_TEST_SIGNER.0.into(),
                        aes_key: Some(Secret::new(DEV_WIDEVINE_TEST_SIGNER.1.into())),
                        aes_iv: Some(DEV_WIDEVINE_TEST_SIGNER.2.into()),
                        ..Default::default()
                    }],
                    // The FairPlay-style dev credential is embedded by
                    // `protocol::fairplay::setup` in dev mode (see keys/README.md).
                    ..Default::default()
                },
            }],
            ..Default::default()
        }
    }

    /// Loads `path` (or dev mode when `None`), then applies environment overrides and
    /// validates the values ([`Config::validate`]). Reads no file but `path`; the files the
    /// configuration names are read once, by `crate::app::prepare`.
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

    /// Checks the configuration as data: addresses, tenants, issuers, policies, limits, the
    /// protocols' own sections. Reads no file: what the configuration names (keys,
    /// certificates, secrets) is read once, by `crate::app::prepare`, which
    /// `check-config` runs too.
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
        if self
            .server
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().is_empty())
        {
            // An empty token would match a request that sends none.
            return invalid("server.metrics_token must not be empty".into());
        }
        tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level).map_err(|e| {
            Error::Invalid(format!(
                "telemetry.log_level {:?}: {e}",
                self.telemetry.log_level
            ))
        })?;
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
            if t.leeway_secs > MAX_LEEWAY_SECS {
                // A day of clock skew is a broken clock, and the bound keeps the token
                // library's `now - leeway` arithmetic far from overflow.
                return invalid(format!(
                    "tenant {:?}: leeway_secs must be at most {MAX_LEEWAY_SECS}",
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
        }
        crate::protocol::check(self)
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
