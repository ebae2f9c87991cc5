//! `/metrics`, `/healthz`, `/readyz` on the internal listener (STYLE O4).
//!
//! `/healthz` says the process is alive. `/readyz` says it should get traffic: serving phase
//! (not starting, not draining), the store answering, and every JWKS loaded once.

use super::error::{self, ApiError, Error};
use crate::app::{App, Phase};
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

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
