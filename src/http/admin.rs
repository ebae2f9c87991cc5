//! `/metrics`, `/healthz`, `/readyz` on the internal listener (STYLE O4).
//!
//! `/healthz` says the process is alive. `/readyz` says it should get traffic: serving phase
//! (not starting, not draining), the store answering, and every JWKS loaded once.

use super::error::{self, ApiError, Error};
use super::router::Listener;
use crate::app::{App, Phase};
use crate::protocol::RouteSpec;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

/// An operations endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admin {
    /// `GET /metrics`
    Metrics,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
}

/// The operations routes, on the internal listener.
pub const ROUTES: &[RouteSpec<Admin>] = &[
    RouteSpec {
        endpoint: "metrics",
        listener: Listener::Internal,
        methods: &["GET"],
        paths: &["/metrics"],
        route: Admin::Metrics,
    },
    RouteSpec {
        endpoint: "healthz",
        listener: Listener::Internal,
        methods: &["GET", "HEAD"],
        paths: &["/healthz"],
        route: Admin::Healthz,
    },
    RouteSpec {
        endpoint: "readyz",
        listener: Listener::Internal,
        methods: &["GET", "HEAD"],
        paths: &["/readyz"],
        route: Admin::Readyz,
    },
];

/// Answers an operations request.
pub async fn handle(app: &App, admin: Admin, headers: &HeaderMap) -> Response<Full<Bytes>> {
    match admin {
        Admin::Metrics => metrics(app, headers),
        Admin::Healthz => healthz(),
        Admin::Readyz => readyz(app).await,
    }
}

/// `GET /metrics`, behind a bearer token when one is configured.
pub fn metrics(app: &App, headers: &HeaderMap) -> Response<Full<Bytes>> {
    if let Some(expected) = &app.metrics_token {
        let given = super::body::bearer(headers).unwrap_or("");
        if !crate::crypto::ct_eq(given.as_bytes(), expected.expose().as_bytes()) {
            return error::problem(&Error::MetricsAuth as &dyn ApiError);
        }
    }
    app.metrics.cache_size.set(app.cache.len() as i64);
    error::ok(
        "text/plain; version=0.0.4; charset=utf-8",
        app.metrics.render(),
    )
}

/// `GET /healthz`
pub fn healthz() -> Response<Full<Bytes>> {
    error::ok("application/json", r#"{"status":"ok"}"#)
}

/// `GET /readyz`
pub async fn readyz(app: &App) -> Response<Full<Bytes>> {
    let phase = *app.phase.borrow();
    let store_ok = app.store.ping().await.is_ok();
    let jwks_ok = app.auth.jwks_sources().all(|s| s.is_loaded());
    let ready = phase == Phase::Serving && store_ok && jwks_ok;
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "phase": phase.as_str(),
        "store": if store_ok { "ok" } else { "unavailable" },
        "jwks": if jwks_ok { "ok" } else { "not_loaded" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error::with_status(status, "application/json", body.to_string())
}
