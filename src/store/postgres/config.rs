//! `[storage.postgres]`: the settings, their defaults, and the checks `check-config` runs
//! (URLs parse, TLS is required unless allowed otherwise, timeouts are set).

/// `[storage.postgres]` (docs/configuration.md). `Debug` leaves the URLs out (they may hold a
/// password).
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Where writes go: a libpq-style URL or key-value string; list every node with
    /// `target_session_attrs=read-write` to follow a promotion.
    pub primary_url: String,
    /// The local datacenter's replica for reads; none reads from the primary.
    pub replica_url: Option<String>,
    /// Connections to the primary.
    pub primary_pool_size: usize,
    /// Connections to the replica.
    pub replica_pool_size: usize,
    /// Longest wait for a pooled connection, milliseconds.
    pub acquire_timeout_ms: u64,
    /// Longest TCP connect plus start-up, milliseconds.
    pub connect_timeout_ms: u64,
    /// `statement_timeout` of every connection, milliseconds.
    pub statement_timeout_ms: u64,
    /// Longest a whole write (with its synchronous-replication wait) may take, milliseconds.
    pub write_timeout_ms: u64,
    /// Apply pending migrations at start (otherwise a schema behind the binary refuses to
    /// start: run `tessera migrate`).
    pub migrate_on_start: bool,
    /// PEM CA bundle trusted for the servers' certificates, in addition to the system roots
    /// (TLS per the URL's `sslmode`).
    pub ca_file: Option<std::path::PathBuf>,
    /// The database password (mode 0600 file), for both URLs; keeps it out of the URLs.
    pub password_file: Option<std::path::PathBuf>,
    /// Accept `sslmode=prefer` or `disable` (plaintext, or TLS an attacker can strip):
    /// only for loopback or a trusted network.
    pub allow_plaintext: bool,
    /// A replica whose copy of the primary's heartbeat is older than this many seconds is
    /// stale: the change feed (revocations) and key reads then go to the primary until it
    /// catches up.
    pub replica_max_staleness_secs: u64,
    /// Change-feed rows numbered longer ago than this many seconds are deleted. A node whose
    /// cursor falls behind the deleted rows drops its cached keys.
    pub change_retention_secs: u64,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("replica", &self.replica_url.is_some())
            .field("primary_pool_size", &self.primary_pool_size)
            .field("replica_pool_size", &self.replica_pool_size)
            .finish_non_exhaustive()
    }
}

/// Why `[storage.postgres]` is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No primary.
    #[error("primary_url is not set")]
    NoPrimary,
    /// A setting that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// Retention below its floor.
    #[error("change_retention_secs must be at least 60")]
    Retention,
    /// A URL that does not parse.
    #[error("{which}: not a PostgreSQL URL: {message}")]
    Url {
        /// `primary_url` or `replica_url`.
        which: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A URL that does not require TLS, without `allow_plaintext`.
    #[error(
        "{0}: TLS is not required (add sslmode=verify-full, or set allow_plaintext for a \
         trusted network)"
    )]
    Plaintext(&'static str),
}

impl PostgresConfig {
    /// Checks the settings (URLs parse, TLS mode, timeouts), as `check-config` does.
    pub fn check(&self) -> std::result::Result<(), ConfigError> {
        if self.primary_url.is_empty() {
            return Err(ConfigError::NoPrimary);
        }
        for (name, v) in [
            ("primary_pool_size", self.primary_pool_size as u64),
            ("replica_pool_size", self.replica_pool_size as u64),
            ("acquire_timeout_ms", self.acquire_timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            (
                "replica_max_staleness_secs",
                self.replica_max_staleness_secs,
            ),
            ("change_retention_secs", self.change_retention_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        // Retention counts from numbering; a minute is the floor, so that a change is never
        // deleted before every running node had many polls to read it.
        if self.change_retention_secs < 60 {
            return Err(ConfigError::Retention);
        }
        parse_url(&self.primary_url, "primary_url", self)?;
        if let Some(r) = &self.replica_url {
            parse_url(r, "replica_url", self)?;
        }
        Ok(())
    }
}

/// Parses a URL. libpq's `sslmode=verify-ca` / `verify-full` are accepted and mean what the
/// TLS connector always does when TLS is required: verify the chain and the host name
/// (tokio-postgres itself only knows `disable`, `prefer` and `require`).
pub(super) fn parse_url(
    url: &str,
    which: &'static str,
    cfg: &PostgresConfig,
) -> std::result::Result<tokio_postgres::Config, ConfigError> {
    let normalised = url
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let pg: tokio_postgres::Config =
        normalised
            .parse()
            .map_err(|e: tokio_postgres::Error| ConfigError::Url {
                which,
                message: e.to_string(),
            })?;
    if pg.get_ssl_mode() != tokio_postgres::config::SslMode::Require && !cfg.allow_plaintext {
        return Err(ConfigError::Plaintext(which));
    }
    Ok(pg)
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            primary_url: String::new(),
            replica_url: None,
            primary_pool_size: 16,
            replica_pool_size: 16,
            acquire_timeout_ms: 1_000,
            connect_timeout_ms: 2_000,
            statement_timeout_ms: 5_000,
            write_timeout_ms: 10_000,
            migrate_on_start: false,
            ca_file: None,
            password_file: None,
            allow_plaintext: false,
            replica_max_staleness_secs: 30,
            change_retention_secs: 7 * 24 * 3600,
        }
    }
}
