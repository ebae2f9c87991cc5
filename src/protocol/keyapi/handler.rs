//! Key API handlers. Creation is idempotent: generated keys get a KID derived from (tenant,
//! content id, track, period), so a retry, or two nodes racing, converge on one key; an
//! import of a KID that exists with the same key is a no-op, with another key a 409.

use super::message::{self, Create, KeyView, SignallingContext};
use super::provision;
use crate::app::{App, now_secs};
use crate::auth::Scope;
use crate::http::error::{self, ApiError};
use crate::http::{Ctx, body};
use crate::keyring::{KeyId, KeyMeta, KeyState};
use crate::protocol::signalling::Scheme;
use crate::store::{self, KeyRecord};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

const PROTOCOL: &str = <super::KeyApiProtocol as crate::protocol::Protocol>::NAME;

/// Key API errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Body cap or unreadable body.
    #[error(transparent)]
    Http(#[from] crate::http::error::Error),
    /// Malformed request.
    #[error(transparent)]
    Request(#[from] message::Error),
    /// A path or query parameter is invalid.
    #[error("{0}")]
    Param(String),
    /// Token problems.
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    /// No such key in this tenant.
    #[error("no such key")]
    NotFound,
    /// The KID exists with another content id or other key bytes.
    #[error("key id {0} already exists with different content id or key")]
    Conflict(KeyId),
    /// Store or keyring failure.
    #[error(transparent)]
    App(#[from] crate::app::Error),
}

impl From<provision::Error> for Error {
    fn from(e: provision::Error) -> Self {
        match e {
            provision::Error::Conflict(kid) | provision::Error::Revoked(kid) => {
                Error::Conflict(kid)
            }
            provision::Error::App(e) => Error::App(e),
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(kid) => Error::Conflict(kid),
            other => Error::App(other.into()),
        }
    }
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Http(e) => e.status(),
            Error::Request(_) | Error::Param(_) => StatusCode::BAD_REQUEST,
            Error::Auth(e) => e.status(),
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::App(e) => e.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::Http(e) => e.code(),
            Error::Request(_) | Error::Param(_) => "request_invalid",
            Error::Auth(e) => e.code(),
            Error::NotFound => "key_not_found",
            Error::Conflict(_) => "key_conflict",
            Error::App(e) => e.code(),
        }
    }
}

fn respond(result: Result<Response<Full<Bytes>>, Error>) -> Response<Full<Bytes>> {
    result.unwrap_or_else(|e| error::problem(&e as &dyn ApiError))
}

fn json(status: StatusCode, keys: &[KeyView]) -> Response<Full<Bytes>> {
    error::with_status(status, "application/json", message::encode_keys(keys))
}

/// `POST /v1/keys`
pub async fn create(app: &App, req: Request<Incoming>, ctx: &mut Ctx) -> Response<Full<Bytes>> {
    respond(create_inner(app, req, ctx).await)
}

async fn create_inner(
    app: &App,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Result<Response<Full<Bytes>>, Error> {
    let (parts, body) = req.into_parts();
    let svc = app.authorize(&parts.headers, Scope::KeysWrite, ctx).await?;
    let scheme = scheme(&parts.uri)?;
    let bytes = body::collect(
        &parts.headers,
        body,
        app.config.limits.max_api_body_bytes,
        app.body_timeout(),
    )
    .await?;
    let request = message::parse_create(&bytes, app.config.limits.max_kids_per_request)?;
    let tenant_id = app.auth.tenant_id(svc.tenant).to_owned();
    let now = now_secs();
    let (content_id, provisioned, imported) = match request {
        Create::Generate {
            content_id,
            tracks,
            periods,
        } => {
            let slots: Vec<provision::Slot> = periods
                .iter()
                .flat_map(|&period| {
                    tracks.iter().map(move |&track| provision::Slot {
                        track: Some(track),
                        period,
                    })
                })
                .collect();
            let keys = provision::by_slot(app, svc.tenant, &content_id, &slots, now).await?;
            (content_id, keys, false)
        }
        Create::Import { content_id, keys } => {
            let keys = import(app, svc.tenant, &tenant_id, &content_id, keys, now).await?;
            (content_id, keys, true)
        }
    };
    let mut views = Vec::with_capacity(provisioned.len());
    let (mut created, mut reused) = (Vec::new(), Vec::new());
    for p in &provisioned {
        if p.created {
            created.push(p.key.meta.kid)
        } else {
            reused.push(p.key.meta.kid)
        }
        views.push(view(app, &svc, &p.key, scheme));
    }
    let subject = svc.subject.as_deref();
    let any_created = !created.is_empty();
    if any_created {
        let event = if imported { "key.import" } else { "key.create" };
        audit(app, ctx, event, created, Some(&content_id), subject).await;
    }
    if !reused.is_empty() && svc.can_read {
        audit(app, ctx, "key.read", reused, Some(&content_id), subject).await;
    }
    let status = if any_created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &views))
}

/// Stores imported keys. A KID that exists with the same key is a no-op, with another key
/// or content id a 409; the store checks inside its transaction, so a 409 leaves nothing of
/// the request behind.
async fn import(
    app: &App,
    tenant: u32,
    tenant_id: &str,
    content_id: &str,
    keys: Vec<message::Import>,
    now: u64,
) -> Result<Vec<provision::Provisioned>, Error> {
    let mut records = Vec::with_capacity(keys.len());
    for k in keys {
        let meta = KeyMeta {
            kid: k.kid,
            content_id: content_id.to_owned(),
            track: k.track,
            period: k.period,
            created_at: now,
            state: KeyState::Active,
        };
        let sealed = app
            .keyring
            .seal(tenant_id, &meta, &k.key)
            .map_err(crate::app::Error::from)?;
        records.push(KeyRecord { meta, sealed });
    }
    let (keyring, tenant_owned) = (app.keyring.clone(), tenant_id.to_owned());
    let same_key: crate::store::SameKey =
        std::sync::Arc::new(move |old: &KeyRecord, new: &KeyRecord| {
            match (
                keyring.open(&tenant_owned, &old.meta, &old.sealed),
                keyring.open(&tenant_owned, &new.meta, &new.sealed),
            ) {
                (Ok(a), Ok(b)) => crate::crypto::ct_eq(a.expose(), b.expose()),
                _ => false,
            }
        });
    let inserted = app.store.insert_keys(tenant_id, records, same_key).await?;
    let mut out = Vec::with_capacity(inserted.len());
    for ins in inserted {
        out.push(provision::Provisioned {
            created: ins.created,
            key: app.open_and_cache(tenant, ins.record)?,
        });
    }
    app.metrics
        .keys_created
        .with_label_values(&["imported"])
        .inc_by(out.iter().filter(|p| p.created).count() as u64);
    Ok(out)
}

/// The API view of a key: material only for tokens that may read keys, and never for a
/// revoked key (revoked means never released again, by any interface); the signalling of
/// active keys for the scheme of `?scheme=` (default `cenc`).
fn view(
    app: &App,
    svc: &crate::auth::Service,
    k: &crate::keyring::CachedKey,
    scheme: Scheme,
) -> KeyView {
    let material = (svc.can_read && k.meta.is_active()).then_some(&k.key);
    let la_url = format!("{}/playready/license", app.public_url());
    KeyView::new(&k.meta, material).with_signalling(
        &k.meta,
        material,
        &SignallingContext {
            scheme,
            provider: &app.config.packaging.widevine_provider,
            la_url: &la_url,
        },
    )
}

/// The `?scheme=` of a request.
fn scheme(uri: &http::Uri) -> Result<Scheme, Error> {
    match body::query_param(uri.query(), "scheme") {
        None => Ok(Scheme::Cenc),
        Some(s) => Scheme::parse(&s)
            .ok_or_else(|| Error::Param(format!("scheme {s:?} (cenc, cbcs, cens, cbc1)"))),
    }
}

/// Records a key API event (the token id of a service token is not kept).
async fn audit(
    app: &App,
    ctx: &Ctx,
    event: &'static str,
    kids: Vec<KeyId>,
    content_id: Option<&str>,
    subject: Option<&str>,
) {
    let event = crate::audit::Event {
        event,
        protocol: PROTOCOL,
        kids,
        content_id,
        subject,
        token_id: None,
        device: None,
    };
    app.audit(ctx, event).await;
}

fn parse_kid(kid: &str) -> Result<KeyId, Error> {
    KeyId::parse(kid).map_err(|e| Error::Param(format!("kid {kid:?}: {e}")))
}

/// `GET /v1/keys/{kid}`
pub async fn get(
    app: &App,
    req: Request<Incoming>,
    kid: &str,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    respond(
        async {
            let svc = app.authorize(req.headers(), Scope::KeysRead, ctx).await?;
            let scheme = scheme(req.uri())?;
            let kid = parse_kid(kid)?;
            let found = app.lookup_keys(svc.tenant, &[kid]).await?;
            let key = found
                .into_iter()
                .next()
                .and_then(|(_, k)| k)
                .ok_or(Error::NotFound)?;
            audit(
                app,
                ctx,
                "key.read",
                vec![kid],
                Some(&key.meta.content_id),
                svc.subject.as_deref(),
            )
            .await;
            Ok(json(StatusCode::OK, &[view(app, &svc, &key, scheme)]))
        }
        .await,
    )
}

/// `GET /v1/keys?content_id=...`
pub async fn list(app: &App, req: Request<Incoming>, ctx: &mut Ctx) -> Response<Full<Bytes>> {
    respond(
        async {
            let svc = app.authorize(req.headers(), Scope::KeysRead, ctx).await?;
            let scheme = scheme(req.uri())?;
            let content_id = body::query_param(req.uri().query(), "content_id")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| Error::Param("content_id query parameter is required".into()))?;
            let tenant_id = app.auth.tenant_id(svc.tenant);
            let records = app.store.list_by_content(tenant_id, &content_id).await?;
            let mut views = Vec::with_capacity(records.len());
            for rec in records {
                let k = app.open_and_cache(svc.tenant, rec)?;
                views.push(view(app, &svc, &k, scheme));
            }
            if !views.is_empty() {
                audit(
                    app,
                    ctx,
                    "key.read",
                    views
                        .iter()
                        .filter_map(|v| KeyId::parse(&v.kid).ok())
                        .collect(),
                    Some(&content_id),
                    svc.subject.as_deref(),
                )
                .await;
            }
            Ok(json(StatusCode::OK, &views))
        }
        .await,
    )
}

/// `POST /v1/keys/{kid}/revoke`
pub async fn revoke(
    app: &App,
    req: Request<Incoming>,
    kid: &str,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    respond(
        async {
            let svc = app.authorize(req.headers(), Scope::KeysWrite, ctx).await?;
            let kid = parse_kid(kid)?;
            let tenant_id = app.auth.tenant_id(svc.tenant);
            let rec = app
                .store
                .revoke(tenant_id, kid, now_secs())
                .await?
                .ok_or(Error::NotFound)?;
            // Local effect is immediate; other nodes mark it when they poll the change feed.
            let at = match rec.meta.state {
                crate::keyring::KeyState::Revoked { at } => at,
                crate::keyring::KeyState::Active => now_secs(),
            };
            app.cache.revoke(svc.tenant, &kid, at);
            app.metrics.keys_revoked.inc();
            audit(
                app,
                ctx,
                "key.revoke",
                vec![kid],
                Some(&rec.meta.content_id),
                svc.subject.as_deref(),
            )
            .await;
            Ok(json(StatusCode::OK, &[KeyView::new(&rec.meta, None)]))
        }
        .await,
    )
}
