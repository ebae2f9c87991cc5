//! `POST /speke/v2`. Contract errors are HTTP 422 with the plain-text reason SPEKE clients
//! log (the MediaPackage-documented strings where one exists), a malformed body is 400,
//! Tessera's own faults 5xx; nothing is stored unless the whole request is valid.
//!
//! Authorisation: a service token of the tenant with `keys:write` and `keys:read`, as a
//! bearer token, or as the password of HTTP Basic authentication (what on-premises SPEKE
//! encryptors can send), or in `?token=`.

use super::document::{self, Context};
use crate::app::{App, now_secs};
use crate::auth::Scope;
use crate::http::error::{self, ApiError};
use crate::http::{Ctx, body};
use crate::keyring::TrackType;
use crate::protocol::keyapi::provision::{self, Named};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

/// Protocol name in metrics and audit records.
pub const PROTOCOL: &str = <super::SpekeProtocol as crate::protocol::Protocol>::NAME;

/// `X-Speke-User-Agent` of every answer.
pub const USER_AGENT: &str = concat!("tessera/", env!("CARGO_PKG_VERSION"));

/// Errors of the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Body cap, timeout.
    #[error(transparent)]
    Http(#[from] crate::http::error::Error),
    /// The SPEKE contract.
    #[error(transparent)]
    Document(#[from] document::Error),
    /// Token problems.
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    /// The token may create keys but not read them.
    #[error("the token may not read key material (needs keys:read)")]
    NoRead,
    /// A KID that belongs to another content id, or is revoked.
    #[error("{0}")]
    Key(provision::Error),
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Http(e) => e.status(),
            Error::Document(e) if e.is_malformed() => StatusCode::BAD_REQUEST,
            Error::Document(e) if e.is_internal() => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Document(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Auth(e) => e.status(),
            Error::NoRead => StatusCode::FORBIDDEN,
            Error::Key(e) => e.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Http(e) => e.code(),
            Error::Document(e) if e.is_malformed() => "request_invalid",
            Error::Document(e) if e.is_internal() => "internal",
            Error::Document(_) => "speke_contract",
            Error::Auth(e) => e.code(),
            Error::NoRead => "scope_missing",
            Error::Key(e) => e.code(),
        }
    }
}

/// The token: bearer, Basic password, or `?token=`.
fn token(parts: &http::request::Parts) -> Option<String> {
    if let Some(t) = body::bearer(&parts.headers) {
        return Some(t.to_owned());
    }
    let basic = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| crate::encoding::b64_decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|userpass| userpass.split_once(':').map(|(_, p)| p.to_owned()))
        .filter(|p| !p.is_empty());
    basic.or_else(|| body::query_param(parts.uri.query(), "token"))
}

/// The handler.
pub async fn handle(app: &App, req: Request<Incoming>, ctx: &mut Ctx) -> Response<Full<Bytes>> {
    let result = answer(app, req, ctx).await;
    let status = match &result {
        Ok(_) => "OK",
        Err(e) => e.code(),
    };
    app.metrics
        .packaging
        .with_label_values(&[PROTOCOL, status])
        .inc();
    let mut resp = match result {
        Ok((version, body)) => {
            let mut r = error::ok("application/xml", body);
            r.headers_mut().insert(
                "x-speke-version",
                HeaderValue::from_static(version.as_str()),
            );
            r
        }
        Err(e) => {
            let status = e.status();
            let mut r = error::with_status(
                status,
                "text/plain; charset=utf-8",
                error::public_detail(&e),
            );
            error::attach_failure(&mut r, &e);
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer, Basic realm=\"tessera\""),
                );
            }
            r
        }
    };
    resp.headers_mut()
        .insert("x-speke-user-agent", HeaderValue::from_static(USER_AGENT));
    resp
}

async fn answer(
    app: &App,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Result<(document::Version, String), Error> {
    let (parts, body) = req.into_parts();
    let token = token(&parts);
    let svc = app
        .authorize_token(token.as_deref(), Scope::KeysWrite, ctx)
        .await?;
    if !svc.can_read {
        return Err(Error::NoRead);
    }
    let bytes = body::collect(
        &parts.headers,
        body,
        app.config.limits.max_api_body_bytes,
        app.body_timeout(),
    )
    .await?;
    let speke_version = parts
        .headers
        .get("x-speke-version")
        .and_then(|v| v.to_str().ok());
    let request = document::parse(
        &bytes,
        speke_version,
        app.config.limits.max_kids_per_request,
    )?;
    let wanted: Vec<Named> = request
        .keys
        .iter()
        .map(|k| Named {
            kid: k.kid,
            track: k.track_type.as_deref().and_then(TrackType::parse),
            period: k.period,
        })
        .collect();
    let keys = provision::by_kid(app, svc.tenant, &request.content_id, &wanted, now_secs())
        .await
        .map_err(Error::Key)?;
    let material: Vec<[u8; 16]> = keys.iter().map(|p| *p.key.key.expose()).collect();
    let material = zeroize::Zeroizing::new(material);
    // An IV the encryptor asks for is derived from the KID under a per-tenant secret, so a
    // repeated request gets the same IV, on every node.
    let iv_secret = app.keyring.purpose_secret("speke-explicit-iv");
    let iv_key = crate::crypto::HmacKey::new(crate::crypto::HmacAlg::Sha256, &iv_secret[..]);
    let tenant_id = app.auth.tenant_id(svc.tenant);
    let ivs: Vec<[u8; 16]> = request
        .keys
        .iter()
        .map(|k| {
            let mut msg = tenant_id.as_bytes().to_vec();
            msg.push(0);
            msg.extend_from_slice(k.kid.as_bytes());
            let mac = iv_key.sign(&msg);
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&mac[..16]);
            iv
        })
        .collect();
    let public_url = app.public_url();
    let version = request.version;
    let content_id = request.content_id.clone();
    let body = document::respond(
        request,
        &material,
        &ivs,
        &Context {
            widevine_provider: &app.config.packaging.widevine_provider,
            public_url: &public_url,
        },
    )?;
    app.audit(
        ctx,
        crate::audit::Event {
            event: "key.release",
            protocol: PROTOCOL,
            kids: keys.iter().map(|p| p.key.meta.kid).collect(),
            content_id: Some(&content_id),
            subject: svc.subject.as_deref(),
            token_id: None,
            device: None,
        },
    )
    .await;
    Ok((version, body))
}
