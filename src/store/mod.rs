//! Durable key storage: the [`KeyStore`] trait, its embedded backend, and the conformance
//! suite every backend passes.
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

    /// Records one use of token id `jti` for every node (replay prevention shared through the
    /// store): `Some(true)` when granted, `Some(false)` when the token already had
    /// `max_uses` uses; `None` when this backend does not share the state (the app counts in
    /// process). Entries are kept until `expires_at`.
    async fn record_token_use(
        &self,
        tenant: &str,
        jti: &str,
        max_uses: u32,
        expires_at: u64,
    ) -> Result<Option<bool>> {
        let _ = (tenant, jti, max_uses, expires_at);
        Ok(None)
    }

    /// The backend's own metrics, registered by the app.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        Vec::new()
    }

    /// Refreshes gauges (pool saturation); called by the change-feed poller.
    fn observe(&self) {}

    /// The backend's name (the `backend` label of store metrics).
    fn backend(&self) -> &'static str {
        "embedded"
    }
}
