//! Connection pools (`docs/replication.md`): one to the primary, one to the local replica,
//! each bounded in connections, connect, statement and acquire time; reads routed to the
//! replica or the primary with a fallback, and writes bounded as a whole.

use super::config::{PostgresConfig, parse_url};
use super::{PostgresStore, unavailable};
use crate::store::{Error, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;

/// A pooled connection for a write. It goes back to the pool only once the write finished
/// ([`Conn::finish`]); dropped before that (an error, or `write_timeout_ms` abandoning a
/// COMMIT still waiting for its synchronous standby) it is detached and closed, so the next
/// write never queues behind an abandoned one.
pub(super) struct Conn {
    obj: Option<deadpool_postgres::Object>,
    finished: bool,
}

impl Conn {
    pub(super) fn finish(&mut self) {
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

pub(super) fn pool(
    url: &str,
    size: usize,
    cfg: &PostgresConfig,
) -> std::result::Result<Pool, String> {
    // `connect` checked both URLs with their names first.
    let mut pg = parse_url(url, "url", cfg).map_err(|e| e.to_string())?;
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

impl PostgresStore {
    /// One bounded read on a pool.
    pub(super) async fn on<T, F, Fut>(&self, pool: &Pool, f: &F) -> Result<T>
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
    pub(super) async fn read<T, F, Fut>(&self, f: F) -> Result<T>
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
    pub(super) async fn primary_first<T, F, Fut>(&self, f: F) -> Result<T>
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

    pub(super) async fn primary_conn(&self) -> Result<Conn> {
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
    pub(super) async fn write<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(self.write_timeout, fut)
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "the primary did not complete the write within {} ms",
                    self.write_timeout.as_millis()
                ))
            })?
    }
}
