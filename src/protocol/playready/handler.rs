//! `POST /playready/license` (alias `/playready/rightsmanager.asmx`): a SOAP AcquireLicense
//! challenge in, a SOAP AcquireLicenseResponse with one XMR licence per released key out
//! (`docs/playready.md`).
//!
//! Order of checks, cheapest and least trusting first: body cap -> SOAP parse -> token
//! (`Authorization: Bearer`, else the challenge's `CustomData`) -> challenge digest and
//! signature -> session key (server key) -> client data -> device chain (cached) and its
//! binding to the signing key -> KIDs -> keys and rules (entitlement, revocation, security
//! level) -> max-uses -> licences. A request without a valid token costs no P-256 operation.
//!
//! Every refusal is a SOAP 1.1 fault (HTTP 500, as SOAP's HTTP binding requires; 413 for an
//! oversized body, 503 while the store is unreachable) with a PlayReady status code the
//! clients know, and `code: text` in `faultstring`.

use super::challenge::{self, Challenge};
use super::response::{self, Soap, status};
use super::xmr::{self, KeyType, Opl};
use super::{PlayReady, bcert};
use crate::app::{App, now_secs};
use crate::http::error::{ApiError, attach_failure, public_detail};
use crate::http::{Ctx, body};
use crate::keyring::KeyId;
use crate::license::policy::{Hdcp, Policy, SecurityLevel};
use crate::license::{self, Entitlement};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

/// Protocol name in metrics and audit records.
pub const PROTOCOL: &str = <super::PlayReadyProtocol as crate::protocol::Protocol>::NAME;

/// Denial reasons this protocol adds to `tessera_auth_denials_total` (the device-chain ones
/// it shares with the Widevine-style protocol are registered there).
pub const DENIAL_CODES: [&str; 4] = [
    "challenge_signature_invalid",
    "challenge_not_for_this_server",
    "client_data_invalid",
    "device_key_mismatch",
];

/// Clock-skew allowance before the issue time in a licence's validity window.
const SKEW_SECS: u64 = 300;

/// Why a challenge got no licence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Body cap, unreadable body.
    #[error(transparent)]
    Http(#[from] crate::http::error::Error),
    /// The protocol is not configured.
    #[error("PlayReady-style licences are not configured on this server (no [playready] keys)")]
    NotConfigured,
    /// Token missing, invalid, or lacking rights.
    #[error("{0}")]
    Auth(#[from] crate::auth::Error),
    /// The challenge is malformed, unsigned or not for this server.
    #[error("{0}")]
    Challenge(#[from] challenge::Error),
    /// The device chain is not trusted, or did not sign the challenge.
    #[error("{0}")]
    Device(#[from] bcert::Error),
    /// The header names no KID (or more than the limit).
    #[error("the content header names no KID (or more than {0})")]
    Kids(usize),
    /// No requested key may be released; each KID with the reason.
    #[error("no requested key is available to this token and device: {}", describe(.0))]
    Refused(Vec<(String, &'static str)>),
    /// Store or keyring failure.
    #[error(transparent)]
    App(#[from] crate::app::Error),
    /// Licence cryptography failed on our side.
    #[error("licence crypto failed: {0}")]
    Crypto(#[from] xmr::Error),
}

fn describe(kids: &[(String, &'static str)]) -> String {
    kids.iter()
        .map(|(k, why)| format!("{k} {why}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ApiError for Error {
    /// The status class as every protocol decides it (E3). SOAP's HTTP binding then maps
    /// it onto the wire (`Error::http_status`).
    fn status(&self) -> StatusCode {
        match self {
            Error::Http(e) => e.status(),
            Error::NotConfigured => StatusCode::NOT_FOUND,
            Error::Auth(e) => e.status(),
            Error::Challenge(
                challenge::Error::Digest
                | challenge::Error::Signature
                | challenge::Error::ServerKey
                | challenge::Error::ClientData,
            )
            | Error::Device(_)
            | Error::Refused(_) => StatusCode::FORBIDDEN,
            Error::Challenge(_) | Error::Kids(_) => StatusCode::BAD_REQUEST,
            Error::App(e) => e.status(),
            Error::Crypto(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Machine-readable code (the problem codes of the other protocols).
    fn code(&self) -> &'static str {
        match self {
            Error::Http(e) => e.code(),
            Error::NotConfigured => "protocol_not_configured",
            Error::Auth(e) => e.code(),
            Error::Challenge(challenge::Error::Digest | challenge::Error::Signature) => {
                "challenge_signature_invalid"
            }
            Error::Challenge(challenge::Error::ServerKey) => "challenge_not_for_this_server",
            Error::Challenge(challenge::Error::ClientData) => "client_data_invalid",
            Error::Challenge(_) => "request_invalid",
            Error::Device(d) => d.code(),
            Error::Kids(_) => "kids_invalid",
            Error::Refused(_) => "no_entitled_keys",
            Error::App(e) => e.code(),
            Error::Crypto(_) => "internal",
        }
    }
}

impl Error {
    /// SOAP 1.1's HTTP binding (§6.2) answers every fault with 500, and clients expect it;
    /// so, unlike the other protocols, a refusal is not a 4xx here. Two exceptions a proxy
    /// or client acts on: 413 for a body over the cap (refused unread), 503 while the store
    /// or the token keys are unreachable (retry later). Refusals are counted by reason in
    /// `tessera_auth_denials_total`, not by status class.
    /// SOAP 1.2's binding (Part 2 §7.5.1.2) answers a Sender fault with 400.
    fn http_status(&self, soap: Soap) -> StatusCode {
        match self.status() {
            s @ (StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::NOT_FOUND
            | StatusCode::SERVICE_UNAVAILABLE) => s,
            _ if soap == Soap::V12 && response::sender_fault(self.pr_status()) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The PlayReady status in the fault's detail.
    fn pr_status(&self) -> u32 {
        match self {
            Error::Challenge(challenge::Error::HeaderVersion(_)) => {
                status::PROTOCOL_VERSION_MISMATCH
            }
            Error::Http(_) | Error::Challenge(_) | Error::Kids(_) => status::INVALID_MESSAGE,
            _ if self.status().is_server_error() => status::INTERNAL_ERROR,
            _ => status::SERVICE_SPECIFIC,
        }
    }
}

/// Handles one request.
pub async fn handle(
    app: &App,
    pr: Option<&PlayReady>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    let mut soap = Soap::V11;
    match serve(app, pr, req, ctx, &mut soap).await {
        Ok(body) => xml(StatusCode::OK, soap, body),
        Err(e) => {
            // Token and entitlement refusals are counted where they are decided; these are
            // the protocol's own (a malformed message is not a denial).
            if let Error::Device(_)
            | Error::Challenge(
                challenge::Error::Digest
                | challenge::Error::Signature
                | challenge::Error::ServerKey
                | challenge::Error::ClientData,
            ) = &e
            {
                app.metrics.denial(e.code());
            }
            let mut resp = xml(
                e.http_status(soap),
                soap,
                response::fault(soap, e.pr_status(), e.code(), &public_detail(&e)),
            );
            attach_failure(&mut resp, &e);
            resp
        }
    }
}

fn xml(status: StatusCode, soap: Soap, body: String) -> Response<Full<Bytes>> {
    let mut resp = crate::http::error::with_status(status, soap.content_type(), body);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The entitlement token of a challenge's `CustomData`: the text of a `<Token>` element
/// within it (as Azure Media Services accepted), or the whole value when it is a bare JWT.
pub fn custom_data_token(custom: &str) -> Option<&str> {
    let c = custom.trim();
    if let Some(start) = c.find("<Token>") {
        let rest = &c[start + "<Token>".len()..];
        return rest.find("</Token>").map(|end| rest[..end].trim());
    }
    let jwt = c.split('.').count() == 3
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    jwt.then_some(c)
}

async fn serve(
    app: &App,
    pr: Option<&PlayReady>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    soap: &mut Soap,
) -> Result<String, Error> {
    let pr = pr.ok_or(Error::NotConfigured)?;
    let (parts, incoming) = req.into_parts();
    let bytes = body::collect(
        &parts.headers,
        incoming,
        app.config.limits.max_license_body_bytes,
        app.body_timeout(),
    )
    .await?;
    let ch = challenge::parse(&bytes)?;
    *soap = ch.soap;
    let token = body::bearer(&parts.headers)
        .or_else(|| ch.custom_data.as_deref().and_then(custom_data_token));
    let ent = app.entitle(token, ctx).await?;
    license(app, pr, &ch, &ent, ctx).await
}

async fn license(
    app: &App,
    pr: &PlayReady,
    ch: &Challenge<'_>,
    ent: &Entitlement,
    ctx: &mut Ctx,
) -> Result<String, Error> {
    ch.verify()?;
    let data = ch.open(&pr.server)?;
    let now = now_secs();
    // The chain must carry the key that signed the challenge: then the device has proved it
    // holds the chain's signing key, and the chain may be cached.
    let verified = pr.trust.verify(&data.chain, &ch.public_key, now)?;
    pr.trust.remember(&verified);
    let device = &verified.device;

    let max = app.config.limits.max_kids_per_request;
    if ch.header.kids.is_empty() || ch.header.kids.len() > max {
        return Err(Error::Kids(max));
    }
    // GUID-LE swapping is its own inverse.
    let kids: Vec<KeyId> = ch
        .header
        .kids
        .iter()
        .map(|k| KeyId::from_bytes(super::header::guid_le(&KeyId::from_bytes(k.id))))
        .collect();
    let found = app.lookup_keys(ent.tenant, &kids).await?;
    let grant = license::decide(ent, found, device.level());
    if grant.keys.is_empty() {
        app.metrics.denial("not_entitled");
        return Err(Error::Refused(
            grant
                .omitted
                .iter()
                .map(|(k, why)| (k.canonical().as_str().to_owned(), why.code()))
                .collect(),
        ));
    }
    let issued = u32::try_from(now).unwrap_or(u32::MAX);
    let policy = &ent.policy;
    let mut licences = Vec::with_capacity(grant.keys.len());
    for k in &grant.keys {
        let wire = super::header::guid_le(&k.meta.kid);
        let cbcs = ch.header.kids.iter().any(|h| h.id == wire && h.cbcs);
        let key_type = if cbcs {
            KeyType::AesCbc
        } else {
            KeyType::AesCtr
        };
        licences.push(xmr::build(&xmr::Spec {
            rights_id: crate::crypto::random_array()
                .map_err(|_| xmr::Error::Ecc(crate::crypto::ecc::Error::Internal))?,
            kid: wire,
            key_type,
            content_key: k.key.expose(),
            device_key: &device.encrypt_key,
            security_level: wire_level(policy.required_level(k.meta.track)),
            issued_at: issued,
            persistent: policy.can_persist,
            expiration: expiration(policy, now),
            after_first_play: nonzero(policy.playback_duration_secs),
            opl: opl(policy, k.meta.track),
        })?);
    }
    let out = response::build(
        &response::Response {
            licenses: &licences,
            nonce: ch.nonce.as_deref(),
            response_id: crate::crypto::random_array()
                .map_err(|_| xmr::Error::Ecc(crate::crypto::ecc::Error::Internal))?,
        },
        pr.signer.as_ref(),
        ch.soap,
    )
    .map_err(xmr::Error::Ecc)?;
    // Spent only once the answer exists: a failure above does not use up a max-uses token.
    app.consume(ent).await?;
    app.metrics.license(PROTOCOL, grant.keys.len());
    let who = format!(
        "playready:{}",
        device
            .cert_ids
            .first()
            .map(|id| crate::encoding::hex_encode(id))
            .unwrap_or_default()
    );
    app.audit_device_licence(
        ctx,
        "key.release",
        PROTOCOL,
        ent,
        grant.keys.iter().map(|k| k.meta.kid).collect(),
        Some(&who),
    )
    .await;
    Ok(out)
}

/// The XMR minimum security level for a required neutral level, the inverse of
/// [`bcert::Device::level`]: software crypto is SL150, software crypto and decode SL2000,
/// anything in hardware SL3000.
pub fn wire_level(level: SecurityLevel) -> u16 {
    match level {
        SecurityLevel::SwSecureCrypto => 150,
        SecurityLevel::SwSecureDecode => 2000,
        SecurityLevel::HwSecureCrypto
        | SecurityLevel::HwSecureDecode
        | SecurityLevel::HwSecureAll => 3000,
    }
}

fn nonzero(secs: u64) -> Option<u32> {
    (secs > 0).then(|| u32::try_from(secs).unwrap_or(u32::MAX))
}

/// The validity window: from the issue time (less a clock-skew allowance) to the earlier of
/// the licence duration and the rental window; none when both are unlimited.
fn expiration(p: &Policy, now: u64) -> Option<(u32, u32)> {
    let ends = [p.license_duration_secs, p.rental_duration_secs]
        .into_iter()
        .filter(|d| *d > 0)
        .min()?;
    let clamp = |t: u64| u32::try_from(t).unwrap_or(u32::MAX);
    Some((
        clamp(now.saturating_sub(SKEW_SECS)),
        clamp(now.saturating_add(ends)),
    ))
}

/// Output protection levels from the neutral policy: an HDCP requirement is uncompressed
/// digital video OPL 300 (HDCP engaged or no output); no digital output at all is 301 for
/// uncompressed and 501 for compressed video (above the highest level, so never passed);
/// `disable_analog_output` is analog video OPL 201 (likewise).
pub fn opl(p: &Policy, track: Option<crate::keyring::TrackType>) -> Opl {
    let mut o = Opl::default();
    match p.required_hdcp(track) {
        Hdcp::None => {}
        Hdcp::NoDigitalOutput => {
            o.uncompressed_digital_video = 301;
            o.compressed_digital_video = 501;
        }
        _ => o.uncompressed_digital_video = 300,
    }
    if p.disable_analog_output {
        o.analog_video = 201;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_data_tokens() {
        assert_eq!(
            custom_data_token("<Token>aa.bb.cc</Token>"),
            Some("aa.bb.cc")
        );
        assert_eq!(
            custom_data_token(" <CustomData><Token> aa.bb.cc </Token></CustomData>"),
            Some("aa.bb.cc")
        );
        assert_eq!(custom_data_token("aa.bb.cc"), Some("aa.bb.cc"));
        assert_eq!(custom_data_token("userid=7&session=1"), None);
        assert_eq!(custom_data_token("<Token>unterminated"), None);
    }

    #[test]
    fn policy_mapping() {
        let mut p = Policy::default();
        assert_eq!(opl(&p, None), Opl::default());
        assert_eq!(expiration(&p, 1000), None);
        p.license_duration_secs = 3600;
        p.rental_duration_secs = 600;
        assert_eq!(expiration(&p, 1000), Some((700, 1600)));
        p.hdcp.insert(crate::keyring::TrackType::Hd, Hdcp::V2_2);
        p.disable_analog_output = true;
        let o = opl(&p, Some(crate::keyring::TrackType::Hd));
        assert_eq!((o.uncompressed_digital_video, o.analog_video), (300, 201));
        assert_eq!(
            opl(&p, Some(crate::keyring::TrackType::Sd)).uncompressed_digital_video,
            100
        );
        assert_eq!(wire_level(SecurityLevel::SwSecureCrypto), 150);
        assert_eq!(wire_level(SecurityLevel::SwSecureDecode), 2000);
        assert_eq!(wire_level(SecurityLevel::HwSecureCrypto), 3000);
        assert_eq!(wire_level(SecurityLevel::HwSecureAll), 3000);
    }
}
