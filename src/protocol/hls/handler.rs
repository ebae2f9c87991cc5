//! `GET /hls/key/{kid}`.

use crate::app::App;
use crate::http::error::{self, ApiError};
use crate::http::{Ctx, body};
use crate::keyring::KeyId;
use crate::license::{self, Omission, policy::SecurityLevel};
use crate::protocol::refusal::Error;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

const PROTOCOL: &str = <super::HlsProtocol as crate::protocol::Protocol>::NAME;

/// Handles one key request.
pub async fn handle(
    app: &App,
    req: Request<Incoming>,
    kid: &str,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    match key(app, &req, kid, ctx).await {
        Ok(resp) => resp,
        Err(e) => error::problem(&e as &dyn ApiError),
    }
}

async fn key(
    app: &App,
    req: &Request<Incoming>,
    kid: &str,
    ctx: &mut Ctx,
) -> Result<Response<Full<Bytes>>, Error> {
    let query_token = body::query_param(req.uri().query(), "token");
    let token = body::bearer(req.headers()).or(query_token.as_deref());
    let ent = app.entitle(token, ctx).await?;
    let kid = KeyId::parse(kid).map_err(|e| Error::Request(e.to_string()))?;
    let found = app.lookup_keys(ent.tenant, &[kid]).await?;
    let grant = license::decide(&ent, found, SecurityLevel::SwSecureCrypto);
    let Some(k) = grant.keys.first() else {
        return Err(match grant.omitted.first() {
            Some((_, Omission::NotFound)) => Error::NotFound,
            Some((kid, why)) => {
                app.metrics.denial("not_entitled");
                Error::Refused(vec![(kid.to_string(), why.code())])
            }
            None => Error::NotFound,
        });
    };
    app.consume(&ent).await?;
    app.metrics.license(PROTOCOL, 1);

    app.audit_licence(ctx, "key.release", PROTOCOL, &ent, vec![k.meta.kid])
        .await;
    Ok(error::ok(
        "application/octet-stream",
        Bytes::copy_from_slice(k.key.expose()),
    ))
}
