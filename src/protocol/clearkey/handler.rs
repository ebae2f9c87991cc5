//! `POST /clearkey/license`: body cap -> token -> parse -> keys (cache, then store) -> rules
//! -> JWK set. ClearKey runs in software, so the client security level is
//! `SW_SECURE_CRYPTO`: a policy demanding more for a track keeps that track's key out.

use super::message::{self, SessionType};
use crate::app::App;
use crate::http::error::{self, ApiError};
use crate::http::{Ctx, body};
use crate::license::{self, policy::SecurityLevel};
use crate::protocol::refusal::Error;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

const PROTOCOL: &str = <super::ClearKeyProtocol as crate::protocol::Protocol>::NAME;

/// Handles one licence request.
pub async fn handle(app: &App, req: Request<Incoming>, ctx: &mut Ctx) -> Response<Full<Bytes>> {
    match license(app, req, ctx).await {
        Ok(resp) => resp,
        Err(e) => error::problem(&e as &dyn ApiError),
    }
}

async fn license(
    app: &App,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Result<Response<Full<Bytes>>, Error> {
    let (parts, body) = req.into_parts();
    // Authenticate before reading the body: an anonymous client cannot make us buffer it.
    let ent = app.entitle(body::bearer(&parts.headers), ctx).await?;
    let bytes = body::collect(
        &parts.headers,
        body,
        app.config.limits.max_license_body_bytes,
        app.body_timeout(),
    )
    .await?;
    let request = message::parse(&bytes, app.config.limits.max_kids_per_request)
        .map_err(|e| Error::Request(e.to_string()))?;
    if request.session_type == SessionType::PersistentLicense && !ent.policy.can_persist {
        return Err(Error::PersistenceNotAllowed);
    }
    let found = app.lookup_keys(ent.tenant, &request.kids).await?;
    let grant = license::decide(&ent, found, SecurityLevel::SwSecureCrypto);
    if grant.keys.is_empty() {
        app.metrics.denial("not_entitled");
        return Err(Error::Refused(
            grant
                .omitted
                .iter()
                .map(|(k, why)| (message::kid_b64url(k), why.code()))
                .collect(),
        ));
    }
    app.consume(&ent).await?;
    let mut out = Vec::with_capacity(64 + 80 * grant.keys.len());

    message::encode(
        grant.keys.iter().map(|k| (&k.meta.kid, &k.key)),
        request.session_type,
        &mut out,
    );
    app.metrics.license(PROTOCOL, grant.keys.len());
    app.audit_licence(
        ctx,
        "key.release",
        PROTOCOL,
        &ent,
        grant.keys.iter().map(|k| k.meta.kid).collect(),
    )
    .await;
    Ok(error::ok("application/json", out))
}
