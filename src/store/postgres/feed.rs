//! The change feed (`docs/replication.md`): the sequencer that numbers committed changes, the
//! heartbeat that shows how stale a replica is, retention, and reading the feed with the
//! fallback to the primary when the replica is stale.

use super::queries::{i64_of, u64_of};
use super::{PostgresStore, unavailable};
use crate::keyring::KeyId;
use crate::store::{Change, ChangeKind, Error, Result};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Advisory-lock key of the sequencer (arbitrary, fixed; migrations have their own).
const LOCK_SEQUENCER: i64 = 0x7e55_e4a0_0002;
/// Longest time between two sweeps of one node (numbering stragglers, the heartbeat,
/// retention); shorter when `replica_max_staleness_secs` asks for a finer heartbeat.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Most change rows one sweep deletes (retention catches up over several sweeps).
const PRUNE_BATCH: i64 = 10_000;

impl PostgresStore {
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
    pub(super) async fn sequence(&self, wait: bool) {
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
    pub(super) async fn read_changes(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
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

    /// Writes the primary's clock to the heartbeat that replicas' readers compare with their
    /// own (one round trip). Committed without waiting for a synchronous standby: nothing
    /// here is acknowledged to a client, and a heartbeat that waited for the synchronous
    /// standby would stop when that standby does, making every replica look stale.
    pub(super) async fn heartbeat(&self) -> bool {
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
