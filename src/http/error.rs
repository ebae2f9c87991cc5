//! Errors at the HTTP boundary: where each failure's status class is decided, and the
//! problem-JSON rendering.
//!
//! Error policy (STYLE §4): every module has one `thiserror` enum, and every enum that can
//! reach a client implements [`ApiError`]: the HTTP status and the machine-readable code.
//! The status class follows the source (E3) and is decided once, here, for the errors
//! every protocol shares: a token's ([`crate::auth::Error`]: 401, 403, or 503 when it
//! cannot be decided), the store's ([`crate::store::Error`]: 503 when unreachable, else
//! 500) and the app's. A protocol's own enum decides only its own variants and delegates
//! the shared ones, so "store unavailable is 503" is written once.
//!
//! Each wire format renders an [`ApiError`] in its own way: RFC 9457 problem JSON here
//! ([`problem`]: ClearKey, HLS, the key API, Widevine-style refusals), SOAP faults
//! (PlayReady-style licences and packaging), SPEKE's plain text, FairPlay-style status
//! codes, and the Widevine-style key API's in-band statuses. All of them hide a 5xx's
//! detail from the client ([`public_detail`]) and hand the full error to the accept loop
//! ([`Failure`]), which logs it once with the request id.

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

/// What a client is told of a server-side failure: nothing it could use to probe us.
pub const SERVER_FAULT_TEXT: &str =
    "the server could not complete the request; see its logs for the request id";

/// The detail a client may see: the error's text for a refusal, a fixed text for a 5xx.
pub fn public_detail(err: &dyn ApiError) -> String {
    if err.status().is_server_error() {
        SERVER_FAULT_TEXT.to_owned()
    } else {
        err.to_string()
    }
}

/// Attaches the full error to a response for the accept loop to log (see [`Failure`]).
pub fn attach_failure(resp: &mut Response<Full<Bytes>>, err: &dyn ApiError) {
    resp.extensions_mut().insert(Failure {
        code: err.code(),
        detail: err.to_string(),
    });
}

/// Renders `err` as `application/problem+json`, logging server-side failures once.
pub fn problem(err: &dyn ApiError) -> Response<Full<Bytes>> {
    let status = err.status();
    let detail = public_detail(err);
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
    attach_failure(&mut resp, err);
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

impl ApiError for crate::auth::Error {
    /// 401 for an unusable token, 403 for a valid one that lacks rights, 503 when the
    /// decision cannot be made (replay tracking full, JWKS never fetched, the shared use
    /// counter unreachable): fail closed, and let the client retry.
    fn status(&self) -> StatusCode {
        use crate::auth::Error as E;
        match self {
            E::InsufficientScope | E::WrongPurpose | E::NoEntitlement | E::Replayed => {
                StatusCode::FORBIDDEN
            }
            E::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
    fn code(&self) -> &'static str {
        crate::auth::Error::code(self)
    }
}

impl ApiError for crate::store::Error {
    /// An unreachable store is the one failure a retry may cure: 503. A KID conflict is
    /// the caller's (409); anything else the store says is our fault (500).
    fn status(&self) -> StatusCode {
        use crate::store::Error as E;
        match self {
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        use crate::store::Error as E;
        match self {
            E::Unavailable(_) => "store_unavailable",
            E::Conflict(_) => "key_conflict",
            _ => "internal",
        }
    }
}

impl ApiError for crate::app::Error {
    fn status(&self) -> StatusCode {
        match self {
            crate::app::Error::Store(e) => e.status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            crate::app::Error::Store(e) => e.code(),
            _ => "internal",
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
