//! Running Tessera: bind both listeners, start background tasks, serve until told to stop,
//! then drain (readiness false -> stop accepting -> finish in-flight requests within the
//! deadline). Used by `tessera serve` and by the integration tests, which start it on
//! ephemeral ports.

use crate::app::{App, Phase};
use crate::http::router::Listener;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Bound public address.
    pub public_addr: SocketAddr,
    /// Bound internal address.
    pub internal_addr: SocketAddr,
    /// The app (tests inspect metrics and the cache through it).
    pub app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The background tasks could not start (the store's change cursor).
    #[error(transparent)]
    Background(#[from] crate::app::Error),
}

/// Binds both listeners of `app.config` and starts serving.
pub async fn start(app: Arc<App>) -> Result<Running, Error> {
    let cfg = &app.config.server;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })
    };
    let public = bind(cfg.public_addr).await?;
    let internal = bind(cfg.internal_addr).await?;
    let public_tls = app.tls.public.clone();
    let internal_tls = app.tls.internal.clone();
    let public_addr = public.local_addr().map_err(|source| Error::Bind {
        addr: cfg.public_addr,
        source,
    })?;
    let internal_addr = internal.local_addr().map_err(|source| Error::Bind {
        addr: cfg.internal_addr,
        source,
    })?;
    // Signalling names the public listener; with port 0 only the bound address says where.
    let scheme = if cfg.public_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = app
        .bound_public_url
        .set(format!("{scheme}://{public_addr}"));
    app.start_background().await?;
    let (stop, rx) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tasks = vec![
        tokio::spawn(crate::http::serve(
            public,
            public_tls,
            Listener::Public,
            app.clone(),
            until(rx.clone()),
        )),
        tokio::spawn(crate::http::serve(
            internal,
            internal_tls,
            Listener::Internal,
            app.clone(),
            until(rx),
        )),
    ];
    app.phase.send_replace(Phase::Serving);
    Ok(Running {
        public_addr,
        internal_addr,
        app,
        stop,
        tasks,
    })
}

impl Running {
    /// Drains and stops both listeners.
    pub async fn shutdown(self) {
        self.app.phase.send_replace(Phase::Draining);
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.app.audit.close().await;
    }
}
