//! `POST /widevine/license`: the raw `SignedMessage` in, the raw `SignedMessage` out.
//!
//! Order of checks (each failure answers a problem body naming the check):
//! token -> body cap -> decode (message, content ids, KIDs, request_id) -> client id (privacy
//! mode: decrypt) -> device chain (cached) -> request signature -> persistence -> keys and
//! rules (entitlement, revocation, security level, HDCP) -> max-uses -> licence. A service-certificate request (`08 04`) is answered without a
//! token: the certificate is public, and players fetch it before they hold a licence token.

use super::message::{self, Content, Incoming, LicenseKind, SignedRequest};
use super::{Widevine, pb, policy};
use crate::app::{App, now_secs};
use crate::crypto::rsa::PssHash;
use crate::http::error::{self, ApiError};
use crate::http::{Ctx, body};
use crate::keyring::KeyId;
use crate::license::{self, Entitlement, Omission};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming as Body;

const PROTOCOL: &str = <super::WidevineProtocol as crate::protocol::Protocol>::NAME;

/// Denial reasons this protocol counts in `tessera_auth_denials_total` (besides token ones).
pub const DENIAL_CODES: [&str; 8] = [
    "device_certificate_missing",
    "device_chain_invalid",
    "device_chain_signature",
    "device_chain_untrusted",
    "device_certificate_expired",
    "device_revoked",
    "request_signature_invalid",
    "client_id_undecryptable",
];
/// A service-certificate request is two bytes; anything larger without a token is refused
/// before it is buffered.
const ANONYMOUS_BODY_CAP: usize = 64;

/// Why a Widevine-style request got no licence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Body cap, unreadable body.
    #[error(transparent)]
    Http(#[from] crate::http::error::Error),
    /// The protocol is not configured (no device roots).
    #[error("Widevine-style licences are not configured on this server (no [widevine] roots)")]
    NotConfigured,
    /// Token missing, invalid, or lacking rights.
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    /// The request does not decode.
    #[error("{0}")]
    Request(#[from] message::Error),
    /// No client identification in the request.
    #[error("the licence request carries no client identification")]
    NoClientId,
    /// Privacy mode failed.
    #[error("{0}")]
    Privacy(#[from] super::service::Error),
    /// The device chain is not trusted.
    #[error("{0}")]
    Device(#[from] super::device::Error),
    /// The request signature does not verify with the device key.
    #[error("the licence request signature does not verify with the device key")]
    Signature,
    /// No requested key may be released; each KID with the reason.
    #[error("no requested key is available to this token and device")]
    Refused(Vec<(String, &'static str)>),
    /// OFFLINE asked for, policy forbids persistence.
    #[error("the policy does not allow persistent (offline) licences")]
    PersistenceNotAllowed,
    /// RENEWAL asked for, policy forbids renewal.
    #[error("the policy does not allow licence renewal")]
    RenewalNotAllowed,
    /// A renewal or release names a licence this server did not issue, or is not signed
    /// with that licence's key.
    #[error("the renewal or release does not match a licence issued by this server")]
    UnknownLicense,
    /// The licence is older than `[widevine] session_max_age_secs`.
    #[error("the licence is too old to be renewed or released")]
    SessionExpired,
    /// Store or keyring failure.
    #[error(transparent)]
    App(#[from] crate::app::Error),
    /// RNG or RSA failure on our side.
    #[error("licence crypto failed: {0}")]
    Crypto(#[from] crate::crypto::Error),
}

impl From<super::license::Error> for Error {
    fn from(e: super::license::Error) -> Self {
        match e {
            super::license::Error::Crypto(c) => Error::Crypto(c),
        }
    }
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Http(e) => e.status(),
            Error::NotConfigured => StatusCode::NOT_FOUND,
            Error::Auth(e) => e.status(),
            // Privacy-mode failures are the client's (encrypted to another certificate, or
            // garbled): 400, one code per cause that an honest client can act on.
            Error::Request(_) | Error::NoClientId | Error::Privacy(_) => StatusCode::BAD_REQUEST,
            Error::Device(_)
            | Error::Signature
            | Error::Refused(_)
            | Error::PersistenceNotAllowed
            | Error::RenewalNotAllowed
            | Error::UnknownLicense
            | Error::SessionExpired => StatusCode::FORBIDDEN,
            Error::App(e) => e.status(),
            Error::Crypto(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Http(e) => e.code(),
            Error::NotConfigured => "protocol_not_configured",
            Error::Auth(e) => e.code(),
            Error::Request(_) => "request_invalid",
            Error::NoClientId => "client_id_missing",
            Error::Privacy(super::service::Error::NotConfigured) => "privacy_mode_unavailable",
            Error::Privacy(super::service::Error::UnknownCertificate) => {
                "service_certificate_unknown"
            }
            Error::Privacy(_) => "client_id_undecryptable",
            Error::Device(d) => d.code(),
            Error::Signature => "request_signature_invalid",
            Error::Refused(_) => "no_entitled_keys",
            Error::PersistenceNotAllowed => "persistence_not_allowed",
            Error::RenewalNotAllowed => "renewal_not_allowed",
            Error::UnknownLicense => "license_unknown",
            Error::SessionExpired => "license_too_old",
            Error::App(e) => e.code(),
            Error::Crypto(_) => "internal",
        }
    }

    fn extra(&self) -> Option<serde_json::Value> {
        match self {
            Error::Refused(kids) => Some(crate::protocol::refusal::refused_extra(kids)),
            _ => None,
        }
    }
}

/// Handles one request; `wv` is `None` when the protocol is not configured.
pub async fn handle(
    app: &App,
    wv: Option<&Widevine>,
    req: Request<Body>,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    match serve(app, wv, req, ctx).await {
        Ok(resp) => resp,
        Err(e) => {
            if let Error::Device(_) | Error::Signature | Error::Privacy(_) = &e {
                // `service_certificate_unknown` and `privacy_mode_unavailable` are not
                // registered: they are client configuration errors, not denials.
                app.metrics.denial(e.code());
            }
            error::problem(&e as &dyn ApiError)
        }
    }
}

async fn serve(
    app: &App,
    wv: Option<&Widevine>,
    req: Request<Body>,
    ctx: &mut Ctx,
) -> Result<Response<Full<Bytes>>, Error> {
    let wv = wv.ok_or(Error::NotConfigured)?;
    let (parts, body) = req.into_parts();
    // Authenticate before buffering anything but a tiny body: without a valid token only a
    // service-certificate request (public, two bytes) can be answered.
    let ent = match body::bearer(&parts.headers) {
        Some(t) => app.entitle(Some(t), ctx).await,
        None => Err(crate::auth::Error::Missing),
    };
    let cap = if ent.is_ok() {
        app.config.limits.max_license_body_bytes
    } else {
        ANONYMOUS_BODY_CAP
    };
    let bytes = match body::collect(&parts.headers, body, cap, app.body_timeout()).await {
        Ok(b) => b,
        Err(e) => {
            return Err(match (ent, e) {
                // Too big to be a service-certificate request: what is wrong is the token.
                (Err(t), crate::http::error::Error::BodyTooLarge(_)) => Error::Auth(t),
                (_, e) => Error::Http(e),
            });
        }
    };
    let request = match (message::parse(&bytes), ent.is_ok()) {
        (Ok(Incoming::ServiceCertificateRequest), _) => {
            let service = wv
                .setup
                .service
                .as_ref()
                .ok_or(Error::Privacy(super::service::Error::NotConfigured))?;
            return Ok(octets(service.response().to_vec()));
        }
        // Without a valid token, the token is the problem, whatever the body.
        (_, false) => None,
        (Ok(Incoming::License(r)), true) => Some(r),
        (Err(e), true) => return Err(e.into()),
    };
    let ent = ent.map_err(Error::Auth)?;
    let Some(request) = request else {
        return Err(Error::Auth(crate::auth::Error::Missing));
    };
    match message::content(&request.request, app.config.limits.max_kids_per_request)? {
        Content::New {
            kids,
            kind,
            request_id,
            protection_scheme,
        } => {
            new_license(
                app,
                wv,
                ctx,
                &ent,
                &request,
                kids,
                kind,
                request_id,
                protection_scheme,
            )
            .await
        }
        Content::Existing(id) => existing(app, wv, ctx, &ent, &request, id).await,
    }
}

/// The licence rules of `license::decide` for this device, then its HDCP capability.
fn grant(
    ent: &Entitlement,
    found: Vec<(KeyId, Option<std::sync::Arc<crate::keyring::CachedKey>>)>,
    level: crate::license::policy::SecurityLevel,
    max_hdcp: Option<pb::client_identification::client_capabilities::HdcpVersion>,
) -> license::Grant {
    let mut grant = license::decide(ent, found, level);
    grant.keys.retain(|k| {
        let ok = policy::hdcp_supported(max_hdcp, ent.policy.required_hdcp(k.meta.track));
        if !ok {
            grant.omitted.push((k.meta.kid, Omission::OutputProtection));
        }
        ok
    });
    grant
}

/// Each left-out KID (canonical UUID, as the key API spells it) with its reason.
fn refused(omitted: &[(KeyId, Omission)]) -> Vec<(String, &'static str)> {
    omitted
        .iter()
        .map(|(k, why)| (k.canonical().as_str().to_owned(), why.code()))
        .collect()
}

fn octets(body: Vec<u8>) -> Response<Full<Bytes>> {
    error::ok("application/octet-stream", body)
}

#[allow(clippy::too_many_arguments)]
async fn new_license(
    app: &App,
    wv: &Widevine,
    ctx: &mut Ctx,
    ent: &Entitlement,
    request: &SignedRequest,
    kids: Vec<KeyId>,
    kind: LicenseKind,
    request_id: Vec<u8>,
    protection_scheme: Option<u32>,
) -> Result<Response<Full<Bytes>>, Error> {
    let decrypted;
    let client = match (
        &request.request.client_id,
        &request.request.encrypted_client_id,
    ) {
        (Some(c), _) => c,
        (None, Some(enc)) => {
            let service = wv
                .setup
                .service
                .as_ref()
                .ok_or(super::service::Error::NotConfigured)?;
            decrypted = service.decrypt(enc)?;
            &decrypted
        }
        (None, None) => return Err(Error::NoClientId),
    };
    let now = now_secs();
    let verified = wv.setup.trust.verify(client, now)?;
    let device = verified.device.clone();
    if !device
        .key
        .verify_pss(PssHash::Sha1, &request.msg, &request.signature)
    {
        return Err(Error::Signature);
    }
    // The device proved it holds the key of this chain: now it may be cached.
    wv.setup.trust.remember(&verified);
    let offline = kind == LicenseKind::Offline;
    if offline && !ent.policy.can_persist {
        return Err(Error::PersistenceNotAllowed);
    }
    let found = app.lookup_keys(ent.tenant, &kids).await?;
    let max_hdcp = client
        .client_capabilities
        .as_ref()
        .map(|c| c.max_hdcp_version());
    let grant = grant(ent, found, wv.setup.trust.level(device.system_id), max_hdcp);
    if grant.keys.is_empty() {
        app.metrics.denial("not_entitled");
        return Err(Error::Refused(refused(&grant.omitted)));
    }
    app.consume(ent).await?;

    let (session_key, wrapped) = super::license::new_session_key(&device.wrap_key)?;
    let session = super::license::derive_keys(&session_key, &request.msg);
    let entries: Vec<_> = grant
        .keys
        .iter()
        .map(|k| super::license::KeyEntry {
            kid: k.meta.kid,
            key: &k.key,
            level: policy::wire_level(ent.policy.required_level(k.meta.track)),
            required_protection: policy::required_protection(&ent.policy, k.meta.track),
            track_label: k.meta.track.map(|t| t.as_str()),
        })
        .collect();
    let session_id = wv.seal_session(
        app.auth.tenant_id(ent.tenant),
        &super::SessionState {
            tenant: ent.tenant,
            offline,
            issued_at: now,
            mac_client: session.mac_client.clone(),
            mac_server: session.mac_server.clone(),
            system_id: device.system_id,
            serials: device.serials.clone(),
            expires_at: device.expires_at,
            max_hdcp: max_hdcp.map_or(0, |h| h as i32),
            kids: grant.keys.iter().map(|k| k.meta.kid).collect(),
        },
    )?;
    let out = super::license::build(
        super::license::Params {
            id: pb::LicenseIdentification {
                request_id: Some(request_id),
                session_id: Some(session_id),
                r#type: Some(kind.wire() as i32),
                version: Some(0),
                ..Default::default()
            },
            policy: policy::license_policy(&ent.policy, offline),
            start_time: i64::try_from(now).unwrap_or(i64::MAX),
            protection_scheme,
        },
        &entries,
        &session,
        Some(wrapped),
    )?;
    app.metrics.license(PROTOCOL, grant.keys.len());
    app.audit_licence(
        ctx,
        "key.release",
        PROTOCOL,
        ent,
        grant.keys.iter().map(|k| k.meta.kid).collect(),
    )
    .await;
    Ok(octets(out))
}

/// RENEWAL and RELEASE: authenticated by the licence's own client MAC key (sealed in its
/// `session_id`), and by a current token of the same tenant. A renewal re-checks the
/// entitlement and revocation of every key of the licence, so revoking a key or ending a
/// subscription stops renewals; the answer carries the policy and no keys.
async fn existing(
    app: &App,
    wv: &Widevine,
    ctx: &mut Ctx,
    ent: &Entitlement,
    request: &SignedRequest,
    id: pb::LicenseIdentification,
) -> Result<Response<Full<Bytes>>, Error> {
    let state = id
        .session_id
        .as_deref()
        .and_then(|s| wv.open_session(app.auth.tenant_id(ent.tenant), s))
        .filter(|s| s.tenant == ent.tenant)
        .ok_or(Error::UnknownLicense)?;
    if !super::license::verify_client_signature(&state.mac_client, &request.msg, &request.signature)
    {
        return Err(Error::UnknownLicense);
    }
    let now = now_secs();
    if now.saturating_sub(state.issued_at) > wv.session_max_age_secs {
        return Err(Error::SessionExpired);
    }
    let release = request.request.r#type() == pb::license_request::RequestType::Release;
    let session = super::license::SessionKeys {
        enc: zeroize::Zeroizing::new([0; 16]),
        mac_server: state.mac_server.clone(),
        mac_client: state.mac_client.clone(),
    };
    let (policy, event) = if release {
        (pb::license::Policy::default(), "license.release")
    } else {
        if request.request.r#type() != pb::license_request::RequestType::Renewal {
            return Err(Error::Request(message::Error::Unsupported(
                "an existing licence in a NEW request",
            )));
        }
        if !ent.policy.can_renew {
            return Err(Error::RenewalNotAllowed);
        }
        // The device as it was licensed: still not revoked or expired, and every key of the
        // licence still entitled, active, and within the device's level and HDCP.
        wv.setup
            .trust
            .admit(state.system_id, &state.serials, state.expires_at, now)?;
        let found = app.lookup_keys(ent.tenant, &state.kids).await?;
        let max_hdcp =
            pb::client_identification::client_capabilities::HdcpVersion::try_from(state.max_hdcp)
                .ok();
        let grant = grant(ent, found, wv.setup.trust.level(state.system_id), max_hdcp);
        let lost = refused(&grant.omitted);
        if !lost.is_empty() {
            app.metrics.denial("not_entitled");
            return Err(Error::Refused(lost));
        }
        (
            policy::license_policy(&ent.policy, state.offline),
            "license.renew",
        )
    };
    let out = super::license::build(
        super::license::Params {
            id: pb::LicenseIdentification {
                version: Some(id.version.unwrap_or(0).saturating_add(1)),
                ..id
            },
            policy,
            start_time: i64::try_from(now).unwrap_or(i64::MAX),
            protection_scheme: None,
        },
        &[],
        &session,
        None,
    )?;
    app.audit_licence(ctx, event, PROTOCOL, ent, state.kids.clone())
        .await;
    Ok(octets(out))
}
