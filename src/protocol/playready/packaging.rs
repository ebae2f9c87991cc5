//! `POST /playready/packaging/{tenant}` (internal listener): PlayReady `AcquirePackagingData`
//! as Shaka Packager's `--enable_playready_encryption` key source speaks it
//! (`docs/protocols.md`, "PlayReady packaging").
//!
//! The request's only variable is `ProgramIdentifier`, taken as the content id; the answer
//! is one key for every track of that program, with a PlayReady Object naming it. The
//! packager reads the answer with plain text searches, so the three tags it looks for are
//! written bare (`<KeyId>`, `<KeyData>`, `<Data>`), the KID as big-endian UUID text.
//!
//! The packager sends no credentials of its own, so the service token comes in the URL
//! (`?token=`) or, for other clients, in `Authorization: Bearer`. It needs `keys:write` and
//! `keys:read`: the answer carries key material.

use crate::app::{App, now_secs};
use crate::auth::Scope;
use crate::encoding::b64_encode;
use crate::http::error::{self, ApiError};
use crate::http::{Ctx, body};
use crate::protocol::keyapi::provision::{self, Slot};
use crate::protocol::playready::header::HeaderKey;
use crate::protocol::signalling::{Scheme, playready_pro};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

/// Protocol name in metrics and audit records.
pub const PROTOCOL: &str = "playready_packaging";

const NS_CHALLENGE: &str =
    "http://schemas.microsoft.com/DRM/2007/03/protocols/AcquirePackagingData/v1.0";
const PLAYREADY_ID: &str = "9A04F079-9840-4286-AB92-E65BE0885F95";

/// Errors of the packaging exchange, each a SOAP fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Body cap, timeout, unreadable body.
    #[error(transparent)]
    Http(#[from] crate::http::error::Error),
    /// The body is not an `AcquirePackagingData` request.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Token problems.
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    /// The URL's tenant is not the token's.
    #[error("the token belongs to another tenant")]
    WrongTenant,
    /// The token may create keys but not read them.
    #[error("the token may not read key material (needs keys:read)")]
    NoRead,
    /// The program's key is revoked or belongs elsewhere, or the store failed.
    #[error("{0}")]
    Key(#[from] provision::Error),
    /// A broken invariant of ours.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Http(e) => e.status(),
            Error::Malformed(_) => StatusCode::BAD_REQUEST,
            Error::Auth(e) => e.status(),
            Error::WrongTenant | Error::NoRead => StatusCode::FORBIDDEN,
            Error::Key(e) => e.status(),
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::Http(e) => e.code(),
            Error::Malformed(_) => "request_invalid",
            Error::Auth(e) => e.code(),
            Error::WrongTenant => "wrong_tenant",
            Error::NoRead => "scope_missing",
            Error::Key(provision::Error::App(e)) => e.code(),
            Error::Key(_) => "key_refused",
            Error::Internal(_) => "internal",
        }
    }
}

/// A parsed request: the program identifier.
#[derive(Debug, PartialEq, Eq)]
pub struct Request_ {
    /// `ProgramIdentifier`.
    pub program: String,
}

/// Parses the SOAP request (pure).
pub fn parse(body: &[u8]) -> Result<Request_, Error> {
    let root = crate::xml::parse(body).map_err(|e| Error::Malformed(e.to_string()))?;
    if root.local != "Envelope" {
        return Err(Error::Malformed("not a SOAP envelope".into()));
    }
    fn find<'a>(el: &'a crate::xml::Element, local: &str, out: &mut Vec<&'a crate::xml::Element>) {
        for c in el.elements() {
            if c.local == local && c.ns.as_deref() == Some(NS_CHALLENGE) {
                out.push(c);
            }
            find(c, local, out);
        }
    }
    let mut systems = Vec::new();
    find(&root, "ProtectionSystemId", &mut systems);
    if !systems.is_empty()
        && !systems
            .iter()
            .any(|s| s.text().trim().eq_ignore_ascii_case(PLAYREADY_ID))
    {
        return Err(Error::Malformed(
            "ProtectionSystems does not ask for PlayReady".into(),
        ));
    }
    let mut programs = Vec::new();
    find(&root, "ProgramIdentifier", &mut programs);
    let program = match programs.as_slice() {
        [one] => one.text().trim().to_owned(),
        [] => return Err(Error::Malformed("no ProgramIdentifier".into())),
        _ => {
            return Err(Error::Malformed("one ProgramIdentifier per request".into()));
        }
    };
    if program.is_empty()
        || program.len() > crate::protocol::keyapi::message::MAX_CONTENT_ID
        || program.chars().any(char::is_control)
    {
        return Err(Error::Malformed(
            "ProgramIdentifier must be 1..=256 bytes without control characters".into(),
        ));
    }
    Ok(Request_ { program })
}

/// The response envelope (pure). `kid` is written as uppercase UUID text, big-endian.
pub fn encode(kid: &crate::keyring::KeyId, key: &[u8; 16], pro: &[u8]) -> String {
    let kid = kid.to_string().to_ascii_uppercase();
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
            r#"<AcquirePackagingDataResponse xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><AcquirePackagingDataResult>"#,
            r#"<StreamProtectionResponses><StreamProtectionResponse><ProtectionSystems><ProtectionSystem>"#,
            r#"<ProtectionSystemId>{sys}</ProtectionSystemId><Data>{pro}</Data></ProtectionSystem></ProtectionSystems>"#,
            r#"<ContentKeys><ContentKey><KeyId>{kid}</KeyId><KeyData>{key}</KeyData></ContentKey></ContentKeys>"#,
            r#"</StreamProtectionResponse></StreamProtectionResponses></AcquirePackagingDataResult>"#,
            r#"</AcquirePackagingDataResponse></soap:Body></soap:Envelope>"#
        ),
        sys = PLAYREADY_ID,
        pro = b64_encode(pro),
        kid = kid,
        key = b64_encode(key),
    )
}

fn fault(err: &Error) -> Response<Full<Bytes>> {
    let code = if err.status().is_server_error() {
        "soap:Server"
    } else {
        "soap:Client"
    };
    let text = error::public_detail(err);
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>{code}</faultcode><faultstring>{}</faultstring><detail><code>{}</code></detail></soap:Fault></soap:Body></soap:Envelope>"#,
        quick_xml::escape::escape(text.as_str()),
        err.code()
    );
    let mut resp = error::with_status(err.status(), "text/xml; charset=utf-8", body);
    error::attach_failure(&mut resp, err);
    resp
}

/// The handler.
pub async fn handle(
    app: &App,
    req: Request<Incoming>,
    tenant: &str,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    let result = answer(app, req, tenant, ctx).await;
    let status = match &result {
        Ok(_) => "OK",
        Err(e) => e.code(),
    };
    app.metrics
        .packaging
        .with_label_values(&[PROTOCOL, status])
        .inc();
    match result {
        Ok(body) => error::ok("text/xml; charset=utf-8", body),
        Err(e) => fault(&e),
    }
}

async fn answer(
    app: &App,
    req: Request<Incoming>,
    tenant: &str,
    ctx: &mut Ctx,
) -> Result<String, Error> {
    let (parts, body) = req.into_parts();
    let query_token = body::query_param(parts.uri.query(), "token");
    let token = body::bearer(&parts.headers).or(query_token.as_deref());
    let svc = app.authorize_token(token, Scope::KeysWrite, ctx).await?;
    if app.auth.tenant_index(tenant) != Some(svc.tenant) {
        return Err(Error::WrongTenant);
    }
    if !svc.can_read {
        return Err(Error::NoRead);
    }
    let scheme = match body::query_param(parts.uri.query(), "scheme") {
        None => Scheme::Cenc,
        Some(s) => Scheme::parse(&s)
            .ok_or_else(|| Error::Malformed(format!("scheme {s:?} (cenc, cbcs, cens, cbc1)")))?,
    };
    let bytes = body::collect(
        &parts.headers,
        body,
        app.config.limits.max_api_body_bytes,
        app.body_timeout(),
    )
    .await?;
    let request = parse(&bytes)?;
    let keys = provision::by_slot(
        app,
        svc.tenant,
        &request.program,
        &[Slot {
            track: None,
            period: None,
        }],
        now_secs(),
    )
    .await?;
    // Invariant: `by_slot` answers one key per slot, and one slot was asked for.
    let Some(key) = keys.first().map(|p| &p.key) else {
        return Err(Error::Internal("no key provisioned"));
    };
    let la_url = format!("{}/playready/license", app.public_url());
    let pro = playready_pro(
        &[HeaderKey {
            kid: key.meta.kid,
            key: Some(key.key.expose()),
        }],
        scheme,
        Some(&la_url),
    );
    let body = encode(&key.meta.kid, key.key.expose(), &pro);
    app.audit(
        ctx,
        crate::audit::Event {
            event: "key.release",
            protocol: PROTOCOL,
            kids: vec![key.meta.kid],
            content_id: Some(&request.program),
            subject: svc.subject.as_deref(),
            token_id: None,
            device: None,
        },
    )
    .await;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Shaka Packager 3.8 sends (one line; the identifier inserted unescaped).
    const SHAKA_REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquirePackagingData xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/AcquirePackagingData/v1.0"><ProtectionSystems><ProtectionSystemId>9A04F079-9840-4286-AB92-E65BE0885F95</ProtectionSystemId></ProtectionSystems><StreamProtectionRequests><StreamInformation><ProgramIdentifier>tessera-program-7</ProgramIdentifier><OffsetFromProgramStart>P0S</OffsetFromProgramStart></StreamInformation></StreamProtectionRequests></challenge></AcquirePackagingData></soap:Body></soap:Envelope>"#;

    #[test]
    fn parses_the_packager_request() {
        assert_eq!(
            parse(SHAKA_REQUEST.as_bytes()).unwrap().program,
            "tessera-program-7"
        );
        let other = SHAKA_REQUEST.replace("9A04F079", "EDEF8BA9");
        assert!(parse(other.as_bytes()).is_err());
        let none = SHAKA_REQUEST.replace("tessera-program-7", "");
        assert!(parse(none.as_bytes()).is_err());
        assert!(parse(b"<a/>").is_err());
    }

    #[test]
    fn response_has_the_bare_tags_in_big_endian() {
        let kid = crate::keyring::KeyId::parse("ac1f4667-cd91-3ae3-3137-ac232b0e6617").unwrap();
        let body = encode(&kid, &[1; 16], b"PRO");
        // What the packager's text search needs: literal tags, Data before its end tag.
        assert!(body.contains("<KeyId>AC1F4667-CD91-3AE3-3137-AC232B0E6617</KeyId>"));
        assert!(body.contains("<KeyData>AQEBAQEBAQEBAQEBAQEBAQ==</KeyData>"));
        assert!(body.find("<Data>").unwrap() < body.find("</Data>").unwrap());
        assert!(crate::xml::parse(body.as_bytes()).is_ok());
    }
}
