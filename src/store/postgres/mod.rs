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
//!
//! Files: `config.rs` (`[storage.postgres]` and its checks), `pool.rs` (connection pools and
//! the bounded read and write paths over them), `migrations.rs` (the schema and
//! `tessera migrate`), `feed.rs` (the sequencer, the heartbeat, retention and reading the
//! change feed), `queries.rs` (row mapping); this file holds the store and its [`KeyStore`]
//! implementation.

mod config;
mod feed;
mod migrations;
mod pool;
mod queries;

pub use config::PostgresConfig;
pub use migrations::{MIGRATIONS, Migration, migrate};

use super::{Change, Error, Inserted, KeyRecord, KeyStore, Result, SameKey};
use crate::keyring::{KeyId, KeyState};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use feed::SWEEP_EVERY;
use pool::pool;
use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts};
use queries::{COLUMNS, i64_of, record, track_code, u64_of};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

impl PostgresStore {
    /// Connects (lazily: pools open connections on first use) and checks the schema, or
    /// migrates it when `migrate_on_start`.
    pub async fn connect(cfg: &PostgresConfig) -> std::result::Result<Self, String> {
        cfg.check().map_err(|e| e.to_string())?;
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
