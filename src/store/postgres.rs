//! PostgreSQL backend (`docs/replication.md`): writes go to the primary, reads to the local
//! datacenter's replica with a fallback to the primary on a miss (replication lag), and the
//! change feed is read from the replica.
//!
//! - **Durability** is PostgreSQL's: with `synchronous_commit = remote_apply` and
//!   `synchronous_standby_names = 'ANY 1 (...)'` on the primary, a commit (and so every
//!   acknowledged key) is durable and visible in a second datacenter before it returns.
//! - **Fail fast**: pools wait at most `acquire_timeout_ms` for a connection, connections
//!   take at most `connect_timeout_ms`, statements `statement_timeout_ms`, and every write as
//!   a whole `write_timeout_ms`; a write that finds no primary is [`Error::Unavailable`]
//!   (503), never a hang. `primary_url` may list every node with
//!   `target_session_attrs=read-write`, so after a promotion new connections find the new
//!   primary without a configuration change.
//! - **The change feed** must deliver changes in commit order to pollers that read `seq >
//!   cursor` (a sequence number drawn inside a transaction that commits late would be skipped).
//!   So rows are written unnumbered, and a sequencer numbers committed rows afterwards, one
//!   sequencer at a time under an advisory lock: the writer runs it right after its commit,
//!   and pollers run a sweep every few seconds for rows whose writer died in between.
//! - **A stalled replica** still answers, with revocations missing: sweeps write a heartbeat
//!   on the primary, pollers read its age from the replica with the changes, and past
//!   `replica_max_staleness_secs` the feed and key reads go to the primary until the replica
//!   has caught up (or stay local when the primary does not answer either).
//! - **Retention** deletes a `seq`-ordered prefix of old changes and records the watermark;
//!   a cursor below it, or above a primary's newest change (a failover to a standby that was
//!   behind), is [`Error::FeedReset`]: the poller drops its opened keys.
//! - Keys stay sealed (AES-256-GCM by the keyring): a dump of the database reveals no key.

use super::{Change, ChangeKind, Error, Inserted, KeyRecord, KeyStore, Result, SameKey};
use crate::keyring::{KeyId, KeyMeta, KeyState, TrackType};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::Row;

/// A schema migration.
#[derive(Debug)]
pub struct Migration {
    /// The schema version it makes.
    pub version: i32,
    /// The oldest binary (by the schema version it was built for) that still works on this
    /// schema. Migrations are additive where they can be, so this stays low and a rolling
    /// upgrade can migrate first; a migration that is not raises it, and older binaries
    /// then refuse to start instead of misreading the database.
    pub compatible_from: i32,
    /// Its SQL.
    pub sql: &'static str,
}

/// Schema migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        compatible_from: 1,
        sql: include_str!("postgres/001_init.sql"),
    },
    Migration {
        version: 2,
        compatible_from: 1,
        sql: include_str!("postgres/002_feed_state.sql"),
    },
];
/// Advisory-lock keys (arbitrary, fixed).
const LOCK_MIGRATE: i64 = 0x7e55_e4a0_0001;
const LOCK_SEQUENCER: i64 = 0x7e55_e4a0_0002;
/// Longest time between two sweeps of one node (numbering stragglers, the heartbeat,
/// retention); shorter when `replica_max_staleness_secs` asks for a finer heartbeat.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Most change rows one sweep deletes (retention catches up over several sweeps).
const PRUNE_BATCH: i64 = 10_000;

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

impl PostgresConfig {
    /// Checks the settings (URLs parse, TLS mode, timeouts), as `check-config` does.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.primary_url.is_empty() {
            return Err("primary_url is not set".into());
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
                return Err(format!("{name} must be at least 1"));
            }
        }
        // Retention counts from numbering; a minute is the floor, so that a change is never
        // deleted before every running node had many polls to read it.
        if self.change_retention_secs < 60 {
            return Err("change_retention_secs must be at least 60".into());
        }
        parse_url(&self.primary_url, self).map_err(|e| format!("primary_url: {e}"))?;
        if let Some(r) = &self.replica_url {
            parse_url(r, self).map_err(|e| format!("replica_url: {e}"))?;
        }
        Ok(())
    }
}

/// Parses a URL. libpq's `sslmode=verify-ca` / `verify-full` are accepted and mean what the
/// TLS connector always does when TLS is required: verify the chain and the host name
/// (tokio-postgres itself only knows `disable`, `prefer` and `require`).
fn parse_url(
    url: &str,
    cfg: &PostgresConfig,
) -> std::result::Result<tokio_postgres::Config, String> {
    let normalised = url
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let pg: tokio_postgres::Config = normalised
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if pg.get_ssl_mode() != tokio_postgres::config::SslMode::Require && !cfg.allow_plaintext {
        return Err(
            "TLS is not required (add sslmode=verify-full, or set allow_plaintext for a \
             trusted network)"
                .into(),
        );
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

/// Unix seconds (the store sits below the app: it reads the clock itself).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

/// Metrics of the backend (registered by the app).
#[derive(Clone, Debug)]
struct PgMetrics {
    fallbacks: IntCounterVec,
    pool: IntGaugeVec,
    staleness: Gauge,
}

/// A pooled connection for a write. It goes back to the pool only once the write finished
/// ([`Conn::finish`]); dropped before that (an error, or `write_timeout_ms` abandoning a
/// COMMIT still waiting for its synchronous standby) it is detached and closed, so the next
/// write never queues behind an abandoned one.
struct Conn {
    obj: Option<deadpool_postgres::Object>,
    finished: bool,
}

impl Conn {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl std::ops::Deref for Conn {
    type Target = deadpool_postgres::Object;
    fn deref(&self) -> &Self::Target {
        #[expect(clippy::expect_used, reason = "only taken in drop")]
        self.obj.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        #[expect(clippy::expect_used, reason = "only taken in drop")]
        self.obj.as_mut().expect("connection present until drop")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.finished
            && let Some(obj) = self.obj.take()
        {
            drop(deadpool_postgres::Object::take(obj));
        }
    }
}

/// The PostgreSQL key store.
pub struct PostgresStore {
    primary: Pool,
    replica: Option<Pool>,
    write_timeout: Duration,
    read_timeout: Duration,
    metrics: PgMetrics,
    last_sweep: Mutex<Option<Instant>>,
    sweep_every: Duration,
    max_staleness: f64,
    /// Key reads go to the primary: the last poll read the feed there, or the replica has
    /// not yet reached `must_reach`.
    keys_from_primary: AtomicBool,
    /// The newest change this node read from the primary: until the replica has it, the
    /// replica's key reads could contradict what this node applied. It moves only when the
    /// primary is read, so a replica that lags a little under steady writes does catch up.
    must_reach: AtomicU64,
    /// Unix milliseconds of the last failed primary operation: for a few seconds after it,
    /// key reads do not try the primary first (one slow read per failure, not per request).
    primary_failed_at_ms: AtomicU64,
    /// The last heartbeat write failed (logged once per outage).
    heartbeat_failing: AtomicBool,
    retention_secs: f64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("replica", &self.replica.is_some())
            .finish_non_exhaustive()
    }
}

fn pool(url: &str, size: usize, cfg: &PostgresConfig) -> std::result::Result<Pool, String> {
    let mut pg = parse_url(url, cfg)?;
    if let Some(path) = &cfg.password_file {
        let secret =
            crate::config::secrets::read_secret_file(path, false).map_err(|e| e.to_string())?;
        pg.password(secret.expose().trim_end());
    }
    let connect = Duration::from_millis(cfg.connect_timeout_ms);
    pg.connect_timeout(connect);
    // A fenced or partitioned primary leaves half-open connections: keepalives and a TCP
    // user timeout close them instead of letting requests queue behind them.
    pg.keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_millis(
            cfg.write_timeout_ms.max(connect.as_millis() as u64),
        ));
    // Hosts are tried one after another, each with the connect timeout: the budget for one
    // new connection covers them all, so a blackholed first host cannot hide the others.
    let hosts = u32::try_from(pg.get_hosts().len().max(1)).unwrap_or(1);
    pg.options(format!(
        "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        cfg.statement_timeout_ms,
        cfg.write_timeout_ms.max(cfg.statement_timeout_ms)
    ));
    if pg.get_application_name().is_none() {
        pg.application_name("tessera");
    }
    let mut ssl = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
        .map_err(|e| e.to_string())?;
    if let Some(ca) = &cfg.ca_file {
        ssl.set_ca_file(ca)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let tls = postgres_openssl::MakeTlsConnector::new(ssl.build());
    let mgr = Manager::from_config(
        pg,
        tls,
        // Fast: only closed connections are dropped on recycling. Writes that did not finish
        // detach their connection instead of returning it (`Conn`), and keepalives close
        // half-open ones, so a verification round trip per checkout is not needed.
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let wait = Some(Duration::from_millis(cfg.acquire_timeout_ms));
    Pool::builder(mgr)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(Some(connect * hosts + Duration::from_secs(1)))
        .recycle_timeout(Some(Duration::from_millis(cfg.acquire_timeout_ms.min(500))))
        .build()
        .map_err(|e| e.to_string())
}

fn track_code(t: Option<TrackType>) -> Option<i16> {
    t.map(|t| t as i16)
}

fn track_of(code: Option<i16>) -> Result<Option<TrackType>> {
    code.map(|c| {
        usize::try_from(c)
            .ok()
            .and_then(|i| TrackType::ALL.get(i).copied())
            .ok_or_else(|| Error::Corrupt(format!("track code {c}")))
    })
    .transpose()
}

fn i64_of(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} does not fit a bigint")))
}

fn u64_of(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("negative value {v}")))
}

const COLUMNS: &str = "kid, content_id, track, period, created_at, revoked_at, sealed";

fn record(row: &Row) -> Result<KeyRecord> {
    let kid: Vec<u8> = row.try_get(0).map_err(|e| Error::Corrupt(e.to_string()))?;
    let kid: [u8; 16] = kid
        .try_into()
        .map_err(|_| Error::Corrupt("kid length".into()))?;
    let get = |e: tokio_postgres::Error| Error::Corrupt(e.to_string());
    let revoked: Option<i64> = row.try_get(5).map_err(get)?;
    Ok(KeyRecord {
        meta: KeyMeta {
            kid: KeyId::from_bytes(kid),
            content_id: row.try_get(1).map_err(get)?,
            track: track_of(row.try_get(2).map_err(get)?)?,
            period: row
                .try_get::<_, Option<i64>>(3)
                .map_err(get)?
                .map(u64_of)
                .transpose()?,
            created_at: u64_of(row.try_get(4).map_err(get)?)?,
            state: match revoked {
                None => KeyState::Active,
                Some(at) => KeyState::Revoked { at: u64_of(at)? },
            },
        },
        sealed: row.try_get(6).map_err(get)?,
    })
}

/// Applies pending migrations on `url` (under an advisory lock, each in its transaction);
/// returns the versions applied.
pub async fn migrate(cfg: &PostgresConfig) -> std::result::Result<Vec<i32>, String> {
    let p = pool(&cfg.primary_url, 1, cfg)?;
    let mut c = p.get().await.map_err(|e| format!("primary: {e}"))?;
    let tx = c.transaction().await.map_err(|e| e.to_string())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
        .await
        .map_err(|e| e.to_string())?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tessera_schema (version int PRIMARY KEY, \
         applied_at timestamptz NOT NULL DEFAULT now()); \
         ALTER TABLE tessera_schema ADD COLUMN IF NOT EXISTS compatible_from int NOT NULL DEFAULT 1",
    )
    .await
    .map_err(|e| e.to_string())?;
    let current: Option<i32> = tx
        .query_one("SELECT max(version) FROM tessera_schema", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        if current.is_some_and(|c| c >= m.version) {
            continue;
        }
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| format!("migration {}: {e}", m.version))?;
        tx.execute(
            "INSERT INTO tessera_schema (version, compatible_from) VALUES ($1, $2)",
            &[&m.version, &m.compatible_from],
        )
        .await
        .map_err(|e| e.to_string())?;
        applied.push(m.version);
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(applied)
}

impl PostgresStore {
    /// Connects (lazily: pools open connections on first use) and checks the schema, or
    /// migrates it when `migrate_on_start`.
    pub async fn connect(cfg: &PostgresConfig) -> std::result::Result<Self, String> {
        cfg.check()?;
        if cfg.migrate_on_start {
            migrate(cfg).await?;
        }
        let primary = pool(&cfg.primary_url, cfg.primary_pool_size, cfg)?;
        let replica = cfg
            .replica_url
            .as_deref()
            .map(|u| pool(u, cfg.replica_pool_size, cfg))
            .transpose()?;
        let store = Self {
            primary,
            replica,
            write_timeout: Duration::from_millis(cfg.write_timeout_ms),
            read_timeout: Duration::from_millis(
                cfg.statement_timeout_ms + cfg.acquire_timeout_ms + cfg.connect_timeout_ms,
            ),
            metrics: PgMetrics {
                fallbacks: IntCounterVec::new(
                    Opts::new(
                        "tessera_store_replica_fallbacks_total",
                        "Reads the local replica could not answer, sent to the primary",
                    ),
                    &["reason"],
                )
                .map_err(|e| e.to_string())?,
                pool: IntGaugeVec::new(
                    Opts::new(
                        "tessera_store_pool_connections",
                        "Database connections by pool and state (waiting = tasks queued)",
                    ),
                    &["pool", "state"],
                )
                .map_err(|e| e.to_string())?,
                staleness: Gauge::with_opts(Opts::new(
                    "tessera_store_replica_staleness_seconds",
                    "Age of the primary's heartbeat as the local replica has it: its replay lag, \
                     plus up to one sweep period, plus the clock skew between the two servers",
                ))
                .map_err(|e| e.to_string())?,
            },
            last_sweep: Mutex::new(None),
            // Heartbeats a few times per staleness bound, so a healthy replica never looks
            // stale; at most every SWEEP_EVERY (each is a write on the primary per node).
            sweep_every: Duration::from_millis(cfg.replica_max_staleness_secs.saturating_mul(250))
                .clamp(Duration::from_millis(250), SWEEP_EVERY),
            max_staleness: cfg.replica_max_staleness_secs as f64,
            keys_from_primary: AtomicBool::new(false),
            must_reach: AtomicU64::new(0),
            primary_failed_at_ms: AtomicU64::new(0),
            heartbeat_failing: AtomicBool::new(false),
            retention_secs: cfg.change_retention_secs as f64,
        };
        for reason in ["miss", "error", "stale"] {
            store.metrics.fallbacks.with_label_values(&[reason]);
        }
        // The schema must be one this binary works on: asked of the primary (a replica may not
        // have replayed a migration yet), or of the replica while there is no primary.
        let want = MIGRATIONS.last().map_or(0, |m| m.version);
        // (version, compatible_from); the column is read through to_jsonb because a
        // schema-1 database (migrated by an older binary) does not have it.
        let have: Option<(i32, i32)> = store
            .primary_first(|c| async move {
                let row = c
                    .query_opt(
                        "SELECT max(version), \
                         coalesce(max((to_jsonb(s) ->> 'compatible_from')::int), 1) \
                         FROM tessera_schema s WHERE to_regclass('tessera_schema') IS NOT NULL",
                        &[],
                    )
                    .await;
                match row {
                    Ok(r) => Ok(r.and_then(|r| r.get::<_, Option<i32>>(0).map(|v| (v, r.get(1))))),
                    // No schema table at all.
                    Err(e)
                        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(unavailable(e)),
                }
            })
            .await
            .map_err(|e| format!("checking the schema: {e}"))?;
        match have {
            Some((v, _)) if v < want => Err(format!(
                "the database schema is at version {v} and this binary needs {want}: run \
                 `tessera migrate` (or set storage.postgres.migrate_on_start)"
            )),
            None => Err(format!(
                "the database has no Tessera schema and this binary needs version {want}: run \
                 `tessera migrate` (or set storage.postgres.migrate_on_start)"
            )),
            // A newer schema that declares itself compatible: a rolling upgrade migrated
            // first, and this node (of the previous version) restarted meanwhile.
            Some((v, from)) if v > want && from <= want => {
                tracing::info!(
                    schema = v,
                    binary = want,
                    "the database schema is newer than this binary (a rolling upgrade)"
                );
                Ok(store)
            }
            Some((v, from)) if v > want => Err(format!(
                "the database schema is at version {v}, which needs a binary of schema \
                 version {from} or later; this one is {want}: upgrade it"
            )),
            Some(_) => Ok(store),
        }
    }

    /// One bounded read on a pool.
    async fn on<T, F, Fut>(&self, pool: &Pool, f: &F) -> Result<T>
    where
        F: Fn(deadpool_postgres::Object) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let run = async {
            let c = pool.get().await.map_err(unavailable)?;
            f(c).await
        };
        tokio::time::timeout(self.read_timeout, run)
            .await
            .map_err(|_| Error::Unavailable("the database did not answer in time".into()))?
    }

    /// Runs a read on the replica, falling back to the primary when the replica fails.
    async fn read<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(deadpool_postgres::Object) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        if let Some(r) = &self.replica {
            match self.on(r, &f).await {
                Ok(v) => return Ok(v),
                Err(e) => tracing::debug!(error = %e, "replica read failed; trying the primary"),
            }
            self.metrics.fallbacks.with_label_values(&["error"]).inc();
        }
        self.on(&self.primary, &f).await
    }

    /// Runs a read on the primary, falling back to the replica when there is no primary:
    /// for answers a lagging replica could get wrong (a content's key list, the schema).
    async fn primary_first<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(deadpool_postgres::Object) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        match (self.on(&self.primary, &f).await, &self.replica) {
            (Ok(v), _) => Ok(v),
            (Err(e), Some(r)) => {
                tracing::debug!(error = %e, "primary read failed; trying the replica");
                self.on(r, &f).await
            }
            (Err(e), None) => Err(e),
        }
    }

    async fn primary_conn(&self) -> Result<Conn> {
        self.primary
            .get()
            .await
            .map(|obj| Conn {
                obj: Some(obj),
                finished: false,
            })
            .map_err(|e| Error::Unavailable(format!("no connection to the primary: {e}")))
    }

    /// Bounds a whole write, synchronous-replication wait included.
    async fn write<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.write_timeout, fut)
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "the primary did not complete the write within {} ms",
                    self.write_timeout.as_millis()
                ))
            })?
    }

    /// Numbers committed, unnumbered changes, one sequencer at a time. A writer (`wait`)
    /// queues for the lock (briefly: a sequencer already running may have started before
    /// the writer's commit, so the writer must run after it); a sweep skips when the lock is
    /// busy, and applies retention when it holds it. Best effort: failures leave rows for the
    /// next run.
    ///
    /// Every run commits with `remote_apply`, sweeps included: the lock is released only
    /// after the synchronous standby applied the numbering, so a writer that got the lock
    /// after a sweep numbered its row (and then numbers nothing, a commit that waits for no
    /// standby) still returns only once its change is visible there.
    async fn sequence(&self, wait: bool) {
        let run = async {
            let mut c = self.primary_conn().await?;
            let mut tx = c.transaction().await.map_err(unavailable)?;
            let locked: bool = if wait {
                tx.batch_execute("SET LOCAL lock_timeout = '2s'")
                    .await
                    .map_err(unavailable)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_SEQUENCER])
                    .await
                    .map_err(unavailable)?;
                true
            } else {
                tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_SEQUENCER])
                    .await
                    .map_err(unavailable)?
                    .get(0)
            };
            if locked {
                // In id order: within one run the numbering order does not matter (the
                // batch commits at once); across runs every number is higher.
                tx.execute(
                    "WITH o AS MATERIALIZED ( \
                       SELECT id FROM tessera_changes WHERE seq IS NULL ORDER BY id LIMIT 10000 \
                     ), n AS MATERIALIZED ( \
                       SELECT id, nextval('tessera_change_seq') AS seq FROM o \
                     ) UPDATE tessera_changes c SET seq = n.seq, numbered_at = now() \
                     FROM n WHERE c.id = n.id",
                    &[],
                )
                .await
                .map_err(unavailable)?;
            }
            if locked && !wait {
                // In a savepoint: a failed retention must not undo the numbering.
                let sp = tx.savepoint("prune").await.map_err(unavailable)?;
                match self.prune(&sp).await {
                    Ok(()) => sp.commit().await.map_err(unavailable)?,
                    Err(e) => {
                        tracing::warn!(error = %e, "change-feed retention failed");
                        sp.rollback().await.map_err(unavailable)?;
                    }
                }
            }
            tx.commit().await.map_err(unavailable)?;
            c.finish();
            Ok(())
        };
        if let Err(e) = self.write(run).await {
            tracing::debug!(error = %e, "change sequencer did not run");
        }
    }

    /// [`KeyStore::changes_since`] without the sweep.
    async fn read_changes(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
        let cursor_i = i64_of(cursor, "cursor")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let q = |c: deadpool_postgres::Object| async move { read_feed(&c, cursor_i, limit).await };
        let mut feed = self.read(&q).await?;
        if self.replica.is_some() {
            // A replica that stopped replaying still answers, with revocations missing: past
            // the bound the feed comes from the primary. If the primary does not answer
            // either, the replica is all there is.
            let mut primary = feed.from_primary; // read() fell back: the replica failed
            let mut primary_failed = false;
            // The gauge is the replica's own lag as read from it; when the replica did not
            // answer (or is itself a primary now, after a promotion) there is none to show:
            // 0, and `fallbacks{reason="error"}` counts the failures.
            self.metrics.staleness.set(if primary {
                0.0
            } else {
                feed.heartbeat_age.unwrap_or(0.0)
            });
            let stale = !primary
                && feed
                    .heartbeat_age
                    .is_some_and(|age| age > self.max_staleness);
            if stale {
                self.metrics.fallbacks.with_label_values(&["stale"]).inc();
                match self.on(&self.primary, &q).await {
                    Ok(f) => {
                        feed = f;
                        primary = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "stale replica and no primary");
                        self.note_primary_failure();
                        primary_failed = true;
                    }
                }
            }
            if primary {
                let reached = feed.changes.last().map_or(cursor, |c| c.seq);
                self.must_reach.fetch_max(reached, Ordering::Relaxed);
            }
            // Key reads follow: from the primary while the replica is behind what this node
            // applied, unless the primary just failed (then a primary outage costs licences
            // nothing: they read the replica, the best there is).
            let behind = primary || feed.max_seq < self.must_reach.load(Ordering::Relaxed);
            self.keys_from_primary
                .store(behind && !primary_failed, Ordering::Relaxed);
        }
        // A primary without the changes this node has seen: a failover to a standby that
        // was behind (promote the most advanced standby, docs/replication.md). Its sequence may
        // hand out numbers this node has passed, so the feed starts again from its end.
        if feed.from_primary && feed.max_seq < cursor {
            return Err(Error::FeedReset {
                resume_at: feed.max_seq,
            });
        }
        if cursor < feed.pruned_through {
            return Err(Error::FeedReset {
                resume_at: feed.pruned_through,
            });
        }
        Ok(feed.changes)
    }

    fn note_primary_failure(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.primary_failed_at_ms.store(now, Ordering::Relaxed);
    }

    /// A primary operation failed in the last few seconds.
    fn primary_suspect(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        now.saturating_sub(self.primary_failed_at_ms.load(Ordering::Relaxed)) < 5_000
    }

    /// Writes the primary's clock to the heartbeat that replicas' readers compare with their
    /// own (one round trip). Committed without waiting for a synchronous standby: nothing
    /// here is acknowledged to a client, and a heartbeat that waited for the synchronous
    /// standby would stop when that standby does, making every replica look stale.
    async fn heartbeat(&self) -> bool {
        let run = async {
            let mut c = self.primary_conn().await?;
            // `at = excluded.at`, not `greatest`: a clock that jumped ahead once must not
            // freeze the heartbeat (a few milliseconds back between nodes is harmless).
            c.batch_execute(
                "BEGIN; SET LOCAL synchronous_commit = local; \
                 INSERT INTO tessera_heartbeat (id, at) VALUES (1, clock_timestamp()) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at; \
                 COMMIT",
            )
            .await
            .map_err(unavailable)?;
            c.finish();
            Ok(())
        };
        match self.write(run).await {
            Ok(()) => {
                if self.heartbeat_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the heartbeat is written again");
                }
                true
            }
            Err(e) => {
                self.note_primary_failure();
                // Once per outage: every replica will look stale while it lasts.
                if !self.heartbeat_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "the replica heartbeat cannot be written on the primary");
                }
                false
            }
        }
    }

    /// Retention: deletes the oldest numbered changes, up to (not including) the first one
    /// numbered less than `change_retention_secs` ago, and raises `pruned_through` to the
    /// last one deleted. A prefix in `seq` order, so everything at or below `pruned_through`
    /// is gone and everything above it is still there.
    async fn prune(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
        let floor: i64 = tx
            .query_opt(
                "SELECT pruned_through FROM tessera_feed_state WHERE id = 1",
                &[],
            )
            .await
            .map_err(unavailable)?
            .map_or(0, |r| r.get(0));
        let bound: Option<i64> = tx
            .query_one(
                "WITH s AS MATERIALIZED ( \
                   SELECT seq, coalesce(numbered_at, at) AS at FROM tessera_changes \
                   WHERE seq > $1 ORDER BY seq LIMIT $2 \
                 ) SELECT max(seq) FROM s WHERE seq < coalesce( \
                   (SELECT min(seq) FROM s WHERE at >= now() - make_interval(secs => $3)), \
                   9223372036854775807)",
                &[&floor, &PRUNE_BATCH, &self.retention_secs],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        if let Some(bound) = bound {
            tx.execute(
                "DELETE FROM tessera_changes WHERE seq > $1 AND seq <= $2",
                &[&floor, &bound],
            )
            .await
            .map_err(unavailable)?;
            tx.execute(
                "INSERT INTO tessera_feed_state (id, pruned_through) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET pruned_through = excluded.pruned_through",
                &[&bound],
            )
            .await
            .map_err(unavailable)?;
        }
        Ok(())
    }
}

/// One read of the change feed: its state and the changes after a cursor, in one statement
/// (one snapshot, so the state and the rows agree).
struct Feed {
    /// The highest `seq` retention deleted.
    pruned_through: u64,
    /// Seconds since the primary's last heartbeat, by this server's clock (negative with
    /// clock skew); `None` without a heartbeat row.
    heartbeat_age: Option<f64>,
    /// Read from a primary (not a server in recovery).
    from_primary: bool,
    /// The highest `seq` this server has (or has deleted).
    max_seq: u64,
    changes: Vec<Change>,
}

async fn read_feed(c: &tokio_postgres::Client, cursor: i64, limit: i64) -> Result<Feed> {
    // `(SELECT 1) one` keeps a row when the state rows are missing (then: nothing pruned,
    // no heartbeat).
    let rows = c
        .query(
            "SELECT coalesce(f.pruned_through, 0), \
                    extract(epoch FROM now() - h.at)::float8, \
                    NOT pg_is_in_recovery(), \
                    greatest(coalesce((SELECT max(seq) FROM tessera_changes), 0), \
                             coalesce(f.pruned_through, 0)), \
                    c.seq, c.tenant, c.kid, c.kind \
             FROM (SELECT 1) one \
             LEFT JOIN tessera_feed_state f ON f.id = 1 \
             LEFT JOIN tessera_heartbeat h ON h.id = 1 \
             LEFT JOIN LATERAL ( \
               SELECT seq, tenant, kid, kind FROM tessera_changes \
               WHERE seq > $1 ORDER BY seq LIMIT $2 \
             ) c ON true ORDER BY c.seq",
            &[&cursor, &limit],
        )
        .await
        .map_err(unavailable)?;
    let first = rows
        .first()
        .ok_or_else(|| Error::Corrupt("the feed query returned no row".into()))?;
    let mut changes = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(seq) = r.get::<_, Option<i64>>(4) else {
            continue;
        };
        let kid: Vec<u8> = r.get(6);
        changes.push(Change {
            seq: u64_of(seq)?,
            tenant: r.get(5),
            kid: KeyId::from_bytes(
                kid.try_into()
                    .map_err(|_| Error::Corrupt("kid length".into()))?,
            ),
            kind: match r.get::<_, i16>(7) {
                0 => ChangeKind::Created,
                _ => ChangeKind::Revoked,
            },
        });
    }
    Ok(Feed {
        pruned_through: u64_of(first.get(0))?,
        heartbeat_age: first.get(1),
        from_primary: first.get(2),
        max_seq: u64_of(first.get(3))?,
        changes,
    })
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn insert_keys(
        &self,
        tenant: &str,
        records: Vec<KeyRecord>,
        same_key: SameKey,
    ) -> Result<Vec<Inserted>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .write(async {
                let mut c = self.primary_conn().await?;
                let tx = c.transaction().await.map_err(unavailable)?;
                let mut kids = Vec::with_capacity(records.len());
                let mut contents = Vec::with_capacity(records.len());
                let mut tracks = Vec::with_capacity(records.len());
                let mut periods = Vec::with_capacity(records.len());
                let mut created = Vec::with_capacity(records.len());
                let mut revoked = Vec::with_capacity(records.len());
                let mut sealed = Vec::with_capacity(records.len());
                // Rows in KID order, so two batches sharing KIDs lock them in the same order
                // (no deadlock); the answer keeps the caller's order.
                let mut sorted: Vec<&KeyRecord> = records.iter().collect();
                sorted.sort_by_key(|r| r.meta.kid);
                sorted.dedup_by_key(|r| r.meta.kid);
                for r in sorted {
                    kids.push(r.meta.kid.as_bytes().to_vec());
                    contents.push(r.meta.content_id.as_str());
                    tracks.push(track_code(r.meta.track));
                    periods.push(r.meta.period.map(|p| i64_of(p, "period")).transpose()?);
                    created.push(i64_of(r.meta.created_at, "created_at")?);
                    revoked.push(match r.meta.state {
                        KeyState::Active => None,
                        KeyState::Revoked { at } => Some(i64_of(at, "revoked_at")?),
                    });
                    sealed.push(r.sealed.as_slice());
                }
                // Insert what is new; a KID that exists (or that a racing transaction
                // commits first: ON CONFLICT waits for it) is left alone and checked below.
                let rows = tx
                    .query(
                        "INSERT INTO tessera_keys (tenant, kid, content_id, track, period, \
                         created_at, revoked_at, sealed) \
                         SELECT $1, * FROM unnest($2::bytea[], $3::text[], $4::int2[], \
                         $5::int8[], $6::int8[], $7::int8[], $8::bytea[]) \
                         ON CONFLICT (tenant, kid) DO NOTHING RETURNING kid",
                        &[
                            &tenant, &kids, &contents, &tracks, &periods, &created, &revoked,
                            &sealed,
                        ],
                    )
                    .await
                    .map_err(unavailable)?;
                let new: std::collections::HashSet<Vec<u8>> =
                    rows.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect();
                let old: Vec<Vec<u8>> = kids.iter().filter(|k| !new.contains(*k)).cloned().collect();
                let mut existing = std::collections::HashMap::new();
                if !old.is_empty() {
                    for row in tx
                        .query(
                            &format!(
                                "SELECT {COLUMNS} FROM tessera_keys WHERE tenant = $1 AND kid = ANY($2) \
                                 ORDER BY kid FOR SHARE"
                            ),
                            &[&tenant, &old],
                        )
                        .await
                        .map_err(unavailable)?
                    {
                        let rec = record(&row)?;
                        existing.insert(rec.meta.kid, rec);
                    }
                }
                let mut out: Vec<Inserted> = Vec::with_capacity(records.len());
                for r in records {
                    // A KID twice in one batch: the second gets the first's outcome.
                    if let Some(first) = out.iter().find(|i| i.record.meta.kid == r.meta.kid) {
                        let first = first.record.clone();
                        if first.meta.content_id != r.meta.content_id || !same_key(&first, &r) {
                            return Err(Error::Conflict(r.meta.kid));
                        }
                        out.push(Inserted {
                            record: first,
                            created: false,
                        });
                        continue;
                    }
                    match existing.remove(&r.meta.kid) {
                        Some(o) if o.meta.content_id == r.meta.content_id && same_key(&o, &r) => {
                            out.push(Inserted {
                                record: o,
                                created: false,
                            });
                        }
                        // Dropping the transaction rolls the whole batch back.
                        Some(_) => return Err(Error::Conflict(r.meta.kid)),
                        None if new.contains(&r.meta.kid.as_bytes()[..]) => out.push(Inserted {
                            record: r,
                            created: true,
                        }),
                        // Neither inserted nor found: deleted in between (nothing deletes
                        // keys), so refuse rather than guess.
                        None => return Err(Error::Conflict(r.meta.kid)),
                    }
                }
                let fresh: Vec<&Vec<u8>> = kids.iter().filter(|k| new.contains(*k)).collect();
                if !fresh.is_empty() {
                    tx.execute(
                        "INSERT INTO tessera_changes (tenant, kid, kind) \
                         SELECT $1, unnest($2::bytea[]), 0",
                        &[&tenant, &fresh],
                    )
                    .await
                    .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)?;
                c.finish();
                Ok(out)
            })
            .await?;
        if out.iter().any(|i| i.created) {
            self.sequence(true).await;
        }
        Ok(out)
    }

    async fn get_keys(&self, tenant: &str, kids: &[KeyId]) -> Result<Vec<Option<KeyRecord>>> {
        let lookup = |c: deadpool_postgres::Object, want: Vec<Vec<u8>>| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM tessera_keys WHERE tenant = $1 AND kid = ANY($2)"
                    ),
                    &[&tenant, &want],
                )
                .await
                .map_err(unavailable)?;
            rows.iter().map(record).collect::<Result<Vec<_>>>()
        };
        let all: Vec<Vec<u8>> = kids.iter().map(|k| k.as_bytes().to_vec()).collect();
        // A stale replica may still show a revoked key as active: ask the primary while the
        // last poll found the replica behind and the primary answering (the replica if the
        // primary stopped answering since).
        let stale = self.keys_from_primary.load(Ordering::Relaxed) && !self.primary_suspect();
        let rows = if stale {
            self.metrics.fallbacks.with_label_values(&["stale"]).inc();
            match self.on(&self.primary, &|c| lookup(c, all.clone())).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::debug!(error = %e, "primary read failed; reading the replica");
                    self.note_primary_failure();
                    self.read(|c| lookup(c, all.clone())).await?
                }
            }
        } else {
            self.read(|c| lookup(c, all.clone())).await?
        };
        let mut found: std::collections::HashMap<KeyId, KeyRecord> =
            rows.into_iter().map(|r| (r.meta.kid, r)).collect();
        let missing: Vec<Vec<u8>> = kids
            .iter()
            .filter(|k| !found.contains_key(k))
            .map(|k| k.as_bytes().to_vec())
            .collect();
        if !missing.is_empty() && self.replica.is_some() && !stale && !self.primary_suspect() {
            // Not on the replica yet (lag), or not at all: the primary decides.
            self.metrics.fallbacks.with_label_values(&["miss"]).inc();
            let missing = &missing;
            for r in self
                .on(&self.primary, &|c| lookup(c, missing.clone()))
                .await?
            {
                found.insert(r.meta.kid, r);
            }
        }
        Ok(kids.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn list_by_content(&self, tenant: &str, content_id: &str) -> Result<Vec<KeyRecord>> {
        let q = format!(
            "SELECT {COLUMNS} FROM tessera_keys WHERE tenant = $1 AND content_id = $2 \
             ORDER BY period NULLS FIRST, track NULLS FIRST, kid"
        );
        let run = |c: deadpool_postgres::Object| {
            let q = q.clone();
            async move {
                let rows = c
                    .query(&q, &[&tenant, &content_id])
                    .await
                    .map_err(unavailable)?;
                rows.iter().map(record).collect::<Result<Vec<_>>>()
            }
        };
        // Primary first: provisioning decides from this list (a lagging replica could miss
        // a key or show a revoked one active); the replica answers while there is no primary.
        self.primary_first(run).await
    }

    async fn revoke(&self, tenant: &str, kid: KeyId, at: u64) -> Result<Option<KeyRecord>> {
        let at = i64_of(at, "revoked_at")?;
        let (rec, changed) = self
            .write(async {
                let mut c = self.primary_conn().await?;
                let tx = c.transaction().await.map_err(unavailable)?;
                let k = kid.as_bytes().to_vec();
                let Some(row) = tx
                    .query_opt(
                        &format!(
                            "SELECT {COLUMNS} FROM tessera_keys WHERE tenant = $1 AND kid = $2 FOR UPDATE"
                        ),
                        &[&tenant, &k],
                    )
                    .await
                    .map_err(unavailable)?
                else {
                    // Nothing written: the rollback is queued on a healthy connection.
                    drop(tx);
                    c.finish();
                    return Ok((None, false));
                };
                let mut rec = record(&row)?;
                if !rec.meta.is_active() {
                    drop(tx);
                    c.finish();
                    return Ok((Some(rec), false));
                }
                tx.execute(
                    "UPDATE tessera_keys SET revoked_at = $3 WHERE tenant = $1 AND kid = $2",
                    &[&tenant, &k, &at],
                )
                .await
                .map_err(unavailable)?;
                tx.execute(
                    "INSERT INTO tessera_changes (tenant, kid, kind) VALUES ($1, $2, 1)",
                    &[&tenant, &k],
                )
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                c.finish();
                rec.meta.state = KeyState::Revoked { at: u64_of(at)? };
                Ok((Some(rec), true))
            })
            .await?;
        if changed {
            self.sequence(true).await;
        }
        Ok(rec)
    }

    async fn changes_since(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
        let result = self.read_changes(cursor, limit).await;
        // The sweep comes after the read, so it never delays a poll's revocations.
        let due = {
            let mut last = self
                .last_sweep
                .lock()
                .map_err(|_| Error::Unavailable("sweep lock poisoned".into()))?;
            let due = last.is_none_or(|t| t.elapsed() >= self.sweep_every);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        // A primary that cannot take the heartbeat will not take the rest either: one
        // timeout per sweep, not three.
        if due && self.heartbeat().await {
            self.sequence(false).await;
            let purge = async {
                let mut c = self.primary_conn().await?;
                c.execute(
                    "DELETE FROM tessera_token_uses WHERE expires_at < $1",
                    &[&i64_of(unix_now(), "now")?],
                )
                .await
                .map_err(unavailable)?;
                c.finish();
                Ok(())
            };
            if let Err(e) = self.write(purge).await {
                tracing::debug!(error = %e, "expired token uses not purged");
            }
        }
        result
    }

    async fn change_cursor(&self) -> Result<u64> {
        self.read(|c| async move {
            // Retention may have deleted every row; the cursor never goes below what it
            // deleted (a fresh node would otherwise look truncated).
            let v: i64 = c
                .query_one(
                    "SELECT greatest(coalesce((SELECT max(seq) FROM tessera_changes), 0), \
                     (SELECT pruned_through FROM tessera_feed_state WHERE id = 1))",
                    &[],
                )
                .await
                .map_err(unavailable)?
                .get(0);
            u64_of(v)
        })
        .await
    }

    async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let q = |c: deadpool_postgres::Object| async move {
            Ok(
                c.query_opt("SELECT value FROM tessera_meta WHERE name = $1", &[&name])
                    .await
                    .map_err(unavailable)?
                    .map(|r| r.get::<_, Vec<u8>>(0)),
            )
        };
        match self.read(q).await? {
            Some(v) => Ok(Some(v)),
            None if self.replica.is_some() => self.on(&self.primary, &q).await,
            None => Ok(None),
        }
    }

    async fn meta_put_if_absent(&self, name: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        self.write(async {
            let mut c = self.primary_conn().await?;
            c.execute(
                "INSERT INTO tessera_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )
            .await
            .map_err(unavailable)?;
            let value = c
                .query_one("SELECT value FROM tessera_meta WHERE name = $1", &[&name])
                .await
                .map_err(unavailable)?
                .get::<_, Vec<u8>>(0);
            c.finish();
            Ok(value)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        // Readiness follows the reads this node serves: the replica when there is one, so a
        // node keeps taking licence traffic while the primary fails over.
        self.read(|c| async move {
            c.query_one("SELECT 1", &[]).await.map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn record_token_use(
        &self,
        tenant: &str,
        jti: &str,
        max_uses: u32,
        expires_at: u64,
    ) -> Result<Option<bool>> {
        if max_uses == 0 {
            return Ok(Some(false));
        }
        let max = i32::try_from(max_uses).unwrap_or(i32::MAX);
        let exp = i64_of(expires_at, "expires_at")?;
        self.write(async {
            let mut c = self.primary_conn().await?;
            // One statement: the first use inserts, later ones count up to the limit; a row
            // lock orders racing nodes.
            let row = c
                .query_opt(
                    "INSERT INTO tessera_token_uses (tenant, jti, uses, expires_at) \
                     VALUES ($1, $2, 1, $3) ON CONFLICT (tenant, jti) DO UPDATE \
                     SET uses = tessera_token_uses.uses + 1 \
                     WHERE tessera_token_uses.uses < $4 RETURNING uses",
                    &[&tenant, &jti, &exp, &max],
                )
                .await
                .map_err(unavailable)?;
            c.finish();
            Ok(Some(row.is_some()))
        })
        .await
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        let mut c: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.metrics.fallbacks.clone()),
            Box::new(self.metrics.pool.clone()),
        ];
        // Only a node with a replica has a staleness to report.
        if self.replica.is_some() {
            c.push(Box::new(self.metrics.staleness.clone()));
        }
        c
    }

    fn observe(&self) {
        for (name, p) in [
            ("primary", Some(&self.primary)),
            ("replica", self.replica.as_ref()),
        ] {
            if let Some(p) = p {
                let s = p.status();
                let g = |state: &str| self.metrics.pool.with_label_values(&[name, state]);
                g("in_use").set(i64::try_from(s.size.saturating_sub(s.available)).unwrap_or(0));
                g("idle").set(i64::try_from(s.available).unwrap_or(0));
                g("max").set(i64::try_from(s.max_size).unwrap_or(0));
                g("waiting").set(i64::try_from(s.waiting).unwrap_or(0));
            }
        }
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
