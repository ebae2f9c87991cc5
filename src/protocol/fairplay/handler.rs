//! `GET /fairplay/certificate` and `POST /fairplay/license` (alias `/fairplay/ckc`) on the
//! public listener (`docs/fairplay.md` §5, §10): the SPC in any shape players send, the CKC
//! back in the same shape. The entitlement token is checked after the asset ID is resolved,
//! against the key it names. Errors carry FairPlay Streaming's status codes: as JSON
//! `{"status": code, "error": name}` for JSON requests, else as text, and always in
//! `X-FPS-Status`.

use super::ckc::{self, Duration};
use super::request::{self, Shape};
use super::setup::FairPlay;
use super::spc::{self, SpcVersion};
use super::{Error, asset};
use crate::app::App;
use crate::http::error::{ApiError, attach_failure, public_detail};
use crate::http::{Ctx, body};
use crate::keyring::{CachedKey, KeyId};
use crate::license::policy::{Hdcp, SecurityLevel};
use crate::license::{self, Omission};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use std::sync::Arc;

/// Protocol name in metrics and audit records.
pub const PROTOCOL: &str = <super::FairPlayProtocol as crate::protocol::Protocol>::NAME;

/// The SPC's media playback state "playback stopped": answered without a CKC.
const STATE_STOPPED: u32 = 0x5991bf20;

/// A refusal at the HTTP boundary.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Fps(#[from] Error),
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    #[error("no key for this asset ID")]
    UnknownAsset,
    #[error("the token does not entitle this key ({0})")]
    NotEntitled(&'static str),
    #[error("the SPC's asset ID and the request's asset hint name different keys")]
    Mismatch,
    #[error("FairPlay-style licences are not configured for this tenant")]
    NotConfigured,
    #[error(transparent)]
    Http(crate::http::error::Error),
    #[error(transparent)]
    App(#[from] crate::app::Error),
}

impl ApiError for Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Fps(Error::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::Fps(_) | Refusal::Mismatch => StatusCode::BAD_REQUEST,
            Refusal::Auth(e) => e.status(),
            Refusal::NotEntitled(_) => StatusCode::FORBIDDEN,
            Refusal::UnknownAsset | Refusal::NotConfigured => StatusCode::NOT_FOUND,
            Refusal::Http(e) => e.status(),
            Refusal::App(e) => e.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Refusal::Auth(e) => e.code(),
            Refusal::Http(e) => e.code(),
            Refusal::NotEntitled(_) => "not_entitled",
            _ => self.fps().1,
        }
    }
}

impl Refusal {
    /// (FPS status, its name).
    fn fps(&self) -> (i32, &'static str) {
        match self {
            Refusal::Fps(e) => (
                e.code(),
                match e {
                    Error::SpcVersion(_) => "spcVersionErr",
                    Error::Parser(_) => "parserErr",
                    Error::MissingTag(_) => "missingRequiredTagErr",
                    Error::Param(_) => "paramErr",
                    Error::Integrity => "integrityErr",
                    Error::Version => "versionErr",
                    Error::DupTag(_) => "dupTagErr",
                    Error::Certificate => "invalidCertificateErr",
                    Error::Internal => "internalErr",
                },
            ),
            Refusal::Auth(_) | Refusal::NotEntitled(_) => (-42604, "clientSecurityLevelErr"),
            Refusal::UnknownAsset | Refusal::NotConfigured => (-42584, "ckNotFoundErr"),
            Refusal::Mismatch => (-42585, "paramErr"),
            Refusal::Http(_) => (-42585, "paramErr"),
            Refusal::App(_) => (-42601, "internalErr"),
        }
    }
}

fn respond(
    result: Result<(StatusCode, &'static str, Vec<u8>), (Refusal, bool)>,
) -> Response<Full<Bytes>> {
    match result {
        Ok((status, ctype, body)) => crate::http::error::with_status(status, ctype, body),
        Err((e, json)) => {
            let status = e.status();
            let (code, name) = e.fps();
            // One uniform body for every unwrap failure; server faults say nothing more.
            let text = public_detail(&e);
            let mut resp = if json {
                crate::http::error::with_status(
                    status,
                    "application/json",
                    serde_json::json!({"status": code, "error": name, "detail": text}).to_string(),
                )
            } else {
                crate::http::error::with_status(
                    status,
                    "text/plain; charset=utf-8",
                    format!("{name} ({code}): {text}"),
                )
            };
            if let Ok(v) = HeaderValue::from_str(&code.to_string()) {
                resp.headers_mut().insert("x-fps-status", v);
            }
            attach_failure(&mut resp, &e);
            resp
        }
    }
}

/// `GET /fairplay/certificate[?tenant=T][&format=der|base64|json]`.
pub fn certificate(app: &App, fp: &FairPlay, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let q = req.uri().query();
    let tenant = body::query_param(q, "tenant")
        .and_then(|t| app.auth.tenant_index(&t))
        .or_else(|| (app.config.tenants.len() == 1).then_some(0));
    let Some(cred) = tenant.and_then(|t| fp.for_tenant(t)) else {
        return respond(Err((Refusal::NotConfigured, false)));
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = body::query_param(q, "format").unwrap_or_else(|| {
        if accept.starts_with("application/json") {
            "json".into()
        } else if accept.starts_with("text/plain") {
            "base64".into()
        } else {
            "der".into()
        }
    });
    let b64 = crate::encoding::b64_encode(&cred.certificate);
    let (ctype, bytes) = match format.as_str() {
        "json" => (
            "application/json",
            serde_json::json!({ "certificate": b64 })
                .to_string()
                .into_bytes(),
        ),
        "base64" => ("text/plain", b64.into_bytes()),
        _ => ("application/pkix-cert", cred.certificate.clone()),
    };
    let mut resp = crate::http::error::ok(ctype, bytes);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

/// `POST /fairplay/license`.
pub async fn license(
    app: &App,
    fp: &FairPlay,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    let (parts, incoming) = req.into_parts();
    let bytes = match body::collect(
        &parts.headers,
        incoming,
        request::MAX_BODY,
        app.body_timeout(),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return respond(Err((Refusal::Http(e), false))),
    };
    let json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let query_token = body::query_param(parts.uri.query(), "token");
    let token = body::bearer(&parts.headers).or(query_token.as_deref());
    let override_shape = body::query_param(parts.uri.query(), "response");
    let result = answer(app, fp, &bytes, token, override_shape.as_deref(), ctx).await;
    let status = match &result {
        Ok(_) => "OK",
        Err(e) => e.code(),
    };
    app.metrics
        .packaging
        .with_label_values(&[PROTOCOL, status])
        .inc();
    respond(result.map_err(|e| (e, json)))
}

async fn answer(
    app: &App,
    fp: &FairPlay,
    body: &[u8],
    token: Option<&str>,
    override_shape: Option<&str>,
    ctx: &mut Ctx,
) -> Result<(StatusCode, &'static str, Vec<u8>), Refusal> {
    let decoded = request::decode(body)?;
    let container = spc::parse_container(&decoded.spc)?;
    let cred = fp
        .by_hash(container.cert_hash)
        .ok_or(Error::Certificate)?
        .clone();
    let v3 = if container.version == SpcVersion::V3 {
        cred.v3.as_ref()
    } else {
        None
    };
    let payload = spc::decrypt(&container, &cred.private, v3)?;
    let parsed = spc::parse(&payload)?;

    // The asset: the SPC's asset ID is authoritative; a hint in the body must agree.
    let from_spc = asset::decode(parsed.asset_id)
        .and_then(|a| asset::resolve(&a))
        .ok_or(Error::Param("asset ID is neither UTF-8 nor UTF-16"))?;
    if let Some(hint) = decoded.hint.as_deref().and_then(asset::resolve)
        && hint != from_spc
    {
        return Err(Refusal::Mismatch);
    }
    let ent = app.entitle(token, ctx).await?;
    if ent.tenant != cred.tenant {
        return Err(Refusal::NotEntitled("another tenant's certificate"));
    }
    let key = resolve_key(app, ent.tenant, &from_spc).await?;
    let grant = license::decide(
        &ent,
        vec![(key.meta.kid, Some(key.clone()))],
        SecurityLevel::SwSecureDecode,
    );
    let Some(key) = grant.keys.first().cloned() else {
        let why = grant
            .omitted
            .first()
            .map_or("not_entitled", |(_, w)| w.code());
        app.metrics.denial("not_entitled");
        return Err(match grant.omitted.first() {
            Some((_, Omission::NotFound)) => Refusal::UnknownAsset,
            _ => Refusal::NotEntitled(why),
        });
    };
    if parsed
        .playback_state
        .is_some_and(|(_, state, _)| state == STATE_STOPPED)
    {
        // The end of a lease: nothing to deliver.
        return Ok((StatusCode::NO_CONTENT, "text/plain", Vec::new()));
    }
    let policy = &ent.policy;
    let duration = if policy.can_persist {
        Duration::Persistent {
            storage: secs(policy.license_duration_secs),
            playback: secs(policy.playback_duration_secs),
        }
    } else {
        Duration::Streaming {
            lease: secs(policy.license_duration_secs),
            rental: secs(policy.rental_duration_secs),
        }
    };
    let hdcp = match policy.required_hdcp(key.meta.track) {
        Hdcp::None => ckc::hdcp::TYPE_0,
        Hdcp::V1 | Hdcp::V2 | Hdcp::V2_1 => ckc::hdcp::TYPE_0,
        _ => ckc::hdcp::TYPE_1,
    };
    let session = cred.provider.open_session(&parsed)?;
    app.consume(&ent).await?;
    // The stored IV is not kept for keys; 16 zero bytes, as Apple's own inputs default.
    let ckc_bytes = ckc::build(
        &parsed,
        &session,
        key.key.expose(),
        &[0; 16],
        hdcp,
        duration,
    )?;
    app.metrics.license(PROTOCOL, 1);
    app.audit_licence(ctx, "key.release", PROTOCOL, &ent, vec![key.meta.kid])
        .await;
    tracing::debug!(
        hu = %crate::encoding::hex_encode(&session.hu),
        transaction = %crate::encoding::hex_encode(&parsed.transaction_id),
        "fairplay licence"
    );
    let shape = match override_shape {
        Some("raw") => Shape::Raw,
        Some("base64") => Shape::Base64,
        Some("ckc-tag") => Shape::Form,
        Some("json") => Shape::Json("spc".into()),
        _ => decoded.shape,
    };
    let (ctype, out) = request::encode(&shape, &ckc_bytes);
    Ok((StatusCode::OK, ctype, out))
}

fn secs(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

async fn resolve_key(app: &App, tenant: u32, a: &asset::Asset) -> Result<Arc<CachedKey>, Refusal> {
    match a {
        asset::Asset::Kid(kid) => {
            let found = app.lookup_keys(tenant, &[*kid]).await?;
            found
                .into_iter()
                .next()
                .and_then(|(_, k)| k)
                .ok_or(Refusal::UnknownAsset)
        }
        asset::Asset::ContentId(content) => {
            let records = app
                .store
                .list_by_content(app.auth.tenant_id(tenant), content)
                .await
                .map_err(crate::app::Error::from)?;
            // A content id names its one active key (HLS FairPlay content has one per title;
            // with several, the SD or first one: name a KID to choose).
            let rec = records
                .iter()
                .filter(|r| r.meta.is_active())
                .min_by_key(|r| r.meta.track.map_or(0, |t| t as u8 + 1))
                .ok_or(Refusal::UnknownAsset)?;
            let kid: KeyId = rec.meta.kid;
            let found = app.lookup_keys(tenant, &[kid]).await?;
            found
                .into_iter()
                .next()
                .and_then(|(_, k)| k)
                .ok_or(Refusal::UnknownAsset)
        }
    }
}
