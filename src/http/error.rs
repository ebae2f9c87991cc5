//! Error rendering at the HTTP boundary.
//!
//! Error policy (STYLE §4): every module has one `thiserror` enum; each protocol's enum
//! implements [`ApiError`], which decides the status, the machine-readable code and the
//! client-facing detail in that protocol's wire format. ClearKey, HLS and the key API speak
//! RFC 9457 problem JSON. The client never sees internal detail (store messages, crypto
//! failures): 5xx problems carry a fixed text, and the full error is logged once, here.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// What a protocol error must say about itself.
pub trait ApiError: std::fmt::Display {
    /// HTTP status.
    fn status(&self) -> StatusCode;
    /// Machine-readable code naming the failed check (`token_expired`, `key_not_found`...).
    fn code(&self) -> &'static str;
    /// Extra problem members (e.g. the KIDs that were refused).
    fn extra(&self) -> Option<serde_json::Value> {
        None
    }
}

/// Renders `err` as `application/problem+json`, logging server-side failures once.
pub fn problem(err: &dyn ApiError) -> Response<Full<Bytes>> {
    let status = err.status();
    let full = err.to_string();
    let detail = if status.is_server_error() {
        "the server could not complete the request; see its logs for the request id".to_owned()
    } else {
        full.clone()
    };
    let mut body = serde_json::json!({
        "type": format!("urn:tessera:problem:{}", err.code()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": err.code(),
        "detail": detail,
    });
    if let (Some(serde_json::Value::Object(extra)), Some(obj)) = (err.extra(), body.as_object_mut())
    {
        obj.extend(extra);
    }
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // The HTTP boundary logs this once, with the request id (see `Failure`).
    resp.extensions_mut().insert(Failure {
        code: err.code(),
        detail: full,
    });
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750 §3: tell the client which scheme, without echoing anything of its token.
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    resp
}

/// The full error behind a problem response, carried in the response's extensions (never
/// sent) so that the accept loop, which knows the request id and endpoint, logs it once:
/// server-side failures at error level, refusals at debug.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The problem code.
    pub code: &'static str,
    /// The full error text (may hold internal detail: logs only).
    pub detail: String,
}

/// Errors of the HTTP plumbing itself (routing, bodies), shared by every handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such path.
    #[error("no such endpoint")]
    NotFound,
    /// Path exists, method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Body over the cap.
    #[error("request body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// Body could not be read.
    #[error("request body could not be read")]
    BodyRead,
    /// Body did not arrive within the deadline.
    #[error("request body not received in time")]
    BodyTimeout,
    /// Wrong or missing bearer token on `/metrics`.
    #[error("metrics require the configured bearer token")]
    MetricsAuth,
    /// CORS preflight from an origin no tenant allows.
    #[error("origin not allowed")]
    OriginNotAllowed,
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::BodyRead => StatusCode::BAD_REQUEST,
            Error::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::MetricsAuth => StatusCode::UNAUTHORIZED,
            Error::OriginNotAllowed => StatusCode::FORBIDDEN,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::BodyTooLarge(_) => "body_too_large",
            Error::BodyRead => "body_unreadable",
            Error::BodyTimeout => "body_timeout",
            Error::MetricsAuth => "metrics_unauthorized",
            Error::OriginNotAllowed => "origin_not_allowed",
        }
    }
}

/// A 200 response with a body and content type.
pub fn ok(content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    with_status(StatusCode::OK, content_type, body)
}

/// A response with a status, body and content type.
pub fn with_status(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
