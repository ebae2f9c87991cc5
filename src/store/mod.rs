//! Durable key storage: the [`KeyStore`] trait its backends implement (embedded, PostgreSQL),
//! the [`Store`] handle the rest of Tessera calls them through (timing and counting every
//! call), and the conformance suite every backend passes.
//!
//! The trait is shaped for the PostgreSQL backend that follows (`docs/architecture.md`, "Keys and
//! storage"): async, batched reads (`get_keys` takes many KIDs: one round trip), an
//! idempotent insert keyed on `(tenant, kid)` so concurrent creators converge, and a change
//! feed (`changes_since`) that nodes poll to drop revoked keys from their caches (NOTIFY does
//! not reach standbys). The store only ever sees *sealed* key bytes.

pub mod conformance;
mod embedded;
pub mod postgres;

pub use embedded::EmbeddedStore;
pub use postgres::{PostgresConfig, PostgresStore};

use crate::keyring::{KeyId, KeyMeta};
use async_trait::async_trait;

/// Errors of the store module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend cannot be reached or failed an operation; the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A KID already exists for this tenant with a different content id.
    #[error("key id {0} already exists for another content id")]
    Conflict(KeyId),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The change feed does not continue from the cursor: retention deleted changes after
    /// it, or the database failed over to one that had not seen them. The poller must drop
    /// what it cached (it may have missed revocations) and go on from `resume_at`.
    #[error("the change feed does not continue from the cursor; resume at {resume_at}")]
    FeedReset {
        /// Where the feed continues.
        resume_at: u64,
    },
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, Error>;

/// A key as stored: metadata in clear, key bytes sealed by the keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// Metadata (not secret).
    pub meta: KeyMeta,
    /// The sealed key (see `keyring::Keyring::seal`).
    pub sealed: Vec<u8>,
}

/// Whether an existing record and a new one for the same KID hold the same key bytes. The
/// store cannot tell (it only sees sealed keys under random nonces), so the keyring answers.
pub type SameKey = std::sync::Arc<dyn Fn(&KeyRecord, &KeyRecord) -> bool + Send + Sync>;

/// A [`SameKey`] for callers whose KIDs identify their key by construction (derived KIDs).
pub fn any_key() -> SameKey {
    std::sync::Arc::new(|_, _| true)
}

/// Outcome of inserting one record.
#[derive(Clone, Debug)]
pub struct Inserted {
    /// The record now stored: the new one, or the one that was already there.
    pub record: KeyRecord,
    /// False when the KID already existed (same content id) and nothing was written.
    pub created: bool,
}

/// What happened to a key, as seen on the change feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A key was created.
    Created,
    /// A key was revoked.
    Revoked,
}

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// Monotonic sequence number (the cursor for the next poll).
    pub seq: u64,
    /// Tenant of the key.
    pub tenant: String,
    /// The key.
    pub kid: KeyId,
    /// What happened.
    pub kind: ChangeKind,
}

/// A key store backend. Every write returns only once it is durable.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Inserts records atomically (all or none). A KID that already exists for the tenant with
    /// the same content id and, by `same_key`, the same key is left as it is and returned with
    /// `created: false`; any other existing KID fails the whole batch with
    /// [`Error::Conflict`]. `same_key` is asked inside the write transaction, so a racing
    /// conflicting import cannot slip in between a check and the insert.
    async fn insert_keys(
        &self,
        tenant: &str,
        records: Vec<KeyRecord>,
        same_key: SameKey,
    ) -> Result<Vec<Inserted>>;

    /// Fetches many keys in one round trip; the result is positional.
    async fn get_keys(&self, tenant: &str, kids: &[KeyId]) -> Result<Vec<Option<KeyRecord>>>;

    /// Every key of one content id, ordered by (period, track, kid).
    async fn list_by_content(&self, tenant: &str, content_id: &str) -> Result<Vec<KeyRecord>>;

    /// Marks a key revoked at `at` (idempotent: the first revocation time is kept). Returns
    /// the updated record, or `None` if the key does not exist.
    async fn revoke(&self, tenant: &str, kid: KeyId, at: u64) -> Result<Option<KeyRecord>>;

    /// Changes with `seq > cursor`, oldest first, at most `limit`; [`Error::FeedReset`]
    /// when the feed does not continue from `cursor`.
    async fn changes_since(&self, cursor: u64, limit: usize) -> Result<Vec<Change>>;

    /// The newest change's sequence number (0 when none): where a fresh node starts polling.
    async fn change_cursor(&self) -> Result<u64>;

    /// Reads a named metadata value (e.g. the master-key check record).
    async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// Stores a named metadata value unless one exists; returns the value now stored.
    async fn meta_put_if_absent(&self, name: &str, value: Vec<u8>) -> Result<Vec<u8>>;

    /// Cheap liveness probe for `/readyz`.
    async fn ping(&self) -> Result<()>;

    /// Records one use of token id `jti` (replay prevention): `Some(true)` when granted,
    /// `Some(false)` when the token already had `max_uses` uses, kept until `expires_at`.
    /// `None` only from a backend that serves a single node, whose app then counts in
    /// process: a backend shared by several nodes must count here, or each node would grant
    /// `max_uses` on its own. No default, so every backend says which it is.
    async fn record_token_use(
        &self,
        tenant: &str,
        jti: &str,
        max_uses: u32,
        expires_at: u64,
    ) -> Result<Option<bool>>;

    /// The backend's own metrics, registered by the app.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        Vec::new()
    }

    /// Refreshes gauges (pool saturation); called by the change-feed poller.
    fn observe(&self) {}

    /// The backend's name (the `backend` label of store metrics).
    fn backend(&self) -> &'static str;
}

/// Store operations, as the `op` label of the store metrics names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    InsertKeys,
    GetKeys,
    ListByContent,
    Revoke,
    ChangesSince,
    ChangeCursor,
    MetaGet,
    MetaPutIfAbsent,
    Ping,
    RecordTokenUse,
}

impl Op {
    const ALL: [Op; 10] = [
        Op::InsertKeys,
        Op::GetKeys,
        Op::ListByContent,
        Op::Revoke,
        Op::ChangesSince,
        Op::ChangeCursor,
        Op::MetaGet,
        Op::MetaPutIfAbsent,
        Op::Ping,
        Op::RecordTokenUse,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Op::InsertKeys => "insert_keys",
            Op::GetKeys => "get_keys",
            Op::ListByContent => "list_by_content",
            Op::Revoke => "revoke",
            Op::ChangesSince => "changes_since",
            Op::ChangeCursor => "change_cursor",
            Op::MetaGet => "meta_get",
            Op::MetaPutIfAbsent => "meta_put_if_absent",
            Op::Ping => "ping",
            Op::RecordTokenUse => "record_token_use",
        }
    }
}

struct OpMetrics {
    latency: prometheus::Histogram,
    errors: prometheus::IntCounter,
}

/// The store as the rest of Tessera uses it: a [`KeyStore`] backend behind a handle that
/// times every call into `tessera_store_operation_duration_seconds{backend,op}` and counts
/// its failures in `tessera_store_errors_total{backend,op}`. No caller can forget to: the
/// backend is reachable only through here. Label values are resolved once, at
/// construction, so a call costs two atomic updates, not a label lookup.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<dyn KeyStore>,
    ops: std::sync::Arc<[OpMetrics; Op::ALL.len()]>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Wraps `backend`, recording into the app's store histograms and error counters.
    pub fn new(
        backend: std::sync::Arc<dyn KeyStore>,
        latency: &prometheus::HistogramVec,
        errors: &prometheus::IntCounterVec,
    ) -> Self {
        let name = backend.backend();
        let ops = Op::ALL.map(|op| OpMetrics {
            latency: latency.with_label_values(&[name, op.as_str()]),
            errors: errors.with_label_values(&[name, op.as_str()]),
        });
        Self {
            backend,
            ops: std::sync::Arc::new(ops),
        }
    }

    async fn timed<T>(&self, op: Op, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let start = std::time::Instant::now();
        let r = fut.await;
        // Invariant: `ops` has one entry per `Op`, in `Op::ALL` order.
        let m = &self.ops[op as usize];
        m.latency.observe(start.elapsed().as_secs_f64());
        if r.is_err() {
            m.errors.inc();
        }
        r
    }

    /// See [`KeyStore::insert_keys`].
    pub async fn insert_keys(
        &self,
        tenant: &str,
        records: Vec<KeyRecord>,
        same_key: SameKey,
    ) -> Result<Vec<Inserted>> {
        self.timed(
            Op::InsertKeys,
            self.backend.insert_keys(tenant, records, same_key),
        )
        .await
    }

    /// See [`KeyStore::get_keys`].
    pub async fn get_keys(&self, tenant: &str, kids: &[KeyId]) -> Result<Vec<Option<KeyRecord>>> {
        self.timed(Op::GetKeys, self.backend.get_keys(tenant, kids))
            .await
    }

    /// See [`KeyStore::list_by_content`].
    pub async fn list_by_content(&self, tenant: &str, content_id: &str) -> Result<Vec<KeyRecord>> {
        self.timed(
            Op::ListByContent,
            self.backend.list_by_content(tenant, content_id),
        )
        .await
    }

    /// See [`KeyStore::revoke`].
    pub async fn revoke(&self, tenant: &str, kid: KeyId, at: u64) -> Result<Option<KeyRecord>> {
        self.timed(Op::Revoke, self.backend.revoke(tenant, kid, at))
            .await
    }

    /// See [`KeyStore::changes_since`].
    pub async fn changes_since(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
        self.timed(Op::ChangesSince, self.backend.changes_since(cursor, limit))
            .await
    }

    /// See [`KeyStore::change_cursor`].
    pub async fn change_cursor(&self) -> Result<u64> {
        self.timed(Op::ChangeCursor, self.backend.change_cursor())
            .await
    }

    /// See [`KeyStore::meta_get`].
    pub async fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.timed(Op::MetaGet, self.backend.meta_get(name)).await
    }

    /// See [`KeyStore::meta_put_if_absent`].
    pub async fn meta_put_if_absent(&self, name: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        self.timed(
            Op::MetaPutIfAbsent,
            self.backend.meta_put_if_absent(name, value),
        )
        .await
    }

    /// See [`KeyStore::ping`].
    pub async fn ping(&self) -> Result<()> {
        self.timed(Op::Ping, self.backend.ping()).await
    }

    /// See [`KeyStore::record_token_use`].
    pub async fn record_token_use(
        &self,
        tenant: &str,
        jti: &str,
        max_uses: u32,
        expires_at: u64,
    ) -> Result<Option<bool>> {
        self.timed(
            Op::RecordTokenUse,
            self.backend
                .record_token_use(tenant, jti, max_uses, expires_at),
        )
        .await
    }

    /// See [`KeyStore::collectors`].
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.backend.collectors()
    }

    /// See [`KeyStore::observe`].
    pub fn observe(&self) {
        self.backend.observe();
    }

    /// See [`KeyStore::backend`].
    pub fn backend(&self) -> &'static str {
        self.backend.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call through the handle is timed under the backend's own name: no call site
    /// has to remember it (failures counted: tests/it/failure.rs).
    #[tokio::test]
    async fn the_handle_times_and_counts_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let backend = std::sync::Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let latency = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new("latency", "test"),
            &["backend", "op"],
        )
        .unwrap();
        let errors = prometheus::IntCounterVec::new(
            prometheus::Opts::new("errors", "test"),
            &["backend", "op"],
        )
        .unwrap();
        let store = Store::new(backend, &latency, &errors);
        store.ping().await.unwrap();
        store.ping().await.unwrap();
        store
            .get_keys("t", &[KeyId::from_bytes([7; 16])])
            .await
            .unwrap();
        let count = |op: &str| {
            latency
                .with_label_values(&["embedded", op])
                .get_sample_count()
        };
        assert_eq!((count("ping"), count("get_keys")), (2, 1));
        assert_eq!(
            errors.with_label_values(&["embedded", "ping"]).get(),
            0,
            "successes are not errors"
        );
        assert_eq!(store.backend(), "embedded");
    }
}
