//! Accept loops (STYLE G1/G2): `serve(listener, ..., shutdown)` accepts until `shutdown`
//! resolves, then drains in-flight requests within the configured deadline.
//!
//! Per connection: a permit from the listener's connection limit (when none is free we stop
//! accepting and the kernel backlog absorbs the burst), an HTTP/1.1 header-read timeout
//! (slow-loris), optional TLS (rustls), `TCP_NODELAY`.

use super::error::{self, ApiError, Error};
use super::router::{Listener, Target, route};
use crate::app::App;
use crate::config::SetupError;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Per-request context handed to handlers.
#[derive(Debug)]
pub struct Ctx {
    /// Request id (from a sane `x-request-id`, or generated).
    pub request_id: String,
    /// Client address.
    pub client: SocketAddr,
    /// Tenant index, once a token has been verified (drives per-tenant CORS).
    pub tenant: Option<u32>,
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

fn request_id(headers: &http::HeaderMap) -> String {
    if let Some(v) = headers.get("x-request-id").and_then(|v| v.to_str().ok())
        && !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return v.to_owned();
    }
    // A per-process random prefix keeps ids unique across restarts and nodes; the counter
    // keeps them cheap (no RNG call per request).
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix =
        *PREFIX.get_or_init(|| crate::crypto::random_array::<4>().map_or(0, u32::from_be_bytes));
    let id =
        (u64::from(prefix) << 32) | u64::from(REQUEST_SEQ.fetch_add(1, Ordering::Relaxed) as u32);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..16)
        .rev()
        .map(|i| char::from(HEX[((id >> (4 * i)) & 0xf) as usize]))
        .collect()
}

async fn handle(
    app: Arc<App>,
    listener: Listener,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let mut ctx = Ctx {
        request_id: request_id(req.headers()),
        client,
        tenant: None,
    };
    let path = req.uri().path().to_owned();
    let r = route(listener, req.method(), &path);
    let endpoint = r.endpoint;
    let span = tracing::debug_span!("request", request.id = %ctx.request_id, endpoint = endpoint.as_str(), client.addr = %client);
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = async {
        if !r.method_ok {
            let mut resp = error::problem(&Error::MethodNotAllowed as &dyn ApiError);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(r.allow));
            return resp;
        }
        match r.target {
            Target::Protocol(target) => {
                app.protocols
                    .dispatch(&app, target, req, r.param, &mut ctx)
                    .await
            }
            Target::Admin(admin) => super::admin::handle(&app, admin, req.headers()).await,
            Target::Preflight => match app.cors.preflight(req.headers()) {
                Some(h) => {
                    let mut resp = Response::new(Full::new(Bytes::new()));
                    *resp.status_mut() = StatusCode::NO_CONTENT;
                    resp.headers_mut().extend(h);
                    resp
                }
                None => {
                    let mut resp = error::problem(&Error::OriginNotAllowed as &dyn ApiError);
                    resp.headers_mut()
                        .insert(header::VARY, HeaderValue::from_static("Origin"));
                    resp
                }
            },
            Target::Unmatched => error::problem(&Error::NotFound as &dyn ApiError),
        }
    }
    .instrument(span)
    .await;
    if let Some(f) = resp.extensions().get::<error::Failure>() {
        let status = resp.status().as_u16();
        if status >= 500 {
            tracing::error!(request.id = %ctx.request_id, endpoint = endpoint.as_str(), http.status = status, error.code = f.code, error = %f.detail, "request failed");
        } else {
            tracing::debug!(request.id = %ctx.request_id, endpoint = endpoint.as_str(), http.status = status, error.code = f.code, error = %f.detail, "request refused");
        }
    }
    if listener == Listener::Public && r.target != Target::Preflight {
        app.cors
            .decorate(origin.as_ref(), ctx.tenant, resp.headers_mut());
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    // Licences and keys must never sit in a shared cache.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    app.metrics.request(
        endpoint.index(),
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Builds a TLS acceptor from the configured PEM files (the key file must be mode 0600):
/// TLS 1.2 and 1.3, HTTP/1.1 by ALPN. Each file is read once.
pub fn tls_acceptor(
    cfg: &crate::config::TlsConfig,
) -> Result<tokio_rustls::TlsAcceptor, SetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| SetupError::invalid(cfg.cert_file.display().to_string(), e))?;
    if certs.is_empty() {
        return Err(SetupError::invalid(
            cfg.cert_file.display().to_string(),
            "no certificate",
        ));
    }
    let pem = crate::config::secrets::read_secret_file(&cfg.key_file, false)?;
    let key = PrivateKeyDer::from_pem_slice(pem.expose().as_bytes())
        .map_err(|e| SetupError::invalid(cfg.key_file.display().to_string(), e))?;
    let mut sc = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SetupError::invalid("tls", e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        SetupError::invalid(
            "tls",
            format!("certificate and key do not match or are unusable: {e}"),
        )
    })?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(sc)))
}

/// Serves one listener until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    role: Listener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limit = Arc::new(Semaphore::new(app.config.server.max_connections));
    let header_timeout = Duration::from_millis(app.config.server.header_read_timeout_ms.max(1));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = role.as_str(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app2 = app.clone();
        let svc = hyper::service::service_fn(move |req| {
            let app = app2.clone();
            async move { Ok::<_, Infallible>(handle(app, role, req, client).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let watcher = graceful.watcher();
        let metrics = app.metrics.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            metrics.connections.inc();
            match tls {
                None => {
                    let _ = watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), svc))
                        .await;
                }
                Some(acceptor) => {
                    if let Ok(Ok(tls_stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                    {
                        let _ = watcher
                            .watch(builder.serve_connection(TokioIo::new(tls_stream), svc))
                            .await;
                    }
                }
            }
            metrics.connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    let drain = Duration::from_secs(app.config.server.drain_timeout_secs);
    let open = graceful.count();
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = role.as_str(),
            connections = open,
            "drain deadline passed; closing remaining connections"
        );
    } else {
        tracing::info!(listener = role.as_str(), "drained");
    }
}
