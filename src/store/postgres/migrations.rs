//! Schema migrations: the SQL files in `migrations/`, applied in order under an advisory lock
//! by `tessera migrate` or `migrate_on_start`.

use super::config::PostgresConfig;
use super::pool::pool;

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
        sql: include_str!("migrations/001_init.sql"),
    },
    Migration {
        version: 2,
        compatible_from: 1,
        sql: include_str!("migrations/002_feed_state.sql"),
    },
];

/// Advisory-lock key of migrations (arbitrary, fixed; the sequencer has its own).
const LOCK_MIGRATE: i64 = 0x7e55_e4a0_0001;

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
