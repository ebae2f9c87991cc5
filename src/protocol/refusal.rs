//! Errors shared by the licence protocols that answer in RFC 9457 problem JSON (ClearKey and
//! HLS key delivery): same wire format, same mapping, so one enum.

use crate::http::error::ApiError;
use http::StatusCode;

/// Why a ClearKey or HLS request got no key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Body cap, unreadable body, routing.
    #[error(transparent)]
    Http(#[from] crate::http::error::Error),
    /// The request is malformed (protocol codec error).
    #[error("{0}")]
    Request(String),
    /// Token missing, invalid, or lacking rights.
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    /// None of the requested keys may be released; each KID with the reason.
    #[error("no requested key is available to this token")]
    Refused(Vec<(String, &'static str)>),
    /// The one requested key does not exist (HLS).
    #[error("no such key")]
    NotFound,
    /// A persistent licence was asked for and the policy forbids persistence.
    #[error("the policy does not allow persistent licences")]
    PersistenceNotAllowed,
    /// Store or keyring failure.
    #[error(transparent)]
    App(#[from] crate::app::Error),
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Http(e) => e.status(),
            Error::Request(_) => StatusCode::BAD_REQUEST,
            Error::Auth(e) => e.status(),
            Error::Refused(_) | Error::PersistenceNotAllowed => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::App(e) => e.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Http(e) => e.code(),
            Error::Request(_) => "request_invalid",
            Error::Auth(e) => e.code(),
            Error::Refused(_) => "no_entitled_keys",
            Error::NotFound => "key_not_found",
            Error::PersistenceNotAllowed => "persistence_not_allowed",
            Error::App(e) => e.code(),
        }
    }

    fn extra(&self) -> Option<serde_json::Value> {
        match self {
            Error::Refused(kids) => Some(refused_extra(kids)),
            _ => None,
        }
    }
}

/// The problem members of a `no_entitled_keys` refusal (every licence protocol that answers
/// in problem JSON): each KID, and each KID with its reason.
pub fn refused_extra(kids: &[(String, &'static str)]) -> serde_json::Value {
    serde_json::json!({
        "kids": kids.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "reasons": kids.iter().map(|(k, r)| serde_json::json!({"kid": k, "reason": r})).collect::<Vec<_>>(),
    })
}
