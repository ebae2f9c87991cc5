//! Embedded backend on redb: one file in the data directory, crash-safe (copy-on-write B-trees
//! with checksummed commits), pure Rust. Each write transaction commits with
//! `Durability::Immediate`, i.e. fsync before `insert_keys`/`revoke` return.
//!
//! redb is synchronous; every operation runs on tokio's blocking pool so the reactor threads
//! never wait on disk.

use super::{Change, ChangeKind, Error, Inserted, KeyRecord, KeyStore, Result, SameKey};
use crate::keyring::{KeyId, KeyMeta};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

/// (tenant, kid) -> JSON of [`StoredKey`].
const KEYS: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("keys");
/// (tenant, content id, kid) -> () : secondary index for `list_by_content`.
const BY_CONTENT: TableDefinition<(&str, &str, &[u8]), ()> =
    TableDefinition::new("keys_by_content");
/// seq -> JSON of [`Change`].
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
/// name -> bytes.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The on-disk shape of a key row.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    meta: KeyMeta,
    sealed: String,
}

fn encode(rec: &KeyRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(&StoredKey {
        meta: rec.meta.clone(),
        sealed: crate::encoding::b64_encode(&rec.sealed),
    })
    .map_err(|e| Error::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<KeyRecord> {
    let s: StoredKey = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(e.to_string()))?;
    let sealed =
        crate::encoding::b64_decode(&s.sealed).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(KeyRecord {
        meta: s.meta,
        sealed,
    })
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

/// The embedded (single-node) key store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/tessera.redb`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<Self> {
        // The directory holds sealed keys and, in dev mode, the master key: owner-only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(unavailable)?;
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(data_dir = %dir.display(), "data directory is accessible to other users; chmod 700 it");
        }
        let db = Database::create(dir.join("tessera.redb")).map_err(unavailable)?;
        let tx = db.begin_write().map_err(unavailable)?;
        {
            // Create the tables up front so readers never see "table does not exist".
            tx.open_table(KEYS).map_err(unavailable)?;
            tx.open_table(BY_CONTENT).map_err(unavailable)?;
            tx.open_table(CHANGES).map_err(unavailable)?;
            tx.open_table(META).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(unavailable)?
    }
}

/// A write transaction that fsyncs on commit: a write returns only once it is durable.
fn durable_write(db: &Database) -> Result<redb::WriteTransaction> {
    let mut tx = db.begin_write().map_err(unavailable)?;
    tx.set_durability(redb::Durability::Immediate)
        .map_err(unavailable)?;
    Ok(tx)
}

fn append_change(
    changes: &mut redb::Table<u64, &[u8]>,
    tenant: &str,
    kid: KeyId,
    kind: ChangeKind,
) -> Result<()> {
    let seq = changes
        .last()
        .map_err(unavailable)?
        .map_or(0, |(k, _)| k.value())
        + 1;
    let change = Change {
        seq,
        tenant: tenant.to_owned(),
        kid,
        kind,
    };
    let bytes = serde_json::to_vec(&change).map_err(|e| Error::Corrupt(e.to_string()))?;
    changes.insert(seq, bytes.as_slice()).map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl KeyStore for EmbeddedStore {
    async fn insert_keys(
        &self,
        tenant: &str,
        records: Vec<KeyRecord>,
        same_key: SameKey,
    ) -> Result<Vec<Inserted>> {
        let tenant = tenant.to_owned();
        self.blocking(move |db| {
            let tx = durable_write(db)?;
            let mut out = Vec::with_capacity(records.len());
            {
                let mut keys = tx.open_table(KEYS).map_err(unavailable)?;
                let mut by_content = tx.open_table(BY_CONTENT).map_err(unavailable)?;
                let mut changes = tx.open_table(CHANGES).map_err(unavailable)?;
                for rec in records {
                    let kid = rec.meta.kid;
                    let existing = keys
                        .get((tenant.as_str(), &kid.as_bytes()[..]))
                        .map_err(unavailable)?
                        .map(|v| decode(v.value()))
                        .transpose()?;
                    match existing {
                        Some(old)
                            if old.meta.content_id == rec.meta.content_id
                                && same_key(&old, &rec) =>
                        {
                            out.push(Inserted {
                                record: old,
                                created: false,
                            });
                        }
                        // Dropping `tx` without commit aborts the whole batch.
                        Some(_) => return Err(Error::Conflict(kid)),
                        None => {
                            let bytes = encode(&rec)?;
                            keys.insert((tenant.as_str(), &kid.as_bytes()[..]), bytes.as_slice())
                                .map_err(unavailable)?;
                            by_content
                                .insert(
                                    (
                                        tenant.as_str(),
                                        rec.meta.content_id.as_str(),
                                        &kid.as_bytes()[..],
                                    ),
                                    (),
                                )
                                .map_err(unavailable)?;
                            append_change(&mut changes, &tenant, kid, ChangeKind::Created)?;
                            out.push(Inserted {
                                record: rec,
                                created: true,
                            });
                        }
                    }
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }

    async fn get_keys(&self, tenant: &str, kids: &[KeyId]) -> Result<Vec<Option<KeyRecord>>> {
        let tenant = tenant.to_owned();
        let kids = kids.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let keys = tx.open_table(KEYS).map_err(unavailable)?;
            kids.iter()
                .map(|kid| {
                    keys.get((tenant.as_str(), &kid.as_bytes()[..]))
                        .map_err(unavailable)?
                        .map(|v| decode(v.value()))
                        .transpose()
                })
                .collect()
        })
        .await
    }

    async fn list_by_content(&self, tenant: &str, content_id: &str) -> Result<Vec<KeyRecord>> {
        let tenant = tenant.to_owned();
        let content_id = content_id.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let index = tx.open_table(BY_CONTENT).map_err(unavailable)?;
            let keys = tx.open_table(KEYS).map_err(unavailable)?;
            let lo: (&str, &str, &[u8]) = (&tenant, &content_id, &[]);
            let hi: (&str, &str, &[u8]) = (&tenant, &content_id, &[0xff; 17]);
            let mut out = Vec::new();
            for entry in index.range(lo..hi).map_err(unavailable)? {
                let (k, _) = entry.map_err(unavailable)?;
                let (_, _, kid) = k.value();
                if let Some(v) = keys.get((tenant.as_str(), kid)).map_err(unavailable)? {
                    out.push(decode(v.value())?);
                }
            }
            out.sort_by(|a, b| {
                (a.meta.period, a.meta.track, a.meta.kid).cmp(&(
                    b.meta.period,
                    b.meta.track,
                    b.meta.kid,
                ))
            });
            Ok(out)
        })
        .await
    }

    async fn revoke(&self, tenant: &str, kid: KeyId, at: u64) -> Result<Option<KeyRecord>> {
        let tenant = tenant.to_owned();
        self.blocking(move |db| {
            let tx = durable_write(db)?;
            let result = {
                let mut keys = tx.open_table(KEYS).map_err(unavailable)?;
                let mut changes = tx.open_table(CHANGES).map_err(unavailable)?;
                let existing = keys
                    .get((tenant.as_str(), &kid.as_bytes()[..]))
                    .map_err(unavailable)?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                match existing {
                    None => None,
                    Some(rec) if !rec.meta.is_active() => Some(rec),
                    Some(mut rec) => {
                        rec.meta.state = crate::keyring::KeyState::Revoked { at };
                        let bytes = encode(&rec)?;
                        keys.insert((tenant.as_str(), &kid.as_bytes()[..]), bytes.as_slice())
                            .map_err(unavailable)?;
                        append_change(&mut changes, &tenant, kid, ChangeKind::Revoked)?;
                        Some(rec)
                    }
                }
            };
            tx.commit().map_err(unavailable)?;
            Ok(result)
        })
        .await
    }

    async fn changes_since(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let changes = tx.open_table(CHANGES).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in changes
                .range(cursor.saturating_add(1)..)
                .map_err(unavailable)?
                .take(limit)
            {
                let (_, v) = entry.map_err(unavailable)?;
                out.push(
                    serde_json::from_slice(v.value()).map_err(|e| Error::Corrupt(e.to_string()))?,
                );
            }
            Ok(out)
        })
        .await
    }

    async fn change_cursor(&self) -> Result<u64> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let changes = tx.open_table(CHANGES).map_err(unavailable)?;
            Ok(changes
                .last()
                .map_err(unavailable)?
                .map_or(0, |(k, _)| k.value()))
        })
        .await
    }

    async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let meta = tx.open_table(META).map_err(unavailable)?;
            Ok(meta
                .get(name.as_str())
                .map_err(unavailable)?
                .map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn meta_put_if_absent(&self, name: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let tx = durable_write(db)?;
            let stored = {
                let mut meta = tx.open_table(META).map_err(unavailable)?;
                let existing = meta
                    .get(name.as_str())
                    .map_err(unavailable)?
                    .map(|v| v.value().to_vec());
                match existing {
                    Some(v) => v,
                    None => {
                        meta.insert(name.as_str(), value.as_slice())
                            .map_err(unavailable)?;
                        value
                    }
                }
            };
            tx.commit().map_err(unavailable)?;
            Ok(stored)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(unavailable)?;
            tx.open_table(META).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// One node owns an embedded store, so the app's in-process count is exact.
    async fn record_token_use(
        &self,
        _tenant: &str,
        _jti: &str,
        _max_uses: u32,
        _expires_at: u64,
    ) -> Result<Option<bool>> {
        Ok(None)
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn embedded_store_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::EmbeddedStore::open(dir.path()).unwrap();
        crate::store::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn embedded_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = super::EmbeddedStore::open(dir.path()).unwrap();
            crate::store::conformance::write_fixture(&store).await;
        }
        let store = super::EmbeddedStore::open(dir.path()).unwrap();
        crate::store::conformance::check_fixture(&store).await;
    }
}
