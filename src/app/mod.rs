//! `App`: everything a request needs, built once at startup and shared as `Arc<App>` (STYLE
//! S1): config, token verifiers, keyring, store, the opened-key cache, metrics, audit, CORS,
//! every protocol's state and the lifecycle phase.
//!
//! Startup is two steps: [`prepare`] turns the configuration into runtime objects (every
//! file read once, nothing written), then [`App::open`] opens the store and starts the app
//! on them.

mod prepare;

pub use prepare::{DEV_MASTER_KEY_FILE, Prepared, Tls, prepare};

use crate::audit::{self, Audit};
use crate::auth::{self, Authenticator, JwksFetcher, Scope, Service};
use crate::config::{Config, Secret};
use crate::http::Ctx;
use crate::http::cors::Cors;
use crate::keyring::{CachedKey, KeyCache, KeyId, Keyring};
use crate::license::Entitlement;
use crate::store::{self, EmbeddedStore, KeyStore, Store};
use crate::telemetry::Metrics;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Lifecycle phase, published on a watch channel (STYLE G3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Built, not yet accepting.
    Starting,
    /// Accepting and ready.
    Serving,
    /// Shutting down: `/readyz` is 503, in-flight requests finish.
    Draining,
}

impl Phase {
    /// Name for `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Serving => "serving",
            Phase::Draining => "draining",
        }
    }
}

/// Errors of building the app or of key lookups made through it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A stored key failed to open: tampering, or a record written under another key.
    #[error("stored key {0} failed to open")]
    Unseal(KeyId),
    /// Key generation or sealing failed (the system RNG).
    #[error(transparent)]
    Keyring(#[from] crate::keyring::Error),
    /// The configuration cannot be put to work (see [`prepare`]).
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// Startup failed (store, data directory, audit log).
    #[error("{0}")]
    Startup(String),
}

/// Name of the master-key check record in the store's metadata.
const MASTER_CHECK: &str = "master_key_check";

/// The application.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Token verification.
    pub auth: Authenticator,
    /// JWKS fetching.
    pub jwks: JwksFetcher,
    /// Envelope encryption.
    pub keyring: Arc<Keyring>,
    /// Durable key storage (every call timed and counted).
    pub store: Store,
    /// Opened keys.
    pub cache: KeyCache,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Audit trail.
    pub audit: Audit,
    /// CORS policy of the public listener.
    pub cors: Cors,
    /// Lifecycle phase.
    pub phase: watch::Sender<Phase>,
    /// Bearer token guarding `/metrics`.
    pub metrics_token: Option<Secret>,
    /// Every protocol's state.
    pub protocols: crate::protocol::Protocols,
    /// The listeners' TLS.
    pub tls: Tls,
    /// `scheme://addr` of the bound public listener (set once it is bound).
    pub bound_public_url: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("tenants", &self.config.tenants.len())
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes a dev-mode master key made by [`prepare`] into the data directory (mode 0700),
/// as a mode-0600 file that must not exist yet.
fn write_dev_master_key(dir: &Path, path: &Path, hex: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::Startup(format!("{}: {e}", dir.display())))?;
    write_private(path, hex).map_err(|e| Error::Startup(format!("{}: {e}", path.display())))?;
    tracing::warn!(path = %path.display(), "DEV MODE: generated a master key inside the data directory");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl App {
    /// Prepares `config` ([`prepare`]), opens the configured store and builds the app.
    pub async fn build(config: Config) -> Result<Arc<Self>, Error> {
        Self::open(prepare(config)?).await
    }

    /// Opens the store `prepared` names and builds the app on it.
    pub async fn open(prepared: Prepared) -> Result<Arc<Self>, Error> {
        let config = &prepared.config;
        let store: Arc<dyn KeyStore> = match config.storage.backend.as_str() {
            "postgres" => Arc::new(
                crate::store::PostgresStore::connect(&config.storage.postgres)
                    .await
                    .map_err(|e| Error::Startup(format!("storage.postgres: {e}")))?,
            ),
            _ => Arc::new(EmbeddedStore::open(&config.storage.data_dir).map_err(|e| {
                Error::Startup(format!(
                    "cannot open data directory {}: {e}",
                    config.storage.data_dir.display()
                ))
            })?),
        };
        Self::with_store(prepared, store).await
    }

    /// Prepares `config` and builds the app over a given store (tests inject failing
    /// stores here).
    pub async fn build_with_store(
        config: Config,
        store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, Error> {
        Self::with_store(prepare(config)?, store).await
    }

    /// Builds the app over a given store.
    pub async fn with_store(
        prepared: Prepared,
        store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, Error> {
        let Prepared {
            config,
            keyring,
            dev_master_key,
            auth,
            protocols,
            tls,
            metrics_token,
        } = prepared;
        let metrics = Arc::new(Metrics::new(
            crate::http::router::ROUTER.labels(),
            &crate::protocol::licence_protocols(),
            &[
                &auth::Error::CODES[..],
                &["not_entitled"],
                &crate::protocol::DENIAL_CODES.concat(),
            ]
            .concat(),
        ));
        let store = Store::new(store, &metrics.store_latency, &metrics.store_errors);
        if let Some((path, hex)) = dev_master_key {
            write_dev_master_key(&config.storage.data_dir, &path, hex.as_bytes())?;
        }
        // Prove the master key is the one this store was sealed with, before serving a byte.
        match store.meta_get(MASTER_CHECK).await? {
            Some(record) => keyring.verify_check_record(&record).map_err(|e| {
                Error::Startup(format!(
                    "{e}: refusing to start (check storage.master_key_file / TESSERA_MASTER_KEY)"
                ))
            })?,
            None => {
                let record = keyring
                    .check_record()
                    .map_err(|e| Error::Startup(e.to_string()))?;
                let stored = store.meta_put_if_absent(MASTER_CHECK, record).await?;
                keyring
                    .verify_check_record(&stored)
                    .map_err(|e| Error::Startup(e.to_string()))?;
            }
        }
        for c in store.collectors() {
            metrics.register(c);
        }
        let audit = match config.audit_path() {
            Some(path) => Audit::start(&path, metrics.clone())
                .map_err(|e| Error::Startup(format!("audit log {}: {e}", path.display())))?,
            None => Audit::disabled(),
        };
        let cors = Cors::new(
            &config
                .tenants
                .iter()
                .map(|t| t.cors_allowed_origins.clone())
                .collect::<Vec<_>>(),
        );
        let (phase, _) = watch::channel(Phase::Starting);
        Ok(Arc::new(Self {
            cache: KeyCache::new(config.storage.key_cache_capacity),
            config,
            auth,
            jwks: JwksFetcher::new().with_metric(metrics.jwks_fetches.clone()),
            keyring,
            store,
            metrics,
            audit,
            cors,
            phase,
            metrics_token,
            protocols,
            tls,
            bound_public_url: std::sync::OnceLock::new(),
        }))
    }

    /// The base URL players reach the public listener at: `[packaging] public_url`, else
    /// the bound public listener's address.
    pub fn public_url(&self) -> String {
        match (
            &self.config.packaging.public_url,
            self.bound_public_url.get(),
        ) {
            (Some(_), _) | (None, None) => self.config.public_url(),
            (None, Some(bound)) => bound.clone(),
        }
    }

    /// Deadline for reading a request body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.config.server.body_read_timeout_ms.max(1))
    }

    /// Looks keys up for a tenant: cache first, then one batched store read for the misses,
    /// opened and cached. Positional; `None` for KIDs the tenant does not have.
    pub async fn lookup_keys(
        &self,
        tenant: u32,
        kids: &[KeyId],
    ) -> Result<Vec<(KeyId, Option<Arc<CachedKey>>)>, Error> {
        let mut out = Vec::with_capacity(kids.len());
        let mut missing = Vec::new();
        for (i, kid) in kids.iter().enumerate() {
            let hit = self.cache.get(tenant, kid);
            if hit.is_none() {
                missing.push(i);
            }
            out.push((*kid, hit));
        }
        self.metrics
            .cache_hits
            .inc_by((kids.len() - missing.len()) as u64);
        if missing.is_empty() {
            return Ok(out);
        }
        self.metrics.cache_misses.inc_by(missing.len() as u64);
        let tenant_id = self.auth.tenant_id(tenant);
        let miss_kids: Vec<KeyId> = missing.iter().map(|&i| kids[i]).collect();
        let records = self.store.get_keys(tenant_id, &miss_kids).await?;
        for (&i, rec) in missing.iter().zip(records) {
            if let Some(rec) = rec {
                out[i].1 = Some(self.open_and_cache(tenant, rec)?);
            }
        }
        Ok(out)
    }

    /// Opens a stored record and caches it.
    pub fn open_and_cache(
        &self,
        tenant: u32,
        rec: store::KeyRecord,
    ) -> Result<Arc<CachedKey>, Error> {
        let key = self
            .keyring
            .open(self.auth.tenant_id(tenant), &rec.meta, &rec.sealed)
            .map_err(|_| Error::Unseal(rec.meta.kid))?;
        let cached = Arc::new(CachedKey {
            meta: rec.meta,
            key,
        });
        let Some(at) = self.cache.insert(tenant, cached.clone()) else {
            return Ok(cached);
        };
        // The change feed said revoked and the store's copy is active: a replica behind the
        // feed (which may come from the primary). The revocation wins, with the time the
        // mark holds (the store's, or when this node learnt of it).
        Ok(Arc::new(CachedKey {
            meta: crate::keyring::KeyMeta {
                state: crate::keyring::KeyState::Revoked { at },
                ..cached.meta.clone()
            },
            key: cached.key.clone(),
        }))
    }

    /// Verifies a player token and resolves its entitlement; sets `ctx.tenant`.
    pub async fn entitle(
        &self,
        token: Option<&str>,
        ctx: &mut Ctx,
    ) -> Result<Entitlement, auth::Error> {
        let result = async {
            let token = token.ok_or(auth::Error::Missing)?;
            let verified = self.auth.verify_async(token, &self.jwks).await?;
            ctx.tenant = Some(verified.tenant);
            self.auth.entitlement(verified)
        }
        .await;
        if let Err(e) = &result {
            self.metrics.denial(e.code());
        }
        result
    }

    /// Spends one use of a `max_uses` token; call right before releasing keys. Shared by
    /// every node through the store when the backend can (PostgreSQL: one round trip to the
    /// primary, only for tokens with `max_uses`), else counted in this process.
    pub async fn consume(&self, ent: &Entitlement) -> Result<(), auth::Error> {
        let r = match self.auth.use_limit(ent) {
            None => Ok(()),
            Some((max, jti, expires)) => {
                let tenant = self.auth.tenant_id(ent.tenant);
                match self.store.record_token_use(tenant, jti, max, expires).await {
                    Ok(Some(true)) => Ok(()),
                    Ok(Some(false)) => Err(auth::Error::Replayed),
                    Ok(None) => self.auth.consume(ent, now_secs()),
                    // Fail closed: a use that cannot be counted is not granted.
                    Err(_) => Err(auth::Error::Unavailable),
                }
            }
        };
        if let Err(e) = &r {
            self.metrics.denial(e.code());
        }
        r
    }

    /// Verifies a service token from `Authorization` and checks `scope`; sets `ctx.tenant`.
    pub async fn authorize(
        &self,
        headers: &http::HeaderMap,
        scope: Scope,
        ctx: &mut Ctx,
    ) -> Result<Service, auth::Error> {
        self.authorize_token(crate::http::body::bearer(headers), scope, ctx)
            .await
    }

    /// [`App::authorize`] for a token found elsewhere (a packager that cannot send headers
    /// passes it in the URL).
    pub async fn authorize_token(
        &self,
        token: Option<&str>,
        scope: Scope,
        ctx: &mut Ctx,
    ) -> Result<Service, auth::Error> {
        let result = async {
            let token = token.ok_or(auth::Error::Missing)?;
            let verified = self.auth.verify_async(token, &self.jwks).await?;
            ctx.tenant = Some(verified.tenant);
            self.auth.service(verified, scope)
        }
        .await;
        if let Err(e) = &result {
            self.metrics.denial(e.code());
        }
        result
    }

    /// Starts the background tasks: the change-feed poller (marks revoked keys in the cache,
    /// whichever node revoked them; the cache never lets an active copy replace that mark)
    /// and one JWKS refresher per source. They stop
    /// when the phase becomes `Draining`.
    pub async fn start_background(self: &Arc<Self>) -> Result<(), Error> {
        let cursor = self.store.change_cursor().await?;
        let app = self.clone();
        let mut phase = self.phase.subscribe();
        tokio::spawn(async move {
            let mut cursor = cursor;
            let every = Duration::from_millis(app.config.storage.change_poll_interval_ms.max(10));
            let mut last_ok = std::time::Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = phase.wait_for(|p| *p == Phase::Draining) => return,
                }
                match app.poll_changes(cursor).await {
                    Ok(c) => {
                        cursor = c;
                        last_ok = std::time::Instant::now();
                    }
                    Err(c) => cursor = c,
                }
                app.metrics
                    .change_feed_age
                    .set(last_ok.elapsed().as_secs_f64());
                app.store.observe();
            }
        });
        for source in self.auth.jwks_sources() {
            let app = self.clone();
            let source = source.clone();
            let mut phase = self.phase.subscribe();
            tokio::spawn(async move {
                loop {
                    let ok = app.jwks.refresh(&source).await;
                    if let Err(e) = ok {
                        tracing::warn!(jwks.url = %source.url, error = %e, "JWKS refresh failed; keeping the previous keys");
                    }
                    // Retry sooner while no key set has ever loaded.
                    let wait = if source.is_loaded() {
                        source.refresh
                    } else {
                        Duration::from_secs(2)
                    };
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = phase.wait_for(|p| *p == Phase::Draining) => return,
                    }
                }
            });
        }
        Ok(())
    }

    /// One poll of the change feed; returns the new cursor (`Err` with the cursor reached
    /// when the feed could not be read to its end).
    pub async fn poll_changes(&self, mut cursor: u64) -> Result<u64, u64> {
        loop {
            match self.store.changes_since(cursor, 1000).await {
                Ok(changes) => {
                    let n = changes.len();
                    for c in changes {
                        cursor = c.seq;
                        if c.kind == store::ChangeKind::Revoked
                            && let Some(t) = self.auth.tenant_index(&c.tenant)
                        {
                            // The feed carries no time; when this node learnt of it.
                            self.cache.revoke(t, &c.kid, now_secs());
                        }
                    }
                    if n < 1000 {
                        return Ok(cursor);
                    }
                }
                // The feed does not continue from here (this node was cut off for longer
                // than the retention, or the database failed over to one behind it): any
                // cached key may have been revoked in what it missed, so only the revocation
                // marks are kept and the rest is read again from the store.
                Err(store::Error::FeedReset { resume_at }) => {
                    tracing::warn!(
                        cursor,
                        resume_at,
                        "change feed does not continue from this node's cursor; dropping cached keys"
                    );
                    self.cache.drop_active();
                    self.metrics.change_feed_resets.inc();
                    // Ends this poll: two databases answering alternately (a split brain)
                    // must not spin here.
                    return Ok(resume_at);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change feed poll failed");
                    return Err(cursor);
                }
            }
        }
    }

    /// Records a licence event of an entitlement (`key.release`, `license.renew`...).
    pub async fn audit_licence(
        &self,
        ctx: &Ctx,
        event: &'static str,
        protocol: &'static str,
        ent: &Entitlement,
        kids: Vec<crate::keyring::KeyId>,
    ) {
        self.audit_device_licence(ctx, event, protocol, ent, kids, None)
            .await;
    }

    /// [`App::audit_licence`] naming the device the keys went to (what an operator revokes).
    pub async fn audit_device_licence(
        &self,
        ctx: &Ctx,
        event: &'static str,
        protocol: &'static str,
        ent: &Entitlement,
        kids: Vec<crate::keyring::KeyId>,
        device: Option<&str>,
    ) {
        self.audit(
            ctx,
            audit::Event {
                event,
                protocol,
                kids,
                content_id: None,
                subject: ent.subject.as_deref(),
                token_id: ent.token_id.as_deref(),
                device,
            },
        )
        .await;
    }

    /// Writes an audit record for keys leaving or changing.
    pub async fn audit(&self, ctx: &Ctx, e: audit::Event<'_>) {
        let tenant = ctx.tenant.map_or("", |t| self.auth.tenant_id(t));
        self.audit
            .record(audit::Record {
                ts_ms: audit::now_ms(),
                event: e.event,
                tenant,
                protocol: e.protocol,
                kids: e.kids,
                content_id: e.content_id,
                subject: e.subject,
                token_id: e.token_id,
                device: e.device,
                request_id: &ctx.request_id,
                client: ctx.client,
            })
            .await;
    }
}
