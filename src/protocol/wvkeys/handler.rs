//! `POST /widevine/cenc/getcontentkey/{tenant}` (internal listener).
//!
//! Every answer the packager can act on is HTTP 200 with an in-band status: it treats any
//! HTTP error as fatal and never sees the body, while a status in the body is logged whole
//! by the packager, which is what an operator needs. Only the transport's own failures
//! (body over the cap, body timeout) are HTTP errors. `INTERNAL_ERROR`, the one status the
//! packager retries, is kept for Tessera's own faults; a store outage is first retried here
//! for a bounded time, because the packager's own retry of that status is unreliable.

use super::message::{self, KeyRequest, Status, Track};
use crate::app::{App, now_secs};
use crate::http::error::{self, ApiError, Failure};
use crate::http::{Ctx, body};
use crate::keyring::{CachedKey, KeyId, TrackType};
use crate::protocol::keyapi::provision::{self, Slot};
use crate::protocol::signalling::{Scheme, widevine_pssh_data};
use crate::protocol::widevine::pb;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use prost::Message;
use std::sync::Arc;

/// Protocol name in metrics and audit records.
pub const PROTOCOL: &str = <super::WidevineKeysProtocol as crate::protocol::Protocol>::NAME;

/// How long a store outage is retried before answering `INTERNAL_ERROR`.
const STORE_RETRY: [u64; 3] = [200, 500, 1000];

/// A refusal: the status the packager sees and the reason the log keeps.
#[derive(Debug)]
struct Refusal {
    status: Status,
    why: String,
}

fn refuse(status: Status, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
    }
}

impl From<message::Error> for Refusal {
    fn from(e: message::Error) -> Self {
        refuse(Status::MalformedRequest, e.to_string())
    }
}

/// The handler.
pub async fn handle(
    app: &App,
    signers: &super::Signers,
    req: Request<Incoming>,
    tenant: &str,
    ctx: &mut Ctx,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = match body::collect(
        &parts.headers,
        body,
        app.config.limits.max_api_body_bytes,
        app.body_timeout(),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return error::problem(&e as &dyn ApiError),
    };
    let result = answer(app, signers, tenant, &bytes, ctx).await;
    let (status, body, failure) = match result {
        Ok(body) => (Status::Ok, body, None),
        Err(r) => (
            r.status,
            message::encode_response(r.status, &[]),
            Some(r.why),
        ),
    };
    app.metrics
        .packaging
        .with_label_values(&[PROTOCOL, status.as_str()])
        .inc();
    let mut resp = error::ok("application/json", body);
    if let Some(detail) = failure {
        resp.extensions_mut().insert(Failure {
            code: status.as_str(),
            detail,
        });
    }
    resp
}

async fn answer(
    app: &App,
    signers: &super::Signers,
    tenant: &str,
    body: &[u8],
    ctx: &mut Ctx,
) -> Result<Vec<u8>, Refusal> {
    // Unknown tenant and unknown signer look the same to the caller.
    let tenant_idx = app
        .auth
        .tenant_index(tenant)
        .ok_or_else(|| refuse(Status::SignatureFailed, format!("no tenant {tenant:?}")))?;
    ctx.tenant = Some(tenant_idx);
    let envelope = message::parse_envelope(body)?;
    let signer_name = envelope
        .signer
        .as_deref()
        .ok_or_else(|| refuse(Status::SignatureFailed, "request is not signed (no signer)"))?;
    let signer = signers.get(tenant_idx, signer_name).ok_or_else(|| {
        refuse(
            Status::SignatureFailed,
            format!("signer {signer_name:?} is not configured for tenant {tenant:?}"),
        )
    })?;
    let signature = envelope
        .signature
        .as_deref()
        .ok_or_else(|| refuse(Status::SignatureFailed, "no signature"))?;
    if !signer.verify(&envelope.request, signature) {
        return Err(refuse(
            Status::SignatureFailed,
            format!("signature of signer {signer_name:?} does not verify"),
        ));
    }
    let request = message::parse_request(&envelope.request)?;
    let plan = plan(app, tenant_idx, &request)?;
    let keys = with_store_retry(|| fetch(app, tenant_idx, &plan)).await?;
    let provider = &app.config.packaging.widevine_provider;
    let mut tracks = Vec::with_capacity(keys.len());
    for (slot, key) in plan.slots.iter().zip(&keys) {
        let kid = key.meta.kid;
        // Checked in `plan`: every period index fits the wire's uint32.
        let period = slot.period.and_then(|p| u32::try_from(p).ok());
        tracks.push(Track {
            label: slot.label,
            kid: *kid.as_bytes(),
            key: key.key.expose(),
            pssh_data: widevine_pssh_data(
                &[kid],
                provider,
                &plan.pssh_content_id,
                plan.scheme,
                period.filter(|_| plan.rotating),
            ),
            period: period.filter(|_| plan.rotating),
        });
    }
    let body = message::encode_response(Status::Ok, &tracks);
    let mut kids: Vec<KeyId> = keys.iter().map(|k| k.meta.kid).collect();
    kids.dedup();
    app.audit(
        ctx,
        crate::audit::Event {
            event: "key.release",
            protocol: PROTOCOL,
            kids,
            content_id: Some(&plan.content_id),
            subject: Some(signer_name),
            token_id: None,
            device: None,
        },
    )
    .await;
    Ok(body)
}

/// What a request asks for, validated.
struct Plan<'r> {
    content_id: String,
    /// The bytes written into PSSH data's `content_id`.
    pssh_content_id: Vec<u8>,
    /// Decryption: the KIDs and period the file's PSSH data names.
    pssh_kids: Vec<KeyId>,
    slots: Vec<Labelled<'r>>,
    scheme: Option<Scheme>,
    rotating: bool,
    /// Decryption requests read existing keys and never create any.
    create: bool,
}

struct Labelled<'r> {
    label: &'r str,
    track: TrackType,
    period: Option<u64>,
}

/// Tessera's content id for the protocol's content-id bytes: the text when it is printable
/// UTF-8 (what `--content_id` usually encodes), else `hex:` and the bytes in hex.
pub fn content_id_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.starts_with("hex:") && !s.chars().any(char::is_control) => s.to_owned(),
        _ => format!("hex:{}", crate::encoding::hex_encode(bytes)),
    }
}

fn plan<'r>(app: &App, tenant: u32, r: &'r KeyRequest) -> Result<Plan<'r>, Refusal> {
    if !r.policy.is_empty()
        && !app.config.tenants[tenant as usize]
            .policies
            .contains_key(&r.policy)
    {
        return Err(refuse(
            Status::PolicyUnknown,
            format!("policy {:?} is not defined for this tenant", r.policy),
        ));
    }
    if !r.drm_types.is_empty() && !r.drm_types.iter().any(|d| d == "WIDEVINE") {
        return Err(refuse(
            Status::MalformedRequest,
            "drm_types must include WIDEVINE",
        ));
    }
    if r.tracks.is_empty() {
        return Err(refuse(Status::TrackTypeMissing, "no tracks requested"));
    }
    let mut tracks = Vec::with_capacity(r.tracks.len());
    for label in &r.tracks {
        let track = TrackType::parse(label)
            .filter(|t| t.as_str() == label)
            .ok_or_else(|| {
                refuse(
                    Status::TrackTypeUnknown,
                    format!("track type {label:?} (SD, HD, UHD1, UHD2, AUDIO)"),
                )
            })?;
        if tracks.iter().any(|(_, t)| *t == track) {
            return Err(refuse(
                Status::MalformedRequest,
                format!("track type {label} requested twice"),
            ));
        }
        tracks.push((label.as_str(), track));
    }
    let scheme = r
        .protection_scheme
        .as_deref()
        .map(|s| {
            Scheme::parse(s).ok_or_else(|| {
                refuse(
                    Status::MalformedRequest,
                    format!("protection_scheme {s:?} (CENC, CBCS, CBC1, CENS)"),
                )
            })
        })
        .transpose()?;
    let periods: Vec<Option<u64>> = match (r.first_period, r.period_count) {
        (None, None) => vec![None],
        (Some(first), Some(count)) => {
            if count == 0 {
                return Err(refuse(
                    Status::NoRequestedCryptoPeriods,
                    "crypto_period_count is 0",
                ));
            }
            let max = app.config.packaging.max_crypto_periods;
            if count > max {
                return Err(refuse(
                    Status::MalformedRequest,
                    format!("crypto_period_count {count} exceeds {max}"),
                ));
            }
            // Period indexes are uint32 on the wire: the last one must be one too.
            if first.checked_add(count - 1).is_none() {
                return Err(refuse(
                    Status::MalformedRequest,
                    "crypto periods beyond index 4294967295",
                ));
            }
            let first = u64::from(first);
            (first..first + u64::from(count)).map(Some).collect()
        }
        _ => {
            return Err(refuse(
                Status::MalformedRequest,
                "first_crypto_period_index and crypto_period_count go together",
            ));
        }
    };
    if tracks.len() * periods.len() > app.config.limits.max_kids_per_request.max(1) * 10 {
        return Err(refuse(Status::MalformedRequest, "too many keys requested"));
    }
    let rotating = periods[0].is_some();
    let mut pssh_kids = Vec::new();
    let (content_bytes, create): (Vec<u8>, bool) = match (&r.content_id, &r.pssh_data) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                Status::TooManyContentSpecifiers,
                "give content_id or pssh_data, not both",
            ));
        }
        (Some(c), None) => (c.clone(), true),
        (None, Some(p)) => {
            // Decryption (`--enable_widevine_decryption`): the content id, KIDs and period
            // of the PSSH data the packager found in the file.
            let data = pb::WidevinePsshData::decode(&p[..]).map_err(|_| {
                refuse(
                    Status::InvalidWidevinePssh,
                    "pssh_data is not WidevinePsshData",
                )
            })?;
            for k in &data.key_ids {
                let bytes: [u8; 16] = k[..].try_into().map_err(|_| {
                    refuse(
                        Status::InvalidWidevinePssh,
                        "pssh_data key_id is not 16 bytes",
                    )
                })?;
                pssh_kids.push(KeyId::from_bytes(bytes));
            }
            let found = data.content_id.filter(|c| !c.is_empty()).ok_or_else(|| {
                refuse(Status::InvalidWidevinePssh, "pssh_data has no content_id")
            })?;
            (found, false)
        }
        (None, None) => return Err(refuse(Status::ContentIdMissing, "no content_id")),
    };
    if content_bytes.len() > crate::protocol::keyapi::message::MAX_CONTENT_ID {
        return Err(refuse(Status::MalformedRequest, "content_id is too long"));
    }
    let mut slots = Vec::with_capacity(tracks.len() * periods.len());
    // Grouped by period, ascending, then in the requested track order: the packager checks
    // that periods arrive in order.
    for period in &periods {
        for (label, track) in &tracks {
            slots.push(Labelled {
                label,
                track: *track,
                period: *period,
            });
        }
    }
    Ok(Plan {
        content_id: content_id_text(&content_bytes),
        pssh_content_id: content_bytes,
        pssh_kids,
        slots,
        scheme,
        rotating,
        create,
    })
}

async fn fetch(app: &App, tenant: u32, plan: &Plan<'_>) -> Result<Vec<Arc<CachedKey>>, FetchError> {
    let slots: Vec<Slot> = plan
        .slots
        .iter()
        .map(|s| Slot {
            track: Some(s.track),
            period: s.period,
        })
        .collect();
    if plan.create {
        let keys = provision::by_slot(app, tenant, &plan.content_id, &slots, now_secs()).await?;
        return Ok(keys.into_iter().map(|p| p.key).collect());
    }
    let tenant_id = app.auth.tenant_id(tenant);
    let records = app
        .store
        .list_by_content(tenant_id, &plan.content_id)
        .await
        .map_err(provision::Error::from)?;
    if records.is_empty() {
        return Err(FetchError::Refused(refuse(
            Status::AssetNotFound,
            format!("no keys for content id {:?}", plan.content_id),
        )));
    }
    // The file's own KIDs decide where they name a key: a key revoked since packaging is
    // refused rather than silently replaced by its successor.
    let mut named = Vec::new();
    for kid in &plan.pssh_kids {
        match records.iter().find(|r| r.meta.kid == *kid) {
            Some(r) if !r.meta.is_active() => {
                return Err(FetchError::Refused(refuse(
                    Status::AccessDenied,
                    format!("key {kid} of content id {:?} is revoked", plan.content_id),
                )));
            }
            Some(r) => named.push(r),
            None => {}
        }
    }
    let mut out = Vec::with_capacity(slots.len());
    for slot in &slots {
        if let Some(rec) = named.iter().find(|r| r.meta.track == slot.track) {
            out.push(
                app.open_and_cache(tenant, (*rec).clone())
                    .map_err(provision::Error::from)?,
            );
            continue;
        }
        let rec = records
            .iter()
            .find(|r| {
                r.meta.track == slot.track && r.meta.period == slot.period && r.meta.is_active()
            })
            .ok_or_else(|| {
                FetchError::Refused(refuse(
                    Status::AssetMissingKey,
                    format!(
                        "content id {:?} has no active {:?} key",
                        plan.content_id, slot.track
                    ),
                ))
            })?;
        out.push(
            app.open_and_cache(tenant, rec.clone())
                .map_err(provision::Error::from)?,
        );
    }
    Ok(out)
}

enum FetchError {
    Refused(Refusal),
    Provision(provision::Error),
}

impl From<provision::Error> for FetchError {
    fn from(e: provision::Error) -> Self {
        FetchError::Provision(e)
    }
}

async fn with_store_retry<F, Fut>(mut f: F) -> Result<Vec<Arc<CachedKey>>, Refusal>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Arc<CachedKey>>, FetchError>>,
{
    let mut waits = STORE_RETRY.iter();
    loop {
        match f().await {
            Ok(keys) => return Ok(keys),
            Err(FetchError::Refused(r)) => return Err(r),
            Err(FetchError::Provision(e)) if e.status() == StatusCode::SERVICE_UNAVAILABLE => {
                match waits.next() {
                    Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(*ms)).await,
                    None => return Err(refuse(Status::InternalError, e.to_string())),
                }
            }
            Err(FetchError::Provision(e @ provision::Error::Conflict(_)))
            | Err(FetchError::Provision(e @ provision::Error::Revoked(_))) => {
                return Err(refuse(Status::AccessDenied, e.to_string()));
            }
            Err(FetchError::Provision(e)) => {
                return Err(refuse(Status::InternalError, e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_id_text_forms() {
        assert_eq!(content_id_text(b"tessera-clip-1"), "tessera-clip-1");
        assert_eq!(content_id_text(&[0, 1, 0xff]), "hex:0001ff");
        // Text that already looks like the hex form is itself hex-encoded, so two different
        // byte strings never share a content id.
        assert_eq!(content_id_text(b"hex:00"), "hex:6865783a3030");
    }
}
